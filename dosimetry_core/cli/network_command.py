"""DICOM networking: ``mrtdose listen`` and ``mrtdose pacs find|get|send`` (issue 17).

``mrtdose listen --port P --ae-title T [--allow-ae TITLE ...] [--incoming DIR] [--idle-s S]
[--min-free-mb MB]
[--tls-cert PEM --tls-key PEM [--tls-ca PEM]]`` (DICOM over TLS, PS3.15 B.1)
runs a storage SCP (:mod:`dosimetry_core.pipeline.dicom_scp`): instances are filed
under ``<store folder>/incoming`` (or ``--incoming``) and each study is imported with
the ``mrtdose import`` core path once every association that brought it has ended and
``--idle-s`` seconds (default 5) passed without a new instance of it.  One line per
association (calling AE, peer address, received/stored/rejected), per refusal and
per study import (into which case) on stdout; ``--json``: one JSON object per line
(``time``, ``event``, ``message`` and the event's record: ``listening`` with
``port`` and ``ae_title``; ``association`` with ``association`` -- number,
calling_ae, address, port, outcome, received, stored, rejected, studies --;
``rejected`` with the refused instance; ``import`` with ``import`` -- the study,
its ``cases`` and the ``mrtdose import --json`` report --; ``stopped``).  SIGINT or
SIGTERM stops it cleanly: listening ends, open associations are closed, received
studies are imported, then it exits 0.

``mrtdose pacs find --patient-id ID`` lists the PACS's studies of a patient (C-FIND,
study level); ``--json``: ``{"peer", "patient_id", "studies": [...]}``.
``mrtdose pacs get --study-uid UID [--method get|move] [--move-port P]`` (or
``--patient-id ID``: every study of the patient) retrieves and imports.
``mrtdose pacs send CASE`` sends RT Dose, SEG (``--rtstruct`` adds RTSTRUCT) and the
newest signed report as Encapsulated PDF (C-STORE); exit 1 when any C-STORE failed,
each failure named by SOP Instance UID and status.

The PACS peer: ``--host --port --called-ae [--ae-title] [--timeout-s]``, else the
saved peer file (``--peer-file``, default ``<store folder>/pacs.json``; written by
``--save-peer``).  Options given on the command line override the file.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from dosimetry_core.errors import InvalidInputError

PEER_FILENAME = "pacs.json"


# ------------------------------------------------------------------ helpers
def _peer_file(args: argparse.Namespace) -> Path:
    if getattr(args, "peer_file", None):
        return Path(args.peer_file)
    from dosimetry_core.cli.access import store_path

    return store_path(args) / PEER_FILENAME


def _peer(args: argparse.Namespace) -> Any:
    """The PACS peer from the options, completed by the saved peer file."""
    from dosimetry_core.pipeline.pacs import PacsPeer, load_peer, save_peer

    path = _peer_file(args)
    saved = load_peer(path) if path.is_file() else None
    host = args.host or (saved.host if saved else None)
    port = args.port or (saved.port if saved else None)
    called = args.called_ae or (saved.called_ae if saved else None)
    missing = [o for o, v in (("--host", host), ("--port", port), ("--called-ae", called)) if not v]
    if missing:
        raise InvalidInputError(
            f"no PACS peer: give {', '.join(missing)} (or save a peer with --save-peer; "
            f"looked for {path})",
            field=missing[0].lstrip("-").replace("-", "_"),
        )
    peer = PacsPeer(
        host=str(host),
        port=int(port),  # type: ignore[arg-type]
        called_ae=str(called),
        ae_title=args.ae_title or (saved.ae_title if saved else "MRTDOSE"),
        timeout_s=args.timeout_s or (saved.timeout_s if saved else 30.0),
        tls_ca=args.tls_ca or (saved.tls_ca if saved else ""),
        tls_cert=args.tls_cert or (saved.tls_cert if saved else ""),
        tls_key=args.tls_key or (saved.tls_key if saved else ""),
    ).checked()
    if args.save_peer:
        save_peer(peer, path)
        sys.stderr.write(f"mrtdose: PACS peer {peer.words()} saved to {path}\n")
    return peer


def _peer_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("PACS peer (default: the saved peer file)")
    g.add_argument("--host", default=None, help="PACS host name or address")
    g.add_argument("--port", type=int, default=None, help="PACS TCP port")
    g.add_argument("--called-ae", default=None, metavar="AE", help="the PACS's AE title")
    g.add_argument("--ae-title", default=None, metavar="AE", help="our AE title (default MRTDOSE)")
    g.add_argument("--timeout-s", type=float, default=None, help="network timeout (default 30 s)")
    g.add_argument(
        "--tls-ca",
        default=None,
        metavar="PEM",
        help="DICOM over TLS: the CA that issued the PACS's certificate (host name checked)",
    )
    g.add_argument(
        "--tls-cert", default=None, metavar="PEM", help="our certificate, for mutual TLS"
    )
    g.add_argument("--tls-key", default=None, metavar="PEM", help="its private key")
    g.add_argument(
        "--peer-file",
        default=None,
        metavar="FILE",
        help=f"saved peer (JSON; default <store folder>/{PEER_FILENAME})",
    )
    g.add_argument(
        "--save-peer", action="store_true", help="save these peer options to the peer file"
    )


# -------------------------------------------------------------------- listen
def cmd_listen(args: argparse.Namespace) -> int:
    from dosimetry_core.cli.main import EXIT_OK, _open_store
    from dosimetry_core.pipeline.dicom_scp import ScpSettings, StorageServer

    settings = ScpSettings(
        ae_title=args.ae_title,
        port=args.port,
        host=args.host,
        allowed_calling_aes=tuple(args.allow_ae or ()),
        incoming_dir=Path(args.incoming) if args.incoming else None,
        idle_s=args.idle_s,
        min_free_mb=args.min_free_mb,
        tls_cert=args.tls_cert or "",
        tls_key=args.tls_key or "",
        tls_ca=args.tls_ca or "",
        calibration_cps_per_mbq=args.calibration_cps_per_mbq,
        allow_activity_above_administered=args.allow_activity_above_administered,
    ).checked()
    store = _open_store(args)
    out_lock = threading.Lock()

    def log(line: str, event: str = "log", data: dict[str, Any] | None = None) -> None:
        stamp = datetime.now().isoformat(timespec="seconds")
        with out_lock:
            if args.json:
                record = {"time": stamp, "event": event, "message": line, **(data or {})}
                sys.stdout.write(json.dumps(record, default=str) + "\n")
            else:
                sys.stdout.write(f"{stamp} {line}\n")
            sys.stdout.flush()

    def on_line(line: str) -> None:
        # the server's lines; in --json with the typed record of the event they report
        event = str(getattr(line, "event", "log"))
        record = getattr(line, "record", None)
        data: dict[str, Any] = {}
        if event == "association" and record is not None:
            data = {"association": record.to_dict()}
        elif event == "import" and record is not None:
            data = {"import": record.to_dict()}
        elif event == "rejected" and record is not None:
            data = {"rejected": record.to_dict()}
        elif event == "listening":
            data = {"port": server.port, "ae_title": settings.ae_title}
        log(str(line), event, data)

    server = StorageServer(store, settings, log=on_line)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        while not stop.wait(0.2):
            pass
        log("stopping: importing what was received", "log")
        server.stop()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if server._server is not None:
            server.stop(import_pending=False)
    log(
        f"stopped: {len(server.records)} association(s), {len(server.imports)} study import(s)",
        "stopped",
        {"associations": len(server.records), "imports": len(server.imports)},
    )
    return EXIT_OK


# ---------------------------------------------------------------------- pacs
def cmd_pacs_find(args: argparse.Namespace) -> int:
    from dosimetry_core.cli.main import EXIT_OK, _emit
    from dosimetry_core.io.text import printable
    from dosimetry_core.pipeline.pacs import find_studies

    peer = _peer(args)
    studies = find_studies(peer, args.patient_id)
    data = {
        "peer": peer.words(),
        "patient_id": args.patient_id,
        "studies": [s.to_dict() for s in studies],
    }
    if studies:
        lines = [f"{len(studies)} study(ies) of patient {args.patient_id} on {peer.words()}:"]
        lines += [
            printable(
                f"  {s.study_date or '-':<8} {s.study_time[:6] or '-':<6} "
                f"{s.study_description or '-'}  [{', '.join(s.modalities) or '-'}]  "
                f"{s.study_instance_uid}"
            )
            for s in studies
        ]
    else:
        lines = [printable(f"no study of patient {args.patient_id} on {peer.words()}")]
    _emit(args, data, "\n".join(lines))
    return EXIT_OK


def cmd_pacs_get(args: argparse.Namespace) -> int:
    from dosimetry_core.cli.main import EXIT_INPUT, EXIT_OK, TextProgress, _emit, _open_store
    from dosimetry_core.pipeline.pacs import find_studies, retrieve_study

    if bool(args.study_uid) == bool(args.patient_id):
        raise InvalidInputError(
            "give --study-uid UID (repeatable) or --patient-id ID (every study of the patient)",
            field="study_uid",
        )
    peer = _peer(args)
    store = _open_store(args)
    uids = list(args.study_uid or [])
    if args.patient_id:
        uids = [s.study_instance_uid for s in find_studies(peer, args.patient_id)]
        if not uids:
            sys.stderr.write(f"mrtdose: no study of patient {args.patient_id} on {peer.words()}\n")
            return EXIT_INPUT
    results = []
    lines: list[str] = []
    for uid in uids:
        bar = TextProgress(not args.json)
        try:
            res = retrieve_study(
                store,
                peer,
                uid,
                method=args.method,
                move_port=args.move_port or 0,
                incoming_dir=args.incoming,
                calibration_cps_per_mbq=args.calibration_cps_per_mbq,
                progress=bar,
            )
        finally:
            bar.done()
        results.append(res)
        lines.append(
            f"study {uid}: {res.stored} instance(s) received by C-{args.method.upper()}"
            + (f", {len(res.rejected)} refused" if res.rejected else "")
        )
        lines += [f"  refused {r.words()}" for r in res.rejected]
        if res.import_report is not None:
            lines += ["  " + line for line in res.import_report.summary_lines()]
    _emit(args, {"peer": peer.words(), "studies": [r.to_dict() for r in results]}, "\n".join(lines))
    imported = any(
        r.import_report is not None and r.import_report.imported_anything for r in results
    )
    return EXIT_OK if imported else EXIT_INPUT


def cmd_pacs_send(args: argparse.Namespace) -> int:
    from dosimetry_core.cli.main import EXIT_INPUT, EXIT_OK, TextProgress, _emit, _open_store
    from dosimetry_core.pipeline.pacs import SendFailedError, send_case

    pdf = None
    if args.report_pdf:
        try:
            pdf = Path(args.report_pdf).read_bytes()
        except OSError as exc:
            raise InvalidInputError(
                f"--report-pdf {args.report_pdf}: cannot read ({exc.strerror})", field="report_pdf"
            ) from exc
    peer = _peer(args)
    store = _open_store(args)
    bar = TextProgress(not args.json)
    failed = False
    try:
        res = send_case(
            store,
            peer,
            args.case,
            rtdose=not args.no_rtdose,
            seg=not args.no_seg,
            rtstruct=args.rtstruct,
            report=not args.no_report,
            report_pdf=pdf,
            ct_dir=Path(args.ct_dir) if args.ct_dir else None,
            progress=bar,
        )
    except SendFailedError as exc:
        res = exc.result
        failed = True
    finally:
        bar.done()
    ok = [i for i in res.instances if i.ok]
    lines = [
        f"sent {len(ok)} of {len(res.instances)} instance(s) of case {args.case} to {res.peer}"
    ]
    for i in res.instances:
        state = f"status 0x{i.status:04X}" if i.status is not None else i.problem
        lines.append(f"  {i.kind:<8} {i.sop_instance_uid}  {'ok' if i.ok else 'FAILED'} ({state})")
    if res.report_id:
        lines.append(f"report {res.report_id} sent as Encapsulated PDF")
    lines += [f"warning: {w}" for w in res.warnings]
    _emit(args, res.to_dict(), "\n".join(lines))
    if failed:
        sys.stderr.write(
            f"mrtdose: {len(res.failed)} instance(s) not stored by {res.peer} (listed above)\n"
        )
        return EXIT_INPUT
    return EXIT_OK


# -------------------------------------------------------------------- parser
def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register ``listen`` and ``pacs find|get|send``."""
    from dosimetry_core.cli.main import _ArgumentParser

    p = sub.add_parser(
        "listen",
        parents=[common],
        help="DICOM storage SCP: receive studies and import them into cases",
        description="Receive DICOM instances (C-STORE), file them under the store's "
        "incoming folder and import each study once its associations ended and no "
        "instance came for --idle-s seconds; SIGINT/SIGTERM stop it cleanly.",
    )
    p.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    p.add_argument("--ae-title", required=True, metavar="AE", help="our AE title")
    p.add_argument(
        "--host", default="", help="address to bind (default every interface; 127.0.0.1: local)"
    )
    p.add_argument(
        "--allow-ae",
        action="append",
        default=None,
        metavar="AE",
        help="accept only this calling AE title (repeatable; default any)",
    )
    p.add_argument(
        "--incoming",
        default=None,
        metavar="DIR",
        help="where received files are kept (default <store folder>/incoming)",
    )
    p.add_argument(
        "--idle-s",
        type=float,
        default=5.0,
        help="seconds without a new instance of a study before it is imported (default 5)",
    )
    p.add_argument(
        "--min-free-mb",
        type=float,
        default=1024.0,
        metavar="MB",
        help="refuse instances (status 0xA700) that would leave less free space than this "
        "on the incoming folder's disk (default 1024)",
    )
    p.add_argument(
        "--tls-cert", default=None, metavar="PEM", help="DICOM over TLS: our certificate"
    )
    p.add_argument("--tls-key", default=None, metavar="PEM", help="its private key")
    p.add_argument(
        "--tls-ca",
        default=None,
        metavar="PEM",
        help="with TLS: accept only callers with a certificate issued by this CA",
    )
    p.add_argument("--calibration-cps-per-mbq", type=float, default=None, metavar="X")
    p.add_argument("--allow-activity-above-administered", action="store_true")
    p.set_defaults(func=cmd_listen)

    pacs = sub.add_parser(
        "pacs", parents=[common], help="query/retrieve from a PACS and send results back"
    )
    psub = pacs.add_subparsers(
        dest="pacs_command", metavar="ACTION", parser_class=_ArgumentParser, required=True
    )
    f = psub.add_parser("find", parents=[common], help="C-FIND the studies of a patient")
    f.add_argument("--patient-id", required=True, metavar="ID")
    _peer_options(f)
    f.set_defaults(func=cmd_pacs_find)

    g = psub.add_parser("get", parents=[common], help="retrieve studies (C-GET/C-MOVE), import")
    g.add_argument("--study-uid", action="append", default=None, metavar="UID")
    g.add_argument("--patient-id", default=None, metavar="ID", help="every study of the patient")
    g.add_argument("--method", choices=["get", "move"], default="get")
    g.add_argument(
        "--move-port",
        type=int,
        default=None,
        metavar="P",
        help="C-MOVE: port our AE listens on during the retrieve (as configured on the PACS)",
    )
    g.add_argument("--incoming", default=None, metavar="DIR")
    g.add_argument("--calibration-cps-per-mbq", type=float, default=None, metavar="X")
    _peer_options(g)
    g.set_defaults(func=cmd_pacs_get)

    s = psub.add_parser(
        "send", parents=[common], help="send RT Dose, SEG and the signed report (C-STORE)"
    )
    s.add_argument("case", metavar="CASE")
    s.add_argument("--no-rtdose", action="store_true")
    s.add_argument("--no-seg", action="store_true")
    s.add_argument("--rtstruct", action="store_true", help="also the VOIs as RTSTRUCT")
    s.add_argument("--no-report", action="store_true", help="do not send the signed report")
    s.add_argument("--report-pdf", default=None, metavar="FILE", help="send this PDF as the report")
    s.add_argument(
        "--ct-dir",
        default=None,
        metavar="DIR",
        help="the original CT files (SEG/RTSTRUCT reference the PACS's CT); default the CT "
        "as received by 'mrtdose listen' or 'pacs get' when kept in the incoming folder",
    )
    _peer_options(s)
    s.set_defaults(func=cmd_pacs_send)
