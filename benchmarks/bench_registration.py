"""Time the rigid registration of the full-size demo patient (3 registrations to TP1).

Run: ``.venv/bin/python benchmarks/bench_registration.py [--threads 2] [--repeat 3]
[--small] [--json]``.

Measured, per time point (TP2..TP4 registered to TP1) and in total, medians of
``--repeat`` runs (>= 3), interleaved so that load from other processes hits all
alike:

* **ours**: :func:`dosimetry_core.imaging.registration.register_rigid` exactly as
  ``mrtdose register`` calls it (Euler3D, Mattes MI 50 bins, 5 % random sampling
  (at least 100,000 voxels) of the body mask, regular-step gradient descent,
  shrink 4/2/1, smoothing 2/1/1 voxels, geometry initialiser, then the quality
  check: two resamples and Dice/NMI figures); and the same with
  ``compute_quality=False`` (the optimisation alone).
* **baseline (like for like)**: the plain SimpleITK recipe a competent user writes
  from the SimpleITK registration examples (``ImageRegistrationMethod``, notebook
  "60_Registration_Introduction"): ``CenteredTransformInitializer(fixed, moving,
  Euler3DTransform(), GEOMETRY)`` (the stock examples' choice), Mattes MI with the
  same bins and the same sampling percentage (RANDOM, fixed seed), linear
  interpolator, ``SetOptimizerAsRegularStepGradientDescent`` with the same step,
  minimum step, iterations and relaxation, scales from physical shift, the same
  shrink factors and smoothing sigmas (voxels), the same number of threads; no
  metric mask, no callbacks, no quality check.  Its images are converted to
  float32 SimpleITK images before the clock starts (a user reading DICOM with
  SimpleITK has them already), so the baseline is never charged for our
  conversions.
* **baseline with the same mask**: the same recipe plus ``SetMetricFixedMask`` of
  the fixed body (``BinaryThreshold`` > -500 HU, ``BinaryDilate`` 10 mm, built
  inside the timed call) and ``MetricUseMovingImageGradientFilterOff()`` (the
  moving gradient by central differences at the sample points, as ours), i.e.
  the same sampling region and the same work per iteration as ours.  The plain
  recipe samples the air around the patient too (more valid samples per
  iteration) and, SimpleITK's default, filters the whole moving CT into a
  gradient image at every pyramid level; the masked one shows what our wrapper
  itself costs (conversions, callbacks, quality check).
* **yardstick**: one plain ``resample`` of a time-point CT through its rigid
  matrix onto the reference grid (linear): a unit of work, not a competitor.

Accuracy of every result: the largest distance (mm) over body points of TP1
(every 97th voxel above -500 HU) between the found and the known misalignment,
so that nobody wins by doing less.  Ratios: each total / the plain baseline, /
the masked baseline and / the yardstick.  Goal (issue 3): 4 time points
(3 registrations) in under 20 s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import SimpleITK as sitk

from dosimetry_core.imaging._sitk import to_sitk
from dosimetry_core.imaging.registration import (
    DEFAULT_SEED,
    max_point_distance_mm,
    register_rigid,
    transform_to_matrix,
)
from dosimetry_core.imaging.resample import resample
from dosimetry_core.phantoms.demo import DemoConfig, generate_demo

GOAL_S = 20.0
# register_rigid's defaults, repeated here for the stock recipe (same metric and optimiser)
BINS = 50
SAMPLING_FRACTION = 0.05
MIN_SAMPLES = 100_000
SHRINK = [4, 2, 1]
SIGMAS_VOX = [2.0, 1.0, 1.0]
STEP_MM, MIN_STEP_MM, ITERATIONS, RELAXATION = 2.0, 0.01, 200, 0.7

Result = tuple[float, np.ndarray]  # seconds, 4x4 fixed-to-moving matrix


def stock_sitk_rigid(
    fixed: sitk.Image, moving: sitk.Image, threads: int, body_mask: bool = False
) -> np.ndarray:
    """The plain SimpleITK rigid registration (stock example recipe); 4x4 matrix.

    ``body_mask``: also restrict the metric to the fixed body (HU > -500, dilated
    by 10 mm), built inside the timed call with two stock filters, and take the
    moving gradient at the sample points as ours does -- the same sampling region
    and gradient, hence the same work per iteration.
    """
    initial = sitk.CenteredTransformInitializer(
        fixed, moving, sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.GEOMETRY
    )
    n_vox = int(np.prod(fixed.GetSize()))
    reg = sitk.ImageRegistrationMethod()
    reg.SetNumberOfThreads(threads)
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=BINS)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(
        min(1.0, max(SAMPLING_FRACTION, MIN_SAMPLES / n_vox)), DEFAULT_SEED
    )
    if body_mask:
        body = sitk.BinaryThreshold(fixed, lowerThreshold=-500.0, upperThreshold=1e9)
        radius = [max(1, round(10.0 / sp)) for sp in fixed.GetSpacing()]
        reg.SetMetricFixedMask(sitk.BinaryDilate(body, radius))
        reg.MetricUseMovingImageGradientFilterOff()
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=STEP_MM,
        minStep=MIN_STEP_MM,
        numberOfIterations=ITERATIONS,
        relaxationFactor=RELAXATION,
    )
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel(SHRINK)
    reg.SetSmoothingSigmasPerLevel(SIGMAS_VOX)
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    reg.SetInitialTransform(initial, inPlace=False)
    final = reg.Execute(fixed, moving)
    return transform_to_matrix(final)


def _timed(fn: Callable[[], np.ndarray]) -> Result:
    t = time.perf_counter()
    m = fn()
    return time.perf_counter() - t, m


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (>= 3)")
    parser.add_argument("--small", action="store_true", help="small demo preset")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    repeat = max(3, args.repeat)
    threads = int(args.threads)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    demo = generate_demo(DemoConfig.small() if args.small else DemoConfig())
    fixed = demo.time_points[0].ct
    pts = fixed.geometry.index_to_world(np.argwhere(fixed.array > -500)[::97])
    moving_tps = demo.time_points[1:]
    fixed_img = to_sitk(fixed, np.float32)
    moving_imgs = [to_sitk(tp.ct, np.float32) for tp in moving_tps]

    variants: dict[str, Callable[[int], np.ndarray]] = {
        "ours": lambda i: (
            register_rigid(fixed, moving_tps[i].ct, n_threads=threads).matrix_ref_to_tp
        ),
        "ours_no_quality": lambda i: (
            register_rigid(
                fixed, moving_tps[i].ct, n_threads=threads, compute_quality=False
            ).matrix_ref_to_tp
        ),
        "baseline_stock_sitk": lambda i: stock_sitk_rigid(fixed_img, moving_imgs[i], threads),
        "baseline_stock_masked": lambda i: stock_sitk_rigid(
            fixed_img, moving_imgs[i], threads, body_mask=True
        ),
    }
    times: dict[str, list[list[float]]] = {v: [[] for _ in moving_tps] for v in variants}
    errors: dict[str, list[list[float]]] = {v: [[] for _ in moving_tps] for v in variants}
    yard: list[float] = []
    tp2 = moving_tps[0]
    resample(tp2.ct, fixed.geometry, transform=tp2.matrix_ref_to_tp)  # warm-up
    loads = [os.getloadavg()[0]]
    for r in range(repeat):  # interleaved; the order of the variants rotates per run
        t = time.perf_counter()
        resample(tp2.ct, fixed.geometry, transform=tp2.matrix_ref_to_tp)
        yard.append(time.perf_counter() - t)
        names = list(variants)
        names = names[r % len(names) :] + names[: r % len(names)]
        for i, tp in enumerate(moving_tps):
            for name in names:
                dt, m = _timed(lambda name=name, i=i: variants[name](i))
                times[name][i].append(dt)
                errors[name][i].append(max_point_distance_mm(m, tp.matrix_ref_to_tp, pts))
        loads.append(os.getloadavg()[0])

    yard_med = statistics.median(yard)
    rows: dict[str, Any] = {}
    for name in variants:
        per_tp = {
            tp.label: {
                "median_s": round(statistics.median(times[name][i]), 3),
                "min_s": round(min(times[name][i]), 3),
                "max_error_mm": round(max(errors[name][i]), 3),
            }
            for i, tp in enumerate(moving_tps)
        }
        totals = [sum(times[name][i][r] for i in range(len(moving_tps))) for r in range(repeat)]
        rows[name] = {
            "per_time_point": per_tp,
            "total_median_s": round(statistics.median(totals), 3),
            "total_min_s": round(min(totals), 3),
            "max_error_mm": round(max(max(e) for e in errors[name]), 3),
        }
    base = rows["baseline_stock_sitk"]["total_median_s"]
    masked = rows["baseline_stock_masked"]["total_median_s"]
    for name in variants:
        tot = rows[name]["total_median_s"]
        rows[name]["ratio_vs_baseline"] = round(tot / base, 2)
        rows[name]["ratio_vs_masked_baseline"] = round(tot / masked, 2)
        rows[name]["ratio_vs_yardstick"] = round(tot / yard_med, 1)
    result: dict[str, Any] = {
        "ct_shape_zyx": list(fixed.shape),
        "threads": threads,
        "repeat": repeat,
        "yardstick_resample_s": round(yard_med, 4),
        "goal_total_s": GOAL_S,
        "variants": rows,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "load_1min_during_run": [round(x, 2) for x in loads],
        "cpu_count": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"CT {fixed.shape} (z, y, x), {threads} threads, medians of {repeat} interleaved runs; "
        f"load average {result['load_average']} (1-min during run {result['load_1min_during_run']})"
    )
    labels = [tp.label for tp in moving_tps]
    head = "".join(f" {lab + ' s':>10s} {'err mm':>7s}" for lab in labels)
    print(f"{'variant':<22s}{head} {'total s':>8s} {'vs base':>8s} {'vs mask':>8s} {'vs yard':>8s}")
    for name, row in rows.items():
        cells = "".join(
            f" {row['per_time_point'][lab]['median_s']:10.2f} "
            f"{row['per_time_point'][lab]['max_error_mm']:7.2f}"
            for lab in labels
        )
        print(
            f"{name:<22s}{cells} {row['total_median_s']:8.2f} "
            f"{row['ratio_vs_baseline']:8.2f} {row['ratio_vs_masked_baseline']:8.2f} "
            f"{row['ratio_vs_yardstick']:8.1f}"
        )
    met = "met" if rows["ours"]["total_median_s"] < GOAL_S else "not met"
    print(
        f"yardstick: one linear resample of a CT onto the reference grid {yard_med:.3f} s; "
        f"goal: total < {GOAL_S:g} s ({met})"
    )
    for key, what in (
        ("ratio_vs_baseline", "the stock SimpleITK recipe"),
        ("ratio_vs_masked_baseline", "the stock recipe with the same body mask"),
    ):
        ratio = rows["ours"][key]
        verdict = "SLOWER than" if ratio > 1.0 else "as fast as or faster than"
        print(f"ours (as mrtdose register runs it) is {verdict} {what}: {ratio:.2f}x")


if __name__ == "__main__":
    main()
