"""Absorbed-dose engines: local deposition, voxel S-value convolution, Monte
Carlo, organ level and sphere model, DVH and dose statistics.

Units: see :mod:`dosimetry_core.dose.units`.
"""
