"""``mrtdose import DICOM_DIR``: import a DICOM folder tree into cases.

Exit status: 0 when something was imported (or the store already held it), 1 when
nothing could be imported (see :mod:`dosimetry_core.cli.main`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from dosimetry_core.cli.main import EXIT_INPUT, EXIT_OK, TextProgress, _emit, _open_store


def cmd_import(args: argparse.Namespace) -> int:
    from dosimetry_core.pipeline.importing import import_directory

    store = _open_store(args)
    protocol = None
    if args.protocol:
        from dosimetry_core.protocols.registry import load_protocol

        protocol = load_protocol(args.protocol)  # refuse an unknown id before importing
    bar = TextProgress(not args.json)
    try:
        result = import_directory(
            store,
            args.dicom_dir,
            calibration_cps_per_mbq=args.calibration_cps_per_mbq,
            progress=bar,
        )
    finally:
        bar.done()
    data = result.to_dict()
    if protocol is not None:
        from dosimetry_core.protocols.registry import assign_protocol

        checklists = {}
        for c in result.cases:
            checklists[c.case_id] = assign_protocol(store, c.case_id, protocol.id)
        data["protocol"] = protocol.id
        data["checklists"] = checklists
    lines = result.summary_lines()
    for cid, items in (data.get("checklists") or {}).items():
        lines.append(f"case {cid}, protocol {data['protocol']}:")
        lines += [f"  [{'x' if i['present'] else ' '}] {i['item']}: {i['detail']}" for i in items]
    _emit(args, data, "\n".join(lines))
    if not result.cases and not result.skipped and result.n_files_seen == 0:
        sys.stderr.write(f"mrtdose: no files found under {args.dicom_dir}\n")
        return EXIT_INPUT
    return EXIT_OK


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("import", parents=[common], help="import a DICOM folder tree into cases")
    p.add_argument("dicom_dir", metavar="DICOM_DIR")
    p.add_argument(
        "--calibration-cps-per-mbq",
        type=float,
        default=None,
        metavar="X",
        help="camera calibration factor (cps/MBq) for count-based NM series",
    )
    p.add_argument(
        "--protocol",
        default=None,
        help="therapy protocol of the imported case(s) (mrtdose protocols lists them)",
    )
    p.set_defaults(func=cmd_import)
