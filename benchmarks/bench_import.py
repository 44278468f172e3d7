"""Benchmark: import of the demo patient (4 SPECT + 4 CT series).

Prints wall time and peak resident memory of the import (run in a child
process so the peak belongs to the import alone), and the ratio against a
baseline measured in the same run: decoding the same DICOM files with bare
``pydicom.dcmread(...).pixel_array`` (no sorting, geometry, conversion or store).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD_IMPORT = r"""
import json, sys, time
def hwm_mb():
    # VmHWM: peak RSS of this address space
    # (ru_maxrss would include the parent's peak across fork/exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
from dosimetry_core.pipeline.importing import import_directory
from dosimetry_core.store import CaseStore
t0 = time.perf_counter()
store = CaseStore(sys.argv[2])
rep = import_directory(store, sys.argv[1])
dt = time.perf_counter() - t0
print(json.dumps({"seconds": dt, "peak_rss_mb": hwm_mb(),
                  "time_points": rep.cases[0].time_points}))
"""

CHILD_BASELINE = r"""
import json, sys, time
def hwm_mb():
    # VmHWM: peak RSS of this address space
    # (ru_maxrss would include the parent's peak across fork/exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
from pathlib import Path
import pydicom
files = [p for p in Path(sys.argv[1]).rglob("*.dcm")]
t0 = time.perf_counter()
n = 0
for p in files:
    ds = pydicom.dcmread(p)
    if "PixelData" in ds:
        n += ds.pixel_array.size
dt = time.perf_counter() - t0
print(json.dumps({"seconds": dt, "peak_rss_mb": hwm_mb(),
                  "files": len(files), "voxels": n}))
"""


def _child(code: str, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--style", default="siemens-bqml")
    args = parser.parse_args()
    from dosimetry_core.phantoms.demo import write_demo_dicom

    with tempfile.TemporaryDirectory() as tmp:
        dicom = Path(tmp) / "dicom"
        t0 = time.perf_counter()
        write_demo_dicom(dicom, style=args.style)
        gen_s = time.perf_counter() - t0
        size_mb = sum(p.stat().st_size for p in dicom.rglob("*") if p.is_file()) / 1e6
        baseline = _child(CHILD_BASELINE, str(dicom))
        imp = _child(CHILD_IMPORT, str(dicom), str(Path(tmp) / "store"))
    result = {
        "demo_generation_s": round(gen_s, 2),
        "dicom_size_mb": round(size_mb, 1),
        "dicom_files": baseline["files"],
        "baseline_pydicom_decode_s": round(baseline["seconds"], 2),
        "import_s": round(imp["seconds"], 2),
        "import_peak_rss_mb": round(imp["peak_rss_mb"], 0),
        "baseline_peak_rss_mb": round(baseline["peak_rss_mb"], 0),
        "ratio_import_vs_baseline": round(imp["seconds"] / baseline["seconds"], 2),
        "time_points": imp["time_points"],
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            print(f"{k:>28}: {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
