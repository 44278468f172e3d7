"""Frozen entry point of ``mrtdose`` (the CLI): ``dosimetry_core.cli.main:main``.

Used by ``installer/mrt-dosimetry.spec`` only; ``pip install`` makes the same command
from ``[project.scripts]``.
"""

import multiprocessing
import sys

if __name__ == "__main__":
    # Dask's local cluster starts worker processes: in a frozen executable a child
    # process re-runs this program, which must hand over to multiprocessing first.
    multiprocessing.freeze_support()
    from dosimetry_core.cli.main import main

    sys.exit(main())
