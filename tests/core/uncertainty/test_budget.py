"""Known answers for the dose-uncertainty budget (Gear et al., EJNMMI 2018;45:2456-2474).

The hand derivations use the measurement model of the module docstring,
``D = TIA(C_i / (K R(V))) * d(V)`` with ``d ∝ V^-1`` and ``R ∝ V^s``:
first-order relative sensitivities ``c_K = c_R = -1``, ``c_V = -1 - s``, ``c_S = 1``,
combined in quadrature over the independent inputs (GUM, JCGM 100:2008, eq. 10).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.kinetics.fitting import fit_tac
from dosimetry_core.uncertainty.budget import (
    NAMES,
    DoseUncertainty,
    UncertaintyInputs,
    dose_uncertainty,
    dose_uncertainty_from_fit,
    monte_carlo_check,
    tia_uncertainty,
)

# Noise-free mono-exponential TAC: A(t) = 100 MBq exp(-ln2 t / 60 h), Lu-177 sampling.
TIMES_H = [4.0, 24.0, 96.0, 168.0]
A0_MBQ = 100.0
T_EFF_H = 60.0
ACT_MBQ = [A0_MBQ * math.exp(-math.log(2.0) / T_EFF_H * t) for t in TIMES_H]
TIA_EXACT_MBQ_H = A0_MBQ * T_EFF_H / math.log(2.0)  # A0 / lambda = 8656.17 MBq h
DPT = 0.012  # Gy / (MBq h), an arbitrary dose factor for these tests


def _dose(inputs: UncertaintyInputs, **kw: object) -> DoseUncertainty:
    return dose_uncertainty(
        TIMES_H,
        ACT_MBQ,
        nuclide="Lu-177",
        dose_per_tia_gy_per_mbq_h=DPT,
        inputs=inputs,
        model="mono",
        **kw,  # type: ignore[arg-type]
    )


def _by_name(res: DoseUncertainty) -> dict[str, float]:
    return {c.name: c.rel_sd for c in res.contributions}


def test_calibration_only_passes_straight_to_dose() -> None:
    # (1) K scales every activity: d lnD / d lnK = -1 exactly, so 5 % -> 5 %.
    res = _dose(UncertaintyInputs(calibration_rel_sd=0.05))
    assert res.tia_mbq_h == pytest.approx(TIA_EXACT_MBQ_H, rel=1e-6)
    assert res.dose_gy == pytest.approx(TIA_EXACT_MBQ_H * DPT, rel=1e-6)
    assert res.rel_sd == pytest.approx(0.05, abs=1e-15)
    assert res.sd_gy == pytest.approx(0.05 * res.dose_gy, rel=1e-12)
    assert res.tia_sd_mbq_h == pytest.approx(0.05 * res.tia_mbq_h, rel=1e-12)
    assert _by_name(res)["calibration"] == pytest.approx(0.05)
    assert _by_name(res)["time-point activities (fit)"] == 0.0


def test_calibration_and_volume_without_recovery_add_in_quadrature() -> None:
    # (2) s = 0: volume acts through the mass only (c_V = -1): sqrt(3^2 + 4^2) = 5 %.
    res = _dose(UncertaintyInputs(calibration_rel_sd=0.03, volume_rel_sd=0.04))
    assert res.rel_sd == pytest.approx(0.05, rel=1e-12)
    vol = next(c for c in res.contributions if c.name == "volume")
    assert vol.sensitivity == pytest.approx(-1.0)
    assert vol.variance_fraction == pytest.approx(16.0 / 25.0)


def test_recovery_slope_and_volume_combined_as_derived_by_hand() -> None:
    # (3) R ∝ V^0.4, d ∝ V^-1: D ∝ V^(-1.4), both paths from ONE input add linearly:
    # u_V(D) = 1.4 * 5 % = 7 %; with u_R = 2 %: u(D) = sqrt(7^2 + 2^2) % = sqrt(53) % = 7.2801 %.
    inputs = UncertaintyInputs(recovery_rel_sd=0.02, volume_rel_sd=0.05, recovery_volume_slope=0.4)
    res = _dose(inputs)
    assert _by_name(res)["volume"] == pytest.approx(0.07, rel=1e-12)
    assert res.rel_sd == pytest.approx(math.sqrt(53.0) / 100.0, rel=1e-12)
    # TIA alone sees the volume through R only: sqrt((0.4*5)^2 + 2^2) % = sqrt(8) %.
    tia, tia_sd, contribs = tia_uncertainty(
        TIMES_H, ACT_MBQ, nuclide="Lu-177", model="mono", inputs=inputs
    )
    assert tia_sd / tia == pytest.approx(math.sqrt(8.0) / 100.0, rel=1e-12)
    assert [c.name for c in contribs] == list(NAMES[:4])
    # A negative effective slope (VOI counts growing with the drawn volume) partly
    # cancels the mass path: s = -0.5 -> c_V = -0.5 -> 2.5 %.
    res2 = _dose(UncertaintyInputs(volume_rel_sd=0.05, recovery_volume_slope=-0.5))
    assert res2.rel_sd == pytest.approx(0.025, rel=1e-12)


def test_volume_correlation_sign_confirmed_by_monte_carlo() -> None:
    # s = 1, u_V = 5 %: linear addition gives 10 %, quadrature 7.1 %, cancellation 0 %.
    inputs = UncertaintyInputs(volume_rel_sd=0.05, recovery_volume_slope=1.0)
    first = _dose(inputs)
    assert first.rel_sd == pytest.approx(0.10, rel=1e-12)
    mean, sd = monte_carlo_check(
        TIMES_H,
        ACT_MBQ,
        nuclide="Lu-177",
        dose_per_tia_gy_per_mbq_h=DPT,
        inputs=inputs,
        model="mono",
        n=1500,
        seed=1,
    )
    assert sd / mean == pytest.approx(0.10, rel=0.06)


def test_activity_noise_first_order_agrees_with_monte_carlo() -> None:
    # (4) independent 10 % per point, mono-exponential: first-order vs refit MC within 15 %.
    inputs = UncertaintyInputs(activity_rel_sd=0.10)
    tia, tia_sd, _ = tia_uncertainty(
        TIMES_H, ACT_MBQ, nuclide="Lu-177", model="mono", inputs=inputs
    )
    mean, sd = monte_carlo_check(
        TIMES_H,
        ACT_MBQ,
        nuclide="Lu-177",
        dose_per_tia_gy_per_mbq_h=1.0,
        inputs=inputs,
        model="mono",
        n=2000,
        seed=0,
    )
    assert mean == pytest.approx(tia, rel=0.02)
    assert sd == pytest.approx(tia_sd, rel=0.15)


def test_refit_sensitivity_equals_fit_covariance_propagation() -> None:
    # Independent route: g Sigma g^T of kinetics.fitting with the same absolute SDs
    # (unscaled covariance) must equal sum (dTIA/dA_i)^2 u^2(A_i) of the refit.
    r = [0.08, 0.10, 0.12, 0.15]
    sd_mbq = [ri * a for ri, a in zip(r, ACT_MBQ, strict=True)]
    fit = fit_tac(TIMES_H, ACT_MBQ, nuclide="Lu-177", model="mono", activity_sd_mbq=sd_mbq)
    assert fit.tia_sd_mbq_h is not None
    tia, tia_sd, _ = tia_uncertainty(
        TIMES_H,
        ACT_MBQ,
        nuclide="Lu-177",
        model="mono",
        inputs=UncertaintyInputs(activity_rel_sd=r),
    )
    assert tia_sd == pytest.approx(fit.tia_sd_mbq_h, rel=1e-4)


def test_trapezoid_sensitivity_equals_linear_propagation() -> None:
    # Trapezoid + physical tail is linear in the A_i: kinetics computes its SD directly.
    sd_mbq = [0.1 * a for a in ACT_MBQ]
    fit = fit_tac(TIMES_H, ACT_MBQ, nuclide="Lu-177", model="trapezoid", activity_sd_mbq=sd_mbq)
    tia, tia_sd, _ = tia_uncertainty(
        TIMES_H,
        ACT_MBQ,
        nuclide="Lu-177",
        model="trapezoid",
        inputs=UncertaintyInputs(activity_rel_sd=0.1),
    )
    assert tia == pytest.approx(fit.tia_mbq_h, rel=1e-12)
    assert tia_sd == pytest.approx(fit.tia_sd_mbq_h, rel=1e-5)


def test_from_fit_uses_the_fit_sd_or_the_given_activity_sd() -> None:
    sd_mbq = [0.1 * a for a in ACT_MBQ]
    fit = fit_tac(TIMES_H, ACT_MBQ, nuclide="Lu-177", model="mono", activity_sd_mbq=sd_mbq)
    assert fit.tia_sd_mbq_h is not None
    fit_rel = fit.tia_sd_mbq_h / fit.tia_mbq_h
    res = dose_uncertainty_from_fit(
        fit, dose_per_tia_gy_per_mbq_h=DPT, inputs=UncertaintyInputs(calibration_rel_sd=0.05)
    )
    assert res.rel_sd == pytest.approx(math.hypot(0.05, fit_rel), rel=1e-12)
    direct = _dose(UncertaintyInputs(activity_rel_sd=0.1))
    again = dose_uncertainty_from_fit(
        fit, dose_per_tia_gy_per_mbq_h=DPT, inputs=UncertaintyInputs(activity_rel_sd=0.1)
    )
    assert again.rel_sd == pytest.approx(direct.rel_sd, rel=1e-6)
    assert again.rel_sd == pytest.approx(fit_rel, rel=1e-4)


def test_variance_fractions_sum_to_one() -> None:
    # (5)
    inputs = UncertaintyInputs(
        calibration_rel_sd=0.03,
        recovery_rel_sd=0.02,
        volume_rel_sd=0.06,
        activity_rel_sd=0.08,
        s_value_rel_sd=0.04,
        recovery_volume_slope=0.3,
    )
    res = _dose(inputs)
    assert [c.name for c in res.contributions] == list(NAMES)
    assert sum(c.variance_fraction for c in res.contributions) == pytest.approx(1.0, abs=1e-12)
    assert math.sqrt(sum(c.rel_sd**2 for c in res.contributions)) == pytest.approx(res.rel_sd)
    zero = _dose(UncertaintyInputs())
    assert zero.rel_sd == 0.0
    assert all(c.variance_fraction == 0.0 for c in zero.contributions)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"calibration_rel_sd": -0.01}, "calibration_rel_sd"),
        ({"volume_rel_sd": 5.0}, "0.05 for 5 %"),
        ({"recovery_rel_sd": float("nan")}, "recovery_rel_sd"),
        ({"activity_rel_sd": [0.1, -0.1]}, "activity_rel_sd[1]"),
        ({"recovery_volume_slope": float("inf")}, "recovery_volume_slope"),
    ],
)
def test_bad_inputs_refused(kwargs: dict[str, object], fragment: str) -> None:
    # (6)
    with pytest.raises(InvalidInputError) as info:
        UncertaintyInputs(**kwargs)  # type: ignore[arg-type]
    assert fragment in str(info.value)


def test_bad_tac_and_dose_inputs_refused() -> None:
    with pytest.raises(InvalidInputError, match="3 activity relative SD"):
        _dose(UncertaintyInputs(activity_rel_sd=[0.1, 0.1, 0.1]))
    with pytest.raises(InvalidInputError, match="all zero"):
        _dose(UncertaintyInputs(activity_rel_sd=[0.1, 0.0, 0.1, 0.1]))
    with pytest.raises(InvalidInputError, match="3 time"):
        dose_uncertainty(
            TIMES_H[:3],
            ACT_MBQ,
            nuclide="Lu-177",
            dose_per_tia_gy_per_mbq_h=DPT,
            inputs=UncertaintyInputs(),
        )
    with pytest.raises(InvalidInputError, match="dose_per_tia"):
        dose_uncertainty(
            TIMES_H,
            ACT_MBQ,
            nuclide="Lu-177",
            dose_per_tia_gy_per_mbq_h=-1.0,
            inputs=UncertaintyInputs(),
        )
    with pytest.raises(InvalidInputError, match="mass_g"):
        _dose(UncertaintyInputs(), mass_g=-5.0)
    with pytest.raises(InvalidInputError, match="n >= 2"):
        monte_carlo_check(
            TIMES_H,
            ACT_MBQ,
            nuclide="Lu-177",
            dose_per_tia_gy_per_mbq_h=DPT,
            inputs=UncertaintyInputs(),
            n=1,
        )


def test_budget_table_lists_each_input_with_its_percentage() -> None:
    # (7)
    inputs = UncertaintyInputs(
        calibration_rel_sd=0.03, volume_rel_sd=0.04, s_value_rel_sd=0.02, source="phantom QA"
    )
    res = _dose(inputs, mass_g=300.0)
    table = res.budget_table()
    lines = table.splitlines()
    for name in NAMES:
        assert any(line.startswith(name) for line in lines), name
    cal = next(line for line in lines if line.startswith("calibration"))
    assert "3.0 %" in cal
    vol = next(line for line in lines if line.startswith("volume"))
    assert "4.0 %" in vol and "-1.00" in vol
    assert "5.4 %" in lines[0]  # sqrt(3^2 + 4^2 + 2^2) = 5.385 %
    d = json.loads(json.dumps(res.to_dict()))
    assert d["mass_sd_g"] == pytest.approx(12.0)
    assert d["inputs"]["source"] == "phantom QA"
    assert d["method"] == "GUM first order (Gear et al. 2018)"
    assert len(d["contributions"]) == len(NAMES)


def test_activity_order_follows_the_times() -> None:
    # Per-point SDs are attached to the times as given, even when not sorted.
    r = np.array([0.05, 0.10, 0.15, 0.20])
    order = [2, 0, 3, 1]
    a = _dose(UncertaintyInputs(activity_rel_sd=list(r)))
    b = dose_uncertainty(
        [TIMES_H[i] for i in order],
        [ACT_MBQ[i] for i in order],
        nuclide="Lu-177",
        dose_per_tia_gy_per_mbq_h=DPT,
        inputs=UncertaintyInputs(activity_rel_sd=list(r[order])),
        model="mono",
    )
    assert b.rel_sd == pytest.approx(a.rel_sd, rel=1e-9)
