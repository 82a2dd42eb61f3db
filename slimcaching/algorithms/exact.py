"""``exact``: the MILP of :mod:`slimcaching.formulations` as a registered algorithm.

:func:`slimcaching.formulations.solve.exact` builds and solves the MILP; it
imports no algorithm.  Registered under the name ``exact``, it gets the
``best`` heuristic as the warm start it returns when the solver stops on the
time limit without an incumbent as good (on ``WARM_START_SHARE`` of the
budget, while the model is built in the solver process; skipped under a node
limit, which must not depend on the machine's speed).
"""
from __future__ import annotations

from ..formulations import solve as _solve
from ..instances.model import Instance
from ..result import Result
from .local_search import best

__all__ = ["exact"]


def exact(instance: Instance, *, seed: int | None = None, time_limit: float | None = None, **params) -> Result:
    """:func:`slimcaching.formulations.solve.exact` with ``best`` as the time-limit fallback.

    Parameters (``formulation``, ``mip_gap``, ``threads``, ``warm_start``,
    ``node_limit``, ``solver``, ``solver_options``, ``start``), result and
    guarantee are those of :func:`slimcaching.formulations.solve.exact`: with
    status ``optimal``, ``T(x) <= (1 + 1e-6) T(opt)``, and in every case
    ``bound <= T(opt) <= T(x)``, at every latency scale (the solver sees
    latencies in units of ``T(empty)``, and its answer is checked against the
    evaluator).  ``time_limit`` covers building and solving; Ctrl-C raises
    :class:`slimcaching.solvers.SolveInterrupted` carrying the result so far.
    """
    def heuristic(budget: float) -> Result:
        return best(instance, seed=seed, time_limit=budget)

    return _solve.exact(instance, seed=seed, time_limit=time_limit, heuristic=heuristic, **params)


