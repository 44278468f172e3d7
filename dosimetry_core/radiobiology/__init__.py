"""Radiobiology: BED and EQD2 for radionuclide dose delivery (PHYSICS.md section 6)."""
