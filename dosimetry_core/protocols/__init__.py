"""Therapy protocols: what each therapy measures, computes and checks (PHYSICS.md section 5).

One module per therapy (``lu177``, ``thyroid``, ``mibg``, ``marrow``, ``sirt``)
plus :mod:`dosimetry_core.protocols.registry`, which reads the protocol data
files in ``resources/protocols/``.
"""
