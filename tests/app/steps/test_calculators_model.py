"""The calculators' view-model (no Qt): each form shows the numbers ``mrtdose ... --json`` gives.

Known answers: every form computed from typed texts equals the CLI's JSON on the
same inputs (``dosimetry_core.cli.main.main`` with ``capsys``); bad input (negative,
NaN, out of range, not a number) comes back as the core's message with the field
it names, never as an exception; the open case fills in weight, height, sex,
nuclide and the net administered activity.
"""

from __future__ import annotations

import ast
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from app.steps.protocol import calculators_model as cm
from app.steps.protocol.calculators_model import form_by_id, prefill
from dosimetry_core.cli.main import main
from dosimetry_core.model import Administration, Case, Patient


def _cli(capsys: Any, *argv: str) -> dict[str, Any]:
    assert main([*argv, "--json"]) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def _ok(form_id: str, texts: dict[str, str]) -> cm.CalcOutcome:
    out = form_by_id(form_id).compute(texts)
    assert out.ok, out.error
    return out


# ------------------------------------------------------------------ known answers
THYROID = {"target_gy": "150", "mass_g": "25", "uptake_time_h": "4 24 96 168",
           "uptake_percent": "20, 40, 32, 22"}  # fmt: skip


def test_thyroid_prescription_equals_the_cli(capsys: Any) -> None:
    cli = _cli(capsys, "thyroid", "--target-gy", "150", "--mass-g", "25",
               "--uptake-time-h", "4", "24", "96", "168",
               "--uptake-percent", "20", "40", "32", "22")  # fmt: skip
    out = _ok("thyroid", THYROID)
    for key in ("activity_mbq", "activity_sop_mbq", "u_max_percent", "t_eff_d", "t_uptake_h",
                "marinelli_k", "photon_absorbed_fraction"):  # fmt: skip
        assert out.value(key) == pytest.approx(cli[key], rel=1e-12), key
    assert out.row("activity_mbq").text() == f"{cli['activity_mbq']:.4g} MBq"
    assert "Hänscheid" in out.source


def test_thyroid_dose_for_an_activity_inverts_the_prescription(capsys: Any) -> None:
    cli = _cli(capsys, "thyroid", "--target-gy", "150", "--mass-g", "25",
               "--uptake-time-h", "4", "24", "96", "168",
               "--uptake-percent", "20", "40", "32", "22", "--tia-method", "sop")  # fmt: skip
    out = _ok("thyroid", {**THYROID, "mode": "verify", "tia_method": "sop",
                          "activity_mbq": repr(cli["activity_mbq"])})  # fmt: skip
    assert out.value("dose_gy") == pytest.approx(150.0, rel=1e-9)
    assert out.value("marinelli_k") == pytest.approx(cli["marinelli_k"], rel=1e-12)


SIRT = {"lsf": "0.08", "tnr": "3", "liver_mass_kg": "1.4", "tumour_mass_kg": "0.3"}
DOSES = ("tumour_dose_gy", "normal_liver_dose_gy", "lung_dose_gy", "cumulative_lung_dose_gy")


def test_sirt_forward_equals_the_cli(capsys: Any) -> None:
    cli = _cli(capsys, "sirt", "--activity-gbq", "2", "--lsf", "0.08", "--tnr", "3",
               "--liver-mass-kg", "1.4", "--tumour-mass-kg", "0.3")  # fmt: skip
    out = _ok("sirt", {**SIRT, "activity_gbq": "2"})
    for key in DOSES:
        assert out.value(key) == pytest.approx(cli[key], rel=1e-12), key
    assert "Ho S" in out.source


def test_sirt_inverse_with_limits_equals_the_cli(capsys: Any) -> None:
    cli = _cli(capsys, "sirt", "--target-tumour-gy", "400", "--lsf", "0.15", "--tnr", "3",
               "--liver-mass-kg", "1.4", "--tumour-mass-kg", "0.3",
               "--previous-lung-dose-gy", "25", "--normal-liver-limit-gy", "70")  # fmt: skip
    out = _ok("sirt", {**SIRT, "lsf": "0.15", "method": "partition-inverse",
                       "target": "tumour", "target_dose_gy": "400",
                       "previous_lung_dose_gy": "25", "normal_liver_limit_gy": "70"})  # fmt: skip
    assert out.value("activity_gbq") == pytest.approx(cli["activity_gbq"], rel=1e-12)
    assert out.value("binding_constraint") == cli["binding_constraint"] == "lung-cumulative"
    for name, a in cli["constraints_gbq"].items():
        assert out.value(f"constraint_{name}_gbq") == pytest.approx(a, rel=1e-12)
    for key in DOSES:
        assert out.value(key) == pytest.approx(cli[key], rel=1e-12), key
    assert any("limited by lung-cumulative" in w for w in out.warnings)


def test_sirt_lung_shunt_from_planar_and_spect_counts() -> None:
    from dosimetry_core.protocols.sirt import (
        lung_shunt_fraction_planar,
        lung_shunt_fraction_spect,
        partition_model,
    )

    planar = _ok("sirt", {**SIRT, "activity_gbq": "2", "lsf_source": "planar",
                          "lung_ant": "100", "lung_post": "120", "liver_ant": "1000",
                          "liver_post": "1300"})  # fmt: skip
    lsf = lung_shunt_fraction_planar(100, 120, 1000, 1300)
    assert planar.value("lsf") == pytest.approx(lsf * 100.0, rel=1e-12)  # shown in %
    assert planar.value("lung_dose_gy") == pytest.approx(
        partition_model(2.0, lsf, 3.0, 1.4, 0.3).lung_dose_gy, rel=1e-12
    )
    spect = _ok("sirt", {**SIRT, "activity_gbq": "2", "lsf_source": "spect",
                         "lung_counts": "5e4", "liver_counts": "9.5e5"})  # fmt: skip
    assert spect.value("lsf") == pytest.approx(
        lung_shunt_fraction_spect(5e4, 9.5e5) * 100.0, rel=1e-12
    )
    assert "geometric mean" in planar.source


def test_sirt_single_compartment_and_bsa() -> None:
    from dosimetry_core.protocols.sirt import (
        body_surface_area_m2,
        bsa_activity_gbq,
        single_compartment_activity_gbq,
    )

    sc = _ok("sirt", {"method": "single-inverse", "lsf": "0.05", "perfused_mass_kg": "1.2",
                      "target_dose_gy": "120"})  # fmt: skip
    assert sc.value("activity_gbq") == pytest.approx(
        single_compartment_activity_gbq(120.0, 1.2, 0.05), rel=1e-12
    )
    bsa = _ok("sirt", {"method": "bsa", "lsf": "0.12", "height_cm": "175", "weight_kg": "70",
                       "tumour_fraction": "0.2"})  # fmt: skip
    expected = bsa_activity_gbq(body_surface_area_m2(175.0, 70.0), 0.2, 0.12)
    assert bsa.value("activity_gbq") == pytest.approx(expected.activity_gbq, rel=1e-12)
    assert bsa.value("lung_shunt_factor") == 0.8
    assert bsa.row("bsa_m2").text().endswith("m²")


MIBG = {"time_h": "1 24 48 96", "dose_rate": "100 60 35 12",
        "administered_activity_mbq": "3700", "body_mass_kg": "40"}  # fmt: skip


def test_mibg_equals_the_cli(capsys: Any) -> None:
    cli = _cli(capsys, "mibg", "--time-h", "1", "24", "48", "96",
               "--dose-rate", "100", "60", "35", "12", "--administered-activity-mbq", "3700",
               "--body-mass-kg", "40", "--target-gy", "2", "--administrations", "2",
               "--target-total-gy", "2")  # fmt: skip
    out = _ok("mibg", {**MIBG, "target_gy": "2", "administrations": "2",
                       "target_total_gy": "2"})  # fmt: skip
    assert out.value("whole_body_dose_gy") == pytest.approx(cli["whole_body_dose_gy"], rel=1e-9)
    assert out.value("tia_mbq_h") == pytest.approx(cli["tia_mbq_h"], rel=1e-9)
    assert out.value("activity_for_target_mbq") == pytest.approx(
        cli["activity_for_target_mbq"], rel=1e-9
    )
    assert out.value("second_activity_mbq") == pytest.approx(
        cli["second_administration"]["second_activity_mbq"], rel=1e-9
    )
    assert out.value("model") == cli["model"]


MARROW = {"blood_tia_mbq_h_per_ml": "0.5", "rmblr": "sgouros", "hematocrit": "0.4",
          "patient_mass_kg": "70", "remainder_tia_mbq_h": "50000", "nuclide": "Lu-177"}  # fmt: skip


def test_marrow_equals_the_cli(capsys: Any) -> None:
    cli = _cli(capsys, "marrow", "--blood-tia-mbq-h-per-ml", "0.5", "--rmblr", "sgouros",
               "--hematocrit", "0.4", "--patient-mass-kg", "70",
               "--remainder-tia-mbq-h", "50000", "--nuclide", "Lu-177")  # fmt: skip
    out = _ok("marrow", MARROW)
    for key in ("dose_gy", "self_gy", "self_photon_gy", "cross_gy", "marrow_tia_mbq_h", "rmblr",
                "red_marrow_mass_g"):  # fmt: skip
        assert out.value(key) == pytest.approx(cli[key], rel=1e-12), key
    assert out.value("rmblr_source") == cli["rmblr_source"]
    value = _ok("marrow", {**MARROW, "rmblr": "value", "rmblr_value": "1"})
    assert value.value("rmblr") == 1.0


def test_bed_equals_the_cli(capsys: Any) -> None:
    cli = _cli(capsys, "bed", "--dose-gy", "20", "--t-eff-h", "50", "--tissue", "kidney")
    out = _ok("bed", {"dose_gy": "20", "t_eff_h": "50", "tissue": "kidney"})
    for key in ("bed_gy", "eqd2_gy", "dose_gy", "relative_effectiveness", "g_factor",
                "alpha_beta_gy", "t_repair_h"):  # fmt: skip
        assert out.value(key) == pytest.approx(cli[key], rel=1e-12), key
    assert out.value("tissue_source") == cli["source"]
    assert out.row("bed_gy").text() == f"{cli['bed_gy']:.4g} Gy"
    back = _ok("bed", {"mode": "dose", "bed_gy": repr(cli["bed_gy"]), "t_eff_h": "50",
                       "tissue": "kidney"})  # fmt: skip
    assert back.value("dose_gy") == pytest.approx(20.0, rel=1e-12)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("form_id", "texts", "field", "words"),
    [
        ("thyroid", {**THYROID, "mass_g": "-25"}, "mass_g", "thyroid mass"),
        ("thyroid", {**THYROID, "uptake_percent": "20 140 32 22"}, "uptake_percent", "100 %"),
        ("thyroid", {**THYROID, "target_gy": "nan"}, "target_gy", "target dose"),
        ("sirt", {**SIRT, "activity_gbq": "2", "lsf": "1.5"}, "lsf", "lung shunt fraction"),
        ("sirt", {**SIRT, "activity_gbq": "2", "lsf": "nan"}, "lsf", "finite"),
        ("sirt", {**SIRT, "activity_gbq": "2", "tnr": "-3"}, "tnr", "tumour-to-normal"),
        ("sirt", {**SIRT, "activity_gbq": "2", "liver_mass_kg": "1400"}, "liver_mass_kg", "kg"),
        ("mibg", {**MIBG, "administered_activity_mbq": "-3700"}, "administered_activity_mbq",
         "administered activity"),
        ("mibg", {**MIBG, "body_mass_kg": "abc"}, "body_mass_kg", "must be a number"),
        ("marrow", {**MARROW, "hematocrit": "1.4"}, "hematocrit", "hematocrit"),
        ("marrow", {**MARROW, "patient_mass_kg": "-70"}, "patient_mass_kg", "patient mass"),
        ("bed", {"dose_gy": "-20", "t_eff_h": "50"}, "dose_gy", "dose_gy"),
        ("bed", {"dose_gy": "20", "t_eff_h": "nan"}, "t_eff_h", "t_eff_h"),
        ("bed", {"dose_gy": "20", "t_eff_h": "1e6"}, "t_eff_h", "plausible"),
    ],
)  # fmt: skip
def test_bad_input_names_the_field(form_id: str, texts: dict[str, str], field: str,
                                   words: str) -> None:  # fmt: skip
    out = form_by_id(form_id).compute(texts)
    assert not out.ok and out.rows == ()
    assert out.error_field == field
    assert words.lower() in (out.error or "").lower()


def test_only_the_fields_of_the_chosen_method_are_shown() -> None:
    sirt = form_by_id("sirt")
    fwd = sirt.visible_fields({"method": "partition-forward"})
    assert "activity_gbq" in fwd and "lsf" in fwd and "target_dose_gy" not in fwd
    planar = sirt.visible_fields({"method": "partition-forward", "lsf_source": "planar"})
    assert "lung_ant" in planar and "lsf" not in planar
    assert "height_cm" in sirt.visible_fields({"method": "bsa"})


# ------------------------------------------------------------------ prefill
def _case(nuclide: str, activity_mbq: float) -> Case:
    adm = Administration(nuclide=nuclide, activity_mbq=activity_mbq,
                         time=datetime(2026, 1, 5, 9, 0))  # fmt: skip
    return Case(patient=Patient("P1", sex="F", weight_kg=62.5, height_cm=168.0),
                administrations=[adm])  # fmt: skip


def test_prefill_from_the_case() -> None:
    iodine = prefill(_case("I-131", 3700.0))
    assert iodine["mibg"] == {"body_mass_kg": "62.5", "administered_activity_mbq": "3700",
                              "nuclide": "I-131"}  # fmt: skip
    assert iodine["thyroid"]["activity_mbq"] == "3700"
    assert iodine["marrow"] == {"patient_mass_kg": "62.5", "sex": "F", "nuclide": "I-131"}
    assert iodine["sirt"] == {"weight_kg": "62.5", "height_cm": "168"}
    yttrium = prefill(_case("Y-90", 1850.0))
    assert yttrium["sirt"]["activity_gbq"] == "1.85"
    assert "activity_mbq" not in yttrium["thyroid"]
    assert prefill(None) == {f.form_id: {} for f in cm.FORMS}


def test_the_model_imports_no_qt() -> None:
    tree = ast.parse(Path(cm.__file__).read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not [n for n in names if n.split(".")[0] in ("PySide6", "shiboken6", "pyqtgraph")]


def test_an_activity_in_mci_or_gbq_is_converted_by_the_core() -> None:
    mbq = _ok("thyroid", {**THYROID, "mode": "verify", "activity_mbq": "3700"})
    mci = _ok("thyroid", {**THYROID, "mode": "verify", "activity_mbq": "100",
                          "activity_mbq:unit": "mCi"})  # fmt: skip
    assert mci.value("dose_gy") == pytest.approx(mbq.value("dose_gy"), rel=1e-12)
    gbq = _ok("sirt", {**SIRT, "activity_gbq": "2"})
    mbq_sirt = _ok("sirt", {**SIRT, "activity_gbq": "2000", "activity_gbq:unit": "MBq"})
    assert mbq_sirt.value("lung_dose_gy") == pytest.approx(gbq.value("lung_dose_gy"), rel=1e-12)
    assert form_by_id("sirt").defaults()["activity_gbq:unit"] == "GBq"
