"""The report's numbers per organ and per VOI as CSV (units in the column names).

One row per organ (``level = organ``, mass-weighted over its VOIs) and per VOI
(``level = voi``).  Numbers are written with Python's shortest round-trip repr, so
:func:`read_numbers_csv` gives back exactly the values of the report's JSON; an
empty cell is a missing value.
"""

from __future__ import annotations

import csv
import io
from typing import Any

COLUMNS = (
    "level",
    "name",
    "role",
    "organ_id",
    "review_flag",
    "mass_g",
    "tia_mbq_h",
    "dose_gy",
    "dose_sd_gy",
    "bed_gy",
    "eqd2_gy",
    "sphere_model_dose_gy",
    "dose_per_activity_gy_per_gbq",
    "tissue",
    "model",
    "method",
)
NUMERIC = frozenset(
    {
        "mass_g",
        "tia_mbq_h",
        "dose_gy",
        "dose_sd_gy",
        "bed_gy",
        "eqd2_gy",
        "sphere_model_dose_gy",
        "dose_per_activity_gy_per_gbq",
    }
)


def _cell(x: Any) -> str:
    if x is None:
        return ""
    if isinstance(x, float):
        return repr(x)
    return str(x)


def numbers_csv(content: dict[str, Any]) -> str:
    """CSV text of the organ and VOI numbers of a report's content (module docstring)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for organ_id, o in (content.get("organs") or {}).items():
        flags = "; ".join(sorted(set(o.get("review_flags") or [])))
        row = {**o, "level": "organ", "name": o.get("label") or organ_id, "role": "oar"}
        row.update(organ_id=organ_id, review_flag=flags)
        w.writerow([_cell(row.get(c)) for c in COLUMNS])
    for v in content.get("vois") or []:
        row = {**v, "level": "voi", "name": v.get("voi_name")}
        w.writerow([_cell(row.get(c)) for c in COLUMNS])
    return buf.getvalue()


def read_numbers_csv(text: str) -> list[dict[str, Any]]:
    """Rows of :func:`numbers_csv` with numbers as float and empty cells as None."""
    out = []
    for r in csv.DictReader(io.StringIO(text)):
        out.append(
            {k: (None if v == "" else float(v)) if k in NUMERIC else v for k, v in r.items()}
        )
    return out
