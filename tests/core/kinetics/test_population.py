"""Population effective half-life table: shipped file, lookup, validation."""

import json

import pytest

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.kinetics.population import DEFAULT_TABLE, load_table, lookup


def test_shipped_table_is_user_editable_and_every_entry_has_a_source():
    data = json.loads(DEFAULT_TABLE.read_text(encoding="utf-8"))
    assert data["user_editable"] is True
    for e in load_table():
        assert e.source and e.t_eff_h > 0


def test_lookup_from_a_user_table(tmp_path):
    p = tmp_path / "teff.json"
    p.write_text(
        json.dumps(
            {
                "format": "mrtdose-population-teff/1",
                "entries": [
                    {
                        "radiopharmaceutical": "Lu177-DOTATATE",
                        "organ": "Kidneys",
                        "nuclide": "Lu-177",
                        "t_eff_h": 50.0,
                        "t_eff_sd_h": 10.0,
                        "n_patients": 20,
                        "source": "test value, not published",
                    }
                ],
            }
        )
    )
    e = lookup("kidneys", "lu177-dotatate", path=p)
    assert (e.t_eff_h, e.t_eff_sd_h, e.n_patients) == (50.0, 10.0, 20)
    with pytest.raises(InvalidInputError, match="no population effective half-life"):
        lookup("liver", "lu177-dotatate", path=p)


@pytest.mark.parametrize(
    "entry",
    [
        {"radiopharmaceutical": "x", "organ": "y", "t_eff_h": -1, "source": "s"},
        {"radiopharmaceutical": "x", "organ": "y", "t_eff_h": 50},
        {"radiopharmaceutical": "x", "organ": "y", "t_eff_h": 50, "source": " "},
        {"organ": "y", "t_eff_h": 50, "source": "s"},
    ],
)
def test_bad_entries_are_rejected(tmp_path, entry):
    p = tmp_path / "teff.json"
    p.write_text(json.dumps({"entries": [entry]}))
    with pytest.raises(InvalidInputError):
        load_table(p)


def test_missing_or_broken_table(tmp_path):
    with pytest.raises(InvalidInputError, match="not found"):
        load_table(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        load_table(bad)
