"""``mrtdose kernel`` (voxel S-value kernels) and ``mrtdose dose CASE`` (dose maps)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dosimetry_core.errors import InvalidInputError

KERNEL_JSON_OFFSETS = ("0,0,0", "0,0,1", "0,1,1", "1,1,1", "0,0,2", "0,1,2", "0,0,3")
"""Voxel offsets printed by ``mrtdose kernel --json`` (the public contract)."""


def _check_out_file(out: str) -> None:
    """Refuse ``--out`` before the computation when the file cannot be written there."""
    p = Path(out)
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise InvalidInputError(f"--out: folder {folder} does not exist", field="out")
    if p.is_dir():
        raise InvalidInputError(f"--out: {p} is a folder, give a file name", field="out")


def cmd_kernel(args: argparse.Namespace) -> int:
    from dosimetry_core.cli.main import TextProgress, _emit
    from dosimetry_core.dose.kernels import voxel_kernel, write_kernel

    if args.out:
        _check_out_file(args.out)
    bar = TextProgress(not args.json)
    try:
        k = voxel_kernel(
            args.nuclide,
            args.voxel_mm,
            args.medium,
            include_progeny=not args.no_progeny,
            progress=bar,
        )
    finally:
        bar.done()
    if args.out:
        try:
            write_kernel(k, args.out)
        except OSError as exc:
            raise InvalidInputError(
                f"--out: cannot write {args.out} ({exc.strerror or exc})", field="out"
            ) from exc
    values = {key: k.value_mgy_per_mbq_s(key) for key in KERNEL_JSON_OFFSETS}
    voxel_mm: Any = args.voxel_mm[0] if len(set(args.voxel_mm)) == 1 else list(args.voxel_mm)
    data = {
        "nuclide": k.nuclide,
        "voxel_mm": voxel_mm,
        "medium": k.medium,
        "unit": "mGy/(MBq*s)",
        "values": values,
        "density_g_cm3": k.density_g_cm3,
        "shape_zyx": list(k.values_gy_per_bq_s.shape),
        "absorbed_energy_mev": k.absorbed_energy_mev(),
        "emitted_energy_mev": k.emitted_energy_mev(),
        "source": k.source,
    }
    lines = [
        f"{k.nuclide} voxel S-values, {k.medium} ({k.density_g_cm3:g} g/cm3), "
        f"voxel {' x '.join(f'{s:g}' for s in k.spacing_mm)} mm, mGy/(MBq*s):"
    ]
    lines += [f"  ({key}) {v:.4e}" for key, v in values.items()]
    lines.append(
        f"absorbed within the kernel: {k.absorbed_energy_mev():.4f} of "
        f"{k.emitted_energy_mev():.4f} MeV per decay"
    )
    if args.out:
        lines.append(f"kernel written to {args.out}")
    _emit(args, data, "\n".join(lines))
    return 0


def cmd_dose(args: argparse.Namespace) -> int:
    from dosimetry_core.cli.access import acting_user_name
    from dosimetry_core.cli.main import TextProgress, _emit, _open_store
    from dosimetry_core.pipeline.dose import compute_dose

    protocol = None
    if args.limits:  # an unknown protocol is refused before the computation
        from dosimetry_core.protocols.registry import load_protocol

        protocol = load_protocol(args.limits)
    elif args.risk_factors:
        raise InvalidInputError("--risk-factors needs --limits PROTOCOL", field="risk_factors")
    store = _open_store(args)
    user = acting_user_name(store, args.user)  # --user names nobody but the logged-in user
    bar = TextProgress(not args.json)
    try:
        res = compute_dose(
            store,
            args.case,
            method=args.method,
            tia_map_id=args.tia_map,
            medium=args.medium,
            include_progeny=not args.no_progeny,
            led_energy=args.led_energy,
            mc_histories=args.histories,
            mc_target_uncertainty=args.target_uncertainty,
            mc_target_voi=args.target_voi,
            mc_target_component=args.target_component,
            mc_electrons=args.mc_electrons,
            mc_scheduler=args.scheduler,
            seed=args.seed,
            thresholds_gy=args.threshold_gy or (),
            vois=args.voi,
            dvh_bins=args.dvh_bins,
            user=user,
            progress=bar,
        )
    finally:
        bar.done()
    d = {"case_id": args.case, **res.to_dict()}
    head = f"{'VOI':<14} {'MEAN Gy':>9} {'MEDIAN':>8} {'D98':>8} {'D2':>8} {'MAX':>8} {'mL':>8}"
    lines = [f"dose map {res.dose_map.derived_id} ({res.method}):", head]
    for v in res.vois:
        s = v.statistics
        if s is None:
            lines.append(f"{v.voi_name[:14]:<14} {v.error}")
            continue
        note = v.review_flag
        comp = (res.provenance.get("mc_voi_components") or {}).get(v.voi_name)
        if comp and comp.get("photon_rel_uncertainty") is not None:
            note = (
                f"MC photon {comp['photon_mean_gy']:.3g} Gy "
                f"± {100 * comp['photon_rel_uncertainty']:.1f} % (VOI mean)  {note}"
            )
        elif v.mc_mean_voxel_uncertainty is not None:
            note = f"MC {100 * v.mc_mean_voxel_uncertainty:.1f} % (voxel mean)  {note}"

        def g(x: float | None, w: int, p: int) -> str:
            return f"{x:{w}.{p}f}" if x is not None else f"{'-':>{w}}"

        lines.append(
            f"{v.voi_name[:14]:<14} {g(s.mean_gy, 9, 3)} {g(s.median_gy, 8, 3)} "
            f"{g(s.d98_gy, 8, 3)} {g(s.d2_gy, 8, 3)} {g(s.max_gy, 8, 3)} {s.volume_ml:8.1f}  {note}"
        )
        if s.note:
            lines.append(f"{'':<14} note: {s.note}")
    if protocol is not None:
        from dosimetry_core.protocols.dose_limits import check_dose_limits

        checks = check_dose_limits(res.summary, protocol, risk_factors=args.risk_factors)
        d["limit_checks"] = [_limit_row(c) for c in checks]
        lines.append(
            f"absorbed-dose limits of {protocol.id}"
            f"{' (risk factors)' if args.risk_factors else ''}, VOI mean of this map:"
        )
        lines += [_limit_line(c) for c in checks] or ["  no limit applies to these VOIs"]
    lines += [f"warning: {w}" for w in res.warnings]
    _emit(args, d, "\n".join(lines))
    return 0


def _limit_row(c: Any) -> dict[str, Any]:
    """One ``limit_checks`` row of ``mrtdose dose --limits --json`` (a VoiLimitCheck)."""
    lim = c.limit
    return {
        "voi_id": c.voi_id,
        "voi": c.voi_name,
        "organ_id": lim.organ_id,
        "organ": lim.organ_label,
        "limit_gy": lim.limit_gy,
        "scope": lim.scope,
        "cumulative": lim.scope == "cumulative",
        "when": lim.when,
        "source": lim.source,
        "mean_gy": c.mean_gy,
        "fraction_of_limit": c.fraction_of_limit,
        "passed": c.passed,
        "result": "PASS" if c.passed else "FAIL",
    }


def _limit_line(c: Any) -> str:
    lim = c.limit
    scope = "cumulative, this map only" if lim.scope == "cumulative" else lim.scope
    return (
        f"  {c.voi_name[:14]:<14} {c.mean_gy:8.3f} Gy of {lim.limit_gy:g} Gy "
        f"({lim.organ_label}, {scope}, {100 * c.fraction_of_limit:.0f} %) "
        f"{'PASS' if c.passed else 'FAIL'}  [{lim.source}]"
    )


# ------------------------------------------------------------------------ dvh
def _dose_at_percent(edges: Any, cumulative: Any, percent: float) -> float | None:
    """D(percent): the dose (Gy) received by at least ``percent`` % of the VOI, read off
    the cumulative curve by linear interpolation between bin edges."""
    import numpy as np

    e = np.asarray(edges, dtype=float)
    c = np.asarray(cumulative, dtype=float)
    n = min(e.size, c.size)
    if n == 0:
        return None
    e, c = e[:n], c[:n]
    # c falls with the dose; np.interp needs a rising abscissa
    return float(np.interp(percent / 100.0, c[::-1], e[::-1]))


def cmd_dvh(args: argparse.Namespace) -> int:
    from dosimetry_core.cli.main import TextProgress, _emit, _open_store
    from dosimetry_core.model import DerivedKind
    from dosimetry_core.pipeline.dose_dvh import dvh_of_dose_map

    if args.bins < 1:
        raise InvalidInputError(f"--bins must be >= 1, got {args.bins}", field="bins")
    store = _open_store(args)
    case = store.load_case(args.case)
    dose_map_id = args.dose_map
    if dose_map_id is None:
        maps = case.derived_maps(DerivedKind.DOSE)
        if not maps:
            raise InvalidInputError(
                f"case {case.case_id} has no current dose map: run 'mrtdose dose' first",
                field="dose_map",
            )
        dose_map_id = maps[0].derived_id
    bar = TextProgress(not args.json)
    try:
        curves = dvh_of_dose_map(
            store, case, dose_map_id, args.voi or None, n_bins=args.bins, progress=bar
        )
    finally:
        bar.done()
    names = {v.voi_id: v.name for v in case.vois}
    data = {
        "format": "mrt-dvh/1",
        "case_id": case.case_id,
        "dose_map_id": dose_map_id,
        "unit": "Gy",
        "bins": args.bins,
        "vois": {names.get(k, k): c.to_dict() for k, c in curves.items()},
    }
    lines = [
        f"cumulative DVH on dose map {dose_map_id} ({args.bins} bins; D from the curve):",
        f"{'VOI':<14} {'D98 Gy':>9} {'D50 Gy':>9} {'D2 Gy':>9} {'mL':>8}",
    ]
    for k, c in curves.items():
        d98, d50, d2 = (
            _dose_at_percent(c.bin_edges_gy, c.cumulative_fraction, p) for p in (98, 50, 2)
        )

        def g(x: float | None) -> str:
            return f"{x:9.3f}" if x is not None else f"{'-':>9}"

        lines.append(f"{names.get(k, k)[:14]:<14} {g(d98)} {g(d50)} {g(d2)} {c.volume_ml:8.1f}")
    if not curves:
        lines.append("no VOI overlaps the dose grid")
    _emit(args, data, "\n".join(lines))
    return 0


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "kernel",
        parents=[common],
        help="voxel S-value kernel for a nuclide, voxel size and medium (computed, cached)",
    )
    p.add_argument("--nuclide", required=True, help="e.g. Lu-177, Y-90, I-131, Ac-225")
    p.add_argument(
        "--voxel-mm",
        required=True,
        type=float,
        nargs="+",
        help="voxel size in mm: one value (cubic) or three (x y z)",
    )
    p.add_argument("--medium", default="soft-tissue", help="soft-tissue, water, bone, lung, ...")
    p.add_argument("--out", default=None, help="write the whole kernel to FILE (.npz or .txt)")
    p.add_argument(
        "--no-progeny", action="store_true", help="the nuclide alone, without its progeny"
    )
    p.set_defaults(func=cmd_kernel)

    q = sub.add_parser(
        "dose", parents=[common], help="absorbed-dose map of a case and VOI dose statistics"
    )
    q.add_argument("case", metavar="CASE")
    q.add_argument("--method", required=True, choices=["led", "vsv", "vsv-density", "mc"])
    q.add_argument("--tia-map", default=None, help="TIA map id (default: the current one)")
    q.add_argument("--medium", default="soft-tissue", help="kernel medium for vsv methods")
    q.add_argument("--no-progeny", action="store_true")
    q.add_argument(
        "--led-energy",
        choices=["non-penetrating", "all"],
        default="non-penetrating",
        help="energy deposited locally by led",
    )
    q.add_argument("--histories", type=int, default=2_000_000, help="MC photon histories")
    q.add_argument(
        "--target-uncertainty",
        type=float,
        default=None,
        help="MC: run until the 1-SD relative uncertainty of the mean dose in --target-voi of "
        "--target-component is at most this (e.g. 0.02)",
    )
    q.add_argument("--target-voi", default=None, help="VOI for --target-uncertainty")
    q.add_argument(
        "--target-component",
        choices=["photon", "total"],
        default="photon",
        help="MC: the dose component --target-uncertainty applies to (photon by default: the "
        "electron part is deterministic and has no statistical uncertainty)",
    )
    q.add_argument(
        "--mc-electrons",
        choices=["local", "kernel"],
        default="local",
        help="MC: electrons, alphas and recoils deposited locally or by kernel convolution",
    )
    q.add_argument(
        "--scheduler",
        default=None,
        metavar="local[:N]|tcp://HOST:PORT",
        help="MC: split the histories across Dask workers (a local cluster of N processes, "
        "or a running scheduler); same dose and uncertainty as one process for the same "
        "--histories and --seed (with --target-uncertainty: rounds of batches)",
    )
    q.add_argument("--seed", type=int, default=0)
    q.add_argument(
        "--threshold-gy", type=float, action="append", default=None, help="V(x Gy), repeatable"
    )
    q.add_argument("--voi", action="append", default=None, help="only this VOI (repeatable)")
    q.add_argument(
        "--dvh-bins",
        type=int,
        default=None,
        help="also print each VOI's cumulative and differential DVH with this many bins (JSON)",
    )
    q.add_argument(
        "--user",
        default=None,
        help="who computes it, on a single-user store (recorded); with accounts always "
        "the logged-in user, and another name is refused",
    )
    q.add_argument(
        "--limits",
        default=None,
        metavar="PROTOCOL",
        help="also check each VOI's mean dose against this protocol's absorbed-dose limits "
        "(PASS/FAIL; a cumulative limit is checked against this map alone)",
    )
    q.add_argument(
        "--risk-factors",
        action="store_true",
        help="with --limits: the stricter limits for patients with risk factors",
    )
    q.set_defaults(func=cmd_dose)

    r = sub.add_parser(
        "dvh",
        parents=[common],
        help="cumulative DVHs of VOIs on a stored dose map (read-only)",
    )
    r.add_argument("case", metavar="CASE")
    r.add_argument(
        "--dose-map", default=None, metavar="ID", help="dose map id (default: the newest current)"
    )
    r.add_argument(
        "--voi", action="append", default=None, help="only this VOI, name or id (repeatable)"
    )
    r.add_argument("--bins", type=int, default=200, help="equal dose bins (default 200)")
    r.set_defaults(func=cmd_dvh)
