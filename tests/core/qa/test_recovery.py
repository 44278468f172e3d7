"""Recovery coefficients: analytic Gaussian-PSF sphere RC, fits, and the NEMA IEC phantom."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.qa.calibration import read_nm_scan
from dosimetry_core.qa.recovery import (
    fit_recovery_curve,
    gaussian_sphere_rc,
    measure_recovery,
    nema_sphere_diameters_mm,
    sphere_fraction,
    sphere_volume_ml,
)


def test_nema_sphere_volumes():
    """10 .. 37 mm inner diameters -> 0.52 .. 26.5 mL (pi d^3 / 6)."""
    vols = [sphere_volume_ml(d) for d in nema_sphere_diameters_mm()]
    assert vols[0] == pytest.approx(0.5236, abs=1e-4)
    assert vols[-1] == pytest.approx(26.52, abs=0.01)


def test_sphere_fraction_volume():
    box, frac = sphere_fraction((40, 40, 40), (2.0, 2.0, 2.0), (40.3, 39.1, 41.7), 11.0, 6)
    assert frac.sum() * 8e-3 == pytest.approx(4 / 3 * math.pi * 11.0**3 * 1e-3, rel=5e-3)


def test_gaussian_sphere_rc_limits():
    # no blur -> 1; huge sphere -> 1
    assert gaussian_sphere_rc([1.0], 0.0)[0] == 1.0
    assert gaussian_sphere_rc([1e6], 10.0)[0] == pytest.approx(1.0, abs=0.01)
    # small-sphere limit: RC -> V g(0) (1 - <r^2> / (2 sigma^2)), g(0) = (2 pi sigma^2)^(-3/2),
    # <r^2> = 6 R^2 / 5 the mean squared distance of two points of a sphere of radius R
    sigma = 10.0 / (2 * math.sqrt(2 * math.log(2)))
    g0 = (2 * math.pi * sigma**2) ** -1.5
    assert gaussian_sphere_rc([1e-6], 10.0)[0] == pytest.approx(1.0 * g0 * 1e-3, rel=1e-3)
    r_mm = (3 * 1.0 / (4 * math.pi)) ** (1 / 3)  # 1 mm^3 sphere
    expected = 1.0 * g0 * (1 - 0.6 * r_mm**2 / sigma**2)
    assert gaussian_sphere_rc([1e-3], 10.0)[0] == pytest.approx(expected, rel=1e-3)


def test_gaussian_sphere_rc_matches_numeric_blur():
    """Independent check: blur a finely voxelised sphere and average inside it."""
    step, r, fwhm = 0.5, 8.5, 11.0
    n = 96
    box, frac = sphere_fraction((n, n, n), (step,) * 3, (n / 2 * step,) * 3, r, 4)
    ind = np.zeros((n, n, n))
    ind[box] = frac
    sig = fwhm / (2 * math.sqrt(2 * math.log(2))) / step
    blurred = ndimage.gaussian_filter(ind, sig, mode="constant", truncate=5.0)
    numeric = float((ind * blurred).sum() / ind.sum())
    assert gaussian_sphere_rc([sphere_volume_ml(2 * r)], fwhm)[0] == pytest.approx(
        numeric, rel=5e-3
    )


def test_fit_recovers_fwhm_and_logistic_parameters():
    v = np.array([sphere_volume_ml(d) for d in nema_sphere_diameters_mm()])
    curve = fit_recovery_curve(v, gaussian_sphere_rc(v, 12.0), [0.01] * 6)
    assert curve.parameters["fwhm_mm"] == pytest.approx(12.0, rel=1e-4)
    assert curve(5.0) == pytest.approx(gaussian_sphere_rc([5.0], 12.0)[0], rel=1e-4)
    # curve SD = |dRC/dFWHM| x SD(FWHM)
    sd_f = math.sqrt(curve.covariance[0][0])
    d = (
        gaussian_sphere_rc([5.0], 12.0 + 1e-4)[0] - gaussian_sphere_rc([5.0], 12.0 - 1e-4)[0]
    ) / 2e-4
    assert curve.sd(5.0) == pytest.approx(abs(d) * sd_f, rel=1e-3)
    y = 1.0 / (1.0 + (3.0 / v) ** 0.8)
    lg = fit_recovery_curve(v, y, None, model="logistic")
    assert lg.parameters["a_ml"] == pytest.approx(3.0, rel=1e-3)
    assert lg.parameters["b"] == pytest.approx(0.8, rel=1e-3)


def test_iec_phantom_rc_within_5_percent_of_truth(iec_phantom):
    scan = read_nm_scan(iec_phantom.out_dir)
    res = measure_recovery(scan.volume, 800.0, 100.0)
    truth = iec_phantom.truth["spheres"]
    assert len(res.spheres) == 6
    for s, t in zip(res.spheres, truth, strict=True):
        assert s.volume_ml == pytest.approx(t["volume_ml"])
        if t["volume_ml"] >= 2.0:
            assert s.recovery == pytest.approx(t["rc_grid"], rel=0.05), s.diameter_mm
            assert res.curve is not None
            assert res.curve(t["volume_ml"]) == pytest.approx(t["rc_grid"], rel=0.05)
            # automatic sphere finding within 2 mm of the true centre
            assert np.linalg.norm(np.subtract(s.center_lps_mm, t["center_lps_mm"])) < 2.0
            assert s.recovery_sd is not None and 0 < s.recovery_sd < 0.05
    # the fitted effective FWHM is near the simulated 11 mm (voxelisation adds a little)
    assert res.curve.parameters["fwhm_mm"] == pytest.approx(11.0, rel=0.15)


def test_iec_given_centres_give_the_same_rcs(iec_phantom):
    scan = read_nm_scan(iec_phantom.out_dir)
    centres = [t["center_lps_mm"] for t in iec_phantom.truth["spheres"]]
    res = measure_recovery(scan.volume, 800.0, 100.0, centers_lps_mm=centres)
    for s, t in zip(res.spheres, iec_phantom.truth["spheres"], strict=True):
        if t["volume_ml"] >= 2.0:
            assert s.recovery == pytest.approx(t["rc_grid"], rel=0.05)
        assert s.found == "given"


def test_recovery_bad_inputs(iec_phantom):
    scan = read_nm_scan(iec_phantom.out_dir)
    with pytest.raises(InvalidInputError, match="hotter than the background"):
        measure_recovery(scan.volume, 100.0, 100.0)
    with pytest.raises(InvalidInputError, match="need an image in Bq/mL"):
        measure_recovery(scan.volume, 800.0, 0.0)
    with pytest.raises(InvalidInputError, match="outside the field"):
        measure_recovery(
            scan.volume, 800.0, 100.0, diameters_mm=[37.0], centers_lps_mm=[[0.0, 0.0, 500.0]]
        )


def test_stored_curve_is_a_tac_recovery_model():
    """The RC(V) curve, round-tripped through its record payload, plugs into kinetics.tac."""
    from dosimetry_core.kinetics.tac import recovery_coefficient
    from dosimetry_core.qa.recovery import RecoveryCurve, recovery_model_from_payload

    curve = RecoveryCurve("gaussian-psf", {"fwhm_mm": 11.0}, [[0.01]])
    restored = recovery_model_from_payload({"curve": curve.to_dict()})
    assert recovery_coefficient(restored, 5.0) == pytest.approx(gaussian_sphere_rc([5.0], 11.0)[0])
