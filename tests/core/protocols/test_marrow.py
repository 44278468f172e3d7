"""Blood-based red-marrow dosimetry (Hindorf et al., Eur J Nucl Med Mol Imaging 2010;37:1238).

Known answers
-------------
* RMBLR (Sgouros, J Nucl Med 1993;34:689) = 0.19 / (1 - 0.47) = 0.358490566.
* Lu-177, blood TIA 0.5 MBq h/mL, RMBLR 1, male 73 kg -> m_RM = 1170 g (ICRP 89),
  A~_RM = 585 MBq h; D_self = 585 * 3.6e9 * 0.14792314 MeV * 1.602176634e-13 / 1.170 kg
  = 0.04266 Gy; photons (phi = 0.3, body 73 kg, E_ph 0.03509767 MeV) from the marrow
  585 MBq h and from the remainder 20000 MBq h, hand-worked below.
* Mass scaling: 90 kg male -> 1170 * 90 / 73 = 1442.47 g; 60 kg female -> 900 g.
"""

from __future__ import annotations

import pytest

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.protocols import marrow

E_NP_LU177, E_PH_LU177 = 0.14792314, 0.03509767  # ICRP-107 mean energies per decay (MeV)
J = 1.602176634e-13
BQ_S_PER_MBQ_H = 3.6e9


def test_rmblr_options() -> None:
    v, src = marrow.rmblr_value("sgouros", 0.47)
    assert v == pytest.approx(0.358490566, rel=1e-8)
    assert "Sgouros" in src
    assert marrow.rmblr_value("one")[0] == 1.0
    assert marrow.rmblr_value(0.8) == (0.8, "user-supplied value")
    with pytest.raises(InvalidInputError, match="hematocrit"):
        marrow.rmblr_value("sgouros")
    with pytest.raises(InvalidInputError, match="between 0 and 1"):
        marrow.rmblr_value("sgouros", 1.0)
    with pytest.raises(InvalidInputError, match="unknown RMBLR"):
        marrow.rmblr_value("bogus")
    with pytest.raises(InvalidInputError, match="RMBLR"):
        marrow.rmblr_value(-0.3)


def test_parameter_file_has_sources() -> None:
    p = marrow.marrow_parameters()
    for opt in p["rmblr"].values():
        assert opt["source"]
    assert p["rmblr"]["sgouros"]["rmecff"] == 0.19


def test_marrow_dose_hand_worked_lu177() -> None:
    r = marrow.marrow_dose_blood_based(
        0.5, "one", 73.0, 20000.0, "Lu-177", sex="M", body_photon_absorbed_fraction=0.3
    )
    assert r.red_marrow_mass_g == pytest.approx(1170.0)
    assert r.marrow_tia_mbq_h == pytest.approx(585.0)
    self_hand = 585.0 * BQ_S_PER_MBQ_H * E_NP_LU177 * J / 1.170
    assert self_hand == pytest.approx(0.04266, rel=1e-3)
    assert r.self_gy == pytest.approx(self_hand, rel=1e-6)
    ph_self = 585.0 * BQ_S_PER_MBQ_H * E_PH_LU177 * 0.3 * J / 73.0
    ph_cross = 20000.0 * BQ_S_PER_MBQ_H * E_PH_LU177 * 0.3 * J / 73.0
    assert r.self_photon_gy == pytest.approx(ph_self, rel=1e-6)
    assert r.cross_gy == pytest.approx(ph_cross, rel=1e-6)
    assert r.dose_gy == pytest.approx(self_hand + ph_self + ph_cross, rel=1e-6)
    assert r.to_dict()["rmblr"] == 1.0


def test_sgouros_scales_self_dose_and_mass_scaling() -> None:
    one = marrow.marrow_dose_blood_based(
        0.5, "one", 90.0, 0.0, "Lu-177", body_photon_absorbed_fraction=0.3
    )
    assert one.red_marrow_mass_g == pytest.approx(1442.4658, rel=1e-6)
    sg = marrow.marrow_dose_blood_based(
        0.5, "sgouros", 90.0, 0.0, "Lu-177", hematocrit=0.47, body_photon_absorbed_fraction=0.3
    )
    # self-dose per gram is independent of the marrow mass; it scales with RMBLR
    assert sg.self_gy / one.self_gy == pytest.approx(0.358490566, rel=1e-8)
    assert one.self_gy == pytest.approx(0.5 * BQ_S_PER_MBQ_H * E_NP_LU177 * J * 1e3, rel=1e-6)
    f = marrow.marrow_dose_blood_based(
        0.5, "one", 60.0, 0.0, "Lu-177", sex="F", body_photon_absorbed_fraction=0.3
    )
    assert f.red_marrow_mass_g == pytest.approx(900.0)
    given = marrow.marrow_dose_blood_based(
        0.5, "one", 60.0, 0.0, "Lu-177", red_marrow_mass_g=1000.0, body_photon_absorbed_fraction=0.3
    )
    assert given.red_marrow_mass_source == "user-supplied"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"blood_tia_mbq_h_per_ml": -0.1}, "blood TIA"),
        ({"patient_mass_kg": 0.0}, "patient mass"),
        ({"remainder_tia_mbq_h": -5.0}, "remainder"),
        ({"rmblr": "sgouros"}, "hematocrit"),
        ({"red_marrow_mass_g": -3.0}, "red-marrow mass"),
        ({"body_photon_absorbed_fraction": 1.5}, r"\[0, 1\]"),
    ],
)
def test_refusals(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {
        "blood_tia_mbq_h_per_ml": 0.5,
        "rmblr": "one",
        "patient_mass_kg": 70.0,
        "remainder_tia_mbq_h": 1000.0,
        "nuclide": "Lu-177",
        "body_photon_absorbed_fraction": 0.3,
    }
    args.update(kwargs)
    with pytest.raises(InvalidInputError, match=match):
        marrow.marrow_dose_blood_based(**args)  # type: ignore[arg-type]
