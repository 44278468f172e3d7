"""Synthetic phantoms with known ground truth (demo patient, QC phantoms)."""
