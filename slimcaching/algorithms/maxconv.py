"""``maxconv``: the successive decomposition with approximate (max,+) convolutions.

Each single-node subproblem of :func:`~slimcaching.algorithms.successive.successive`
ends in a multiple-choice knapsack over layers; here it is solved by the
value-scaled DP of :func:`~slimcaching.algorithms.knapsack.approx_tables_dp`
(or the concave merge / exact DP when those are cheaper), whose value is at
least ``(1 - eps)`` times the exact one at a cost independent of the capacity.
"""
from __future__ import annotations

from ..instances.model import Instance
from ..result import Guarantee, Result
from .common import reject_unknown
from .knapsack import one_node_exact_tables
from .successive import successive

__all__ = ["maxconv"]


def maxconv(instance: Instance, *, seed: int | None = None, time_limit: float | None = None,
            eps: float = 0.05, order: str = "latency", layer_solver: str = "auto",
            max_enumerate: int = 16, **unknown) -> Result:
    """Successive greedy decomposition with approximate (max,+) convolutions.

    Problem: minimise ``T(x)`` (``docs/model.md`` section 1).  Same node-by-node
    decomposition as :func:`~slimcaching.algorithms.successive.successive`,
    but each single-node DP over layers is solved by :func:`solve_tables` with
    ``eps``: the concave merge when it applies, otherwise the value-scaled DP
    (or the exact DP when that is cheaper).

    Parameters
    ----------
    instance : Instance
    seed : int, optional
        Unused (deterministic); recorded.
    time_limit : float, optional
        Seconds; checked between nodes.  On expiry the nodes not yet visited
        stay empty and the status is ``time_limit``.
    eps : float
        ``0 < eps < 1``.
    order, layer_solver, max_enumerate
        As in :func:`~slimcaching.algorithms.successive.successive`.

    Returns
    -------
    Result
        ``info["nodes"]`` lists per node the per-layer method, the DP method
        (``exact`` / ``approx`` / ``concave``) and the predicted value.

    Notes
    -----
    Guarantee.  Let ``DP_n`` be the exact single-node DP value over the
    per-layer tables.  Each node's committed extra reduction is
    ``>= (1 - eps) DP_n`` (see :func:`approx_tables_dp`).  With one node and
    every layer enumerated exactly, ``DP`` is the optimum, hence
    ``R(maxconv) >= (1 - eps) R(opt)``.  With several nodes there is no
    proven bound.  Time per node: table construction as in ``successive``
    plus ``O(L_+^2 / eps * sum_l m_l)``, independent of ``Q_n``.
    """
    reject_unknown("maxconv", unknown, ("eps", "order", "layer_solver", "max_enumerate"))
    res = successive(instance, seed=seed, time_limit=time_limit, order=order, layer_solver=layer_solver,
                     max_enumerate=max_enumerate, eps=eps, _name="maxconv")
    return res


def _eps_guarantee(bound: float) -> Guarantee:
    return Guarantee(
        ratio=1.0 - bound,
        regime=f"one node, every layer enumerated exactly (E_l <= max_enumerate), eps <= {bound:g}",
        reference="value-scaled (max,+) DP, Ibarra & Kim, J. ACM 1975; exact per-layer tables (this module)",
        applies=lambda inst, params, b=bound: (one_node_exact_tables(inst, params)
                                               and float(params.get("eps", 0.05)) <= b),
    )


maxconv.guarantees = tuple(_eps_guarantee(b) for b in (0.5, 0.2, 0.1, 0.05, 0.01))
