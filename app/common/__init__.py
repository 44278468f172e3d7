"""Shared widgets of the workstation: error display, log-in, unit-aware inputs, case list."""
