"""Time-activity curves (TACs) of VOIs from registered quantitative SPECT/PET time points.

A TAC is measured on **one grid**: the CT grid of the reference time point (the
time point every registration points to).  For every time point its SPECT is
brought onto that grid through its registration
(:func:`dosimetry_core.imaging.case_volumes.spect_on_reference`; linear
interpolation, which preserves activity *concentration*), and the VOI's total
activity is

``A [MBq] = sum_{v in VOI} C_v [Bq/mL] * V_voxel [mL] * 1e-6``

with ``V_voxel`` the reference CT voxel volume, and its mean concentration
``mean(C_v)`` (Bq/mL) (PHYSICS.md section 2).  Activities are at the scan
time (acquisition start), **not** decay corrected (PHYSICS.md section 3), with
the time in hours after the (first) administration.

VOIs drawn on another time point's CT grid are first carried onto the
reference grid through that time point's registration (rigid matrix, plus the
deformation field when there is one; linear interpolation of the 0/1 mask,
threshold 0.5) -- the same convention as
:func:`dosimetry_core.pipeline.contouring.propagate`.

Partial-volume correction (optional): ``A_corrected = A_measured / RC`` with a
recovery coefficient RC from a sphere-phantom measurement (NEMA IEC body
phantom), either fixed or a function of the VOI volume (PHYSICS.md section 2).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.model import VOI, Case, Geometry, ImageUnits, TimePoint, Volume
from dosimetry_core.model.case import RegistrationStatus
from dosimetry_core.store.repository import CaseRepository


@dataclass(frozen=True)
class PsfRecovery:
    """Shape-specific recovery coefficient from the VOI itself and the system resolution.

    ``RC = mean over the VOI of (G * 1_VOI)``: the fraction of the counts of a
    uniformly filled object of exactly this shape that stay inside it after
    blurring with an isotropic Gaussian point-spread function of FWHM
    ``fwhm_mm`` (the reconstructed SPECT resolution, measured with a phantom).
    This is the diagonal term of the geometric transfer matrix (Rousset et al.,
    J Nucl Med 1998;39:904-911): it corrects spill-**out** only; spill-in from
    hotter neighbours is not removed, so it suits organs hotter than their
    surroundings (kidneys, spleen, liver in Lu-177 DOTATATE).

    Attributes
    ----------
    fwhm_mm
        System resolution (FWHM, mm) of the reconstructed images.
    """

    fwhm_mm: float

    def for_mask(self, mask: NDArray[np.bool_], geometry: Geometry) -> float:
        """RC of the VOI ``mask`` on ``geometry`` (dimensionless, in (0, 1])."""
        from scipy import ndimage

        if not np.isfinite(self.fwhm_mm) or self.fwhm_mm < 0:
            raise InvalidInputError(f"PSF FWHM {self.fwhm_mm!r} mm must be >= 0")
        if self.fwhm_mm == 0:
            return 1.0
        sigma_mm = self.fwhm_mm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
        zz, yy, xx = np.nonzero(mask)
        pad = [int(np.ceil(4.0 * sigma_mm / s)) + 1 for s in geometry.spacing_mm[::-1]]
        lo = [max(0, int(a.min()) - p) for a, p in zip((zz, yy, xx), pad, strict=True)]
        hi = [
            min(n, int(a.max()) + p + 1)
            for a, p, n in zip((zz, yy, xx), pad, mask.shape, strict=True)
        ]
        box = mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        blurred = ndimage.gaussian_filter(
            box.astype(np.float64),
            [sigma_mm / s for s in geometry.spacing_mm[::-1]],
            mode="constant",
            cval=0.0,
            truncate=4.0,
        )
        return float(blurred[box].mean())


RecoveryModel = float | Callable[[float], float] | PsfRecovery
"""A fixed recovery coefficient, a function ``volume_ml -> RC``, or a :class:`PsfRecovery`."""


@dataclass
class Tac:
    """The time-activity curve of one VOI (one entry per time point, in time order).

    Attributes
    ----------
    voi_id, voi_name
        The VOI.
    reference_time_point_id
        The time point whose CT grid the VOI was evaluated on.
    time_point_ids, labels
        The time points.
    time_h
        Hours after the first administration (acquisition start).
    activity_mbq
        Activity in the VOI at scan time (MBq), divided by the recovery
        coefficient when one was given.
    measured_activity_mbq
        The same before the recovery correction (MBq).
    mean_bq_per_ml
        Mean activity concentration in the VOI at scan time (Bq/mL), recovery
        corrected like ``activity_mbq``.
    volume_ml
        VOI volume on the reference grid (mL): voxel count x voxel volume.
    recovery_coefficient
        The RC used (None: no correction).
    registration_status
        Per time point: ``"reference"``, or the status of its registration.
    warnings
        Things the user should see beside the numbers (e.g. registrations not
        reviewed yet).
    """

    voi_id: str
    voi_name: str
    reference_time_point_id: str
    time_point_ids: list[str]
    labels: list[str]
    time_h: list[float]
    activity_mbq: list[float]
    measured_activity_mbq: list[float]
    mean_bq_per_ml: list[float]
    volume_ml: float
    recovery_coefficient: float | None = None
    registration_status: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (units in the key names)."""
        return {
            "voi_id": self.voi_id,
            "voi_name": self.voi_name,
            "reference_time_point_id": self.reference_time_point_id,
            "time_point_ids": list(self.time_point_ids),
            "labels": list(self.labels),
            "time_h": [float(v) for v in self.time_h],
            "activity_mbq": [float(v) for v in self.activity_mbq],
            "measured_activity_mbq": [float(v) for v in self.measured_activity_mbq],
            "mean_bq_per_ml": [float(v) for v in self.mean_bq_per_ml],
            "volume_ml": float(self.volume_ml),
            "recovery_coefficient": self.recovery_coefficient,
            "registration_status": list(self.registration_status),
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Tac:
        return cls(
            voi_id=d["voi_id"],
            voi_name=d["voi_name"],
            reference_time_point_id=d["reference_time_point_id"],
            time_point_ids=list(d["time_point_ids"]),
            labels=list(d["labels"]),
            time_h=[float(v) for v in d["time_h"]],
            activity_mbq=[float(v) for v in d["activity_mbq"]],
            measured_activity_mbq=[float(v) for v in d["measured_activity_mbq"]],
            mean_bq_per_ml=[float(v) for v in d["mean_bq_per_ml"]],
            volume_ml=float(d["volume_ml"]),
            recovery_coefficient=d.get("recovery_coefficient"),
            registration_status=list(d.get("registration_status", [])),
            warnings=list(d.get("warnings", [])),
        )


def _name(tp: TimePoint) -> str:
    return tp.label or tp.time_point_id


def tac_reference_time_point(case: Case) -> TimePoint:
    """The time point TACs are measured on, after checking every registration.

    The reference is the time point the registrations point to (default: the
    first in time when there is only one time point or none is registered).

    Raises
    ------
    InvalidInputError
        No time points; registrations pointing to different references; time
        points (other than the reference) not registered or with a rejected
        registration -- named, with "register first".
    """
    tps = case.sorted_time_points()
    if not tps:
        raise InvalidInputError(f"case {case.case_id} has no time points")
    refs = {t.registration.reference_time_point_id for t in tps if t.registration is not None}
    if len(refs) > 1:
        raise InvalidInputError(
            f"case {case.case_id}: the time points are registered to different references "
            f"({', '.join(sorted(refs))}); register the case again to one reference"
        )
    if refs:
        ref_id = next(iter(refs))
        ref = next((t for t in tps if t.time_point_id == ref_id), None)
        if ref is None:
            raise InvalidInputError(
                f"case {case.case_id}: the registration reference {ref_id} is not a time point "
                "of the case; register the case again"
            )
    else:
        ref = tps[0]
    missing = [_name(t) for t in tps if t is not ref and t.registration is None]
    if missing:
        raise InvalidInputError(
            f"time point(s) {', '.join(missing)} not registered to {_name(ref)}: "
            "register first (mrtdose register)"
        )
    rejected = [
        _name(t)
        for t in tps
        if t.registration is not None and t.registration.status == RegistrationStatus.REJECTED
    ]
    if rejected:
        raise InvalidInputError(
            f"the registration of time point(s) {', '.join(rejected)} was rejected: "
            "register first (redo the registration)"
        )
    if ref.anatomical is None or ref.anatomical.volume is None:
        raise InvalidInputError(
            f"the reference time point {_name(ref)} has no CT: TACs are measured on its CT grid"
        )
    return ref


def recovery_coefficient(
    recovery: RecoveryModel | None,
    volume_ml: float,
    mask: NDArray[np.bool_] | None = None,
    geometry: Geometry | None = None,
) -> float | None:
    """Evaluate a recovery model for a VOI of ``volume_ml`` mL (None: no correction).

    A :class:`PsfRecovery` needs the ``mask`` and its ``geometry``.

    Raises
    ------
    InvalidInputError
        If the RC is not a positive finite number.
    """
    if recovery is None:
        return None
    if isinstance(recovery, PsfRecovery):
        if mask is None or geometry is None:
            raise InvalidInputError("a PSF recovery coefficient needs the VOI mask")
        rc = recovery.for_mask(mask, geometry)
    elif callable(recovery):
        rc = float(recovery(volume_ml))
    else:
        rc = float(recovery)
    if not np.isfinite(rc) or rc <= 0.0:
        raise InvalidInputError(
            f"recovery coefficient {rc!r} for a {volume_ml:.1f} mL VOI is not a positive number"
        )
    return rc


def mask_on_reference(
    store: CaseRepository, case: Case, voi: VOI, reference: TimePoint
) -> tuple[NDArray[np.bool_], Geometry]:
    """The VOI mask on the reference time point's CT grid.

    A mask on the reference CT grid is returned as is.  A mask drawn on another
    time point's grid is carried through that time point's registration
    (``matrix_ref_to_tp`` and its deformation field, if any): linear
    interpolation of the 0/1 mask, threshold 0.5.

    Raises
    ------
    InvalidInputError
        The VOI's time point is unknown, or its grid is not the reference CT grid
        and the time point is not registered.
    """
    from dosimetry_core.imaging.case_volumes import load_displacement, load_mask
    from dosimetry_core.imaging.registration import warp_volume

    assert reference.anatomical is not None and reference.anatomical.volume is not None
    ref_geom = reference.anatomical.volume.geometry
    mask, geom = load_mask(store, voi)
    src_id = voi.time_point_id or reference.time_point_id
    if src_id == reference.time_point_id:
        if not geom.same_grid(ref_geom):
            raise InvalidInputError(
                f"VOI {voi.name!r} is not on the CT grid of {_name(reference)}: redraw or "
                "re-import it on that CT"
            )
        return mask, geom
    src = next((t for t in case.time_points if t.time_point_id == src_id), None)
    if src is None:
        raise InvalidInputError(f"VOI {voi.name!r} refers to an unknown time point {src_id}")
    if src.registration is None:
        raise InvalidInputError(
            f"VOI {voi.name!r} is drawn on {_name(src)}, which is not registered: register first"
        )
    matrix = np.asarray(src.registration.matrix_ref_to_tp, dtype=float)
    disp = None
    if src.registration.deformation is not None:
        disp, _grid = load_displacement(store, src.registration.deformation)
    moved = warp_volume(
        Volume(mask.astype(np.float32), geom, ImageUnits.MASK),
        ref_geom,
        matrix,
        disp,
        order=1,
        fill_value=0.0,
    )
    return np.asarray(moved.array >= 0.5), ref_geom


def voi_tac(
    store: CaseRepository,
    case: Case,
    voi: VOI,
    *,
    recovery: RecoveryModel | None = None,
    spect_cache: dict[str, Volume] | None = None,
) -> Tac:
    """Time-activity curve of one VOI over all time points of the case.

    Parameters
    ----------
    store
        A :class:`~dosimetry_core.store.CaseStore`.
    case
        The case (every non-reference time point registered).
    voi
        The VOI; on the reference CT grid, or on another time point's CT grid
        (carried to the reference through that registration, see
        :func:`mask_on_reference`).
    recovery
        Optional partial-volume correction: a fixed recovery coefficient, a
        function of the VOI volume (mL) returning one (e.g. fitted to NEMA IEC
        sphere measurements), or a :class:`PsfRecovery` (shape-specific RC
        from the system FWHM).  ``activity = measured / RC``.
    spect_cache
        Optional dict (time point id -> SPECT on the reference grid) shared
        between calls to avoid resampling each SPECT again for every VOI.

    Returns
    -------
    Tac
        Activities (MBq) and mean concentrations (Bq/mL) at scan time,
        ``time_h`` hours after the first administration.

    Raises
    ------
    InvalidInputError
        No administration (no time origin), unregistered or rejected
        registrations ("register first"), a SPECT not in Bq/mL, an empty VOI,
        an invalid recovery coefficient.
    """
    from dosimetry_core.imaging.case_volumes import spect_on_reference

    if case.first_administration is None:
        raise InvalidInputError(
            f"case {case.case_id} has no administration: enter it first (time origin of the TAC)"
        )
    ref = tac_reference_time_point(case)
    mask, geom = mask_on_reference(store, case, voi, ref)
    n_vox = int(np.count_nonzero(mask))
    if n_vox == 0:
        raise InvalidInputError(f"VOI {voi.name!r} is empty on the reference grid")
    voxel_ml = geom.voxel_volume_ml
    volume_ml = n_vox * voxel_ml
    rc = recovery_coefficient(recovery, volume_ml, mask, geom)
    cache = spect_cache if spect_cache is not None else {}
    tps = case.sorted_time_points()
    times: list[float] = []
    measured: list[float] = []
    means: list[float] = []
    statuses: list[str] = []
    warnings: list[str] = []
    for tp in tps:
        if tp.units != ImageUnits.BQML:
            raise InvalidInputError(
                f"the SPECT of time point {_name(tp)} is in {tp.units}, not Bq/mL: "
                "import it with a calibration factor"
            )
        spect = cache.get(tp.time_point_id)
        if spect is None:
            spect = spect_on_reference(store, case, tp)
            cache[tp.time_point_id] = spect
        values = np.asarray(spect.array[mask], dtype=np.float64)
        measured.append(float(values.sum()) * voxel_ml * 1e-6)
        means.append(float(values.mean()))
        h = case.hours_after_administration(tp)
        assert h is not None
        times.append(float(h))
        if tp is ref:
            statuses.append("reference")
        else:
            assert tp.registration is not None
            statuses.append(str(tp.registration.status))
            if tp.registration.status != RegistrationStatus.ACCEPTED:
                warnings.append(f"registration of {_name(tp)} not reviewed (proposed)")
    if any(t < 0 for t in times):
        bad = [_name(tp) for tp, t in zip(tps, times, strict=True) if t < 0]
        raise InvalidInputError(
            f"time point(s) {', '.join(bad)} acquired before the administration: check the times"
        )
    scale = 1.0 if rc is None else 1.0 / rc
    return Tac(
        voi_id=voi.voi_id,
        voi_name=voi.name,
        reference_time_point_id=ref.time_point_id,
        time_point_ids=[t.time_point_id for t in tps],
        labels=[t.label for t in tps],
        time_h=times,
        activity_mbq=[a * scale for a in measured],
        measured_activity_mbq=measured,
        mean_bq_per_ml=[m * scale for m in means],
        volume_ml=volume_ml,
        recovery_coefficient=rc,
        registration_status=statuses,
        warnings=warnings,
    )
