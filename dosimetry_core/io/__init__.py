"""Input/output: DICOM discovery, readers and writers (later: RTSTRUCT/SEG, NIfTI)."""
