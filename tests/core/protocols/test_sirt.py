"""Y-90 SIRT planning and verification: hand-worked numbers, round trips, analytic voxel cases.

Hand arithmetic uses the ICRP-107 Y-90 data (mean electron energy 0.933106 MeV per
decay, T1/2 64.1 h) and 1 MeV = 1.602176634e-13 J:
K = 1e9 * 64.1 * 3600 / ln 2 * 0.933106 * 1.602176634e-13 = 49.771 Gy kg/GBq.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.protocols import sirt

K_HAND = 49.771  # Gy kg / GBq, arithmetic in the module docstring


def test_dose_constant_from_icrp107_matches_the_eanm_value():
    k = sirt.y90_dose_constant_gy_kg_per_gbq()
    # EANM SOP (Chiesa et al. 2021) quotes 49.67 Gy kg/GBq; the brief allows +- 0.3
    assert k == pytest.approx(49.67, abs=0.3)
    assert k == pytest.approx(K_HAND, abs=0.002)


def test_lung_shunt_fraction_planar_geometric_means():
    # GM lung = sqrt(4000 * 9000) = 6000; GM liver = sqrt(36000 * 64000) = 48000
    # LSF = 6000 / 54000 = 1/9
    assert sirt.lung_shunt_fraction_planar(4000, 9000, 36000, 64000) == pytest.approx(1 / 9)
    assert sirt.lung_shunt_fraction_spect(500, 9500) == pytest.approx(0.05)
    assert sirt.lung_shunt_fraction_spect(0, 100) == 0.0


@pytest.mark.parametrize(
    "args",
    [(-1, 9000, 36000, 64000), (4000, 9000, -36000, 64000), (4000, 9000, 0, 64000)],
)
def test_lung_shunt_fraction_refuses_impossible_counts(args):
    with pytest.raises(InvalidInputError):
        sirt.lung_shunt_fraction_planar(*args)
    with pytest.raises(InvalidInputError, match="liver counts"):
        sirt.lung_shunt_fraction_spect(10, 0)


def test_partition_model_hand_worked_example():
    # A 2 GBq, LSF 0.1, TNR 4, m_N 1.5 kg, m_T 0.2 kg, m_lung 1 kg (Ho 1996):
    # D_N = 49.771 * 2 * 0.9 / (1.5 + 4 * 0.2) = 89.588 / 2.3 = 38.951 Gy
    # D_T = 4 * 38.951 = 155.805 Gy;  D_L = 49.771 * 2 * 0.1 / 1.0 = 9.954 Gy
    r = sirt.partition_model(2.0, 0.1, 4.0, 1.5, 0.2)
    assert r.normal_liver_dose_gy == pytest.approx(38.951, abs=0.005)
    assert r.tumour_dose_gy == pytest.approx(155.805, abs=0.01)
    assert r.lung_dose_gy == pytest.approx(9.954, abs=0.002)
    assert r.lung_mass_kg == 1.0 and r.warnings == []
    d = r.to_dict()
    assert d["inputs"]["normal_liver_mass_kg"] == 1.5
    # whole liver 1.7 kg including the 0.2 kg tumour gives the same m_N = 1.5 kg
    w = sirt.partition_model(2.0, 0.1, 4.0, 1.7, 0.2, liver_mass_includes_tumour=True)
    assert w.normal_liver_dose_gy == pytest.approx(r.normal_liver_dose_gy)
    assert w.whole_liver_mass_kg == 1.7
    # 10 % residual: every dose scales by 0.9
    res = sirt.partition_model(2.0, 0.1, 4.0, 1.5, 0.2, residual_fraction=0.1)
    assert res.tumour_dose_gy == pytest.approx(0.9 * 155.805, abs=0.01)


def test_partition_model_conserves_the_liver_energy():
    # D_N m_N + D_T m_T = K A (1 - LSF): the liver's share of the energy, whatever TNR
    for tnr in (0.5, 1.0, 7.0):
        r = sirt.partition_model(3.0, 0.07, tnr, 1.2, 0.35, lung_mass_kg=0.8)
        liver = r.normal_liver_dose_gy * 1.2 + r.tumour_dose_gy * 0.35
        assert liver == pytest.approx(K_HAND * 3.0 * 0.93, rel=5e-5)
        assert r.lung_dose_gy * 0.8 == pytest.approx(K_HAND * 3.0 * 0.07, rel=5e-5)


def test_lung_limit_warnings():
    # 7 GBq, LSF 0.1: D_L = 49.771 * 0.7 = 34.84 Gy > 30 Gy
    r = sirt.partition_model(7.0, 0.1, 4.0, 1.5, 0.2)
    assert r.lung_dose_gy == pytest.approx(34.84, abs=0.01)
    assert len(r.warnings) == 1 and "per-treatment limit of 30 Gy" in r.warnings[0]
    # 6 GBq: D_L = 29.86 Gy (< 30) but with 25 Gy before, 54.86 Gy > 50 Gy cumulative
    r = sirt.partition_model(6.0, 0.1, 4.0, 1.5, 0.2, previous_lung_dose_gy=25.0)
    assert r.cumulative_lung_dose_gy == pytest.approx(54.86, abs=0.01)
    assert len(r.warnings) == 1 and "cumulative limit of 50 Gy" in r.warnings[0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lsf": 1.0}, "lung shunt fraction"),
        ({"lsf": 10.0}, "lung shunt fraction"),
        ({"lsf": -0.1}, "lung shunt fraction"),
        ({"tnr": 0.0}, "TNR"),
        ({"tnr": -2.0}, "TNR"),
        ({"liver_mass_kg": -1.5}, "liver mass"),
        ({"tumour_mass_kg": -0.2}, "tumour mass"),
        ({"lung_mass_kg": 0.0}, "lung mass"),
        ({"residual_fraction": 1.0}, "residual"),
        ({"activity_gbq": -2.0}, "activity"),
        ({"activity_gbq": float("nan")}, "activity"),
        ({"liver_mass_kg": 0.2, "liver_mass_includes_tumour": True}, "not smaller"),
    ],
)
def test_partition_model_refuses_impossible_inputs(kwargs, match):
    base = dict(activity_gbq=2.0, lsf=0.1, tnr=4.0, liver_mass_kg=1.5, tumour_mass_kg=0.2)
    base.update(kwargs)
    with pytest.raises(InvalidInputError, match=match):
        sirt.partition_model(**base)


def test_inverse_round_trip_both_targets():
    for target, key in (("tumour", "tumour_dose_gy"), ("normal-liver", "normal_liver_dose_gy")):
        a = sirt.partition_activity_for_target(target, 150.0, 0.05, 3.0, 1.4, 0.3)
        r = sirt.partition_model(a, 0.05, 3.0, 1.4, 0.3)
        assert getattr(r, key) == pytest.approx(150.0, rel=1e-12)
    # hand: D_N 40 Gy, m_eff 1.5 + 4 * 0.2 = 2.3 kg, LSF 0.1:
    # A = 40 * 2.3 / (49.771 * 0.9) = 2.0538 GBq
    a = sirt.partition_activity_for_target("normal-liver", 40.0, 0.1, 4.0, 1.5, 0.2)
    assert a == pytest.approx(2.0538, abs=2e-4)
    with pytest.raises(InvalidInputError, match="target"):
        sirt.partition_activity_for_target("spleen", 40.0, 0.1, 4.0, 1.5, 0.2)


def test_plan_binding_constraints():
    # target reachable: the target binds and the dose is met
    p = sirt.plan_partition_activity("tumour", 200.0, 0.05, 4.0, 1.5, 0.2)
    assert p.binding_constraint == "target-tumour"
    assert p.doses.tumour_dose_gy == pytest.approx(200.0)
    # LSF 0.15: lung limit A = 30 * 1 / (49.771 * 0.15) = 4.0184 GBq < 4.0775 GBq for 300 Gy
    p = sirt.plan_partition_activity("tumour", 300.0, 0.15, 4.0, 1.5, 0.2)
    assert p.binding_constraint == "lung-per-treatment"
    assert p.activity_gbq == pytest.approx(4.0184, abs=2e-4)
    assert p.doses.lung_dose_gy == pytest.approx(30.0)
    assert p.doses.warnings == []  # exactly at the limit is not over it
    assert any("limited by lung-per-treatment" in w for w in p.warnings)
    # previous 40 Gy: 10 Gy left, A = 10 / (49.771 * 0.1) = 2.0092 GBq
    p = sirt.plan_partition_activity(
        "tumour", 300.0, 0.1, 4.0, 1.5, 0.2, previous_lung_dose_gy=40.0
    )
    assert p.binding_constraint == "lung-cumulative"
    assert p.activity_gbq == pytest.approx(2.0092, abs=2e-4)
    # normal-liver limit 40 Gy, LSF 0.02: A = 40 * 2.3 / (49.771 * 0.98) = 1.8862 GBq
    p = sirt.plan_partition_activity(
        "tumour", 400.0, 0.02, 4.0, 1.5, 0.2, normal_liver_limit_gy=40.0
    )
    assert p.binding_constraint == "normal-liver"
    assert p.activity_gbq == pytest.approx(1.8862, abs=2e-4)
    assert p.doses.normal_liver_dose_gy == pytest.approx(40.0)
    limits = sirt.partition_activity_limits(0.0, 4.0, 1.5, 0.2)
    assert math.isinf(limits["lung-per-treatment"])


def test_single_compartment_therasphere_ifu_example():
    # TheraSphere IFU: A = D m / 50 / (1 - F): 120 Gy, 1.5 kg, F 0.1 -> 120 * 1.5 / 45 = 4.0 GBq
    k50 = sirt.therasphere_dose_constant_gy_kg_per_gbq()
    assert k50 == 50.0
    a = sirt.single_compartment_activity_gbq(120.0, 1.5, 0.1, dose_constant_gy_kg_per_gbq=k50)
    assert a == pytest.approx(4.0)
    d = sirt.single_compartment_dose_gy(4.0, 1.5, 0.1, dose_constant_gy_kg_per_gbq=k50)
    assert d == pytest.approx(120.0)
    # default K (ICRP-107): 49.771 * 4 * 0.9 / 1.5 = 119.45 Gy
    assert sirt.single_compartment_dose_gy(4.0, 1.5, 0.1) == pytest.approx(119.45, abs=0.01)
    # TNR 1 partition model = single compartment over m_N + m_T
    r = sirt.partition_model(4.0, 0.1, 1.0, 1.3, 0.2)
    assert r.tumour_dose_gy == pytest.approx(sirt.single_compartment_dose_gy(4.0, 1.5, 0.1))


def test_body_surface_area_formulas():
    # Mosteller: sqrt(180 * 64.8 / 3600) = sqrt(3.24) = 1.8 m^2
    assert sirt.body_surface_area_m2(180.0, 64.8) == pytest.approx(1.8)
    # Du Bois: 0.007184 * 180^0.725 * 64.8^0.425 = 0.007184 * 43.1591 * 5.8873 = 1.8254 m^2;
    # the metre form 0.20247 * 1.8^0.725 * 64.8^0.425 (same source) agrees to 1e-4
    dubois = sirt.body_surface_area_m2(180.0, 64.8, "dubois")
    assert dubois == pytest.approx(1.8254, abs=2e-4)
    assert dubois == pytest.approx(0.20247 * 1.8**0.725 * 64.8**0.425, abs=2e-4)
    with pytest.raises(InvalidInputError):
        sirt.body_surface_area_m2(-180.0, 64.8)


def test_bsa_activity_with_lung_shunt_reduction():
    # (1.8 - 0.2) + 0.25 = 1.85 GBq; LSF 12 % -> x 0.8 = 1.48; 17 % -> x 0.6 = 1.11
    assert sirt.bsa_activity_gbq(1.8, 0.25).activity_gbq == pytest.approx(1.85)
    assert sirt.bsa_activity_gbq(1.8, 0.25, 0.05).activity_gbq == pytest.approx(1.85)
    assert sirt.bsa_activity_gbq(1.8, 0.25, 0.12).activity_gbq == pytest.approx(1.48)
    assert sirt.bsa_activity_gbq(1.8, 0.25, 0.17).activity_gbq == pytest.approx(1.11)
    assert sirt.bsa_activity_gbq(1.8, 0.25, 0.10).lung_shunt_factor == 0.8
    lobe = sirt.bsa_activity_gbq(1.8, 0.25, 0.05, perfused_fraction=0.6)
    assert lobe.activity_gbq == pytest.approx(1.11)
    with pytest.raises(InvalidInputError, match="contraindicates"):
        sirt.bsa_activity_gbq(1.8, 0.25, 0.20)
    with pytest.raises(InvalidInputError, match="tumour fraction"):
        sirt.bsa_activity_gbq(1.8, 25.0)


def test_device_parameters_have_sources():
    glass, resin = sirt.device_parameters("glass"), sirt.device_parameters("Resin")
    assert glass["activity_per_sphere_bq"] == 2500.0 and resin["activity_per_sphere_bq"] == 50.0
    assert glass["source"] and resin["source"]
    assert sirt.lung_limit_per_treatment_gy() == 30.0
    assert sirt.lung_limit_cumulative_gy() == 50.0
    with pytest.raises(InvalidInputError):
        sirt.device_parameters("ceramic")


SPACING = (4.0, 4.0, 4.0)  # mm, voxel 0.064 mL


def _phantom():
    counts = np.zeros((10, 10, 10))
    liver = np.zeros_like(counts, dtype=bool)
    liver[2:8, 2:8, 2:8] = True  # 216 voxels
    tumour = np.zeros_like(liver)
    tumour[3:5, 3:5, 3:5] = True  # 8 voxels inside the liver
    return counts, liver, tumour


def test_voxel_dose_uniform_liver_equals_single_compartment():
    counts, liver, _ = _phantom()
    counts[liver] = 123.0
    counts[0, 0, 0] = 1e6  # outside the mask: ignored (extrahepatic, not liver)
    rho = 1.05
    dose = sirt.sirt_voxel_dose(counts, SPACING, liver, 0.1, 0.01, density_g_cm3=rho)
    # m = 216 * 0.064 mL * 1.05 g/mL = 14.515 g; D = 49.771 * 0.01 * 0.9 / 0.014515 = 30.86 Gy
    m_kg = 216 * 0.064 * rho * 1e-3
    assert float(dose[liver].mean()) == pytest.approx(30.86, abs=0.01)
    assert float(dose[liver].mean()) == pytest.approx(
        sirt.single_compartment_dose_gy(0.01, m_kg, 0.1), rel=1e-5
    )
    assert np.ptp(dose[liver]) < 1e-4 * float(dose[liver].mean())
    assert float(dose[~liver].max()) == 0.0


def test_voxel_dose_two_compartments_equals_partition_model():
    counts, liver, tumour = _phantom()
    counts[liver] = 1.0
    counts[tumour] = 4.0  # TNR 4 in concentration
    dose = sirt.sirt_voxel_dose(counts, SPACING, liver, 0.1, 0.01, residual_fraction=0.05)
    m_t = 8 * 0.064e-3
    m_n = 208 * 0.064e-3
    r = sirt.partition_model(0.01, 0.1, 4.0, m_n, m_t, residual_fraction=0.05)
    normal = liver & ~tumour
    assert float(dose[tumour].mean()) == pytest.approx(r.tumour_dose_gy, rel=1e-5)
    assert float(dose[normal].mean()) == pytest.approx(r.normal_liver_dose_gy, rel=1e-5)


def test_voxel_dose_refusals():
    counts, liver, _ = _phantom()
    with pytest.raises(InvalidInputError, match="no counts"):
        sirt.sirt_voxel_dose(counts, SPACING, liver, 0.1, 1.0)
    counts[liver] = 1.0
    counts[5, 5, 5] = -1.0
    with pytest.raises(InvalidInputError, match="negative"):
        sirt.sirt_voxel_dose(counts, SPACING, liver, 0.1, 1.0)
    counts[5, 5, 5] = 1.0
    with pytest.raises(InvalidInputError, match="lung shunt"):
        sirt.sirt_voxel_dose(counts, SPACING, liver, 1.0, 1.0)
    with pytest.raises(InvalidInputError, match="shape"):
        sirt.sirt_voxel_dose(counts, SPACING, liver[:5], 0.1, 1.0)
    with pytest.raises(InvalidInputError, match="empty"):
        sirt.sirt_voxel_dose(counts, SPACING, np.zeros_like(liver), 0.1, 1.0)


def test_y90_pet_dose_permanent_implant():
    # 1 MBq/mL in unit density = 1 GBq/kg fully decayed -> K = 49.771 Gy
    c = np.full((3, 3, 3), 1e6)
    dose = sirt.y90_pet_dose(c, (4.0, 4.0, 5.0))
    assert float(dose.mean()) == pytest.approx(K_HAND, abs=0.01)
    # image at one half-life (64.1 h) after administration: 0.5 MBq/mL gives the same dose
    dose_late = sirt.y90_pet_dose(c / 2, (4.0, 4.0, 5.0), hours_after_administration=64.1)
    assert float(dose_late.mean()) == pytest.approx(K_HAND, abs=0.01)
    # independent numeric integration of 1 MBq/mL * exp(-lambda t) over 60 half-lives, density 2
    lam_h = math.log(2) / 64.1
    n_mbq_h, _ = quad(lambda t: math.exp(-lam_h * t), 0.0, 60 * 64.1, limit=200)
    n = n_mbq_h * 1e6 * 3600  # decays per mL
    expected = n * 0.933106 * 1.602176634e-13 / 2e-3  # J per mL / kg per mL
    assert float(sirt.y90_pet_dose(c, (4, 4, 4), 2.0).mean()) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(InvalidInputError, match="negative"):
        sirt.y90_pet_dose(-c, (4, 4, 4))
