"""``mrtdose qa``: camera calibration, recovery coefficients and the QA record list.

``mrtdose qa calibrate DICOM_DIR --activity-mbq A --activity-time T [--nuclide N]``
    Calibration factor of a phantom acquisition; stored under the camera key of
    the series.  JSON: ``cps_per_mbq``, ``cps_per_mbq_sd``, ``device_key``,
    ``record_id``, ``status``, ``constancy``, ...
``mrtdose qa recovery DICOM_DIR --sphere-activity-concentration-kbq-ml C --background-kbq-ml B``
    Recovery coefficient per sphere and the fitted RC(volume) curve.  JSON:
    ``spheres`` (each ``volume_ml``, ``recovery``, ``recovery_sd``, ...),
    ``curve`` (``model``, ``parameters``, ``parameter_sd``, ``covariance``),
    ``device_key``, ``record_id``.
``mrtdose qa list``
    Stored QA records with their dates and status.  JSON: ``records``.
"""

from __future__ import annotations

import argparse
import os
from datetime import datetime
from typing import Any

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.store.repository import CaseRepository


def _when(text: str | None, what: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError as exc:
        raise InvalidInputError(
            f"{what} {text!r} is not a date-time (use e.g. 2026-02-23T08:00)"
        ) from exc
    return value.replace(tzinfo=None)


def _user(args: argparse.Namespace, store: CaseRepository) -> str:
    """Who measured: the logged-in user on a store with accounts (``--user`` names nobody
    else), else ``--user``, ``$MRTDOSE_USER`` or ``$USER``."""
    from dosimetry_core.cli.access import acting_user_name

    default = os.environ.get("MRTDOSE_USER") or os.environ.get("USER") or "unknown"
    return acting_user_name(store, args.user, default)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from dosimetry_core.cli.main import _emit, _open_store
    from dosimetry_core.qa.calibration import calibrate_camera

    activity_time = _when(args.activity_time, "--activity-time")
    assert activity_time is not None
    store = _open_store(args)
    created_by = _user(args, store)
    cal, record = calibrate_camera(
        store,
        args.dicom_dir,
        args.activity_mbq,
        activity_time,
        nuclide=args.nuclide,
        geometry=args.geometry,
        margin_mm=args.margin_mm,
        activity_sd_percent=args.activity_sd_percent,
        valid_until=_when(args.valid_until, "--valid-until"),
        tolerance_percent=args.tolerance_percent,
        created_by=created_by,
        actor=store.actor,
    )
    payload = cal.to_payload()
    data: dict[str, Any] = {
        "cps_per_mbq": cal.cps_per_mbq,
        "cps_per_mbq_sd": cal.cps_per_mbq_sd,
        "device_key": record.device_key,
        "camera_key": record.device_key,
        "device": payload["device"],
        "nuclide": cal.nuclide,
        "record_id": record.record_id,
        "status": record.status,
        "measured_at": record.measured_at.isoformat(),
        "valid_until": record.valid_until.isoformat() if record.valid_until else None,
        "activity_at_scan_mbq": cal.activity_at_scan_mbq,
        "duration_s": cal.duration_s,
        "counts_in_voi": cal.counts_in_voi,
        "voi": payload["voi"],
        "constancy": record.payload.get("constancy"),
        "record_hash": record.record_hash,
        "warnings": cal.warnings,
    }
    c = record.payload.get("constancy") or {}
    lines = [
        f"calibration factor {cal.cps_per_mbq:.4g} +- {cal.cps_per_mbq_sd:.2g} cps/MBq "
        f"({cal.nuclide}, {cal.activity_at_scan_mbq:.4g} MBq at the scan start)",
        f"stored as {record.record_id} for {record.device_key}",
        f"valid until {data['valid_until'] or '-'}; constancy: {record.status}"
        + (
            f" ({c['deviation_from_previous_percent']:+.1f} % vs previous)"
            if c.get("deviation_from_previous_percent") is not None
            else " (first record of this camera)"
        ),
    ]
    lines += [f"warning: {w}" for w in cal.warnings]
    _emit(args, data, "\n".join(lines))
    return 0


def cmd_recovery(args: argparse.Namespace) -> int:
    from dosimetry_core.cli.main import _emit, _open_store
    from dosimetry_core.qa.qa_runs import run_recovery

    store = _open_store(args)
    created_by = _user(args, store)
    centers = None
    if args.centers_json:
        import json
        from pathlib import Path

        try:
            centers = json.loads(Path(args.centers_json).read_text())
        except (OSError, ValueError) as exc:
            raise InvalidInputError(
                f"cannot read sphere centres {args.centers_json}: {exc}"
            ) from exc
    # the same core call as the workstation's QA step (dosimetry_core.qa.qa_runs)
    run = run_recovery(
        store,
        args.dicom_dir,
        args.sphere_activity_concentration_kbq_ml,
        args.background_kbq_ml,
        activity_time=_when(args.activity_time, "--activity-time"),
        nuclide=args.nuclide,
        diameters_mm=args.diameter_mm,
        centers_lps_mm=centers,
        model=args.model,
        valid_until=_when(args.valid_until, "--valid-until"),
        tolerance_percent=args.tolerance_percent,
        store_result=not args.no_store,
        created_by=created_by,
    )
    payload, record, analysis = run.payload, run.record, run.analysis
    data: dict[str, Any] = run.to_cli_dict()
    lines = [f"{'SPHERE mm':>9} {'VOLUME mL':>10} {'RC':>7} {'SD':>7}  CENTRE (LPS mm)"]
    for s in payload["spheres"]:
        sd = s["recovery_sd"]
        lines.append(
            f"{s['diameter_mm']:9.1f} {s['volume_ml']:10.2f} {s['recovery']:7.3f} "
            f"{(f'{sd:7.3f}' if sd is not None else '      -')}  "
            + ", ".join(f"{v:.1f}" for v in s["center_lps_mm"])
        )
    curve = payload["curve"]
    if curve:
        pars = ", ".join(
            f"{k} = {v:.4g} +- {curve['parameter_sd'][k]:.2g}"
            for k, v in curve["parameters"].items()
        )
        lines.append(f"RC(V) model {curve['model']}: {pars}")
    if record is not None:
        lines.append(f"stored as {record.record_id} for {record.device_key}")
    lines += [f"warning: {w}" for w in analysis.warnings]
    _emit(args, data, "\n".join(lines))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from dosimetry_core.cli.main import _emit, _open_store
    from dosimetry_core.qa.records import _VALUE_KEYS, list_records, verify_record

    store = _open_store(args)
    now = datetime.now()
    records = list_records(store, kind=args.kind, nuclide=args.nuclide)
    rows: list[dict[str, Any]] = []
    for r in records:
        rows.append(
            {
                "record_id": r.record_id,
                "kind": r.kind,
                "device_key": r.device_key,
                "nuclide": r.nuclide,
                "measured_at": r.measured_at.isoformat(),
                "valid_until": r.valid_until.isoformat() if r.valid_until else None,
                "valid_now": r.valid_until is None or now <= r.valid_until,
                "created_at": r.created_at.isoformat(),
                "created_by": r.created_by,
                "status": r.status,
                "value": r.payload.get(_VALUE_KEYS.get(r.kind, "value")),
                "value_name": _VALUE_KEYS.get(r.kind, "value"),
                "hash_ok": verify_record(r),
            }
        )
    if rows:
        lines = [
            f"{'RECORD':<20} {'KIND':<18} {'NUCLIDE':<7} {'MEASURED':<19} {'VALID UNTIL':<19} "
            f"{'STATUS':<7} VALUE"
        ]
        for d in rows:
            value = d["value"]
            lines.append(
                f"{d['record_id']:<20} {d['kind']:<18} {d['nuclide']:<7} "
                f"{d['measured_at'][:19]:<19} {(d['valid_until'] or '-')[:19]:<19} "
                f"{d['status']:<7} "
                + (f"{d['value_name']} = {value:.4g}" if isinstance(value, int | float) else "-")
                + ("" if d["valid_now"] else "  (expired)")
            )
            lines.append(f"    {d['device_key']}  by {d['created_by'] or '-'}")
        text = "\n".join(lines)
    else:
        text = "no QA records in the store"
    _emit(args, {"records": rows}, text)
    return 0


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    from dosimetry_core.cli.main import _ArgumentParser

    p = sub.add_parser(
        "qa", parents=[common], help="commissioning and QA: calibration, recovery, records"
    )
    ops = p.add_subparsers(
        dest="qa_command", metavar="QA_COMMAND", parser_class=_ArgumentParser, required=True
    )

    q = ops.add_parser(
        "calibrate",
        parents=[common],
        help="camera calibration factor (cps/MBq) from a phantom scan of known activity",
    )
    q.add_argument("dicom_dir", metavar="DICOM_DIR")
    q.add_argument("--activity-mbq", type=float, required=True, help="source activity (MBq)")
    q.add_argument(
        "--activity-time", required=True, help="when the activity was measured (ISO date-time)"
    )
    q.add_argument("--nuclide", default=None, help="source nuclide (checked against the scan)")
    q.add_argument("--geometry", choices=["cylinder", "point"], default="cylinder")
    q.add_argument("--margin-mm", type=float, default=None, help="VOI margin (mm, default 40)")
    q.add_argument(
        "--activity-sd-percent",
        type=float,
        default=None,
        help="standard uncertainty of the source activity (%%)",
    )
    q.add_argument("--valid-until", default=None, help="end of validity (default: 1 year)")
    q.add_argument("--tolerance-percent", type=float, default=None, help="constancy tolerance")
    q.add_argument(
        "--user",
        default=None,
        help="who measured, on a single-user store (default: $MRTDOSE_USER or $USER); "
        "with accounts always the logged-in user, and another name is refused",
    )
    q.set_defaults(func=_calibrate_defaults)

    q = ops.add_parser(
        "recovery",
        parents=[common],
        help="recovery coefficients of a NEMA IEC sphere phantom scan and the RC(volume) curve",
    )
    q.add_argument("dicom_dir", metavar="DICOM_DIR")
    q.add_argument("--sphere-activity-concentration-kbq-ml", type=float, required=True, metavar="C")
    q.add_argument("--background-kbq-ml", type=float, required=True, metavar="B")
    q.add_argument(
        "--activity-time",
        default=None,
        help="time the concentrations refer to (default: the scan start)",
    )
    q.add_argument("--nuclide", default=None)
    q.add_argument(
        "--diameter-mm",
        type=float,
        nargs="+",
        default=None,
        help="sphere inner diameters (default: NEMA IEC 10 13 17 22 28 37)",
    )
    q.add_argument(
        "--centers-json",
        default=None,
        help="JSON file with the sphere centres [[x, y, z], ...] in LPS mm (default: found)",
    )
    q.add_argument("--model", choices=["gaussian-psf", "logistic"], default="gaussian-psf")
    q.add_argument("--valid-until", default=None)
    q.add_argument("--tolerance-percent", type=float, default=5.0)
    q.add_argument("--no-store", action="store_true", help="analyse only, store nothing")
    q.add_argument(
        "--user",
        default=None,
        help="who measured, on a single-user store; with accounts the logged-in user",
    )
    q.set_defaults(func=cmd_recovery)

    q = ops.add_parser("list", parents=[common], help="stored QA records with dates and status")
    q.add_argument("--kind", default=None, help="camera-calibration, recovery, ...")
    q.add_argument("--nuclide", default=None)
    q.set_defaults(func=cmd_list)


def _calibrate_defaults(args: argparse.Namespace) -> int:
    from dosimetry_core.qa.calibration import DEFAULT_MARGIN_MM

    if args.margin_mm is None:
        args.margin_mm = DEFAULT_MARGIN_MM
    return cmd_calibrate(args)
