"""Voxel S-value kernels: Lanconelli 2012, energy conservation, files, cache, CLI contract.

Reference: Lanconelli et al., Phys Med Biol 2012;57:517 (soft tissue), as kept in
``resources/dose/lanconelli_2012_reference.json`` with its provenance.

Lu-177 and the emission data.  With every ICRP-107 electron emission (beta
spectrum, internal-conversion and Auger lines) our central 4.8 mm value is
+7.8 % above Lanconelli's; with the beta spectrum alone it is -3.5 %.  Summing
Lanconelli's whole 11x11x11 table (at 1.04 g/cm^3, the density that makes their
Y-90 table conserve energy to 0.3 %) gives 0.142 MeV absorbed per decay against
0.152 MeV in the same cube for our full-emission kernel; the photon tails agree
within 1 %, so the 0.010 MeV difference is electron energy their source did not
emit, and it is exactly our central-voxel excess.  Their Lu-177 emission data
therefore carry less conversion-electron energy than ICRP-107 (which has
0.0147 MeV of IE + Auger per decay).  The like-for-like comparison is the
beta-only kernel; the full kernel is checked to bracket the reference.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dosimetry_core.cli.main import main
from dosimetry_core.dose.kernels import (
    VoxelKernel,
    cache_dir,
    read_kernel,
    voxel_kernel,
    write_kernel,
)
from dosimetry_core.dose.units import J_PER_MEV
from dosimetry_core.errors import InvalidInputError
from dosimetry_core.physics.nuclides import chain_energy_per_decay

ROOT = Path(__file__).resolve().parents[3]
REFERENCE = json.loads(
    (ROOT / "resources" / "dose" / "lanconelli_2012_reference.json").read_text(encoding="utf-8")
)["kernels"]


@pytest.fixture(scope="module", autouse=True)
def _session_kernel_cache(shared_kernel_cache):
    """Kernels of this module go to the session's shared cache (each computed once)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("MRTDOSE_KERNEL_CACHE", str(shared_kernel_cache))
    yield shared_kernel_cache
    mp.undo()


@pytest.fixture()
def kernel_cache(tmp_path, monkeypatch):
    """A private, empty cache for a test of the cache itself (it corrupts an entry)."""
    d = tmp_path / "kernel-cache"
    monkeypatch.setenv("MRTDOSE_KERNEL_CACHE", str(d))
    return d


def _ratios(k: VoxelKernel, ref: dict[str, float]) -> dict[str, float]:
    return {off: k.value_mgy_per_mbq_s(off) / v for off, v in ref.items()}


@pytest.mark.slow
@pytest.mark.parametrize("nuclide", ["Y-90", "I-131"])
def test_kernels_at_4_8_mm_agree_with_lanconelli_2012(nuclide):
    """Central voxel within 5 %, first neighbours (0,0,1) within 15 % (issue 5).

    Measured at the time of writing: Y-90 1.013 / 0.990, I-131 1.020 / 0.991;
    (0,1,1) Y-90 0.964, I-131 0.991.
    """
    k = voxel_kernel(nuclide, 4.8)
    r = _ratios(k, REFERENCE[nuclide]["4.8"])
    assert r["0,0,0"] == pytest.approx(1.0, abs=0.05)
    assert r["0,0,1"] == pytest.approx(1.0, abs=0.15)
    assert r["0,1,1"] == pytest.approx(1.0, abs=0.15)


@pytest.mark.slow
def test_lu177_kernel_against_lanconelli_with_the_same_emissions():
    """Beta spectrum + photons: 0.965 (centre), 0.959 (0,0,1); full ICRP-107: 1.078 (doc)."""
    ref = REFERENCE["Lu-177"]["4.8"]
    beta = voxel_kernel("Lu-177", 4.8, electron_emissions=("beta",))
    r = _ratios(beta, ref)
    assert r["0,0,0"] == pytest.approx(1.0, abs=0.05)
    assert r["0,0,1"] == pytest.approx(1.0, abs=0.15)
    # photon-dominated voxels do not depend on the electron emissions
    assert r["1,1,1"] == pytest.approx(1.0, abs=0.05)
    assert r["0,0,2"] == pytest.approx(1.0, abs=0.05)
    full = voxel_kernel("Lu-177", 4.8)
    centre = full.value_mgy_per_mbq_s("0,0,0")
    # the reference lies between the beta-only and the full-emission kernels
    assert beta.value_mgy_per_mbq_s("0,0,0") < ref["0,0,0"] < centre
    assert centre / ref["0,0,0"] == pytest.approx(1.0, abs=0.10)
    # the full kernel's extra central dose is the IE + Auger energy, mostly absorbed there
    extra_mev = (
        (centre - beta.value_mgy_per_mbq_s("0,0,0")) * 1e-9 * full.voxel_mass_g * 1e-3 / J_PER_MEV
    )
    lines_mev = full.emitted_mev["electron"] - beta.emitted_mev["electron"]
    assert 0.8 * lines_mev < extra_mev <= lines_mev


def test_electron_kernel_conserves_energy_and_is_symmetric():
    """sum(S) x voxel mass = emitted electron energy - radiated (bremsstrahlung, < 1 %)."""
    k = voxel_kernel("I-131", 4.8, components=("electron",), electron_histories=50_000)
    assert k.absorbed_energy_mev() == pytest.approx(k.emitted_energy_mev(), rel=0.01)
    assert k.absorbed_energy_mev() <= k.emitted_energy_mev()
    a = k.values_gy_per_bq_s
    np.testing.assert_allclose(a, a[::-1, :, :], rtol=1e-12)
    # exchanging axes: equal up to the numerical integration over the voxels
    np.testing.assert_allclose(a, np.transpose(a, (2, 1, 0)), rtol=1e-3, atol=1e-6 * a.max())
    assert k.emitted_energy_mev() == pytest.approx(
        chain_energy_per_decay("I-131").electron_mev, rel=1e-9
    )


def test_anisotropic_voxels_give_an_anisotropic_kernel():
    k = voxel_kernel("Y-90", (2.0, 2.0, 4.0), components=("electron",), electron_histories=50_000)
    assert k.spacing_mm == (2.0, 2.0, 4.0)
    nz, ny, nx = k.values_gy_per_bq_s.shape
    assert nz < ny == nx  # fewer voxels along the long axis for the same radius
    # the neighbour along z is farther away (4 mm) than along x (2 mm)
    assert k.value_mgy_per_mbq_s("0,0,1") < k.value_mgy_per_mbq_s("1,0,0")
    assert k.value_mgy_per_mbq_s("1,0,0") == pytest.approx(k.value_mgy_per_mbq_s("0,1,0"))
    assert k.absorbed_energy_mev() == pytest.approx(k.emitted_energy_mev(), rel=0.01)


def test_alpha_chain_deposits_alpha_energy_in_the_source_voxel():
    """Ac-225 with short-lived progeny: alpha + recoil energy of the chain, local (PHYSICS.md)."""
    k = voxel_kernel("Ac-225", 3.0, components=("alpha",))
    e = chain_energy_per_decay("Ac-225", include_progeny=True)
    expected = (e.alpha_mev + e.alpha_recoil_mev) * J_PER_MEV / (k.voxel_mass_g * 1e-3)
    assert k.values_gy_per_bq_s.shape == (1, 1, 1)
    assert k.values_gy_per_bq_s[0, 0, 0] == pytest.approx(expected, rel=1e-12)
    assert e.alpha_mev > 27.0  # four alphas per Ac-225 decay
    alone = voxel_kernel("Ac-225", 3.0, components=("alpha",), include_progeny=False)
    assert alone.values_gy_per_bq_s[0, 0, 0] < 0.3 * expected


def test_kernels_are_cached_and_a_corrupt_cache_entry_is_recomputed(kernel_cache):
    first = voxel_kernel("Y-90", 6.0, components=("electron",), electron_histories=20_000)
    files = sorted(Path(cache_dir()).glob("Y-90_*.npz"))
    assert files and cache_dir() == kernel_cache
    again = voxel_kernel("Y-90", 6.0, components=("electron",), electron_histories=20_000)
    np.testing.assert_array_equal(first.values_gy_per_bq_s, again.values_gy_per_bq_s)
    other_seed = voxel_kernel(
        "Y-90", 6.0, components=("electron",), electron_histories=20_000, seed=1
    )
    assert not np.array_equal(first.values_gy_per_bq_s, other_seed.values_gy_per_bq_s)
    path = next(p for p in files if p.stat().st_size > 0)
    path.write_bytes(b"not a kernel")
    third = voxel_kernel("Y-90", 6.0, components=("electron",), electron_histories=20_000)
    np.testing.assert_array_equal(first.values_gy_per_bq_s, third.values_gy_per_bq_s)


def test_kernel_files_round_trip_and_an_external_octant_table_is_completed(tmp_path):
    k = voxel_kernel("Lu-177", 4.8, components=("electron",), electron_histories=20_000)
    npz = tmp_path / "k.npz"
    write_kernel(k, npz)
    back = read_kernel(npz)
    np.testing.assert_array_equal(back.values_gy_per_bq_s, k.values_gy_per_bq_s)
    assert (back.nuclide, back.medium, back.spacing_mm) == (k.nuclide, k.medium, k.spacing_mm)
    txt = tmp_path / "k.txt"
    write_kernel(k, txt)
    np.testing.assert_allclose(
        read_kernel(txt).values_gy_per_bq_s, k.values_gy_per_bq_s, rtol=1e-6, atol=0
    )
    # an external table, one octant, as a user would type it from a publication
    ref = REFERENCE["Lu-177"]["4.8"]
    lines = [
        '# {"nuclide": "Lu-177", "medium": "soft-tissue", "voxel_mm": 4.8, '
        '"unit": "mGy/(MBq*s)", "density_g_cm3": 1.04, "source": "Lanconelli 2012"}',
        "# i j k value",
    ] + [f"{o.replace(',', ' ')} {v:.3e}" for o, v in ref.items()]
    ext = tmp_path / "lanconelli.txt"
    ext.write_text("\n".join(lines) + "\n", encoding="utf-8")
    imported = read_kernel(ext)
    assert imported.values_gy_per_bq_s.shape == (5, 5, 5)
    assert imported.source == "Lanconelli 2012"
    for off, v in ref.items():
        i, j, k_ = (int(x) for x in off.split(","))
        for o in (f"{i},{j},{k_}", f"{-i},{j},{-k_}", f"{k_},{i},{-j}", f"{j},{-k_},{i}"):
            assert imported.value_mgy_per_mbq_s(o) == pytest.approx(v, rel=1e-12)
    assert imported.value_mgy_per_mbq_s("0,2,0") == pytest.approx(ref["0,0,2"])
    assert imported.value_mgy_per_mbq_s("0,0,3") == 0.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no 'i j k value' lines"),
        (
            '# {"nuclide": "Lu-177", "medium": "soft-tissue", "voxel_mm": 4.8}\n0 0 x 1\n',
            "i j k value",
        ),
        ('# {"nuclide": "Lu-177", "voxel_mm": 4.8}\n0 0 0 1\n', "'medium'"),
        (
            '# {"nuclide": "Lu-177", "medium": "soft-tissue", "voxel_mm": 4.8}\n0 0 0 -1\n',
            "non-negative",
        ),
        (
            '# {"nuclide": "Lu-177", "medium": "soft-tissue", "voxel_mm": 4.8, "unit": "rad"}\n'
            "0 0 0 1\n",
            "unit",
        ),
        ("# {broken json\n0 0 0 1\n", "bad JSON header"),
    ],
)
def test_bad_kernel_files_are_refused_with_the_reason(tmp_path, text, message):
    p = tmp_path / "bad.txt"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidInputError, match=message):
        read_kernel(p)
    with pytest.raises(InvalidInputError, match="does not exist"):
        read_kernel(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(InvalidInputError, match="cannot be read"):
        read_kernel(tmp_path / "junk.npz")


def test_bad_kernel_requests_are_refused():
    with pytest.raises(InvalidInputError, match="voxel size"):
        voxel_kernel("Lu-177", (4.8, 0.0, 4.8))
    with pytest.raises(InvalidInputError, match="components"):
        voxel_kernel("Lu-177", 4.8, components=("neutron",))
    with pytest.raises(InvalidInputError):
        voxel_kernel("Xx-999", 4.8)
    with pytest.raises(InvalidInputError, match="electron emissions"):
        voxel_kernel("Lu-177", 4.8, electron_emissions=("delta",))


def test_kernel_command_prints_the_public_json_shape(capsys, tmp_path):
    """``mrtdose kernel --nuclide Y-90 --voxel-mm 6 --json`` (the contract of issue 5)."""
    out = tmp_path / "y90.npz"
    code = main(["kernel", "--nuclide", "Y-90", "--voxel-mm", "6", "--out", str(out), "--json"])
    printed, err = capsys.readouterr()
    assert code == 0, err
    d = json.loads(printed)
    assert {"nuclide", "voxel_mm", "medium", "unit", "values"} <= set(d)
    assert (d["nuclide"], d["voxel_mm"], d["medium"], d["unit"]) == (
        "Y-90",
        6.0,
        "soft-tissue",
        "mGy/(MBq*s)",
    )
    assert list(d["values"]) == ["0,0,0", "0,0,1", "0,1,1", "1,1,1", "0,0,2", "0,1,2", "0,0,3"]
    k = read_kernel(out)
    for off, v in d["values"].items():
        assert v == pytest.approx(k.value_mgy_per_mbq_s(off), rel=1e-12)
    # pure beta emitter, 6 mm voxels: values fall off with distance
    vals = list(d["values"].values())
    assert vals[0] > vals[1] > vals[2] > vals[3] > 0
    # three values: anisotropic voxels, and the text form
    # three values (x y z) and the text form; the same kernel comes from the cache
    code = main(["kernel", "--nuclide", "Y-90", "--voxel-mm", "6", "6", "6"])
    printed, err = capsys.readouterr()
    assert code == 0, err
    assert "voxel 6 x 6 x 6 mm" in printed and "soft-tissue" in printed
    assert f"(0,0,0) {d['values']['0,0,0']:.4e}" in printed
    code = main(["kernel", "--nuclide", "Y-90", "--voxel-mm", "-1", "--json"])
    assert code == 1 and "voxel size" in capsys.readouterr().err
