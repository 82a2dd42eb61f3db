"""The two MILPs against a brute force written from docs/model.md, their LP bounds, and the solver wrapper."""
from __future__ import annotations

import itertools
import time

import numpy as np
import pyomo.environ as pyo
import pytest
from hypothesis import given, settings, strategies as st
from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition

from reference import brute_force, latency_from_definition, random_instance_dict
from slimcaching.algorithms import run
from slimcaching.errors import InputError
from slimcaching.formulations import build_assignment_model, build_level_model, exact, lp_bound, solve_exact
from slimcaching.formulations import solve as solve_mod
from slimcaching.formulations.solve import (ObjectiveMismatch, TERMINATION, _check_objective,
                                            capacity_free_bound, start_placement)
from slimcaching.instances.generators import random_instance
from slimcaching.instances.model import Placement
from slimcaching.instances.validate import instance_from_dict
from slimcaching.objective import empty_latency, latency
from slimcaching.result import Status
from slimcaching.solvers import SolveReport

RTOL = 1e-7


# --------------------------------------------------------------- brute force
def tiny_dict(seed: int) -> dict:
    """Tiny instances: K in {1,2,3}, N in {1,2,3}, unequal sizes, unreachable and device nodes,
    per-layer latencies (see ``tests/reference.py``)."""
    return random_instance_dict(seed, max_layers=2, max_experts=3, max_k=3, max_nodes=3, max_users=3, max_cap=5)


SEEDS = list(range(44))


@pytest.mark.parametrize("seed", SEEDS)
def test_both_formulations_equal_brute_force(seed):
    d = tiny_dict(seed)
    inst = instance_from_dict(d)
    opt = brute_force(d)
    for formulation in ("level", "assignment"):
        res = exact(inst, formulation=formulation)
        assert res.status is Status.OPTIMAL, res.message
        assert res.feasible
        assert res.latency == pytest.approx(opt, rel=RTOL)
        assert res.bound <= res.latency + 1e-12
        assert res.bound == pytest.approx(opt, rel=1e-6)
        assert res.info["solver_objective"] == pytest.approx(opt, rel=1e-6)
    lp_a = lp_bound(inst, "assignment")
    lp_l = lp_bound(inst, "level")
    assert lp_a <= lp_l + 1e-9 * opt
    assert lp_l <= opt * (1 + 1e-9)


def test_brute_force_covers_the_regimes():
    """The seeds above really exercise K in {1,2,3}, N in {1,2,3}, unequal sizes,
    unreachable / device nodes and per-layer latencies."""
    ds = [tiny_dict(s) for s in SEEDS]
    ks = {max(len(st["experts"]) for u in d["users"] for r in u["routing"] for st in r) for d in ds}
    ns = {len(d["nodes"]) for d in ds}
    assert ks == {1, 2, 3} and ns == {1, 2, 3}
    assert any(len({lay["expert_size"] for lay in d["layers"]}) > 1 for d in ds)
    assert any(len(u["latency"]) < len(d["nodes"]) for d in ds for u in d["users"])
    assert any(isinstance(v, list) for d in ds for u in d["users"] for v in u["latency"].values())


def test_worked_example(worked_example):
    from slimcaching.instances.io import read_instance

    inst = read_instance(worked_example / "tiny.json")
    for formulation in ("level", "assignment"):
        res = solve_exact(inst, formulation)
        assert res.status is Status.OPTIMAL
        assert res.latency == pytest.approx(9.172273055346421, rel=1e-9)
        assert res.empty_latency == pytest.approx(13.648378615658398, rel=1e-12)


# --------------------------------------------------- the models themselves
def _fixed_value(model: pyo.ConcreteModel, placement: Placement, inst) -> float:
    """Objective of the model with ``x`` fixed to ``placement`` and the rest optimised."""
    from pyomo.contrib.solver.solvers.highs import Highs

    for (node, l, e), v in model.x.items():
        v.fix(1.0 if placement.x[inst.node_names.index(node), l, e] else 0.0)
    res = Highs().solve(model, load_solutions=False, raise_exception_on_nonoptimal_result=False)
    assert res.termination_condition is TerminationCondition.convergenceCriteriaSatisfied
    return float(res.incumbent_objective)


@pytest.mark.parametrize("seed", range(8))
def test_model_value_at_a_fixed_placement_is_T(seed):
    """For every binary x (capacity rows dropped), min over the other variables is T(x): the
    models are exact, not only at the optimum."""
    inst = instance_from_dict(tiny_dict(100 + seed))
    rng = np.random.default_rng(seed)
    x = rng.random((inst.N, inst.L, inst.max_experts)) < 0.5
    x &= inst.valid_mask()[None]
    x &= (inst.expert_size[None, :] <= inst.capacity[:, None])[:, :, None]  # an element that fits nowhere
    pl = Placement(x)                                                       # has no variable
    for build in (build_level_model, build_assignment_model):
        m = build(inst)
        m.del_component(m.capacity)  # fixed x may break capacity; T(x) is still defined
        got = _fixed_value(m, pl, inst)
        assert got == pytest.approx(latency(inst, pl), rel=1e-9)


def test_component_names_and_support():
    inst = random_instance(layers=2, experts=4, top_k=2, nodes=2, users=2, seed=3, capacity_fraction=0.5)
    m = build_assignment_model(inst)
    for name in ("x", "y", "z", "capacity", "assign", "link", "z_tau", "latency"):
        assert m.find_component(name) is not None, name
    lv = build_level_model(inst)
    for name in ("x", "a", "b", "capacity", "avail", "whole", "latency"):
        assert lv.find_component(name) is not None, name
    assert all(k[0] in inst.node_names for k in m.x)
    # only positive-probability (u, l, e) get variables
    active = {(inst.user_names[u], int(l), int(e))
              for u, l, row in zip(inst.set_user, inst.set_layer, inst.set_experts) for e in row if e >= 0}
    assert {k[:3] for k in m.y} == active
    assert {k[:3] for k in lv.a} <= active
    assert len(m.z) == inst.n_sets
    # the level objective carries T(empty) as its constant
    for v in lv.b.values():
        v.fix(0)
    for v in lv.x.values():
        v.fix(0)
    assert pyo.value(lv.latency) == pytest.approx(empty_latency(inst), rel=1e-12)


def test_nothing_fits_is_trivially_optimal():
    d = tiny_dict(5)
    for nd in d["nodes"]:
        nd["capacity"] = 0
    inst = instance_from_dict(d)
    res = exact(inst)
    assert res.status is Status.OPTIMAL
    assert res.latency == pytest.approx(empty_latency(inst), rel=1e-12)
    assert res.bound == pytest.approx(res.latency) and res.info["n_binaries"] == 0
    assert lp_bound(inst, "assignment") == pytest.approx(empty_latency(inst))


# ------------------------------------------------------------ solve wrapper
def test_time_limit_returns_incumbent_and_bound():
    inst = random_instance(layers=12, experts=16, top_k=2, nodes=4, users=4, seed=7)
    t0 = time.perf_counter()
    res = exact(inst, formulation="assignment", time_limit=2.0, seed=0)
    wall = time.perf_counter() - t0
    assert wall < 8.0
    assert res.status is Status.TIME_LIMIT, res.message
    assert res.feasible
    assert res.latency < res.empty_latency  # a real incumbent, not the empty placement
    assert res.bound is not None and res.bound < res.latency
    assert 0 < res.gap < 1
    assert res.info["termination_condition"] == "maxTimeLimit"
    assert res.latency <= latency(inst, start_placement(inst)) + 1e-15
    assert res.info["warm_start_source"] in ("fill", "best")


@pytest.mark.parametrize("seed", range(6))
def test_start_and_capacity_free_bound(seed):
    """The warm start is feasible and the capacity-free value is below the optimum."""
    d = tiny_dict(200 + seed)
    inst = instance_from_dict(d)
    start = start_placement(inst)
    assert start.is_feasible(inst)
    opt = brute_force(d)
    assert capacity_free_bound(inst) <= opt * (1 + 1e-12)
    assert latency(inst, start) >= opt * (1 - 1e-12)


def test_registry_and_result_record():
    inst = instance_from_dict(tiny_dict(3))
    res = run(inst, "exact", seed=4, formulation="assignment", mip_gap=0.0)
    assert res.algorithm == "exact" and res.seed == 4
    assert res.params == {"formulation": "assignment", "mip_gap": 0.0, "threads": None, "warm_start": True,
                          "tightenings": ["capacity-rounding", "cardinality"]}
    for key in ("build_time_s", "solve_time_s", "n_variables", "n_constraints", "formulation", "solver",
                "solver_version", "termination_condition"):
        assert key in res.info
    assert res.info["solver"] == "highs" and res.info["solver_version"].count(".") == 2
    doc = res.to_placement_dict(inst)
    assert doc["status"] == "optimal" and doc["bound"] == pytest.approx(res.latency, rel=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    ({"formulation": "dual"}, r"--formulation: unknown formulation 'dual'; valid: level, assignment"),
    ({"mip_gap": -0.1}, r"--mip-gap: must be a number in \[0, 1\), got -0.1"),
    ({"time_limit": 0}, r"--time-limit: must be a number > 0, got 0"),
    ({"threads": 0}, r"--param threads: must be an integer >= 1, got 0"),
    ({"eps": 0.1}, r"--param: unknown parameter\(s\) eps for the exact solver; valid: formulation, mip_gap, threads, warm_start, node_limit, solver, solver_options, start, tightenings"),
])
def test_bad_options(kwargs, match):
    inst = instance_from_dict(tiny_dict(1))
    with pytest.raises(InputError, match=match):
        exact(inst, **kwargs)


def test_lp_bound_bad_formulation():
    inst = instance_from_dict(tiny_dict(1))
    with pytest.raises(InputError, match=r"unknown formulation 'lagrange'"):
        lp_bound(inst, "lagrange")


def test_check_objective_is_strict():
    """The cross-check raises on any disagreement above 1e-6 relative."""
    inst = instance_from_dict(tiny_dict(2))
    res = exact(inst)
    t = res.latency
    _check_objective(inst, res.placement, t * (1 + 1e-9), True, "level")  # rounding: fine
    with pytest.raises(ObjectiveMismatch, match=r"solver objective .* but the evaluator gives T = "):
        _check_objective(inst, res.placement, t * (1 - 1e-5), False, "level")  # T(x) above the objective
    with pytest.raises(ObjectiveMismatch):
        _check_objective(inst, res.placement, t * (1 + 1e-5), True, "level")  # optimum claimed above T(x)
    _check_objective(inst, res.placement, t * (1 + 1e-5), False, "level")  # an incumbent may carry slack


class _Pending:
    def __init__(self, report):
        self.report = report

    def cancel(self, reason):
        pass

    def wait(self):
        return self.report


@pytest.mark.parametrize("tc, expected", [
    (TerminationCondition.error, Status.UNKNOWN),
    (TerminationCondition.unbounded, Status.UNKNOWN),
    (TerminationCondition.provenInfeasible, Status.INFEASIBLE),
    (TerminationCondition.maxTimeLimit, Status.TIME_LIMIT),
    (TerminationCondition.iterationLimit, Status.FEASIBLE),  # with the fallback incumbent and bound
    (TerminationCondition.convergenceCriteriaSatisfied, Status.UNKNOWN),  # "optimal" without a solution
])
def test_status_table_without_solution(monkeypatch, tc, expected):
    inst = instance_from_dict(tiny_dict(2))
    report = SolveReport(termination_condition=tc, solution_status=SolutionStatus.noSolution)
    monkeypatch.setattr(solve_mod, "start_solve", lambda build, **kw: _Pending(report))
    res = exact(inst, warm_start=False)
    assert res.status is expected
    assert res.placement == inst.empty_placement() and res.info["incumbent_source"] == "empty"
    assert res.bound == pytest.approx(capacity_free_bound(inst)) and res.info["bound_source"] == "capacity-free"
    assert tc.name in res.message and "returning the empty placement" in res.message
    if expected is Status.UNKNOWN and tc not in TERMINATION:
        assert "unrecognised termination condition" in res.message


@pytest.mark.parametrize("seed", range(4))
def test_loose_mip_gap_keeps_bounds_honest(seed):
    d = tiny_dict(300 + seed)
    inst = instance_from_dict(d)
    opt = brute_force(d)
    res = exact(inst, formulation="assignment", mip_gap=0.5, warm_start=False)
    assert res.status in (Status.OPTIMAL, Status.FEASIBLE)
    assert res.latency >= opt * (1 - 1e-9)
    assert res.bound <= opt * (1 + 1e-9)
    if res.status is Status.OPTIMAL:
        assert res.gap <= 1e-6


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_formulations_agree_on_random_instances(seed):
    """Larger random instances than the brute force allows: same optimum, ordered LP bounds."""
    inst = instance_from_dict(random_instance_dict(seed, max_layers=3, max_experts=5, max_k=3, max_nodes=3,
                                                   max_users=3, max_cap=6))
    lv = exact(inst, formulation="level")
    asg = exact(inst, formulation="assignment")
    assert lv.status is Status.OPTIMAL and asg.status is Status.OPTIMAL
    assert lv.latency == pytest.approx(asg.latency, rel=RTOL)
    assert capacity_free_bound(inst) <= lv.latency * (1 + 1e-12)
    lp_a, lp_l = lp_bound(inst, "assignment"), lp_bound(inst, "level")
    assert lp_a <= lp_l + 1e-9 * lv.latency and lp_l <= lv.latency * (1 + 1e-9)


def test_node_named_cloud_keeps_places_distinct():
    d = tiny_dict(7)
    d["nodes"][0]["name"] = "cloud"
    for u in d["users"]:
        if "n0" in u["latency"]:
            u["latency"]["cloud"] = u["latency"].pop("n0")
    inst = instance_from_dict(d)
    m = build_assignment_model(inst)
    places = {k[3] for k in m.y}
    assert "cloud*" in places
    assert exact(inst, formulation="assignment").latency == pytest.approx(brute_force(d), rel=RTOL)


def test_regression_start_values_not_mixed_with_a_better_objective():
    """HiGHS 1.16 once returned a MIP start's columns with a better solution's objective
    on this instance; the placement must be the optimum, not the start."""
    d = random_instance_dict(1, max_layers=3, max_experts=5, max_k=3, max_nodes=3, max_users=3, max_cap=6)
    inst = instance_from_dict(d)
    for formulation in ("assignment", "level"):
        res = exact(inst, formulation=formulation)
        assert res.status is Status.OPTIMAL
        assert res.latency == pytest.approx(brute_force(d), rel=RTOL)
