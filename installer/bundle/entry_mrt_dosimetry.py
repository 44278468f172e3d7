"""Frozen entry point of ``mrt-dosimetry`` (the GUI): ``app.main:main``.

Used by ``installer/mrt-dosimetry.spec`` only; ``pip install`` makes the same command
from ``[project.gui-scripts]``.
"""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from app.main import main

    sys.exit(main())
