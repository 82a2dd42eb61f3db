"""The solver back end: the same answer in a child process and in-process, errors that come back
as what they are, a crashed solver process that loses nothing already known, and the status table."""
from __future__ import annotations

import os

import pyomo.environ as pyo
import pytest
from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition
from pyomo.opt import TerminationCondition as Legacy

from slimcaching.errors import InputError
from slimcaching.formulations import exact
from slimcaching.formulations import solve as solve_mod
from slimcaching.formulations.solve import capacity_free_bound
from slimcaching.instances.io import read_instance
from slimcaching.result import Status
from slimcaching.solvers import (LEGACY_TERMINATION, TERMINATION, parse_solver_options, solve_model,
                                 translate_status)

TINY = "instances/tiny/tiny-003.json"


def _knapsack():
    """max 5a + 4b + 3c s.t. 2a + 3b + c <= 4, binary: optimum a + c = 8 (as a minimisation of -value)."""
    m = pyo.ConcreteModel()
    m.x = pyo.Var(["a", "b", "c"], domain=pyo.Binary)
    m.cap = pyo.Constraint(expr=2 * m.x["a"] + 3 * m.x["b"] + m.x["c"] <= 4)
    m.obj = pyo.Objective(expr=-(5 * m.x["a"] + 4 * m.x["b"] + 3 * m.x["c"]))
    return m, list(m.x.values())


@pytest.mark.parametrize("isolate", [True, False])
def test_child_and_in_process_solves_agree(isolate):
    rep = solve_model(_knapsack, isolate=isolate, rel_gap=0.0)
    assert rep.isolated is isolate
    assert rep.termination_condition is TerminationCondition.convergenceCriteriaSatisfied
    assert rep.solution_status is SolutionStatus.optimal
    assert list(rep.values.round()) == [1.0, 0.0, 1.0]
    assert rep.objective == pytest.approx(-8.0) and rep.bound == pytest.approx(-8.0)
    assert rep.n_variables == 3 and rep.n_constraints == 1 and rep.stopped_by is None


def test_errors_in_the_solver_process_come_back():
    def broken():
        raise ValueError("no model today")

    with pytest.raises(RuntimeError, match=r"highs failed while solving: ValueError\('no model today'\)"):
        solve_model(broken)
    with pytest.raises(InputError, match=r"--solver-option: HiGHS rejects option bogus=1"):
        solve_model(_knapsack, options={"bogus": 1})


def test_a_solver_process_that_dies_loses_nothing_known(monkeypatch):
    """The child ends without an answer (as on an out-of-memory kill): the start and the
    capacity-free bound stand, and the message says what happened."""
    inst = read_instance(TINY)
    real = solve_mod.FORMULATIONS["level"]

    def dies(instance, relax=False):
        os._exit(3)

    monkeypatch.setitem(solve_mod.FORMULATIONS, "level", dies)
    res = exact(inst)
    assert res.status is Status.UNKNOWN and res.feasible
    assert res.info["incumbent_source"] == "fill" and res.bound == pytest.approx(capacity_free_bound(inst))
    assert "ended without an answer (exit code 3)" in res.message


def test_one_status_table_for_both_interfaces():
    assert TERMINATION[LEGACY_TERMINATION[Legacy.optimal]] is Status.OPTIMAL
    assert TERMINATION[LEGACY_TERMINATION[Legacy.maxTimeLimit]] is Status.TIME_LIMIT
    assert TERMINATION[LEGACY_TERMINATION[Legacy.infeasible]] is Status.INFEASIBLE
    assert TERMINATION[LEGACY_TERMINATION[Legacy.userInterrupt]] is Status.FEASIBLE

    class R:
        termination_condition = TerminationCondition.error
        solution_status = SolutionStatus.noSolution
        solver = "glpk"

    status, has, msg = translate_status(R())
    assert status is Status.UNKNOWN and not has and msg.startswith("unrecognised termination condition")
    assert "glpk: error, solution noSolution" in msg


def test_solver_options_parse():
    assert parse_solver_options(["a=1", "b=0.5", "c=on", "d=true", "e = x=y"]) == {
        "a": 1, "b": 0.5, "c": "on", "d": True, "e": "x=y"}
    with pytest.raises(InputError, match=r"--solver-option: expected KEY=VALUE, got '=3'"):
        parse_solver_options(["=3"])
