"""Case-level kinetics: the TAC of every VOI, its fit, TIA and TIAC, kept in the case.

:func:`compute_kinetics` measures each VOI's time-activity curve on the
reference CT grid (:func:`dosimetry_core.kinetics.tac.voi_tac`), fits it
(:func:`dosimetry_core.kinetics.fitting.fit_tac`), and keeps one typed
:class:`~dosimetry_core.model.results.VoiKinetics` per VOI in a new
:class:`~dosimetry_core.model.results.KineticsRecord` of ``case.results``
(the previous record is superseded), then saves it onto the newest stored case
if the VOIs, administrations and time points it read are unchanged
(:mod:`dosimetry_core.store.case_inputs`: no stale saves).  The new record holds
the VOIs just computed and the current entries of the other VOIs (each entry
has its own ``computed_at``); entries of deleted VOIs are dropped.

TIAC (h) = TIA / A_adm with A_adm the **net** administered activity of the first
administration (syringe minus residual, decay-corrected to the administration
time: :func:`dosimetry_core.physics.decay.net_administered_activity_mbq`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from dosimetry_core.errors import DosimetryError, InvalidInputError
from dosimetry_core.kinetics.tac import PsfRecovery, RecoveryModel, Tac, voi_tac
from dosimetry_core.model import VOI, Case, Volume
from dosimetry_core.model.results import (
    CandidateModel,
    KineticsRecord,
    TacPoints,
    VoiKinetics,
    json_clean,
    parameters_from_dict,
)
from dosimetry_core.progress import CancelCheck, ProgressCallback, check_cancel, report
from dosimetry_core.store.case_inputs import fingerprint, save_results
from dosimetry_core.store.repository import CaseRepository

__all__ = ["VoiKinetics", "compute_kinetics", "voi_kinetics"]


def voi_kinetics(
    voi: VOI,
    tac: Tac,
    fit: dict[str, Any] | None,
    *,
    administered_activity_mbq: float,
    review_flag: str = "",
    error: str | None = None,
    nuclide: str = "",
    model_requested: str = "auto",
    recovery: str | None = None,
    computed_at: str = "",
) -> VoiKinetics:
    """The typed kinetics of one VOI from its TAC and fit report (``FitResult.to_dict()``).

    ``administered_activity_mbq`` must be the **net** administered activity
    (:func:`~dosimetry_core.physics.decay.net_administered_activity_mbq`):
    ``tiac_h = tia_mbq_h / administered_activity_mbq``.  ``fit`` None: no fit
    (``error`` says why).
    """
    f: dict[str, Any] = json_clean(fit or {})
    tia = f.get("tia_mbq_h") if f else None
    sd = f.get("tia_sd_mbq_h") if f else None
    a_adm = float(administered_activity_mbq)
    half = f.get("half_lives_h") or {}
    return VoiKinetics(
        voi_id=voi.voi_id,
        voi_name=voi.name,
        tac=TacPoints.from_dict(tac.to_dict()),
        model=f.get("model") if f else None,
        tia_mbq_h=tia,
        tia_sd_mbq_h=sd,
        tiac_h=None if tia is None else tia / a_adm,
        tiac_sd_h=None if sd is None else sd / a_adm,
        administered_activity_mbq=a_adm,
        parameters=parameters_from_dict(f.get("parameters")),
        candidates=tuple(CandidateModel.from_dict(c) for c in f.get("candidates") or ()),
        half_lives_h=tuple(
            (str(k), v.get("value") if isinstance(v, dict) else v) for k, v in half.items()
        ),
        injection_time_h=float(f.get("injection_time_h") or 0.0),
        review_flag=review_flag,
        error=error,
        warnings=tuple(list(tac.warnings) + [str(w) for w in f.get("warnings") or ()]),
        nuclide=nuclide,
        model_requested=model_requested,
        recovery=recovery,
        computed_at=computed_at,
        fit=f,
    )


def _describe(recovery: RecoveryModel | None) -> str | None:
    if recovery is None:
        return None
    if isinstance(recovery, PsfRecovery):
        return f"shape-specific RC, Gaussian PSF FWHM {recovery.fwhm_mm:g} mm"
    if callable(recovery):
        return f"RC(volume) from {getattr(recovery, '__name__', 'a function')}"
    return f"fixed RC {float(recovery):g}"


def _select(case: Case, vois: Sequence[str] | None) -> list[VOI]:
    if vois is None:
        return list(case.vois)
    from dosimetry_core.pipeline.voi_review import find_voi

    return [find_voi(case, key) for key in vois]


def compute_kinetics(
    store: CaseRepository,
    case_id: str,
    *,
    vois: Sequence[str] | None = None,
    model: str = "auto",
    nuclide: str | None = None,
    recovery: RecoveryModel | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    fit_options: dict[str, Any] | None = None,
    user: str = "",
) -> list[VoiKinetics]:
    """TAC, fit, TIA and TIAC of every (or the named) VOI; stored in the case and saved.

    TIAC divides by the net administered activity (module docstring).

    Parameters
    ----------
    store
        The case store.
    case_id
        The case (time points registered; an administration entered).
    vois
        VOI ids or names; default every VOI of the case.
    model
        ``"auto"`` (AICc selection) or a model name of :func:`fit_tac`.
    nuclide
        Default: the first administration's nuclide.
    recovery
        Optional partial-volume correction (see :func:`voi_tac`).
    progress, cancel
        :mod:`dosimetry_core.progress` callbacks; on cancel nothing is saved.
    fit_options
        Extra keyword arguments for :func:`fit_tac` (e.g. ``fallback=True``).
    user
        Who computed it (the record's ``created_by``; default the store's actor).

    Returns
    -------
    list of VoiKinetics
        In the order of ``vois`` (or of the case's VOIs).  A VOI whose fit
        failed has ``error`` set and no TIA; the others are still computed.

    Raises
    ------
    InvalidInputError
        No administration, no VOIs, unknown VOI, unregistered time points
        ("register first"), non-quantitative SPECT.
    Cancelled
        If cancelled.
    """
    from dosimetry_core.kinetics.fitting import fit_tac
    from dosimetry_core.physics.decay import net_administered_activity_mbq
    from dosimetry_core.pipeline.voi_review import review_flag

    case = store.load_case(case_id)
    adm = case.first_administration
    if adm is None:
        raise InvalidInputError(f"case {case_id} has no administration: enter it first")
    a_adm = net_administered_activity_mbq(adm)
    if not a_adm > 0:
        raise InvalidInputError(f"case {case_id}: the net administered activity is not positive")
    nuc = nuclide or adm.nuclide
    selected = _select(case, vois)
    if not selected:
        raise InvalidInputError(f"case {case_id} has no VOIs: draw or import contours first")
    inputs = fingerprint(
        case,
        "kinetics fit",
        parts=("administrations", "time_points", "vois"),
        vois=[v.voi_id for v in selected],
    )
    cache: dict[str, Volume] = {}
    results: list[VoiKinetics] = []
    now = datetime.now().replace(microsecond=0).isoformat()
    n = len(selected)
    for i, voi in enumerate(selected):
        check_cancel(cancel)
        report(progress, i / n, f"kinetics: {voi.name} ({i + 1}/{n})")
        tac = voi_tac(store, case, voi, recovery=recovery, spect_cache=cache)
        fit: dict[str, Any] | None = None
        err: str | None = None
        try:
            res = fit_tac(
                tac.time_h,
                tac.activity_mbq,
                model=model,
                nuclide=nuc,
                injection_time_h=0.0,
                administered_activity_mbq=a_adm,
                **(fit_options or {}),
            )
            fit = res.to_dict()
            if not math.isfinite(res.tia_mbq_h):
                fit["tia_mbq_h"] = None
        except DosimetryError as exc:
            err = str(exc)
        results.append(
            voi_kinetics(
                voi,
                tac,
                fit,
                administered_activity_mbq=a_adm,
                review_flag=review_flag(voi),
                error=err,
                nuclide=nuc,
                model_requested=model,
                recovery=_describe(recovery),
                computed_at=now,
            )
        )
    check_cancel(cancel)
    actor = getattr(store, "actor", None)

    def apply(latest: Case) -> None:
        live = {v.voi_id for v in latest.vois}
        new_ids = {r.voi_id for r in results}
        kept = []
        current = latest.kinetics
        if current is not None:
            kept = [v for v in current.vois if v.voi_id in live and v.voi_id not in new_ids]
        latest.add_result(
            KineticsRecord(
                vois=tuple(kept + results),
                created_by=user or str(getattr(actor, "username", "") or ""),
                source="kinetics",
            )
        )

    # onto the newest stored case, refused if a VOI fitted, an administration or a time
    # point changed meanwhile (StaleInputsError; nothing saved)
    save_results(
        store, inputs, apply, audit=store.audit_spec("fit", vois=[r.voi_name for r in results])
    )
    report(progress, 1.0, "kinetics done")
    return results
