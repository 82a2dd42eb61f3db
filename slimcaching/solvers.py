"""The MILP back end shared by both problem families: a Pyomo model solved in a child process.

Pyomo's ``contrib.solver`` interface reports *why* a solve stopped (a
termination condition) apart from *what* it has (a solution status).  Both
families translate the termination condition into
:class:`~slimcaching.result.Status` through one table, :data:`TERMINATION`;
anything not in the table becomes ``unknown``, with the raw condition kept in
the message (as scipy's ``milp`` keeps the back end's status code).  Solvers
behind Pyomo's older interface report a legacy condition, which
:data:`LEGACY_TERMINATION` first maps onto the same enum.

Why a child process
-------------------
HiGHS checks its time limit and its interrupt callbacks between the steps of
its algorithms, not inside them: one root LP of a 16 x 16, ``K = 2`` level
model ran 27 s without a single callback, and the measurements in
``docs/formulations.md`` show HiGHS 60 s past its limit.  Building and
loading a large Pyomo model cannot be interrupted either.  So
:func:`start_solve` forks a child that builds the model, loads it, solves it
and streams what it finds (improving incumbents and dual bounds) through a
pipe; the parent keeps the clock:

* at the deadline it asks the child to stop (``SIGTERM``: HiGHS is told to
  interrupt at its next callback), waits :data:`GRACE_S` for the final answer
  and then kills it, keeping the last incumbent and bound the child streamed;
* ``SIGINT`` (Ctrl-C) does the same, and the report says ``interrupted``;
* a node limit (``mip_max_nodes``) is HiGHS's own, deterministic for a fixed
  seed and ``threads=1`` (each solve starts in a fresh child, so no state
  survives from an earlier solve);
* the child dies with the parent (``PR_SET_PDEATHSIG``), writes nothing to
  the parent's stdout or stderr, and Pyomo's output capture runs only in the
  child.

Where ``fork`` is not available (or with ``isolate=False``) the same work runs
in-process: limits are then HiGHS's own and Ctrl-C is honoured at HiGHS's
next callback.

No MIP start is handed to HiGHS: with HiGHS 1.16, ``setSolution`` followed by
a solve that ends at the root returned the start's column values with the
objective of a better solution (caught by the caching solver's evaluator
cross-check on a 3-node instance).
"""
from __future__ import annotations

import contextlib
import gc
import io
import logging
import math
import os
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from pyomo.contrib.solver.common.results import (SolutionStatus, TerminationCondition,
                                                  legacy_termination_condition_map)
from pyomo.opt import TerminationCondition as LegacyTerminationCondition

from .errors import InputError, Terminated
from .result import Status

__all__ = ["TERMINATION", "LEGACY_TERMINATION", "translate_status", "highs", "SolveInterrupted",
           "SolveReport", "PendingSolve", "start_solve", "solve_model", "available_solvers", "check_solver",
           "parse_solver_options", "DEFAULT_SOLVER", "GRACE_S"]

DEFAULT_SOLVER = "highs"

TERMINATION: dict[TerminationCondition, Status] = {
    TerminationCondition.convergenceCriteriaSatisfied: Status.OPTIMAL,
    TerminationCondition.maxTimeLimit: Status.TIME_LIMIT,
    TerminationCondition.iterationLimit: Status.FEASIBLE,
    TerminationCondition.objectiveLimit: Status.FEASIBLE,
    TerminationCondition.interrupted: Status.FEASIBLE,
    TerminationCondition.provenInfeasible: Status.INFEASIBLE,
    TerminationCondition.locallyInfeasible: Status.INFEASIBLE,
    TerminationCondition.infeasibleOrUnbounded: Status.INFEASIBLE,
}
"""Pyomo termination condition -> :class:`Status`; anything else is ``unknown``.

A caller downgrades ``FEASIBLE`` or ``OPTIMAL`` when there is no incumbent or
when the closed gap is larger than its tolerance; ``FEASIBLE`` always comes
with the solver's bound.  A node limit is an ``iterationLimit`` (HiGHS's
``kSolutionLimit``), so it gives ``feasible``.
"""

LEGACY_TERMINATION: dict[LegacyTerminationCondition, TerminationCondition] = {
    **{legacy: new for new, legacy in legacy_termination_condition_map.items()},
    LegacyTerminationCondition.infeasible: TerminationCondition.provenInfeasible,
    LegacyTerminationCondition.maxEvaluations: TerminationCondition.iterationLimit,
    LegacyTerminationCondition.userInterrupt: TerminationCondition.interrupted,
    LegacyTerminationCondition.globallyOptimal: TerminationCondition.convergenceCriteriaSatisfied,
    LegacyTerminationCondition.locallyOptimal: TerminationCondition.convergenceCriteriaSatisfied,
}
"""Legacy Pyomo termination condition (``pyomo.opt``) -> the ``contrib.solver`` condition
that :data:`TERMINATION` translates (Pyomo's own map, inverted, plus the legacy-only names)."""

GRACE_S = 0.5
"""Seconds a child gets to report its final answer after it was asked to stop, before it is killed."""

CANCEL_DELAY_S = 0.25
"""Seconds after the deadline before the parent asks the child to stop (HiGHS's own time
limit, set to the deadline, usually ends the solve first and with a complete answer)."""

_POLL_S = 0.05
_BOUND_EVERY_S = 0.2

KNOWN_SOLVERS = ("highs", "appsi_highs", "gurobi", "gurobi_direct", "gurobi_persistent", "appsi_gurobi",
                 "cplex", "cplex_direct", "appsi_cplex", "xpress", "scip", "cbc", "appsi_cbc", "glpk", "mosek",
                 "copt")
"""Names tried when listing the MILP solvers Pyomo can reach on this machine."""

_TIME_LIMIT_OPTION = {"cbc": "sec", "glpk": "tmlim", "scip": "limits/time", "gurobi": "TimeLimit",
                      "gurobi_direct": "TimeLimit", "gurobi_persistent": "TimeLimit", "cplex": "timelimit",
                      "cplex_direct": "timelimit"}
"""Solver-specific name of the time-limit option, for solvers behind Pyomo's legacy interface."""


def translate_status(results) -> tuple[Status, bool, str]:
    """Solve results -> (``Status`` through :data:`TERMINATION`, has a solution, message).

    ``results`` is a Pyomo ``contrib.solver`` results object or a
    :class:`SolveReport`.  The message keeps the raw termination condition and
    solution status; an unrecognised condition becomes ``unknown``.  Used by
    every solve of the project (both caching MILPs and the MoE² MILP).
    """
    tc = results.termination_condition
    status = TERMINATION.get(tc, Status.UNKNOWN)
    has_solution = results.solution_status in (SolutionStatus.optimal, SolutionStatus.feasible)
    name = getattr(results, "solver", None) or "HiGHS"
    message = f"{'HiGHS' if name == 'highs' else name}: {tc.name}, solution {results.solution_status.name}"
    if status is Status.UNKNOWN:
        message = f"unrecognised termination condition {tc!r}; " + message
    return status, has_solution, message


class SolveInterrupted(KeyboardInterrupt):
    """Ctrl-C (``SIGINT``) or ``SIGTERM`` stopped a solve; ``result`` holds what was found so far.

    A subclass of ``KeyboardInterrupt``, so code that does not know it treats
    it as any Ctrl-C; the command line writes ``result`` before it exits 130
    (143 for ``SIGTERM``).
    """

    def __init__(self, result: Any = None, message: str = "interrupted", signum: int | None = None):
        super().__init__(message)
        self.result = result
        self.signum = signum  # None: not known here (the command line remembers the first signal)


# ------------------------------------------------------------------ solver names and options
def _legacy_factory(name: str):
    import pyomo.environ as pyo

    with _quiet_logger("pyomo"):
        return pyo.SolverFactory(name)


def _is_available(name: str) -> bool:
    if name == DEFAULT_SOLVER:
        return True
    try:
        opt = _legacy_factory(name)
        return bool(opt.available(exception_flag=False)) and type(opt).__name__ != "UnknownSolver"
    except Exception:  # noqa: BLE001 - a broken plugin is an unavailable solver
        return False


def available_solvers() -> list[str]:
    """The names of :data:`KNOWN_SOLVERS` that Pyomo can run on this machine (``highs`` first)."""
    return [n for n in KNOWN_SOLVERS if _is_available(n)]


def check_solver(name: str) -> None:
    """Raise ``InputError`` (one line, exit 2) unless Pyomo can run the solver ``name``."""
    if not isinstance(name, str) or not name or not _is_available(name):
        raise InputError("--solver", ("", f"solver {name!r} is not available; available: "
                                          f"{', '.join(available_solvers())}"))


def parse_solver_options(items: Sequence[str] | dict | None) -> dict[str, Any]:
    """``KEY=VALUE`` strings (``--solver-option``) or a dict -> options; numbers and booleans are parsed."""
    if items is None:
        return {}
    if isinstance(items, dict):
        return dict(items)
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise InputError("--solver-option", ("", f"expected KEY=VALUE, got {item!r}"))
        out[key.strip()] = _option_value(value.strip())
    return out


def _option_value(text: str) -> Any:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


# ------------------------------------------------------------------ the report
@dataclass
class SolveReport:
    """What one solve found, whether it finished, was stopped, or its process was killed.

    Attributes
    ----------
    solver, solver_version : str, str or None
    termination_condition : TerminationCondition
    solution_status : SolutionStatus
    values : float64 array or None   values of the watched variables in the incumbent.
    objective : float or None        the solver's objective of that incumbent.
    bound : float or None            the solver's dual bound (minimisation: a lower bound).
    stopped_by : str or None         ``time_limit``, ``node_limit``, ``interrupt`` or ``None``
                                     (the solver finished on its own criteria).
    killed : bool                    the child did not answer in time and was killed; ``values``
                                     and ``bound`` are the last ones it streamed.
    incumbent_streamed : bool        ``values`` came from an improving-solution callback.
    node_count, solver_time_s, build_time_s, load_time_s, n_variables, n_constraints
    isolated : bool                  the solve ran in a child process.
    options : dict                   the solver options it ran with.
    exit_code : int or None          see below.
    """

    solver: str = DEFAULT_SOLVER
    solver_version: str | None = None
    termination_condition: TerminationCondition = TerminationCondition.unknown
    solution_status: SolutionStatus = SolutionStatus.noSolution
    values: np.ndarray | None = None
    objective: float | None = None
    bound: float | None = None
    stopped_by: str | None = None
    killed: bool = False
    incumbent_streamed: bool = False
    node_count: int | None = None
    solver_time_s: float | None = None
    build_time_s: float | None = None
    load_time_s: float | None = None
    n_variables: int | None = None
    n_constraints: int | None = None
    isolated: bool = True
    options: dict = field(default_factory=dict)
    exit_code: int | None = None
    signal: int | None = None  # SIGINT or SIGTERM, when one stopped the solve
    """Set when the solver process ended by itself without an answer (negative: the signal)."""

    @property
    def interrupted(self) -> bool:
        return self.stopped_by == "interrupt"


def _finite(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


class _Quiet:
    def __init__(self, name: str):
        self.logger = logging.getLogger(name)

    def __enter__(self):
        self.level = self.logger.level
        self.logger.setLevel(logging.CRITICAL)

    def __exit__(self, *exc):
        self.logger.setLevel(self.level)


def _quiet_logger(name: str) -> _Quiet:
    return _Quiet(name)


# ------------------------------------------------------------------ work done in the child
class _Child:
    """The child's side: build, load, solve, stream.  ``send`` takes one tuple per event."""

    def __init__(self, build: Callable[[], tuple[Any, list]], send: Callable[[tuple], None], *, solver: str,
                 deadline: float | None, node_limit: int | None, rel_gap: float | None, threads: int | None,
                 seed: int | None, options: dict[str, Any]):
        self.build, self.send = build, send
        self.solver, self.deadline, self.node_limit = solver, deadline, node_limit
        self.rel_gap, self.threads, self.seed, self.options = rel_gap, threads, seed, options
        self.cancel = threading.Event()
        self.phase = "build"

    def left(self) -> float | None:
        return None if self.deadline is None else max(0.01, self.deadline - time.perf_counter())

    def run(self) -> None:
        t0 = time.perf_counter()
        model, watch = self.build()
        self.send(("built", {"build_time_s": time.perf_counter() - t0, "n_variables": model.nvariables(),
                             "n_constraints": model.nconstraints()}))
        if self.cancel.is_set():
            return
        if self.solver == DEFAULT_SOLVER:
            self._highs(model, watch)
        else:
            self._legacy(model, watch)

    # -- HiGHS through Pyomo's contrib interface, with streaming callbacks
    def _highs(self, model, watch) -> None:
        child = self
        from pyomo.contrib.solver.solvers.highs import Highs

        class _Streaming(Highs):
            def _solve(self):
                return child._run_highs(self, watch)

        options: dict[str, Any] = dict(self.options)
        if self.seed is not None:
            options.setdefault("random_seed", int(self.seed) % 2147483647)
        if self.node_limit is not None:
            options["mip_max_nodes"] = int(self.node_limit)
        self.highs_options = options
        self.t_load = time.perf_counter()
        with _quiet_logger("pyomo.contrib.solver"):
            results = _Streaming().solve(model, load_solutions=False, raise_exception_on_nonoptimal_result=False)
        self._send_final(results, watch)

    def _run_highs(self, solver, watch):
        """Replaces Pyomo's ``Highs._solve``: options, callbacks, run, Pyomo's own post-processing."""
        h = solver._solver_model
        self.send(("loaded", {"load_time_s": time.perf_counter() - self.t_load}))
        settings: dict[str, Any] = {"output_flag": False, "log_to_console": False, "mip_abs_gap": 0.0}
        if self.threads is not None:
            settings["threads"] = int(self.threads)
        if self.rel_gap is not None:
            settings["mip_rel_gap"] = float(self.rel_gap)
        if self.deadline is not None:
            settings["time_limit"] = self.left()
        settings.update(self.highs_options)
        for key, value in settings.items():
            status = h.setOptionValue(key, value)
            if str(status).endswith("kError"):
                raise InputError("--solver-option", ("", f"HiGHS rejects option {key}={value!r}"))
        cols = np.array([solver._pyomo_var_to_solver_var_map[id(v)] for v in watch], dtype=np.int64)
        last = {"bound": None, "t": 0.0}

        def interrupt(e) -> None:
            if self.cancel.is_set():
                e.interrupt()

        def mip_interrupt(e) -> None:
            interrupt(e)
            b = e.data_out.mip_dual_bound
            now = time.perf_counter()
            if b != last["bound"] and now - last["t"] >= _BOUND_EVERY_S:
                last["bound"], last["t"] = b, now
                self.send(("bound", _finite(b)))

        def improving(e) -> None:
            sol = np.asarray(e.data_out.mip_solution, dtype=float)
            if sol.size > (cols.max() if cols.size else -1):
                self.send(("incumbent", _finite(e.data_out.objective_function_value), sol[cols],
                           _finite(e.data_out.mip_dual_bound)))

        h.cbSimplexInterrupt += interrupt
        h.cbIpmInterrupt += interrupt
        h.cbMipInterrupt += mip_interrupt
        h.cbMipImprovingSolution += improving
        self.phase = "solve"
        timer = solver._active_config.timer
        timer.start("optimize")
        h.run()
        timer.stop("optimize")
        self.phase = "report"
        return solver._postsolve(io.StringIO())

    def _send_final(self, results, watch) -> None:
        values = None
        if results.solution_status in (SolutionStatus.optimal, SolutionStatus.feasible):
            prim = results.solution_loader.get_vars(vars_to_load=watch)
            values = np.array([prim[v] for v in watch], dtype=float)
        tc = results.termination_condition
        if tc is TerminationCondition.unknown and self.cancel.is_set():
            tc = TerminationCondition.interrupted  # HiGHS's kInterrupt, which Pyomo does not map
        extra = results.extra_info
        self.send(("done", {
            "termination_condition": tc, "solution_status": results.solution_status,
            "objective": _finite(results.incumbent_objective), "bound": _finite(results.objective_bound),
            "values": values, "node_count": getattr(extra, "mip_node_count", None),
            "solver_time_s": getattr(results.timing_info, "highs_time", None),
            "solver_version": ".".join(map(str, results.solver_version)) if results.solver_version else None,
        }))

    # -- any other solver through Pyomo's legacy SolverFactory
    def _legacy(self, model, watch) -> None:
        import pyomo.environ as pyo

        opt = _legacy_factory(self.solver)
        options = dict(self.options)
        if self.deadline is not None and self.solver in _TIME_LIMIT_OPTION:
            options.setdefault(_TIME_LIMIT_OPTION[self.solver], max(1, math.ceil(self.left())))
        kwargs: dict[str, Any] = {"load_solutions": False, "tee": False}
        if options:
            kwargs["options"] = options
        if self.deadline is not None and self.solver not in _TIME_LIMIT_OPTION:
            kwargs["timelimit"] = self.left()
        self.send(("loaded", {"load_time_s": None}))
        self.phase = "solve"
        t = time.perf_counter()
        with _quiet_logger("pyomo"):
            results = opt.solve(model, **kwargs)
        elapsed = time.perf_counter() - t
        self.phase = "report"
        legacy = results.solver.termination_condition
        tc = LEGACY_TERMINATION.get(legacy, TerminationCondition.unknown)
        values, objective = None, None
        if len(results.solution) > 0:
            model.solutions.load_from(results)
            vals = [v.value for v in watch]
            if all(v is not None for v in vals):
                values = np.array(vals, dtype=float)
                objective = _finite(pyo.value(next(model.component_data_objects(pyo.Objective, active=True))))
        sol_status = (SolutionStatus.noSolution if values is None else
                      SolutionStatus.optimal if tc is TerminationCondition.convergenceCriteriaSatisfied
                      else SolutionStatus.feasible)
        sense_min = next(model.component_data_objects(pyo.Objective, active=True)).sense == pyo.minimize
        bound = _finite(results.problem.lower_bound if sense_min else results.problem.upper_bound)
        try:
            version = ".".join(map(str, opt.version())) if opt.version() else None
        except Exception:  # noqa: BLE001 - version is provenance only
            version = None
        self.send(("done", {"termination_condition": tc, "solution_status": sol_status, "objective": objective,
                            "bound": bound, "values": values, "node_count": None, "solver_time_s": elapsed,
                            "solver_version": version, "legacy_condition": str(legacy)}))


def _child_main(child: _Child, conn, parent_pid: int) -> None:
    """Entry point of the forked child: never returns (``os._exit``)."""
    code = 0
    try:
        _die_with_parent(parent_pid)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)

        def stop(signum, frame):
            child.cancel.set()
            if child.phase == "build":
                raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:  # a HiGHS task scheduler inherited from the parent has no threads in the child
            import highspy

            highspy.Highs.resetThreadScheduler(False)
        except Exception:  # noqa: BLE001 - no HiGHS, or nothing to reset
            pass
        child.send = conn.send
        child.run()
    except KeyboardInterrupt:
        code = 0
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
        code = 1
        try:
            conn.send(("error", _error_payload(exc), traceback.format_exc()))
        except Exception:  # noqa: BLE001 - the pipe is gone: the parent sees an end without answer
            pass
    finally:
        try:
            conn.close()
        finally:
            os._exit(code)


def _error_payload(exc: BaseException) -> tuple:
    """What the parent needs to raise the child's exception again (exceptions need not pickle)."""
    if isinstance(exc, InputError):
        return ("InputError", exc.file, exc.problems)
    return (type(exc).__name__, repr(exc))


def _die_with_parent(parent_pid: int) -> None:
    """Linux: the kernel kills this process when its parent dies (``PR_SET_PDEATHSIG``)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except Exception:  # noqa: BLE001 - not Linux: the parent still kills us at its deadline
        pass
    if os.getppid() != parent_pid:
        os._exit(0)


# ------------------------------------------------------------------ the parent's side
class PendingSolve:
    """A solve running in a child process (or queued to run in-process, see :func:`start_solve`).

    :meth:`wait` keeps the clock: at the deadline or on Ctrl-C it asks the
    child to stop, gives it :data:`GRACE_S` to answer and then kills it.
    :meth:`cancel` asks for the same at any time (e.g. on a Ctrl-C caught by
    the caller while it did something else).
    """

    def __init__(self, child: _Child, *, isolate: bool):
        self.child = child
        self.deadline = child.deadline
        self.report = SolveReport(solver=child.solver, isolated=isolate, options=dict(child.options))
        self.pid: int | None = None
        self.conn = None
        self._reason: str | None = None
        self._cancel_at: float | None = None
        self._sigint = False
        self._signum: int | None = None
        self._done = False
        self._error: tuple | None = None
        if isolate:
            self._fork()

    def _fork(self) -> None:
        import multiprocessing

        # everything the child needs is imported here, so the child imports nothing
        import pyomo.contrib.solver.solvers.highs  # noqa: F401
        try:
            import highspy  # noqa: F401
        except ImportError:  # pragma: no cover - highspy is a dependency
            pass
        reader, writer = multiprocessing.Pipe(duplex=False)
        parent = os.getpid()
        gc.freeze()  # the child's collector then leaves the parent's objects (and their pages) alone
        try:
            pid = os.fork()
        finally:
            if os.getpid() == parent:
                gc.unfreeze()
        if pid == 0:  # pragma: no cover - the child (coverage does not follow a fork)
            reader.close()
            _child_main(self.child, writer, parent)
        writer.close()
        self.pid, self.conn = pid, reader

    # -- control
    def cancel(self, reason: str) -> None:
        """Ask the child to stop (``reason``: ``time_limit`` or ``interrupt``); the first reason wins."""
        if self._reason is None:
            self._reason = reason
            self._cancel_at = time.perf_counter()
        self.child.cancel.set()
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def meanwhile(self, work: Callable[[], Any]) -> Any:
        """Run ``work()`` in this process while the child solves; its value, or ``None`` on Ctrl-C.

        Ctrl-C during ``work`` stops the child (the report then says
        ``interrupt``); any other exception stops the child and propagates.
        """
        try:
            return work()
        except KeyboardInterrupt:
            self.cancel("interrupt")
            return None
        except BaseException:
            self.cancel("error")
            with contextlib.suppress(Exception):
                self.wait()
            raise

    def wait(self) -> SolveReport:
        """Collect the report (blocking until the child answers, the deadline, or Ctrl-C)."""
        if self.pid is None:
            self._inline()
        else:
            with _SigintFlag(self):
                self._collect()
        self._finish()
        return self.report

    def _collect(self) -> None:
        try:
            while not self._done:
                now = time.perf_counter()
                if self._sigint and self._reason != "interrupt":
                    self.cancel("interrupt")
                if self.deadline is not None and self._reason is None and now >= self.deadline + CANCEL_DELAY_S:
                    self.cancel("time_limit")
                if self._cancel_at is not None and now >= self._cancel_at + GRACE_S:
                    self.report.killed = True
                    break
                try:
                    if not self.conn.poll(_POLL_S):
                        continue
                    msg = self.conn.recv()
                except (EOFError, OSError):
                    break  # the child ended without a final answer
                self._on(msg)
        finally:
            self._reap()

    def _reap(self) -> None:
        """End the child (if it still runs) and record how it ended when it did so on its own."""
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            end = time.perf_counter() + 0.2  # the pipe closes a moment before the process is gone
            while pid == 0 and not self._done and self._reason is None and time.perf_counter() < end:
                time.sleep(0.005)
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == 0:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            elif not self._done and self._reason is None:
                self.report.exit_code = os.waitstatus_to_exitcode(status)
        except (ChildProcessError, ProcessLookupError):
            pass
        self.conn.close()

    def _inline(self) -> None:
        with _SigintFlag(self, inline=True):
            self.child.send = self._on
            try:
                self.child.run()
            except KeyboardInterrupt as exc:
                self._sigint = True
                self._signum = signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT
                self.cancel("interrupt")

    def _on(self, msg: tuple) -> None:
        kind = msg[0]
        rep = self.report
        if kind == "built":
            for k, v in msg[1].items():
                setattr(rep, k, v)
        elif kind == "loaded":
            rep.load_time_s = msg[1]["load_time_s"]
        elif kind == "bound":
            rep.bound = msg[1]
        elif kind == "incumbent":
            _, obj, values, bound = msg
            if rep.objective is None or (obj is not None and obj <= rep.objective):
                rep.objective, rep.values, rep.incumbent_streamed = obj, values, True
                rep.solution_status = SolutionStatus.feasible
            if bound is not None:
                rep.bound = bound
        elif kind == "done":
            d = dict(msg[1])
            rep.termination_condition = d.pop("termination_condition")
            rep.solution_status = d.pop("solution_status")
            rep.incumbent_streamed = False
            d.pop("legacy_condition", None)
            for k, v in d.items():
                setattr(rep, k, v)
            self._done = True
        elif kind == "error":
            self._error = msg
            self._done = True

    def _finish(self) -> None:
        rep = self.report
        if self._error is not None:
            _, payload, text = self._error
            if payload[0] == "InputError":
                raise InputError(payload[1], payload[2])
            raise RuntimeError(f"{rep.solver} failed while solving: {payload[1]}\n{text}")
        if self._sigint and self._reason is None:
            self._reason = "interrupt"
        rep.signal = self._signum if self._sigint else None
        if not self._done:  # killed, or ended without an answer: what was streamed stands
            rep.termination_condition = (TerminationCondition.interrupted if self._reason == "interrupt"
                                         else TerminationCondition.maxTimeLimit if self._reason == "time_limit"
                                         else TerminationCondition.error)
        tc = rep.termination_condition
        if self._reason is not None:
            rep.stopped_by = self._reason
            if tc is TerminationCondition.interrupted and self._reason == "time_limit":
                rep.termination_condition = TerminationCondition.maxTimeLimit
        elif tc is TerminationCondition.maxTimeLimit:
            rep.stopped_by = "time_limit"
        elif tc is TerminationCondition.iterationLimit and self.child.node_limit is not None:
            rep.stopped_by = "node_limit"
        elif tc is TerminationCondition.interrupted:
            rep.stopped_by = "interrupt"


class _SigintFlag:
    """While waiting, Ctrl-C sets a flag instead of raising (only in the main thread)."""

    def __init__(self, pending: PendingSolve, inline: bool = False):
        self.pending, self.inline, self.old, self.old_term = pending, inline, None, None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            def handler(signum, frame):
                self.pending._sigint = True
                self.pending._signum = self.pending._signum or signum
                self.pending.child.cancel.set()
            self.old = signal.signal(signal.SIGINT, handler)
            # SIGTERM too, where a handler turns it into an exception (the command line's): a job
            # scheduler's stop keeps the incumbent; the default (end the process) is left alone.
            if callable(signal.getsignal(signal.SIGTERM)):
                self.old_term = signal.signal(signal.SIGTERM, handler)
        return self

    def __exit__(self, *exc):
        if self.old is not None:
            signal.signal(signal.SIGINT, self.old)
        if self.old_term is not None:
            signal.signal(signal.SIGTERM, self.old_term)


def start_solve(build: Callable[[], tuple[Any, list]], *, solver: str = DEFAULT_SOLVER,
                deadline: float | None = None, node_limit: int | None = None, rel_gap: float | None = None,
                threads: int | None = None, seed: int | None = None, options: dict[str, Any] | None = None,
                isolate: bool | None = None) -> PendingSolve:
    """Start solving the model that ``build()`` returns, in a child process.

    Parameters
    ----------
    build : callable () -> (model, watch)
        Runs in the child: a Pyomo model with one active objective, and the
        variables whose values the report returns (in that order).
    solver : str, default ``"highs"``
        ``"highs"`` is HiGHS through Pyomo's ``contrib.solver`` interface,
        with streamed incumbents and bounds; any other name goes to Pyomo's
        ``SolverFactory`` (check it first with :func:`check_solver`).
    deadline : float, optional
        A ``time.perf_counter()`` value: the solver's time limit is what is
        left of it once the model is loaded, and the parent stops the child
        at the deadline whatever it is doing.
    node_limit : int, optional
        HiGHS ``mip_max_nodes``: a limit on work, not on time.
    rel_gap, threads, seed, options
        HiGHS ``mip_rel_gap``, ``threads``, ``random_seed`` and any further
        options (for other solvers: their own option names).
    isolate : bool, optional
        Run in a child process (default wherever ``os.fork`` exists).

    Returns
    -------
    PendingSolve
        Call :meth:`PendingSolve.wait` for the :class:`SolveReport`.
    """
    if isolate is None:
        isolate = hasattr(os, "fork")
    child = _Child(build, lambda msg: None, solver=solver, deadline=deadline, node_limit=node_limit,
                   rel_gap=rel_gap, threads=threads, seed=seed, options=dict(options or {}))
    return PendingSolve(child, isolate=isolate)


def solve_model(build: Callable[[], tuple[Any, list]], **kwargs) -> SolveReport:
    """:func:`start_solve` and wait for its report."""
    return start_solve(build, **kwargs).wait()


def highs(deadline: float | None = None):
    """Pyomo's HiGHS interface, in-process; ``deadline`` (a ``time.perf_counter()`` value) sets
    HiGHS's time limit after Pyomo has passed the model over, so that the
    transfer counts against the limit.

    Kept for callers that want a Pyomo solver object; the project's own solves
    go through :func:`start_solve`.
    """
    from pyomo.contrib.solver.solvers.highs import Highs

    class _Highs(Highs):
        def _solve(self):
            if deadline is not None:
                self._active_config.time_limit = max(0.01, deadline - time.perf_counter())
            return super()._solve()

    return _Highs()
