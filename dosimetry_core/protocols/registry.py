"""Therapy protocols as data: organs at risk, limits, methods, EANM levels.

Each protocol is one JSON file in ``resources/protocols/`` (a department can
add its own with ``MRTDOSE_PROTOCOLS`` pointing at another folder; files there
override the shipped ones of the same id).  Shape (see the shipped files)::

    {"format": "mrt-dosimetry protocol, version 1",
     "id": "lu177-dotatate", "name": "...", "therapy": "lu177|thyroid|mibg|sirt|generic",
     "nuclide": "Lu-177", "sources": ["..."],
     "eanm_levels": {"1": "...", "2": "...", "3": "..."},
     "expected_measurements": [{"kind": "spect", "times_h": [4, 24, 96, 168], "required": true}],
     "methods": {"multi-point": {"min_time_points": 3}, ...},
     "dose_method": "vsv-density",
     "organs": [{"id": "kidneys", "label": "Kidneys", "voi_patterns": ["^kidney"],
                 "tissue": "kidney", "role": "oar",
                 "limits": [{"quantity": "bed_gy", "value": 40, "scope": "cumulative",
                             "source": "..."}]}],
     "lesions": {"voi_kinds": ["GTV"], "voi_patterns": ["^tumou?r"], "tissue": "tumour-net"},
     "uncertainty_defaults": {"calibration_rel_sd": 0.05, ..., "source": "..."}}

``voi_patterns`` are case-insensitive regular expressions matched against VOI
names; every VOI that matches belongs to the organ (e.g. both kidneys).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.resources import resource_path
from dosimetry_core.store.repository import CaseRepository

FORMAT = "mrt-dosimetry protocol, version 1"
PROTOCOL_DIR = resource_path("protocols")
THERAPIES = ("lu177", "thyroid", "mibg", "sirt", "generic")
QUANTITIES = ("dose_gy", "bed_gy", "eqd2_gy")
SCOPES = ("cycle", "cumulative")


@dataclass(frozen=True)
class Limit:
    """A constraint on one organ: ``quantity`` (dose_gy, bed_gy, eqd2_gy) <= ``value``."""

    quantity: str
    value: float
    scope: str
    """``"cycle"`` (this administration) or ``"cumulative"`` (all cycles so far)."""
    source: str
    when: str = ""
    """Condition under which this limit applies instead (e.g. "risk factors")."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "quantity": self.quantity,
            "value": self.value,
            "scope": self.scope,
            "source": self.source,
            "when": self.when or None,
        }


@dataclass(frozen=True)
class OrganSpec:
    id: str
    label: str
    voi_patterns: tuple[str, ...]
    tissue: str | None
    role: str
    limits: tuple[Limit, ...] = ()

    def matches(self, voi_name: str) -> bool:
        return any(re.search(p, voi_name.strip(), re.IGNORECASE) for p in self.voi_patterns)


@dataclass(frozen=True)
class LesionSpec:
    voi_kinds: tuple[str, ...] = ()
    voi_patterns: tuple[str, ...] = ()
    tissue: str | None = None

    def matches(self, voi_name: str, voi_kind: str = "") -> bool:
        if voi_kind and voi_kind.upper() in {k.upper() for k in self.voi_kinds}:
            return True
        return any(re.search(p, voi_name.strip(), re.IGNORECASE) for p in self.voi_patterns)


@dataclass(frozen=True)
class Protocol:
    id: str
    name: str
    therapy: str
    nuclide: str | None
    sources: tuple[str, ...]
    eanm_levels: dict[str, str]
    expected_measurements: tuple[dict[str, Any], ...]
    methods: dict[str, dict[str, Any]]
    organs: tuple[OrganSpec, ...]
    lesions: LesionSpec
    dose_method: str = "vsv-density"
    uncertainty_defaults: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    path: str = ""

    def organ(self, organ_id: str) -> OrganSpec:
        for o in self.organs:
            if o.id == organ_id:
                return o
        raise InvalidInputError(
            f"protocol {self.id} has no organ {organ_id!r} "
            f"(organs: {', '.join(o.id for o in self.organs) or 'none'})"
        )

    def min_time_points(self, method: str) -> int:
        if method not in self.methods:
            raise InvalidInputError(
                f"protocol {self.id} has no method {method!r} (methods: {', '.join(self.methods)})"
            )
        return int(self.methods[method].get("min_time_points", 1))

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "therapy": self.therapy,
            "nuclide": self.nuclide,
            "methods": list(self.methods),
            "organs": [
                {
                    "id": o.id,
                    "label": o.label,
                    "role": o.role,
                    "tissue": o.tissue,
                    "limits": [lim.to_dict() for lim in o.limits],
                }
                for o in self.organs
            ],
            "eanm_levels": self.eanm_levels,
            "expected_measurements": list(self.expected_measurements),
            "sources": list(self.sources),
            "path": self.path,
        }


def read_json_table(path: str | Path, what: str) -> dict[str, Any]:
    """A JSON parameter table of ``resources/`` (``what`` names it in the error message)."""
    try:
        with open(path, encoding="utf-8") as f:
            data: dict[str, Any] = json.load(f)
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot read {what} {path}: {exc}") from exc
    return data


def _dirs() -> list[Path]:
    extra = os.environ.get("MRTDOSE_PROTOCOLS")
    return [PROTOCOL_DIR] + ([Path(extra)] if extra else [])


def _limit(d: dict[str, Any], where: str) -> Limit:
    q = d.get("quantity")
    if q not in QUANTITIES:
        raise InvalidInputError(f"{where}: limit quantity {q!r} not one of {', '.join(QUANTITIES)}")
    scope = d.get("scope", "cumulative")
    if scope not in SCOPES:
        raise InvalidInputError(f"{where}: limit scope {scope!r} not one of {', '.join(SCOPES)}")
    try:
        value = float(d["value"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"{where}: a limit needs a numeric 'value'") from exc
    if not value > 0:
        raise InvalidInputError(f"{where}: limit value must be positive, got {value}")
    if not d.get("source"):
        raise InvalidInputError(f"{where}: every limit needs its 'source'")
    return Limit(q, value, scope, str(d["source"]), str(d.get("when") or ""))


def parse_protocol(d: dict[str, Any], path: str = "") -> Protocol:
    """Validate a protocol dictionary (module docstring) and build a :class:`Protocol`."""
    where = path or str(d.get("id", "protocol"))
    if d.get("format") != FORMAT:
        raise InvalidInputError(f"{where}: not a protocol file (format must be {FORMAT!r})")
    for key in ("id", "name", "therapy"):
        if not d.get(key):
            raise InvalidInputError(f"{where}: missing {key!r}")
    if d["therapy"] not in THERAPIES:
        raise InvalidInputError(
            f"{where}: therapy {d['therapy']!r} not one of {', '.join(THERAPIES)}"
        )
    organs = []
    for o in d.get("organs", []):
        ow = f"{where}, organ {o.get('id')!r}"
        patterns = tuple(o.get("voi_patterns") or ())
        for p in patterns:
            try:
                re.compile(p)
            except re.error as exc:
                raise InvalidInputError(f"{ow}: bad VOI pattern {p!r} ({exc})") from exc
        organs.append(
            OrganSpec(
                id=str(o["id"]),
                label=str(o.get("label") or o["id"]),
                voi_patterns=patterns,
                tissue=o.get("tissue"),
                role=str(o.get("role", "oar")),
                limits=tuple(_limit(lim, ow) for lim in o.get("limits", [])),
            )
        )
    les = d.get("lesions") or {}
    return Protocol(
        id=str(d["id"]),
        name=str(d["name"]),
        therapy=str(d["therapy"]),
        nuclide=d.get("nuclide"),
        sources=tuple(d.get("sources") or ()),
        eanm_levels={str(k): str(v) for k, v in (d.get("eanm_levels") or {}).items()},
        expected_measurements=tuple(d.get("expected_measurements") or ()),
        methods=dict(d.get("methods") or {}),
        organs=tuple(organs),
        lesions=LesionSpec(
            tuple(les.get("voi_kinds") or ()),
            tuple(les.get("voi_patterns") or ()),
            les.get("tissue"),
        ),
        dose_method=str(d.get("dose_method") or "vsv-density"),
        uncertainty_defaults=dict(d.get("uncertainty_defaults") or {}),
        raw=d,
        path=path,
    )


def _is_protocol_file(f: Path) -> bool:
    """Protocol files declare the protocol format; other JSON (parameter tables) is skipped.

    A file that cannot be read is kept so that loading it reports the problem.
    """
    try:
        d = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    return not isinstance(d, dict) or d.get("format") == FORMAT or "therapy" in d


def _files() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for folder in _dirs():
        if folder.is_dir():
            for f in sorted(folder.glob("*.json")):
                if _is_protocol_file(f):
                    out[f.stem] = f
    return out


def load_protocol(protocol_id: str) -> Protocol:
    """The protocol ``protocol_id`` (file ``<id>.json``), validated."""
    files = _files()
    path = files.get(protocol_id)
    if path is None:
        raise InvalidInputError(
            f"unknown protocol {protocol_id!r}; available: {', '.join(sorted(files))}"
        )
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"protocol file {path} cannot be read: {exc}") from exc
    p = parse_protocol(d, str(path))
    if p.id != protocol_id:
        raise InvalidInputError(f"protocol file {path} declares id {p.id!r}, not {protocol_id!r}")
    return p


def list_protocols() -> list[Protocol]:
    """Every protocol available (shipped and ``MRTDOSE_PROTOCOLS``), sorted by id."""
    return [load_protocol(pid) for pid in sorted(_files())]


def checklist(case: Any, protocol: Protocol) -> list[dict[str, Any]]:
    """What the protocol expects and whether the case has it (walks the user through).

    Items: the administration, the imaging time points (against the expected times
    and the methods' minimum numbers), the non-imaging measurements of the
    protocol (blood, probe, dose-rate readings), and a VOI for every organ.
    Each item: ``item``, ``required``, ``present``, ``detail``.
    """
    items: list[dict[str, Any]] = []
    adm = case.first_administration
    items.append(
        {
            "item": "administration",
            "required": True,
            "present": adm is not None,
            "detail": (
                f"{adm.nuclide} {adm.activity_mbq:g} MBq"
                if adm is not None
                else "enter nuclide, activity and time"
            ),
        }
    )
    if protocol.nuclide and adm is not None and adm.nuclide != protocol.nuclide:
        items[-1]["present"] = False
        items[-1]["detail"] = f"{adm.nuclide} given, the protocol is for {protocol.nuclide}"
    n_tp = len(case.time_points)
    kinds = {str(getattr(m, "kind", "")) for m in getattr(case, "measurements", [])}
    for m in protocol.expected_measurements:
        kind = str(m.get("kind"))
        times = m.get("times_h") or []
        if kind in ("spect", "maa-spect", "y90-pet"):
            need = max([int(v.get("min_time_points", 1)) for v in protocol.methods.values()] or [1])
            present = n_tp >= 1
            detail = f"{n_tp} time point(s)"
            if times:
                detail += f"; expected at {', '.join(f'{t:g}' for t in times)} h"
            if "multi-point" in protocol.methods:
                need = protocol.min_time_points("multi-point")
                detail += f"; multi-point needs {need}"
                if n_tp < need and "single-time-point" in protocol.methods:
                    detail += ", single time point possible with 1"
        else:
            wanted = {"blood": "blood sample", "probe": "probe", "dose-rate": "dose rate"}.get(kind)
            present = wanted is not None and wanted in kinds
            detail = str(m.get("note") or kind)
            if times:
                detail += f" at {', '.join(f'{t:g}' for t in times)} h"
        items.append(
            {
                "item": f"measurement: {kind}",
                "required": bool(m.get("required")),
                "present": bool(present),
                "detail": detail,
            }
        )
    names = [v.name for v in getattr(case, "vois", [])]
    for o in protocol.organs:
        hits = [n for n in names if o.matches(n)]
        items.append(
            {
                "item": f"VOI: {o.label}",
                "required": o.role == "oar" and bool(o.limits),
                "present": bool(hits),
                "detail": ", ".join(hits) if hits else "contour it (or import RTSTRUCT)",
            }
        )
    return items


def assign_protocol(store: CaseRepository, case_id: str, protocol_id: str) -> list[dict[str, Any]]:
    """Set the case's protocol (validated) and return its :func:`checklist`."""
    protocol = load_protocol(protocol_id)
    case = store.load_case(case_id)
    case.protocol = protocol.id
    store.save_case(case, audit=store.audit_spec("set-protocol", protocol=protocol.id))
    return checklist(case, protocol)
