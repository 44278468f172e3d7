"""A synthetic cohort of demo-like patients for ``mrtdose batch`` tests and benchmarks.

Every case is the demo patient (:mod:`dosimetry_core.phantoms.demo`) with its own
patient ID, seed (so its DICOM UIDs differ), administered activity, kinetics
(uptake fractions and effective half-lives scaled) and CT grid (so the organ masses
measured from the voxelised outlines differ; the analytic anatomy is the same).
A patient may have several cycles (administrations 8 weeks apart, one study folder
each).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from dosimetry_core.phantoms.demo import DemoConfig, write_demo_dicom

__all__ = ["cohort_config", "write_demo_cohort"]

CYCLE_INTERVAL = timedelta(weeks=8)

_CT_SPACING_XY_MM = (6.4, 6.0, 6.8, 5.6)
_KINETICS_SCALE = (1.0, 0.8, 1.2, 0.9, 1.1, 0.85, 1.15, 0.95)
_HALF_LIFE_SCALE = (1.0, 1.15, 0.85, 1.1, 0.9, 1.2, 0.8, 1.05)


def cohort_config(patient: int, cycle: int = 1, *, small: bool = True) -> DemoConfig:
    """The demo configuration of ``patient`` (0-based) at ``cycle`` (1-based).

    Uptake fractions x ``_KINETICS_SCALE[patient]``, effective half-lives x
    ``_HALF_LIFE_SCALE[patient]`` (kept below the Lu-177 physical half-life), the
    administered activity 7400 MBq minus 400 MBq per patient, and a later cycle
    slightly faster washout (x 0.95 per cycle).
    """
    base = DemoConfig.small() if small else DemoConfig()
    k = _KINETICS_SCALE[patient % len(_KINETICS_SCALE)]
    h = _HALF_LIFE_SCALE[patient % len(_HALF_LIFE_SCALE)] * 0.95 ** (cycle - 1)
    uptake = tuple(
        replace(
            u,
            uptake_fraction=u.uptake_fraction * k,
            effective_half_life_h=min(u.effective_half_life_h * h, 150.0),
        )
        for u in base.uptake
    )
    config = replace(
        base,
        seed=base.seed + 1000 * patient + cycle,
        noise=False,
        patient_id=f"MRT-COHORT-{patient + 1:03d}",
        patient_name=f"Cohort^Patient{patient + 1}",
        injected_activity_mbq=7400.0 - 400.0 * (patient % 8),
        injection_datetime=base.injection_datetime + CYCLE_INTERVAL * (cycle - 1),
        uptake=uptake,
    )
    if small:
        s = _CT_SPACING_XY_MM[patient % len(_CT_SPACING_XY_MM)]
        fov_mm = base.ct_shape_zyx[2] * base.ct_spacing_mm[0]
        n = int(round(fov_mm / s))
        config = replace(
            config,
            ct_spacing_mm=(s, s, base.ct_spacing_mm[2]),
            ct_shape_zyx=(base.ct_shape_zyx[0], n, n),
        )
    return config


def write_demo_cohort(
    out_dir: str | Path, cases: list[tuple[int, int]], *, small: bool = True
) -> list[Path]:
    """Write one study folder per ``(patient, cycle)`` under ``out_dir``; their paths.

    Folder names are ``p<patient+1>_c<cycle>``.
    """
    out = Path(out_dir)
    paths = []
    for patient, cycle in cases:
        d = out / f"p{patient + 1:03d}_c{cycle}"
        write_demo_dicom(d, cohort_config(patient, cycle, small=small))
        paths.append(d)
    return paths
