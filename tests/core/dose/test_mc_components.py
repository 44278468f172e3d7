"""Photon Monte Carlo: photon and electron components per VOI, their uncertainty, the stop rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dosimetry_core.dose.monte_carlo import run_monte_carlo
from dosimetry_core.errors import InvalidInputError

MEDIA = ["water", "bone"]
SPACING = (4.0, 4.0, 4.0)


def _problem() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """24^3 water with a bone slab; decays in a cube; a 'kidney' and a 'shell' VOI."""
    n = 24
    mat = np.zeros((n, n, n), dtype=np.uint8)
    rho = np.ones((n, n, n), dtype=np.float32)
    mat[:, :, :6] = 1
    rho[:, :, :6] = 1.9
    dec = np.zeros((n, n, n))
    dec[8:16, 8:16, 8:16] = 1e9
    kidney = np.zeros((n, n, n), dtype=bool)
    kidney[10:14, 10:14, 10:14] = True
    shell = np.zeros((n, n, n))  # partial-volume fractions outside the source
    shell[4:20, 4:20, 17:20] = 0.5
    return dec, mat, rho, kidney, shell


def _run(**kw):
    dec, mat, rho, kidney, shell = _problem()
    kw.setdefault("voi_masks", {"kidney": kidney, "shell": shell})
    return run_monte_carlo(dec, mat, rho, MEDIA, SPACING, "Lu-177", **kw)


def test_components_add_up_and_match_the_maps():
    _, _, _, kidney, shell = _problem()
    res = _run(histories=40_000, batches=8, seed=2, target_mask=kidney)
    assert [c.name for c in res.voi_components] == ["kidney", "shell"]
    assert res.local_dose_gy is not None and res.photon_rel_uncertainty is not None
    for c, w in ((res.voi("kidney"), kidney.astype(float)), (res.voi("shell"), shell)):
        ph = float(np.sum(res.photon_dose_gy * w) / w.sum())
        loc = float(np.sum(res.local_dose_gy * w) / w.sum())
        assert c.photon_mean_gy == pytest.approx(ph, rel=1e-5)
        assert c.electron_mean_gy == pytest.approx(loc, rel=1e-5)
        assert c.mean_gy == pytest.approx(c.photon_mean_gy + c.electron_mean_gy, rel=1e-12)
        assert c.voxels == pytest.approx(w.sum())
        assert c.photon_rel_uncertainty == pytest.approx(c.photon_sd_gy / c.photon_mean_gy)
        assert c.total_rel_uncertainty == pytest.approx(c.photon_sd_gy / c.mean_gy)
    # no decays in the shell: no local dose there, the photon SD is all there is
    assert res.voi("shell").electron_mean_gy == 0.0
    # the electron part dominates in the source: the total is far less uncertain
    k = res.voi("kidney")
    assert k.total_rel_uncertainty < 0.2 * k.photon_rel_uncertainty
    # the target is reported like a VOI
    assert res.target_photon_uncertainty == pytest.approx(k.photon_rel_uncertainty)
    assert res.target_total_uncertainty == pytest.approx(k.total_rel_uncertainty)
    assert res.target_uncertainty_reached == res.target_photon_uncertainty
    # voxel maps: photon SD is the same absolute SD, over the photon dose
    sel = kidney & (res.photon_dose_gy > 0)
    abs_total = res.rel_uncertainty[sel].astype(float) * res.dose_gy[sel]
    abs_photon = res.photon_rel_uncertainty[sel].astype(float) * res.photon_dose_gy[sel]
    assert np.allclose(abs_total, abs_photon, rtol=1e-4)
    with pytest.raises(KeyError):
        res.voi("liver")


def test_electron_dose_passed_in_replaces_the_local_part():
    dec, _, _, kidney, _ = _problem()
    electron = dec * 1e-9 * 0.5  # 0.5 Gy where there are decays
    res = _run(
        histories=20_000,
        batches=4,
        seed=1,
        deposit_local=False,
        electron_dose_gy=electron,
        target_mask=kidney,
        target_component="total",
    )
    ref = _run(histories=20_000, batches=4, seed=1, deposit_local=False, target_mask=kidney)
    assert np.array_equal(res.photon_dose_gy, ref.photon_dose_gy)  # same histories
    assert np.allclose(res.dose_gy, res.photon_dose_gy + electron, rtol=1e-6)
    assert res.voi("kidney").electron_mean_gy == pytest.approx(0.5)
    assert res.target_component == "total"
    assert res.target_uncertainty_reached == res.target_total_uncertainty
    with pytest.raises(InvalidInputError, match="deposit_local=False"):
        _run(histories=1000, batches=2, electron_dose_gy=electron)
    with pytest.raises(InvalidInputError, match="shape"):
        _run(histories=1000, batches=2, deposit_local=False, electron_dose_gy=electron[1:])
    with pytest.raises(InvalidInputError, match="target_component"):
        _run(histories=1000, batches=2, target_component="electron")
    with pytest.raises(InvalidInputError, match="fractions"):
        _run(histories=1000, batches=2, voi_masks={"bad": kidney * 2.0})
    with pytest.raises(InvalidInputError, match="empty"):
        _run(histories=1000, batches=2, voi_masks={"none": np.zeros_like(kidney)})


def test_photon_sd_shrinks_as_one_over_sqrt_histories():
    _, _, _, kidney, _ = _problem()
    kw = dict(batches=64, deposit_local=False, target_mask=kidney)
    small = _run(histories=64_000, seed=11, **kw)
    large = _run(histories=256_000, seed=12, **kw)
    # VOI mean: each SD estimate from 64 batches has ~9 % relative noise
    for name in ("kidney", "shell"):
        ratio = small.voi(name).photon_sd_gy / large.voi(name).photon_sd_gy
        assert 1.5 < ratio < 2.6, name
    # voxel map, averaged over the source voxels: much tighter
    sel = kidney
    a = small.photon_rel_uncertainty[sel].astype(float) * small.photon_dose_gy[sel]
    b = large.photon_rel_uncertainty[sel].astype(float) * large.photon_dose_gy[sel]
    assert math.sqrt(np.mean(a**2) / np.mean(b**2)) == pytest.approx(2.0, rel=0.08)
    # and the means agree within their stated uncertainty
    s, lg = small.voi("kidney"), large.voi("kidney")
    assert abs(s.photon_mean_gy - lg.photon_mean_gy) < 4 * math.hypot(
        s.photon_sd_gy, lg.photon_sd_gy
    )


def test_voi_mean_sd_matches_the_spread_of_independent_runs():
    runs = [
        _run(histories=16_000, batches=10, seed=300 + i, deposit_local=False) for i in range(20)
    ]
    for name in ("kidney", "shell"):
        means = np.array([r.voi(name).photon_mean_gy for r in runs])
        stated = math.sqrt(np.mean([r.voi(name).photon_sd_gy ** 2 for r in runs]))
        # 20 runs: the observed SD itself is uncertain by ~16 %
        assert 0.6 < means.std(ddof=1) / stated < 1.5, name


@pytest.mark.parametrize("component", ["photon", "total"])
def test_stops_when_the_requested_component_reaches_the_target(component):
    _, _, _, kidney, _ = _problem()
    target = 0.01 if component == "photon" else 0.0006
    kw = dict(batches=4, seed=5, target_mask=kidney, target_component=component)
    res = _run(histories=4_000, target_uncertainty=target, **kw)
    assert res.stopped_because == "target uncertainty"
    assert res.target_uncertainty_reached is not None and res.target_uncertainty_reached <= target
    figure = (
        res.target_photon_uncertainty if component == "photon" else res.target_total_uncertainty
    )
    assert res.target_uncertainty_reached == figure
    assert res.batches > 4  # more than the minimum was needed
    # the same batches one short (fixed mode, same seed: identical streams) were not enough
    before = _run(histories=(res.batches - 1) * 1_000, batches=res.batches - 1, seed=5,
                  target_mask=kidney, target_component=component)  # fmt: skip
    assert before.target_uncertainty_reached is not None
    assert before.target_uncertainty_reached > target


def test_photon_target_needs_more_histories_than_total_with_local_electrons():
    _, _, _, kidney, _ = _problem()
    kw = dict(histories=4_000, batches=4, seed=5, target_mask=kidney, target_uncertainty=0.01)
    photon = _run(**kw)
    total = _run(target_component="total", **kw)
    assert total.target_total_uncertainty is not None and total.target_total_uncertainty <= 0.01
    assert photon.target_photon_uncertainty is not None
    assert photon.target_photon_uncertainty <= 0.01
    assert total.histories < photon.histories


def test_pure_beta_emitter_reports_the_electron_component_without_uncertainty():
    dec = np.zeros((4, 4, 4))
    dec[1, 1, 1] = 1e9
    m = dec > 0
    res = run_monte_carlo(
        dec, np.zeros((4, 4, 4), dtype=np.uint8), np.ones((4, 4, 4), dtype=np.float32), ["water"],
        (2, 2, 2), "P-32", histories=100, voi_masks={"src": m}, target_mask=m,
        target_uncertainty=0.02,
    )  # fmt: skip
    c = res.voi("src")
    assert res.stopped_because == "no photons"
    assert c.photon_mean_gy == 0.0 and c.photon_sd_gy == 0.0
    assert c.electron_mean_gy == pytest.approx(float(res.dose_gy[1, 1, 1]), rel=1e-6)
    assert res.target_uncertainty_reached == 0.0
