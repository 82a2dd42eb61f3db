"""The MILP back end shared by both problem families: HiGHS through Pyomo.

Pyomo's ``contrib.solver`` interface reports *why* a solve stopped (a
termination condition) apart from *what* it has (a solution status).  Both
families translate the termination condition into
:class:`~slimcaching.result.Status` through one table, :data:`TERMINATION`;
anything not in the table becomes ``unknown``, with the raw condition kept in
the message (as scipy's ``milp`` keeps the back end's status code).
"""
from __future__ import annotations

import time

from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition

from .result import Status

__all__ = ["TERMINATION", "translate_status", "highs"]

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
with the solver's bound.
"""


def translate_status(results) -> tuple[Status, bool, str]:
    """Pyomo/HiGHS results -> (``Status`` through :data:`TERMINATION`, has a solution, message).

    The message keeps the raw termination condition and solution status; an
    unrecognised condition becomes ``unknown``.  Used by every HiGHS solve of
    the project (both caching MILPs and the MoE² MILP).
    """
    tc = results.termination_condition
    status = TERMINATION.get(tc, Status.UNKNOWN)
    has_solution = results.solution_status in (SolutionStatus.optimal, SolutionStatus.feasible)
    message = f"HiGHS: {tc.name}, solution {results.solution_status.name}"
    if status is Status.UNKNOWN:
        message = f"unrecognised termination condition {tc!r}; " + message
    return status, has_solution, message


def highs(deadline: float | None = None):
    """Pyomo's HiGHS interface; ``deadline`` (a ``time.perf_counter()`` value) sets
    HiGHS's time limit after Pyomo has passed the model over, so that the
    transfer counts against the limit.

    No MIP start is handed to HiGHS: with HiGHS 1.16, ``setSolution`` followed
    by a solve that ends at the root returned the start's column values with
    the objective of a better solution (caught by the caching solver's
    evaluator cross-check on a 3-node instance).
    """
    from pyomo.contrib.solver.solvers.highs import Highs

    class _Highs(Highs):
        def _solve(self):
            if deadline is not None:
                self._active_config.time_limit = max(0.01, deadline - time.perf_counter())
            return super()._solve()

    return _Highs()
