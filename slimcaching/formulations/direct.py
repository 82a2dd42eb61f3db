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
"""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass

import highspy
import numpy as np

from .arrays import LevelArrays

__all__ = ["DirectSolve", "new_highs", "to_highs", "run", "solve_arrays", "safe_lp_bound", "HIGHS_OPTIONS"]

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


def new_highs() -> highspy.Highs:
    """A silent ``highspy.Highs`` with :data:`HIGHS_OPTIONS`.

    HiGHS prints its banner to the process's standard output when the first
    object is created, before any option can switch output off; that would
    corrupt JSON written to stdout (``slimcaching certify``), so the first
    construction runs with file descriptor 1 pointed at standard error.
    """
    global _BANNER_SHOWN
    if _BANNER_SHOWN:
        h = highspy.Highs()
    else:
        sys.stdout.flush()
        saved = os.dup(1)
        try:
            os.dup2(2, 1)
            h = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
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
             mip_gap: float | None = None, seed: int | None = None) -> highspy.Highs:
    """A ``highspy.Highs`` holding ``model`` (``x`` integer when ``integer``)."""
    h = new_highs()
    if threads is not None:
        h.setOptionValue("threads", int(threads))
    if mip_gap is not None:
        h.setOptionValue("mip_rel_gap", float(mip_gap))
    if time_limit is not None:
        h.setOptionValue("time_limit", float(max(time_limit, 0.01)))
    if seed is not None:
        h.setOptionValue("random_seed", int(seed) % 2147483647)
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


def run(h: highspy.Highs) -> None:
    """``h.run()``; on an error status reset HiGHS's thread scheduler and retry once.

    Raises
    ------
    RuntimeError
        The retry failed too.
    """
    if h.run() == highspy.HighsStatus.kError:
        h.resetThreadScheduler(False)
        if h.run() == highspy.HighsStatus.kError:
            raise RuntimeError(f"HiGHS failed: {h.modelStatusToString(h.getModelStatus())}")


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
                 h: highspy.Highs | None = None, obj: np.ndarray | None = None) -> DirectSolve:
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
    """
    t = time.perf_counter()
    if h is None:
        h = to_highs(model, integer=integer, threads=threads, time_limit=time_limit, mip_gap=mip_gap, seed=seed)
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
