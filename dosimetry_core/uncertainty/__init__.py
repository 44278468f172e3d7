"""Uncertainty propagation to absorbed dose (EANM, Gear et al. 2018; PHYSICS.md section 7)."""
