"""Monte Carlo of one case split across Dask workers: same result as one process, failures named."""

from __future__ import annotations

import os
import socket
import sys

import cloudpickle
import numpy as np
import pytest

from dosimetry_core.dose.mc_split import McPartTally, McTransport, prepare_split, split_batches
from dosimetry_core.dose.monte_carlo import run_monte_carlo
from dosimetry_core.errors import Cancelled, InvalidInputError
from dosimetry_core.pipeline import mc_distributed
from dosimetry_core.pipeline.mc_distributed import (
    DaskMonteCarlo,
    DistributedRunError,
    dask_client,
    parse_scheduler,
    run_monte_carlo_distributed,
    run_parts,
)

# the failing part functions below are shipped to the worker processes by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])

N = 12
SPACING_MM = (4.0, 4.0, 4.0)
OPTIONS = {"histories": 20_000, "batches": 10, "seed": 11}


def _phantom():
    decays = np.zeros((N, N, N))
    decays[4:8, 4:8, 4:8] = 1e9
    index = np.zeros((N, N, N), dtype=np.uint8)
    index[:, :, :2] = 1  # a bone slab: two materials shipped and used
    density = np.where(index == 1, 1.85, 1.0)
    return decays, index, density, {"kidney": decays > 0}


PHANTOM = _phantom()


def _args():
    return PHANTOM[0], PHANTOM[1], PHANTOM[2], ["soft-tissue", "bone"], SPACING_MM, "Lu-177"


@pytest.fixture(scope="module")
def client():
    """One local cluster of 2 worker processes for the module (start-up ~2 s)."""
    with dask_client("local:2") as c:
        yield c


@pytest.fixture(scope="module")
def one_run():
    return run_monte_carlo(*_args(), voi_masks=PHANTOM[3], **OPTIONS)


# ------------------------------------------------------------------ --scheduler
@pytest.mark.parametrize(
    ("text", "kind", "workers", "address"),
    [
        ("local", "local", 2, ""),
        (None, "local", 2, ""),
        ("local:3", "local", 3, ""),
        ("tcp://10.0.0.5:8786", "remote", 0, "tcp://10.0.0.5:8786"),
    ],
)
def test_parse_scheduler(text, kind, workers, address):
    spec = parse_scheduler(text)
    assert (spec.kind, spec.workers, spec.address) == (kind, workers, address)


@pytest.mark.parametrize(
    "text", ["local:0", "local:x", "local:-1", "tcp://host", "tcp://:80", "tcp://h:99999", "pbs"]
)
def test_parse_scheduler_refuses_nonsense_naming_the_option(text):
    with pytest.raises(InvalidInputError, match="--scheduler") as e:
        parse_scheduler(text)
    assert e.value.field == "scheduler"


# ----------------------------------------------------------- the distributed run
def test_two_workers_give_the_one_process_result(client, one_run):
    progress: list[tuple[float, str]] = []
    d = run_monte_carlo_distributed(
        *_args(),
        client=client,
        voi_masks=PHANTOM[3],
        progress=lambda f, m: progress.append((f, m)),
        **OPTIONS,
    )
    r = d.result
    assert r.histories == 20_000 and r.batches == 10
    assert np.allclose(r.dose_gy, one_run.dose_gy, rtol=1e-6, atol=0)
    assert np.allclose(r.rel_uncertainty, one_run.rel_uncertainty, rtol=1e-5, atol=1e-9)
    k, k1 = r.voi("kidney"), one_run.voi("kidney")
    assert k.photon_mean_gy == pytest.approx(k1.photon_mean_gy, rel=1e-12)
    assert k.photon_sd_gy == pytest.approx(k1.photon_sd_gy, rel=1e-9)
    assert 0 < k.photon_rel_uncertainty < 0.05
    # two parts, batches 0-4 and 5-9, each run on one of the cluster's workers
    assert [(p.first_batch, p.stop_batch) for p in d.parts] == [(0, 5), (5, 10)]
    assert len(d.workers) == 2
    assert all(p.worker in d.workers for p in d.parts)
    assert progress[0][0] == 0.0 and progress[-1][0] == 1.0
    assert "2 parts on 2 workers" in progress[0][1]
    fractions = [f for f, _ in progress]
    assert fractions == sorted(fractions)  # the bar never goes back


def test_more_parts_than_workers_and_the_drop_in_runner(client, one_run):
    runner = DaskMonteCarlo(client=client, parts=5)
    r = runner(*_args(), voi_masks=PHANTOM[3], target_uncertainty=None, **OPTIONS)
    assert np.allclose(r.dose_gy, one_run.dose_gy, rtol=1e-6, atol=0)
    assert runner.last is not None and len(runner.last.parts) == 5


def test_rounds_to_a_target_uncertainty_on_the_workers(client):
    """Stop on the kidney's photon uncertainty in rounds; the inputs shipped once; the
    result is the fixed-history one-process run of the batches it ran."""
    kidney = PHANTOM[3]["kidney"]
    kw = {"histories": 4_000, "batches": 4, "seed": 3, "target_mask": kidney}
    d = run_monte_carlo_distributed(*_args(), client=client, target_uncertainty=0.01, **kw)
    r = d.result
    assert r.stopped_because == "target uncertainty"
    assert r.target_uncertainty_reached is not None and r.target_uncertainty_reached <= 0.01
    assert r.batches > 4 and r.histories == 1_000 * r.batches
    # every batch ran exactly once, in parts of at most 2 per round
    ran = sorted((p.first_batch, p.stop_batch) for p in d.parts)
    assert ran[0][0] == 0 and ran[-1][1] == r.batches
    assert all(a[1] == b[0] for a, b in zip(ran, ran[1:], strict=False))
    fixed = run_monte_carlo(
        *_args(), histories=r.histories, batches=r.batches, seed=3, target_mask=kidney
    )
    assert np.allclose(r.dose_gy, fixed.dose_gy, rtol=1e-6, atol=0)
    assert r.target_photon_uncertainty == pytest.approx(fixed.target_photon_uncertainty, rel=1e-9)


def test_remote_scheduler_address(client, one_run):
    """``tcp://HOST:PORT`` of a running scheduler: the same numbers."""
    address = client.scheduler.address
    d = run_monte_carlo_distributed(*_args(), scheduler=address, **OPTIONS)
    assert d.scheduler == address
    assert np.allclose(d.result.dose_gy, one_run.dose_gy, rtol=1e-6, atol=0)


def test_a_worker_announces_each_batch_on_the_progress_queue(client):
    from distributed import Queue

    setup = prepare_split(*_args(), **OPTIONS)
    queue = Queue("test-mc-progress", client=client)
    tally = client.submit(
        mc_distributed._run_part_on_worker, setup.transport, 2, 6, 1, queue.name, pure=False
    ).result()
    assert (tally.first_batch, tally.stop_batch) == (2, 6)
    assert tally.worker in client.scheduler_info()["workers"]
    assert sorted(queue.get(batch=True)) == [2, 3, 4, 5]
    queue.close()


def _slow_part(
    transport: McTransport, first: int, stop: int, threads: int | None, queue: str | None
) -> McPartTally:
    import time

    from distributed import Queue

    from dosimetry_core.dose.mc_split import run_part

    q = Queue(queue)

    def on_batch(batch: int) -> None:
        q.put(batch)
        time.sleep(0.3)  # a long batch: the client sees progress before the part ends

    return run_part(transport, first, stop, on_batch=on_batch)


def test_the_progress_bar_moves_batch_by_batch(client):
    setup = prepare_split(*_args(), **{**OPTIONS, "batches": 4})
    assert setup.transport is not None
    seen: list[tuple[float, str]] = []
    parts = run_parts(
        client,
        setup.transport,
        split_batches(4, 1),
        part_function=_slow_part,
        progress=lambda f, m: seen.append((f, m)),
    )
    assert len(parts) == 1
    moving = [f for f, m in seen if "of 4 batches" in m]
    assert moving and all(0 < f < 1 for f in moving)  # before the only part was done
    assert seen[-1][0] == 1.0
    assert [f for f, _ in seen] == sorted(f for f, _ in seen)


def _failing_part(
    transport: McTransport, first: int, stop: int, threads: int | None, queue: str | None
) -> McPartTally:
    if first >= 5:
        raise MemoryError("simulated: no memory for the score arrays")
    from dosimetry_core.dose.mc_split import run_part

    return run_part(transport, first, stop)


def test_a_failing_part_is_named_and_nothing_is_merged(client):
    setup = prepare_split(*_args(), **OPTIONS)
    assert setup.transport is not None
    with pytest.raises(DistributedRunError) as e:
        run_parts(client, setup.transport, split_batches(10, 2), part_function=_failing_part)
    msg = str(e.value)
    assert "part 2 of 2 (batches 5-9)" in msg
    assert "MemoryError: simulated: no memory" in msg
    assert "nothing was merged" in msg


def _dying_part(
    transport: McTransport, first: int, stop: int, threads: int | None, queue: str | None
) -> McPartTally:
    os._exit(3)  # the worker process dies (OOM killer, kill -9)


@pytest.mark.slow
def test_a_worker_that_dies_is_reported_clearly():
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with dask_client("local:1") as c:
            setup = prepare_split(*_args(), **OPTIONS)
            assert setup.transport is not None
            with pytest.raises(DistributedRunError, match=r"part 1 of 1 \(batches 0-9\).*died"):
                run_parts(c, setup.transport, split_batches(10, 1), part_function=_dying_part)


def test_unreachable_scheduler_is_reported(monkeypatch):
    monkeypatch.setattr(mc_distributed, "CONNECT_TIMEOUT_S", 1.0)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(
        DistributedRunError, match=f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}"
    ):
        run_monte_carlo_distributed(*_args(), scheduler=f"tcp://127.0.0.1:{port}", **OPTIONS)


def test_bad_input_is_refused_before_any_cluster_starts(monkeypatch):
    def no_cluster(*a, **k):
        raise AssertionError("a cluster was started for a refused input")

    monkeypatch.setattr(mc_distributed, "dask_client", no_cluster)
    with pytest.raises(InvalidInputError, match="--scheduler"):
        run_monte_carlo_distributed(*_args(), scheduler="local:0", **OPTIONS)
    with pytest.raises(InvalidInputError, match="between 0 and 1"):
        run_monte_carlo_distributed(*_args(), target_uncertainty=2.0, **OPTIONS)
    bad = PHANTOM[2].copy()
    bad[5, 5, 5] = 0.0  # decays in a voxel without mass
    with pytest.raises(InvalidInputError, match="density > 0"):
        run_monte_carlo_distributed(
            PHANTOM[0], PHANTOM[1], bad, ["soft-tissue", "bone"], SPACING_MM, "Lu-177", **OPTIONS
        )


def test_cancel_stops_the_parts(client):
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 1  # after the parts were submitted

    with pytest.raises(Cancelled):
        run_monte_carlo_distributed(*_args(), client=client, cancel=cancel, **OPTIONS)
