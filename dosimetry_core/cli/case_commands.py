"""``mrtdose register``, ``voi`` and ``contour``: registration and contours, headless."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dosimetry_core.errors import InvalidInputError


def _io() -> tuple[Any, Any]:
    from dosimetry_core.cli.main import _emit, _open_store

    return _emit, _open_store


# ------------------------------------------------------------------ register
def cmd_register(args: argparse.Namespace) -> int:
    from dosimetry_core.cli.main import TextProgress
    from dosimetry_core.pipeline.registration import reference_time_point, register_case

    emit, open_store = _io()
    store = open_store(args)
    bar = TextProgress(not args.json)
    try:
        rows = register_case(
            store,
            args.case,
            reference=args.reference,
            deformable=args.deformable,
            time_points=args.time_point or None,
            progress=bar,
        )
    finally:
        bar.done()
    case = store.load_case(args.case)
    ref = reference_time_point(case, args.reference)
    data = {
        "case_id": case.case_id,
        "reference": ref.label,
        "reference_time_point_id": ref.time_point_id,
        "deformable": bool(args.deformable),
        "time_points": [r.to_dict() for r in rows],
    }
    lines = [f"registered to {ref.label} ({'rigid + demons' if args.deformable else 'rigid'}):"]
    for r in rows:
        if r.translation_mm is not None and r.rotation_deg is not None:
            t = ", ".join(f"{v:+.2f}" for v in r.translation_mm)
            a = ", ".join(f"{v:+.2f}" for v in r.rotation_deg)
            q = r.quality
            lines.append(
                f"  {r.label:<4} translation ({t}) mm  rotation ({a}) deg  "
                f"body Dice {q.get('body_dice', float('nan')):.3f}  "
                f"bone Dice {q.get('bone_dice', float('nan')):.3f}  [{r.elapsed_s:.1f} s]"
            )
        else:
            lines.append(f"  {r.label:<4} {r.status}: {r.message}")
    emit(args, data, "\n".join(lines))
    return 0


def cmd_registration_review(args: argparse.Namespace) -> int:
    from dosimetry_core.model import RegistrationStatus
    from dosimetry_core.pipeline.contouring import acting_user
    from dosimetry_core.pipeline.registration import set_registration_status

    emit, open_store = _io()
    store = open_store(args)
    reviewer = acting_user(store, args.user)  # --user names nobody but the logged-in user
    status = RegistrationStatus.ACCEPTED if args.action == "accept" else RegistrationStatus.REJECTED
    set_registration_status(store, args.case, args.time_point, status, reviewer, args.comment or "")
    emit(
        args,
        {"case_id": args.case, "time_point": args.time_point, "status": str(status)},
        f"registration of {args.time_point}: {status}",
    )
    return 0


# ----------------------------------------------------------------------- voi
def _voi_rows_text(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no VOIs in this case"
    head = f"{'NAME':<16} {'KIND':<9} {'TP':<4} {'VOLUME':>10} {'MASS':>10}  STATUS"
    out = [head]
    for r in rows:
        mass = f"{r['mass_g']:.1f} g" if r["mass_g"] is not None else "-"
        flag = f"  ({r['flag']})" if r["flag"] else ""
        out.append(
            f"{r['name'][:16]:<16} {r['kind']:<9} {r['time_point']:<4} "
            f"{r['volume_ml']:8.1f} mL {mass:>10}  {r['status']}{flag}"
        )
    return "\n".join(out)


def cmd_voi(args: argparse.Namespace) -> int:
    from dosimetry_core.pipeline.contouring import voi_table

    emit, open_store = _io()
    store = open_store(args)
    case = store.load_case(args.case)
    rows = voi_table(store, case)
    emit(args, {"case_id": case.case_id, "vois": rows}, _voi_rows_text(rows))
    return 0


# ------------------------------------------------------------------- contour
def _seed(values: list[float] | None) -> tuple[float, float, float]:
    if not values or len(values) != 3:
        raise InvalidInputError("--seed-mm needs three LPS coordinates in mm: X Y Z")
    return (float(values[0]), float(values[1]), float(values[2]))


def cmd_contour(args: argparse.Namespace) -> int:
    from dosimetry_core.pipeline import contouring as c

    emit, open_store = _io()
    store = open_store(args)
    user = c.acting_user(store, getattr(args, "user", None))  # refused before anything is read
    case = store.load_case(args.case)
    op = args.operation
    result: dict[str, Any] = {"case_id": case.case_id, "operation": op}
    text = ""
    changed = True
    if op == "threshold":
        voi = c.threshold(
            store,
            case,
            args.name,
            time_point=args.time_point,
            image=args.image,
            lower=args.lower,
            upper=args.upper,
            percent_of_max=args.percent,
            within=args.within,
            largest_component=args.largest,
            user=user,
        )
    elif op == "grow":
        voi = c.region_grow(
            store,
            case,
            args.name,
            _seed(args.seed_mm),
            time_point=args.time_point,
            image=args.image,
            lower=args.lower,
            upper=args.upper,
            tolerance_percent=args.tolerance_percent,
            user=user,
        )
    elif op == "margin":
        voi = c.margin(store, case, args.name, args.mm, out=args.out, user=user)
    elif op == "boolean":
        voi = c.boolean(store, case, args.op, args.a, args.b, args.out, user=user)
    elif op == "fill-holes":
        voi = c.fill_holes(store, case, args.name, plane=args.plane, user=user)
    elif op == "largest":
        voi = c.keep_largest(store, case, args.name, user=user)
    elif op == "interpolate":
        voi = c.interpolate(store, case, args.name, plane=args.plane, user=user)
    elif op == "propagate":
        voi = c.propagate(store, case, args.name, args.to, user=user)
    elif op in ("submit", "approve", "reject"):
        from dosimetry_core.pipeline.voi_approval import review_and_save

        # the workstation's review step saves through the same core call
        voi = review_and_save(store, case, op, args.name, args.comment or "", user=user)
        changed = False  # saved and audited there
    elif op == "import-rtstruct":
        from dosimetry_core.pipeline.contour_io import import_rtstruct_into_case

        vois, warnings = import_rtstruct_into_case(
            store, case, Path(args.file), time_point=args.time_point, names=args.roi, user=user
        )
        result["vois"] = [v.name for v in vois]
        result["warnings"] = warnings
        text = f"imported {len(vois)} VOI(s): {', '.join(v.name for v in vois)}" + "".join(
            f"\nwarning: {w}" for w in warnings
        )
        voi = None
    elif op in ("import-seg", "import-nifti"):
        from dosimetry_core.pipeline import contour_io

        if op == "import-seg":
            vois = contour_io.import_seg_into_case(
                store, case, Path(args.file), time_point=args.time_point, user=user
            )
        else:
            if not args.time_point:
                raise InvalidInputError(
                    "import-nifti needs --time-point (NIfTI has no DICOM frame)"
                )
            vois = contour_io.import_nifti_into_case(
                store, case, Path(args.file), time_point=args.time_point, user=user
            )
        result["vois"] = [v.name for v in vois]
        text = f"imported {len(vois)} VOI(s): {', '.join(v.name for v in vois)}"
        voi = None
    elif op in ("export-rtstruct", "export-seg", "export-nifti"):
        from dosimetry_core.pipeline import contour_io

        target = Path(args.out)
        if op == "export-rtstruct":
            out = contour_io.export_rtstruct_from_case(
                store,
                case,
                target,
                ct_dir=Path(args.ct_dir),
                time_point=args.time_point,
                names=args.voi,
            )
        elif op == "export-seg":
            out = contour_io.export_seg_from_case(
                store,
                case,
                target,
                ct_dir=Path(args.ct_dir),
                time_point=args.time_point,
                names=args.voi,
            )
        else:
            out = contour_io.export_nifti_from_case(
                store, case, target, time_point=args.time_point, names=args.voi
            )
        result["path"] = str(out)
        text = f"wrote {out}"
        voi = None
        changed = False
    else:  # pragma: no cover - argparse restricts the choices
        raise InvalidInputError(f"unknown contour operation {op!r}")
    if changed:
        action = "approve-contour" if op in ("approve", "reject") else "contour"
        store.save_case(case, audit=store.audit_spec(action, operation=op))
    if voi is not None:
        from dosimetry_core.pipeline.contouring import voi_table

        row = next(r for r in voi_table(store, case) if r["voi_id"] == voi.voi_id)
        result["voi"] = row
        text = _voi_rows_text([row])
    emit(args, result, text)
    return 0


def cmd_contour_edit(args: argparse.Namespace) -> int:
    """``mrtdose contour rename|kind|colour|delete CASE VOI ...`` through ``pipeline.voi_edit``.

    The same saved, audited edits as the workstation's VOI list; VOI by name or id.
    """
    from dosimetry_core.pipeline import voi_edit
    from dosimetry_core.pipeline.contouring import voi_table
    from dosimetry_core.pipeline.voi_review import find_voi

    emit, open_store = _io()
    store = open_store(args)
    case = store.load_case(args.case)
    op = args.operation
    voi = find_voi(case, args.voi)
    result: dict[str, Any] = {"case_id": case.case_id, "operation": op}
    if op == "delete":
        name = voi_edit.delete_voi(store, case, voi.voi_id)
        result.update({"deleted": name, "voi_id": voi.voi_id})
        emit(args, result, f"deleted VOI {name} ({voi.voi_id})")
        return 0
    if op == "rename":
        previous = voi.name
        voi = voi_edit.rename_voi(store, case, voi.voi_id, args.new_name)
        result["previous_name"] = previous
    elif op == "kind":
        voi = voi_edit.set_voi_style(store, case, voi.voi_id, kind=args.kind)
    elif op == "colour":
        r, g, b = args.rgb
        voi = voi_edit.set_voi_style(store, case, voi.voi_id, color_rgb=(r, g, b))
    else:  # pragma: no cover - argparse restricts the choices
        raise InvalidInputError(f"unknown contour operation {op!r}")
    row = next(r for r in voi_table(store, case) if r["voi_id"] == voi.voi_id)
    result["voi"] = row
    result["color_rgb"] = list(voi.color_rgb)
    text = _voi_rows_text([row])
    if op == "colour":
        text += f"\ncolour {' '.join(str(v) for v in voi.color_rgb)}"
    emit(args, result, text)
    return 0


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register the commands on the main parser's sub-parsers."""
    p = sub.add_parser(
        "register",
        parents=[common],
        help="register every time point's CT to a reference time point",
    )
    p.add_argument("case", metavar="CASE")
    p.add_argument(
        "--reference",
        metavar="TIME_POINT",
        default=None,
        help="time point id, label (TP1) or 1-based index (default: the first)",
    )
    p.add_argument(
        "--deformable", action="store_true", help="refine with demons after the rigid step"
    )
    p.add_argument(
        "--time-point",
        action="append",
        metavar="TIME_POINT",
        help="register only this time point (repeat for several; e.g. to redo a rejected one)",
    )
    p.set_defaults(func=cmd_register)

    p = sub.add_parser("registration", parents=[common], help="accept or reject a registration")
    p.add_argument("case", metavar="CASE")
    p.add_argument("action", choices=["accept", "reject"])
    p.add_argument("time_point", metavar="TIME_POINT")
    p.add_argument("--user", default=None)
    p.add_argument("--comment", default=None)
    p.set_defaults(func=cmd_registration_review)

    p = sub.add_parser(
        "voi", parents=[common], help="list the VOIs of a case: volume, mass, status"
    )
    p.add_argument("case", metavar="CASE")
    p.set_defaults(func=cmd_voi)

    from dosimetry_core.cli.main import _ArgumentParser

    p = sub.add_parser("contour", parents=[common], help="contour operations on a case")
    p.add_argument("case", metavar="CASE")
    ops = p.add_subparsers(
        dest="operation", metavar="OPERATION", parser_class=_ArgumentParser, required=True
    )

    def op(name: str, help_text: str) -> argparse.ArgumentParser:
        q: argparse.ArgumentParser = ops.add_parser(name, parents=[common], help=help_text)
        q.add_argument(
            "--user",
            default=None,
            help="who does it on a single-user store (default: $MRTDOSE_USER or $USER); "
            "with accounts always the logged-in user, and another name is refused",
        )
        q.set_defaults(func=cmd_contour)
        return q

    q = op("threshold", "absolute or relative (%% of max) threshold on SPECT or CT")
    q.add_argument("--name", required=True)
    q.add_argument("--time-point", default=None)
    q.add_argument("--image", choices=["spect", "ct"], default="spect")
    q.add_argument(
        "--lower", type=float, default=None, help="lower bound in image units (Bq/mL or HU)"
    )
    q.add_argument("--upper", type=float, default=None)
    q.add_argument("--percent", type=float, default=None, help="percent of the maximum (relative)")
    q.add_argument("--within", default=None, help="restrict to this VOI")
    q.add_argument("--largest", action="store_true", help="keep the largest connected component")

    q = op("grow", "region growing from a seed point (LPS mm)")
    q.add_argument("--name", required=True)
    q.add_argument("--seed-mm", type=float, nargs=3, metavar=("X", "Y", "Z"), required=True)
    q.add_argument("--time-point", default=None)
    q.add_argument("--image", choices=["spect", "ct"], default="spect")
    q.add_argument("--lower", type=float, default=None)
    q.add_argument("--upper", type=float, default=None)
    q.add_argument("--tolerance-percent", type=float, default=None)

    q = op("margin", "grow (+mm) or shrink (-mm) a VOI")
    q.add_argument("--name", required=True)
    q.add_argument("--mm", type=float, required=True)
    q.add_argument("--out", default=None, help="store as a new VOI instead of replacing")

    q = op("boolean", "union, intersection or subtraction of two VOIs")
    q.add_argument("op", choices=["union", "intersect", "subtract"])
    q.add_argument("a")
    q.add_argument("b")
    q.add_argument("--out", required=True)

    for name, help_text in (
        ("fill-holes", "fill holes"),
        ("largest", "keep the largest component"),
        ("interpolate", "interpolate between drawn slices"),
    ):
        q = op(name, help_text)
        q.add_argument("--name", required=True)
        if name != "largest":
            q.add_argument(
                "--plane",
                choices=["axial", "coronal", "sagittal"],
                default=None if name == "fill-holes" else "axial",
            )

    q = op("propagate", "copy a VOI to another time point through the registration")
    q.add_argument("--name", required=True)
    q.add_argument("--to", required=True, metavar="TIME_POINT")

    for name in ("submit", "approve", "reject"):
        q = op(name, f"{name} a contour (physician verification)")
        q.add_argument("name", metavar="VOI")
        q.add_argument("--comment", default=None)

    def edit(name: str, help_text: str) -> argparse.ArgumentParser:
        q: argparse.ArgumentParser = ops.add_parser(name, parents=[common], help=help_text)
        q.add_argument("voi", metavar="VOI", help="VOI name or id")
        q.set_defaults(func=cmd_contour_edit)
        return q

    q = edit("rename", "rename a VOI (unique on its time point)")
    q.add_argument("new_name", metavar="NEW_NAME")
    q = edit("kind", "set a VOI's kind")
    q.add_argument("kind", choices=["organ", "lesion", "reference"])
    q = edit("colour", "set a VOI's display colour")
    q.add_argument("rgb", type=int, nargs=3, metavar=("R", "G", "B"), help="0..255 each")
    edit("delete", "delete a VOI that is not approved")

    q = op("import-rtstruct", "import ROIs of an RT Structure Set as VOIs")
    q.add_argument("file")
    q.add_argument(
        "--time-point",
        default=None,
        help="time point whose CT grid receives the masks (default: same frame of reference)",
    )
    q.add_argument("--roi", action="append", default=None, help="import only this ROI (repeatable)")

    for name in ("import-seg", "import-nifti"):
        q = op(name, f"import a {name.split('-')[1].upper()} file as VOIs")
        q.add_argument("file")
        q.add_argument(
            "--time-point", default=None, help="time point whose CT grid receives the masks"
        )

    for name in ("export-rtstruct", "export-seg", "export-nifti"):
        q = op(name, f"write VOIs as {name.split('-')[1].upper()}")
        q.add_argument("out")
        q.add_argument("--time-point", default=None)
        q.add_argument(
            "--voi", action="append", default=None, help="export only this VOI (repeatable)"
        )
        if name != "export-nifti":
            q.add_argument(
                "--ct-dir",
                required=True,
                help="folder of the CT series the contours refer to (the time point's CT)",
            )
