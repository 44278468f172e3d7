"""Computational core of the MRT dosimetry workstation.

Pure Python/NumPy: no Qt, no VTK (enforced by import-linter, see pyproject.toml).
"""

__version__ = "0.1.0"
