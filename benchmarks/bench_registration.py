"""Time the rigid registration of the full-size demo patient (3 registrations to TP1).

Run: ``.venv/bin/python benchmarks/bench_registration.py [--threads 2]``.
Prints seconds per time point, the total, the accuracy against the known
misalignment (largest distance over body points, mm), and the ratio of the
total to a baseline measured in the same run: one plain ``resample`` of a CT
through the rigid matrix (linear, onto the reference grid).  Goal (issue 3):
4 time points (3 registrations) in under 20 s on 2 cores.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import SimpleITK as sitk

from dosimetry_core.imaging.registration import max_point_distance_mm, register_rigid
from dosimetry_core.imaging.resample import resample
from dosimetry_core.phantoms.demo import DemoConfig, generate_demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--small", action="store_true", help="small demo preset")
    args = parser.parse_args()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(args.threads)
    demo = generate_demo(DemoConfig.small() if args.small else DemoConfig())
    fixed = demo.time_points[0].ct
    pts = fixed.geometry.index_to_world(np.argwhere(fixed.array > -500)[::97])

    t0 = time.perf_counter()
    resample(demo.time_points[1].ct, fixed.geometry, transform=demo.time_points[1].matrix_ref_to_tp)
    baseline = time.perf_counter() - t0

    total = 0.0
    for tp in demo.time_points[1:]:
        t = time.perf_counter()
        res = register_rigid(fixed, tp.ct)
        dt = time.perf_counter() - t
        total += dt
        err = max_point_distance_mm(res.matrix_ref_to_tp, tp.matrix_ref_to_tp, pts)
        print(
            f"{tp.label}: {dt:6.2f} s  max body-point error {err:.2f} mm  "
            f"rotation {np.round(res.rotation_deg, 2).tolist()} deg  "
            f"translation {np.round(res.translation_mm, 2).tolist()} mm"
        )
    print(f"CT shape {fixed.shape}, {args.threads} threads")
    print(f"total registration {total:.2f} s (3 time points); baseline resample {baseline:.3f} s")
    print(f"ratio total / baseline: {total / baseline:.1f}")


if __name__ == "__main__":
    main()
