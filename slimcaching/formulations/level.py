"""The *level* MILP (``docs/model.md`` section 1), the tighter of the two.

For each ``(u, l)`` let ``theta_1 < ... < theta_m`` be the distinct latencies
``t[u,n,l]`` of the useful nodes (reachable, faster than the cloud, the expert
fits) and ``theta_{m+1} = c[u,l]``.  With ``D_j = theta_{j+1} - theta_j > 0``:

.. math::

    \\min\\ & T(\\emptyset) - \\sum_{u,l,S} w_u p_{u,l,S} \\sum_{j=1}^{m} D_j\\, b_{u,l,S,j} \\\\
    \\text{s.t.}\\ & \\textstyle\\sum_{l,e} s_l x_{n,l,e} \\le Q_n                               && \\text{capacity}[n] \\\\
    & a_{u,l,e,j} \\le \\textstyle\\sum_{n:\\ t_{u,n,l} \\le \\theta_j} x_{n,l,e}                 && \\text{avail}[u,l,e,j] \\\\
    & b_{u,l,S,j} \\le a_{u,l,e,j}\\quad (e \\in S)                                            && \\text{whole}[u,l,S,e,j] \\\\
    & x \\in \\{0,1\\},\\ a, b \\in [0,1].

Why it is exact: for a binary ``x`` the best ``b[u,l,S,j]`` is 1 exactly when
every expert of ``S`` is cached at latency ``<= theta_j``, i.e. when the set
latency ``max_{e in S} tau[u,l,e](x) <= theta_j``.  If that latency is
``theta_k`` the telescoping sum gives ``sum_{j >= k} D_j = c[u,l] - theta_k``,
the set's saving over the cloud (0 when some member stays in the cloud).  The
objective keeps ``T(empty)`` (the evaluator's cloud-only latency) as a
constant, so it is in seconds per token and equals the assignment model's.

Indices: ``a[user-0,3,17,2]`` (user name, layer, expert, level ``j`` from 1),
``b[user-0,3,5,2]`` (user name, layer, position of the set in the routing
list, level).
"""
from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from ..instances.model import Instance
from ..objective import empty_latency
from .assignment import (add_capacity, add_x, linear, set_index, support, triple_index, _csr)

__all__ = ["build_level_model", "levels"]


def levels(instance: Instance) -> dict[tuple[int, int], np.ndarray]:
    """``(u, l) -> float64 (m+1,)``: ``theta_1 < ... < theta_m`` and ``theta_{m+1} = c[u,l]``.

    Only pairs with at least one useful node are listed.
    """
    sup = support(instance)
    L = instance.L
    t = sup.option_triple
    group = sup.triples[t, 0] * L + sup.triples[t, 1]
    out: dict[tuple[int, int], np.ndarray] = {}
    if len(t) == 0:
        return out
    order = np.lexsort((sup.option_latency, group))
    g_sorted, lat_sorted = group[order], sup.option_latency[order]
    bounds = np.flatnonzero(np.diff(g_sorted)) + 1
    for gs, ls in zip(np.split(g_sorted, bounds), np.split(lat_sorted, bounds)):
        u, l = divmod(int(gs[0]), L)
        out[(u, l)] = np.append(np.unique(ls), instance.cloud_latency[u, l])
    return out


def build_level_model(instance: Instance, *, relax: bool = False) -> pyo.ConcreteModel:
    """The level MILP of ``docs/model.md`` section 1 as a Pyomo ``ConcreteModel``.

    Parameters
    ----------
    instance : Instance
    relax : bool, default False
        Make ``x`` continuous in ``[0, 1]`` (the LP relaxation).

    Returns
    -------
    pyomo.environ.ConcreteModel
        Components ``x``, ``a``, ``b``, ``capacity``, ``avail``, ``whole`` and
        the objective ``latency`` (seconds per token, ``T(empty)`` included as
        a constant).

    Notes
    -----
    With ``m_{ul}`` levels, ``|a| = sum_{(u,l,e)} m_{ul}``, ``|b| = sum_S m_{ul}``,
    rows ``N + |a| + sum_S |S| m_{ul}``; ``avail`` rows have at most ``N + 1``
    terms.  Its LP relaxation is never weaker than the assignment model's.
    Take an LP point of this model with ``a_{e,j} = min(1, sum_{t_n <= theta_j} x_n)``
    (raising ``a`` changes nothing else).  ``a_{e,.}`` is a distribution function
    over the levels whose increments fit under ``x``, so it defines an
    assignment point ``y_e`` with ``E[tau_e] = c - sum_j D_j a_{e,j}``; then
    ``z = max_e E[tau_e] <= c - sum_j D_j min_e a_{e,j} <= c - sum_j D_j b_j``.
    Every level LP value is therefore matched or beaten by an assignment LP
    point, i.e. ``LP(assignment) <= LP(level) <= T(opt)``.
    """
    sup = support(instance)
    m = pyo.ConcreteModel(name=f"level[{instance.name}]")
    xidx = add_x(m, instance, relax)
    theta = levels(instance)
    L = instance.L
    # -- triples and set rows that get levels, with their level counts
    tu, tl = sup.triples[:, 0], sup.triples[:, 1]
    nlev_group = np.zeros(instance.U * L, dtype=np.int64)
    for (u, l), th in theta.items():
        nlev_group[u * L + l] = len(th) - 1
    t_lev = nlev_group[tu * L + tl]
    r_lev = nlev_group[instance.set_user * L + instance.set_layer]
    tidx = triple_index(instance, sup)
    sidx = set_index(instance)
    a_idx = [k + (j,) for k, mm in zip(tidx, t_lev.tolist()) for j in range(1, mm + 1)]
    b_idx = [k + (j,) for k, mm in zip(sidx, r_lev.tolist()) for j in range(1, mm + 1)]
    m.a = pyo.Var(a_idx, domain=pyo.UnitInterval, dense=True)
    m.b = pyo.Var(b_idx, domain=pyo.UnitInterval, dense=True)
    add_capacity(m, instance, xidx)
    a_start = np.concatenate([[0], np.cumsum(t_lev)])
    b_start = np.concatenate([[0], np.cumsum(r_lev)])
    av = list(m.a.values())
    bv = list(m.b.values())
    _add_avail(m, instance, theta, xidx, a_idx, a_start, t_lev, av)
    _add_whole(m, instance, sup, sidx, a_start, b_start, r_lev, av, bv)
    # -- objective: T(empty) - sum w p D_j b
    coefs = np.zeros(len(b_idx))
    for r in np.flatnonzero(r_lev).tolist():
        th = theta[(int(instance.set_user[r]), int(instance.set_layer[r]))]
        coefs[b_start[r]:b_start[r + 1]] = -instance.coef[r] * np.diff(th)
    m.latency = pyo.Objective(expr=linear(coefs, bv, constant=empty_latency(instance)), sense=pyo.minimize)
    m._support = sup
    return m


def _add_avail(m, instance, theta, xidx, a_idx, a_start, t_lev, av) -> None:
    """``avail[u,l,e,j]``: ``a[u,l,e,j] <= sum_{n: t[u,n,l] <= theta_j} x[n,l,e]``."""
    sup = support(instance)
    xv = [m.x[i] for i in xidx]
    order, ptr = _csr(sup.option_triple, len(sup.triples))
    exprs = {}
    for t in np.flatnonzero(t_lev).tolist():
        u, l = int(sup.triples[t, 0]), int(sup.triples[t, 1])
        th = theta[(u, l)]
        ii = order[ptr[t]:ptr[t + 1]]
        lat, els = sup.option_latency[ii], sup.option_element[ii]
        for j in range(1, int(t_lev[t]) + 1):
            pos = int(a_start[t]) + j - 1
            sel = els[lat <= th[j - 1]].tolist()
            vs = [av[pos]] + [xv[e] for e in sel]
            exprs[a_idx[pos]] = (None, linear(np.append(1.0, -np.ones(len(sel))), vs), 0)
    m.avail = pyo.Constraint(a_idx, rule=lambda m, *k: exprs[k])


def _add_whole(m, instance, sup, sidx, a_start, b_start, r_lev, av, bv) -> None:
    """``whole[u,l,S,e,j]``: ``b[u,l,S,j] <= a[u,l,e,j]`` for every member ``e`` of ``S``."""
    idx, exprs = [], {}
    one_minus_one = (1.0, -1.0)
    for r, t in zip(sup.member_row.tolist(), sup.member_triple.tolist()):
        mm = int(r_lev[r])
        if not mm:
            continue
        e = int(sup.triples[t, 2])
        b0, a0 = int(b_start[r]), int(a_start[t])
        for j in range(mm):
            key = sidx[r] + (e, j + 1)
            idx.append(key)
            exprs[key] = (None, linear(one_minus_one, (bv[b0 + j], av[a0 + j])), 0)
    m.whole = pyo.Constraint(idx, rule=lambda m, *k: exprs[k])
