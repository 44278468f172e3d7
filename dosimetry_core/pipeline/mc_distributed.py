"""Photon Monte Carlo of one large case split across Dask workers (issue 17).

The histories of one run are split into ``K`` parts of whole batches
(:func:`dosimetry_core.dose.mc_split.split_batches`); each part runs on a Dask
worker with the random streams of its batches, exactly those of the
one-process run; the transport inputs (source alias tables, materials,
densities, cross sections) are shipped once to every worker
(``Client.scatter(..., broadcast=True)``), each part returns its per-voxel
sums of the batch doses and of their squares, and the client merges them with
the batch method (:func:`dosimetry_core.dose.mc_split.merge_parts`; Walters,
Kawrakow & Rogers, Med Phys 29:2745, 2002).  The merged dose and uncertainty
equal those of :func:`dosimetry_core.dose.monte_carlo.run_monte_carlo` with the
same seed, histories and batches, to float rounding, whatever ``K``.

Schedulers (the ``--scheduler`` contract of ``mrtdose batch``):

* ``local`` / ``local:N``: a local cluster of ``N`` worker processes (default
  2), one task thread each; each part's numba kernels use ``cores // N``
  threads so that the workers do not oversubscribe the machine;
* ``tcp://HOST:PORT``: an existing Dask scheduler; its workers need this
  package importable, the same version (a part carries the identity of the
  transport code that ran it and the fingerprint of its inputs; a part of other
  code or other inputs is refused, not merged) and, to skip a numba compile on
  the first part, a warm ``NUMBA_CACHE_DIR``.

With a target uncertainty the run goes in rounds of batches, every round split
across the workers with the inputs shipped once, until the target VOI's
uncertainty is reached (:func:`dosimetry_core.dose.mc_split.run_rounds`); the
stop comes at the end of a round.

A part that fails is reported with its number, its batches and the cause; a
worker that dies is replaced by Dask and the part re-run (same streams, so the
same histories: a retry cannot bias the result); nothing is merged unless every
batch is there exactly once.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from numpy.typing import ArrayLike

from dosimetry_core.dose.mc_split import (
    McPartTally,
    McTransport,
    merge_parts,
    prepare_split,
    run_part,
    run_rounds,
)
from dosimetry_core.dose.monte_carlo import MonteCarloResult, run_monte_carlo
from dosimetry_core.errors import Cancelled, DosimetryError, InvalidInputError
from dosimetry_core.physics.materials import Material
from dosimetry_core.progress import CancelCheck, ProgressCallback, check_cancel, report

DEFAULT_LOCAL_WORKERS = 2
"""Workers of ``--scheduler local`` without a count."""
CONNECT_TIMEOUT_S = 10.0
"""How long to wait for a remote scheduler before giving up."""


class DistributedRunError(DosimetryError):
    """A part of a distributed run failed or the cluster could not be used."""


@dataclass(frozen=True)
class SchedulerSpec:
    """A parsed ``--scheduler`` value."""

    kind: str
    """``"local"`` or ``"remote"``."""
    workers: int = 0
    """Worker processes of a local cluster (0 for a remote scheduler)."""
    address: str = ""
    """``tcp://HOST:PORT`` of a remote scheduler."""

    def __str__(self) -> str:
        return f"local:{self.workers}" if self.kind == "local" else self.address


def parse_scheduler(spec: str | None) -> SchedulerSpec:
    """``local`` | ``local:N`` | ``tcp://HOST:PORT`` (also ``tls://``) -> :class:`SchedulerSpec`."""
    text = (spec or "local").strip()
    if text == "local":
        return SchedulerSpec("local", DEFAULT_LOCAL_WORKERS)
    if text.startswith("local:"):
        count = text.split(":", 1)[1]
        if not count.isdigit() or not 1 <= int(count) <= 512:
            raise InvalidInputError(
                f"--scheduler {text!r}: local:N needs a worker count N between 1 and 512",
                field="scheduler",
            )
        return SchedulerSpec("local", int(count))
    for scheme in ("tcp://", "tls://"):
        if text.startswith(scheme):
            host, _, port = text[len(scheme) :].rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise InvalidInputError(
                    f"--scheduler {text!r}: a remote scheduler is {scheme}HOST:PORT",
                    field="scheduler",
                )
            return SchedulerSpec("remote", 0, text)
    raise InvalidInputError(
        f"--scheduler {text!r}: use local, local:N or tcp://HOST:PORT", field="scheduler"
    )


@contextlib.contextmanager
def dask_client(scheduler: str | SchedulerSpec | None) -> Iterator[Any]:
    """A ``distributed.Client`` for ``scheduler``; a local cluster is closed on exit."""
    from distributed import Client, LocalCluster

    spec = scheduler if isinstance(scheduler, SchedulerSpec) else parse_scheduler(scheduler)
    if spec.kind == "local":
        try:
            cluster = LocalCluster(
                n_workers=spec.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",  # a free port: other clusters may run here
                silence_logs=40,  # logging.ERROR: no worker chatter on the console
            )
        except Exception as exc:  # no processes, no ports, no memory: say so
            raise DistributedRunError(
                f"cannot start a local Dask cluster of {spec.workers} workers: {exc}"
            ) from exc
        try:
            with Client(cluster) as client:
                yield client
        finally:
            cluster.close()
        return
    try:
        client = Client(spec.address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        raise DistributedRunError(
            f"cannot reach the Dask scheduler at {spec.address} "
            f"(within {CONNECT_TIMEOUT_S:g} s): {exc}"
        ) from exc
    try:
        yield client
    finally:
        client.close()


@dataclass(frozen=True)
class PartRecord:
    """Where and how long one part ran."""

    index: int
    first_batch: int
    stop_batch: int
    worker: str
    elapsed_s: float


@dataclass(frozen=True)
class DistributedMonteCarloResult:
    """The merged result and how it was run."""

    result: MonteCarloResult
    scheduler: str
    workers: tuple[str, ...]
    """Addresses of the workers the cluster had."""
    parts: tuple[PartRecord, ...]
    wall_s: float
    """Wall time from preparation to merge, s (cluster start-up not included)."""


def _run_part_on_worker(
    transport: McTransport,
    first_batch: int,
    stop_batch: int,
    threads: int | None,
    progress_queue: str | None = None,
) -> McPartTally:
    """What a worker runs: one part, tagged with the worker's address; each finished
    batch is announced on the Dask queue ``progress_queue`` (the client's progress bar)."""
    try:
        from distributed import get_worker

        where = str(get_worker().address)
    except ValueError:  # not on a worker (a synchronous test scheduler)
        where = ""
    on_batch = None
    if progress_queue:
        from distributed import Queue

        queue = Queue(progress_queue)

        def on_batch(batch: int) -> None:
            with contextlib.suppress(Exception):  # progress must never fail the part
                queue.put(batch)

    return run_part(
        transport, first_batch, stop_batch, threads=threads, worker=where, on_batch=on_batch
    )


PartFunction = Callable[[McTransport, int, int, "int | None", "str | None"], McPartTally]
"""``(transport, first_batch, stop_batch, threads, progress_queue) -> tally``."""


def _describe_failure(exc: BaseException) -> str:
    name = type(exc).__name__
    if name == "KilledWorker":
        return (
            "the workers running it died repeatedly (out of memory, or killed); "
            "see the workers' logs"
        )
    if isinstance(exc, DosimetryError):
        return str(exc)
    return f"{name}: {exc}"


def run_parts(
    client: Any,
    transport: McTransport,
    ranges: Sequence[range],
    *,
    threads: int | None = None,
    part_function: PartFunction = _run_part_on_worker,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    poll_s: float = 0.1,
    shared: Any = None,
) -> list[McPartTally]:
    """Run one part per batch range on ``client``'s workers; their tallies in range order.

    The transport inputs are scattered once to every worker (``shared``: the
    future of an earlier scatter, kept for the next round).  The first failure
    cancels the other parts and raises :class:`DistributedRunError` naming the
    part, its batches and the cause; ``cancel`` cancels them all and raises
    :class:`~dosimetry_core.errors.Cancelled`.
    """
    import uuid

    from distributed import Queue

    k = len(ranges)
    n_batches = sum(len(r) for r in ranges)
    queue = Queue(f"mc-progress-{uuid.uuid4().hex}", client=client)
    own = shared is None
    if own:
        shared = client.scatter(transport, broadcast=True, hash=False)
    futures = [
        client.submit(
            part_function, shared, r.start, r.stop, threads, queue.name, pure=False, retries=0
        )
        for r in ranges
    ]
    out: list[McPartTally | None] = [None] * k
    done = 0
    batches_done: set[int] = set()
    workers = _n_workers(client)
    report(progress, 0.0, f"photon Monte Carlo: {k} parts on {workers} workers")
    try:
        while done < k:
            try:
                check_cancel(cancel)
            except Cancelled:
                client.cancel(futures)
                raise
            for i, f in enumerate(futures):
                if out[i] is not None or not f.done():
                    continue
                r = ranges[i]
                if f.status != "finished":
                    exc = f.exception() if f.status == "error" else None
                    why = "cancelled by the cluster" if exc is None else _describe_failure(exc)
                    client.cancel(futures)
                    raise DistributedRunError(
                        f"Monte Carlo part {i + 1} of {k} (batches {r.start}-{r.stop - 1}) "
                        f"failed: {why}; nothing was merged"
                    ) from exc
                out[i] = f.result()
                done += 1
                batches_done |= set(r)  # a part that finished has run all its batches
                report(
                    progress,
                    len(batches_done) / n_batches,
                    f"photon Monte Carlo: part {i + 1} of {k} done ({done}/{k})",
                )
            with contextlib.suppress(Exception):  # a lost progress message loses no dose
                news = set(queue.get(batch=True)) - batches_done
                if news and done < k:
                    batches_done |= news
                    report(
                        progress,  # 1.0 only once the sums are back
                        min(len(batches_done) / n_batches, 0.99),
                        f"photon Monte Carlo: {len(batches_done)} of {n_batches} batches "
                        f"on {workers} workers",
                    )
            if done < k:
                time.sleep(poll_s)
    finally:
        if own:
            with contextlib.suppress(Exception):
                client.cancel([shared])
        with contextlib.suppress(Exception):
            queue.close()
    return [p for p in out if p is not None]


def _worker_addresses(client: Any) -> tuple[str, ...]:
    return tuple(sorted(client.scheduler_info(n_workers=-1)["workers"]))


def _n_workers(client: Any) -> int:
    return len(_worker_addresses(client))


def run_monte_carlo_distributed(
    decays_bq_s: ArrayLike,
    material_index: ArrayLike,
    density_g_cm3: ArrayLike,
    materials: Sequence[Material | str],
    spacing_mm: Sequence[float],
    nuclide: str,
    *,
    scheduler: str | None = "local",
    client: Any = None,
    parts: int | None = None,
    threads_per_part: int | None = None,
    target_uncertainty: float | None = None,
    max_histories: int = 10**9,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    **options: Any,
) -> DistributedMonteCarloResult:
    """Photon Monte Carlo of one case split across Dask workers (module docstring).

    Parameters
    ----------
    decays_bq_s, material_index, density_g_cm3, materials, spacing_mm, nuclide
        As :func:`dosimetry_core.dose.monte_carlo.run_monte_carlo`.
    scheduler
        ``local``, ``local:N`` or ``tcp://HOST:PORT``; ignored when ``client`` is given.
    client
        An open ``distributed.Client`` to use (kept open).
    parts
        Number of parts ``K`` (default: one per worker, at most ``batches``).
    threads_per_part
        numba threads of each part (default: cores // workers on a local
        cluster, the worker's own setting on a remote one).
    target_uncertainty, max_histories
        Stop on the target VOI's uncertainty, in rounds of batches
        (:func:`dosimetry_core.dose.mc_split.run_rounds`: the stop comes at the
        end of a round); None: ``histories`` in ``batches`` batches.
    options
        ``histories``, ``batches``, ``seed``, ``deposit_local``, ``target_mask``,
        ... as :func:`dosimetry_core.dose.mc_split.prepare_split`.
    """
    if target_uncertainty is not None and not 0 < target_uncertainty < 1:
        raise InvalidInputError(
            "target_uncertainty is a fraction between 0 and 1 (e.g. 0.02)",
            field="target_uncertainty",
        )
    if parts is not None and int(parts) < 1:
        raise InvalidInputError("the number of parts must be at least 1", field="parts")
    spec: SchedulerSpec | None = None
    if client is None:
        spec = parse_scheduler(scheduler)  # bad input is refused before any work
    t0 = time.perf_counter()
    args = (decays_bq_s, material_index, density_g_cm3, materials, spacing_mm, nuclide)
    setup = prepare_split(*args, **options)
    if setup.transport is None:  # no photon lines: nothing to transport or split
        res = run_monte_carlo(
            *args, target_uncertainty=target_uncertainty, max_histories=max_histories, **options
        )
        return DistributedMonteCarloResult(res, str(spec or "client"), (), (), res.elapsed_s)
    check_cancel(cancel)
    prepare_s = time.perf_counter() - t0

    def go(c: Any, label: str) -> DistributedMonteCarloResult:
        t1 = time.perf_counter()
        workers = _worker_addresses(c)
        if not workers:
            raise DistributedRunError(f"the Dask cluster at {label} has no workers")
        k = min(int(parts) if parts is not None else len(workers), setup.batches)
        threads = threads_per_part
        if threads is None and spec is not None and spec.kind == "local":
            threads = max(1, (os.cpu_count() or 1) // max(1, spec.workers))
        transport = setup.transport
        assert transport is not None
        records: list[PartRecord] = []
        shared = c.scatter(transport, broadcast=True, hash=False)  # once for every round

        def run_ranges(
            ranges: Sequence[range], round_progress: ProgressCallback | None
        ) -> list[McPartTally]:
            tallies = run_parts(
                c,
                transport,
                ranges,
                threads=threads,
                progress=round_progress,
                cancel=cancel,
                shared=shared,
            )
            records.extend(
                PartRecord(len(records) + i, p.first_batch, p.stop_batch, p.worker, p.elapsed_s)
                for i, p in enumerate(tallies)
            )
            return tallies

        try:
            final, tallies, stopped = run_rounds(
                setup,
                run_ranges,
                parts=k,
                target_uncertainty=target_uncertainty,
                max_histories=max_histories,
                progress=progress,
            )
        finally:
            with contextlib.suppress(Exception):
                c.cancel([shared])
        wall = prepare_s + time.perf_counter() - t1
        merged = merge_parts(final, tallies, elapsed_s=wall, stopped_because=stopped)
        report(progress, 1.0, "photon Monte Carlo: done")
        return DistributedMonteCarloResult(merged, label, workers, tuple(records), wall)

    if client is not None:
        return go(client, str(getattr(getattr(client, "scheduler", None), "address", "client")))
    assert spec is not None
    with dask_client(spec) as c:
        return go(c, str(spec))


class DaskMonteCarlo:
    """A drop-in for :func:`~dosimetry_core.dose.monte_carlo.run_monte_carlo` that splits
    the histories across Dask workers (for code that takes the engine as a function).

    ``last`` holds the :class:`DistributedMonteCarloResult` of the latest call.
    """

    def __init__(
        self, scheduler: str | None = "local", *, parts: int | None = None, client: Any = None
    ) -> None:
        self.spec = parse_scheduler(scheduler) if client is None else None
        self.parts = parts
        self.client = client
        self.last: DistributedMonteCarloResult | None = None

    def __call__(
        self,
        decays_bq_s: ArrayLike,
        material_index: ArrayLike,
        density_g_cm3: ArrayLike,
        materials: Sequence[Material | str],
        spacing_mm: Sequence[float],
        nuclide: str,
        **options: Any,
    ) -> MonteCarloResult:
        self.last = run_monte_carlo_distributed(
            decays_bq_s,
            material_index,
            density_g_cm3,
            materials,
            spacing_mm,
            nuclide,
            scheduler=None if self.spec is None else str(self.spec),
            client=self.client,
            parts=self.parts,
            **options,
        )
        return self.last.result
