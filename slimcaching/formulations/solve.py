"""Solving the exact formulations (HiGHS through Pyomo by default, any Pyomo MILP solver on request).

Build, solve and extract are separate steps:

* :func:`build_model` builds either MILP of ``docs/model.md`` section 1;
* :func:`exact` (registered as ``"exact"``) solves it with a time limit, a
  node limit and a gap, extracts the placement, re-evaluates it with the
  project's evaluator and checks the solver's objective and bound against it;
* :func:`lp_bound` solves the LP relaxation: a lower bound on ``T(opt)``.

Numerics.  HiGHS's tolerances are absolute, so a model whose objective is
1e-9 s (latencies of microseconds, or a handful of nanoseconds) is solved to
nothing: HiGHS then called placements 18 % above the optimum "optimal".  The
solver therefore never sees seconds: every latency is divided by
:func:`latency_scale`, the power of two nearest ``T(empty)``, which makes the
objective of order one (exactly 1 for the empty placement) and is exact in
binary floating point, so the support, the levels and every comparison are
the same as on the user's numbers; objective and bound are multiplied back.
Then every answer is checked (:func:`exact`, Notes).

Why the solver stopped (Pyomo's termination condition) is translated into
:class:`~slimcaching.result.Status` by one table,
:data:`slimcaching.solvers.TERMINATION`; the raw condition is kept in ``info``
and, for anything unrecognised, in ``message``.
"""
from __future__ import annotations

import dataclasses
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
from ..solvers import (DEFAULT_SOLVER, GRACE_S, TERMINATION, SolveInterrupted, SolveReport, check_solver,
                       parse_solver_options, start_solve, translate_status)
from .assignment import build_assignment_model, support
from .level import build_level_model
from .tightenings import DEFAULT_TIGHTENINGS, apply_tightenings, check_tightenings, tightening_record

__all__ = ["FORMULATIONS", "TERMINATION", "translate_status", "build_model", "exact", "solve_exact", "lp_bound",
           "extract_placement", "start_placement", "capacity_free_bound", "latency_scale", "scaled_instance",
           "ObjectiveMismatch", "SolveInterrupted"]

FORMULATIONS: dict[str, Callable[..., pyo.ConcreteModel]] = {
    "level": build_level_model,
    "assignment": build_assignment_model,
}

DEFAULT_MIP_GAP = 1e-9
"""Relative gap HiGHS must close before it reports an optimum (HiGHS's own default is 1e-4)."""

DUAL_TOLERANCE = 1e-10
"""HiGHS dual feasibility tolerance (its default is 1e-7).

Objective coefficients ``w p D_j`` are small (down to 1e-9 of ``T(empty)``)
and a level model has tens of thousands of them: with the default tolerance
HiGHS's simplex stopped with an LP value about 5e-6 (relative) *above* the
true LP optimum on a 16 x 16, ``K = 2`` instance, and a level "optimum"
4.8e-6 above ``T(opt)`` on a 32 x 64, ``K = 1`` instance, i.e. an invalid
lower bound.  1e-10 (the smallest HiGHS accepts) removes both without slowing
the solves we measured.
"""

HIGHS_OPTIONS: dict[str, Any] = {"dual_feasibility_tolerance": DUAL_TOLERANCE}
"""HiGHS options of every solve (on top of a zero absolute gap and the relative gap)."""

TIGHT_OPTIONS: dict[str, Any] = {"dual_feasibility_tolerance": 1e-10, "primal_feasibility_tolerance": 1e-10,
                                 "mip_feasibility_tolerance": 1e-10}
"""HiGHS options of the one re-solve after a numerical failure (the smallest tolerances HiGHS accepts)."""

OPTIMAL_GAP = 1e-6
"""A result is called ``optimal`` only if ``(latency - bound) / latency`` is at most this."""

CHECK_RTOL = 1e-6
"""Relative agreement required between the solver objective and the evaluator."""

BOUND_RTOL = 1e-9
"""How far (relative) a solver's bound may exceed a feasible placement's ``T`` and still count as rounding.

The solver's objective and the evaluator's ``T`` are sums of the same terms
in a different order; they differ by a few units in the last place (1e-15
relative on the instances we solve).  A bound higher than that above a known
feasible placement is not a bound: a numerical failure.
"""

WARM_START_SHARE = 0.2
"""Share of the time limit that the caller's heuristic may use for the warm start."""


class ObjectiveMismatch(RuntimeError):
    """The solver's objective and the evaluator's latency of the extracted placement disagree."""


def _check_formulation(formulation: str) -> Callable[..., pyo.ConcreteModel]:
    if formulation not in FORMULATIONS:
        raise InputError("--formulation", ("", f"unknown formulation {formulation!r}; valid: "
                                               f"{', '.join(FORMULATIONS)}"))
    return FORMULATIONS[formulation]


def build_model(instance: Instance, formulation: str = "level", *, relax: bool = False) -> pyo.ConcreteModel:
    """Build the ``formulation`` (``"level"`` or ``"assignment"``) MILP of ``instance`` (in seconds).

    Raises
    ------
    InputError
        For an unknown formulation name (the valid ones are listed).
    """
    return _check_formulation(formulation)(instance, relax=relax)


def latency_scale(instance: Instance) -> float:
    """The power of two nearest ``T(empty)``: the unit of time the solver sees.

    Dividing by a power of two is exact in binary floating point (short of
    overflow or subnormals), so the scaled instance orders every latency as
    the original does and scaling back is exact.  ``1.0`` when ``T(empty)``
    is not a positive finite number.
    """
    t = empty_latency(instance)
    if not (t > 0 and math.isfinite(t)):
        return 1.0
    return math.ldexp(1.0, round(math.log2(t)))


def scaled_instance(instance: Instance, scale: float) -> Instance:
    """``instance`` with every latency (``t`` and ``c``) divided by ``scale`` (see :func:`latency_scale`)."""
    if scale == 1.0:
        return instance
    return dataclasses.replace(instance, latency=instance.latency / scale,
                               cloud_latency=instance.cloud_latency / scale)


_PARAMS = "formulation, mip_gap, threads, warm_start, node_limit, solver, solver_options, start, tightenings"


def _validate(instance: Instance, time_limit: Any, mip_gap: Any, threads: Any, node_limit: Any, start: Any,
              params: dict) -> Placement | None:
    """Check the options (all problems in one error); returns ``start`` as a :class:`Placement`."""
    problems = []
    if params:
        raise InputError("--param", ("", f"unknown parameter(s) {', '.join(sorted(params))} for the exact "
                                         f"solver; valid: {_PARAMS}"))
    if time_limit is not None and not (_number(time_limit) and time_limit > 0):
        problems.append(("--time-limit", f"must be a number > 0, got {time_limit!r}"))
    if mip_gap is not None and not (_number(mip_gap) and 0 <= mip_gap < 1):
        problems.append(("--mip-gap", f"must be a number in [0, 1), got {mip_gap!r}"))
    if threads is not None and not (_integer(threads) and threads >= 1):
        problems.append(("--param threads", f"must be an integer >= 1, got {threads!r}"))
    if node_limit is not None and not (_integer(node_limit) and node_limit >= 1):
        problems.append(("--node-limit", f"must be an integer >= 1, got {node_limit!r}"))
    placement = None
    if start is not None:
        x = start.x if isinstance(start, Placement) else np.asarray(start)
        if x.shape != (instance.N, instance.L, instance.max_experts):
            problems.append(("start", f"must be a placement of shape {(instance.N, instance.L, instance.max_experts)}, "
                                      f"got {x.shape}"))
        else:
            placement = Placement(np.asarray(x, dtype=bool) & instance.valid_mask()[None])
            if not placement.is_feasible(instance):
                problems.append(("start", "must fit the node capacities"))
    if problems:
        raise InputError(problems[0][0], [("", rule) for _, rule in problems])
    return placement


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _integer(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


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


def extract_placement(instance: Instance, model: pyo.ConcreteModel | np.ndarray) -> Placement:
    """The placement ``x[n,l,e] > 0.5`` of a model's loaded ``x`` values, or of those values
    (in the order of ``model.x``, i.e. of ``support(instance).elements``)."""
    sup = support(instance)
    if isinstance(model, np.ndarray):
        vals = model
    else:
        vals = np.array([v.value if v.value is not None else 0.0 for v in model.x.values()], dtype=float)
    if len(vals) != len(sup.elements):
        raise ValueError(f"{len(vals)} x values for {len(sup.elements)} elements")
    el = sup.elements[vals > 0.5]
    return Placement.from_elements(instance, el)


class _Best:
    """The best feasible placement known so far, by the evaluator's ``T``."""

    def __init__(self, instance: Instance):
        self.instance = instance
        self.placement: Placement | None = None
        self.latency = math.inf
        self.source: str | None = None

    def offer(self, placement: Placement, source: str, *, wins_ties: bool = False) -> None:
        if not placement.is_feasible(self.instance):
            return
        t = latency(self.instance, placement)
        if t < self.latency or (wins_ties and t <= self.latency):
            self.placement, self.latency, self.source = placement, t, source


def _model_builder(build: Callable[..., pyo.ConcreteModel], scaled: Instance, relax: bool = False,
                   tightenings: tuple[str, ...] = ()):
    """What the solver process runs: build the (tightened) model of the scaled instance, watch ``x``.

    Tightenings depend on sizes and capacities only, which scaling leaves alone.
    """
    def make():
        model = build(scaled, relax=relax)
        apply_tightenings(model, scaled, tightenings)
        return model, list(model.x.values())
    return make


def _solve_options(solver: str, options: dict[str, Any], tight: bool) -> dict[str, Any]:
    if solver != DEFAULT_SOLVER:
        return dict(options)
    return {**HIGHS_OPTIONS, **(TIGHT_OPTIONS if tight else {}), **options}


def _judge(instance: Instance, rep: SolveReport, scale: float, best: _Best, *, strict_ok: bool,
           formulation: str) -> tuple[Placement | None, float | None, str | None]:
    """The solver's placement and bound in seconds, and what is wrong with them (``None``: nothing).

    The placement is re-evaluated (:func:`_check_objective`); the bound must
    not exceed ``T`` of any feasible placement known (the solver's, the
    starts, the heuristic's) by more than :data:`BOUND_RTOL`.
    """
    placement, problem = None, None
    if rep.values is not None:
        placement = extract_placement(instance, rep.values)
        objective = None if rep.objective is None else rep.objective * scale
        strict = strict_ok and not rep.incumbent_streamed
        try:
            _check_objective(instance, placement, objective, strict, formulation)
        except ObjectiveMismatch as exc:
            problem = str(exc)
        best.offer(placement, "solver", wins_ties=True)
    bound = None if rep.bound is None else rep.bound * scale
    if bound is not None and bound > best.latency * (1 + BOUND_RTOL):
        problem = problem or (f"exact ({formulation}): solver bound {bound!r} above T = {best.latency!r} of a "
                              f"feasible placement ({best.source})")
    return placement, bound, problem


def exact(instance: Instance, *, seed: int | None = None, time_limit: float | None = None,
          formulation: str = "level", mip_gap: float | None = None, threads: int | None = None,
          warm_start: bool = True, heuristic: Callable[[float], Result] | None = None,
          node_limit: int | None = None, solver: str = DEFAULT_SOLVER,
          solver_options: dict[str, Any] | list[str] | None = None, start: Placement | None = None,
          tightenings: Any = DEFAULT_TIGHTENINGS, **params) -> Result:
    """Optimal placement by solving a MILP of ``docs/model.md`` section 1 (HiGHS by default).

    Problem: minimise ``T(x)`` subject to ``sum_{l,e} s_l x[n,l,e] <= Q_n``.

    Parameters
    ----------
    instance : Instance
    seed : int, optional
        HiGHS ``random_seed`` (the optimum does not depend on it; the path may).
    time_limit : float, optional
        Wall-clock seconds for everything: building, loading, solving.  The
        solver runs in a child process that is stopped at the limit whatever
        it is doing (:mod:`slimcaching.solvers`); the call returns within
        about ``time_limit + 1`` s with status ``time_limit``, the best
        incumbent known and a valid bound (provided the caller's
        ``heuristic``, which runs in this process, keeps its own budget).
    formulation : {"level", "assignment"}, default "level"
    mip_gap : float, optional
        Relative gap at which HiGHS stops (default ``1e-9``); a result whose
        final gap exceeds ``1e-6`` is reported ``feasible`` instead of ``optimal``.
    threads : int, optional
        HiGHS threads (``1`` when ``node_limit`` is given).
    warm_start : bool, default True
        Compute a start and return it when the solver stops without an
        incumbent at least as good, so a limit always returns a real
        placement.  The start is :func:`start_placement`; with a time limit,
        no node limit and a ``heuristic``, also that heuristic run on
        ``WARM_START_SHARE`` (20 %) of the budget while the model is being
        built in the child, whichever is better (``info["warm_start_source"]``).
    heuristic : callable (seconds) -> Result, optional
        The caller's heuristic for the warm start, given its share of the
        budget.  The registered ``exact`` (:mod:`slimcaching.algorithms.exact`)
        passes the ``best`` heuristic; this module imports no algorithm.
    node_limit : int, optional
        HiGHS ``mip_max_nodes``: a deterministic limit on work.  With it the
        warm-start heuristic (time-budgeted) is skipped and ``threads``
        defaults to 1, so the same instance, seed and node limit give the
        same status, bound and placement on a fast or a loaded machine, as
        long as ``time_limit`` (then only a safety cap) does not stop the
        solve first; ``info["stopped_by"]`` says which limit did.
    solver : str, default ``"highs"``
        Any MILP solver Pyomo can run here (``appsi_highs``, ``gurobi``,
        ``cplex``, ``scip``, ``cbc``, ``glpk``, ...; see
        :func:`slimcaching.solvers.available_solvers`).  The scaling and every
        check below apply to all; the streamed incumbents, the node limit and
        the tight re-solve are HiGHS's.
    solver_options : dict or list of "KEY=VALUE", optional
        Passed to the solver under its own option names.
    start : Placement, optional
        A feasible placement the caller already has: returned if the solver
        finds nothing better, and checked against the solver's bound.  It is
        not handed to HiGHS as a MIP start (see :mod:`slimcaching.solvers`);
        this argument is the place to do so once a MIP start is shown correct.
    tightenings : "all", "none", comma list or iterable of names, default all
        Valid tightenings applied to the model before solving
        (:mod:`slimcaching.formulations.tightenings`); the optimum is unchanged.
        Recorded as ``info["tightenings"]``.

    Returns
    -------
    Result
        ``status``: ``optimal`` (gap <= 1e-6), ``feasible``, ``time_limit``,
        ``infeasible`` (cannot happen: the empty placement is feasible) or
        ``unknown``; ``bound``: a lower bound on ``T(opt)``, the solver's dual
        bound or, when it has none or failed a check,
        :func:`capacity_free_bound`; ``info``: ``build_time_s``,
        ``load_time_s``, ``solve_time_s`` (from starting the solver process
        to its answer), ``highs_time_s``, ``n_variables``, ``n_constraints``,
        ``n_binaries``, ``formulation``, ``solver``, ``solver_version``,
        ``termination_condition``, ``solution_status``, ``solver_objective``
        and ``solver_bound`` (in seconds), ``mip_node_count``,
        ``latency_scale``, ``stopped_by`` (``time_limit``, ``node_limit``,
        ``interrupt`` or ``None``), ``numerics`` (``"ok"`` or what failed),
        ``resolved`` (a re-solve with tight tolerances ran),
        ``incumbent_source`` (``solver``, ``fill``, the heuristic's name,
        ``start`` or ``empty``) and ``bound_source`` (the solver's name or
        ``capacity-free``).

    Raises
    ------
    InputError
        Unknown formulation or solver, bad ``time_limit`` / ``mip_gap`` /
        ``threads`` / ``node_limit`` / ``start`` / solver option, unknown
        extra parameters.
    SolveInterrupted
        Ctrl-C (``SIGINT``) during the solve: the solver is stopped within
        about 1 s and the exception's ``result`` holds the best placement
        and bound found so far (status ``feasible``, ``stopped_by``
        ``interrupt``).  It is a ``KeyboardInterrupt``.

    Notes
    -----
    Numerics.  The solver sees every latency divided by
    :func:`latency_scale` (a power of two near ``T(empty)``, so exact), which
    puts the objective near 1, where HiGHS's absolute tolerances (feasibility
    1e-7, dual feasibility 1e-10, integrality 1e-6) are small against every
    quantity that matters; its objective and bound are multiplied back.
    Without this, HiGHS called placements 18 % above the optimum optimal at
    latencies of 1e-5 s and lost the objective below 1e-7 s.  Then:

    * the extracted placement (``x > 0.5``) is re-evaluated by
      :mod:`slimcaching.objective`; ``T(x)`` above the solver's objective by
      more than ``1e-6`` relative, or below it for a proven optimum, is a
      numerical failure (:func:`_check_objective`);
    * the bound must not exceed ``T`` of any feasible placement known (the
      solver's, the fill start, the heuristic's, ``start``) by more than
      ``1e-9`` relative (:data:`BOUND_RTOL`); more is a numerical failure.
      It is never lowered to the incumbent to hide one; within ``1e-9`` (the
      rounding of two sums of the same terms) it is reported as ``T(x)``;
    * on a numerical failure HiGHS solves once more with its tightest
      tolerances (:data:`TIGHT_OPTIONS`) in the time left; if that fails too,
      the solver's bound is dropped for :func:`capacity_free_bound`, the
      status is at best ``feasible``, and ``message`` and ``info["numerics"]``
      say what failed;
    * ``optimal`` requires the solver to report convergence and
      ``(T(x) - bound) / T(x) <= 1e-6`` with ``T(x)`` the evaluator's value.

    Guarantee: with status ``optimal``, ``T(x) <= (1 + 1e-6) T(opt)``; in every
    case ``bound <= T(opt) <= T(x)``, up to the solver's tolerances on the
    scaled model (``tests/test_numerics.py`` checks both against brute force
    with every latency scaled by 1e-12 ... 1e9).  The reported latency is
    always the evaluator's.  The run time is exponential in the worst case
    (the problem is NP-hard already for ``K = 1``, one node and one user,
    which is the 0-1 knapsack problem [3]); building is linear in the number
    of nonzeros.  See ``docs/formulations.md`` for measured sizes and times.

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
    start = _validate(instance, time_limit, mip_gap, threads, node_limit, start, params)
    chosen = check_tightenings(tightenings)
    options = parse_solver_options(solver_options)
    if solver != DEFAULT_SOLVER:
        check_solver(solver)
    if node_limit is not None and threads is None:
        threads = 1
    deadline = None if time_limit is None else t0 + float(time_limit)
    record: dict[str, Any] = {"formulation": formulation, "mip_gap": mip_gap, "threads": threads,
                              "warm_start": warm_start, "tightenings": list(chosen)}
    for key, value, default in (("node_limit", node_limit, None), ("solver", solver, DEFAULT_SOLVER),
                                ("solver_options", options, {})):
        if value != default:
            record[key] = value
    sup = support(instance)
    info: dict[str, Any] = {"formulation": formulation, "solver": solver, "n_binaries": len(sup.elements),
                            "node_limit": node_limit, "tightenings": tightening_record(instance, chosen)}
    if len(sup.elements) == 0:  # nothing can be cached: the empty placement is the only one
        t_empty = empty_latency(instance)
        info.update(build_time_s=0.0, solve_time_s=0.0, solver_version=None, termination_condition="trivial",
                    solution_status="optimal", solver_objective=t_empty, stopped_by=None, numerics="ok")
        return make_result(instance, instance.empty_placement(), algorithm="exact", status=Status.OPTIMAL,
                           runtime_s=time.perf_counter() - t0, params=record, seed=seed, bound=t_empty,
                           info=info, message="no expert fits a useful node; the empty placement is optimal")
    best = _Best(instance)
    best.offer(instance.empty_placement(), "empty")
    if start is not None:
        best.offer(start, "start")
    if warm_start:
        best.offer(start_placement(instance), "fill")
    relaxed = capacity_free_bound(instance)
    scale = latency_scale(instance)
    scaled = scaled_instance(instance, scale)
    support(scaled)  # computed once here, inherited by the solver process
    info["latency_scale"] = scale
    rel_gap = DEFAULT_MIP_GAP if mip_gap is None else float(mip_gap)

    def launch(tight: bool):
        return start_solve(_model_builder(build, scaled, tightenings=chosen), solver=solver, deadline=deadline, node_limit=node_limit,
                           rel_gap=rel_gap, threads=threads, seed=seed,
                           options=_solve_options(solver, options, tight))

    t1 = time.perf_counter()
    pending = launch(False)
    if warm_start and heuristic is not None and time_limit is not None and node_limit is None:
        # Under a limit the solver may stop with a weak incumbent, so the caller's
        # heuristic runs (in this process, while the model is built in the child).
        heur = pending.meanwhile(lambda: heuristic(max(0.01, WARM_START_SHARE * (deadline - time.perf_counter()))))
        if heur is not None:
            best.offer(heur.placement, heur.algorithm)
    if warm_start:
        info["warm_start_source"] = best.source
    rep = pending.wait()
    strict_ok = mip_gap is None or mip_gap <= OPTIMAL_GAP
    status, has_solution, message = translate_status(rep)
    placement, bound, problem = _judge(instance, rep, scale, best, strict_ok=strict_ok and status is Status.OPTIMAL,
                                       formulation=formulation)
    info["resolved"] = False
    if (problem is not None and solver == DEFAULT_SOLVER and not rep.interrupted
            and (deadline is None or deadline - time.perf_counter() > 0.1)):
        first = problem
        rep = launch(True).wait()
        status, has_solution, message = translate_status(rep)
        placement, bound, problem = _judge(instance, rep, scale, best,
                                           strict_ok=strict_ok and status is Status.OPTIMAL, formulation=formulation)
        info["resolved"] = True
        message += f"; re-solved with tight tolerances after: {first}"
    t_solve = time.perf_counter() - t1
    info.update(build_time_s=rep.build_time_s, load_time_s=rep.load_time_s, solve_time_s=t_solve,
                highs_time_s=rep.solver_time_s if solver == DEFAULT_SOLVER else None,
                solver_time_s=rep.solver_time_s, n_variables=rep.n_variables, n_constraints=rep.n_constraints,
                solver_version=rep.solver_version, termination_condition=rep.termination_condition.name,
                solution_status=rep.solution_status.name,
                solver_objective=None if rep.objective is None else rep.objective * scale,
                solver_bound=bound, mip_node_count=rep.node_count, stopped_by=rep.stopped_by,
                numerics="ok" if problem is None else problem, isolated=rep.isolated)
    if rep.killed:
        message += (f"; the solver did not answer within {GRACE_S:g} s of being stopped and was ended; "
                    "keeping what it had reported")
    if rep.exit_code is not None:
        message += f"; the solver process ended without an answer (exit code {rep.exit_code})"
    if problem is not None:
        bound = None
        if status is Status.OPTIMAL:
            status = Status.FEASIBLE
        message += f"; numerical failure, solver bound not used: {problem}"
    if not has_solution and status is Status.OPTIMAL:
        status = Status.UNKNOWN  # "optimal" without a solution: nothing to trust
    if best.source != "solver":
        message += f"; no better incumbent from the solver, returning the {best.source} placement"
    bound_source = solver
    if bound is None or relaxed > bound:
        bound, bound_source = relaxed, "capacity-free"
    if bound > best.latency:  # within BOUND_RTOL, i.e. rounding (anything more is a failure above)
        bound = best.latency
    info.update(incumbent_source=best.source, bound_source=bound_source)
    res = make_result(instance, best.placement, algorithm="exact", status=status,
                      runtime_s=time.perf_counter() - t0, params=record, seed=seed, bound=bound,
                      info=info, message=message)
    if res.status is Status.OPTIMAL and (res.gap is None or res.gap > OPTIMAL_GAP):
        res.status = Status.FEASIBLE
    if rep.interrupted:
        res.message += "; interrupted"
        raise SolveInterrupted(res, signum=rep.signal)
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
    for a proven optimum (``strict``), where the solver has optimised them.
    The tolerance is relative only (:data:`CHECK_RTOL`), so it means the same
    at every latency scale.
    """
    if objective is None:
        return
    t = latency(instance, placement)
    tol = CHECK_RTOL * max(abs(t), abs(objective))
    if t > objective + tol or (strict and t < objective - tol):
        raise ObjectiveMismatch(
            f"exact ({formulation}): solver objective {objective!r} but the evaluator gives "
            f"T = {t!r} for the extracted placement (relative difference "
            f"{abs(t - objective) / max(abs(objective), abs(t), 1e-300):.3g} > {CHECK_RTOL:g})")


def solve_exact(instance: Instance, formulation: str = "level", time_limit: float | None = None,
                mip_gap: float | None = None, threads: int | None = None, *, seed: int | None = None) -> Result:
    """:func:`exact` with the formulation as a positional argument (same result)."""
    return exact(instance, seed=seed, time_limit=time_limit, formulation=formulation, mip_gap=mip_gap,
                 threads=threads)


def lp_bound(instance: Instance, formulation: str = "level", *, time_limit: float | None = None,
             tightenings: Any = ()) -> float:
    """Optimal value of the LP relaxation of ``formulation``: a lower bound on ``T(opt)``.

    Solved by HiGHS on the scaled instance (:func:`latency_scale`) in a child
    process.  The value must not exceed ``T`` of :func:`start_placement` by
    more than :data:`BOUND_RTOL`; if it does, the LP is solved once more with
    :data:`TIGHT_OPTIONS`, and a second failure is an error rather than a
    bound that is not one.

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
        HiGHS did not solve the LP to optimality (e.g. the time limit), or its
        value failed the check above twice.
    KeyboardInterrupt
        Ctrl-C during the solve.
    """
    build = _check_formulation(formulation)
    chosen = check_tightenings(tightenings)
    if len(support(instance).elements) == 0:
        return empty_latency(instance)
    deadline = None if time_limit is None else time.perf_counter() + float(time_limit)
    scale = latency_scale(instance)
    scaled = scaled_instance(instance, scale)
    support(scaled)
    feasible = latency(instance, start_placement(instance))
    for tight in (False, True):
        rep = start_solve(_model_builder(build, scaled, relax=True, tightenings=chosen), deadline=deadline,
                          options=_solve_options(DEFAULT_SOLVER, {}, tight)).wait()
        if rep.interrupted:
            raise KeyboardInterrupt
        if rep.termination_condition is not TerminationCondition.convergenceCriteriaSatisfied or rep.objective is None:
            raise RuntimeError(f"LP relaxation of {formulation!r} not solved: {rep.termination_condition.name}")
        value = rep.objective * scale
        if value <= feasible * (1 + BOUND_RTOL):
            return min(value, feasible)
    raise RuntimeError(f"LP relaxation of {formulation!r}: value {value!r} above T = {feasible!r} of a feasible "
                       "placement even with tight tolerances (numerical failure)")
