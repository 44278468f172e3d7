"""``mrtdose``: the headless front door to the same core flow as the GUI.

Every command takes ``--json`` (machine-readable output on stdout) and the
global ``--store PATH`` (or ``MRTDOSE_STORE``).  Exit status 0 on success;
on a user's mistake or a bad file, one line on stderr and a non-zero status
(1 for input/data problems, 2 for command-line usage, 3 for internal errors,
130 when interrupted).  Set ``MRTDOSE_DEBUG=1`` to see tracebacks of internal
errors.

Access control (:mod:`dosimetry_core.cli.access`): a store without user
accounts is a single-user store and needs no log-in; once it has accounts,
every command that opens it needs a log-in (``$MRTDOSE_USER`` and
``$MRTDOSE_PASSWORD``) and a role allowed to do the command's action, checked
before the command reads or computes anything.  ``mrtdose cases`` says on
stderr which mode the store is in.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dosimetry_core import __version__
from dosimetry_core.errors import DosimetryError

EXIT_OK = 0
EXIT_INPUT = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that reports usage errors on one line (no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(
            f"mrtdose: {message} (see 'mrtdose {self.prog.split(' ', 1)[-1]} --help')\n"
            if " " in self.prog
            else f"mrtdose: {message} (see 'mrtdose --help')\n"
        )
        raise SystemExit(EXIT_USAGE)


class TextProgress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._last = ""

    def __call__(self, fraction: float, message: str) -> None:
        if not self.enabled:
            return
        width = 30
        filled = int(round(width * fraction))
        line = (
            f"\r[{'#' * filled}{'.' * (width - filled)}] {fraction * 100:5.1f}% {message[:60]:<60}"
        )
        if line != self._last:
            sys.stderr.write(line)
            sys.stderr.flush()
            self._last = line

    def done(self) -> None:
        if self.enabled and self._last:
            sys.stderr.write("\n")


# ----------------------------------------------------------------- helpers
def _open_store(args: argparse.Namespace) -> Any:
    """The command's store, logged in and checked by :mod:`dosimetry_core.cli.access`.

    :func:`main` opens it before the command runs (log-in from ``$MRTDOSE_USER``
    and ``$MRTDOSE_PASSWORD``, the command's rule); called without that check
    (a command run outside :func:`main`), the same check runs here, and a
    command without a rule is refused on a store with accounts.
    """
    from dosimetry_core.cli import access

    store = access.checked_store(args)
    if store is not None:
        return store
    return access.open_unchecked(args)


def _json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by ``None``, recursively.

    JSON has no NaN or Infinity; ``json.dumps`` would write the JavaScript tokens,
    which strict parsers refuse, so a non-finite number is printed as ``null``.
    (``numpy.float64`` is a ``float``; other NumPy objects still go to ``str``.)
    """
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    if getattr(args, "json", False):
        out = json.dumps(_json_safe(data), indent=2, default=str, allow_nan=False)
        sys.stdout.write(out + "\n")
    else:
        sys.stdout.write(text.rstrip("\n") + "\n")


def _fmt(value: float | None, fmt: str = ".1f", unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:{fmt}}{(' ' + unit) if unit else ''}"


# ---------------------------------------------------------------- commands
def cmd_cases(args: argparse.Namespace) -> int:
    store = _open_store(args)
    cases = store.list_cases()
    data = {
        "cases": [
            {
                "case_id": c.case_id,
                "patient_id": c.patient_id,
                "patient_name": c.patient_name,
                "protocol": c.protocol,
                "time_points": c.n_time_points,
                "description": c.description,
                "created_at": c.created_at.isoformat() if c.created_at else None,
                "modified_at": c.modified_at.isoformat() if c.modified_at else None,
                "version": c.version,
            }
            for c in cases
        ]
    }
    if cases:
        header = (
            f"{'CASE':<18} {'PATIENT':<16} {'NAME':<22} {'TP':>3}  {'MODIFIED':<19}  DESCRIPTION"
        )
        rows = [
            f"{c.case_id:<18} {c.patient_id[:16]:<16} {c.patient_name[:22]:<22} "
            f"{c.n_time_points:>3}  "
            f"{(c.modified_at or c.created_at).isoformat(sep=' ', timespec='seconds'):<19}  "
            f"{c.description}"
            for c in cases
        ]
        text = "\n".join([header, *rows])
    else:
        text = "no cases in the store"
    _emit(args, data, text)
    return EXIT_OK


def case_summary(case: Any) -> dict[str, Any]:
    """The public JSON shape of ``mrtdose show CASE --json``."""
    from dosimetry_core.physics.decay import net_administered_activity_mbq

    adm0 = case.first_administration
    tps = []
    for tp in case.sorted_time_points():
        f = tp.functional
        tps.append(
            {
                "time_point_id": tp.time_point_id,
                "label": tp.label,
                "acquired_at": tp.acquired_at.isoformat(),
                "hours_after_administration": case.hours_after_administration(tp),
                "modality": tp.modality,
                "units": str(tp.units),
                "total_activity_mbq": tp.total_activity_mbq,
                "duration_s": tp.duration_s,
                "calibration_status": str(f.calibration_status),
                "cps_per_mbq": f.cps_per_mbq,
                "series": {
                    "functional": {
                        "series_instance_uid": f.series_instance_uid,
                        "description": f.series_description,
                        "manufacturer": f.manufacturer,
                        "station_name": f.station_name,
                        "source_units": f.source_units,
                        "corrections": f.corrections,
                        "shape_zyx": list(f.volume.geometry.shape_zyx) if f.volume else None,
                        "spacing_mm": list(f.volume.geometry.spacing_mm) if f.volume else None,
                    },
                    "anatomical": None
                    if tp.anatomical is None
                    else {
                        "series_instance_uid": tp.anatomical.series_instance_uid,
                        "description": tp.anatomical.series_description,
                        "modality": tp.anatomical.modality,
                        "shape_zyx": list(tp.anatomical.volume.geometry.shape_zyx)
                        if tp.anatomical.volume
                        else None,
                        "spacing_mm": list(tp.anatomical.volume.geometry.spacing_mm)
                        if tp.anatomical.volume
                        else None,
                    },
                },
            }
        )
    return {
        "case_id": case.case_id,
        "version": case.version,
        "description": case.description,
        "protocol": case.protocol,
        "patient": case.patient.to_dict(),
        "administrations": [
            {
                "administration_id": a.administration_id,
                "nuclide": a.nuclide,
                "radiopharmaceutical": a.radiopharmaceutical,
                "activity_mbq": a.activity_mbq,
                "net_activity_mbq": net_administered_activity_mbq(a),
                "time": a.time.isoformat(),
                "route": a.route,
                "cycle": a.cycle,
                "source": a.source,
            }
            for a in sorted(case.administrations, key=lambda a: a.time)
        ],
        "reference_time": adm0.time.isoformat() if adm0 else None,
        "time_points": tps,
    }


def cmd_show(args: argparse.Namespace) -> int:
    store = _open_store(args)
    case = store.load_case(args.case)
    data = case_summary(case)
    p = case.patient
    lines = [
        f"Case {case.case_id}  (version {case.version})  {case.description}",
        f"Patient  {p.patient_id}  {p.name}  sex {p.sex or '-'}  born {p.birth_date or '-'}  "
        f"weight {_fmt(p.weight_kg, '.1f', 'kg')}  height {_fmt(p.height_cm, '.0f', 'cm')}",
        "Administrations:",
    ]
    if not data["administrations"]:
        lines.append("  none recorded (enter the administration before kinetics)")
    for a in data["administrations"]:
        lines.append(
            f"  {a['time'].replace('T', ' ')}  {a['nuclide']:<7} {a['activity_mbq']:9.1f} MBq  "
            f"{a['radiopharmaceutical']}  (cycle {a['cycle']}, from {a['source'] or 'entry'})"
        )
    lines.append("Time points:")
    lines.append(
        f"  {'TP':<4} {'ACQUIRED':<19} {'HOURS':>7} {'MOD':<3} {'UNITS':<7} "
        f"{'ACTIVITY':>12}  CALIBRATION / SERIES"
    )
    for t in data["time_points"]:
        cal = t["calibration_status"]
        if t["cps_per_mbq"]:
            cal += f" ({t['cps_per_mbq']:.3g} cps/MBq)"
        ct = t["series"]["anatomical"]
        lines.append(
            f"  {t['label']:<4} {t['acquired_at'][:19].replace('T', ' '):<19} "
            f"{_fmt(t['hours_after_administration'], '7.1f')} "
            f"{t['modality']:<3} {t['units']:<7} "
            f"{_fmt(t['total_activity_mbq'], '9.1f', 'MBq'):>12}  "
            f"{cal}; {t['series']['functional']['description'] or '-'}"
            f" + {(ct['modality'] + ': ' + (ct['description'] or '-')) if ct else 'no CT'}"
        )
    _emit(args, data, "\n".join(lines))
    return EXIT_OK


def cmd_demo_data(args: argparse.Namespace) -> int:
    from dosimetry_core.phantoms.demo import DemoConfig, write_demo_dicom

    config = DemoConfig(seed=args.seed, noise=not args.noise_free)
    bar = TextProgress(not args.json)
    try:
        files = write_demo_dicom(Path(args.out_dir), config, style=args.style, progress=bar)
    finally:
        bar.done()
    out = Path(args.out_dir)
    n_files = sum(1 for p in out.rglob("*") if p.is_file())
    size_mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6
    data = {
        "out_dir": str(out),
        "style": args.style,
        "seed": args.seed,
        "noise": not args.noise_free,
        "ground_truth": str(files.ground_truth_path),
        "n_files": n_files,
        "size_mb": round(size_mb, 1),
    }
    text = (
        f"wrote the demo patient ({args.style}) to {out}: {n_files} files, {size_mb:.1f} MB; "
        f"ground truth in {files.ground_truth_path}"
    )
    _emit(args, data, text)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from dosimetry_core.pipeline.demo import ensure_demo_case, find_demo_case

    store = _open_store(args)
    existed = find_demo_case(store) is not None
    bar = TextProgress(not args.json)
    try:
        case_id = ensure_demo_case(store, progress=bar)
    finally:
        bar.done()
    text = f"demo case {case_id} {'was already in' if existed else 'imported into'} the store"
    _emit(args, {"case_id": case_id}, text)
    return EXIT_OK


# ------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    common = _ArgumentParser(add_help=False)
    common.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print machine-readable JSON on stdout",
    )
    common.add_argument(
        "--store",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="case store folder (default: $MRTDOSE_STORE or the user data folder)",
    )

    parser = _ArgumentParser(
        prog="mrtdose",
        description="MRT dosimetry workstation, command line.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"mrtdose {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_ArgumentParser)

    from dosimetry_core.cli import import_command

    import_command.add_parsers(sub, common)

    p = sub.add_parser("cases", parents=[common], help="list the cases in the store")
    p.set_defaults(func=cmd_cases)

    p = sub.add_parser(
        "show", parents=[common], help="show a case: patient, administrations, time points"
    )
    p.add_argument("case", metavar="CASE")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser(
        "demo-data", parents=[common], help="write the synthetic demo patient as DICOM"
    )
    p.add_argument("out_dir", metavar="OUT_DIR")
    p.add_argument(
        "--style",
        default="siemens-bqml",
        choices=["siemens-bqml", "ge-counts"],
        help="vendor style of the SPECT series "
        "(ge-counts needs --calibration-cps-per-mbq 9 on import)",
    )
    p.add_argument("--seed", type=int, default=20261122)
    p.add_argument("--noise-free", action="store_true", help="no Poisson or CT noise")
    p.set_defaults(func=cmd_demo_data)

    p = sub.add_parser(
        "demo", parents=[common], help="import the demo patient into the store if missing"
    )
    p.set_defaults(func=cmd_demo)

    from dosimetry_core.cli.case_commands import add_parsers

    add_parsers(sub, common)
    from dosimetry_core.cli.dose_command import add_parsers as add_dose_parsers
    from dosimetry_core.cli.fit_command import add_parsers as add_fit_parsers
    from dosimetry_core.cli.kinetics_command import add_parsers as add_kinetics_parsers

    add_fit_parsers(sub, common)
    add_kinetics_parsers(sub, common)
    add_dose_parsers(sub, common)
    from dosimetry_core.cli import (
        batch_command,
        bed_command,
        entry_command,
        export_command,
        network_command,
        population_command,
        qa_command,
        records_command,
        report_command,
        run_command,
        sirt_command,
        thyroid_command,
        worklist_command,
    )

    for module in (
        run_command,
        bed_command,
        thyroid_command,
        sirt_command,
        records_command,
        report_command,
        export_command,
        population_command,
        qa_command,
        worklist_command,
        entry_command,
        batch_command,
        network_command,
    ):
        module.add_parsers(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "json"):
        args.json = False
    if not hasattr(args, "store"):
        args.store = None
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    from dosimetry_core.cli import access

    try:
        # access control before the command reads or computes anything (cli/access.py)
        access.check_access(parser, args)
        return int(args.func(args))
    except DosimetryError as exc:
        from dosimetry_core.io.text import printable

        # header text or file names in a message are printed with control characters escaped
        message = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        sys.stderr.write(f"mrtdose: {printable(message)}\n")
        return EXIT_INPUT
    except KeyboardInterrupt:
        sys.stderr.write("mrtdose: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # a bug: one line unless debugging
        if os.environ.get("MRTDOSE_DEBUG"):
            import traceback  # only here: not paid by every start

            traceback.print_exc()
        sys.stderr.write(
            f"mrtdose: internal error ({type(exc).__name__}: {exc}); "
            "set MRTDOSE_DEBUG=1 for details and please report it\n"
        )
        return EXIT_INTERNAL
    finally:
        store = access.checked_store(args)
        if store is not None and hasattr(store, "close"):
            store.close()


if __name__ == "__main__":
    raise SystemExit(main())
