"""Solving the exact formulations with HiGHS (through Pyomo's ``contrib.solver`` interface).

Build, solve and extract are separate steps:

* :func:`build_model` builds either MILP of ``docs/model.md`` section 1;
* :func:`exact` (registered as ``"exact"``) solves it with a time limit and a
  gap, extracts the placement, re-evaluates it with the project's evaluator
  and checks it against the solver's objective;
* :func:`lp_bound` solves the LP relaxation: a proven lower bound on ``T(opt)``.

Why the solver stopped (Pyomo's termination condition) is translated into
:class:`~slimcaching.result.Status` by one table, :data:`TERMINATION`; the raw
condition is kept in ``info`` and, for anything unrecognised, in ``message``.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np
import pyomo.environ as pyo
from pyomo.contrib.solver.common.results import TerminationCondition

from ..errors import InputError
from ..instances.model import Instance, Placement
from ..objective import activation_marginals, empty_latency, latency
from ..result import Result, Status, make_result
from ..solvers import TERMINATION, highs, translate_status
from .assignment import build_assignment_model, support
from .level import build_level_model
from .tightenings import DEFAULT_TIGHTENINGS, apply_tightenings, check_tightenings

__all__ = ["FORMULATIONS", "TERMINATION", "translate_status", "build_model", "exact", "solve_exact", "lp_bound",
           "extract_placement", "start_placement", "capacity_free_bound", "ObjectiveMismatch"]

FORMULATIONS: dict[str, Callable[..., pyo.ConcreteModel]] = {
    "level": build_level_model,
    "assignment": build_assignment_model,
}

DEFAULT_MIP_GAP = 1e-9
"""Relative gap HiGHS must close before it reports an optimum (HiGHS's own default is 1e-4)."""

DUAL_TOLERANCE = 1e-10
"""HiGHS dual feasibility tolerance (its default is 1e-7).

Objective coefficients ``w p D_j`` are tiny (down to 1e-9 s) and a level model
has tens of thousands of them: with the default tolerance HiGHS's simplex
stopped with an LP value about 5e-6 (relative) *above* the true LP optimum on a
16 x 16, ``K = 2`` instance, and a level "optimum" 4.8e-6 above ``T(opt)`` on a
32 x 64, ``K = 1`` instance, i.e. an invalid lower bound.  1e-10 (the smallest
HiGHS accepts) removes both without slowing the solves we measured.
"""

OPTIMAL_GAP = 1e-6
"""A result is called ``optimal`` only if ``(latency - bound) / latency`` is at most this."""

CHECK_RTOL = 1e-6
#: Share of the time limit (after building) that a warm start may use.
WARM_START_SHARE = 0.2
"""Relative agreement required between the solver objective and the evaluator."""


class ObjectiveMismatch(RuntimeError):
    """The solver's objective and the evaluator's latency of the extracted placement disagree."""


def _check_formulation(formulation: str) -> Callable[..., pyo.ConcreteModel]:
    if formulation not in FORMULATIONS:
        raise InputError("--formulation", ("", f"unknown formulation {formulation!r}; valid: "
                                               f"{', '.join(FORMULATIONS)}"))
    return FORMULATIONS[formulation]


def build_model(instance: Instance, formulation: str = "level", *, relax: bool = False) -> pyo.ConcreteModel:
    """Build the ``formulation`` (``"level"`` or ``"assignment"``) MILP of ``instance``.

    Raises
    ------
    InputError
        For an unknown formulation name (the valid ones are listed).
    """
    return _check_formulation(formulation)(instance, relax=relax)


def _validate(time_limit: Any, mip_gap: Any, threads: Any, params: dict) -> None:
    problems = []
    if params:
        raise InputError("--param", ("", f"unknown parameter(s) {', '.join(sorted(params))} for the exact "
                                         "solver; valid: formulation, mip_gap, threads, warm_start, tightenings"))
    if time_limit is not None and not (isinstance(time_limit, (int, float)) and time_limit > 0):
        problems.append(("--time-limit", f"must be a number > 0, got {time_limit!r}"))
    if mip_gap is not None and not (isinstance(mip_gap, (int, float)) and 0 <= mip_gap < 1):
        problems.append(("--mip-gap", f"must be a number in [0, 1), got {mip_gap!r}"))
    if threads is not None and not (isinstance(threads, int) and threads >= 1):
        problems.append(("--param threads", f"must be an integer >= 1, got {threads!r}"))
    if problems:
        raise InputError(problems[0][0], [("", rule) for _, rule in problems])


def start_placement(instance: Instance) -> Placement:
    """A quick feasible start: fill each node with the elements of best marginal saving per size.

    The score of ``(n, l, e)`` is ``sum_u w_u P[e activated at (u,l)] (c[u,l] - t[u,n,l])^+ / s_l``
    (blind to co-activation); nodes are filled in turn, an element cached on an
    earlier node being skipped.  ``O(U L Emax N + N L Emax log(L Emax))``.
    """
    sup = support(instance)

    L, E, N = instance.L, instance.max_experts, instance.N
    marg = instance.weight[:, None, None] * activation_marginals(instance)  # w_u P[e activated at (u,l)]
    saving = np.where(np.isfinite(instance.latency),
                      np.maximum(instance.cloud_latency[:, None, :] - instance.latency, 0.0), 0.0)  # (U,N,L)
    score = np.einsum("ule,unl->nle", marg, saving) / instance.expert_size[None, :, None]
    allowed = np.zeros((N, L, E), dtype=bool)
    if len(sup.elements):
        allowed[sup.elements[:, 0], sup.elements[:, 1], sup.elements[:, 2]] = True
    x = np.zeros((N, L, E), dtype=bool)
    taken = np.zeros((L, E), dtype=bool)
    for n in np.argsort(-score.reshape(N, -1).max(axis=1), kind="stable"):
        left = int(instance.capacity[n])
        flat = np.where(allowed[n] & ~taken, score[n], -np.inf).ravel()
        for k in np.argsort(-flat, kind="stable"):
            if not np.isfinite(flat[k]) or flat[k] <= 0:
                break
            l, e = divmod(int(k), E)
            if instance.expert_size[l] <= left:
                x[n, l, e] = True
                taken[l, e] = True
                left -= int(instance.expert_size[l])
    return Placement(x)


def _run(model: pyo.ConcreteModel, *, time_limit: float | None, mip_gap: float | None,
         threads: int | None, seed: int | None):
    """Solve with HiGHS without loading anything; returns (pyomo results, solver)."""
    deadline = None if time_limit is None else time.perf_counter() + time_limit
    solver = highs(deadline)
    options: dict[str, Any] = {"mip_abs_gap": 0.0, "output_flag": False,
                               "dual_feasibility_tolerance": DUAL_TOLERANCE}
    if seed is not None:
        options["random_seed"] = int(seed) % 2147483647
    results = solver.solve(
        model, load_solutions=False, raise_exception_on_nonoptimal_result=False,
        time_limit=time_limit, rel_gap=DEFAULT_MIP_GAP if mip_gap is None else float(mip_gap),
        threads=threads, solver_options=options,
    )
    return results, solver


def extract_placement(instance: Instance, model: pyo.ConcreteModel) -> Placement:
    """The placement of the (loaded) ``x`` values: ``x[n,l,e] > 0.5``."""
    sup = support(instance)
    vals = np.array([v.value if v.value is not None else 0.0 for v in model.x.values()], dtype=float)
    el = sup.elements[vals > 0.5]
    return Placement.from_elements(instance, el)


def _finite(v: Any) -> float | None:
    return float(v) if v is not None and math.isfinite(float(v)) else None


def exact(instance: Instance, *, seed: int | None = None, time_limit: float | None = None,
          formulation: str = "level", mip_gap: float | None = None, threads: int | None = None,
          warm_start: bool = True, heuristic: Callable[[float], Result] | None = None,
          tightenings: Any = DEFAULT_TIGHTENINGS, **params) -> Result:
    """Optimal placement by solving a MILP of ``docs/model.md`` section 1 with HiGHS.

    Problem: minimise ``T(x)`` subject to ``sum_{l,e} s_l x[n,l,e] <= Q_n``.

    Parameters
    ----------
    instance : Instance
    seed : int, optional
        HiGHS ``random_seed`` (the optimum does not depend on it; the path may).
    time_limit : float, optional
        Seconds for build and solve together.  On the limit the best incumbent
        is returned with status ``time_limit`` (the empty placement if HiGHS
        found none) and the solver's dual bound.
    formulation : {"level", "assignment"}, default "level"
    mip_gap : float, optional
        Relative gap at which HiGHS stops (default ``1e-9``); a result whose
        final gap exceeds ``1e-6`` is reported ``feasible`` instead of ``optimal``.
    threads : int, optional
        HiGHS threads.
    warm_start : bool, default True
        Compute a start and return it when HiGHS stops (time limit) without an
        incumbent at least as good, so a time limit always returns a real
        placement.  The start is :func:`start_placement`; with a time limit
        and a ``heuristic``, also that heuristic run on ``WARM_START_SHARE``
        (20 %) of the budget, whichever is better
        (``info["warm_start_source"]``).  It is not handed to HiGHS (see
        :func:`slimcaching.solvers.highs`).
    heuristic : callable (seconds) -> Result, optional
        The caller's heuristic for the warm start, given its share of the
        budget.  The registered ``exact`` (:mod:`slimcaching.algorithms.exact`)
        passes the ``best`` heuristic; this module imports no algorithm.
    tightenings : "all", "none", comma list or iterable of names, default all
        Valid tightenings applied to the model before solving
        (:mod:`slimcaching.formulations.tightenings`); the optimum is unchanged.
        Recorded as ``info["tightenings"]``.

    Returns
    -------
    Result
        ``status``: ``optimal`` (gap <= 1e-6), ``feasible``, ``time_limit``,
        ``infeasible`` (cannot happen: the empty placement is feasible) or
        ``unknown``; ``bound``: HiGHS's dual bound, a proven lower bound on
        ``T(opt)``; ``info``: ``build_time_s``, ``solve_time_s``,
        ``n_variables``, ``n_constraints``, ``n_binaries``, ``formulation``,
        ``solver``, ``solver_version``, ``termination_condition``,
        ``solution_status``, ``solver_objective``, ``highs_time_s`` (inside
        HiGHS; ``solve_time_s`` also counts passing the model over),
        ``incumbent_source`` (``highs``, ``warm start`` or ``empty``) and
        ``bound_source`` (``highs`` or ``capacity-free``, see
        :func:`capacity_free_bound`).

    Raises
    ------
    InputError
        Unknown formulation, bad ``time_limit`` / ``mip_gap`` / ``threads``,
        unknown extra parameters.
    ObjectiveMismatch
        The evaluator's ``T`` of the extracted placement exceeds the solver's
        objective by more than ``1e-6`` relative, or, for a proven optimum,
        falls below it (a modelling error; both numbers are in the message).

    Notes
    -----
    Guarantee: with status ``optimal``, ``T(x) <= (1 + 1e-6) T(opt)``; in every
    case ``bound <= T(opt) <= T(x)`` up to HiGHS's feasibility tolerances.
    A heuristic incumbent may carry non-optimal continuous variables, so its
    solver objective can exceed ``T(x)``; the reported latency is always the
    evaluator's.  The run time is exponential in the worst case (the problem
    is NP-hard already for ``K = 1``, one node and one user, which is the 0-1
    knapsack problem [3]); building is linear in the number of nonzeros.  See
    ``docs/formulations.md`` for measured sizes and times.

    References
    ----------
    .. [1] Q. Chen, X. Chen, K. Huang, "SlimCaching: Edge Caching of
       Mixture-of-Experts for Distributed Inference", arXiv:2507.06567, 2025.
    .. [2] Q. Huangfu, J. A. J. Hall, "Parallelizing the dual revised simplex
       method", Mathematical Programming Computation 10(1), 2018 (HiGHS).
    .. [3] M. R. Garey, D. S. Johnson, "Computers and Intractability",
       W. H. Freeman, 1979.
    """
    t0 = time.perf_counter()
    build = _check_formulation(formulation)
    _validate(time_limit, mip_gap, threads, params)
    chosen = check_tightenings(tightenings)
    record = {"formulation": formulation, "mip_gap": mip_gap, "threads": threads, "warm_start": warm_start,
              "tightenings": list(chosen)}
    model = build(instance)
    tightened = apply_tightenings(model, instance, chosen)
    t_build = time.perf_counter() - t0
    info: dict[str, Any] = {
        "formulation": formulation, "build_time_s": t_build, "solver": "highs", "tightenings": tightened,
        "n_variables": model.nvariables(), "n_constraints": model.nconstraints(),
        "n_binaries": len(model.x),
    }
    if len(model.x) == 0:  # nothing can be cached: the empty placement is the only one
        placement = instance.empty_placement()
        info.update(solve_time_s=0.0, solver_version=None, termination_condition="trivial",
                    solution_status="optimal", solver_objective=empty_latency(instance))
        return make_result(instance, placement, algorithm="exact", status=Status.OPTIMAL,
                           runtime_s=time.perf_counter() - t0, params=record, seed=seed,
                           bound=empty_latency(instance), info=info,
                           message="no expert fits a useful node; the empty placement is optimal")
    start, start_source = None, None
    if warm_start:
        start, start_source = start_placement(instance), "fill"
        if time_limit is not None and heuristic is not None:
            # Under a limit HiGHS may stop with a weak incumbent, so spend a share
            # of the budget on the caller's heuristic and keep whichever is better.
            share = WARM_START_SHARE * max(0.0, float(time_limit) - t_build)
            heur = heuristic(max(0.01, share))
            if heur.latency < latency(instance, start):
                start, start_source = heur.placement, heur.algorithm
        info["warm_start_source"] = start_source
    left = None if time_limit is None else max(0.01, float(time_limit) - (time.perf_counter() - t0))
    t1 = time.perf_counter()
    results, solver = _run(model, time_limit=left, mip_gap=mip_gap, threads=threads, seed=seed)
    t_solve = time.perf_counter() - t1
    tc = results.termination_condition
    status, has_solution, message = translate_status(results)
    info.update(solve_time_s=t_solve, solver_version=".".join(map(str, solver.version())),
                termination_condition=tc.name, solution_status=results.solution_status.name,
                solver_objective=_finite(results.incumbent_objective),
                mip_node_count=getattr(results.extra_info, "mip_node_count", None),
                highs_time_s=getattr(results.timing_info, "highs_time", None))
    if has_solution:
        results.solution_loader.load_vars()
        placement = extract_placement(instance, model)
        strict = status is Status.OPTIMAL and (mip_gap is None or mip_gap <= OPTIMAL_GAP)
        _check_objective(instance, placement, info["solver_objective"], strict, formulation)
        source = "highs"
    else:
        placement = instance.empty_placement()
        source = "empty"
        if status in (Status.OPTIMAL, Status.FEASIBLE):
            status = Status.UNKNOWN
    if start is not None and latency(instance, start) < latency(instance, placement) * (1 - 1e-12):
        placement, source = start, "warm start"  # HiGHS stopped before it found anything as good
    if source != "highs":
        message += f"; no better incumbent from HiGHS, returning the {source} placement"
    bound, bound_source = _finite(results.objective_bound), "highs"
    relaxed = capacity_free_bound(instance)
    if bound is None or relaxed > bound:
        bound, bound_source = relaxed, "capacity-free"
    info.update(incumbent_source=source, bound_source=bound_source)
    res = make_result(instance, placement, algorithm="exact", status=status,
                      runtime_s=time.perf_counter() - t0, params=record, seed=seed, bound=bound,
                      info=info, message=message)
    if res.bound > res.latency:
        # dual bound above the incumbent by the solver's tolerance only
        res.bound, res.gap = res.latency, 0.0
    if res.status is Status.OPTIMAL and (res.gap is None or res.gap > OPTIMAL_GAP):
        res.status = Status.FEASIBLE
    return res


def capacity_free_bound(instance: Instance) -> float:
    """``T`` with every useful element cached: a lower bound on ``T(opt)``.

    ``T`` is non-increasing in ``x`` (each ``tau`` is a minimum over a larger
    set), and every feasible placement is below the all-useful one after
    dropping elements that cannot help.  Used when HiGHS has no dual bound yet.
    """
    sup = support(instance)
    return latency(instance, Placement.from_elements(instance, sup.elements))


def _check_objective(instance: Instance, placement: Placement, objective: float | None, strict: bool,
                     formulation: str) -> None:
    """Raise :class:`ObjectiveMismatch` if the evaluator and the solver disagree.

    ``T(x) <= objective`` always holds for a correct model (for a fixed ``x``
    the other variables can do no better than ``T(x)``); equality is required
    for a proven optimum (``strict``), where HiGHS has optimised them.
    """
    if objective is None:
        return
    t = latency(instance, placement)
    tol = CHECK_RTOL * max(abs(t), abs(objective), 1e-12)
    if t > objective + tol or (strict and t < objective - tol):
        raise ObjectiveMismatch(
            f"exact ({formulation}): solver objective {objective!r} but the evaluator gives "
            f"T = {t!r} for the extracted placement (relative difference "
            f"{abs(t - objective) / max(abs(objective), 1e-300):.3g} > {CHECK_RTOL:g})")


def solve_exact(instance: Instance, formulation: str = "level", time_limit: float | None = None,
                mip_gap: float | None = None, threads: int | None = None, *, seed: int | None = None) -> Result:
    """:func:`exact` with the formulation as a positional argument (same result)."""
    return exact(instance, seed=seed, time_limit=time_limit, formulation=formulation, mip_gap=mip_gap,
                 threads=threads)


def lp_bound(instance: Instance, formulation: str = "level", *, time_limit: float | None = None,
             tightenings: Any = ()) -> float:
    """Optimal value of the LP relaxation of ``formulation``: a lower bound on ``T(opt)``.

    ``tightenings`` (default none: the plain relaxation) adds the valid
    tightenings of :mod:`slimcaching.formulations.tightenings` first; they never
    lower the bound.

    Returns
    -------
    float
        Seconds per token (``T(empty)`` included for the level model).

    Raises
    ------
    InputError
        Unknown formulation.
    RuntimeError
        HiGHS did not solve the LP to optimality (e.g. the time limit).
    """
    model = build_model(instance, formulation, relax=True)
    if len(model.x) == 0:
        return empty_latency(instance)
    apply_tightenings(model, instance, check_tightenings(tightenings))
    results, _ = _run(model, time_limit=time_limit, mip_gap=None, threads=None, seed=None)
    if results.termination_condition is not TerminationCondition.convergenceCriteriaSatisfied:
        raise RuntimeError(f"LP relaxation of {formulation!r} not solved: {results.termination_condition.name}")
    return float(results.incumbent_objective)
