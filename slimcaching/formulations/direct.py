"""Solving :class:`~slimcaching.formulations.arrays.LevelArrays` with highspy directly.

Used where Pyomo's per-model overhead would dominate (decomposition pricing,
large-neighbourhood search, the large LPs of ``certify``).  Three rules keep
every number it returns honest:

* **LP bounds are recomputed from the duals** (:func:`safe_lp_bound`): weak
  duality with the ``[0, 1]`` box turns *any* row dual vector into a valid
  lower bound, so an LP bound does not rest on HiGHS's tolerances.
* **No ``setSolution``.**  With HiGHS 1.16, a complete and feasible start
  vector handed over with ``setSolution`` came back as the "optimal" solution
  with an objective below the true optimum (2 of 1089 checked solves on the
  random test instances, e.g. start ``T = 5.048``, reported ``4.652``, optimum
  ``4.658``).  A start is given as an objective cutoff instead
  (``objective_bound``), which never mismatched; the caller keeps the start as
  its incumbent when HiGHS finds nothing better.
* **One thread scheduler.**  HiGHS keeps one global scheduler; after a solve
  with more threads (e.g. through Pyomo with the default) a ``threads = 1``
  run fails.  :func:`run` resets the scheduler and retries once.

Limits and Ctrl-C
-----------------
These solves run in-process (thousands of small warm-started models would
not pay for a process each), so :func:`run` keeps two promises itself:

* inside :func:`hard_deadline` every run's HiGHS ``time_limit`` is cut to
  what is left until the deadline when it starts, and an interrupt callback
  stops HiGHS once the deadline has passed, whatever limit the caller set;
* ``SIGINT`` / ``SIGTERM`` during a run are held back, HiGHS is stopped at its
  next callback (``kInterrupt``), and the signal is delivered again, to the
  handler that was in place, as soon as ``run`` returns; so the caller's
  Ctrl-C handling (``KeyboardInterrupt``) never fires inside HiGHS.

HiGHS looks at both between the steps of its algorithms (simplex iterations,
branch-and-bound nodes), not inside one step such as presolve or one
factorisation; ``benchmarks/perf_solver.py`` measures how far past a limit
the methods built on these solves return.
"""
from __future__ import annotations

import contextlib
import contextvars
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Iterator

import highspy
import numpy as np

from .arrays import LevelArrays

__all__ = ["DirectSolve", "new_highs", "to_highs", "run", "solve_arrays", "safe_lp_bound", "HIGHS_OPTIONS",
           "hard_deadline", "ISOLATE_ROWS"]

HIGHS_OPTIONS: dict[str, object] = {
    "output_flag": False,
    "mip_rel_gap": 1e-9,
    "mip_abs_gap": 0.0,
    "dual_feasibility_tolerance": 1e-9,
    "primal_feasibility_tolerance": 1e-9,
    "mip_feasibility_tolerance": 1e-9,
}
"""Options of every direct solve (objective scaled to about ``1e4``, see :mod:`.arrays`)."""


_BANNER_SHOWN = False

ISOLATE_ROWS = 10_000
"""Models built by :func:`solve_arrays` with at least this many rows are solved in a child process."""


def new_highs() -> highspy.Highs:
    """A silent ``highspy.Highs`` with :data:`HIGHS_OPTIONS`.

    HiGHS prints its banner to the process's standard output when the first
    object is created, before any option can switch output off; that would
    corrupt JSON written to stdout (``slimcaching certify``) and add lines to
    the one-line messages of the command line, so the first construction runs
    with file descriptor 1 pointed at the null device.
    """
    global _BANNER_SHOWN
    if _BANNER_SHOWN:
        h = highspy.Highs()
    else:
        sys.stdout.flush()
        saved = os.dup(1)
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 1)
            h = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(null)
        _BANNER_SHOWN = True
    for k, v in HIGHS_OPTIONS.items():
        h.setOptionValue(k, v)
    return h


@dataclass
class DirectSolve:
    """What one HiGHS run returned (latencies in seconds).

    ``objective`` is the solver's incumbent (``None`` without one), ``bound`` its
    dual bound (MILP) or LP value, ``safe_bound`` the rigorous LP bound from the
    duals (LP only), ``col_value`` / ``row_dual`` the raw vectors.
    """

    status: str
    objective: float | None
    bound: float | None
    safe_bound: float | None
    col_value: np.ndarray | None
    row_dual: np.ndarray | None
    wall_s: float
    nodes: int | None = None


def to_highs(model: LevelArrays, *, integer: bool, threads: int | None = 1, time_limit: float | None = None,
             mip_gap: float | None = None, seed: int | None = None, node_limit: int | None = None) -> highspy.Highs:
    """A ``highspy.Highs`` holding ``model`` (``x`` integer when ``integer``; ``node_limit``: ``mip_max_nodes``)."""
    h = new_highs()
    if threads is not None:
        h.setOptionValue("threads", int(threads))
    if mip_gap is not None:
        h.setOptionValue("mip_rel_gap", float(mip_gap))
    if time_limit is not None:
        h.setOptionValue("time_limit", float(max(time_limit, 0.01)))
    if seed is not None:
        h.setOptionValue("random_seed", int(seed) % 2147483647)
    if node_limit is not None:
        h.setOptionValue("mip_max_nodes", int(node_limit))
    lp = highspy.HighsLp()
    lp.num_col_ = model.n_cols
    lp.num_row_ = model.n_rows
    lp.col_cost_ = model.obj
    lp.col_lower_ = np.zeros(model.n_cols)
    lp.col_upper_ = np.ones(model.n_cols)
    lp.row_lower_ = np.where(np.isfinite(model.row_lo), model.row_lo, -highspy.kHighsInf)
    lp.row_upper_ = model.row_hi
    lp.offset_ = model.offset
    start, index, value = model.A.csc()
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = start
    lp.a_matrix_.index_ = index
    lp.a_matrix_.value_ = value
    lp.a_matrix_.num_col_ = model.n_cols
    lp.a_matrix_.num_row_ = model.n_rows
    if integer:
        kinds = [highspy.HighsVarType.kContinuous] * model.n_cols
        kinds[:model.n_x] = [highspy.HighsVarType.kInteger] * model.n_x
        lp.integrality_ = kinds
    h.passModel(lp)
    return h


_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("slimcaching_highs_deadline",
                                                                         default=None)
"""The innermost :func:`hard_deadline` (a ``time.perf_counter()`` value), per thread."""

_HELD: dict = {"signal": None}
"""A signal held back while HiGHS runs (signals are delivered to the main thread only)."""


@contextlib.contextmanager
def hard_deadline(deadline: float | None) -> Iterator[None]:
    """Every HiGHS run through :func:`run` inside the block stops by ``deadline``.

    ``deadline`` is a ``time.perf_counter()`` value (``None``: no limit); nested
    blocks keep the earlier of the two deadlines.
    """
    outer = _DEADLINE.get()
    token = _DEADLINE.set(deadline if outer is None else outer if deadline is None else min(outer, deadline))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def _interrupt(e) -> None:
    """HiGHS interrupt callback: stop on a held-back signal or past the hard deadline."""
    deadline = _DEADLINE.get()
    if _HELD["signal"] is not None or (deadline is not None and time.perf_counter() > deadline):
        e.interrupt()


def _watch(h: highspy.Highs) -> None:
    """Subscribe :func:`_interrupt` to ``h``'s simplex, IPM and MIP interrupt callbacks (once)."""
    if getattr(h, "_slimcaching_watched", False):
        return
    h.cbSimplexInterrupt += _interrupt
    h.cbIpmInterrupt += _interrupt
    h.cbMipInterrupt += _interrupt
    h._slimcaching_watched = True


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT / SIGTERM only recorded while HiGHS runs (main thread), then delivered again."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def hold(signum, frame):
        _HELD["signal"] = signum

    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        prev = signal.getsignal(sig)
        if prev is signal.SIG_IGN or prev is None:
            continue
        old[sig] = signal.signal(sig, hold)
    try:
        yield
    finally:
        for sig, prev in old.items():
            signal.signal(sig, prev)
        pending, _HELD["signal"] = _HELD["signal"], None
        if pending is not None:
            signal.raise_signal(pending)  # the restored handler raises (KeyboardInterrupt) right here


def _run_without_presolve(h: highspy.Highs) -> bool:
    """``h.run()`` with presolve off (then restored); whether it ended without an error status."""
    presolve = h.getOptionValue("presolve")[1]
    if presolve == "off":
        return False
    h.setOptionValue("presolve", "off")
    try:
        return h.run() != highspy.HighsStatus.kError
    finally:
        h.setOptionValue("presolve", presolve)


def run(h: highspy.Highs) -> None:
    """``h.run()`` within the current :func:`hard_deadline`, with Ctrl-C held back until it returns.

    On an error status HiGHS's thread scheduler is reset and the run retried
    once; if that fails too, once more with presolve off (HiGHS 1.16 ends
    some MILPs with ``Solve error`` in presolve: a one-layer pricing MILP of
    ``mixed-phi-3.5-moe-wifi-rtx-L8`` at certain prices, which solves to
    optimality without it; presolve changes how the model is solved, not
    the model).  The ``time_limit`` option of ``h`` is cut to the time left
    before the run and restored after it.

    Raises
    ------
    RuntimeError
        The retry failed too.
    KeyboardInterrupt
        (from the restored handler) ``SIGINT`` arrived during the run.
    """
    _watch(h)
    deadline = _DEADLINE.get()
    limit = None
    if deadline is not None:
        limit = h.getOptionValue("time_limit")[1]
        h.setOptionValue("time_limit", float(max(0.001, min(limit, deadline - time.perf_counter()))))
    try:
        with _signals_held():
            if h.run() == highspy.HighsStatus.kError and _HELD["signal"] is None:
                h.resetThreadScheduler(False)
                failed = h.run() == highspy.HighsStatus.kError
                if failed and _HELD["signal"] is None:
                    failed = not _run_without_presolve(h)
                if failed:
                    raise RuntimeError(f"HiGHS failed: {h.modelStatusToString(h.getModelStatus())}")
    finally:
        if limit is not None:
            h.setOptionValue("time_limit", float(limit))


def safe_lp_bound(model: LevelArrays, row_dual: np.ndarray, obj: np.ndarray | None = None) -> float:
    """A rigorous lower bound (seconds) on the LP of ``model`` from any row dual vector ``y``.

    ``obj`` is the scaled cost vector the LP was solved with (default
    ``model.obj``; pass it when the costs were changed in HiGHS, e.g. prices).

    Notes
    -----
    For ``min c v`` s.t. ``lo <= A v <= hi``, ``0 <= v <= 1`` and any ``y``
    with ``y_i <= 0`` on rows without a lower side (components of the wrong
    sign are set to 0): for every feasible ``v``,
    ``c v = y A v + d v >= sum_i y_i (lo_i if y_i > 0 else hi_i) + sum_j min(0, d_j)``
    with ``d = c - A^T y``.  This holds however inaccurate ``y`` is; sums are
    taken with ``math.fsum``.

    References
    ----------
    .. [1] A. Neumaier, O. Shcherbina, "Safe bounds in linear and mixed-integer
       linear programming", Mathematical Programming 99, 2004.
    """
    y = np.asarray(row_dual, dtype=float).copy()
    lo_ok = np.isfinite(model.row_lo)
    y[(y > 0) & ~lo_ok] = 0.0
    d = (model.obj if obj is None else np.asarray(obj, dtype=float)) - model.A.rmatvec(y)
    side = np.where(y > 0, np.where(lo_ok, model.row_lo, 0.0), model.row_hi)
    total = math.fsum((y * side).tolist()) + math.fsum(np.minimum(d, 0.0).tolist()) + model.offset
    return model.latency(total)


def solve_arrays(model: LevelArrays, *, integer: bool, time_limit: float | None = None, threads: int | None = 1,
                 mip_gap: float | None = None, cutoff: float | None = None, seed: int | None = None,
                 h: highspy.Highs | None = None, obj: np.ndarray | None = None,
                 node_limit: int | None = None) -> DirectSolve:
    """Solve ``model`` (LP or MILP) with HiGHS.

    Parameters
    ----------
    cutoff : float, optional
        A latency (seconds) known to be achievable: HiGHS's ``objective_bound``,
        so it only looks for better solutions.  If it returns none, nothing
        better than the cutoff exists within what it explored.
    h : highspy.Highs, optional
        A prepared object (e.g. with changed costs); built from ``model`` otherwise.
    obj : float (n_cols,), optional
        The scaled costs ``h`` holds when they differ from ``model.obj`` (for the safe LP bound).
    node_limit : int, optional
        HiGHS ``mip_max_nodes`` of a model built here (a work limit).

    Notes
    -----
    A model built here with at least :data:`ISOLATE_ROWS` rows is solved in a
    child process (:func:`_solve_in_child`): HiGHS went 14 s between two
    interrupt callbacks on a 100 000-row level model, so only a process that
    can be killed keeps a deadline and Ctrl-C there.
    """
    t = time.perf_counter()
    if h is None and model.n_rows >= ISOLATE_ROWS and hasattr(os, "fork"):
        return _solve_in_child(model, integer=integer, time_limit=time_limit, threads=threads, mip_gap=mip_gap,
                               cutoff=cutoff, seed=seed, node_limit=node_limit)
    if h is None:
        h = to_highs(model, integer=integer, threads=threads, time_limit=time_limit, mip_gap=mip_gap, seed=seed,
                     node_limit=node_limit)
    elif time_limit is not None:
        h.setOptionValue("time_limit", float(max(time_limit, 0.01)))
    if cutoff is not None:
        h.setOptionValue("objective_bound", float(cutoff * model.scale))
    run(h)
    wall = time.perf_counter() - t
    status = h.modelStatusToString(h.getModelStatus())
    info = h.getInfo()
    if integer:
        obj = info.objective_function_value
        has = info.primal_solution_status >= 1 and math.isfinite(obj) and abs(obj) < highspy.kHighsInf
        bnd = info.mip_dual_bound
        return DirectSolve(status, model.latency(obj) if has else None,
                           model.latency(bnd) if math.isfinite(bnd) and abs(bnd) < highspy.kHighsInf else None,
                           None, np.array(h.getSolution().col_value) if has else None, None, wall,
                           nodes=int(info.mip_node_count))
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return DirectSolve(status, None, None, None, None, None, wall)
    sol = h.getSolution()
    y = np.array(sol.row_dual)
    value = model.latency(info.objective_function_value)
    return DirectSolve(status, value, value, safe_lp_bound(model, y, obj), np.array(sol.col_value), y, wall)


def _solve_in_child(model: LevelArrays, *, integer: bool, time_limit: float | None, **kwargs) -> DirectSolve:
    """:func:`solve_arrays` in a forked child; the parent keeps the clock and Ctrl-C.

    The child solves with HiGHS's own limit (what is left of the time limit
    and of the :func:`hard_deadline`) and sends the :class:`DirectSolve` back.
    While a MILP runs it also streams what HiGHS has proved and found
    (:func:`_stream_progress`): each rise of the dual bound and each improving
    incumbent.  The parent waits until that limit plus
    :data:`~slimcaching.solvers.GRACE_S`; then it kills the child and returns
    status ``Time limit reached`` with the last streamed bound and incumbent
    (``None`` where nothing was streamed).  HiGHS does not always come back
    within the grace: a 600 s ``certify`` of ``mixed-phi-3.5-moe-5g-device``
    beside other jobs lost 290 s of branch-and-bound that way before the
    stream existed.  A ``KeyboardInterrupt`` in the parent (Ctrl-C) kills
    the child and propagates.
    """
    import multiprocessing

    from ..solvers import GRACE_S, _die_with_parent

    t = time.perf_counter()
    ends = [e for e in (_DEADLINE.get(), None if time_limit is None else t + float(time_limit)) if e is not None]
    end = min(ends) if ends else None
    reader, writer = multiprocessing.Pipe(duplex=False)
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child (coverage does not follow a fork)
        code = 0
        try:
            reader.close()
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; a terminal's Ctrl-C reaches both
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            _die_with_parent(parent)
            null = os.open(os.devnull, os.O_RDWR)  # nothing of the child reaches the parent's terminal
            os.dup2(null, 1)
            os.dup2(null, 2)
            _DEADLINE.set(end)
            highspy.Highs.resetThreadScheduler(False)
            left = None if end is None else max(0.01, end - time.perf_counter())
            h = to_highs(model, integer=integer, time_limit=left,
                         **{k: kwargs.get(k) for k in ("threads", "mip_gap", "seed", "node_limit")})
            if integer:
                _stream_progress(h, model.n_cols, writer.send)
            writer.send(("done", solve_arrays(model, integer=integer, time_limit=left, h=h,
                                              cutoff=kwargs.get("cutoff"))))
        except BaseException as exc:  # noqa: BLE001 - the parent raises it again
            code = 1
            with contextlib.suppress(Exception):
                writer.send(("error", RuntimeError(f"HiGHS in a child process failed: {exc!r}")))
        finally:
            os._exit(code)
    writer.close()
    answer = None
    streamed: dict = {"bound": None, "objective": None, "col_value": None, "nodes": None}
    try:
        while answer is None:
            wait = 0.05 if end is None else min(0.05, max(0.0, end + GRACE_S - time.perf_counter()))
            if reader.poll(wait):
                try:
                    kind, *payload = reader.recv()
                except (EOFError, OSError):
                    break
                if kind in ("done", "error"):
                    answer = payload[0]
                elif kind == "bound":
                    streamed["bound"], streamed["nodes"] = payload
                else:  # "incumbent"
                    streamed["objective"], streamed["col_value"] = payload
                continue
            if end is not None and time.perf_counter() >= end + GRACE_S:
                break
    finally:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        reader.close()
    if isinstance(answer, BaseException):
        raise answer
    if answer is None:
        has = streamed["col_value"] is not None
        bound = streamed["bound"]
        return DirectSolve("Time limit reached", model.latency(streamed["objective"]) if has else None,
                           None if bound is None else model.latency(bound), None,
                           streamed["col_value"] if has else None, None, time.perf_counter() - t,
                           nodes=streamed["nodes"])
    answer.wall_s = time.perf_counter() - t
    return answer


def _stream_progress(h: highspy.Highs, n_cols: int, send) -> None:
    """Send each rise of ``h``'s MILP dual bound and each improving incumbent through ``send``, as HiGHS finds them.

    ``send`` gets ``("bound", dual bound, nodes)`` (scaled objective, as
    ``info.mip_dual_bound``) from the MIP interrupt callback when the bound
    has risen, and ``("incumbent", objective, col_value)`` from the
    improving-solution callback.  A dual bound that HiGHS reports during its
    search is a lower bound on the MILP's optimum (every open node's bound is
    at least it), so the last one sent is valid wherever the solve ends; an
    incumbent is HiGHS's feasible point of the model (callers evaluate it as
    they evaluate a final one).  Vectors of another length (not in the
    model's space) are not sent.
    """
    last = {"bound": -math.inf}

    def on_interrupt(e) -> None:
        b = e.data_out.mip_dual_bound
        if math.isfinite(b) and abs(b) < highspy.kHighsInf and b > last["bound"]:
            last["bound"] = b
            send(("bound", float(b), int(e.data_out.mip_node_count)))

    def on_solution(e) -> None:
        obj = e.data_out.objective_function_value
        sol = np.asarray(e.data_out.mip_solution, dtype=float)
        if sol.size == n_cols and math.isfinite(obj) and abs(obj) < highspy.kHighsInf:
            send(("incumbent", float(obj), sol.copy()))

    h.cbMipInterrupt += on_interrupt
    h.cbMipImprovingSolution += on_solution
