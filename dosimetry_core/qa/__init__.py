"""Commissioning and QA: camera calibration factors, recovery coefficients, counters, records."""
