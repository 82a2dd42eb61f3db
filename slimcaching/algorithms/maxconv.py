"""(max,+) convolutions of per-layer tables, exact and approximate, and ``maxconv``.

The single-node subproblem of the successive decomposition (``MODEL.md``
section 1, :mod:`slimcaching.algorithms.successive`) ends in a
*multiple-choice knapsack* over layers: layer ``l`` offers the options
"cache ``c`` experts", ``c = 0..m_l``, of weight ``c * w_l`` storage units and
value ``h_l(c)`` (non-negative, ``h_l(0) = 0``); pick one option per layer,
total weight ``<= Q``, maximise the total value.  The recursion

.. math::

    F_l(q) = \\max_{c:\\ c w_l \\le q} F_{l-1}(q - c w_l) + h_l(c)

is a (max,+) convolution of ``F_{l-1}`` with the table of layer ``l``.  This
module solves it three ways:

* :func:`exact_tables_dp` -- the exact DP over storage, ``O(Q sum_l m_l)``;
* :func:`approx_tables_dp` -- value-scaled DP, total value ``>= (1 - eps)``
  times the exact one, time ``O(L_+^2 / eps * sum_l m_l)``, independent of ``Q``;
* :func:`concave_tables_merge` -- exact greedy merge of increments when every
  table is concave and every layer has the same weight.

:func:`maxconv` is the successive decomposition with the approximate
convolution.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..errors import InputError
from ..instances.model import Instance
from ..result import Guarantee, Result

__all__ = ["TablesSolution", "exact_tables_dp", "approx_tables_dp", "concave_tables_merge",
           "is_concave", "solve_tables", "maxconv", "reject_unknown"]


@dataclass
class TablesSolution:
    """A choice of one option per layer.

    Attributes
    ----------
    counts : int64 (L,)   chosen ``c_l``.
    value : float         ``sum_l h_l(c_l)``.
    weight : int          ``sum_l c_l w_l``.
    method : str          ``"exact"``, ``"approx"`` or ``"concave"``.
    info : dict           sizes of the DP (states, scale ``K``, ...).
    """

    counts: np.ndarray
    value: float
    weight: int
    method: str
    info: dict = field(default_factory=dict)


def _prepare(weights: Sequence[int], tables: Sequence[np.ndarray], Q: int):
    w = np.asarray(weights, dtype=np.int64)
    if len(w) != len(tables):
        raise ValueError("weights and tables must have the same length")
    if np.any(w <= 0):
        raise ValueError("weights must be positive integers")
    if Q < 0:
        raise ValueError("capacity must be non-negative")
    hs = []
    for l, h in enumerate(tables):
        h = np.asarray(h, dtype=np.float64)
        cmax = min(len(h) - 1, int(Q // w[l]))
        hs.append(h[: cmax + 1] if len(h) else np.zeros(1))
    return w, hs


def _finish(w: np.ndarray, hs: list[np.ndarray], counts: np.ndarray, method: str, info: dict) -> TablesSolution:
    value = float(sum(hs[l][c] for l, c in enumerate(counts)))
    return TablesSolution(counts=counts, value=value, weight=int((counts * w).sum()), method=method, info=info)


def exact_tables_dp(weights: Sequence[int], tables: Sequence[np.ndarray], Q: int) -> TablesSolution:
    """Exact (max,+) DP over storage ``q = 0..Q``.

    Parameters
    ----------
    weights : int (L,)
        ``w_l > 0``, storage units of one layer-``l`` expert.
    tables : sequence of float64 (m_l + 1,)
        ``h_l(c)``, with ``h_l(0) = 0``.
    Q : int
        Capacity in the same units.

    Returns
    -------
    TablesSolution
        An optimal choice (ties broken towards fewer experts).

    Notes
    -----
    ``F`` is kept as "best value with storage at most ``q``" (``F_0 = 0``), so
    it is non-decreasing in ``q``; each layer is ``m_l`` shifted maxima over a
    length-``Q + 1`` vector, ``O(Q sum_l m_l)`` time, and the argmax per
    ``(l, q)`` (``int16``) is kept for the backtrack, ``O(L Q)`` memory.
    """
    w, hs = _prepare(weights, tables, Q)
    L = len(w)
    F = np.zeros(Q + 1)
    choice = np.zeros((L, Q + 1), dtype=np.int16)
    for l in range(L):
        h = hs[l]
        if len(h) <= 1 or h[-1] <= 0:
            continue
        G = F.copy()
        ch = choice[l]
        for c in range(1, len(h)):
            if h[c] <= h[c - 1] and c > 1:
                continue  # never better than c - 1 (monotone tables)
            s = int(c * w[l])
            cand = F[: Q + 1 - s] + h[c]
            better = cand > G[s:]
            if better.any():
                G[s:] = np.where(better, cand, G[s:])
                ch[s:][better] = c
        F = G
    counts = np.zeros(L, dtype=np.int64)
    q = Q
    for l in range(L - 1, -1, -1):
        c = int(choice[l, q])
        counts[l] = c
        q -= c * int(w[l])
    return _finish(w, hs, counts, "exact", {"states": Q + 1})


def approx_tables_dp(weights: Sequence[int], tables: Sequence[np.ndarray], Q: int, eps: float) -> TablesSolution:
    """Approximate (max,+) convolution by value scaling.

    Returns a choice of value ``>= (1 - eps) * OPT``, where ``OPT`` is the
    value of :func:`exact_tables_dp` on the same input.

    Parameters
    ----------
    weights, tables, Q
        As in :func:`exact_tables_dp`.
    eps : float
        ``0 < eps < 1``.

    Notes
    -----
    Proof sketch.  Drop options with ``c w_l > Q``.  Let ``L_+`` be the number
    of layers with a positive option and ``V = max_{l,c} h_l(c)``; one option
    alone is feasible, so ``V <= OPT``.  Round ``r_l(c) = floor(h_l(c) / K)``
    with ``K = eps V / L_+``.  The DP over (layer, rounded value) stores the
    least weight reaching each rounded total *exactly*, which is exact for the
    rounded problem; let ``C`` be its best feasible choice and ``C*`` the
    exact optimum.  Then
    ``h(C) >= K r(C) >= K r(C*) >= h(C*) - L_+ K = OPT - eps V >= (1 - eps) OPT``,
    using ``h - K < K r <= h`` per layer.  The rounded totals are at most
    ``sum_l V / K = L_+^2 / eps``, so the time is
    ``O(L_+^2 / eps * sum_l m_l)`` and the memory ``O(L L_+^2 / eps)``:
    polynomial in ``L``, the table lengths and ``1/eps``, and independent of
    the magnitude of ``Q`` (weights are only added and compared).
    This is the classical knapsack FPTAS scaling [1]_ applied to the
    multiple-choice knapsack [2]_.

    References
    ----------
    .. [1] O. H. Ibarra and C. E. Kim, "Fast approximation algorithms for the
       knapsack and sum of subset problems", J. ACM 22(4), 1975.
    .. [2] H. Kellerer, U. Pferschy and D. Pisinger, *Knapsack Problems*,
       Springer, 2004, ch. 11 (multiple-choice knapsack).
    """
    if not 0 < eps < 1:
        raise InputError("--eps", ("", f"eps must satisfy 0 < eps < 1, got {eps!r}"))
    w, hs = _prepare(weights, tables, Q)
    L = len(w)
    active = [l for l in range(L) if len(hs[l]) > 1 and hs[l].max() > 0]
    if not active:
        return _finish(w, hs, np.zeros(L, dtype=np.int64), "approx", {"states": 0, "scale": None})
    V = max(float(hs[l].max()) for l in active)
    K = eps * V / len(active)
    BIG = np.iinfo(np.int64).max // 4
    R = 0
    Wmin = np.zeros(1, dtype=np.int64)
    choices: dict[int, np.ndarray] = {}
    for l in active:
        r = np.floor(hs[l] / K).astype(np.int64)
        r[0] = 0
        Rn = R + int(r.max())
        G = np.full(Rn + 1, BIG, dtype=np.int64)
        G[: R + 1] = Wmin
        ch = np.zeros(Rn + 1, dtype=np.int16)
        best_r = 0
        for c in range(1, len(r)):
            if r[c] <= best_r:
                continue  # same or lower rounded value at higher weight: dominated
            best_r = int(r[c])
            s = int(c * w[l])
            cand = np.where(Wmin < BIG, Wmin + s, BIG)
            tgt = G[r[c]: r[c] + R + 1]
            better = cand < tgt
            if better.any():
                tgt[better] = cand[better]
                ch[r[c]: r[c] + R + 1][better] = c
        Wmin, R = G, Rn
        choices[l] = ch
    feasible = np.nonzero(Wmin <= Q)[0]
    v = int(feasible.max())
    counts = np.zeros(L, dtype=np.int64)
    for l in reversed(active):
        c = int(choices[l][v])
        counts[l] = c
        v -= int(np.floor(hs[l][c] / K)) if c else 0
    _use_slack(w, hs, counts, Q)
    return _finish(w, hs, counts, "approx", {"states": R + 1, "scale": K, "eps": eps})


def _use_slack(w: np.ndarray, hs: list[np.ndarray], counts: np.ndarray, Q: int) -> None:
    """Raise counts in place, layer by layer, to the best option the remaining slack allows
    (never lowers the value; recovers what rounding gave away when storage is left over)."""
    slack = int(Q - (counts * w).sum())
    for l in range(len(w)):
        c = int(counts[l])
        top = min(len(hs[l]) - 1, c + slack // int(w[l]))
        if top > c:
            best = c + int(np.argmax(hs[l][c: top + 1]))
            if hs[l][best] > hs[l][c]:
                slack -= (best - c) * int(w[l])
                counts[l] = best


def is_concave(h: np.ndarray, tol: float = 1e-12) -> bool:
    """Whether ``h(c+1) - h(c)`` is non-increasing in ``c`` (within ``tol``)."""
    d = np.diff(np.asarray(h, dtype=float))
    return bool(np.all(np.diff(d) <= tol * max(1.0, float(np.abs(h).max(initial=0.0)))))


def concave_tables_merge(weights: Sequence[int], tables: Sequence[np.ndarray], Q: int) -> TablesSolution:
    """Exact solution when all ``w_l`` are equal and every ``h_l`` is concave.

    With a common weight ``w`` the constraint is "at most ``floor(Q / w)``
    experts in total"; concavity makes each layer's increments non-increasing,
    so taking the ``floor(Q / w)`` largest positive increments over all layers
    (ties by layer, then count) takes a prefix in every layer and is optimal
    (exchange argument).  ``O(M log M)`` for ``M = sum_l m_l`` increments.
    """
    w, hs = _prepare(weights, tables, Q)
    L = len(w)
    if L and (np.any(w != w[0]) or not all(is_concave(h) for h in hs)):
        raise ValueError("concave_tables_merge needs equal weights and concave tables")
    counts = np.zeros(L, dtype=np.int64)
    if L == 0:
        return _finish(w, hs, counts, "concave", {})
    inc = [np.diff(h) for h in hs]
    lay = np.concatenate([np.full(len(d), l) for l, d in enumerate(inc)]) if inc else np.zeros(0, int)
    pos = np.concatenate([np.arange(len(d)) for d in inc]) if inc else np.zeros(0, int)
    val = np.concatenate(inc) if inc else np.zeros(0)
    order = np.lexsort((pos, lay, -val))
    take = order[: int(Q // w[0])]
    take = take[val[take] > 0]
    np.add.at(counts, lay[take], 1)
    return _finish(w, hs, counts, "concave", {"increments": int(len(val))})


def solve_tables(weights: Sequence[int], tables: Sequence[np.ndarray], Q: int, eps: float | None = None
                 ) -> TablesSolution:
    """Pick the method: exact concave merge when it applies, else exact DP
    (``eps=None``) or the cheaper of the approximate and exact DP (``eps > 0``).

    The exact DP is used under ``eps`` when its state count ``Q + 1`` is no
    larger than the approximate one's bound ``L_+^2 / eps``; both satisfy the
    ``(1 - eps)`` guarantee, the exact one trivially.
    """
    w = np.asarray(weights, dtype=np.int64)
    hs = [np.asarray(h, dtype=float) for h in tables]
    if len(w) and np.all(w == w[0]) and all(is_concave(h) for h in hs):
        return concave_tables_merge(w, hs, Q)
    if eps is None:
        return exact_tables_dp(w, hs, Q)
    active = sum(1 for h in hs if len(h) > 1 and h.max() > 0)
    if Q + 1 <= active * active / eps:
        return exact_tables_dp(w, hs, Q)
    return approx_tables_dp(w, hs, Q, eps)


def reject_unknown(algorithm: str, unknown: dict, valid: Sequence[str]) -> None:
    """Raise :class:`InputError` for parameters an algorithm does not take (e.g. from ``--param``)."""
    if unknown:
        names = ", ".join(sorted(unknown))
        raise InputError("--param", ("", f"{algorithm} does not take {names}; valid parameters: "
                                         f"{', '.join(valid) or 'none'}"))


def maxconv(instance: Instance, *, seed: int | None = None, time_limit: float | None = None,
            eps: float = 0.05, order: str = "latency", layer_solver: str = "auto",
            max_enumerate: int = 16, **unknown) -> Result:
    """Successive greedy decomposition with approximate (max,+) convolutions.

    Problem: minimise ``T(x)`` (``MODEL.md`` section 1).  Same node-by-node
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
    from .successive import successive

    reject_unknown("maxconv", unknown, ("eps", "order", "layer_solver", "max_enumerate"))
    res = successive(instance, seed=seed, time_limit=time_limit, order=order, layer_solver=layer_solver,
                     max_enumerate=max_enumerate, eps=eps, _name="maxconv")
    return res


def _one_node_exact_tables(inst: Instance, params: dict) -> bool:
    """One node, and every layer small enough to be enumerated under ``params``."""
    if inst.N != 1 or params.get("layer_solver", "auto") == "heuristic":
        return False
    return int(inst.experts.max(initial=0)) <= int(params.get("max_enumerate", 16))


def _eps_guarantee(bound: float) -> Guarantee:
    return Guarantee(
        ratio=1.0 - bound,
        regime=f"one node, every layer enumerated exactly (E_l <= max_enumerate), eps <= {bound:g}",
        reference="value-scaled (max,+) DP, Ibarra & Kim, J. ACM 1975; exact per-layer tables (this module)",
        applies=lambda inst, params, b=bound: (_one_node_exact_tables(inst, params)
                                               and float(params.get("eps", 0.05)) <= b),
    )


maxconv.guarantees = tuple(_eps_guarantee(b) for b in (0.5, 0.2, 0.1, 0.05, 0.01))
