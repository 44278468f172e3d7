"""Tissue radiobiology parameters (alpha/beta, repair half-time) with their sources.

The table is ``resources/radiobiology/tissue_parameters.json``; every value has a
``source`` and a ``verification`` note (see that file).  Values differ between
publications, so the file is meant to be edited by the department, or a
user-edited copy is passed as ``path``.  The file is read on every call (it is
small), so an edit takes effect at once and tests need no cache handling.  It is
read through :func:`dosimetry_core.io.limits.read_text_limited`: a regular file of
at most :data:`TISSUE_TABLE_MAX_BYTES`, anything else (a device such as
``/dev/zero``, a pipe, a folder, a huge file) refused with
``InvalidInputError(field="tissue_table")``.

Tissue names are the ids of the protocols' ``tissue`` fields (``kidney``,
``red-marrow``, ``liver``, ``spleen``, ``salivary-glands``, ``lung``,
``thyroid``, ``tumour``, ``tumour-net``, ``tumour-prostate``); lookup ignores
case and treats ``_`` and spaces as ``-``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.io.limits import MIB, read_text_limited
from dosimetry_core.resources import resource_path

TISSUE_TABLE_PATH = resource_path("radiobiology", "tissue_parameters.json")
"""The shipped table."""

TISSUE_TABLE_MAX_BYTES = 1 * MIB
"""Largest tissue table read (the shipped one is a few kB)."""


@dataclass(frozen=True)
class TissueParameters:
    """Linear-quadratic parameters of one tissue.

    Attributes
    ----------
    name : str
        Tissue id (e.g. ``kidney``).
    alpha_beta_gy : float
        alpha/beta ratio (Gy).
    t_repair_h : float
        Repair half-time of sublethal damage (h), mono-exponential repair.
    source : str
        Publication(s) of both values (alpha/beta first).
    verification : str
        How the values were checked (or that they were not).
    label : str
        Human-readable name.
    """

    name: str
    alpha_beta_gy: float
    t_repair_h: float
    source: str
    verification: str
    label: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def normalize_tissue_name(name: str) -> str:
    """``"Red_Marrow"`` -> ``"red-marrow"``."""
    return "-".join(str(name).strip().lower().replace("_", " ").split())


def _load(path: str | Path | None) -> dict[str, Any]:
    p = Path(path) if path is not None else TISSUE_TABLE_PATH
    # a regular file of at most TISSUE_TABLE_MAX_BYTES: /dev/zero, a FIFO or a huge
    # file is refused in one line instead of blocking or filling the memory
    text = read_text_limited(p, TISSUE_TABLE_MAX_BYTES, "tissue_table")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            f"tissue parameter file {p} is not valid JSON: {exc}", field="tissue_table"
        ) from exc
    tissues = data.get("tissues") if isinstance(data, dict) else None
    if not isinstance(tissues, dict) or not tissues:
        raise InvalidInputError(f"tissue parameter file {p} has no 'tissues' table")
    return {normalize_tissue_name(k): v for k, v in tissues.items()}


def _value(tissue: str, entry: dict[str, Any], key: str, unit: str) -> tuple[float, str, str]:
    item = entry.get(key)
    if not isinstance(item, dict) or "value" not in item:
        raise InvalidInputError(f"tissue {tissue!r}: {key} is missing in the parameter file")
    try:
        v = float(item["value"])
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"tissue {tissue!r}: {key} = {item['value']!r} is not a number"
        ) from exc
    if not (math.isfinite(v) and v > 0):
        raise InvalidInputError(f"tissue {tissue!r}: {key} = {v:g} {unit} must be > 0 {unit}")
    source = str(item.get("source") or "").strip()
    if not source:
        raise InvalidInputError(f"tissue {tissue!r}: {key} has no source in the parameter file")
    return v, source, str(item.get("verification") or "not stated")


def list_tissues(path: str | Path | None = None) -> list[str]:
    """The tissue ids of the table (sorted)."""
    return sorted(_load(path))


def tissue_parameters(name: str, path: str | Path | None = None) -> TissueParameters:
    """alpha/beta and repair half-time of a tissue, with sources.

    Parameters
    ----------
    name : str
        Tissue id (see :func:`list_tissues`).
    path : str or Path, optional
        A user-edited copy of ``tissue_parameters.json``; default the shipped table.

    Raises
    ------
    InvalidInputError
        Unknown tissue (the message lists the known ones), or a value missing,
        non-positive or without source.
    """
    table = _load(path)
    key = normalize_tissue_name(name)
    if key not in table:
        raise InvalidInputError(
            f"unknown tissue {name!r}; known tissues: {', '.join(sorted(table))}"
        )
    entry = table[key]
    ab, ab_src, ab_ver = _value(key, entry, "alpha_beta_gy", "Gy")
    tr, tr_src, tr_ver = _value(key, entry, "t_repair_h", "h")
    source = f"alpha/beta: {ab_src}; T_repair: {tr_src}"
    verification = f"alpha/beta: {ab_ver}; T_repair: {tr_ver}"
    return TissueParameters(
        name=key,
        alpha_beta_gy=ab,
        t_repair_h=tr,
        source=source,
        verification=verification,
        label=str(entry.get("label") or key),
    )
