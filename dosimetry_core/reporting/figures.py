"""Report figures as PNG bytes (matplotlib, Agg backend: no display, no Qt).

* :func:`tac_figure`: measured activity per VOI at each time point with the fitted
  curve ``A(t)`` of the chosen model (:data:`dosimetry_core.kinetics.models.MODELS`);
* :func:`dvh_figure`: cumulative DVH per VOI (fraction of volume receiving >= D);
* :func:`fused_figure`: axial and coronal CT slices through the kidneys (else the
  hottest lesion) with the absorbed-dose map overlaid and a colour bar in Gy.
"""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from dosimetry_core.model import Case, TimePoint, Volume
from dosimetry_core.model.results import ProtocolRun
from dosimetry_core.store.repository import CaseRepository

DPI = 150
CT_WINDOW_HU = (-250.0, 350.0)
"""Display window of the CT (soft tissue), HU."""
DOSE_DISPLAY_FRACTION = 0.05
"""Dose below this fraction of the slice maximum is not overlaid (display only)."""


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def tac_figure(kinetics: dict[str, Any]) -> bytes | None:
    """TACs (MBq vs h) with fitted curves, log activity axis; None when there are none."""
    from dosimetry_core.kinetics.models import MODELS

    rows = [k for k in kinetics.values() if k.get("time_h") and k.get("activity_mbq")]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    colors = plt.get_cmap("tab10")
    tmax = max(max(k["time_h"]) for k in rows)
    t = np.linspace(0.0, 1.1 * tmax, 300)
    for i, k in enumerate(sorted(rows, key=lambda r: r["voi_name"])):
        c = colors(i % 10)
        ax.plot(k["time_h"], k["activity_mbq"], "o", color=c, label=k["voi_name"])
        model = MODELS.get(str(k.get("model")))
        params = k.get("parameters") or {}
        if model is not None and all(n in params for n in model.param_names):
            p = np.array([float(params[n]["value"]) for n in model.param_names])
            tau = t - float(k.get("injection_time_h") or 0.0)
            a = model.evaluate(p, np.clip(tau, 0.0, None))
            ax.plot(t, a, "-", color=c, lw=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("time after administration (h)")
    ax.set_ylabel("activity in VOI (MBq)")
    ax.set_title("Time-activity curves: measured (points) and fitted (lines)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="best")
    return _png(fig)


def dvh_figure(dvh: dict[str, Any]) -> bytes | None:
    """Cumulative DVHs (volume % vs Gy, log dose axis as lesions reach far higher doses)."""
    if not dvh:
        return None
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    colors = plt.get_cmap("tab10")
    for i, d in enumerate(sorted(dvh.values(), key=lambda r: r["voi_name"])):
        ax.plot(
            d["dose_gy"],
            100.0 * np.asarray(d["volume_fraction"]),
            color=colors(i % 10),
            label=d["voi_name"],
        )
    ax.set_xlabel("absorbed dose D (Gy)")
    ax.set_ylabel("volume receiving >= D (%)")
    ax.set_title("Cumulative dose-volume histograms")
    ax.set_ylim(0, 102)
    ax.set_xlim(left=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return _png(fig)


def _focus_index(
    store: CaseRepository, case: Case, run: ProtocolRun, ref: TimePoint, dose: Volume
) -> tuple[int, int, int]:
    """Voxel (z, y, x) of the dose grid to cut through: kidneys' centre, else the hottest lesion.

    The VOI masks are taken on the reference CT grid (through the registrations)
    and the dose is resampled onto that grid to find the hottest lesion voxel.
    """
    from dosimetry_core.errors import DosimetryError
    from dosimetry_core.imaging.resample import resample
    from dosimetry_core.kinetics.tac import mask_on_reference

    kid = {r.voi_id for r in run.vois if r.organ_id == "kidneys"}
    les = {r.voi_id for r in run.vois if r.role == "lesion"}
    pick = kid or les
    vois = [v for v in case.vois if v.voi_id in pick]
    arr = np.asarray(dose.array, dtype=float)
    if vois:
        try:
            masks = [mask_on_reference(store, case, v, ref) for v in vois]
        except DosimetryError:
            masks = []
        if masks:
            geom = masks[0][1]
            m = np.logical_or.reduce([mm for mm, _ in masks])
            if m.any():
                if kid:
                    zyx = np.argwhere(m).mean(axis=0)
                else:
                    on_ref = np.asarray(resample(dose, geom, order=1).array, dtype=float)
                    hottest = int(np.argmax(np.where(m, on_ref, -np.inf)))
                    zyx = np.array(np.unravel_index(hottest, m.shape), dtype=float)
                world = geom.index_to_world([float(v) for v in zyx])
                idx = np.clip(
                    np.round(dose.geometry.world_to_index(world)).astype(int),
                    0,
                    np.array(arr.shape) - 1,
                )
                return int(idx[0]), int(idx[1]), int(idx[2])
    top = np.unravel_index(int(np.argmax(arr)), arr.shape)
    return int(top[0]), int(top[1]), int(top[2])


def fused_figure(store: CaseRepository, case_id: str) -> bytes | None:
    """Axial and coronal CT with the dose map overlaid (colour bar in Gy); None without a map."""
    from dosimetry_core.errors import DosimetryError
    from dosimetry_core.imaging.resample import resample
    from dosimetry_core.kinetics.tac import tac_reference_time_point

    case = store.load_case(case_id)
    run = case.protocol_run
    if run is None or not run.dose_map_id:
        return None
    try:
        dmap = case.find_derived(run.dose_map_id)
        ref = tac_reference_time_point(case)
    except (KeyError, DosimetryError):
        return None
    dose = store.load_volume(dmap.volume)
    if ref.anatomical is None or ref.anatomical.volume is None:
        return None
    ct = store.load_volume(ref.anatomical.volume)
    kz, ky, kx = _focus_index(store, case, run, ref, dose)
    world = dose.geometry.index_to_world([kz, ky, kx])
    cz, cy, _ = (int(round(v)) for v in ct.geometry.world_to_index(world))
    nz, ny, _ = ct.array.shape
    cz, cy = min(max(cz, 0), nz - 1), min(max(cy, 0), ny - 1)
    d_ct = np.asarray(resample(dose, ct.geometry, order=1).array, dtype=float)
    hu = np.asarray(ct.array, dtype=float)
    sx, sy, sz = ct.geometry.spacing_mm
    dmax = float(d_ct.max()) or 1.0
    fig, axes = plt.subplots(1, 2, figsize=(8.0, 4.0), constrained_layout=True)
    views = (
        ("axial", hu[cz], d_ct[cz], sy / sx),
        ("coronal", hu[:, cy, :], d_ct[:, cy, :], sz / sx),
    )
    im = None
    for ax, (name, img, dimg, aspect) in zip(axes, views, strict=True):
        origin = "upper" if name == "axial" else "lower"
        ax.imshow(
            img,
            cmap="gray",
            vmin=CT_WINDOW_HU[0],
            vmax=CT_WINDOW_HU[1],
            aspect=aspect,
            origin=origin,
            interpolation="bilinear",
        )
        masked = np.ma.masked_less(dimg, DOSE_DISPLAY_FRACTION * dmax)
        im = ax.imshow(
            masked,
            cmap="jet",
            alpha=0.5,
            vmin=0.0,
            vmax=dmax,
            aspect=aspect,
            origin=origin,
            interpolation="bilinear",
        )
        ax.set_title(f"{name} (CT {ref.label or 'reference'} + dose)", fontsize=9)
        ax.axis("off")
    assert im is not None
    cb = fig.colorbar(im, ax=list(axes), shrink=0.85)
    cb.set_label("absorbed dose (Gy)")
    return _png(fig)


def report_figures(store: CaseRepository, content: dict[str, Any]) -> dict[str, bytes]:
    """All figures of a report, by name (``tac``, ``dvh``, ``fused``); missing ones left out."""
    out: dict[str, bytes] = {}
    tac = tac_figure(content.get("kinetics") or {})
    if tac:
        out["tac"] = tac
    dvh = dvh_figure(content.get("dvh") or {})
    if dvh:
        out["dvh"] = dvh
    fused = fused_figure(store, content["case"]["case_id"])
    if fused:
        out["fused"] = fused
    return out
