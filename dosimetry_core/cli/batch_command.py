"""``mrtdose batch COHORT_DIR_OR_CASE_LIST --protocol P [--scheduler local[:N] | tcp://HOST:PORT]``.

Runs ``mrtdose run CASE --protocol P`` for every case of a cohort on Dask distributed
(:mod:`dosimetry_core.pipeline.batch`, which says everything about the engine, the
SQLite rule, resuming and the summary).

``COHORT_DIR_OR_CASE_LIST`` is a **folder of patient study folders** (each immediate
sub-folder is imported with ``mrtdose import``'s rules and skip reasons; one case per
patient and cycle) or a **text file of case ids** already in the store (one per line,
``#`` comments).

Output: a progress bar on stderr (cases done, running, failed, skipped, ETA; one line
per case when stderr is not a terminal); with ``--json`` one JSON object per line on
stdout for every event (``import``, ``import-skipped``, ``started``, ``finished``,
``skipped``, ``failed`` with its one-line ``reason``) and a last ``summary`` line.
The cohort summary (``summary.csv``, ``summary.json``, ``gy_per_gbq.png``) goes to
``--out`` (default ``./mrtdose-batch-<protocol>``).

Exit status: 0 when every case was run or skipped as current; 1 when any case
failed (the others are saved), or for a refused command.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path
from typing import Any

from dosimetry_core.cli.main import EXIT_INPUT, EXIT_OK, _json_safe

_HELP = (
    "COHORT_DIR_OR_CASE_LIST: a folder of patient study folders (each sub-folder is "
    "imported with the rules and skip reasons of 'mrtdose import', one case per patient "
    "and cycle), or a text file of case ids already in the store (one per line, '#' "
    "comments). Each case is one Dask task: --scheduler local[:N] starts N worker "
    "processes (1 thread each; local alone: 2), tcp://HOST:PORT uses an existing "
    "scheduler. Workers open the store themselves: for SQLite a folder reachable at the "
    "same path by every worker, on a filesystem with working POSIX locks (a local disk, "
    "not NFS/SMB); writes are serialised (one writer at a time, 30 s busy timeout); use "
    "PostgreSQL for workers on other machines ($MRTDOSE_DATABASE_URL, e.g. "
    "postgresql+psycopg://USER:PASSWORD@HOST/DB, with the blob folder shared: the "
    "password is not sent with the tasks; each worker takes it from its own "
    "$MRTDOSE_DATABASE_URL, $PGPASSWORD or ~/.pgpass). A case whose saved run for this protocol "
    "is current (inputs unchanged) is skipped unless --force; killing the batch loses "
    "nothing already saved. Exit status 1 when any case failed."
)


class _Bar:
    """The batch progress on stderr: a redrawn line on a terminal, else one line per case."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.last = ""

    @staticmethod
    def _eta(seconds: float | None) -> str:
        if seconds is None:
            return "ETA -"
        s = int(round(seconds))
        return f"ETA {s // 60}m{s % 60:02d}s" if s >= 60 else f"ETA {s}s"

    def show(self, e: Any) -> None:
        finished = e.done + e.failed + e.skipped
        if e.event in ("import", "import-skipped", "summary"):
            return
        text = (
            f"{finished}/{e.total} cases: {e.done} done, {e.running} running, "
            f"{e.failed} failed, {e.skipped} skipped, {self._eta(e.eta_s)}"
        )
        if self.tty:
            width = 24
            filled = int(round(width * finished / max(e.total, 1)))
            line = f"\r[{'#' * filled}{'.' * (width - filled)}] {text}"
            if line != self.last:
                self.stream.write(line)
                self.stream.flush()
                self.last = line
        elif e.event in ("finished", "failed", "skipped"):
            why = f" ({e.reason})" if e.reason else ""
            self.stream.write(f"{e.event} {e.case_id}{why}; {text}\n")
            self.stream.flush()

    def close(self) -> None:
        if self.tty and self.last:
            self.stream.write("\n")
            self.stream.flush()


def cmd_batch(args: argparse.Namespace) -> int:
    from dosimetry_core.cli.access import acting_user_name
    from dosimetry_core.cli.main import _open_store
    from dosimetry_core.errors import InvalidInputError
    from dosimetry_core.io.text import printable
    from dosimetry_core.pipeline.batch import (
        BatchEvent,
        BatchOptions,
        StoreLocation,
        import_cohort,
        parse_scheduler,
        read_case_list,
        run_batch,
        write_summary,
    )
    from dosimetry_core.protocols.registry import load_protocol
    from dosimetry_core.store.permissions import require

    parse_scheduler(args.scheduler)  # refuse a bad --scheduler before anything runs
    protocol = load_protocol(args.protocol)  # an unknown id is refused here
    if protocol.therapy not in ("lu177", "generic"):
        raise InvalidInputError(
            f"protocol {protocol.id} is not run by 'mrtdose run' (therapy {protocol.therapy})",
            field="protocol",
        )
    store = _open_store(args)
    user = acting_user_name(store, args.user)
    cohort = Path(args.cohort)
    if not cohort.exists():
        raise InvalidInputError(
            f"COHORT_DIR_OR_CASE_LIST {printable(str(cohort))}: no such folder or file",
            field="cohort",
        )
    lock = threading.Lock()
    bar = _Bar(sys.stderr)
    text_lines: list[str] = []

    def on_event(e: BatchEvent) -> None:
        with lock:
            if args.json:
                d = json.dumps(_json_safe(e.to_dict()), allow_nan=False, default=str)
                sys.stdout.write(d + "\n")
                sys.stdout.flush()
            elif e.event == "import":
                cases = ", ".join(e.detail.get("cases") or []) or "no case"
                text_lines.append(printable(f"imported {e.detail.get('folder')}: {cases}"))
            elif e.event == "import-skipped":
                text_lines.append(printable(f"  skipped {e.detail.get('path')}: {e.reason}"))
            bar.show(e)

    if cohort.is_dir():
        if store.has_users() and store.actor is not None:
            require(store.actor, "import")
        case_ids, _reports = import_cohort(
            store,
            cohort,
            calibration_cps_per_mbq=args.calibration_cps_per_mbq,
            on_event=on_event,
        )
        if not case_ids:
            raise InvalidInputError(
                f"cohort folder {printable(str(cohort))}: no case could be imported "
                "(reasons above)",
                field="cohort",
            )
    else:
        case_ids = read_case_list(cohort)
    options = BatchOptions(
        protocol_id=protocol.id,
        force=args.force,
        method=args.method,
        dose_method=args.dose_method,
        recovery_fwhm_mm=args.recovery_fwhm_mm,
        risk_factors=args.risk_factors,
        user=user,
    )
    try:
        result = run_batch(
            StoreLocation.of(store),
            case_ids,
            options,
            scheduler=args.scheduler,
            actor=store.actor,
            on_event=on_event,
        )
    finally:
        bar.close()
    out_dir = Path(args.out) if args.out else Path.cwd() / f"mrtdose-batch-{protocol.id}"
    files = write_summary(result, out_dir)
    counts = {k: result.count(k) for k in ("done", "skipped", "failed")}
    if args.json:
        on_event(
            BatchEvent(
                "summary",
                done=counts["done"],
                failed=counts["failed"],
                skipped=counts["skipped"],
                total=len(result.outcomes),
                detail={
                    "protocol": protocol.id,
                    "scheduler": args.scheduler,
                    "workers": result.n_workers,
                    "wall_s": round(result.wall_s, 3),
                    "files": files,
                    "cases": [
                        {"case_id": o.case_id, "status": o.status, "reason": o.reason}
                        for o in result.outcomes
                    ],
                },
            )
        )
    else:
        lines = list(text_lines)
        lines.append(
            f"batch {protocol.id} on {args.scheduler} ({result.n_workers} workers, "
            f"{result.wall_s:.1f} s): {counts['done']} done, {counts['skipped']} skipped, "
            f"{counts['failed']} failed"
        )
        for o in result.outcomes:
            who = f"{o.patient_id} cycle {o.cycle}" if o.patient_id else ""
            why = f": {o.reason}" if o.reason else ""
            lines.append(printable(f"  {o.status:<8} {o.case_id:<20} {who}{why}"))
        lines.append(f"summary: {files['csv']}, {files['json']}; plot: {files['plot']}")
        sys.stdout.write("\n".join(lines) + "\n")
    return EXIT_INPUT if result.any_failed else EXIT_OK


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register ``mrtdose batch``."""
    p = sub.add_parser(
        "batch",
        parents=[common],
        help="run a protocol on every case of a cohort, on Dask (local cluster or a scheduler)",
        description=_HELP,
        epilog="exit status: 0 when every case ran or was current, 1 when any case failed",
    )
    p.add_argument(
        "cohort",
        metavar="COHORT_DIR_OR_CASE_LIST",
        help="folder of patient study folders to import, or text file of case ids",
    )
    p.add_argument("--protocol", required=True, help="protocol id (mrtdose protocols lists them)")
    p.add_argument(
        "--scheduler",
        default="local",
        metavar="local[:N] | tcp://HOST:PORT",
        help="local cluster of N worker processes (local alone: 2) or an existing Dask scheduler",
    )
    p.add_argument("--force", action="store_true", help="run again cases whose run is current")
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="folder of summary.csv, summary.json and gy_per_gbq.png "
        "(default ./mrtdose-batch-<protocol>)",
    )
    p.add_argument("--method", choices=["auto", "multi-point", "single-time-point"], default="auto")
    p.add_argument(
        "--dose-method",
        choices=["led", "vsv", "vsv-density", "mc"],
        default=None,
        help="voxel dose method (default: the protocol's)",
    )
    p.add_argument(
        "--recovery-fwhm-mm",
        type=float,
        default=None,
        help="SPECT resolution (FWHM, mm) for the partial-volume correction of VOIs",
    )
    p.add_argument(
        "--risk-factors", action="store_true", help="apply the stricter limits (risk factors)"
    )
    p.add_argument(
        "--calibration-cps-per-mbq",
        type=float,
        default=None,
        metavar="X",
        help="with a cohort folder: camera calibration for count-based NM series (as import)",
    )
    p.add_argument(
        "--user",
        default=None,
        help="who runs it, on a single-user store (recorded); with accounts always the "
        "logged-in user",
    )
    p.set_defaults(func=cmd_batch)
