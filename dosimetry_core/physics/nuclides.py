"""Nuclear decay data: half-lives, mean energies per decay, beta spectra, progeny.

Sources
-------
* Emissions and beta spectra: ICRP Publication 107, "Nuclear Decay Data for
  Dosimetric Calculations" (Eckerman & Endo, Ann. ICRP 38(3), 2008), as shipped
  by the PyPI package ``icrp107-database`` (one JSON file per nuclide, energies
  in MeV, yields per decay).
* Half-lives and decay chains: the PyPI package ``radioactivedecay`` with its
  default dataset (ICRP-107 half-lives and branching, AME2020/NUBASE2020 masses).

Radiation-type grouping used for dosimetry (MIRD convention):

* ``electron``: beta-minus and beta-plus kinetic energy, Auger and internal
  conversion electrons (ICRP-107 types B-, B+, AE, IE);
* ``photon``: gamma rays, X-rays and annihilation photons (G, X, AQ);
* ``alpha``: alpha particles (A);
* ``alpha_recoil``: recoiling daughter nuclei (AR), deposited locally.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dosimetry_core.errors import InvalidInputError

_ELECTRON_TYPES = ("beta-", "beta+", "auger", "IE")
_PHOTON_TYPES = ("gamma", "X", "annihilation")

_ELEMENT_NAMES = {
    "hydrogen": "H",
    "carbon": "C",
    "nitrogen": "N",
    "oxygen": "O",
    "fluorine": "F",
    "sodium": "Na",
    "phosphorus": "P",
    "potassium": "K",
    "chromium": "Cr",
    "scandium": "Sc",
    "copper": "Cu",
    "gallium": "Ga",
    "germanium": "Ge",
    "rubidium": "Rb",
    "strontium": "Sr",
    "yttrium": "Y",
    "zirconium": "Zr",
    "technetium": "Tc",
    "indium": "In",
    "iodine": "I",
    "xenon": "Xe",
    "samarium": "Sm",
    "terbium": "Tb",
    "holmium": "Ho",
    "erbium": "Er",
    "lutetium": "Lu",
    "rhenium": "Re",
    "thallium": "Tl",
    "lead": "Pb",
    "bismuth": "Bi",
    "astatine": "At",
    "radium": "Ra",
    "actinium": "Ac",
    "thorium": "Th",
    "cobalt": "Co",
    "cesium": "Cs",
    "caesium": "Cs",
    "barium": "Ba",
    "europium": "Eu",
    "americium": "Am",
    "gadolinium": "Gd",
    "radon": "Rn",
    "polonium": "Po",
    "francium": "Fr",
    "copper-": "Cu",
}

_DATA_DIR: Path | None = None


def _icrp107_dir() -> Path:
    global _DATA_DIR
    if _DATA_DIR is None:
        import icrp107_database

        _DATA_DIR = Path(icrp107_database.__file__).parent / "icrp107"
    return _DATA_DIR


def normalize_nuclide(name: str) -> str:
    """Return the ICRP-107 spelling (``"Lu-177"``, ``"Tc-99m"``) of a nuclide name.

    Accepts ``Lu-177``, ``lu177``, ``177Lu``, ``LU-177``, ``Lutetium-177``,
    ``^177^Lutetium`` (DICOM code meanings), ``Tc99m``.

    Raises
    ------
    InvalidInputError
        If the name cannot be parsed or the nuclide is not in ICRP-107.
    """
    raw = str(name).strip()
    s = raw.replace("^", " ").replace("_", " ").strip()
    m = re.fullmatch(r"([A-Za-z]+)\s*-?\s*(\d+)\s*(m\d?)?", s) or None
    if m:
        sym, mass, meta = m.group(1), m.group(2), m.group(3) or ""
    else:
        m2 = re.fullmatch(r"(\d+)\s*(m\d?)?\s*-?\s*([A-Za-z]+)", s)
        if not m2:
            raise InvalidInputError(f"cannot read nuclide name {raw!r} (expected e.g. 'Lu-177')")
        mass, meta, sym = m2.group(1), m2.group(2) or "", m2.group(3)
    low = sym.lower()
    if low in _ELEMENT_NAMES:
        sym = _ELEMENT_NAMES[low]
    elif len(sym) <= 2:
        sym = sym[0].upper() + sym[1:].lower()
    else:
        raise InvalidInputError(f"unknown element {sym!r} in nuclide name {raw!r}")
    canonical = f"{sym}-{int(mass)}{meta.lower()}"
    if not (_icrp107_dir() / f"{canonical}.json").exists():
        raise InvalidInputError(f"nuclide {canonical} (from {raw!r}) is not in ICRP-107")
    return canonical


@lru_cache(maxsize=256)
def _emissions(nuclide: str) -> dict[str, list[list[float]]]:
    path = _icrp107_dir() / f"{nuclide}.json"
    with open(path, "rb") as f:
        data = json.loads(json.load(f))
    emissions: dict[str, list[list[float]]] = data["emissions"]
    return emissions


@dataclass(frozen=True)
class EnergyPerDecay:
    """Mean energy emitted per decay by radiation group, in MeV (ICRP-107)."""

    electron_mev: float
    photon_mev: float
    alpha_mev: float
    alpha_recoil_mev: float

    @property
    def total_mev(self) -> float:
        return self.electron_mev + self.photon_mev + self.alpha_mev + self.alpha_recoil_mev

    @property
    def non_penetrating_mev(self) -> float:
        """Electrons, alphas and recoils: energy usually deposited locally."""
        return self.electron_mev + self.alpha_mev + self.alpha_recoil_mev


def energy_per_decay(nuclide: str) -> EnergyPerDecay:
    """Mean energy per decay of ``nuclide`` alone (no progeny), in MeV.

    Source: ICRP Publication 107.  E.g. Lu-177: electrons 0.1479 MeV,
    photons 0.0351 MeV; Y-90: electrons 0.9331 MeV.
    """
    n = normalize_nuclide(nuclide)
    em = _emissions(n)

    def s(keys: tuple[str, ...]) -> float:
        return float(sum(e * y for k in keys for e, y in em.get(k, [])))

    return EnergyPerDecay(
        electron_mev=s(_ELECTRON_TYPES),
        photon_mev=s(_PHOTON_TYPES),
        alpha_mev=s(("alpha",)),
        alpha_recoil_mev=s(("alpha recoil",)),
    )


def emission_lines(nuclide: str, radiation: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Discrete emissions of one ICRP-107 type: (energies in MeV, yields per decay).

    ``radiation`` is an ICRP-107 type as named by ``icrp107-database``: ``gamma``,
    ``X``, ``annihilation``, ``auger``, ``IE``, ``alpha``, ``alpha recoil``,
    ``beta-`` / ``beta+`` (mean energies of each branch).
    """
    em = _emissions(normalize_nuclide(nuclide))
    if radiation not in em:
        raise InvalidInputError(f"unknown ICRP-107 radiation type {radiation!r}")
    lines = np.asarray(em[radiation], dtype=float).reshape(-1, 2)
    return lines[:, 0].copy(), lines[:, 1].copy()


def beta_spectrum(nuclide: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """ICRP-107 beta spectrum: (kinetic energy in MeV, probability density per MeV).

    The density integrates to 1 over energy (per beta decay); multiply by the
    beta yield (sum of ``beta-``/``beta+`` yields) for per-decay numbers.
    Returns empty arrays for nuclides without beta decay.
    """
    em = _emissions(normalize_nuclide(nuclide))
    spec = np.asarray(em.get("b-spectra", []), dtype=float).reshape(-1, 2)
    return spec[:, 0].copy(), spec[:, 1].copy()


DECAY_CACHE_ENV = "MRTDOSE_DATA_CACHE"
"""Environment variable naming the folder of the decay-data cache (see :func:`decay_table`)."""


def _decay_cache_path() -> Path:
    import importlib.metadata

    root = os.environ.get(DECAY_CACHE_ENV)
    folder = Path(root) if root else Path.home() / ".cache" / "mrt-dosimetry" / "decay"
    version = importlib.metadata.version("radioactivedecay")
    return folder / f"radioactivedecay-{version}.json"


def _build_decay_table() -> dict[str, dict[str, Any]]:
    import radioactivedecay as rd

    table: dict[str, dict[str, Any]] = {}
    for name in rd.DEFAULTDATA.nuclides:
        nuc = rd.Nuclide(name)
        hl = float(nuc.half_life("h"))
        table[str(name)] = {
            "half_life_h": hl if np.isfinite(hl) else None,
            "progeny": [
                [str(d), float(b)]
                for d, b in zip(nuc.progeny(), nuc.branching_fractions(), strict=True)
            ],
        }
    return table


@lru_cache(maxsize=1)
def decay_table() -> dict[str, dict[str, Any]]:
    """Half-life (h; None when stable) and direct progeny with branching, per nuclide.

    The values are those of ``radioactivedecay``'s default dataset (ICRP-107).
    Importing that package costs 1.5-4 s (it loads matplotlib and sympy), paid by
    every command that needs one half-life; so the whole dataset (1 500 nuclides,
    0.05 s to read out) is written once to a cache file named by the installed
    package version (``$MRTDOSE_DATA_CACHE`` or ``~/.cache/mrt-dosimetry/decay``)
    and read from there afterwards.  A new package version makes a new file; a
    damaged or unreadable file is rebuilt; a cache folder that cannot be written
    only costs the import each time.
    """
    path = _decay_cache_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "Lu-177" in data:
            return data
    except (OSError, ValueError):
        pass
    table = _build_decay_table()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(table, sort_keys=True), encoding="utf-8")
        tmp.replace(path)  # atomic: a concurrent reader sees the old file or the new one
    except OSError:
        pass
    return table


def _decay_entry(n: str) -> dict[str, Any]:
    entry = decay_table().get(n)
    if entry is None:
        raise InvalidInputError(
            f"no half-life for {n}: not a nuclide of the radioactivedecay (ICRP-107) dataset"
        )
    return entry


def half_life_h(nuclide: str) -> float:
    """Physical half-life in hours (``radioactivedecay`` default dataset, ICRP-107).

    Stable nuclides give ``inf``.  Read through :func:`decay_table`.
    """
    hl = _decay_entry(normalize_nuclide(nuclide))["half_life_h"]
    return math.inf if hl is None else float(hl)


def decay_constant_per_h(nuclide: str) -> float:
    """Physical decay constant lambda = ln 2 / T_half in 1/h."""
    return float(np.log(2.0) / half_life_h(nuclide))


@dataclass(frozen=True)
class Progeny:
    nuclide: str
    branching_fraction: float
    half_life_h: float


def progeny(nuclide: str) -> list[Progeny]:
    """Direct radioactive daughters with branching fractions (``radioactivedecay``).

    Stable daughters are omitted.  Read through :func:`decay_table`.
    """
    n = normalize_nuclide(nuclide)
    out = []
    for d, bf in _decay_entry(n)["progeny"]:
        hl = decay_table().get(d, {}).get("half_life_h")
        if hl is not None and np.isfinite(float(hl)):
            out.append(Progeny(str(d), float(bf), float(hl)))
    return out


def available_nuclides() -> list[str]:
    """Every nuclide with ICRP-107 emission data."""
    return sorted(p.stem for p in _icrp107_dir().glob("*.json"))


@dataclass(frozen=True)
class ChainMember:
    """One nuclide of a decay chain and how often it decays per decay of the parent."""

    nuclide: str
    decays_per_parent_decay: float
    half_life_h: float


@lru_cache(maxsize=128)
def _chain(nuclide: str, include_progeny: bool) -> tuple[tuple[ChainMember, ...], tuple[str, ...]]:
    n = normalize_nuclide(nuclide)
    t_parent = half_life_h(n)
    members: dict[str, float] = {n: 1.0}
    half: dict[str, float] = {n: t_parent}
    excluded: list[str] = []
    if include_progeny:
        stack = [(n, 1.0)]
        while stack:
            cur, weight = stack.pop()
            for p in progeny(cur):
                w = weight * p.branching_fraction
                if p.half_life_h >= t_parent:
                    if p.nuclide not in excluded:
                        excluded.append(p.nuclide)
                    continue
                try:
                    name = normalize_nuclide(p.nuclide)
                except InvalidInputError:
                    if p.nuclide not in excluded:
                        excluded.append(p.nuclide)
                    continue
                members[name] = members.get(name, 0.0) + w
                half[name] = p.half_life_h
                stack.append((name, w))
    out = tuple(ChainMember(k, v, half[k]) for k, v in members.items())
    return out, tuple(excluded)


def decay_chain(nuclide: str, *, include_progeny: bool = True) -> list[ChainMember]:
    """The parent and the radioactive progeny counted with it, parent first.

    Rule (documented for every dose engine): a daughter whose half-life is
    shorter than the parent's is assumed to decay where the parent decayed, and
    over the whole time integral it decays ``product of branching fractions``
    times per parent decay (``radioactivedecay`` branching, ICRP-107).  This is
    exact for the time-integrated number of decays of every daughter of a
    parent that is followed to infinity, provided the daughters do not move
    (recoil and redistribution of free daughters, e.g. Bi-213 from Ac-225, are
    not modelled; Sgouros et al., J Nucl Med 2010;51:311 discuss the point).
    Daughters living at least as long as the parent (e.g. Xe-131m of I-131) are
    left out: they need their own kinetics; :func:`excluded_progeny` lists them.
    """
    return list(_chain(nuclide, include_progeny)[0])


def excluded_progeny(nuclide: str) -> list[str]:
    """Radioactive daughters that :func:`decay_chain` leaves out (longer-lived than the parent)."""
    return list(_chain(nuclide, True)[1])


def chain_energy_per_decay(nuclide: str, *, include_progeny: bool = True) -> EnergyPerDecay:
    """Mean energy per *parent* decay (MeV) of the parent and its short-lived progeny.

    Each member's ICRP-107 energies weighted by its decays per parent decay
    (:func:`decay_chain`).  E.g. Ac-225 with progeny: 27.5 MeV of alpha
    energy per decay (four alpha emissions: Ac-225, Fr-221, At-217, and Po-213
    or Bi-213).
    """
    totals = [0.0, 0.0, 0.0, 0.0]
    for m in decay_chain(nuclide, include_progeny=include_progeny):
        e = energy_per_decay(m.nuclide)
        for i, v in enumerate((e.electron_mev, e.photon_mev, e.alpha_mev, e.alpha_recoil_mev)):
            totals[i] += m.decays_per_parent_decay * v
    return EnergyPerDecay(*totals)


def chain_photon_lines(
    nuclide: str, *, include_progeny: bool = True
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Photon lines (gamma, X, annihilation) of the chain: (MeV, yield per parent decay)."""
    energies: list[NDArray[np.float64]] = []
    yields: list[NDArray[np.float64]] = []
    for m in decay_chain(nuclide, include_progeny=include_progeny):
        em = _emissions(m.nuclide)
        for kind in _PHOTON_TYPES:
            if kind in em:
                lines = np.asarray(em[kind], dtype=float).reshape(-1, 2)
                energies.append(lines[:, 0])
                yields.append(lines[:, 1] * m.decays_per_parent_decay)
    if not energies:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(energies), np.concatenate(yields)
