"""Per-patient dose reports: content, figures, PDF/CSV/JSON, versions and sign-off (issue 7).

* :mod:`~dosimetry_core.reporting.content` gathers everything the report states from
  the case (canonical, JSON-safe, with the manifest of its inputs);
* :mod:`~dosimetry_core.reporting.figures` draws the TACs, DVHs and fused slices (PNG);
* :mod:`~dosimetry_core.reporting.pdf` lays the report out (reportlab, A4);
* :mod:`~dosimetry_core.reporting.csv_export` writes the VOI numbers as CSV;
* :mod:`~dosimetry_core.reporting.population` places the patient in the population of
  earlier cases of the same protocol;
* :mod:`~dosimetry_core.reporting.records` keeps report versions and signatures in the
  store and verifies them (and a PDF or JSON file on its own).
"""
