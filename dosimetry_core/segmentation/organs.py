"""The standard organ list: names, VOI kinds, display colours, synonyms, reference masses.

Source
------
``resources/organs/standard_organs.json``.  Reference adult masses are from
ICRP Publication 89 (Ann. ICRP 32(3-4), 2002), Table 2.8; each entry says what
the mass covers (``mass_scope``) and whether it is the total of a pair of
organs (``pair_total``).  Colours and synonyms are this workstation's choice.

Name matching
-------------
:func:`match_organ` compares names case-insensitively after turning ``_ - . , /
( )`` into spaces, ignores word order, and recognises laterality words
(``L``/``Left``/``Lt``/``links``/``sin`` and ``R``/``Right``/``Rt``/``rechts``/
``dex``), so ``"Left Kidney"``, ``"KIDNEY_L"``, ``"kidney left"`` and
``"Niere links"`` all give ``Kidney_L``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.model import VoiKind
from dosimetry_core.resources import resource_path

STANDARD_ORGANS_PATH = resource_path("organs", "standard_organs.json")

_LEFT_WORDS = frozenset({"l", "left", "lt", "links", "li", "linke", "linker", "sin", "sinister"})
_RIGHT_WORDS = frozenset({"r", "right", "rt", "rechts", "re", "rechte", "rechter", "dex", "dexter"})


@dataclass(frozen=True)
class OrganSpec:
    """One entry of the standard organ list.

    Attributes
    ----------
    name
        Standard name, e.g. ``"Kidney_L"``.
    kind
        VOI kind (organ, lesion, reference).
    color_rgb
        Display colour, 0-255 per channel.
    laterality
        ``"L"``, ``"R"`` or ``""`` for unpaired structures.
    synonyms
        Other spellings accepted by :func:`match_organ`.
    icrp89_mass_male_g, icrp89_mass_female_g
        ICRP 89 Table 2.8 reference adult mass (g) or ``None``.
    mass_scope
        What that mass covers (e.g. ``"both kidneys"``, ``"bladder wall"``).
    pair_total
        ``True`` when the mass is for both organs of a pair together.
    """

    name: str
    kind: VoiKind
    color_rgb: tuple[int, int, int]
    laterality: str = ""
    synonyms: tuple[str, ...] = ()
    icrp89_mass_male_g: float | None = None
    icrp89_mass_female_g: float | None = None
    mass_scope: str = ""
    pair_total: bool = False

    def reference_mass_g(self, sex: str) -> float | None:
        """ICRP 89 mass for ``sex`` ``"M"``/``"F"`` as tabulated (see ``pair_total``)."""
        s = sex.strip().upper()[:1]
        if s == "M":
            return self.icrp89_mass_male_g
        if s == "F":
            return self.icrp89_mass_female_g
        raise InvalidInputError(f"sex must be 'M' or 'F' for a reference mass, got {sex!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": str(self.kind),
            "color_rgb": list(self.color_rgb),
            "laterality": self.laterality,
            "synonyms": list(self.synonyms),
            "icrp89_mass_male_g": self.icrp89_mass_male_g,
            "icrp89_mass_female_g": self.icrp89_mass_female_g,
            "mass_scope": self.mass_scope,
            "pair_total": self.pair_total,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OrganSpec:
        c = d["color_rgb"]
        male, female = d.get("icrp89_mass_male_g"), d.get("icrp89_mass_female_g")
        return cls(
            name=str(d["name"]),
            kind=VoiKind(d["kind"]),
            color_rgb=(int(c[0]), int(c[1]), int(c[2])),
            laterality=str(d.get("laterality", "")),
            synonyms=tuple(str(s) for s in d.get("synonyms", ())),
            icrp89_mass_male_g=None if male is None else float(male),
            icrp89_mass_female_g=None if female is None else float(female),
            mass_scope=str(d.get("mass_scope", "")),
            pair_total=bool(d.get("pair_total", False)),
        )


def _tokens(name: str) -> list[str]:
    return re.sub(r"[\s_\-.,/()\[\]]+", " ", name.casefold()).split()


def _key(name: str) -> tuple[frozenset[str], str]:
    """(set of non-laterality words, laterality) of a name."""
    words = _tokens(name)
    lat = ""
    rest: list[str] = []
    for w in words:
        if w in _LEFT_WORDS:
            lat = "L"
        elif w in _RIGHT_WORDS:
            lat = "R"
        else:
            rest.append(w)
    if not rest:  # a name made only of laterality-like words ("L", "RE")
        return frozenset(words), ""
    return frozenset(rest), lat


@lru_cache(maxsize=4)
def _load(path: str) -> tuple[OrganSpec, ...]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return tuple(OrganSpec.from_dict(d) for d in data["organs"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInputError(
            f"the organ list {path} cannot be read ({type(exc).__name__}: {exc}); "
            "fix or restore the file"
        ) from exc


def standard_organs(path: str | Path | None = None) -> list[OrganSpec]:
    """The standard organ list (a new list each call).

    Parameters
    ----------
    path
        Alternative JSON file in the same format; ``None`` for the shipped list.
    """
    return list(_load(str(STANDARD_ORGANS_PATH if path is None else Path(path))))


@lru_cache(maxsize=4)
def _index(path: str) -> dict[tuple[frozenset[str], str], OrganSpec]:
    index: dict[tuple[frozenset[str], str], OrganSpec] = {}
    for spec in _load(path):
        for n in (spec.name, *spec.synonyms):
            words, lat = _key(n)
            # A paired organ's synonyms inherit its side when they do not say it.
            index.setdefault((words, lat or spec.laterality), spec)
    return index


def match_organ(name: str, path: str | Path | None = None) -> OrganSpec | None:
    """Standard organ for a structure name from another system, or ``None``.

    Case-insensitive; accepts synonyms, any word order and separator, and
    laterality written as L/R, Left/Right, Lt/Rt, links/rechts, sin/dex.
    A side-less name never matches a paired organ (``"Kidney"`` gives ``None``).
    """
    if not name or not name.strip():
        return None
    index = _index(str(STANDARD_ORGANS_PATH if path is None else Path(path)))
    return index.get(_key(name))
