"""Monte Carlo split into parts: the merge math (analytic cases) and K parts vs one run."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from dosimetry_core.dose import _mc_photon
from dosimetry_core.dose.mc_split import (
    batch_statistics,
    merge_parts,
    merge_sums,
    prepare_split,
    run_monte_carlo_split,
    run_part,
    split_batches,
)
from dosimetry_core.dose.monte_carlo import run_monte_carlo
from dosimetry_core.errors import Cancelled, InvalidInputError

N = 12
SPACING_MM = (4.0, 4.0, 4.0)


def _phantom() -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Water cube, 12^3 voxels of 4 mm, with a 4^3 hot 'kidney' and a cold 'liver' slab."""
    decays = np.zeros((N, N, N))
    decays[4:8, 4:8, 4:8] = 1e9
    decays[1:3, :, :] = 1e7
    index = np.zeros((N, N, N), dtype=np.uint8)
    density = np.ones((N, N, N))
    masks = {"kidney": decays >= 1e9, "liver": decays == 1e7}
    return decays, index, density, masks


PHANTOM = _phantom()
OPTIONS = {"histories": 20_000, "batches": 10, "seed": 7}


def _args() -> tuple:
    decays, index, density, _ = PHANTOM
    return decays, index, density, ["water"], SPACING_MM, "Lu-177"


@pytest.fixture(scope="module")
def one_run():
    return run_monte_carlo(*_args(), voi_masks=PHANTOM[3], **OPTIONS)


# ---------------------------------------------------------------- the merge math
def test_split_batches_contiguous_balanced_and_refusals():
    assert split_batches(10, 3) == (range(0, 4), range(4, 7), range(7, 10))
    assert split_batches(4, 4) == tuple(range(i, i + 1) for i in range(4))
    assert split_batches(5, 1) == (range(0, 5),)
    with pytest.raises(InvalidInputError, match="3 parts need at least 3 batches") as e:
        split_batches(2, 3)
    assert e.value.field == "parts"
    with pytest.raises(InvalidInputError):
        split_batches(10, 0)


def test_batch_statistics_analytic_sequence():
    """Batch estimates 1, 2, ..., B: mean (B+1)/2, SD of the mean sqrt((B+1)/12)."""
    b = 9
    values = np.arange(1.0, b + 1.0)[:, None] * np.array([1.0, 2.0])  # two voxels, x1 and x2
    mean, sd = batch_statistics(values.sum(axis=0), (values**2).sum(axis=0), b)
    assert mean == pytest.approx([(b + 1) / 2, b + 1], rel=1e-15)
    assert sd == pytest.approx([math.sqrt((b + 1) / 12), 2 * math.sqrt((b + 1) / 12)], rel=1e-12)
    # the same figure as the textbook sample SD over sqrt(B)
    assert sd[0] == pytest.approx(np.std(values[:, 0], ddof=1) / math.sqrt(b), rel=1e-12)
    with pytest.raises(InvalidInputError, match="2 batches"):
        batch_statistics(values[0], values[0] ** 2, 1)


def test_merged_parts_give_the_statistics_of_all_batches_and_the_known_variance():
    """Synthetic batch tallies N(mu, sigma^2), 20 batches in 3 uneven parts.

    The merge equals the statistics of all 20 batches at once (to rounding) and the
    engine's own finalize kernel bit for bit; averaged over 20 000 voxels the
    estimated variance of the mean is sigma^2 / B (its expectation, exactly).
    """
    rng = np.random.default_rng(0)
    b, mu, sigma, voxels = 20, 5.0, 2.0, 20_000
    d = rng.normal(mu, sigma, size=(b, voxels))
    ranges = split_batches(b, 3)
    s, q, n = merge_sums(
        [d[r].sum(axis=0) for r in ranges],
        [(d[r] ** 2).sum(axis=0) for r in ranges],
        [len(r) for r in ranges],
    )
    assert n == b
    mean, sd = batch_statistics(s, q, n)
    assert np.allclose(mean, d.mean(axis=0), rtol=1e-13)
    assert np.allclose(sd, d.std(axis=0, ddof=1) / math.sqrt(b), rtol=1e-9)
    assert np.mean(sd**2) == pytest.approx(sigma**2 / b, rel=0.03)
    assert np.mean(mean) == pytest.approx(mu, abs=4 * sigma / math.sqrt(b * voxels))
    dose = np.empty(voxels, np.float32)
    photon = np.empty(voxels, np.float32)
    sd_k = np.empty(voxels)
    rel = np.empty(voxels, np.float32)
    rel_ph = np.empty(voxels, np.float32)
    _mc_photon.finalize_batches(s, q, n, s, False, dose, photon, sd_k, rel, rel_ph)
    assert np.array_equal(sd_k, sd)
    assert np.array_equal(photon, mean.astype(np.float32))


def test_merge_sums_refuses_mismatched_parts():
    with pytest.raises(InvalidInputError, match="same voxels"):
        merge_sums([np.zeros(3), np.zeros(4)], [np.zeros(3), np.zeros(4)], [1, 1])
    with pytest.raises(InvalidInputError, match="one count per part"):
        merge_sums([np.zeros(3)], [np.zeros(3)], [1, 2])
    with pytest.raises(InvalidInputError, match="at least one batch"):
        merge_sums([np.zeros(3)], [np.zeros(3)], [0])


# ------------------------------------------------------- K parts vs one process
@pytest.mark.parametrize("parts", [1, 2, 3, 10])
def test_k_parts_equal_the_one_process_run(one_run, parts):
    split = run_monte_carlo_split(*_args(), parts=parts, voi_masks=PHANTOM[3], **OPTIONS)
    assert split.histories == one_run.histories == 20_000
    assert split.batches == one_run.batches == 10
    # the same histories (same streams): equal to float rounding
    assert np.allclose(split.dose_gy, one_run.dose_gy, rtol=1e-6, atol=0)
    assert np.allclose(split.photon_dose_gy, one_run.photon_dose_gy, rtol=1e-6, atol=0)
    assert np.allclose(split.rel_uncertainty, one_run.rel_uncertainty, rtol=1e-5, atol=1e-9)
    assert split.local_dose_gy is not None and one_run.local_dose_gy is not None
    assert np.array_equal(split.local_dose_gy, one_run.local_dose_gy)
    for name in ("kidney", "liver"):
        a, b = split.voi(name), one_run.voi(name)
        assert a.photon_mean_gy == pytest.approx(b.photon_mean_gy, rel=1e-12)
        assert a.photon_sd_gy == pytest.approx(b.photon_sd_gy, rel=1e-9)
        assert a.electron_mean_gy == b.electron_mean_gy
    assert split.emitted_photon_energy_mev == pytest.approx(
        one_run.emitted_photon_energy_mev, rel=1e-12
    )
    assert split.escaped_photon_energy_mev == pytest.approx(
        one_run.escaped_photon_energy_mev, rel=1e-12
    )
    assert split.stopped_because == "histories"
    # a real photon dose with a real uncertainty, not two empty maps agreeing
    k = split.voi("kidney")
    assert k.photon_mean_gy > 0 and 0 < k.photon_rel_uncertainty < 0.05


def test_split_with_electron_dose_and_target_mask_and_analog_estimator():
    decays, index, density, masks = PHANTOM
    electron = np.where(decays > 0, 0.5, 0.0)
    kw = {
        **OPTIONS,
        "deposit_local": False,
        "electron_dose_gy": electron,
        "estimator": "analog",
        "target_mask": masks["kidney"],
        "target_component": "total",
    }
    one = run_monte_carlo(*_args(), **kw)
    split = run_monte_carlo_split(*_args(), parts=4, **kw)
    assert np.allclose(split.dose_gy, one.dose_gy, rtol=1e-6, atol=0)
    reached = one.target_uncertainty_reached
    assert split.target_uncertainty_reached == pytest.approx(reached, rel=1e-9)
    assert split.target_mean_voxel_uncertainty == pytest.approx(
        one.target_mean_voxel_uncertainty, rel=1e-9
    )
    assert split.target_component == "total"
    assert float(split.dose_gy[5, 5, 5]) > 0.5  # electrons + photons


def test_reported_sd_matches_the_scatter_between_independent_seeds():
    """The merged SD of the kidney's photon mean is the SD of independent runs.

    Eight seeds (deterministic, so the test is reproducible): the ratio of the
    observed scatter to the mean reported SD lies well inside 0.5-1.6 (the
    relative SD of an 8-sample SD is ~27 %).
    """
    means, sds = [], []
    for seed in range(8):
        r = run_monte_carlo_split(
            *_args(), parts=2, voi_masks=PHANTOM[3], histories=6_000, batches=6, seed=100 + seed
        )
        means.append(r.voi("kidney").photon_mean_gy)
        sds.append(r.voi("kidney").photon_sd_gy)
    ratio = np.std(means, ddof=1) / np.mean(sds)
    assert 0.5 < ratio < 1.6


# --------------------------------------------------------------- attacks on the merge
@pytest.fixture(scope="module")
def setup_and_parts():
    setup = prepare_split(*_args(), voi_masks=PHANTOM[3], **OPTIONS)
    assert setup.transport is not None
    parts = [run_part(setup.transport, r.start, r.stop) for r in split_batches(10, 2)]
    return setup, parts


def test_merge_refuses_a_missing_part(setup_and_parts):
    setup, parts = setup_and_parts
    with pytest.raises(InvalidInputError, match=r"batches 5-9 are missing"):
        merge_parts(setup, parts[:1])
    with pytest.raises(InvalidInputError, match=r"batches 0-4 are missing"):
        merge_parts(setup, parts[1:])
    with pytest.raises(InvalidInputError, match="no Monte Carlo part"):
        merge_parts(setup, [])


def test_merge_refuses_a_part_counted_twice(setup_and_parts):
    """A repeated part would halve the apparent variance: refused, not merged."""
    setup, parts = setup_and_parts
    with pytest.raises(InvalidInputError, match="overlap at batch 5"):
        merge_parts(setup, [parts[0], parts[1], parts[1]])


def test_merge_refuses_a_part_of_another_problem(setup_and_parts):
    setup, parts = setup_and_parts
    other_seed = prepare_split(*_args(), voi_masks=PHANTOM[3], **{**OPTIONS, "seed": 8})
    assert other_seed.transport is not None
    foreign = run_part(other_seed.transport, 5, 10)
    with pytest.raises(InvalidInputError, match="belongs to another problem"):
        merge_parts(setup, [parts[0], foreign])
    # same fingerprint claimed, wrong size (a truncated transfer)
    short = dataclasses.replace(parts[1], sum_d=parts[1].sum_d[:-1])
    with pytest.raises(InvalidInputError, match="voxels"):
        merge_parts(setup, [parts[0], short])
    # a part computed by other transport code (an old package on a remote worker)
    old = dataclasses.replace(parts[1], engine="0123456789abcdef", worker="tcp://10.0.0.9:4000")
    with pytest.raises(InvalidInputError, match="another version of the transport code") as e:
        merge_parts(setup, [parts[0], old])
    assert "tcp://10.0.0.9:4000" in str(e.value)
    # a faulty worker's NaN would spread through every merged voxel
    broken_sums = parts[1].sum_d.copy()
    broken_sums[17] = np.nan
    broken = dataclasses.replace(parts[1], sum_d=broken_sums)
    with pytest.raises(InvalidInputError, match="non-finite doses"):
        merge_parts(setup, [parts[0], broken])
    # the merge of the honest parts still works and is the whole run
    assert merge_parts(setup, parts).histories == 20_000


def test_split_refuses_too_many_parts_and_bad_input():
    with pytest.raises(InvalidInputError, match="11 parts need at least 11 batches"):
        run_monte_carlo_split(*_args(), parts=11, **OPTIONS)
    with pytest.raises(InvalidInputError, match="between 0 and 1") as e:
        run_monte_carlo_split(*_args(), parts=2, target_uncertainty=1.5, **OPTIONS)
    assert e.value.field == "target_uncertainty"
    with pytest.raises(InvalidInputError, match="finite"):
        bad = PHANTOM[0].copy()
        bad[0, 0, 0] = np.nan
        prepare_split(bad, PHANTOM[1], PHANTOM[2], ["water"], SPACING_MM, "Lu-177")


def test_rounds_to_a_target_uncertainty():
    """Stop on the kidney's photon uncertainty: reached, and the result is exactly the
    fixed-history run of the batches it ran (same streams); near the one-process stop."""
    kidney = PHANTOM[3]["kidney"]
    kw = {"histories": 4_000, "batches": 4, "seed": 3, "target_mask": kidney}
    seen: list[float] = []
    split = run_monte_carlo_split(
        *_args(), parts=2, target_uncertainty=0.01, progress=lambda f, m: seen.append(f), **kw
    )
    assert split.stopped_because == "target uncertainty"
    assert split.target_uncertainty_reached is not None
    assert split.target_uncertainty_reached <= 0.01
    assert split.batches > 4 and split.histories == split.batches * 1_000
    fixed = run_monte_carlo(
        *_args(), histories=split.histories, batches=split.batches, seed=3, target_mask=kidney
    )
    assert np.allclose(split.dose_gy, fixed.dose_gy, rtol=1e-6, atol=0)
    assert split.target_photon_uncertainty == pytest.approx(
        fixed.target_photon_uncertainty, rel=1e-9
    )
    one = run_monte_carlo(*_args(), target_uncertainty=0.01, **kw)
    assert one.batches <= split.batches <= 2 * one.batches + 2  # at most one round more
    assert seen == sorted(seen) and seen[-1] == 1.0


def test_rounds_stop_at_max_histories():
    split = run_monte_carlo_split(
        *_args(), parts=2, target_uncertainty=1e-6, max_histories=12_000,
        histories=4_000, batches=4, seed=3,
    )  # fmt: skip
    assert split.stopped_because == "max histories"
    assert 4_000 < split.histories <= 12_000
    assert split.target_uncertainty_reached is not None and split.target_uncertainty_reached > 1e-6


def test_a_nuclide_without_photons_gives_the_local_dose_only():
    """P-32 (pure beta): nothing to transport or split; the local part, no uncertainty."""
    decays, index, density, _ = PHANTOM
    one = run_monte_carlo(decays, index, density, ["water"], SPACING_MM, "P-32", **OPTIONS)
    split = run_monte_carlo_split(
        decays, index, density, ["water"], SPACING_MM, "P-32", parts=2, **OPTIONS
    )
    assert split.stopped_because == "no photons" and split.histories == 0
    assert np.array_equal(split.dose_gy, one.dose_gy)
    assert float(split.dose_gy[5, 5, 5]) > 0 and not np.any(split.photon_dose_gy)


def test_run_part_cancel_and_bad_range(setup_and_parts):
    setup, _ = setup_and_parts
    assert setup.transport is not None
    with pytest.raises(Cancelled):
        run_part(setup.transport, 0, 2, cancel=lambda: True)
    with pytest.raises(InvalidInputError, match="first < stop"):
        run_part(setup.transport, 3, 3)
