"""Half-lives and progeny through the decay-data cache equal radioactivedecay's, and a warm
cache keeps the (slow to import) package out of a command."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import radioactivedecay as rd

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.physics import nuclides


@pytest.fixture()
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(nuclides.DECAY_CACHE_ENV, str(tmp_path))
    nuclides.decay_table.cache_clear()
    yield tmp_path
    nuclides.decay_table.cache_clear()


def test_every_nuclide_equals_the_package(fresh_cache):
    table = nuclides.decay_table()
    assert set(table) == set(rd.DEFAULTDATA.nuclides)
    for name in rd.DEFAULTDATA.nuclides:
        nuc = rd.Nuclide(name)
        hl = float(nuc.half_life("h"))
        got = table[name]["half_life_h"]
        assert (got is None and not np.isfinite(hl)) or got == hl, name
        expected = [
            [d, float(b)] for d, b in zip(nuc.progeny(), nuc.branching_fractions(), strict=True)
        ]
        assert table[name]["progeny"] == expected, name


def test_known_half_lives_and_a_chain(fresh_cache):
    # ICRP-107: Lu-177 6.647 d, I-131 8.0207 d, Y-90 64.10 h
    assert nuclides.half_life_h("Lu-177") == pytest.approx(6.647 * 24, rel=1e-6)
    assert nuclides.half_life_h("I131") == pytest.approx(8.0207 * 24, rel=1e-6)
    assert nuclides.half_life_h("Y-90") == pytest.approx(64.10, rel=1e-4)
    (fr,) = nuclides.progeny("Ac-225")
    assert fr.nuclide == "Fr-221" and fr.branching_fraction == 1.0
    assert nuclides.progeny("Lu-177") == []  # Hf-177 is stable


def test_the_cache_file_is_written_reused_and_rebuilt_when_damaged(fresh_cache):
    nuclides.decay_table()
    (path,) = fresh_cache.glob("radioactivedecay-*.json")
    assert rd.__version__ in path.name
    path.write_text("{not json", encoding="utf-8")
    nuclides.decay_table.cache_clear()
    assert nuclides.half_life_h("Lu-177") == pytest.approx(159.528)
    assert path.read_text(encoding="utf-8").startswith("{")
    assert "Lu-177" in path.read_text(encoding="utf-8")


def test_an_unknown_nuclide_is_named(fresh_cache):
    with pytest.raises(InvalidInputError, match="Xx-250"):
        nuclides.half_life_h("Xx-250")


def test_a_warm_cache_does_not_import_radioactivedecay(fresh_cache):
    nuclides.decay_table()  # warm
    code = (
        "import sys\n"
        "from dosimetry_core.physics.nuclides import half_life_h, progeny\n"
        "print(half_life_h('Lu-177'), len(progeny('Ac-225')))\n"
        "print('radioactivedecay' in sys.modules, 'matplotlib' in sys.modules)\n"
    )
    env = {**os.environ, nuclides.DECAY_CACHE_ENV: str(fresh_cache)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0].split()[1] == "1" and float(out[0].split()[0]) == pytest.approx(159.528)
    assert out[1] == "False False"
