"""Non-imaging kinetic series: whole-body dose rate, blood samples, thyroid probe.

Each conversion returns a :class:`MeasuredSeries` -- times in hours after the
administration and values **at the time of the reading (not decay corrected)**,
ready for :func:`dosimetry_core.kinetics.fitting.fit_tac` (the integral of the
fitted curve has the value unit x h: MBq*h for activities, Bq*h/mL for blood).

Whole-body retention (self-calibration)
    External dose-rate readings ``R_i`` in a fixed geometry (e.g. uSv/h at 1 m,
    same position each time).  The first reading, taken before the patient
    voids, is 100 % of the administered activity (EANM SOP for I-131 mIBG,
    Gear et al. 2020; PHYSICS.md section 5)::

        A(t_i) = A_adm * exp(-lambda t_1) * (R_i - B_i) / (R_1 - B_1)

    ``exp(-lambda t_1)`` because at the first reading nothing was excreted yet
    but the activity had decayed since the administration (MBq at the reading
    time, not decay corrected).  ``B`` is the background reading (same unit).

Blood samples (well counter)
    ``C(t_s) = (N / t_c - B / t_b) / (eps * V) * exp(lambda (t_c0 - t_s)) * f_c``

    with ``N`` gross counts in the counting time ``t_c`` (s), ``B`` background
    counts in ``t_b`` (s) (or a background rate), ``eps`` the counter
    calibration (cps per Bq, for this nuclide and geometry), ``V`` the sample
    volume (mL), ``t_c0`` the counting start and ``t_s`` the sampling time
    (decay from sampling to counting undone: concentration **at sampling
    time**), and ``f_c = lambda t_c / (1 - exp(-lambda t_c))`` the correction for
    decay during counting (refers the mean rate to the counting start; 1 when
    ``lambda t_c`` is negligible).  Decay correction as in PHYSICS.md section 2.

Thyroid probe uptake
    Net count rates (reading minus background, e.g. thigh for the patient and
    the empty neck phantom for the standard) relative to a standard (capsule)
    of known activity counted in the same geometry (neck phantom)::

        S = (R_std - B_std) / A_std(t_std)        [cps/MBq]
        A_thy(t_i) = (R_i - B_i) / S               [MBq at t_i]
        U(t_i) = A_thy(t_i) / A_adm                (not decay corrected)
        U_dc(t_i) = U(t_i) * exp(lambda t_i)       (decay corrected to the administration)

    ``A_std(t_std)`` is the standard's calibrated activity decayed from its
    calibration time to its counting time.  When the standard is a capsule
    identical to the administered one counted at the same time as the patient,
    ``U_dc`` is the classical RAIU.  The series for the fit is ``A_thy`` (MBq,
    not decay corrected), as for images (PHYSICS.md section 3), so the fitted
    effective half-life feeds the Marinelli formula (PHYSICS.md section 5).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.model.case import Case, Measurement, MeasurementKind
from dosimetry_core.physics.nuclides import decay_constant_per_h

MAX_RETAINED_FRACTION = 2.0
"""Largest decay-corrected whole-body retention accepted (fraction of the first reading).

The first reading, before any voiding, is 100 % (EANM mIBG SOP, Gear et al. 2020); a
later decay-corrected reading can exceed it only by geometry and counting errors, so a
reading implying more than twice the administered activity is a typing error (a local
plausibility limit)."""


@dataclass
class MeasuredSeries:
    """A non-imaging series ready for fitting.

    Attributes
    ----------
    quantity
        ``"whole-body activity"``, ``"blood concentration"`` or ``"thyroid activity"``.
    time_h
        Hours after the administration of each value.
    values
        Values at ``time_h`` (not decay corrected), in ``unit``.
    unit
        ``"MBq"`` or ``"Bq/mL"``.
    fraction
        Fraction of the administered activity at ``time_h`` (not decay
        corrected), when meaningful (dose rate, probe); else empty.
    fraction_decay_corrected
        ``fraction * exp(lambda t)``: the biological retention/uptake; else empty.
    method
        One line: the formula and its reference.
    measurement_ids
        The source :class:`~dosimetry_core.model.case.Measurement` ids, if any.
    """

    quantity: str
    time_h: list[float]
    values: list[float]
    unit: str
    fraction: list[float] = field(default_factory=list)
    fraction_decay_corrected: list[float] = field(default_factory=list)
    method: str = ""
    measurement_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "quantity": self.quantity,
            "time_h": list(self.time_h),
            "values": list(self.values),
            "unit": self.unit,
            "fraction": list(self.fraction),
            "fraction_decay_corrected": list(self.fraction_decay_corrected),
            "method": self.method,
            "measurement_ids": list(self.measurement_ids),
        }


def _times(time_h: Sequence[float], what: str) -> np.ndarray:
    t = np.asarray(time_h, dtype=float)
    if t.ndim != 1 or t.size == 0:
        raise InvalidInputError(f"{what}: no readings")
    if not np.all(np.isfinite(t)):
        raise InvalidInputError(f"{what}: times must be finite numbers of hours")
    if np.any(t < 0):
        raise InvalidInputError(
            f"{what}: reading at {float(t.min()):g} h is before the administration"
        )
    from dosimetry_core.kinetics.fitting import MAX_TIME_H

    if np.any(t > MAX_TIME_H):
        raise InvalidInputError(
            f"{what}: reading at {float(t.max()):g} h is more than {MAX_TIME_H:g} h after the "
            "administration (a unit or typing error?)",
            field="time_h",
        )
    return t


def _per_reading(value: float | Sequence[float], n: int, what: str) -> np.ndarray:
    arr = np.broadcast_to(np.asarray(value, dtype=float), (n,)) if np.ndim(value) == 0 else None
    if arr is None:
        arr = np.asarray(value, dtype=float)
        if arr.shape != (n,):
            raise InvalidInputError(f"{what}: give one value or one per reading ({n})")
    return np.array(arr, dtype=float)


def _positive(value: float | None, what: str) -> float:
    if value is None or not math.isfinite(float(value)) or float(value) <= 0.0:
        raise InvalidInputError(f"{what} must be a positive number (got {value!r})")
    return float(value)


# ============================================================ whole body
def whole_body_retention(
    time_h: Sequence[float],
    dose_rate: Sequence[float],
    *,
    administered_activity_mbq: float,
    nuclide: str,
    background: float | Sequence[float] = 0.0,
) -> MeasuredSeries:
    """Whole-body activity from external dose-rate readings (first reading = 100 %).

    Parameters
    ----------
    time_h
        Hours after administration of each reading; the earliest reading must be
        the one taken before the first voiding.
    dose_rate
        Readings in one unit and one geometry (e.g. uSv/h at 1 m).
    administered_activity_mbq
        Net administered activity (MBq) at the administration time.
    nuclide
        For the decay between administration and the first reading.
    background
        Background reading(s) in the same unit (one value or one per reading).

    Returns
    -------
    MeasuredSeries
        Whole-body activity (MBq at each reading time), the fraction of the
        administered activity and its decay-corrected form (biological retention).

    Raises
    ------
    InvalidInputError
        Readings before the administration, a reading at or below background,
        non-positive administered activity, mismatched lengths.

    References
    ----------
    EANM SOP for I-131 mIBG therapy dosimetry (Gear et al. 2020); PHYSICS.md section 5.
    """
    what = "whole-body dose rate"
    t = _times(time_h, what)
    r = np.asarray(dose_rate, dtype=float)
    if r.shape != t.shape:
        raise InvalidInputError(f"{what}: {t.size} times but {r.size} readings")
    a_adm = _positive(administered_activity_mbq, "the administered activity (MBq)")
    b = _per_reading(background, t.size, what + " background")
    order = np.argsort(t, kind="stable")
    t, r, b = t[order], r[order], b[order]
    net = r - b
    if np.any(~np.isfinite(net)) or np.any(net <= 0):
        i = int(np.argmax(~np.isfinite(net) | (net <= 0)))
        raise InvalidInputError(
            f"{what}: reading {r[i]:g} at {t[i]:g} h is not above background {b[i]:g}"
        )
    lam = decay_constant_per_h(nuclide)
    frac = net / net[0] * math.exp(-lam * t[0])
    corrected = frac * np.exp(lam * t)
    if np.any(corrected > MAX_RETAINED_FRACTION):
        i = int(np.argmax(corrected))
        raise InvalidInputError(
            f"{what}: reading {r[i]:g} at {t[i]:g} h implies {corrected[i] * 100:.3g} % of the "
            f"administered activity in the body (decay-corrected; the first reading, taken "
            f"before voiding, is 100 %): check the first reading and the background",
            field="dose_rate",
        )
    return MeasuredSeries(
        quantity="whole-body activity",
        time_h=t.tolist(),
        values=(frac * a_adm).tolist(),
        unit="MBq",
        fraction=frac.tolist(),
        fraction_decay_corrected=(frac * np.exp(lam * t)).tolist(),
        method=(
            "A(t_i) = A_adm exp(-lambda t_1) (R_i - B_i)/(R_1 - B_1); first reading before "
            "voiding = 100 % (EANM mIBG SOP, Gear et al. 2020)"
        ),
    )


# ================================================================== blood
@dataclass(frozen=True)
class WellCounterCalibration:
    """Well-counter calibration for one nuclide and sample geometry.

    Attributes
    ----------
    cps_per_bq
        Net count rate per becquerel in the sample (counting efficiency x
        emission probability in the window), cps/Bq.
    background_cps
        Background count rate (cps) used when a sample has no own background count.
    source
        Where the calibration comes from (date, standard).
    """

    cps_per_bq: float
    background_cps: float = 0.0
    source: str = ""


def blood_concentration_bq_per_ml(
    gross_counts: float,
    counting_time_s: float,
    sample_volume_ml: float,
    calibration: WellCounterCalibration | None,
    *,
    nuclide: str,
    hours_sampling_to_counting: float = 0.0,
    background_counts: float | None = None,
    background_time_s: float | None = None,
) -> float:
    """Activity concentration of one blood sample at its sampling time (Bq/mL).

    See the module docstring for the formula; ``hours_sampling_to_counting`` is
    the time from sampling to the start of counting (h, >= 0).  Without
    ``background_counts`` the calibration's ``background_cps`` is used.

    Raises
    ------
    InvalidInputError
        No calibration or a non-positive ``cps_per_bq``; non-positive
        counting time or volume, negative counts, counting before sampling,
        net rate negative after background.
    """
    if calibration is None:
        raise InvalidInputError("blood samples need the well-counter calibration (cps per Bq)")
    eps = _positive(calibration.cps_per_bq, "the well-counter calibration (cps/Bq)")
    tc = _positive(counting_time_s, "the counting time (s)")
    vol = _positive(sample_volume_ml, "the sample volume (mL)")
    if not math.isfinite(gross_counts) or gross_counts < 0:
        raise InvalidInputError(f"sample counts must be >= 0 (got {gross_counts!r})")
    if hours_sampling_to_counting < 0:
        raise InvalidInputError("a blood sample was counted before it was taken: check the times")
    if background_counts is not None:
        if background_counts < 0:
            raise InvalidInputError(f"background counts must be >= 0 (got {background_counts!r})")
        bg_cps = background_counts / _positive(
            background_time_s if background_time_s is not None else counting_time_s,
            "the background counting time (s)",
        )
    else:
        bg_cps = float(calibration.background_cps)
    net_cps = gross_counts / tc - bg_cps
    if net_cps < 0:
        raise InvalidInputError(
            f"sample rate {gross_counts / tc:.4g} cps is below background {bg_cps:.4g} cps"
        )
    lam_s = decay_constant_per_h(nuclide) / 3600.0
    x = lam_s * tc
    during = x / -math.expm1(-x) if x > 1e-12 else 1.0
    to_sampling = math.exp(lam_s * hours_sampling_to_counting * 3600.0)
    return net_cps / eps / vol * during * to_sampling


def blood_series(
    time_h: Sequence[float],
    gross_counts: Sequence[float],
    *,
    counting_time_s: float | Sequence[float],
    sample_volume_ml: float | Sequence[float],
    calibration: WellCounterCalibration | None,
    nuclide: str,
    hours_sampling_to_counting: float | Sequence[float] = 0.0,
    background_counts: float | Sequence[float] | None = None,
    background_time_s: float | Sequence[float] | None = None,
) -> MeasuredSeries:
    """Blood activity concentration (Bq/mL at sampling) for a series of samples.

    ``time_h`` are sampling times (hours after administration); the other
    arguments are one value for all samples or one per sample (see
    :func:`blood_concentration_bq_per_ml`).
    """
    what = "blood samples"
    t = _times(time_h, what)
    n = t.size
    counts = _per_reading(gross_counts, n, what + " counts")
    tc = _per_reading(counting_time_s, n, "counting time")
    vol = _per_reading(sample_volume_ml, n, "sample volume")
    delay = _per_reading(hours_sampling_to_counting, n, "sampling-to-counting time")
    bgc = None if background_counts is None else _per_reading(background_counts, n, "background")
    bgt = None if background_time_s is None else _per_reading(background_time_s, n, "bg time")
    values = [
        blood_concentration_bq_per_ml(
            float(counts[i]),
            float(tc[i]),
            float(vol[i]),
            calibration,
            nuclide=nuclide,
            hours_sampling_to_counting=float(delay[i]),
            background_counts=None if bgc is None else float(bgc[i]),
            background_time_s=None if bgt is None else float(bgt[i]),
        )
        for i in range(n)
    ]
    order = np.argsort(t, kind="stable")
    return MeasuredSeries(
        quantity="blood concentration",
        time_h=t[order].tolist(),
        values=[values[i] for i in order],
        unit="Bq/mL",
        method=(
            "C = (N/t_c - B/t_b) / (eps V) exp(lambda (t_count - t_sample)) "
            "lambda t_c/(1 - exp(-lambda t_c)); at sampling time"
        ),
    )


# ================================================================== probe
def probe_uptake(
    time_h: Sequence[float],
    counts: Sequence[float],
    *,
    counting_time_s: float | Sequence[float],
    background_counts: float | Sequence[float],
    standard_counts: float,
    standard_background_counts: float,
    standard_counting_time_s: float,
    standard_activity_mbq: float,
    administered_activity_mbq: float,
    nuclide: str,
    hours_standard_calibration_to_counting: float = 0.0,
    background_counting_time_s: float | Sequence[float] | None = None,
) -> MeasuredSeries:
    """Thyroid activity and uptake from probe readings against a standard.

    Parameters
    ----------
    time_h
        Hours after administration of each patient reading.
    counts, counting_time_s
        Gross patient (neck) counts and counting time(s) (s).
    background_counts, background_counting_time_s
        Background counts (e.g. thigh) per reading; same counting time as the
        patient unless given.
    standard_counts, standard_background_counts, standard_counting_time_s
        The standard (capsule) in the neck phantom: gross and background counts
        (same counting time).
    standard_activity_mbq
        The standard's activity at its calibration time (MBq).
    hours_standard_calibration_to_counting
        Time from the standard's calibration to its counting (h): the standard
        is decayed by this to get its activity when counted.
    administered_activity_mbq
        Net administered activity (MBq at the administration).
    nuclide
        For the decay corrections.

    Returns
    -------
    MeasuredSeries
        Thyroid activity (MBq at each reading, not decay corrected), the
        uptake fraction (not decay corrected) and decay corrected.

    Raises
    ------
    InvalidInputError
        Readings before the administration, net counts at or below zero for
        the standard or negative for the patient, non-positive activities.
    """
    what = "probe readings"
    t = _times(time_h, what)
    n = t.size
    c = _per_reading(counts, n, what)
    tc = _per_reading(counting_time_s, n, "counting time")
    bg = _per_reading(background_counts, n, "background counts")
    bgt = (
        tc
        if background_counting_time_s is None
        else _per_reading(background_counting_time_s, n, "bg time")
    )
    if np.any(tc <= 0) or np.any(bgt <= 0):
        raise InvalidInputError("probe counting times must be positive")
    if np.any(c < 0) or np.any(bg < 0):
        raise InvalidInputError("probe counts must be >= 0")
    a_adm = _positive(administered_activity_mbq, "the administered activity (MBq)")
    a_std0 = _positive(standard_activity_mbq, "the standard activity (MBq)")
    tstd = _positive(standard_counting_time_s, "the standard counting time (s)")
    lam = decay_constant_per_h(nuclide)
    a_std = a_std0 * math.exp(-lam * hours_standard_calibration_to_counting)
    std_net = (standard_counts - standard_background_counts) / tstd
    if not std_net > 0:
        raise InvalidInputError("the standard's counts are not above its background")
    sens = std_net / a_std  # cps/MBq
    net = c / tc - bg / bgt
    if np.any(net < 0):
        i = int(np.argmax(net < 0))
        raise InvalidInputError(
            f"probe reading at {t[i]:g} h is below background ({c[i] / tc[i]:.4g} < "
            f"{bg[i] / bgt[i]:.4g} cps)"
        )
    act = net / sens
    order = np.argsort(t, kind="stable")
    frac = act / a_adm
    return MeasuredSeries(
        quantity="thyroid activity",
        time_h=t[order].tolist(),
        values=act[order].tolist(),
        unit="MBq",
        fraction=frac[order].tolist(),
        fraction_decay_corrected=(frac * np.exp(lam * t))[order].tolist(),
        method=(
            "A = (R - B)/S, S = (R_std - B_std)/A_std(t_std) cps/MBq; U = A/A_adm "
            "(not decay corrected); same geometry (neck phantom)"
        ),
    )


# ============================================================ from a case
def _hours(case: Case, m: Measurement) -> float:
    adm = case.first_administration
    if adm is None:
        raise InvalidInputError(f"case {case.case_id} has no administration: enter it first")
    return (m.time - adm.time).total_seconds() / 3600.0


def _of_kind(case: Case, kind: MeasurementKind) -> list[Measurement]:
    ms = sorted((m for m in case.measurements if m.kind == kind), key=lambda m: m.time)
    if not ms:
        raise InvalidInputError(f"case {case.case_id} has no {kind} measurements")
    return ms


def _adm(case: Case) -> tuple[float, str]:
    from dosimetry_core.physics.decay import net_administered_activity_mbq

    adm = case.first_administration
    if adm is None:
        raise InvalidInputError(f"case {case.case_id} has no administration: enter it first")
    return net_administered_activity_mbq(adm), adm.nuclide


def _extra(m: Measurement, key: str, default: Any = None, *, required: bool = False) -> Any:
    if key in m.extra and m.extra[key] is not None:
        return m.extra[key]
    if required:
        raise InvalidInputError(
            f"{m.kind} measurement {m.measurement_id} at {m.time.isoformat()} lacks {key!r}"
        )
    return default


def case_whole_body_retention(case: Case) -> MeasuredSeries:
    """:func:`whole_body_retention` from the case's ``DOSE_RATE`` measurements.

    ``Measurement.value`` is the reading; ``extra["background"]`` (same unit,
    default 0) its background.  All readings must share one unit.
    """
    ms = _of_kind(case, MeasurementKind.DOSE_RATE)
    units = {m.unit for m in ms}
    if len(units) > 1:
        raise InvalidInputError(f"dose-rate readings in several units: {', '.join(sorted(units))}")
    a_adm, nuclide = _adm(case)
    s = whole_body_retention(
        [_hours(case, m) for m in ms],
        [m.value for m in ms],
        administered_activity_mbq=a_adm,
        nuclide=nuclide,
        background=[float(_extra(m, "background", 0.0)) for m in ms],
    )
    s.measurement_ids = [m.measurement_id for m in ms]
    return s


def case_blood_series(case: Case, calibration: WellCounterCalibration | None) -> MeasuredSeries:
    """:func:`blood_series` from the case's ``BLOOD_SAMPLE`` measurements.

    A sample is either counted in the well counter or entered as an activity
    concentration.  Counted: ``Measurement.value`` is the gross counts (unit
    ``"counts"``); ``extra``: ``counting_time_s`` and ``sample_volume_ml``
    (required), ``counted_at`` (ISO date-time of the counting start; default:
    the sampling time), ``background_counts`` and ``background_time_s``
    (optional); converted with :func:`blood_series`.  Entered as a
    concentration: ``value`` in Bq/mL at the sampling time (unit ``"Bq/mL"``),
    used as it is.  Both kinds may be mixed in one series.
    """
    ms = _of_kind(case, MeasurementKind.BLOOD_SAMPLE)
    _a, nuclide = _adm(case)
    measured = [m for m in ms if m.unit.strip().lower() == "bq/ml"]
    counted = [m for m in ms if m not in measured]
    times: list[float] = []
    values: list[float] = []
    ids: list[str] = []
    method = "activity concentration entered in Bq/mL at sampling"
    if counted:
        delays = []
        for m in counted:
            stamp = _extra(m, "counted_at")
            when = datetime.fromisoformat(stamp) if stamp else m.time
            delays.append((when - m.time).total_seconds() / 3600.0)
        has_bg = all(_extra(m, "background_counts") is not None for m in counted)
        s = blood_series(
            [_hours(case, m) for m in counted],
            [m.value for m in counted],
            counting_time_s=[float(_extra(m, "counting_time_s", required=True)) for m in counted],
            sample_volume_ml=[float(_extra(m, "sample_volume_ml", required=True)) for m in counted],
            calibration=calibration,
            nuclide=nuclide,
            hours_sampling_to_counting=delays,
            background_counts=[float(_extra(m, "background_counts", 0.0)) for m in counted]
            if has_bg
            else None,
            background_time_s=[
                float(_extra(m, "background_time_s", _extra(m, "counting_time_s"))) for m in counted
            ]
            if has_bg
            else None,
        )
        order = np.argsort([_hours(case, m) for m in counted], kind="stable")
        times.extend(s.time_h)
        values.extend(s.values)
        ids.extend(counted[i].measurement_id for i in order)
        method = s.method if not measured else f"{s.method}; others entered in Bq/mL"
    for m in measured:
        if not math.isfinite(m.value) or m.value < 0:
            raise InvalidInputError(
                f"blood sample {m.measurement_id}: concentration {m.value} Bq/mL is not a "
                "non-negative number",
                field="concentration_bq_ml",
            )
        times.append(_hours(case, m))
        values.append(float(m.value))
        ids.append(m.measurement_id)
    order = np.argsort(times, kind="stable")
    return MeasuredSeries(
        quantity="blood concentration",
        time_h=[times[i] for i in order],
        values=[values[i] for i in order],
        unit="Bq/mL",
        method=method,
        measurement_ids=[ids[i] for i in order],
    )


_PROBE_STANDARD_KEYS = (
    "standard_counts",
    "standard_background_counts",
    "standard_counting_time_s",
    "standard_activity_mbq",
)


def case_probe_uptake(case: Case) -> MeasuredSeries:
    """:func:`probe_uptake` from the case's ``PROBE`` measurements.

    ``Measurement.value`` is the gross neck count (unit ``"counts"``); ``extra``:
    ``counting_time_s`` and ``background_counts`` (required),
    ``background_counting_time_s`` (default: the counting time), and the standard
    counted in the same session: ``standard_counts``,
    ``standard_background_counts``, ``standard_counting_time_s``,
    ``standard_activity_mbq`` and ``standard_calibrated_at`` (ISO date-time of
    the standard's activity; default: the reading time).  Each reading is
    converted with its own session's standard, so a probe whose sensitivity
    drifts between days is followed.
    """
    ms = _of_kind(case, MeasurementKind.PROBE)
    a_adm, nuclide = _adm(case)
    time_h: list[float] = []
    values: list[float] = []
    fraction: list[float] = []
    fraction_dc: list[float] = []
    method = ""
    for m in ms:
        std = {k: float(_extra(m, k, required=True)) for k in _PROBE_STANDARD_KEYS}
        calibrated = _extra(m, "standard_calibrated_at")
        when = datetime.fromisoformat(calibrated) if calibrated else m.time
        s = probe_uptake(
            [_hours(case, m)],
            [m.value],
            counting_time_s=float(_extra(m, "counting_time_s", required=True)),
            background_counts=float(_extra(m, "background_counts", required=True)),
            background_counting_time_s=_extra(m, "background_counting_time_s"),
            standard_counts=std["standard_counts"],
            standard_background_counts=std["standard_background_counts"],
            standard_counting_time_s=std["standard_counting_time_s"],
            standard_activity_mbq=std["standard_activity_mbq"],
            administered_activity_mbq=a_adm,
            nuclide=nuclide,
            hours_standard_calibration_to_counting=(m.time - when).total_seconds() / 3600.0,
        )
        time_h += s.time_h
        values += s.values
        fraction += s.fraction
        fraction_dc += s.fraction_decay_corrected
        method = s.method
    return MeasuredSeries(
        quantity="thyroid activity",
        time_h=time_h,
        values=values,
        unit="MBq",
        fraction=fraction,
        fraction_decay_corrected=fraction_dc,
        method=method + "; each reading with the standard of its own session",
        measurement_ids=[m.measurement_id for m in ms],
    )
