"""The QA and commissioning step: camera calibration, recovery curves, QA records."""
