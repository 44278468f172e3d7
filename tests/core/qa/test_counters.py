"""Well counter / probe calibration and dead time (Knoll 2010, ch. 4)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.physics.nuclides import half_life_h
from dosimetry_core.qa.counters import calibrate_counter, fit_dead_time, observed_rate_cps

T0 = datetime(2026, 2, 1, 9, 0)


def test_counter_hand_example():
    """10 kBq, 60 s: 30000 gross, 600 background counts -> (500 - 10) cps / 10000 Bq."""
    cal = calibrate_counter(30000, 60.0, 10_000.0, T0, T0, "I-131", background_counts=600)
    assert cal.net_cps == pytest.approx(490.0)
    assert cal.cps_per_bq == pytest.approx(0.049)
    # Poisson: var(net) = 30000/60^2 + 600/60^2
    assert cal.cps_per_bq_sd == pytest.approx(np.sqrt(30600) / 60 / 10_000)
    wc = cal.to_well_counter_calibration()
    assert wc.cps_per_bq == pytest.approx(0.049) and wc.background_cps == pytest.approx(10.0)


def test_counter_decay_correction():
    """Counted one I-131 half-life after the reference: the source holds half the activity."""
    later = T0 + timedelta(hours=half_life_h("I-131"))
    cal = calibrate_counter(30000, 60.0, 10_000.0, T0, later, "I-131")
    assert cal.activity_at_counting_bq == pytest.approx(5000.0, rel=1e-9)
    assert cal.cps_per_bq == pytest.approx(0.1)


def test_counter_refuses_impossible_inputs():
    with pytest.raises(InvalidInputError, match="not positive"):
        calibrate_counter(100, 60.0, 1000.0, T0, T0, "Lu-177", background_counts=200)
    with pytest.raises(InvalidInputError, match="counting time"):
        calibrate_counter(100, 0.0, 1000.0, T0, T0, "Lu-177")


@pytest.mark.parametrize("model", ["non-paralysable", "paralysable"])
def test_dead_time_recovered_from_decaying_source(model):
    """Tc-99m source, true rate 2e5 cps at t=0, tau = 3 us, read every 3 h for 48 h."""
    tau, n0 = 3e-6, 2.0e5
    t = np.arange(0.0, 48.1, 3.0)
    n = n0 * np.exp(-np.log(2) / half_life_h("Tc-99m") * t)
    m = observed_rate_cps(n, tau, model)
    fit = fit_dead_time(t, m, "Tc-99m", counting_time_s=100.0)
    assert fit.model == model
    assert fit.tau_s == pytest.approx(tau, rel=1e-3)
    assert fit.n0_cps == pytest.approx(n0, rel=1e-4)
    # loss at the highest rate: non-paralysable n tau/(1 + n tau) = 37.5 %; paralysable 45.1 %
    expected = 100 * (1 - m[0] / n[0])
    assert fit.max_observed_loss_percent == pytest.approx(expected, rel=1e-3)
    assert fit.true_rate_cps(float(m[3])) == pytest.approx(n[3], rel=1e-4)


def test_dead_time_linearity_limit():
    """Non-paralysable, 1 % loss: n = 0.01 / (0.99 tau)."""
    t = np.arange(0.0, 48.1, 3.0)
    n = 1.0e5 * np.exp(-np.log(2) / half_life_h("Tc-99m") * t)
    fit = fit_dead_time(
        t, observed_rate_cps(n, 5e-6, "non-paralysable"), "Tc-99m", model="non-paralysable"
    )
    assert fit.max_true_cps_at_loss_limit == pytest.approx(0.01 / (0.99 * 5e-6), rel=1e-3)
