"""CT number (HU) to mass density (g/cm^3): a piecewise-linear calibration.

Source
------
The default table is ``resources/density/hu_to_density_generic_bilinear.json``:
a **generic** bilinear model, not a measured scanner calibration.  The
soft-tissue branch is the straight line through dry air (-1000 HU,
0.001205 g/cm^3) and water (0 HU, 1.000 g/cm^3), both fixed by the definition of
the Hounsfield scale; the bone branch has an assumed typical slope of
0.00055 g/cm^3 per HU above 0 HU.  The file states this in its ``source`` field.
For a scanner-specific (stoichiometric) calibration see Schneider, Bortfeld &
Schlegel, Phys Med Biol 45:459-478 (2000); replace the points by your own.

File format (JSON, user-editable)
---------------------------------
.. code-block:: json

    {
      "format": "mrt-dosimetry HU-to-density calibration, version 1",
      "name": "My scanner 120 kVp",
      "description": "free text",
      "source": "where the points come from (phantom, date, physicist)",
      "kvp": 120,
      "points": [
        {"hu": -1000, "density_g_cm3": 0.001205},
        {"hu": 0, "density_g_cm3": 1.0},
        {"hu": 3071, "density_g_cm3": 2.689}
      ]
    }

At least two points; ``hu`` strictly increasing; densities non-negative and
non-decreasing.  Between points the density is interpolated linearly; outside
the first/last point it is held at the end value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dosimetry_core.errors import CalibrationError
from dosimetry_core.resources import resource_path

FORMAT = "mrt-dosimetry HU-to-density calibration, version 1"

DEFAULT_CALIBRATION_PATH = resource_path("density", "hu_to_density_generic_bilinear.json")


@dataclass(frozen=True)
class HuDensityCalibration:
    """Piecewise-linear HU to density table.

    Parameters
    ----------
    points_hu
        CT numbers of the calibration points (strictly increasing).
    points_density_g_cm3
        Mass densities at those points (g/cm^3, non-negative, non-decreasing).
    name, source, description
        Shown to the user and recorded with results.
    kvp
        Tube voltage the calibration belongs to, when known.
    """

    points_hu: tuple[float, ...]
    points_density_g_cm3: tuple[float, ...]
    name: str = ""
    source: str = ""
    description: str = ""
    kvp: float | None = None

    def __post_init__(self) -> None:
        hu = np.asarray(self.points_hu, dtype=float).reshape(-1)
        rho = np.asarray(self.points_density_g_cm3, dtype=float).reshape(-1)
        if hu.size != rho.size:
            raise CalibrationError(
                f"HU-density calibration has {hu.size} HU values but {rho.size} densities"
            )
        if hu.size < 2:
            raise CalibrationError("a HU-density calibration needs at least two points")
        if not (np.all(np.isfinite(hu)) and np.all(np.isfinite(rho))):
            raise CalibrationError("HU-density calibration points must be finite numbers")
        if np.any(np.diff(hu) <= 0):
            raise CalibrationError("HU values of the calibration points must increase strictly")
        if np.any(rho < 0):
            raise CalibrationError("densities of the calibration points must be >= 0 g/cm3")
        if np.any(np.diff(rho) < 0):
            raise CalibrationError("densities of the calibration points must not decrease with HU")
        object.__setattr__(self, "points_hu", tuple(float(v) for v in hu))
        object.__setattr__(self, "points_density_g_cm3", tuple(float(v) for v in rho))

    # ----------------------------------------------------------------- use
    def density_g_cm3(self, hu: ArrayLike) -> NDArray[np.float64]:
        """Density (g/cm^3) for CT numbers ``hu`` (any shape); clamped outside the table."""
        values = np.asarray(hu, dtype=np.float64)
        return np.interp(values, self.points_hu, self.points_density_g_cm3)

    # ---------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "kvp": self.kvp,
            "points": [
                {"hu": h, "density_g_cm3": r}
                for h, r in zip(self.points_hu, self.points_density_g_cm3, strict=True)
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HuDensityCalibration:
        try:
            points = data["points"]
            hu = tuple(float(p["hu"]) for p in points)
            rho = tuple(float(p["density_g_cm3"]) for p in points)
        except (KeyError, TypeError, ValueError) as exc:
            raise CalibrationError(
                "a HU-density calibration needs 'points': a list of "
                "{'hu': number, 'density_g_cm3': number}"
            ) from exc
        kvp = data.get("kvp")
        return cls(
            points_hu=hu,
            points_density_g_cm3=rho,
            name=str(data.get("name", "")),
            source=str(data.get("source", "")),
            description=str(data.get("description", "")),
            kvp=None if kvp is None else float(kvp),
        )

    @classmethod
    def load(cls, path: str | Path | None = None) -> HuDensityCalibration:
        """Read a calibration file; ``None`` loads the generic default table."""
        p = DEFAULT_CALIBRATION_PATH if path is None else Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CalibrationError(f"{p}: HU-density calibration file not found") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise CalibrationError(f"{p}: cannot read HU-density calibration: {exc}") from exc
        if not isinstance(data, dict):
            raise CalibrationError(f"{p}: a HU-density calibration must be a JSON object")
        try:
            return cls.from_dict(data)
        except CalibrationError as exc:
            raise CalibrationError(f"{p}: {exc}") from exc

    def save(self, path: str | Path) -> None:
        """Write the calibration in the documented JSON format."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
