"""Time the voxel S-value convolution with the real kernels on realistic grids; LED and statistics.

Run: ``.venv/bin/python benchmarks/bench_convolution.py [--grids demo 256]
[--nuclides Lu-177] [--voxel-mm 4.8] [--synthetic 11 21] [--workers 2] [--repeat 5] [--json]``.

Kernels: the project's own voxel S-value kernels (``dose.kernels.voxel_kernel``,
electrons + photons, soft tissue); Lu-177 at 4.8 mm is 85^3.  A kernel not yet in
the cache (``$MRTDOSE_KERNEL_CACHE`` or ``~/.cache/mrt-dosimetry/kernels``) is
computed once first (minutes for I-131 and Y-90 photons; that time is printed
but is no part of the convolution figures; ``benchmarks/bench_kernel.py`` measures
it).  ``--synthetic N`` adds a Gaussian N^3 kernel for comparison with older runs.

Grids: ``demo`` = the demo SPECT grid (120 x 128 x 128 at 4.8 mm), ``256`` = 256^3;
decays per voxel (float32): a body ellipsoid with eight hot spheres and 20 % noise.

Measured in the same run, interleaved, medians of ``--repeat``:

* ``convolve_dose`` (what the dose step calls: kernel FFT + decay-map FFT +
  product + inverse + crop + clamp),
* ``KernelConvolver.convolve`` with the kernel FFT done once beforehand (the
  reuse for several maps of one case),
* baseline A, the honest floor of ``convolve_dose``: a bare float32
  ``scipy.fft.rfftn`` of the decay map and of the kernel, product, ``irfftn``
  and the "same" crop, at ``next_fast_len`` sizes with the same ``workers`` --
  what a competent user writes by hand,
* baseline B, the floor of ``convolve``: the same without the kernel FFT,
* reference: ``scipy.signal.fftconvolve(mode="same")`` on the float32 arrays
  under ``scipy.fft.set_workers(workers)`` (the one-liner a user reaches for).

Ratios: ``convolve_dose`` / baseline A and ``convolve`` / baseline B (goal <= 1.3).
The largest difference from baseline A relative to the dose maximum is printed
(float32 round-off, ~1e-6).  Also timed (medians) on the largest grid with the
first kernel's dose: ``local_deposition_dose`` and ``dose_statistics`` (and the DVH)
with a body mask.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
import scipy.fft
import scipy.signal

from dosimetry_core.dose.convolution import KernelConvolver, convolve_dose
from dosimetry_core.dose.dvh import dose_statistics, dose_volume_histogram
from dosimetry_core.dose.led import local_deposition_dose

DEMO_SHAPE = (120, 128, 128)  # dosimetry_core.phantoms.demo.DemoConfig.spect_shape_zyx


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grids", nargs="+", default=["demo", "256"])
    parser.add_argument("--nuclides", nargs="+", default=["Lu-177"])
    parser.add_argument("--voxel-mm", type=float, default=4.8)
    parser.add_argument("--synthetic", type=int, nargs="*", default=[])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    return parser.parse_args()


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def make_tia(shape: tuple[int, int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Decays per voxel (Bq*s, float32): a body ellipsoid with hot spheres; body mask."""
    rng = np.random.default_rng(seed)
    z, y, x = (np.linspace(-1, 1, n, dtype=np.float32) for n in shape)
    z, y, x = np.meshgrid(z, y, x, indexing="ij", sparse=True)
    body = (x / 0.9) ** 2 + (y / 0.7) ** 2 + (z / 0.95) ** 2 <= 1.0
    tia = np.where(body, np.float32(1e9), np.float32(0.0)).astype(np.float32)
    for cx, cy, cz in rng.uniform(-0.5, 0.5, (8, 3)):
        hot = (x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 <= 0.01
        tia[np.broadcast_to(hot, tia.shape)] = 2e11
    tia *= rng.uniform(0.8, 1.2, tia.shape).astype(np.float32)
    return tia, np.broadcast_to(body, tia.shape).copy()


def gaussian_kernel(n: int, voxel_mm: float) -> np.ndarray:
    h = n // 2
    r = np.arange(-h, h + 1) * voxel_mm
    g = np.exp(-(r**2) / (2 * (0.25 * h * voxel_mm) ** 2))
    k = g[:, None, None] * g[None, :, None] * g[None, None, :]
    return (k / k.sum() * 1e-13).astype(np.float32)


def real_kernel(nuclide: str, voxel_mm: float) -> tuple[np.ndarray, float]:
    from dosimetry_core.dose.kernels import voxel_kernel

    t = time.perf_counter()
    k = voxel_kernel(nuclide, voxel_mm)
    return np.asarray(k.values_gy_per_bq_s, dtype=np.float32), time.perf_counter() - t


def bare_convolution(
    tia: np.ndarray, kernel: np.ndarray, workers: int, kfft: np.ndarray | None = None
) -> np.ndarray:
    """The hand-written float32 FFT convolution ("same" output), next_fast_len sizes."""
    padded = [
        scipy.fft.next_fast_len(n + k - 1, real=True)
        for n, k in zip(tia.shape, kernel.shape, strict=True)
    ]
    if kfft is None:
        kfft = scipy.fft.rfftn(kernel, s=padded, workers=workers)
    spec = scipy.fft.rfftn(tia, s=padded, workers=workers)
    spec *= kfft
    full = scipy.fft.irfftn(spec, s=padded, workers=workers, overwrite_x=True)
    h = [k // 2 for k in kernel.shape]
    return full[h[0] : h[0] + tia.shape[0], h[1] : h[1] + tia.shape[1], h[2] : h[2] + tia.shape[2]]


def bench_pair(tia: np.ndarray, kernel: np.ndarray, workers: int, repeat: int) -> dict:
    conv = KernelConvolver(kernel, tia.shape, workers=workers)  # type: ignore[arg-type]
    padded = [
        scipy.fft.next_fast_len(n + k - 1, real=True)
        for n, k in zip(tia.shape, kernel.shape, strict=True)
    ]
    kfft = scipy.fft.rfftn(kernel, s=padded, workers=workers)
    ours = convolve_dose(tia, kernel, workers=workers)  # warm-up and correctness
    ref = bare_convolution(tia, kernel, workers)
    rel_diff = float(np.max(np.abs(ours - ref)) / np.max(np.abs(ref)))
    conv.convolve(tia)
    del ours, ref
    runs: dict[str, list[float]] = {
        "convolve_dose": [],
        "convolve_reused": [],
        "bare_a": [],
        "bare_b": [],
        "fftconvolve": [],
    }
    for _ in range(repeat):  # interleaved: load from other processes hits all alike
        runs["bare_a"].append(timed(lambda: bare_convolution(tia, kernel, workers)))
        runs["convolve_dose"].append(timed(lambda: convolve_dose(tia, kernel, workers=workers)))
        runs["bare_b"].append(timed(lambda: bare_convolution(tia, kernel, workers, kfft)))
        runs["convolve_reused"].append(timed(lambda: conv.convolve(tia)))
        with scipy.fft.set_workers(workers):
            runs["fftconvolve"].append(
                timed(lambda: scipy.signal.fftconvolve(tia, kernel, mode="same"))
            )
    med = {k: statistics.median(v) for k, v in runs.items()}
    return {
        "padded_shape": list(conv.padded_shape),
        "convolve_dose_s": round(med["convolve_dose"], 3),
        "bare_rfftn_both_irfftn_s": round(med["bare_a"], 3),
        "ratio_convolve_dose_vs_bare": round(med["convolve_dose"] / med["bare_a"], 2),
        "convolve_reused_s": round(med["convolve_reused"], 3),
        "bare_kernel_fft_reused_s": round(med["bare_b"], 3),
        "ratio_convolve_vs_bare": round(med["convolve_reused"] / med["bare_b"], 2),
        "fftconvolve_same_s": round(med["fftconvolve"], 3),
        "max_rel_diff_vs_bare": rel_diff,
    }


def main() -> None:
    args = _parse()
    kernels: list[tuple[str, np.ndarray, float | None]] = []
    for nuclide in args.nuclides:
        k, get_s = real_kernel(nuclide, args.voxel_mm)
        kernels.append((f"{nuclide} {args.voxel_mm:g} mm", k, get_s))
    for n in args.synthetic:
        kernels.append((f"gaussian {n}^3", gaussian_kernel(n, args.voxel_mm), None))
    rows = []
    last: tuple[np.ndarray, np.ndarray] | None = None
    for grid in args.grids:
        shape = DEMO_SHAPE if grid == "demo" else (int(grid),) * 3
        tia, body = make_tia(shape, args.seed)  # type: ignore[arg-type]
        for name, kernel, get_s in kernels:
            row = {"grid": grid, "shape": list(shape), "kernel": name,
                   "kernel_shape": list(kernel.shape), "kernel_obtain_s": get_s}  # fmt: skip
            row.update(bench_pair(tia, kernel, args.workers, args.repeat))
            rows.append(row)
        last = (tia, body)
    assert last is not None
    tia, body = last
    spacing = (args.voxel_mm,) * 3

    def med(fn: Callable[[], object], n: int = args.repeat) -> float:
        return round(statistics.median(timed(fn) for _ in range(n)), 3)

    dose = local_deposition_dose(tia, spacing, 0.9331, 1.0)
    rho = np.where(body, np.float32(1.04), np.float32(0.0012))
    extra = {
        "grid": list(tia.shape),
        "mask_voxels": int(body.sum()),
        "led_s": med(lambda: local_deposition_dose(tia, spacing, 0.9331, 1.0)),
        "dose_statistics_s": med(
            lambda: dose_statistics(dose, body, spacing, thresholds_gy=(1.0, 10.0))
        ),
        "dose_statistics_mass_weighted_s": med(
            lambda: dose_statistics(
                dose, body, spacing, thresholds_gy=(1.0,), density_g_cm3=rho, mass_weighted=True
            ),
            3,
        ),
        "dose_volume_histogram_s": med(lambda: dose_volume_histogram(dose, body, spacing)),
    }
    out = {
        "workers": args.workers,
        "repeat": args.repeat,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "convolution": rows,
        "statistics": extra,
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(
        f"float32, {args.workers} FFT workers, medians of {args.repeat}, "
        f"load average {out['load_average']}"
    )
    print(
        f"{'grid':>13s} {'kernel':>16s} {'padded':>16s} {'dose s':>7s} {'bare A':>7s} "
        f"{'ratio':>6s} {'reuse s':>8s} {'bare B':>7s} {'ratio':>6s} {'fftconv':>8s} "
        f"{'rel diff':>8s}"
    )
    for r in rows:
        print(
            f"{'x'.join(map(str, r['shape'])):>13s} {r['kernel']:>16s} "
            f"{'x'.join(map(str, r['padded_shape'])):>16s} {r['convolve_dose_s']:7.3f} "
            f"{r['bare_rfftn_both_irfftn_s']:7.3f} {r['ratio_convolve_dose_vs_bare']:6.2f} "
            f"{r['convolve_reused_s']:8.3f} {r['bare_kernel_fft_reused_s']:7.3f} "
            f"{r['ratio_convolve_vs_bare']:6.2f} {r['fftconvolve_same_s']:8.3f} "
            f"{r['max_rel_diff_vs_bare']:8.1e}"
        )
    print("bare A: rfftn(decays) * rfftn(kernel) -> irfftn -> crop (scipy.fft, float32);")
    print("bare B: the same with the kernel spectrum reused; goal: ratios <= 1.3")
    for name, _, get_s in kernels:
        if get_s is not None:
            print(f"kernel {name}: obtained in {get_s:.2f} s (cache or computed)")
    e = extra
    print(
        f"on {e['grid']}: local_deposition_dose {e['led_s']:.3f} s; dose_statistics on "
        f"{e['mask_voxels']} mask voxels {e['dose_statistics_s']:.3f} s (mass-weighted "
        f"{e['dose_statistics_mass_weighted_s']:.3f} s); DVH {e['dose_volume_histogram_s']:.3f} s"
    )


if __name__ == "__main__":
    main()
