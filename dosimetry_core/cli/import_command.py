"""``mrtdose import DICOM_DIR`` and ``mrtdose timepoint remove``.

``mrtdose import`` imports a DICOM folder tree into cases.  A file or series that
cannot be used -- unreadable, hostile or physically impossible header values,
no Patient ID, a SOP Instance UID conflict, more activity than administered --
is listed with its reason and never stops the others.

Exit status of ``mrtdose import``:

* 0 -- something was imported, or the store already held every usable series
  of the folder (a repeated import);
* 1 -- nothing was imported: every file was refused, or no file was found (the
  reasons are printed); also for a refused command (see
  :mod:`dosimetry_core.cli.main`).

``mrtdose timepoint remove CASE TIME_POINT_ID --reason TEXT`` removes a time
point imported by mistake, audited
(:func:`dosimetry_core.pipeline.timepoints.remove_time_point`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from dosimetry_core.cli.main import EXIT_INPUT, EXIT_OK, TextProgress, _emit, _open_store

_IMPORT_EPILOG = (
    "exit status: 0 when something was imported (or the store already held it), "
    "1 when nothing was imported (every file refused, or none found)"
)


def cmd_import(args: argparse.Namespace) -> int:
    from dosimetry_core.io.text import printable
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
            allow_activity_above_administered=args.allow_activity_above_administered,
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
        lines += [
            printable(f"  [{'x' if i['present'] else ' '}] {i['item']}: {i['detail']}")
            for i in items
        ]
    _emit(args, data, "\n".join(lines))
    if not result.cases and not result.skipped and result.n_files_seen == 0:
        sys.stderr.write(f"mrtdose: no files found under {printable(args.dicom_dir)}\n")
        return EXIT_INPUT
    if not result.imported_anything:
        sys.stderr.write(
            f"mrtdose: nothing imported from {printable(args.dicom_dir)} "
            f"({len(result.skipped)} file(s) or series refused, reasons above)\n"
        )
        return EXIT_INPUT
    return EXIT_OK


def cmd_timepoint_remove(args: argparse.Namespace) -> int:
    from dosimetry_core.io.text import printable
    from dosimetry_core.pipeline.timepoints import remove_time_point

    store = _open_store(args)
    done = remove_time_point(
        store, getattr(store, "actor", None), args.case, args.time_point_id, args.reason
    )
    data = done.to_dict()
    text = [
        f"removed time point {done.label} ({done.time_point_id}) from case {done.case_id}; "
        f"case version {done.version}"
    ]
    if done.vois_removed:
        text.append(f"VOIs removed with it: {', '.join(done.vois_removed)}")
    if done.results_superseded or done.derived_superseded:
        text.append(
            f"{len(done.results_superseded)} result record(s) and "
            f"{len(done.derived_superseded)} derived map(s) marked superseded: recompute them"
        )
    if done.signed_reports:
        text.append(
            f"signed report(s) of this case, left as signed: {', '.join(done.signed_reports)}"
        )
    _emit(args, data, "\n".join(printable(line) for line in text))
    return EXIT_OK


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "import",
        parents=[common],
        help="import a DICOM folder tree into cases",
        description="Import a DICOM folder tree into cases; files that cannot be used are "
        "listed with their reason and never stop the others.",
        epilog=_IMPORT_EPILOG,
    )
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
    p.add_argument(
        "--allow-activity-above-administered",
        action="store_true",
        help="import time points holding more activity than the net administered activity "
        "decayed to the scan (refused otherwise; recorded in the audit trail)",
    )
    p.set_defaults(func=cmd_import)

    tp = sub.add_parser(
        "timepoint", parents=[common], help="time points of a case: remove a bad one (audited)"
    )
    from dosimetry_core.cli.main import _ArgumentParser

    tsub = tp.add_subparsers(
        dest="timepoint_command", metavar="ACTION", parser_class=_ArgumentParser, required=True
    )
    r = tsub.add_parser(
        "remove",
        parents=[common],
        help="remove a time point imported by mistake (audited; results become superseded)",
    )
    r.add_argument("case", metavar="CASE")
    r.add_argument("time_point_id", metavar="TIME_POINT_ID", help="time point id or label (TP2)")
    r.add_argument("--reason", required=True, help="why it is removed (audited)")
    r.set_defaults(func=cmd_timepoint_remove)
