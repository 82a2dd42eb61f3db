"""The MoE² subset-choice MILP (``docs/model.md`` section 2), built with Pyomo and solved by HiGHS.

One binary ``z[k, S]`` per category ``k`` and *candidate* subset ``S``: a
subset of the usable experts ``U_k`` whose per-request energy alone fits,
``lambda_k eps_k(S) <= E`` (the empty set is always a candidate; ``eps_k`` is
``e(S)`` under pool accounting and the routed energy under per-query
accounting)::

    maximise    sum_{k,S} lambda_k q_k(S) z[k,S]
    subject to  sum_S z[k,S] = 1                                   for every k   (one_subset)
                sum_{k,S} lambda_k eps_k(S) z[k,S] / max(1, E) <= E / max(1, E)  (energy)
                z binary

Neither monotonicity nor submodularity of ``q_k`` is used.

The energy row is scaled by ``max(1, E)`` and HiGHS's feasibility tolerances
are set to ``1e-9``, matching the relative tolerance of
:func:`slimcaching.moe2.instance.within`.  Building the model queries ``q_k``
on every candidate, counted like any other oracle use; the candidates are
counted first and more than ``max_candidates`` (:data:`MAX_CANDIDATES`) is
refused, so memory stays bounded.

Build, solve and extract are separate steps: :func:`build_moe2_milp`,
:func:`solve_moe2_milp` (which solves it with HiGHS in a child process that
keeps the time limit, see :mod:`slimcaching.solvers`, and maps its status),
and :func:`extract_selection`.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np
import pyomo.environ as pyo

from ..errors import InputError
from ..result import Status
from ..solvers import SolveInterrupted, start_solve, translate_status
from .common import MAX_CANDIDATES, CountingOracle, _begin, _finish, _no_params, _usable, check_candidates
from .bits import popcount, submasks
from .instance import Moe2Instance, evaluate_moe2, mask_of, within

__all__ = ["build_moe2_milp", "solve_moe2_milp", "extract_selection", "candidate_subsets", "energy_free_bound",
           "check_candidates", "MAX_CANDIDATES"]

FEAS_TOL = 1e-9

BOUND_RTOL = 1e-9
"""How far (relative) HiGHS's bound may fall below a feasible selection's objective and still count as rounding."""


def candidate_subsets(instance: Moe2Instance, oracle: CountingOracle | None = None,
                      max_candidates: int = MAX_CANDIDATES) -> list[np.ndarray]:
    """Per category, ``int64`` masks of the subsets of ``U_k`` with ``lambda_k eps_k(S) <= E`` (ascending).

    Under per-query accounting ``eps_k`` comes from ``oracle`` (one counted
    evaluation per subset of ``U_k``).
    """
    oracle = oracle if oracle is not None else CountingOracle(instance)
    usable = [int(u) for u in _usable(instance)]
    check_candidates("the MILP", [popcount(u) for u in usable], max_candidates)
    out = []
    for k, u in enumerate(usable):
        s = submasks(u)
        out.append(s[within(instance.weight[k] * oracle.many_energy(k, s), instance.energy_budget)])
    return out


def _add_choice_variables(m: pyo.ConcreteModel, cands: list[np.ndarray]) -> None:
    m.KS = pyo.Set(initialize=[(k, int(s)) for k, c in enumerate(cands) for s in c], dimen=2, ordered=True)
    m.z = pyo.Var(m.KS, domain=pyo.Binary)


def _add_one_subset_per_category(m: pyo.ConcreteModel, cands: list[np.ndarray]) -> None:
    m.K = pyo.RangeSet(0, len(cands) - 1)
    m.one_subset = pyo.Constraint(m.K, rule=lambda m, k: pyo.quicksum(m.z[k, int(s)] for s in cands[k]) == 1)


def _add_energy_constraint(m: pyo.ConcreteModel, instance: Moe2Instance, cands: list[np.ndarray],
                           energies: list[np.ndarray]) -> None:
    scale = max(1.0, instance.energy_budget)
    m.energy = pyo.Constraint(expr=pyo.quicksum(
        float(instance.weight[k] * w / scale) * m.z[k, int(s)]
        for k, c in enumerate(cands) for s, w in zip(c, energies[k]) if s) <= instance.energy_budget / scale)


def _add_objective(m: pyo.ConcreteModel, instance: Moe2Instance, cands: list[np.ndarray], values: list[np.ndarray]) -> None:
    m.quality = pyo.Objective(expr=pyo.quicksum(
        float(instance.weight[k] * v) * m.z[k, int(s)] for k, c in enumerate(cands) for s, v in zip(c, values[k])),
        sense=pyo.maximize)


def _model(instance: Moe2Instance, cands: list[np.ndarray], values: list[np.ndarray],
           energies: list[np.ndarray]) -> pyo.ConcreteModel:
    m = pyo.ConcreteModel(name=f"moe2[{instance.name}]")
    _add_choice_variables(m, cands)
    _add_one_subset_per_category(m, cands)
    _add_energy_constraint(m, instance, cands, energies)
    _add_objective(m, instance, cands, values)
    return m


def build_moe2_milp(instance: Moe2Instance, oracle: Any = None) -> pyo.ConcreteModel:
    """The subset-choice MILP of ``instance``.

    Parameters
    ----------
    instance : Moe2Instance
    oracle : CountingOracle, optional
        Used (and counted) for the ``q_k`` values; a fresh one when omitted.
        Available afterwards as ``model.oracle``.
    """
    oracle = oracle if oracle is not None else CountingOracle(instance)
    cands = candidate_subsets(instance, oracle)
    values = [oracle.many(k, c) for k, c in enumerate(cands)]
    m = _model(instance, cands, values, [oracle.many_energy(k, c) for k, c in enumerate(cands)])
    m.oracle = oracle
    return m


def extract_selection(instance: Moe2Instance, model: pyo.ConcreteModel | np.ndarray,
                      keys: list[tuple[int, int]] | None = None) -> np.ndarray:
    """``int64 (C,)`` masks of the (loaded) ``z`` values, or of ``z`` values in the order of
    ``keys`` (the ``(k, S)`` index of ``model.z``): the subset with ``z[k, S] > 0.5``."""
    masks = np.zeros(instance.C, dtype=np.int64)
    items = (zip(keys, model) if isinstance(model, np.ndarray)
             else ((ks, v.value) for ks, v in model.z.items()))
    for (k, s), v in items:
        if v is not None and v > 0.5:
            masks[k] = s
    return masks


def energy_free_bound(instance: Moe2Instance, oracle: CountingOracle) -> float | None:
    """An upper bound on the optimum that ignores the energy row: ``sum_k lambda_k max_{T <= U_k} q_k(T)``.

    Every feasible ``S_k`` is a subset of ``U_k``, the usable experts of ``k``
    (an expert outside it misses the latency budget or, under pool
    accounting, alone exceeds ``E``).  For a proven-monotone ``q_k`` the
    maximum is ``q_k(U_k)``; otherwise it is bounded by the model's box bound
    (:meth:`CountingOracle.upper` on ``[empty, U_k]``), never by ``q_k(U_k)``,
    which a non-monotone quality can fall below.  ``None`` when the model has
    no box bound.  Used when HiGHS has no bound (or its bound failed the check).
    """
    usable = _usable(instance)
    try:
        return float(sum(instance.weight[k] * oracle.upper(k, 0, int(usable[k])) for k in range(instance.C)))
    except NotImplementedError:
        return None


def solve_moe2_milp(instance: Moe2Instance, *, seed: int | None = None, time_limit: float | None = None,
                    threads: int | None = None, heuristic: Callable[[float], Any] | None = None,
                    max_candidates: int = MAX_CANDIDATES, **params):
    """Optimal selection by the subset-choice MILP with HiGHS (relative gap ``1e-9``, absolute ``0``).

    Parameters
    ----------
    instance : Moe2Instance
    seed : int, optional
        HiGHS ``random_seed``.
    time_limit : float, optional
        Wall-clock seconds for everything (hashing the instance, the oracle
        queries, building and loading the model in the solver process, the
        solve); the solver process is stopped at the limit
        (:mod:`slimcaching.solvers`) and the best selection known is returned
        with status ``time_limit``.
    threads : int, optional
        HiGHS threads.
    heuristic : callable (seconds) -> Moe2Result, optional
        A quick selection computed while the model is built, returned when
        HiGHS has nothing better (the registered ``exact`` passes ``greedy``).
    max_candidates : int
        Refuse (``InputError``) instances with more candidate subsets.

    Guarantee
    ---------
    ``f(S) = OPT`` when the status is ``optimal``; in every case
    ``f(S) <= OPT <= bound``, where ``bound`` is HiGHS's or, when HiGHS has
    none, :func:`energy_free_bound` (``None`` when that has no bound either).  A HiGHS bound below a known feasible
    selection's objective by more than ``1e-9`` relative is a numerical
    failure: it is dropped (never raised to the incumbent) and the message
    says so.

    Notes
    -----
    ``sum_k`` (candidates of ``k``) binaries, at most ``C 2**M``; a
    multiple-choice knapsack, solved by HiGHS's branch-and-cut.  Oracle calls:
    every candidate subset, plus one per category for the fallback bound.

    Returns
    -------
    Moe2Result
        ``algorithm="exact"``; ``info`` holds build/solve times, HiGHS version,
        termination condition, model size and ``stopped_by``.

    Raises
    ------
    SolveInterrupted
        Ctrl-C during the solve; its ``result`` is the best selection so far.
    InputError
        More than ``max_candidates`` candidate subsets.
    """
    _no_params("exact", params, ("threads", "max_candidates"))
    if threads is not None and not (isinstance(threads, int) and threads >= 1):
        raise InputError("--param threads", ("", f"must be an integer >= 1, got {threads!r}"))
    t0, record, triv = _begin(instance, "exact", params, time_limit, seed, valid=("threads", "max_candidates"),
                              threads=threads)
    if triv is not None:
        return triv
    deadline = None if time_limit is None else t0 + float(time_limit)
    instance.content_hash()  # cached for the result; it counts against the limit
    oracle = CountingOracle(instance)
    cands = candidate_subsets(instance, oracle, max_candidates)
    values = [oracle.many(k, c) for k, c in enumerate(cands)]
    energies = [oracle.many_energy(k, c) for k, c in enumerate(cands)]
    keys = [(k, int(s)) for k, c in enumerate(cands) for s in c]

    def make():
        model = _model(instance, cands, values, energies)
        return model, list(model.z.values())

    t1 = time.perf_counter()
    pending = start_solve(make, deadline=deadline, rel_gap=1e-9, threads=threads, seed=seed,
                          options={"mip_feasibility_tolerance": FEAS_TOL, "primal_feasibility_tolerance": FEAS_TOL})
    best = _Best(instance)
    best.offer(np.zeros(instance.C, dtype=np.int64), "empty")
    if heuristic is not None:
        h = pending.meanwhile(lambda: heuristic(None if deadline is None else
                                                max(0.01, 0.2 * (deadline - time.perf_counter()))))
        if h is not None:
            best.offer(np.array([mask_of(s) for s in h.selection], dtype=np.int64), h.algorithm)
    rep = pending.wait()
    status, has_solution, message = translate_status(rep)
    if has_solution:
        best.offer(extract_selection(instance, rep.values, keys), "highs")
    elif status is Status.OPTIMAL:
        status = Status.UNKNOWN  # "optimal" without a solution: nothing to trust
    if best.source != "highs":
        message += f"; no better incumbent from HiGHS, returning the {best.source} selection"
    bound, bound_source = rep.bound, "highs"
    if bound is not None and bound < best.objective * (1 - BOUND_RTOL):
        message += (f"; numerical failure: HiGHS bound {bound!r} below the objective {best.objective!r} "
                    f"of a feasible selection ({best.source}), not used")
        bound = None
        if status is Status.OPTIMAL:
            status = Status.FEASIBLE
    if bound is None:
        bound, bound_source = energy_free_bound(instance, oracle), "energy-free"
    if bound is not None:
        bound = max(bound, best.objective)  # reached only within BOUND_RTOL, i.e. rounding
    if rep.interrupted:
        message += "; interrupted"
    info = {"build_time_s": rep.build_time_s, "load_time_s": rep.load_time_s, "solve_time_s": time.perf_counter() - t1,
            "solver": "highs", "solver_version": rep.solver_version,
            "termination_condition": rep.termination_condition.name, "solution_status": rep.solution_status.name,
            "n_binaries": len(keys), "solver_objective": rep.objective, "stopped_by": rep.stopped_by,
            "incumbent_source": best.source, "bound_source": bound_source}
    res = _finish(instance, best.masks, algorithm="exact", status=status, t0=t0, oracle=oracle, params=record,
                  seed=seed, bound=bound, info=info, message=message)
    if rep.interrupted:
        raise SolveInterrupted(res, signum=rep.signal)
    return res


class _Best:
    """The feasible selection of largest objective known so far (by the evaluator)."""

    def __init__(self, instance: Moe2Instance):
        self.instance = instance
        self.masks = np.zeros(instance.C, dtype=np.int64)
        self.objective = -math.inf
        self.source = "empty"

    def offer(self, masks: np.ndarray, source: str) -> None:
        ev = evaluate_moe2(self.instance, masks)
        if ev.feasible and ev.objective > self.objective:
            self.masks, self.objective, self.source = masks, ev.objective, source
