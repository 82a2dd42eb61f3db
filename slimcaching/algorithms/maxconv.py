"""``maxconv``: the successive decomposition with approximate (max,+) convolutions.

Each single-node subproblem of :func:`~slimcaching.algorithms.successive.successive`
ends in a multiple-choice knapsack over layers; here it is solved by the
value-scaled DP of :func:`~slimcaching.algorithms.knapsack.approx_tables_dp`
(or the concave merge / exact DP when those are cheaper), whose value is at
least ``(1 - eps)`` times the exact one at a cost independent of the capacity.
"""
from __future__ import annotations

from ..instances.model import Instance
from ..result import Result
from .common import reject_unknown
from .successive import EPS_BOUNDS, make_guarantees, successive

__all__ = ["maxconv"]


def maxconv(instance: Instance, *, seed: int | None = None, time_limit: float | None = None,
            eps: float = 0.05, order: str = "greedy", layer_solver: str = "auto",
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
        Seconds; checked before each single-node solve, as in
        :func:`~slimcaching.algorithms.successive.successive`.
    eps : float
        ``0 < eps < 1``.
    order : {"greedy", "latency", "capacity", "given"} or sequence of node names / indices
        Default ``greedy``.
    layer_solver, max_enumerate
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
    ``>= (1 - eps) DP_n`` (see :func:`approx_tables_dp`).  With exact tables
    (:func:`~slimcaching.algorithms.successive.exact_tables`) ``DP_n`` is the
    optimum of the node's subproblem, so every step is
    ``alpha``-approximate with ``alpha = 1 - eps``, and Theorems 1, 2 and 4
    of :func:`~slimcaching.algorithms.successive.successive` give, for every
    order (fixed or greedy):

    * one node: ``R(maxconv) >= (1 - eps) R(opt)``;
    * ``K = 1``, any number of nodes: ``R(maxconv) >= (1 - eps)/(2 - eps) R(opt)``
      (TrimCaching states the weaker ``(1 - eps)/2``);
    * identical node latencies, disjoint activated sets, every set fitting
      every node: ``R(maxconv) >= (1 - eps)/(2 (2 - eps)) R(opt)``.

    For ``K >= 2`` outside the last regime no constant factor holds (Theorem
    3 there).  ``maxconv.guarantees`` states these at ``eps <= 0.5, 0.2, 0.1,
    0.05, 0.01``.  Time per node: table construction as in ``successive``
    plus ``O(L_+^2 / eps * sum_l m_l)``, independent of ``Q_n``; ``greedy``
    re-solves as described there.

    References
    ----------
    .. [1] O. H. Ibarra and C. E. Kim, "Fast approximation algorithms for the
       knapsack and sum of subset problems", J. ACM 22(4), 1975.
    .. [2] G. Qu, Z. Lin, F. Liu, X. Chen and K. Huang, "TrimCaching:
       Parameter-sharing AI model caching in wireless edge networks",
       ICDCS 2024, arXiv:2405.03990.
    """
    reject_unknown("maxconv", unknown, ("eps", "order", "layer_solver", "max_enumerate"))
    res = successive(instance, seed=seed, time_limit=time_limit, order=order, layer_solver=layer_solver,
                     max_enumerate=max_enumerate, eps=eps, _name="maxconv")
    return res


maxconv.guarantees = tuple(g for b in EPS_BOUNDS for g in make_guarantees(b))
