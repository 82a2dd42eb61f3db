"""The MoE² subset-choice MILP (``docs/model.md`` section 2), built with Pyomo and solved by HiGHS.

One binary ``z[k, S]`` per category ``k`` and *candidate* subset ``S``: a
subset of the latency-feasible experts ``A_k`` whose energy alone fits,
``lambda_k e(S) <= E`` (the empty set is always a candidate)::

    maximise    sum_{k,S} lambda_k q_k(S) z[k,S]
    subject to  sum_S z[k,S] = 1                                   for every k   (one_subset)
                sum_{k,S} lambda_k e(S) z[k,S] / max(1, E) <= E / max(1, E)      (energy)
                z binary

The energy row is scaled by ``max(1, E)`` and HiGHS's feasibility tolerances
are set to ``1e-9``, matching the relative tolerance of
:func:`slimcaching.moe2.instance.within`.  Building the model queries ``q_k``
on every candidate, counted like any other oracle use.

Build, solve and extract are separate steps: :func:`build_moe2_milp`,
:func:`solve_moe2_milp` (which calls HiGHS and maps its status), and
:func:`extract_selection`.
"""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pyomo.environ as pyo

from ..errors import InputError
from ..result import Status
from ..solvers import highs, translate_status
from .common import CountingOracle, _begin, _finish, _no_params
from .instance import Moe2Instance, within

__all__ = ["build_moe2_milp", "solve_moe2_milp", "extract_selection", "candidate_subsets"]


FEAS_TOL = 1e-9


def candidate_subsets(instance: Moe2Instance) -> list[np.ndarray]:
    """Per category, ``int64`` masks of the subsets of ``A_k`` with ``lambda_k e(S) <= E`` (ascending)."""
    allm = np.arange(1 << instance.M, dtype=np.int64)
    sub_e = instance.subset_energy()
    out = []
    for k, a in enumerate(instance.allowed_masks()):
        s = allm[(allm & ~np.int64(a)) == 0]
        out.append(s[within(instance.weight[k] * sub_e[s], instance.energy_budget)])
    return out


def _add_choice_variables(m: pyo.ConcreteModel, cands: list[np.ndarray]) -> None:
    m.KS = pyo.Set(initialize=[(k, int(s)) for k, c in enumerate(cands) for s in c], dimen=2, ordered=True)
    m.z = pyo.Var(m.KS, domain=pyo.Binary)


def _add_one_subset_per_category(m: pyo.ConcreteModel, cands: list[np.ndarray]) -> None:
    m.K = pyo.RangeSet(0, len(cands) - 1)
    m.one_subset = pyo.Constraint(m.K, rule=lambda m, k: pyo.quicksum(m.z[k, int(s)] for s in cands[k]) == 1)


def _add_energy_constraint(m: pyo.ConcreteModel, instance: Moe2Instance, cands: list[np.ndarray]) -> None:
    scale = max(1.0, instance.energy_budget)
    sub_e = instance.subset_energy()
    m.energy = pyo.Constraint(expr=pyo.quicksum(
        float(instance.weight[k] * sub_e[s] / scale) * m.z[k, int(s)]
        for k, c in enumerate(cands) for s in c if s) <= instance.energy_budget / scale)


def _add_objective(m: pyo.ConcreteModel, instance: Moe2Instance, cands: list[np.ndarray], values: list[np.ndarray]) -> None:
    m.quality = pyo.Objective(expr=pyo.quicksum(
        float(instance.weight[k] * v) * m.z[k, int(s)] for k, c in enumerate(cands) for s, v in zip(c, values[k])),
        sense=pyo.maximize)


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
    cands = candidate_subsets(instance)
    values = [oracle.many(k, c) for k, c in enumerate(cands)]
    m = pyo.ConcreteModel(name=f"moe2[{instance.name}]")
    _add_choice_variables(m, cands)
    _add_one_subset_per_category(m, cands)
    _add_energy_constraint(m, instance, cands)
    _add_objective(m, instance, cands, values)
    m.oracle = oracle
    return m


def extract_selection(instance: Moe2Instance, model: pyo.ConcreteModel) -> np.ndarray:
    """``int64 (C,)`` masks of the (loaded) ``z`` values: the subset with ``z[k, S] > 0.5``."""
    masks = np.zeros(instance.C, dtype=np.int64)
    for (k, s), v in model.z.items():
        if v.value is not None and v.value > 0.5:
            masks[k] = s
    return masks


def solve_moe2_milp(instance: Moe2Instance, *, seed: int | None = None, time_limit: float | None = None,
                    threads: int | None = None, **params):
    """Optimal selection by the subset-choice MILP with HiGHS (relative gap ``1e-9``, absolute ``0``).

    Guarantee
    ---------
    ``f(S) = OPT`` when the status is ``optimal``; with ``time_limit`` the
    incumbent (or the empty selection) and HiGHS's bound,
    ``f(S) <= OPT <= bound``.

    Notes
    -----
    ``sum_k`` (candidates of ``k``) binaries, at most ``C 2**M``; a
    multiple-choice knapsack, solved by HiGHS's branch-and-cut.  Oracle calls:
    every candidate subset.

    Returns
    -------
    Moe2Result
        ``algorithm="exact"``; ``info`` holds build/solve times, HiGHS version,
        termination condition and model size.
    """
    _no_params("exact", params, ("threads",))
    if threads is not None and not (isinstance(threads, int) and threads >= 1):
        raise InputError("--param threads", ("", f"must be an integer >= 1, got {threads!r}"))
    t0, record, triv = _begin(instance, "exact", params, time_limit, seed, valid=("threads",), threads=threads)
    if triv is not None:
        return triv
    oracle = CountingOracle(instance)
    model = build_moe2_milp(instance, oracle)
    t_build = time.perf_counter() - t0
    solver = highs()
    options: dict[str, Any] = {"mip_abs_gap": 0.0, "output_flag": False, "mip_feasibility_tolerance": FEAS_TOL,
                               "primal_feasibility_tolerance": FEAS_TOL}
    if seed is not None:
        options["random_seed"] = int(seed) % 2147483647
    left = None if time_limit is None else max(0.01, float(time_limit) - t_build)
    t1 = time.perf_counter()
    results = solver.solve(model, load_solutions=False, raise_exception_on_nonoptimal_result=False,
                           time_limit=left, rel_gap=1e-9, threads=threads, solver_options=options)
    t_solve = time.perf_counter() - t1
    status, has_solution, message = translate_status(results)
    if has_solution:
        results.solution_loader.load_vars()
        masks = extract_selection(instance, model)
    else:
        masks = np.zeros(instance.C, dtype=np.int64)
        message += "; no incumbent, returning the empty selection"
        if status in (Status.OPTIMAL, Status.FEASIBLE):
            status = Status.UNKNOWN
    bound = results.objective_bound
    bound = float(bound) if bound is not None and math.isfinite(float(bound)) else None
    info = {"build_time_s": t_build, "solve_time_s": t_solve, "solver": "highs",
            "solver_version": ".".join(map(str, solver.version())), "termination_condition": results.termination_condition.name,
            "solution_status": results.solution_status.name, "n_binaries": len(model.z),
            "solver_objective": None if results.incumbent_objective is None else float(results.incumbent_objective)}
    res = _finish(instance, masks, algorithm="exact", status=status, t0=t0, oracle=oracle, params=record,
                  seed=seed, bound=bound, info=info, message=message)
    if res.bound is not None and res.bound < res.objective:
        res.bound = res.objective  # the solver's bound below the incumbent by its tolerance only
    if status is Status.OPTIMAL and res.bound is None:
        res.bound = res.objective
    return res
