"""The benchmark runner behind ``slimcaching bench``.

A sweep is the cross product *instances x algorithm specs x seeds*.  Each run
is keyed by content (:func:`~slimcaching.analysis.store.run_key`); runs whose
key is already in the store are skipped, so a killed sweep resumes where it
stopped.  Runs execute

* in this process (``jobs=1`` and no hard timeout),
* in local worker processes (:mod:`slimcaching.analysis.worker`), or
* on a dask.distributed cluster (``executor="dask"``, optional extra), each
  run again in a worker process started by the dask worker,

and only this process writes to the store, one committed row per finished run.
A tqdm bar shows runs done, running and left, with an ETA.

Each instance file is read, validated and hashed once, while planning; a file
that cannot be read is skipped with a one-line warning and the rest of the
sweep runs.  The parsed instance is shipped to a worker once, and runs are
handed out grouped by instance, so a worker keeps running the instance it
holds.  With a hard timeout (by default ``1.05 * time_limit + 2`` s, the
promise every algorithm makes) a run that has not returned is ended with its
worker process and stored with status ``timeout``; workers die with the
process that started them.

Algorithm specs follow benchopt's ``name[k=v,...]`` syntax, e.g.
``greedy,exact[formulation=assignment],maxconv[eps=0.05]``; values are parsed
as JSON when they can be.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from ..errors import InputError
from .families import FAMILIES, Family, detect, get_family
from .store import ResultStore, canonical_params, run_key
from .worker import Worker, end_all, run_columns

__all__ = ["Task", "Plan", "SweepSummary", "DEFAULT_ALGORITHMS", "parse_algorithms", "resolve_inputs",
           "plan", "execute_task", "default_hard_timeout", "run_sweep"]

#: What ``slimcaching bench`` runs when ``--algorithms`` is omitted, per family.
DEFAULT_ALGORITHMS: dict[str, str] = {
    "caching": "greedy,successive,maxconv,best,popularity,independent,random,cloud",
    "moe2": "dmo,greedy,fastest,random",
}

_INSTANCE_SUFFIXES = (".json", ".json.gz")

#: Bytes of parsed instances the sweep's process keeps between planning and
#: running; beyond it an instance is read again when a worker needs it.
KEEP_BYTES = 512 * 2**20


@dataclass(frozen=True)
class Task:
    """One run: an instance file, an algorithm with parameters, a seed."""

    path: str
    family: str
    instance_hash: str
    algorithm: str
    params: str  # canonical JSON
    seed: int | None
    time_limit: float | None

    @property
    def key(self) -> str:
        return run_key(self.instance_hash, self.algorithm, self.params, self.seed)


@dataclass
class SweepSummary:
    """What a sweep did."""

    planned: int = 0
    skipped: int = 0
    ran: int = 0
    errors: int = 0
    timeouts: int = 0
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        extra = [f"{self.errors} failed (status error)" if self.errors else "",
                 f"{self.timeouts} ended at the hard timeout (status timeout)" if self.timeouts else ""]
        s = (f"{self.planned} runs planned, {self.skipped} already in the store, {self.ran} run"
             + "".join(", " + e for e in extra if e) + (" (interrupted)" if self.interrupted else ""))
        return "\n".join([*self.notes, s])


# ------------------------------------------------------------------ parsing
def parse_algorithms(spec: str | Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    """``"greedy,exact[formulation=level,mip_gap=0]"`` -> ``[(name, params), ...]``.

    Commas inside brackets separate parameters, outside them algorithms.
    """
    if not isinstance(spec, str):
        spec = ",".join(spec)
    items, depth, cur = [], 0, ""
    for ch in spec:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise InputError("--algorithms", ("", f"unbalanced ']' in {spec!r}"))
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
        else:
            cur += ch
    if depth != 0:
        raise InputError("--algorithms", ("", f"unbalanced '[' in {spec!r}"))
    items.append(cur)
    out = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        name, params = item, {}
        if "[" in item:
            if not item.endswith("]"):
                raise InputError("--algorithms", ("", f"expected name[k=v,...], got {item!r}"))
            name, body = item[:-1].split("[", 1)
            for kv in filter(None, (p.strip() for p in body.split(","))):
                if "=" not in kv:
                    raise InputError("--algorithms", ("", f"expected k=v inside {item!r}, got {kv!r}"))
                k, v = kv.split("=", 1)
                try:
                    params[k.strip().replace("-", "_")] = json.loads(v)
                except json.JSONDecodeError:
                    params[k.strip().replace("-", "_")] = v.strip()
        out.append((name.strip(), params))
    if not out:
        raise InputError("--algorithms", ("", "no algorithm given"))
    return out


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def resolve_inputs(items: Sequence[str | os.PathLike]) -> list[Path]:
    """Suite names, folders and files -> a sorted list of files.

    A bare name such as ``tiny`` means ``instances/tiny/`` relative to the
    working directory, then to the repository root.  Folders contribute their
    ``*.json`` / ``*.json.gz`` files (recursively).
    """
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if not p.exists() and len(p.parts) == 1:
            for base in (Path.cwd(), _repo_root()):
                if (base / "instances" / p).is_dir():
                    p = base / "instances" / p
                    break
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.name.endswith(_INSTANCE_SUFFIXES))
            if not files:
                raise InputError(str(item), ("", "folder holds no *.json or *.json.gz files"))
            out.extend(files)
        elif p.is_file():
            out.append(p)
        else:
            raise InputError(str(item), ("", "no such file, folder or suite (looked in ./instances/ and "
                                             f"{_repo_root() / 'instances'})"))
    seen, uniq = set(), []
    for f in out:
        r = f.resolve()
        if r not in seen:
            seen.add(r)
            uniq.append(f)
    return uniq


# ------------------------------------------------------------------ planning
def _nbytes(obj: Any) -> int:
    import numpy as np

    return sum(v.nbytes for v in vars(obj).values() if isinstance(v, np.ndarray)) if hasattr(obj, "__dict__") else 0


class Instances:
    """The instances of a sweep by content hash: read once while planning.

    Holds each file's path, family and row columns (:meth:`Family.describe`),
    and the parsed instance while the total stays under ``keep_bytes``; an
    instance dropped for room is read again when a worker needs it (and must
    still have the planned content hash).
    """

    def __init__(self, keep_bytes: int = KEEP_BYTES):
        self.keep_bytes = keep_bytes
        self._info: dict[str, tuple[str, str, dict[str, Any]]] = {}
        self._objects: dict[str, Any] = {}
        self._bytes = 0

    def add(self, path: str, family: str, instance: Any, describe: dict[str, Any]) -> str:
        h = describe["instance_hash"]
        if h not in self._info:
            self._info[h] = (path, family, describe)
            n = _nbytes(instance)
            if self._bytes + n <= self.keep_bytes:
                self._objects[h] = instance
                self._bytes += n
        return h

    def describe(self, h: str) -> dict[str, Any]:
        """The instance columns of a row."""
        return self._info[h][2]

    def get(self, h: str) -> tuple[str, Any]:
        """``(family name, parsed instance)``."""
        path, family, _ = self._info[h]
        if h not in self._objects:
            from .families import load

            fam, inst = load(path)
            if fam.describe(inst)["instance_hash"] != h:
                raise InputError(path, ("", "the file changed since the sweep was planned"))
            return family, inst
        return family, self._objects[h]

    def retain(self, hashes: set[str]) -> None:
        """Drop the parsed instances that no pending run needs."""
        for h in [h for h in self._objects if h not in hashes]:
            self._bytes -= _nbytes(self._objects.pop(h))


@dataclass
class Plan:
    """The runs of a sweep, what was left out and why, and the instances read.

    ``notes`` are expected omissions (files in a folder that are not instances,
    algorithms of another family, duplicate content); ``warnings`` name files
    that could not be read (one line each: file, field, rule).
    """

    tasks: list[Task]
    notes: list[str]
    warnings: list[str]
    instances: Instances


def _read_instance_file(f: Path) -> tuple[Family, Any]:
    """``(family, instance)`` of a file; :class:`InputError` (one line) for anything unreadable."""
    from ..fileio import read_json

    try:
        data = read_json(f)
    except InputError:
        raise
    except (OSError, ValueError, RecursionError, MemoryError) as exc:
        raise InputError(str(f), ("", f"cannot read: {type(exc).__name__}: {exc}")) from None
    fam = detect(data, str(f))
    try:
        return fam, fam.from_dict(data, str(f))
    except InputError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError, MemoryError) as exc:
        raise InputError(str(f), ("", f"invalid instance: {type(exc).__name__}: {exc}")) from None


def plan(files: Sequence[str | os.PathLike], algorithms: str | Sequence[tuple[str, dict]] | None = None, *,
         exact: bool = False, seeds: Iterable[int | None] = (0,), time_limit: float | None = None,
         explicit: Sequence[str | os.PathLike] = (), keep_bytes: int = KEEP_BYTES) -> Plan:
    """The tasks of a sweep, with notes and warnings about what was left out.

    ``algorithms`` may be ``None`` (the family default of
    :data:`DEFAULT_ALGORITHMS`).  With ``exact`` the family's exact reference is
    added.  Each file is read, validated and hashed once.  Files found in
    folders that are not instances (placements, manifests) are skipped with a
    note; a malformed file, or a named one that is not an instance, is skipped
    with a warning naming the file, field and rule.

    Raises
    ------
    InputError
        An algorithm unknown to every family; or no file could be read (the
        first file's error).  An algorithm that does not apply to a file's
        family is skipped with a note.
    """
    explicit_set = {Path(p).resolve() for p in explicit}
    specs = None if algorithms is None else (parse_algorithms(algorithms) if isinstance(algorithms, str)
                                             else list(algorithms))
    seeds = list(seeds)
    if specs is not None:
        all_names: set[str] = set()
        for fam in FAMILIES.values():  # a family's registry is imported only when a name needs it
            if all(n in all_names for n, _ in specs):
                break
            try:
                all_names.update(fam.algorithm_names())
            except ImportError:
                continue
        unknown = [n for n, _ in specs if n not in all_names]
        if unknown:
            raise InputError("--algorithms", ("", f"unknown algorithm {unknown[0]!r}; valid: "
                                                  f"{', '.join(sorted(all_names))}"))
    tasks: list[Task] = []
    notes: list[str] = []
    warnings: list[str] = []
    first_error: InputError | None = None
    not_instances: list[str] = []
    skipped_alg: dict[tuple[str, str], int] = {}
    known_families: dict[str, list[str]] = {}
    instances = Instances(keep_bytes)
    for f in files:
        try:
            fam, inst = _read_instance_file(Path(f))
        except InputError as exc:
            if exc.path == "$.format" and Path(f).resolve() not in explicit_set:
                not_instances.append(str(f))
            else:
                warnings.append("skipped " + exc.one_line())
                first_error = first_error or exc
            continue
        h = instances.add(str(f), fam.name, inst, fam.describe(inst))
        names = known_families.setdefault(fam.name, fam.algorithm_names())
        fam_specs = specs if specs is not None else parse_algorithms(DEFAULT_ALGORITHMS[fam.name])
        if exact and not any(n == fam.exact_names[0] and not p for n, p in fam_specs):
            fam_specs = [*fam_specs, (fam.exact_names[0], {})]
        for name, params in fam_specs:
            if name not in names:
                skipped_alg[(name, fam.name)] = skipped_alg.get((name, fam.name), 0) + 1
                continue
            for seed in seeds:
                tasks.append(Task(str(f), fam.name, h, name, canonical_params(params), seed, time_limit))
    if first_error is not None and not known_families:
        raise first_error
    if not_instances:
        notes.append(f"skipped {len(not_instances)} file(s) that are not instances: "
                     + ", ".join(Path(p).name for p in not_instances[:5]) + (" ..." if len(not_instances) > 5 else ""))
    for (name, fam), n in skipped_alg.items():
        notes.append(f"skipped {name!r} on {n} {fam} instance(s): not an algorithm of that family")
    # one task per key even when a file appears twice under different names
    uniq: OrderedDict[str, Task] = OrderedDict()
    for t in tasks:
        uniq.setdefault(t.key, t)
    if len(uniq) < len(tasks):
        notes.append(f"{len(tasks) - len(uniq)} duplicate run(s) (same instance content) planned once")
    return Plan(list(uniq.values()), notes, warnings, instances)


# ------------------------------------------------------------------ executing
def _row(task: Task, describe: dict[str, Any], cols: dict[str, Any]) -> dict[str, Any]:
    """A store row: the task, the instance columns, the run's result columns."""
    row: dict[str, Any] = {"algorithm": task.algorithm, "params": task.params, "seed": task.seed,
                           "family": task.family, "instance_path": task.path}
    row.update(describe)
    row.update(cols)
    row["instance_hash"] = task.instance_hash
    row["key"] = task.key
    return row


def execute_task(task: Task) -> dict[str, Any]:
    """Run one task in this process, reading its file, and return its store row.

    Any exception in the algorithm becomes a row with status ``"error"`` and
    the exception in ``message`` (retried by the next sweep).
    """
    from .families import load

    fam, inst = load(task.path)
    return _row(task, fam.describe(inst), run_columns(task, fam, inst))


def default_hard_timeout(time_limit: float | None) -> float | None:
    """The promise of a run with ``time_limit``: ``1.05 * time_limit + 2`` s (``None`` without a limit)."""
    return None if time_limit is None else 1.05 * float(time_limit) + 2.0


def _progress(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="run", desc=desc, disable=not enabled, dynamic_ncols=True,
                file=sys.stderr, smoothing=0.1)


def run_sweep(inputs: Sequence[str | os.PathLike], algorithms: str | Sequence[tuple[str, dict]] | None = None, *,
              db: str | os.PathLike = "results.sqlite", exact: bool = False, seeds: Iterable[int | None] = (0,),
              time_limit: float | None = None, hard_timeout: float | str | None = "auto", jobs: int = 1,
              executor: str = "local", address: str | None = None, client: Any = None, progress: bool = True,
              limit: int | None = None, on_row: Callable[[dict], None] | None = None,
              log: Callable[[str], None] | None = None) -> SweepSummary:
    """Run a sweep, writing one row per finished run to the store at ``db``.

    Parameters
    ----------
    inputs : sequence of str or PathLike
        Suite names, folders or instance files (:func:`resolve_inputs`).
    algorithms : str or list of (name, params), optional
        Algorithm specs (``"greedy,exact[formulation=assignment]"``); the family
        default when omitted.
    db : path
        The SQLite store; rows already there are skipped.
    exact : bool
        Add the family's exact reference (``exact`` for caching).
    seeds : iterable of int
        Each algorithm runs once per seed (the seed is part of the key).
    time_limit : float, optional
        Seconds per run, passed to every algorithm.
    hard_timeout : float, None or "auto"
        Seconds after which a run's worker process is ended and the run stored
        with status ``timeout``; ``"auto"`` is :func:`default_hard_timeout`
        of ``time_limit``, ``None`` none.  With a hard timeout every run
        executes in a worker process, also with ``jobs=1``.
    jobs : int
        Local worker processes (1 = in this process when there is no hard
        timeout); threads of the in-process cluster for ``executor="dask"``.
    executor : {"local", "dask"}
        ``"dask"`` submits to ``client``, to ``distributed.Client(address)``, or
        to a new in-process cluster with ``jobs`` threads.
    limit : int, optional
        Stop after this many runs (the rest is left for the next sweep).
    on_row : callable, optional
        Called with each row after it is committed.
    progress : bool
        Show the tqdm bar on stderr.
    log : callable, optional
        Where notes and warnings go (default: a line on stderr each).

    Returns
    -------
    SweepSummary

    Raises
    ------
    InputError
        Unknown algorithms, no readable instance, a file that is not a results store.
    StoreError
        The store cannot be written (disk full, read-only); every row committed
        before stays, and the next sweep resumes.
    KeyboardInterrupt
        Ctrl-C (or SIGTERM turned into one by the caller): finished rows are
        kept, running ones dropped, workers ended.  A note on the exception
        says how many runs were stored.

    Notes
    -----
    A ``timeout`` row counts as done (the next sweep skips it, like any result);
    ``error`` rows are retried.
    """
    say = log or (lambda s: print(s, file=sys.stderr))
    explicit = [p for p in inputs if Path(p).is_file()]
    files = resolve_inputs(inputs)
    p = plan(files, algorithms, exact=exact, seeds=seeds, time_limit=time_limit, explicit=explicit)
    summary = SweepSummary(planned=len(p.tasks), notes=p.notes)
    hard = default_hard_timeout(time_limit) if hard_timeout == "auto" else hard_timeout
    for w in p.warnings:
        say("warning: " + w)
    for n in p.notes:
        say(n)
    store = ResultStore(db)
    try:
        done = store.keys()
        pending = [t for t in p.tasks if t.key not in done]
        summary.skipped = len(p.tasks) - len(pending)
        if limit is not None:
            pending = pending[:max(0, int(limit))]
        p.instances.retain({t.instance_hash for t in pending})
        bar = _progress(len(pending), progress, "bench")
        state = {"running": 0}

        def finish(task: Task, cols: dict[str, Any]) -> None:
            row = _row(task, p.instances.describe(task.instance_hash), cols)
            store.put(row)
            summary.ran += 1
            summary.errors += row.get("status") == "error"
            summary.timeouts += row.get("status") == "timeout"
            bar.update(1)
            bar.set_postfix(running=state["running"], left=len(pending) - summary.ran, refresh=False)
            if on_row is not None:
                on_row(row)

        try:
            if executor == "dask":
                _run_dask(pending, p.instances, finish, client=client, address=address, jobs=jobs,
                          hard_timeout=hard, state=state)
            elif hard is None and (jobs <= 1 or len(pending) <= 1):
                _run_here(pending, p.instances, finish, state=state, bar=bar)
            else:
                _run_pool(pending, p.instances, finish, jobs=max(1, min(jobs, len(pending))),
                          hard_timeout=hard, state=state)
        except (KeyboardInterrupt, OSError) as exc:
            summary.interrupted = isinstance(exc, KeyboardInterrupt)
            left = len(pending) - summary.ran
            exc.add_note(f"{summary.ran} run(s) stored in {db} by this sweep, {left} left; "
                         "the same command resumes")
            raise
        finally:
            bar.close()
    finally:
        store.close()
    return summary


def _run_here(pending: list[Task], instances: Instances, finish: Callable[[Task, dict], None], *,
              state: dict, bar: Any) -> None:
    """Every run in this process.

    A row is stored only when no SIGINT / SIGTERM arrived during its run: a
    solver that catches the interrupt returns early, and that result depends
    on when the key was pressed, so the run is left for the next sweep.
    """
    caught: list[BaseException] = []
    restore = _watch_signals(caught) if threading.current_thread() is threading.main_thread() else {}
    try:
        for t in pending:
            state["running"] = 1
            bar.set_postfix(running=1, left=len(pending) - bar.n, refresh=True)
            fam_name, inst = instances.get(t.instance_hash)
            cols = run_columns(t, get_family(fam_name), inst)
            state["running"] = 0
            if caught:
                raise caught[0]
            finish(t, cols)
    finally:
        for sig, handler in restore.items():
            signal.signal(sig, handler)


def _watch_signals(caught: list[BaseException]) -> dict[int, Any]:
    """Wrap the Python-level SIGINT / SIGTERM handlers so that the exception they raise is remembered."""
    restore = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        prev = signal.getsignal(sig)
        if not callable(prev):
            continue

        def handler(signum, frame, prev=prev):
            try:
                prev(signum, frame)
            except BaseException as exc:
                caught.append(exc)
                raise

        signal.signal(sig, handler)
        restore[sig] = prev
    return restore


class _Dispatcher:
    """Hands out pending runs grouped by instance: a worker keeps the instance it holds.

    A free worker gets the next run of its current instance; when that is
    done, the first instance no other worker is on; at the end of the sweep,
    a run of the instance with the most runs left (so no worker idles while
    runs wait).
    """

    def __init__(self, pending: Iterable[Task]):
        self.groups: OrderedDict[str, deque[Task]] = OrderedDict()
        for t in pending:
            self.groups.setdefault(t.instance_hash, deque()).append(t)

    def __bool__(self) -> bool:
        return bool(self.groups)

    def take(self, current: str | None, others: set[str]) -> Task | None:
        if not self.groups:
            return None
        h = current if current in self.groups else None
        if h is None:
            h = next((k for k in self.groups if k not in others), None)
        if h is None:
            h = max(self.groups, key=lambda k: len(self.groups[k]))
        q = self.groups[h]
        t = q.popleft()
        if not q:
            del self.groups[h]
        return t


def _run_pool(pending: list[Task], instances: Instances, finish: Callable[[Task, dict], None], *, jobs: int,
              hard_timeout: float | None, state: dict) -> None:
    """Runs on ``jobs`` worker processes, each ended at its run's hard timeout."""
    from multiprocessing.connection import wait

    workers = [Worker(preload={t.algorithm for t in pending}) for _ in range(jobs)]
    current: dict[int, str | None] = {id(w): None for w in workers}
    todo = _Dispatcher(pending)
    ok = False
    try:
        for w in workers:
            w.start()
        while True:
            for w in workers:
                if w.task is None and todo:
                    others = {current[id(x)] for x in workers if x is not w and x.task is not None}
                    t = todo.take(current[id(w)], others)
                    current[id(w)] = t.instance_hash
                    w.submit(t, lambda h=t.instance_hash: instances.get(h), hard_timeout)
            busy = [w for w in workers if w.task is not None]
            state["running"] = len(busy)
            if not busy:
                break
            deadlines = [w.deadline for w in busy if w.deadline is not None]
            timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            ready = wait([w.conn for w in busy], timeout)
            for w in busy:
                if w.conn in ready:
                    finish(*w.receive())
                elif w.deadline is not None and time.monotonic() >= w.deadline:
                    finish(*w.expire())
        ok = True
    finally:
        for w in workers:
            if ok:
                w.close()
            else:
                w.kill()


def _dask_run(task: Task, family_instance: tuple[str, Any], hard_timeout: float | None,
              registry: dict[str, str], preload: list[str]) -> dict[str, Any]:
    """One run on a dask worker: in a worker process of this dask thread (the result columns)."""
    w = getattr(_DASK_LOCAL, "worker", None)
    if w is None:
        w = _DASK_LOCAL.worker = Worker(registry, preload)
    return w.run(task, lambda: family_instance, hard_timeout)


_DASK_LOCAL = threading.local()


def _run_dask(pending: list[Task], instances: Instances, finish: Callable[[Task, dict], None], *, client: Any,
              address: str | None, jobs: int, hard_timeout: float | None, state: dict) -> None:
    """Runs on a dask.distributed cluster.

    dask schedules and moves data: each instance is scattered once and every
    run of it depends on that future, so a dask worker receives an instance
    once and runs of one instance go where it already is.  Inside a dask
    worker each run executes in a worker process of its thread
    (:class:`~slimcaching.analysis.worker.Worker`), which keeps a solver's
    output capture and a hung run away from dask's threads and lets the hard
    timeout end it.
    """
    try:
        from distributed import Client, as_completed
    except ImportError:  # pragma: no cover - optional extra
        raise InputError("--executor", ("", "dask needs the optional extra: pip install 'slimcaching[dask]'")) from None
    from ..algorithms import REGISTRY

    own = client is None
    if own:
        client = (Client(address) if address else
                  Client(processes=False, n_workers=1, threads_per_worker=max(1, jobs), dashboard_address=None))
    try:
        registry = dict(REGISTRY)
        preload = sorted({t.algorithm for t in pending})
        left: dict[str, int] = {}
        for t in pending:
            left[t.instance_hash] = left.get(t.instance_hash, 0) + 1
        scattered: dict[str, Any] = {}
        of: dict[Any, Task] = {}

        def submit(t: Task):
            h = t.instance_hash
            if h not in scattered:
                scattered[h] = client.scatter([instances.get(h)], hash=False)[0]
            fut = client.submit(_dask_run, t, scattered[h], hard_timeout, registry, preload, pure=False)
            of[fut] = t
            return fut

        window = max(1, sum(client.nthreads().values()))
        it = iter(pending)
        ac = as_completed([submit(t) for _, t in zip(range(window), it)])
        for fut in ac:
            nxt = next(it, None)
            if nxt is not None:
                ac.add(submit(nxt))
            state["running"] = ac.count()
            t = of.pop(fut)
            try:
                cols = fut.result()
            except Exception as exc:  # the dask task itself failed (lost worker, ...): retried next sweep
                cols = {"status": "error", "message": f"dask: {type(exc).__name__}: {exc}", "info": {}}
            left[t.instance_hash] -= 1
            if not left[t.instance_hash]:
                scattered.pop(t.instance_hash).release()
            finish(t, cols)
    except BaseException:
        end_all()  # runs of this process's dask threads end now, so the cluster can close
        raise
    finally:
        if own:
            client.close()
