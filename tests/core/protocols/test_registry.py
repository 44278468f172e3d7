"""Protocol data files: shipped protocols valid and consistent; user protocols; checklist."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from dosimetry_core.cli.main import main
from dosimetry_core.errors import InvalidInputError
from dosimetry_core.protocols.registry import (
    FORMAT,
    checklist,
    list_protocols,
    load_protocol,
    parse_protocol,
)
from dosimetry_core.radiobiology.tissues import list_tissues
from dosimetry_core.store import CaseStore

SHIPPED = {
    "lu177-dotatate",
    "lu177-psma617",
    "i131-thyroid-benign",
    "i131-mibg",
    "y90-sirt-glass",
    "y90-sirt-resin",
    "generic",
}


def test_shipped_protocols_are_valid_and_use_known_tissues():
    protocols = {p.id: p for p in list_protocols()}
    assert SHIPPED <= set(protocols)
    tissues = set(list_tissues())
    for p in protocols.values():
        assert p.sources, p.id
        assert set(p.eanm_levels) == {"1", "2", "3"}, p.id
        for o in p.organs:
            assert o.tissue is None or o.tissue in tissues, (p.id, o.id)
            for lim in o.limits:
                assert lim.source and lim.value > 0
        assert p.lesions.tissue is None or p.lesions.tissue in tissues
    kid = protocols["lu177-dotatate"].organ("kidneys")
    assert kid.matches("Kidney_L") and kid.matches("kidney_r") and not kid.matches("Liver")
    assert {(lim.quantity, lim.value) for lim in kid.limits} == {
        ("bed_gy", 40.0),
        ("bed_gy", 28.0),
        ("dose_gy", 23.0),
    }
    assert "salivary-glands" in {o.id for o in protocols["lu177-psma617"].organs}
    lungs = protocols["y90-sirt-glass"].organ("lungs")
    assert {(lim.scope, lim.value) for lim in lungs.limits} == {
        ("cycle", 30.0),
        ("cumulative", 50.0),
    }


def _protocol(**over):
    d = {
        "format": FORMAT,
        "id": "site-ho166",
        "name": "Ho-166 microspheres, site protocol",
        "therapy": "generic",
        "nuclide": "Ho-166",
        "sources": ["site SOP 2026"],
        "eanm_levels": {"1": "a", "2": "b", "3": "c"},
        "methods": {"multi-point": {"min_time_points": 2}},
        "organs": [
            {
                "id": "lungs",
                "label": "Lungs",
                "voi_patterns": ["^lung"],
                "tissue": "lung",
                "limits": [{"quantity": "dose_gy", "value": 30, "scope": "cycle", "source": "x"}],
            }
        ],
    }
    d.update(over)
    return d


def test_a_department_protocol_is_found_and_bad_ones_are_refused(tmp_path, monkeypatch):
    (tmp_path / "site-ho166.json").write_text(json.dumps(_protocol()), encoding="utf-8")
    monkeypatch.setenv("MRTDOSE_PROTOCOLS", str(tmp_path))
    p = load_protocol("site-ho166")
    assert p.nuclide == "Ho-166" and p.min_time_points("multi-point") == 2
    assert "site-ho166" in {q.id for q in list_protocols()}
    with pytest.raises(InvalidInputError, match="has no method"):
        p.min_time_points("single-time-point")
    bad_limit = _protocol()
    del bad_limit["organs"][0]["limits"][0]["source"]
    with pytest.raises(InvalidInputError, match="needs its 'source'"):
        parse_protocol(bad_limit)
    with pytest.raises(InvalidInputError, match="bad VOI pattern"):
        parse_protocol(_protocol(organs=[{"id": "x", "voi_patterns": ["(unclosed"]}]))
    with pytest.raises(InvalidInputError, match="therapy"):
        parse_protocol(_protocol(therapy="brachytherapy"))
    with pytest.raises(InvalidInputError, match="not a protocol file"):
        parse_protocol(_protocol(format="something else"))
    with pytest.raises(InvalidInputError, match="unknown protocol"):
        load_protocol("nope")


def test_checklist_says_what_is_missing():
    p = load_protocol("lu177-dotatate")
    adm = SimpleNamespace(nuclide="Lu-177", activity_mbq=7400.0)
    case = SimpleNamespace(
        first_administration=adm,
        time_points=[object()],
        measurements=[SimpleNamespace(kind="blood sample")],
        vois=[SimpleNamespace(name="Kidney_L"), SimpleNamespace(name="Kidney_R")],
    )
    items = {i["item"]: i for i in checklist(case, p)}
    assert items["administration"]["present"]
    assert "multi-point needs 3" in items["measurement: spect"]["detail"]
    assert items["measurement: blood"]["present"]
    assert items["VOI: Kidneys"]["present"] and items["VOI: Kidneys"]["required"]
    assert not items["VOI: Red marrow"]["present"] and items["VOI: Red marrow"]["required"]
    wrong = SimpleNamespace(**{**case.__dict__, "first_administration": SimpleNamespace(
        nuclide="Y-90", activity_mbq=1.0)})  # fmt: skip
    assert not {i["item"]: i for i in checklist(wrong, p)}["administration"]["present"]


def test_import_with_a_protocol_sets_it_and_prints_the_checklist(capsys, small_demo_dirs, tmp_path):
    store_dir = tmp_path / "store"
    src = str(small_demo_dirs["siemens-bqml"])
    code = main(["import", src, "--protocol", "lu177-nothing", "--store", str(store_dir)])
    assert code == 1 and "unknown protocol" in capsys.readouterr().err
    assert not CaseStore(store_dir).list_cases()  # refused before anything was imported
    code = main(
        ["import", src, "--protocol", "lu177-dotatate", "--store", str(store_dir), "--json"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    d = json.loads(out)
    [cid] = d["checklists"]
    assert d["protocol"] == "lu177-dotatate"
    assert CaseStore(store_dir).load_case(cid).protocol == "lu177-dotatate"
    items = {i["item"]: i for i in d["checklists"][cid]}
    assert items["measurement: spect"]["present"] and items["administration"]["present"]
