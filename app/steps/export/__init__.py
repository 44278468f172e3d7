"""Exports step: RT Dose, RTSTRUCT/SEG and the report as DICOM (optionally anonymised), and
the population range of each organ's Gy/GBq with this patient marked."""
