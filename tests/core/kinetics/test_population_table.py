"""The shipped population effective half-life table (issue 13, reference data).

Every row has a source (publication and where in it), units and a statistic; the
values are physically possible (0 < T_eff <= T_phys of the nuclide); the cited
numbers are the ones read in the sources (AAPM 2026 abstract on 177Lu-PSMA-617;
Remy et al., J Nucl Med 2008;49:1445 on 131I); values that could not be verified
are named in the file's status and are not in the table.
"""

from __future__ import annotations

import json

import pytest

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.kinetics.population import DEFAULT_TABLE, load_table, lookup
from dosimetry_core.physics.nuclides import half_life_h

AAPM = "aapm2026explorer-production.up.railway.app/detail/paper/2620"
REMY = "J Nucl Med 2008;49(9):1445-1450"


def test_the_table_loads_and_every_row_has_a_source_units_and_bounds():
    table = load_table()
    assert len(table) >= 8
    keys = set()
    for e in table:
        assert len(e.source) > 40 and ("doi" in e.source or "http" in e.source)
        assert e.units == "h" and e.statistic in ("mean", "median")
        assert e.n_patients is not None and e.n_patients > 0
        assert 0 < e.t_eff_h < half_life_h(e.nuclide)
        assert e.t_eff_sd_h is None or 0 <= e.t_eff_sd_h < e.t_eff_h
        assert e.note  # population, imaging, what the number is
        key = (e.organ, e.radiopharmaceutical)
        assert key not in keys  # one entry per organ and radiopharmaceutical
        keys.add(key)
    raw = json.loads(DEFAULT_TABLE.read_text(encoding="utf-8"))
    for entry in raw["entries"]:
        assert {"source", "units", "statistic", "t_eff_h", "n_patients"} <= set(entry)


@pytest.mark.parametrize(
    ("organ", "t_eff_h"),
    [
        ("kidneys", 35.5),
        ("liver", 22.9),
        ("spleen", 16.8),
        ("parotid-glands", 42.2),
        ("red-marrow", 32.0),
        ("lungs", 15.1),
    ],
)
def test_lu177_psma617_medians_of_the_aapm_2026_abstract(organ, t_eff_h):
    e = lookup(organ, "Lu177-PSMA617")
    assert e.t_eff_h == t_eff_h and e.statistic == "median" and e.t_eff_sd_h is None
    assert e.n_patients == 20 and AAPM in e.source and e.nuclide == "Lu-177"


def test_i131_whole_body_means_of_remy_2008():
    withdrawal = lookup("whole body", "i131-nai-thyroid-cancer-withdrawal")
    rhtsh = lookup("Whole-Body", "i131-nai-thyroid-cancer-rhtsh")
    assert (withdrawal.t_eff_h, withdrawal.n_patients) == (15.7, 218)
    assert (rhtsh.t_eff_h, rhtsh.n_patients) == (10.5, 36)
    assert REMY in withdrawal.source and "Remy H" in rhtsh.source
    assert withdrawal.statistic == rhtsh.statistic == "mean"


def test_unverified_values_are_named_and_not_shipped():
    raw = json.loads(DEFAULT_TABLE.read_text(encoding="utf-8"))
    assert "Spink" in raw["status"] and "NOT VERIFIED" in raw["status"]
    with pytest.raises(InvalidInputError, match="no population effective half-life"):
        lookup("kidneys", "lu177-dotatate")
    assert all(e.t_eff_h != 56.0 for e in load_table())


def _table(tmp_path, **entry):
    base = {
        "radiopharmaceutical": "lu177-dotatate",
        "organ": "kidneys",
        "nuclide": "Lu-177",
        "t_eff_h": 50.0,
        "source": "a test value",
    }
    p = tmp_path / "teff.json"
    p.write_text(json.dumps({"entries": [{**base, **entry}]}))
    return p


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        ({"t_eff_h": 170.0}, "exceeds the physical half-life of Lu-177"),
        ({"t_eff_h": 1e308}, "exceeds the physical half-life"),
        ({"t_eff_h": float("nan")}, "impossible half-life"),
        ({"t_eff_h": 0.0}, "impossible half-life"),
        ({"t_eff_sd_h": -1.0}, "impossible half-life or SD"),
        ({"units": "d"}, "units 'd'"),
        ({"statistic": "mode"}, "statistic 'mode'"),
        ({"nuclide": "Xx-999"}, "unknown nuclide"),
    ],
)
def test_impossible_entries_are_refused(tmp_path, entry, match):
    with pytest.raises(InvalidInputError, match=match):
        load_table(_table(tmp_path, **entry))
