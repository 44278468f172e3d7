"""Case-level kinetics: the TAC of every VOI, its fit, TIA and TIAC, kept in the case.

:func:`compute_kinetics` measures each VOI's time-activity curve on the
reference CT grid (:func:`dosimetry_core.kinetics.tac.voi_tac`), fits it
(:func:`dosimetry_core.kinetics.fitting.fit_tac`), and stores one JSON-serialisable
dict per VOI in ``case.extra["kinetics"]``, keyed by ``voi_id``, then saves the
case.  Shape of one entry (units in the key names)::

    {
      "format": "mrt-kinetics/1",
      "voi_id": str, "voi_name": str,
      "review_flag": str,            # "" only when the contour is approved
      "computed_at": ISO date-time,
      "nuclide": str, "model_requested": str,
      "administered_activity_mbq": float,   # net, first administration
      "recovery": str | None,        # description of the recovery model, if any
      "tac": Tac.to_dict(),          # time_h, activity_mbq, mean_bq_per_ml, volume_ml, ...
      "model": str | None,           # chosen model
      "parameters": {...},           # of the chosen model, with units (fit_tac)
      "tia_mbq_h": float | None, "tia_sd_mbq_h": float | None,
      "tiac_h": float | None, "tiac_sd_h": float | None,    # TIA / A_adm
      "fit": FitResult.to_dict(),    # candidates, covariance, AICc, warnings, ...
      "error": str | None,           # why there is no fit (e.g. too few points)
      "warnings": [str, ...]
    }

Non-finite numbers are stored as ``null``.  Entries of VOIs not recomputed are
kept; entries of deleted VOIs are dropped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dosimetry_core.errors import DosimetryError, InvalidInputError
from dosimetry_core.kinetics.tac import PsfRecovery, RecoveryModel, Tac, voi_tac
from dosimetry_core.model import VOI, Case, Volume
from dosimetry_core.progress import CancelCheck, ProgressCallback, check_cancel, report

KINETICS_KEY = "kinetics"
KINETICS_FORMAT = "mrt-kinetics/1"


@dataclass
class VoiKinetics:
    """Result for one VOI (see the module docstring for the stored form)."""

    voi_id: str
    voi_name: str
    tac: Tac
    model: str | None
    tia_mbq_h: float | None
    tia_sd_mbq_h: float | None
    tiac_h: float | None
    tiac_sd_h: float | None
    administered_activity_mbq: float
    review_flag: str = ""
    fit: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    nuclide: str = ""
    model_requested: str = "auto"
    recovery: str | None = None
    computed_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return _clean(
            {
                "format": KINETICS_FORMAT,
                "voi_id": self.voi_id,
                "voi_name": self.voi_name,
                "review_flag": self.review_flag,
                "computed_at": self.computed_at,
                "nuclide": self.nuclide,
                "model_requested": self.model_requested,
                "administered_activity_mbq": self.administered_activity_mbq,
                "recovery": self.recovery,
                "tac": self.tac.to_dict(),
                "model": self.model,
                "parameters": self.fit.get("parameters"),
                "tia_mbq_h": self.tia_mbq_h,
                "tia_sd_mbq_h": self.tia_sd_mbq_h,
                "tiac_h": self.tiac_h,
                "tiac_sd_h": self.tiac_sd_h,
                "fit": self.fit,
                "error": self.error,
                "warnings": list(self.warnings),
            }
        )


def _clean(value: Any) -> Any:
    """JSON-safe copy: non-finite floats -> None, tuples -> lists."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item") and not isinstance(value, str):
        try:
            return _clean(value.item())
        except (TypeError, ValueError):
            return value
    return value


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
    store: Any,
    case_id: str,
    *,
    vois: Sequence[str] | None = None,
    model: str = "auto",
    nuclide: str | None = None,
    recovery: RecoveryModel | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    fit_options: dict[str, Any] | None = None,
) -> list[VoiKinetics]:
    """TAC, fit, TIA and TIAC of every (or the named) VOI; stored in the case and saved.

    Parameters
    ----------
    store
        A :class:`~dosimetry_core.store.CaseStore`.
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
    cache: dict[str, Volume] = {}
    results: list[VoiKinetics] = []
    now = datetime.now().replace(microsecond=0).isoformat()
    n = len(selected)
    for i, voi in enumerate(selected):
        check_cancel(cancel)
        report(progress, i / n, f"kinetics: {voi.name} ({i + 1}/{n})")
        tac = voi_tac(store, case, voi, recovery=recovery, spect_cache=cache)
        fit: dict[str, Any] = {}
        err: str | None = None
        chosen: str | None = None
        tia = sd = None
        warnings = list(tac.warnings)
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
            fit = _clean(res.to_dict())
            chosen = res.model
            tia = res.tia_mbq_h if math.isfinite(res.tia_mbq_h) else None
            sd = res.tia_sd_mbq_h
            warnings.extend(res.warnings)
        except DosimetryError as exc:
            err = str(exc)
        results.append(
            VoiKinetics(
                voi_id=voi.voi_id,
                voi_name=voi.name,
                tac=tac,
                model=chosen,
                tia_mbq_h=tia,
                tia_sd_mbq_h=sd,
                tiac_h=None if tia is None else tia / a_adm,
                tiac_sd_h=None if sd is None else sd / a_adm,
                administered_activity_mbq=a_adm,
                review_flag=review_flag(voi),
                fit=fit,
                error=err,
                warnings=warnings,
                nuclide=nuc,
                model_requested=model,
                recovery=_describe(recovery),
                computed_at=now,
            )
        )
    check_cancel(cancel)
    stored = dict(case.extra.get(KINETICS_KEY) or {})
    live = {v.voi_id for v in case.vois}
    stored = {k: v for k, v in stored.items() if k in live}
    for r in results:
        stored[r.voi_id] = r.to_dict()
    case.extra[KINETICS_KEY] = stored
    store.save_case(case, audit=store.audit_spec("fit", vois=[r.voi_name for r in results]))
    report(progress, 1.0, "kinetics done")
    return results
