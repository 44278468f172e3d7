"""Moved to :mod:`app.common.error_display`; this name stays until no module imports it."""

from app.common.error_display import show_error, show_info

__all__ = ["show_error", "show_info"]
