"""Standard organ list and name matching."""

from __future__ import annotations

import json

import pytest

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.model import VoiKind
from dosimetry_core.segmentation import match_organ, standard_organs
from dosimetry_core.segmentation.organs import STANDARD_ORGANS_PATH

REQUIRED = [
    "Kidney_L", "Kidney_R", "Liver", "Spleen", "Lung_L", "Lung_R", "RedMarrow", "Bladder",
    "Parotid_L", "Parotid_R", "Submandibular_L", "Submandibular_R", "Lacrimal_L",
    "Lacrimal_R", "Heart", "Bone", "Body", "Tumour", "Background",
]  # fmt: skip


def test_standard_list_has_the_required_organs_with_kinds_and_colours():
    organs = {o.name: o for o in standard_organs()}
    assert set(REQUIRED) <= set(organs)
    assert len(organs) == len(standard_organs())  # names unique
    assert organs["Tumour"].kind == VoiKind.LESION
    assert organs["Background"].kind == VoiKind.REFERENCE
    assert organs["Liver"].kind == VoiKind.ORGAN
    for o in organs.values():
        assert all(0 <= c <= 255 for c in o.color_rgb)
    assert organs["Kidney_L"].laterality == "L" and organs["Liver"].laterality == ""


def test_icrp89_reference_masses():
    organs = {o.name: o for o in standard_organs()}
    liver = organs["Liver"]
    assert (liver.icrp89_mass_male_g, liver.icrp89_mass_female_g) == (1800.0, 1400.0)
    assert liver.reference_mass_g("M") == 1800.0 and liver.reference_mass_g("female") == 1400.0
    kid = organs["Kidney_R"]
    assert kid.pair_total and kid.reference_mass_g("M") == 310.0 and "both" in kid.mass_scope
    assert organs["Tumour"].reference_mass_g("M") is None
    with pytest.raises(InvalidInputError):
        liver.reference_mass_g("X")
    source = json.loads(STANDARD_ORGANS_PATH.read_text(encoding="utf-8"))["source"]
    assert "ICRP Publication 89" in source and "Table 2.8" in source


@pytest.mark.parametrize(
    "name,expected",
    [
        ("Kidney_L", "Kidney_L"),
        ("Left Kidney", "Kidney_L"),
        ("KIDNEY_L", "Kidney_L"),
        ("kidney left", "Kidney_L"),
        ("Niere links", "Kidney_L"),
        ("Kidney-R", "Kidney_R"),
        ("R kidney", "Kidney_R"),
        ("Niere rechts", "Kidney_R"),
        ("  liver ", "Liver"),
        ("LEBER", "Liver"),
        ("Parotid Gland Right", "Parotid_R"),
        ("parotid_l", "Parotid_L"),
        ("Lung Lt", "Lung_L"),
        ("Red Bone Marrow", "RedMarrow"),
        ("urinary bladder", "Bladder"),
        ("GTV", "Tumour"),
        ("tumor", "Tumour"),
        ("BKG", "Background"),
        ("External", "Body"),
        ("Submandibular Gland Left", "Submandibular_L"),
        ("lacrimal gland right", "Lacrimal_R"),
    ],
)
def test_match_organ_synonyms_and_sides(name, expected):
    spec = match_organ(name)
    assert spec is not None and spec.name == expected


@pytest.mark.parametrize("name", ["Kidney", "Kidneys", "Liver left", "Pineal", "", "   ", "L"])
def test_match_organ_does_not_guess(name):
    assert match_organ(name) is None


def test_every_name_and_synonym_matches_its_own_organ():
    for o in standard_organs():
        for n in (o.name, *o.synonyms):
            spec = match_organ(n)
            assert spec is not None and spec.name == o.name, n
