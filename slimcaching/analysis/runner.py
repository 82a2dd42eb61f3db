"""The benchmark runner behind ``slimcaching bench``.

A sweep is the cross product *instances x algorithm specs x seeds*.  Each run
is keyed by content (:func:`~slimcaching.analysis.store.run_key`); runs whose
key is already in the store are skipped, so a killed sweep resumes where it
stopped.  Runs execute

* in this process (``jobs=1`` without a hard timeout),
* in local worker processes (``jobs > 1``, or any ``hard_timeout``): a run
  still going after ``hard_timeout`` seconds has its worker process ended and
  is stored with status ``timeout``; a worker that dies (out of memory, a
  crash in a solver library) gives a row with status ``error``; a fresh
  worker takes the next run either way, or
* on a dask.distributed cluster (``executor="dask"``, optional extra),

and only this process writes to the store, one committed row per finished run.
A file that cannot be read or is not a valid instance is skipped with a
one-line warning; the sweep goes on with the others.
A tqdm bar shows runs done, running and left, with an ETA.

Algorithm specs follow benchopt's ``name[k=v,...]`` syntax, e.g.
``greedy,exact[formulation=assignment],maxconv[eps=0.05]``; values are parsed
as JSON when they can be.
"""
from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from ..errors import InputError
from .families import FAMILIES, Family, detect
from .store import ResultStore, canonical_params, run_key

__all__ = ["Task", "SweepSummary", "DEFAULT_ALGORITHMS", "HARD_GRACE", "default_hard_timeout", "parse_algorithms",
           "resolve_inputs", "plan", "execute_task", "run_sweep"]

#: What ``slimcaching bench`` runs when ``--algorithms`` is omitted, per family.
DEFAULT_ALGORITHMS: dict[str, str] = {
    "caching": "greedy,successive,maxconv,best,popularity,independent,random,cloud",
    "moe2": "dmo,greedy,fastest,random",
}

_INSTANCE_SUFFIXES = (".json", ".json.gz")

#: Seconds a run may go on beyond twice its time limit before its worker is ended (:func:`default_hard_timeout`).
HARD_GRACE = 10.0


def default_hard_timeout(time_limit: float | None) -> float | None:
    """The hard timeout of a run with ``time_limit``: ``2 * time_limit + HARD_GRACE`` seconds, none without one.

    Algorithms stop themselves at their time limit (the exact solver's clock
    runs in a child process); the hard timeout only ends a run that ignores
    it (a hang, a library that does not return), so it is generous.
    """
    return None if time_limit is None else 2.0 * float(time_limit) + HARD_GRACE


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
        """The counts on one line (the notes were said when the sweep started)."""
        s = (f"{self.planned} runs planned, {self.skipped} already in the store, {self.ran} run"
             f"{', ' + str(self.errors) + ' failed (status error)' if self.errors else ''}"
             f"{', ' + str(self.timeouts) + ' ended by the hard timeout (status timeout)' if self.timeouts else ''}"
             f"{' (interrupted)' if self.interrupted else ''}")
        return s


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
def plan(files: Sequence[str | os.PathLike], algorithms: str | Sequence[tuple[str, dict]] | None = None, *,
         exact: bool = False, seeds: Iterable[int | None] = (0,), time_limit: float | None = None,
         explicit: Sequence[str | os.PathLike] = ()) -> tuple[list[Task], list[str]]:
    """The tasks of a sweep and notes about what was left out and why.

    ``algorithms`` may be ``None`` (the family default of
    :data:`DEFAULT_ALGORITHMS`).  With ``exact`` the family's exact reference is
    added.  Files that are not instances (placements, manifests) are skipped
    with a note unless they are in ``explicit``.  An algorithm unknown to every
    family is an :class:`InputError`; one that does not apply to a file's
    family is skipped with a note.
    """
    from ..instances.io import read_json

    explicit_set = {Path(p).resolve() for p in explicit}
    specs = None if algorithms is None else (parse_algorithms(algorithms) if isinstance(algorithms, str)
                                             else list(algorithms))
    seeds = list(seeds)
    tasks: list[Task] = []
    notes: list[str] = []
    not_instances: list[str] = []
    skipped_alg: dict[tuple[str, str], int] = {}
    known_families: dict[str, list[str]] = {}
    malformed: list[InputError] = []
    for f in files:
        try:
            data = read_json(f)
        except InputError as exc:
            malformed.append(exc)
            continue
        try:
            fam = detect(data, str(f))
        except InputError:
            if Path(f).resolve() in explicit_set:
                raise
            not_instances.append(str(f))
            continue
        try:
            inst = fam.from_dict(data, str(f))
        except InputError as exc:
            malformed.append(exc)
            continue
        names = known_families.setdefault(fam.name, fam.algorithm_names())
        fam_specs = specs if specs is not None else parse_algorithms(DEFAULT_ALGORITHMS[fam.name])
        if exact and not any(n == fam.exact_names[0] and not p for n, p in fam_specs):
            fam_specs = [*fam_specs, (fam.exact_names[0], {})]
        h = inst.content_hash()
        for name, params in fam_specs:
            if name not in names:
                skipped_alg[(name, fam.name)] = skipped_alg.get((name, fam.name), 0) + 1
                continue
            for seed in seeds:
                tasks.append(Task(str(f), fam.name, h, name, canonical_params(params), seed, time_limit))
    if specs is not None:
        all_names = set()
        for fam in FAMILIES.values():
            try:
                all_names.update(fam.algorithm_names())
            except ImportError:
                continue
        unknown = [n for n, _ in specs if n not in all_names]
        if unknown:
            raise InputError("--algorithms", ("", f"unknown algorithm {unknown[0]!r}; valid: "
                                                  f"{', '.join(sorted(all_names))}"))
    if malformed and not tasks:
        raise malformed[0]
    notes += [f"warning: skipped a malformed file: {exc}" for exc in malformed]
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
    return list(uniq.values()), notes


# ------------------------------------------------------------------ executing
_CACHE: OrderedDict[tuple[str, float], tuple[Family, Any]] = OrderedDict()


def _load_cached(path: str) -> tuple[Family, Any]:
    from .families import load

    key = (str(Path(path).resolve()), os.path.getmtime(path))
    if key not in _CACHE:
        _CACHE[key] = load(path)
        while len(_CACHE) > 8:
            _CACHE.popitem(last=False)
    _CACHE.move_to_end(key)
    return _CACHE[key]


def execute_task(task: Task) -> dict[str, Any]:
    """Run one task and return its store row (top-level: picklable for any executor).

    Any exception in the algorithm becomes a row with status ``"error"`` and
    the exception in ``message`` (retried by the next sweep).
    """
    from ..result import versions

    fam, inst = _load_cached(task.path)
    row: dict[str, Any] = {
        "instance_hash": task.instance_hash, "algorithm": task.algorithm, "params": task.params,
        "seed": task.seed, "family": fam.name, "instance_path": task.path, "versions": versions(),
    }
    row.update(fam.describe(inst))
    row["instance_hash"] = task.instance_hash
    row["key"] = task.key
    t0 = time.perf_counter()
    try:
        row.update(fam.run(inst, task.algorithm, seed=task.seed, time_limit=task.time_limit,
                           params=json.loads(task.params)))
    except Exception as exc:  # recorded, never fatal to the sweep
        tb = traceback.format_exc(limit=4)
        row.update({"status": "error", "message": f"{type(exc).__name__}: {exc}", "info": {"traceback": tb}})
    row["wall_s"] = time.perf_counter() - t0
    if task.time_limit is not None:
        info = row.get("info") or {}
        if isinstance(info, dict):
            row["info"] = {**info, "time_limit": task.time_limit}
    return row


def _progress(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="run", desc=desc, disable=not enabled, dynamic_ncols=True,
                file=sys.stderr, smoothing=0.1)


def run_sweep(inputs: Sequence[str | os.PathLike], algorithms: str | Sequence[tuple[str, dict]] | None = None, *,
              db: str | os.PathLike = "results.sqlite", exact: bool = False, seeds: Iterable[int | None] = (0,),
              time_limit: float | None = None, jobs: int = 1, executor: str = "local",
              address: str | None = None, client: Any = None, progress: bool = True,
              limit: int | None = None, on_row: Callable[[dict], None] | None = None,
              log: Callable[[str], None] | None = None, hard_timeout: float | None | str = "auto") -> SweepSummary:
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
    jobs : int
        Local worker processes (1 = in this process).
    executor : {"local", "dask"}
        ``"dask"`` submits to ``client`` or to a new ``distributed.Client(address)``.
    limit : int, optional
        Stop after this many runs (the rest is left for the next sweep).
    on_row : callable, optional
        Called with each row after it is committed.
    progress : bool
        Show the tqdm bar on stderr.
    hard_timeout : float, None or "auto"
        Seconds after which a run's worker process is ended and the run
        stored with status ``timeout`` (local executor; runs then always go
        to worker processes, also with ``jobs=1``).  ``"auto"``:
        :func:`default_hard_timeout` of ``time_limit``; ``None``: no hard
        timeout.

    Returns
    -------
    SweepSummary
    """
    say = log or (lambda s: print(s, file=sys.stderr))
    if hard_timeout == "auto":
        hard_timeout = default_hard_timeout(time_limit)
    explicit = [p for p in inputs if Path(p).is_file()]
    files = resolve_inputs(inputs)
    tasks, notes = plan(files, algorithms, exact=exact, seeds=seeds, time_limit=time_limit, explicit=explicit)
    summary = SweepSummary(planned=len(tasks), notes=notes)
    store = ResultStore(db)
    try:
        done = store.keys()
        pending = [t for t in tasks if t.key not in done]
        summary.skipped = len(tasks) - len(pending)
        if limit is not None:
            pending = pending[:max(0, int(limit))]
        for n in notes:
            say(n)
        bar = _progress(len(pending), progress, "bench")
        state = {"running": 0}

        def finish(row: dict) -> None:
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
                _run_dask(pending, finish, client=client, address=address, state=state)
            elif hard_timeout is None and (jobs <= 1 or len(pending) <= 1):
                for t in pending:
                    state["running"] = 1
                    bar.set_postfix(running=1, left=len(pending) - summary.ran, refresh=True)
                    row = execute_task(t)
                    state["running"] = 0
                    finish(row)
            else:
                _run_pool(pending, finish, jobs=jobs, state=state, hard_timeout=hard_timeout)
        except KeyboardInterrupt:
            summary.interrupted = True
            raise
        finally:
            bar.close()
    finally:
        store.close()
    return summary


def _stopped_row(task: Task, status: str, message: str, elapsed: float, **info: Any) -> dict[str, Any]:
    """The store row of a run that gave no answer: ``timeout`` (its worker was ended) or ``error``."""
    from ..result import versions

    row: dict[str, Any] = {"instance_hash": task.instance_hash, "algorithm": task.algorithm, "params": task.params,
                           "seed": task.seed, "family": task.family, "instance_path": task.path,
                           "versions": versions()}
    try:
        fam, inst = _load_cached(task.path)
        row.update(fam.describe(inst))
    except Exception:  # noqa: BLE001 - the row is still worth storing without the instance columns
        pass
    row.update({"instance_hash": task.instance_hash, "key": task.key, "status": status, "message": message,
                "runtime_s": elapsed, "wall_s": elapsed,
                "info": {**info, **({"time_limit": task.time_limit} if task.time_limit is not None else {})}})
    return row


def _worker_main(conn: Any, registry: dict[str, str], preload: Sequence[str]) -> None:
    """A worker process: run the tasks it is sent until ``None`` (top-level, spawn-safe).

    ``registry`` is the parent's algorithm registry, so algorithms registered
    at run time are known here too; the modules of ``preload`` (the sweep's
    algorithms) are imported before the worker reports ready, so a run's
    clock never pays for them.  Ctrl-C is left to the parent, which ends the
    workers.
    """
    import importlib
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from ..algorithms.registry import REGISTRY

    REGISTRY.update(registry)
    for module in preload:
        try:
            importlib.import_module(module)
        except Exception:  # noqa: BLE001 - the run itself reports it as an error row
            pass
    conn.send("ready")
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        conn.send(execute_task(task))


class _Worker:
    """One worker process and its pipe; ``task`` and ``started`` describe the run it is on."""

    def __init__(self, ctx: Any, registry: dict[str, str], preload: Sequence[str]):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, registry, preload), daemon=True)
        self.proc.start()
        child.close()
        self.ready = False
        self.task: Task | None = None
        self.started = 0.0

    def submit(self, task: Task) -> None:
        self.conn.send(task)
        self.task, self.started = task, time.monotonic()

    def end(self) -> None:
        """End the process now (a hung run, or the sweep is interrupted)."""
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join()
        self.conn.close()

    def close(self) -> None:
        """Let an idle worker exit on its own, then make sure it did."""
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.proc.join(5)
        self.end()


def _run_pool(pending: list[Task], finish: Callable[[dict], None], *, jobs: int, state: dict,
              hard_timeout: float | None = None) -> None:
    """Run ``pending`` on ``jobs`` worker processes, ending any run that passes ``hard_timeout`` seconds.

    A run's clock starts when a worker is handed it, after the worker's
    start-up (imports of the sweep's algorithm modules) is over, so a slow
    start never counts against a run.
    """
    import multiprocessing as mp
    from collections import deque
    from multiprocessing.connection import wait

    from ..algorithms.registry import REGISTRY

    ctx = mp.get_context("spawn")
    registry = dict(REGISTRY)
    preload = sorted({registry[t.algorithm].split(":")[0] for t in pending if t.algorithm in registry})
    queue = deque(pending)
    workers: dict[Any, _Worker] = {}

    def start() -> None:
        w = _Worker(ctx, registry, preload)
        workers[w.conn] = w

    def feed(w: _Worker) -> None:
        """Hand ``w`` the next run, or let it exit when there is none."""
        if queue:
            w.submit(queue.popleft())
        else:
            workers.pop(w.conn)
            w.close()

    def drop(w: _Worker) -> None:
        """End ``w`` (hung or dead) and start a fresh worker when runs are left."""
        workers.pop(w.conn)
        w.end()
        if queue:
            start()

    try:
        for _ in range(max(1, min(jobs, len(queue)))):
            start()
        while workers:
            busy = [w for w in workers.values() if w.task is not None]
            state["running"] = len(busy)
            timeout = None
            if hard_timeout is not None and busy:
                timeout = max(0.0, min(w.started for w in busy) + hard_timeout - time.monotonic())
            for conn in wait(list(workers), timeout=timeout):
                w = workers[conn]
                try:
                    msg = conn.recv()
                except (EOFError, OSError):  # the process died
                    task, elapsed = w.task, time.monotonic() - w.started
                    drop(w)
                    if task is not None:
                        finish(_stopped_row(task, "error", f"the worker process ended without an answer (exit "
                                                           f"code {w.proc.exitcode})", elapsed))
                    continue
                if msg != "ready":
                    w.task = None
                    finish(msg)
                feed(w)
            if hard_timeout is not None:
                now = time.monotonic()
                for w in [w for w in workers.values() if w.task is not None and now - w.started >= hard_timeout]:
                    task, elapsed = w.task, now - w.started
                    drop(w)
                    finish(_stopped_row(task, "timeout", f"no answer within the hard timeout of {hard_timeout:g} s;"
                                                         f" the worker process was ended", elapsed,
                                        hard_timeout=hard_timeout))
    finally:
        for w in list(workers.values()):
            w.end()


def _run_dask(pending: list[Task], finish: Callable[[dict], None], *, client: Any, address: str | None,
              state: dict) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError:  # pragma: no cover - optional extra
        raise InputError("--executor", ("", "dask needs the optional extra: pip install 'slimcaching[dask]'")) from None
    own = client is None
    if own:
        client = Client(address) if address else Client(processes=False)
    try:
        window = max(1, 2 * sum(client.nthreads().values()))
        it = iter(pending)
        first = [client.submit(execute_task, t, pure=False) for _, t in zip(range(window), it)]
        ac = as_completed(first)
        state["running"] = len(first)
        for fut in ac:
            nxt = next(it, None)
            if nxt is not None:
                ac.add(client.submit(execute_task, nxt, pure=False))
            state["running"] = ac.count()
            finish(fut.result())
    finally:
        if own:
            client.close()
