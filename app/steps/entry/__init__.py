"""Data entry step: administrations, scan-time corrections and measurements (technologist)."""
