"""Tissue parameter table: shipped values, sources, user copies, errors."""

from __future__ import annotations

import json

import pytest

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.radiobiology.tissues import (
    TISSUE_TABLE_PATH,
    TissueParameters,
    list_tissues,
    tissue_parameters,
)

# every tissue id used by the shipped protocols (resources/protocols/*.json)
PROTOCOL_TISSUES = {
    "kidney",
    "red-marrow",
    "liver",
    "spleen",
    "salivary-glands",
    "lung",
    "thyroid",
    "tumour",
    "tumour-net",
    "tumour-prostate",
}


def test_kidney_values_of_prrt_literature():
    # alpha/beta 2.6 Gy, T_rep 2.8 h (Barone et al. 2005; Wessels et al. 2008)
    k = tissue_parameters("kidney")
    assert isinstance(k, TissueParameters)
    assert (k.alpha_beta_gy, k.t_repair_h) == (2.6, 2.8)
    assert "Barone" in k.source and "Wessels" in k.source


def test_generic_tumour_and_prostate():
    assert tissue_parameters("tumour").alpha_beta_gy == 10.0
    assert tissue_parameters("tumour-prostate").alpha_beta_gy == 1.5  # Brenner & Hall 1999
    assert "Brenner" in tissue_parameters("tumour-prostate").source


def test_every_protocol_tissue_is_in_the_table_with_source_and_verification():
    assert PROTOCOL_TISSUES <= set(list_tissues())
    for name in list_tissues():
        p = tissue_parameters(name)
        assert p.alpha_beta_gy > 0 and p.t_repair_h > 0
        assert p.source.strip() and p.verification.strip()


def test_every_value_in_the_file_has_source_and_verification():
    data = json.loads(TISSUE_TABLE_PATH.read_text(encoding="utf-8"))
    for name, entry in data["tissues"].items():
        for key in ("alpha_beta_gy", "t_repair_h"):
            assert entry[key]["source"].strip(), (name, key)
            assert entry[key]["verification"].strip(), (name, key)


def test_name_normalisation():
    assert tissue_parameters("Red_Marrow").name == "red-marrow"
    assert tissue_parameters(" KIDNEY ").name == "kidney"


def test_unknown_tissue_lists_known_ones():
    with pytest.raises(InvalidInputError, match="unknown tissue 'brain'.*kidney.*red-marrow"):
        tissue_parameters("brain")


def _write(tmp_path, tissues):
    p = tmp_path / "table.json"
    p.write_text(json.dumps({"tissues": tissues}), encoding="utf-8")
    return p


def test_user_copy_is_read_and_edits_take_effect(tmp_path):
    entry = {
        "alpha_beta_gy": {"value": 3.0, "source": "department SOP 7", "verification": "local"},
        "t_repair_h": {"value": 1.0, "source": "department SOP 7", "verification": "local"},
    }
    p = _write(tmp_path, {"Kidney": entry})
    assert tissue_parameters("kidney", path=p).alpha_beta_gy == 3.0
    entry["alpha_beta_gy"]["value"] = 2.0  # edit the file: read again on the next call
    p = _write(tmp_path, {"Kidney": entry})
    assert tissue_parameters("kidney", path=p).alpha_beta_gy == 2.0
    assert list_tissues(p) == ["kidney"]


def test_bad_user_copy_refused(tmp_path):
    no_source = {
        "alpha_beta_gy": {"value": 3.0},
        "t_repair_h": {"value": 1.0, "source": "x"},
    }
    with pytest.raises(InvalidInputError, match="no source"):
        tissue_parameters("kidney", path=_write(tmp_path, {"kidney": no_source}))
    negative = {
        "alpha_beta_gy": {"value": -3.0, "source": "x"},
        "t_repair_h": {"value": 1.0, "source": "x"},
    }
    with pytest.raises(InvalidInputError, match="alpha_beta_gy = -3"):
        tissue_parameters("kidney", path=_write(tmp_path, {"kidney": negative}))
    with pytest.raises(InvalidInputError, match="not found"):
        tissue_parameters("kidney", path=tmp_path / "missing.json")
