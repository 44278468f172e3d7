"""Time the generation of a voxel S-value kernel for a new nuclide and voxel size.

Run: ``.venv/bin/python benchmarks/bench_kernel.py [--nuclide Lu-177 Y-90 I-131]
[--voxel-mm 4.42] [--grid 128] [--json]``.

For each nuclide, measured in the same run with an empty private cache:

* the whole kernel (electron transport of the chain's beta spectra and lines,
  photon Monte Carlo, integration over voxel pairs), as a user meets it the
  first time a nuclide and voxel size appear;
* loading the same kernel back from the disk cache (every later time);
* the baseline (a yardstick, not a competitor): one dose convolution
  (``convolve_dose``, 2 FFT workers) of a ``grid``^3 TIA map with that kernel,
  i.e. the work the kernel is made for; median of 3 after a warm-up.

Printed ratio = generation time / one convolution: how many dose maps' worth of
time a new kernel costs once.  No assertions on time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

import numpy as np

from dosimetry_core.dose.convolution import convolve_dose
from dosimetry_core.dose.kernels import voxel_kernel


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nuclide", nargs="+", default=["Lu-177", "Y-90", "I-131"])
    p.add_argument("--voxel-mm", type=float, default=4.42, help="a size not cached before")
    p.add_argument("--grid", type=int, default=128)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    rng = np.random.default_rng(0)
    decays = rng.random((args.grid,) * 3, dtype=np.float32) * 1e9
    # warm-up: compile or load the numba kernels so the first nuclide is not penalised
    with tempfile.TemporaryDirectory() as warm:
        os.environ["MRTDOSE_KERNEL_CACHE"] = warm
        t = time.perf_counter()
        voxel_kernel("Y-90", 8.0, components=("electron",), electron_histories=2000)
        first_call = time.perf_counter() - t
    rows = []
    for nuclide in args.nuclide:
        with tempfile.TemporaryDirectory() as cache:
            os.environ["MRTDOSE_KERNEL_CACHE"] = cache
            t = time.perf_counter()
            k = voxel_kernel(nuclide, args.voxel_mm)
            gen = time.perf_counter() - t
            t = time.perf_counter()
            voxel_kernel(nuclide, args.voxel_mm)
            load = time.perf_counter() - t
        convolve_dose(decays, k.values_gy_per_bq_s, workers=2)  # warm-up
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            convolve_dose(decays, k.values_gy_per_bq_s, workers=2)
            runs.append(time.perf_counter() - t)
        conv = statistics.median(runs)
        rows.append(
            {
                "nuclide": nuclide,
                "voxel_mm": args.voxel_mm,
                "kernel_shape_zyx": list(k.values_gy_per_bq_s.shape),
                "generation_s": gen,
                "cache_load_s": load,
                "convolution_s": conv,
                "ratio_generation_to_convolution": gen / conv,
                "absorbed_over_emitted": k.absorbed_energy_mev() / k.emitted_energy_mev(),
            }
        )
    if args.json:
        load_avg = [round(x, 2) for x in os.getloadavg()]
        print(
            json.dumps(
                {
                    "first_call_s": first_call,
                    "grid": args.grid,
                    "load_average": load_avg,
                    "rows": rows,
                }
            )
        )
        return
    print(f"numba first call (compile or cache load): {first_call:.2f} s")
    print(
        f"baseline: one convolution of a {args.grid}^3 grid with the kernel (median of 3); "
        f"load average {[round(x, 2) for x in os.getloadavg()]}"
    )
    for r in rows:
        print(
            f"{r['nuclide']:>7} {r['voxel_mm']:g} mm kernel {tuple(r['kernel_shape_zyx'])}: "
            f"new {r['generation_s']:.1f} s, from cache {r['cache_load_s'] * 1e3:.0f} ms, "
            f"convolution {r['convolution_s']:.2f} s -> new kernel = "
            f"{r['ratio_generation_to_convolution']:.1f} convolutions "
            f"(kernel keeps {100 * r['absorbed_over_emitted']:.1f} % of the emitted energy)"
        )


if __name__ == "__main__":
    main()
