"""Cohort batch: the headless protocol run of many cases on Dask distributed (issue 17).

``mrtdose batch COHORT_DIR_OR_CASE_LIST --protocol P [--scheduler local[:N] | tcp://HOST:PORT]``
runs :func:`~dosimetry_core.pipeline.protocol_run.run_protocol` -- exactly what
``mrtdose run CASE --protocol P`` runs -- for every case of a cohort, one Dask task
per case.

What the cohort is
------------------
``COHORT_DIR_OR_CASE_LIST`` is either

* a **folder of patient study folders**: every immediate sub-folder (or the folder
  itself when it has none) is imported with ``mrtdose import``'s rules
  (:func:`~dosimetry_core.pipeline.importing.import_directory`: one case per
  patient and administration, i.e. per cycle; a file or series that cannot be used
  is reported with its reason and never stops the others); the cases the import
  created, extended or already held make the cohort.  The import runs in the
  client process, folder after folder (one writer); the protocol runs go to the
  workers;
* or a **text file of case ids** already in the store: one id per line, ``#``
  starts a comment, blank lines are ignored.

Engine
------
Each case is one task of a ``distributed.Client``: ``local[:N]`` starts a
``LocalCluster`` of N worker **processes** with one thread each (``local`` alone: 2,
:data:`dosimetry_core.pipeline.mc_distributed.DEFAULT_LOCAL_WORKERS`; the cluster
helper and the ``--scheduler`` grammar are shared with the Monte Carlo split);
``tcp://HOST:PORT`` uses an existing scheduler.  Each case's native thread pools
(numba, SimpleITK) get the machine's cores divided by the task threads on it
(:func:`_thread_budget`), and patients are submitted longest first
(:func:`_ordered_chains`).  A worker opens the
store itself from its :class:`StoreLocation` (folder and, for PostgreSQL, the
database URL); a store object is never pickled.  Cases of one patient run one after
the other in administration order (a later cycle's cumulative limits read the
earlier cycle's saved run, as ``mrtdose run`` does); different patients run in
parallel.

SQLite rule: the store folder must be reachable by every worker at the same path,
on a filesystem with working POSIX locks and shared memory for the WAL index (a
local disk; not NFS/SMB).  Writes are serialised by SQLite (one writer at a time,
``BEGIN IMMEDIATE``; the others wait up to the store's busy timeout, 30 s, while a
save takes milliseconds).  Workers on other machines need a PostgreSQL store
(``CaseStore(path, url=...)``; on the command line ``$MRTDOSE_DATABASE_URL``) and the
blob folder shared.  The database password never travels with the tasks
(:class:`StoreLocation`).

Isolation, resume, summary
--------------------------
* A case that fails (corrupt series, unfittable data, a refused save) is reported
  with its one-line reason; the other cases finish.  A worker that dies is reported
  the same way for the case it was running.
* Each case saves its run on its own when it finishes (``run_protocol`` saves
  atomically), so killing the batch loses nothing already saved.  A case whose
  current protocol run is for this protocol and whose inputs (administrations,
  time points with their registrations, VOIs) were not changed since that run
  (:func:`resume_state`) is **skipped** unless ``force``; a later cycle of a
  patient whose earlier cycle was (re)computed by this batch is recomputed too.
* :func:`write_summary` writes ``summary.csv`` and ``summary.json`` (one row per
  case and organ: patient, cycle, dose, Gy/GBq, BED, SD, review flags, units in the
  column names) and ``gy_per_gbq.png`` (Gy/GBq per organ, per cycle).

The ``cycle`` of a case is its administration's cycle number when one was entered
(other than the default 1), else the rank of its first administration among the
patient's cases in the store (1 = earliest).
"""

from __future__ import annotations

import csv
import json
import math
import os
import queue
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dosimetry_core.errors import DosimetryError, InvalidInputError
from dosimetry_core.store.permissions import Actor

if TYPE_CHECKING:
    from dosimetry_core.pipeline.importing import ImportReport
    from dosimetry_core.store.repository import CaseRepository

__all__ = [
    "SUMMARY_COLUMNS",
    "BatchEvent",
    "BatchOptions",
    "BatchResult",
    "CaseOutcome",
    "OrganRow",
    "StoreLocation",
    "import_cohort",
    "parse_scheduler",
    "read_case_list",
    "resume_state",
    "run_batch",
    "run_case",
    "write_summary",
]

EVENT_TOPIC = "mrtdose-batch"
"""Dask event topic on which a worker announces the case it starts."""

SUMMARY_FORMAT = "mrt-batch-summary/1"

SUMMARY_COLUMNS = (
    "case_id",
    "patient_id",
    "cycle",
    "status",
    "organ_id",
    "organ",
    "dose_Gy",
    "dose_per_activity_Gy_per_GBq",
    "BED_Gy",
    "dose_SD_Gy",
    "mass_g",
    "administered_activity_MBq",
    "review_flags",
    "protocol",
    "run_id",
)
"""Columns of ``summary.csv`` and keys of the rows of ``summary.json`` (units in the names)."""

INPUT_ACTIONS = frozenset(
    {
        "import",
        "enter-administration",
        "register",
        "registration-review",
        "contour",
        "approve-contour",
        "correct-scan-time",
        "remove-time-point",
    }
)
"""Audited case saves that change what a protocol run reads (its inputs are stale after them)."""

OTHER_ACTIONS = frozenset(
    {"set-protocol", "enter-measurement", "fit", "tia-map", "dose", "report", "export"}
)
"""Audited case saves that leave a protocol run's inputs alone (any other action: a change)."""


# ----------------------------------------------------------------- records
@dataclass(frozen=True)
class StoreLocation:
    """Where a worker finds the store: the folder and, for PostgreSQL, the database URL.

    Only these strings travel to the workers; each opens its own
    :class:`~dosimetry_core.store.CaseStore`.  The URL travels **without its
    password**: task arguments are visible to anybody who can reach the Dask
    scheduler (its dashboard, its logs, any client).  A worker finds the password
    in its own ``$MRTDOSE_DATABASE_URL`` naming the same server, database and user
    (workers of a local cluster inherit the caller's environment), else libpq
    looks in ``$PGPASSWORD`` and ``~/.pgpass`` as for any PostgreSQL client.
    """

    path: str
    url: str | None = None

    @classmethod
    def of(cls, store: CaseRepository) -> StoreLocation:
        """The location of an open :class:`~dosimetry_core.store.CaseStore` (no password)."""
        url = getattr(store, "url", None)
        driver = str(getattr(url, "drivername", "sqlite"))
        text = None
        if url is not None and not driver.startswith("sqlite"):
            from sqlalchemy.engine import URL

            bare = URL.create(
                url.drivername, url.username, None, url.host, url.port, url.database, url.query
            )
            text = bare.render_as_string(hide_password=False)
        return cls(str(Path(store.path).resolve()), text)

    def resolved_url(self) -> str | None:
        """The URL a worker connects with: the password from its own environment."""
        if self.url is None:
            return None
        from sqlalchemy.engine import make_url

        from dosimetry_core.store.case_store import database_url_from_env

        url = make_url(self.url)
        mine = database_url_from_env()
        if url.password is None and mine is not None:
            try:
                env = make_url(mine)
            except Exception:  # a malformed variable: libpq's own sources still apply
                return self.url
            same = ("drivername", "host", "port", "database", "username")
            if all(getattr(env, k) == getattr(url, k) for k in same):
                return mine
        return self.url

    def open(self) -> Any:
        from dosimetry_core.store import CaseStore

        return CaseStore(self.path, url=self.resolved_url())


@dataclass(frozen=True)
class BatchOptions:
    """The ``mrtdose run`` options applied to every case (see ``run_protocol``)."""

    protocol_id: str
    force: bool = False
    method: str = "auto"
    dose_method: str | None = None
    recovery_fwhm_mm: float | None = None
    risk_factors: bool = False
    user: str = ""
    case_threads: int | None = None
    """Threads of one case's native thread pools: the numba kernels and SimpleITK's
    filters and registration (None: the libraries' defaults, every core).
    :func:`run_batch` on a local cluster sets ``cores // workers``, so one worker keeps
    every core and N workers do not oversubscribe them (Dask's own nanny does the same
    for OpenMP/BLAS: ``OMP_NUM_THREADS=1`` in its workers).  Measured on 2 cores: a
    demo-like case on 2 threads used ~1.2x the CPU time of the same case on 1 thread,
    time two workers would take from each other."""


@dataclass(frozen=True)
class OrganRow:
    """One organ of one case's current protocol run (Gy, Gy/GBq per net administered activity)."""

    case_id: str
    patient_id: str
    cycle: int | None
    organ_id: str
    organ: str
    dose_gy: float | None
    dose_per_activity_gy_per_gbq: float | None
    bed_gy: float | None
    dose_sd_gy: float | None
    mass_g: float | None
    administered_activity_mbq: float | None
    review_flags: tuple[str, ...]
    protocol: str
    run_id: str

    def to_row(self, status: str) -> dict[str, Any]:
        """The summary row (:data:`SUMMARY_COLUMNS`); ``review_flags`` joined by ``; ``."""
        return {
            "case_id": self.case_id,
            "patient_id": self.patient_id,
            "cycle": self.cycle,
            "status": status,
            "organ_id": self.organ_id,
            "organ": self.organ,
            "dose_Gy": _num(self.dose_gy),
            "dose_per_activity_Gy_per_GBq": _num(self.dose_per_activity_gy_per_gbq),
            "BED_Gy": _num(self.bed_gy),
            "dose_SD_Gy": _num(self.dose_sd_gy),
            "mass_g": _num(self.mass_g),
            "administered_activity_MBq": _num(self.administered_activity_mbq),
            "review_flags": "; ".join(sorted(set(self.review_flags))),
            "protocol": self.protocol,
            "run_id": self.run_id,
        }


@dataclass(frozen=True)
class CaseOutcome:
    """What happened to one case.

    ``status``: ``"done"`` (run and saved by this batch), ``"skipped"`` (its saved
    run is current; ``reason`` says since when) or ``"failed"`` (``reason``: one line).
    ``organs``: the case's current protocol run (done or skipped).
    """

    case_id: str
    status: str
    reason: str = ""
    patient_id: str = ""
    cycle: int | None = None
    elapsed_s: float = 0.0
    organs: tuple[OrganRow, ...] = ()
    run_id: str | None = None
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "status": self.status,
            "reason": self.reason,
            "patient_id": self.patient_id,
            "cycle": self.cycle,
            "elapsed_s": round(self.elapsed_s, 3),
            "run_id": self.run_id,
            "organs": {o.organ_id: o.to_row(self.status) for o in self.organs},
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class BatchEvent:
    """One line of ``mrtdose batch --json``.

    ``event``: ``import`` (a study folder imported: ``detail`` has its cases),
    ``import-skipped`` (a file or series of the import refused, ``reason``),
    ``started``, ``finished``, ``skipped``, ``failed`` (a case; ``reason`` one line)
    or ``summary`` (the last line: ``detail`` has the counts and files).
    """

    event: str
    case_id: str | None = None
    reason: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    done: int = 0
    failed: int = 0
    skipped: int = 0
    running: int = 0
    total: int = 0
    eta_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"event": self.event}
        if self.case_id is not None:
            d["case_id"] = self.case_id
        if self.reason is not None:
            d["reason"] = self.reason
        d.update(
            {
                "done": self.done,
                "failed": self.failed,
                "skipped": self.skipped,
                "running": self.running,
                "total": self.total,
                "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
            }
        )
        d.update(self.detail)
        return d


@dataclass
class BatchResult:
    """Every case's outcome, in the order the cases were given."""

    protocol_id: str
    scheduler: str
    outcomes: list[CaseOutcome] = field(default_factory=list)
    wall_s: float = 0.0
    n_workers: int = 0

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def any_failed(self) -> bool:
        return self.count("failed") > 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol_id,
            "scheduler": self.scheduler,
            "workers": self.n_workers,
            "total": len(self.outcomes),
            "done": self.count("done"),
            "skipped": self.count("skipped"),
            "failed": self.count("failed"),
            "wall_s": round(self.wall_s, 3),
            "cases": [o.to_dict() for o in self.outcomes],
        }


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)


def one_line(exc: BaseException) -> str:
    """An exception as one line for the batch report (type only when it is not ours)."""
    text = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
    if isinstance(exc, DosimetryError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# ------------------------------------------------------------ the cohort
def read_case_list(path: str | Path) -> list[str]:
    """Case ids of a case-list file: one per line, ``#`` starts a comment (module docstring).

    Raises
    ------
    InvalidInputError
        If the file cannot be read, is not text, or lists no case (field ``cohort``).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(
            f"case list {p}: cannot be read as a text file ({exc})", field="cohort"
        ) from exc
    ids: list[str] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if any(c.isspace() for c in line) or not line.isprintable():
            raise InvalidInputError(
                f"case list {p}, line {n}: {line!r} is not one case id", field="cohort"
            )
        if line not in ids:
            ids.append(line)
    if not ids:
        raise InvalidInputError(f"case list {p} lists no case id", field="cohort")
    return ids


def _study_folders(root: Path) -> list[Path]:
    subs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    return subs or [root]


def _cases_already_holding(store: CaseRepository, folder: Path) -> list[str]:
    """Cases of the store holding a functional series found in ``folder`` (headers only)."""
    from dosimetry_core.io.dicom_scan import scan_directory

    scan = scan_directory(folder)
    uids: dict[str, set[str]] = {}
    for s in scan.series:
        if s.modality in ("NM", "PT") and s.patient_id:
            uids.setdefault(s.patient_id, set()).add(s.series_instance_uid)
    out: list[str] = []
    for patient_id, wanted in uids.items():
        for summary in store.find_cases(patient_id=patient_id):
            case = store.load_case(summary.case_id)
            held = {tp.functional.series_instance_uid for tp in case.time_points}
            if held & wanted:
                out.append(case.case_id)
    return out


def import_cohort(
    store: CaseRepository,
    root: str | Path,
    *,
    calibration_cps_per_mbq: float | None = None,
    on_event: Callable[[BatchEvent], None] | None = None,
) -> tuple[list[str], list[ImportReport]]:
    """Import every study folder of ``root`` (module docstring); the cohort's case ids.

    Returns the case ids (in folder order, each once) and the import report of every
    folder.  A folder that cannot be imported at all (every file refused) is reported
    by ``import-skipped`` events and adds no case.
    """
    from dosimetry_core.pipeline.importing import import_directory

    root = Path(root)
    if not root.is_dir():
        raise InvalidInputError(f"cohort folder {root}: not a folder", field="cohort")
    ids: list[str] = []
    reports = []
    for folder in _study_folders(root):
        rep = import_directory(store, folder, calibration_cps_per_mbq=calibration_cps_per_mbq)
        reports.append(rep)
        found = [c.case_id for c in rep.cases]
        if rep.n_already_present:
            found += _cases_already_holding(store, folder)
        new = [c for c in dict.fromkeys(found) if c not in ids]
        ids += new
        if on_event is not None:
            on_event(
                BatchEvent(
                    "import",
                    detail={
                        "folder": str(folder),
                        "cases": new,
                        "new_time_points": sum(c.new_time_points for c in rep.cases),
                        "already_present": rep.n_already_present,
                    },
                )
            )
            for s in rep.skipped:
                on_event(
                    BatchEvent(
                        "import-skipped",
                        reason=" ".join(s.reason.split()),
                        detail={"folder": str(folder), "path": s.path},
                    )
                )
    return ids, reports


# ------------------------------------------------------------ resume rule
def resume_state(store: CaseRepository, case_id: str, protocol_id: str) -> str | None:
    """Why ``case_id`` need not run again under ``protocol_id``, or None when it must.

    It need not when its current protocol run is for ``protocol_id`` and no audited
    save since the one that stored that run changed the run's inputs (an action of
    :data:`INPUT_ACTIONS`, an action unknown to this rule, or a save without an
    audit entry all count as changes).
    """
    from dosimetry_core.store import audit as audit_trail

    case = store.load_case(case_id)
    run = case.protocol_run
    if run is None or run.protocol_id != protocol_id:
        return None
    entries = audit_trail.entries(store, case_id)
    run_version = None
    for e in entries:
        if e.action == "protocol-run" and e.details.get("protocol") == protocol_id:
            v = e.details.get("case_version")
            if isinstance(v, int):
                run_version = v
    if run_version is None:
        return None
    later = {
        e.details.get("case_version"): e.action
        for e in entries
        if isinstance(e.details.get("case_version"), int)
        and e.details["case_version"] > run_version
    }
    for v in range(run_version + 1, case.version + 1):
        action = later.get(v)
        if action is None or action in INPUT_ACTIONS or action not in OTHER_ACTIONS:
            return None
    when = run.computed_at.replace("T", " ") or str(run.created_at)
    return f"protocol run {run.result_id} of {when} is current (inputs unchanged)"


def _cycle_of(store: CaseRepository, case: Any) -> int | None:
    adm = case.first_administration
    if adm is None:
        return None
    if adm.cycle and adm.cycle != 1:
        return int(adm.cycle)
    times = []
    for s in store.find_cases(patient_id=case.patient.patient_id):
        other = case if s.case_id == case.case_id else store.load_case(s.case_id)
        a = other.first_administration
        if a is not None:
            times.append((a.time, other.case_id))
    times.sort()
    return 1 + [cid for _, cid in times].index(case.case_id)


def _organ_rows(store: CaseRepository, case: Any) -> tuple[tuple[OrganRow, ...], str | None]:
    run = case.protocol_run
    if run is None:
        return (), None
    cycle = _cycle_of(store, case)
    rows = tuple(
        OrganRow(
            case_id=case.case_id,
            patient_id=case.patient.patient_id,
            cycle=cycle,
            organ_id=organ_id,
            organ=o.label,
            dose_gy=o.dose_gy,
            dose_per_activity_gy_per_gbq=o.dose_per_activity_gy_per_gbq,
            bed_gy=o.bed_gy,
            dose_sd_gy=o.dose_sd_gy,
            mass_g=o.mass_g,
            administered_activity_mbq=run.administered_activity_mbq,
            review_flags=tuple(o.review_flags),
            protocol=run.protocol_id,
            run_id=run.result_id,
        )
        for organ_id, o in run.organs.items()
    )
    return rows, run.result_id


# --------------------------------------------------------------- the task
def _announce(case_id: str, token: str) -> None:
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):  # run in the client process
        return
    worker.log_event(EVENT_TOPIC, {"event": "started", "case_id": case_id, "batch": token})


def _check_actor(store: CaseRepository, actor: Actor | None) -> None:
    """On a store with accounts: the client's actor must be an active account of that role
    that may compute (checked before anything is read or computed); it then acts in the task.
    """
    if not store.has_users():
        return
    from dosimetry_core.errors import PermissionDeniedError
    from dosimetry_core.store.permissions import require
    from dosimetry_core.store.users import list_users

    if actor is None:
        raise PermissionDeniedError(
            "this store has user accounts: log in (MRTDOSE_USER and MRTDOSE_PASSWORD) to run "
            "a batch"
        )
    info = next((u for u in list_users(store) if u.username == actor.username), None)
    if info is None or not info.active or info.role != actor.role:
        raise PermissionDeniedError(
            f"account {actor.username!r} ({actor.role}) is not an active account of this "
            "store with that role: the worker refuses to act for it"
        )
    require(actor, "compute")
    store.actor = actor


def _limit_threads(n: int) -> None:
    """At most ``n`` threads in this process's numba and SimpleITK thread pools."""
    import SimpleITK as sitk
    from numba import config, set_num_threads

    most = int(getattr(config, "NUMBA_NUM_THREADS", 1))
    set_num_threads(max(1, min(int(n), most)))
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(max(1, int(n)))


def run_case(
    location: StoreLocation,
    case_id: str,
    options: BatchOptions,
    actor: Actor | None = None,
    earlier: CaseOutcome | None = None,
    token: str = "",
) -> CaseOutcome:
    """One case of the batch (the Dask task): skip when current, else ``run_protocol``.

    Never raises: a failure is an outcome with its one-line reason.  ``earlier`` is
    the outcome of the patient's previous cycle in this batch (a dependency, so that
    the cycles run in order); when that one was (re)computed, this case is too.
    ``token`` tags the ``started`` event (several batches may share a scheduler).
    """
    _announce(case_id, token)
    t0 = time.perf_counter()
    store = None
    try:
        from dosimetry_core.pipeline.protocol_run import run_protocol

        if options.case_threads:
            _limit_threads(options.case_threads)
        store = location.open()
        _check_actor(store, actor)
        case = store.load_case(case_id)
        patient_id = case.patient.patient_id
        skip = None
        if not options.force and not (earlier is not None and earlier.status == "done"):
            skip = resume_state(store, case_id, options.protocol_id)
        warnings: tuple[str, ...] = ()
        if skip is None:
            res = run_protocol(
                store,
                case_id,
                options.protocol_id,
                method=options.method,
                dose_method=options.dose_method,
                recovery_fwhm_mm=options.recovery_fwhm_mm,
                risk_factors=options.risk_factors,
                user=options.user,
            )
            warnings = tuple(res.warnings)
            if earlier is not None and earlier.status == "failed":
                warnings += (
                    f"the earlier cycle {earlier.case_id} failed in this batch: cumulative "
                    "limits count only the earlier runs saved in the store",
                )
            case = store.load_case(case_id)
        organs, run_id = _organ_rows(store, case)
        cycle = organs[0].cycle if organs else _cycle_of(store, case)
        return CaseOutcome(
            case_id=case_id,
            status="skipped" if skip else "done",
            reason=skip or "",
            patient_id=patient_id,
            cycle=cycle,
            elapsed_s=time.perf_counter() - t0,
            organs=organs,
            run_id=run_id,
            warnings=warnings,
        )
    except Exception as exc:  # per-case isolation: the batch goes on
        return CaseOutcome(
            case_id=case_id,
            status="failed",
            reason=one_line(exc),
            elapsed_s=time.perf_counter() - t0,
        )
    finally:
        if store is not None:
            store.close()


# ------------------------------------------------------------- the engine
def parse_scheduler(text: str) -> tuple[str, int | None]:
    """``("local", N)`` or ``("tcp://HOST:PORT", None)``; else InvalidInputError (field scheduler).

    The grammar is :func:`dosimetry_core.pipeline.mc_distributed.parse_scheduler`'s
    (the Monte Carlo split and the batch share ``--scheduler``).
    """
    from dosimetry_core.pipeline.mc_distributed import parse_scheduler as parse

    spec = parse(text)
    if spec.kind == "local":
        return "local", spec.workers
    return str(spec.address), None


def _case_cost(case: Any) -> int:
    """A case's expected cost: voxels of its time points' CT and SPECT/PET series.

    Registration, resampling and the voxel fits all scale with these; the ranking is
    what matters (longest first), not the number.
    """
    total = 0
    for tp in case.time_points:
        for series in (tp.functional, tp.anatomical):
            ref = getattr(series, "volume", None) if series is not None else None
            if ref is not None:
                total += int(ref.geometry.n_voxels)
    return total


def _thread_budget(client: Any, n_workers: int) -> int:
    """Native threads one case may use so that no machine of the cluster is oversubscribed.

    Per machine: its cores divided by the task threads of the Dask workers on it
    (one worker on 2 cores: 2; two workers: 1 each); the smallest over the machines.
    A local cluster whose workers cannot be asked falls back to cores // workers.
    """
    fallback = max(1, (os.cpu_count() or 1) // max(n_workers, 1))
    try:
        workers = client.scheduler_info().get("workers", {})
        cores = client.run(os.cpu_count)
    except Exception:  # an old or restricted scheduler: keep the local estimate
        return fallback
    per_host: dict[str, int] = {}
    for address, info in workers.items():
        host = str(info.get("host", address))
        per_host[host] = per_host.get(host, 0) + int(info.get("nthreads", 1) or 1)
    budgets = [
        max(1, int(cores.get(address) or 1) // max(per_host[str(info.get("host", address))], 1))
        for address, info in workers.items()
    ]
    return min(budgets) if budgets else fallback


def _ordered_chains(store: CaseRepository, case_ids: Sequence[str]) -> list[list[str]]:
    """Case ids grouped per patient, each group in administration order (missing cases alone).

    The groups come longest first (the sum of :func:`_case_cost` over the group):
    Dask starts tasks in the order they are submitted, and starting the longest work
    first leaves the least idle time at the end of a batch (Graham's LPT rule: within
    4/3 of the best makespan; Graham 1969, SIAM J. Appl. Math. 17:416).
    """
    groups: dict[str, list[tuple[Any, str, int]]] = {}
    alone: list[list[str]] = []
    for cid in case_ids:
        try:
            case = store.load_case(cid)
        except DosimetryError:
            alone.append([cid])  # the task reports it
            continue
        adm = case.first_administration
        key = (adm.time if adm is not None else datetime.max, cid)
        groups.setdefault(case.patient.patient_id, []).append((key, cid, _case_cost(case)))
    ranked = sorted(groups.values(), key=lambda g: -sum(c for _, _, c in g))
    chains = [[cid for _, cid, _ in sorted(g, key=lambda x: x[0])] for g in ranked]
    return chains + alone


class _Counter:
    def __init__(self, total: int, workers: int) -> None:
        self.total = total
        self.workers = max(workers, 1)
        self.done = self.failed = self.skipped = 0
        self.running: set[str] = set()
        self.times: list[float] = []
        self.t0 = time.perf_counter()

    def eta_s(self) -> float | None:
        if not self.times:
            return None
        left = self.total - self.done - self.failed - self.skipped
        return statistics.median(self.times) * left / self.workers

    def event(self, kind: str, **kw: Any) -> BatchEvent:
        return BatchEvent(
            kind,
            done=self.done,
            failed=self.failed,
            skipped=self.skipped,
            running=len(self.running),
            total=self.total,
            eta_s=self.eta_s(),
            **kw,
        )


def run_batch(
    location: StoreLocation,
    case_ids: Sequence[str],
    options: BatchOptions,
    *,
    scheduler: str = "local",
    actor: Actor | None = None,
    on_event: Callable[[BatchEvent], None] | None = None,
) -> BatchResult:
    """Run ``case_ids`` under ``options.protocol_id`` on Dask (module docstring).

    Parameters
    ----------
    location
        The store the workers open (:meth:`StoreLocation.of` an open store).
    case_ids
        Cases already in the store (:func:`read_case_list`, :func:`import_cohort`).
    scheduler
        ``local``, ``local:N`` or ``tcp://HOST:PORT`` (:func:`parse_scheduler`).
    actor
        The logged-in user on a store with accounts (workers check it is still an
        active account of that role and save in its name).
    on_event
        Called in the calling thread for every :class:`BatchEvent` (started,
        finished, skipped, failed), not for the final summary.

    Returns
    -------
    BatchResult
        One outcome per case, in the order of ``case_ids``.
    """
    from dosimetry_core.pipeline.mc_distributed import dask_client
    from dosimetry_core.pipeline.mc_distributed import parse_scheduler as parse

    spec = parse(scheduler)
    ids = list(dict.fromkeys(case_ids))
    store = location.open()
    try:
        chains = _ordered_chains(store, ids)
    finally:
        store.close()
    t_start = time.perf_counter()
    with dask_client(spec) as client:
        n_workers = (
            spec.workers
            if spec.kind == "local"
            else len(client.scheduler_info().get("workers", {}))
        )
        if options.case_threads is None:
            options = replace(options, case_threads=_thread_budget(client, n_workers))
        outcomes = _run_on(client, location, chains, options, actor, n_workers, on_event)
    return BatchResult(
        protocol_id=options.protocol_id,
        scheduler=scheduler,
        outcomes=[outcomes[c] for c in ids],
        wall_s=time.perf_counter() - t_start,
        n_workers=n_workers,
    )


def _run_on(
    client: Any,
    location: StoreLocation,
    chains: list[list[str]],
    options: BatchOptions,
    actor: Actor | None,
    n_workers: int,
    on_event: Callable[[BatchEvent], None] | None,
) -> dict[str, CaseOutcome]:
    """Submit the chains to ``client`` and gather the outcomes, emitting the events."""
    from distributed import wait

    events: queue.Queue[dict[str, Any]] = queue.Queue()
    counter = _Counter(sum(len(c) for c in chains), n_workers)
    outcomes: dict[str, CaseOutcome] = {}

    def emit(e: BatchEvent) -> None:
        if on_event is not None:
            on_event(e)

    def drain() -> None:
        while True:
            try:
                msg = events.get_nowait()
            except queue.Empty:
                return
            cid = str(msg.get("case_id"))
            if msg.get("batch") != token or cid in outcomes:
                continue
            if msg.get("event") == "started":
                counter.running.add(cid)
                emit(counter.event("started", case_id=cid))

    def finish(outcome: CaseOutcome) -> None:
        if outcome.case_id in outcomes:
            return
        outcomes[outcome.case_id] = outcome
        counter.running.discard(outcome.case_id)
        if outcome.status == "done":
            counter.done += 1
            counter.times.append(outcome.elapsed_s)
        elif outcome.status == "skipped":
            counter.skipped += 1
        else:
            counter.failed += 1
        detail: dict[str, Any] = {"elapsed_s": round(outcome.elapsed_s, 3)}
        if outcome.status != "failed":
            detail.update(
                patient_id=outcome.patient_id,
                cycle=outcome.cycle,
                run_id=outcome.run_id,
                organs={o.organ_id: _num(o.dose_gy) for o in outcome.organs},
            )
        kind_ = {"done": "finished"}.get(outcome.status, outcome.status)
        emit(
            counter.event(
                kind_, case_id=outcome.case_id, reason=outcome.reason or None, detail=detail
            )
        )

    token = f"{os.getpid()}-{time.time_ns()}"
    client.subscribe_topic(EVENT_TOPIC, lambda ev: events.put(ev[1]))
    futures: dict[Any, str] = {}
    for chain in chains:
        previous = None
        for cid in chain:
            fut = client.submit(
                run_case,
                location,
                cid,
                options,
                actor,
                previous,
                token,
                pure=False,
                key=f"mrtdose-case-{cid}-{token}",
            )
            futures[fut] = cid
            previous = fut
    pending = set(futures)
    while pending:
        try:
            finished, pending = wait(pending, timeout=0.5, return_when="FIRST_COMPLETED")
        except TimeoutError:
            finished = set()
        drain()
        for fut in finished:
            cid = futures[fut]
            try:
                outcome = fut.result()
            except Exception as exc:  # the worker died (KilledWorker) or a dependency did
                outcome = CaseOutcome(cid, "failed", f"worker lost: {one_line(exc)}")
            finish(outcome)
    drain()
    try:
        client.unsubscribe_topic(EVENT_TOPIC)
    except Exception:  # the client may be closing
        pass
    return outcomes


# --------------------------------------------------------------- summary
def summary_rows(outcomes: Iterable[CaseOutcome]) -> list[dict[str, Any]]:
    """One row per case and organ (:data:`SUMMARY_COLUMNS`); a failed case gets one empty row."""
    rows: list[dict[str, Any]] = []
    for o in outcomes:
        if o.organs:
            rows += [r.to_row(o.status) for r in o.organs]
        else:
            row: dict[str, Any] = dict.fromkeys(SUMMARY_COLUMNS)
            row.update(
                case_id=o.case_id,
                patient_id=o.patient_id or None,
                cycle=o.cycle,
                status=o.status,
                review_flags="",
            )
            rows.append(row)
    return rows


def write_summary(result: BatchResult, out_dir: str | Path) -> dict[str, str]:
    """Write ``summary.csv``, ``summary.json`` and ``gy_per_gbq.png`` into ``out_dir``.

    Returns the paths written (``csv``, ``json``, ``plot``).  The CSV has one row per
    case and organ (columns :data:`SUMMARY_COLUMNS`, units in the names); a failed
    case has one row with its status and no organ.  The JSON holds the same rows, the
    per-case outcomes and the counts (``format`` ``mrt-batch-summary/1``).
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(
            f"--out {out}: cannot create the folder ({exc})", field="out"
        ) from exc
    rows = summary_rows(result.outcomes)
    csv_path = out / "summary.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(SUMMARY_COLUMNS))
        writer.writeheader()
        for r in rows:
            writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in SUMMARY_COLUMNS})
    json_path = out / "summary.json"
    doc = {
        "format": SUMMARY_FORMAT,
        "columns": list(SUMMARY_COLUMNS),
        "rows": rows,
        **result.to_dict(),
    }
    json_path.write_text(json.dumps(doc, indent=2, allow_nan=False), encoding="utf-8")
    plot_path = out / "gy_per_gbq.png"
    cohort_plot(rows, plot_path, protocol_id=result.protocol_id)
    return {"csv": str(csv_path), "json": str(json_path), "plot": str(plot_path)}


def cohort_plot(
    rows: Sequence[Mapping[str, Any]], path: str | Path, *, protocol_id: str = ""
) -> None:
    """Gy/GBq per organ (x) and cycle (colour): one dot per case, a bar at the cycle's median.

    Drawn with matplotlib's Agg canvas (no display, no global backend change).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    pts = [
        (str(r["organ"] or r["organ_id"]), r["cycle"], float(r["dose_per_activity_Gy_per_GBq"]))
        for r in rows
        if r.get("dose_per_activity_Gy_per_GBq") is not None and r.get("organ_id")
    ]
    organs = list(dict.fromkeys(p[0] for p in pts))
    cycles = sorted({p[1] for p in pts}, key=lambda c: (c is None, c or 0))
    fig = Figure(figsize=(max(6.0, 1.3 * len(organs) + 2), 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / max(len(cycles), 1)
    for j, cyc in enumerate(cycles):
        colour = f"C{j % 10}"
        for i, organ in enumerate(organs):
            vals = sorted(v for o, c, v in pts if o == organ and c == cyc)
            if not vals:
                continue
            x = i - 0.4 + width * (j + 0.5)
            ax.bar(x, statistics.median(vals), width=width * 0.9, color=colour, alpha=0.35)
            ax.scatter([x] * len(vals), vals, color=colour, s=14, zorder=3)
        ax.bar(0, 0, color=colour, alpha=0.35, label=f"cycle {cyc if cyc is not None else '?'}")
    ax.set_xticks(range(len(organs)))
    ax.set_xticklabels(organs, rotation=20, ha="right")
    ax.set_ylabel("absorbed dose per activity (Gy/GBq)")
    n_cases = len({r["case_id"] for r in rows})
    ax.set_title(f"Cohort {protocol_id}: Gy/GBq per organ and cycle ({n_cases} cases)")
    if cycles:
        ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(str(path))
