"""Image operations on :class:`~dosimetry_core.model.Volume` (resampling, ...)."""
