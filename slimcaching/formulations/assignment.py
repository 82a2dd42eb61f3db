"""The *assignment* MILP (``docs/model.md`` section 1) and the index sets both MILPs share.

.. math::

    \\min\\ & \\sum_{u,l,S} w_u p_{u,l,S}\\, z_{u,l,S} \\\\
    \\text{s.t.}\\ & \\textstyle\\sum_{l,e} s_l x_{n,l,e} \\le Q_n                      && \\text{capacity}[n] \\\\
    & \\textstyle\\sum_{n} y_{u,l,e,n} + y_{u,l,e,\\mathrm{cloud}} = 1                   && \\text{assign}[u,l,e] \\\\
    & y_{u,l,e,n} \\le x_{n,l,e}                                                        && \\text{link}[u,l,e,n] \\\\
    & z_{u,l,S} \\ge \\tau_{u,l,e} = \\textstyle\\sum_n t_{u,n,l} y_{u,l,e,n} + c_{u,l} y_{u,l,e,\\mathrm{cloud}}
                                                                                        && \\text{z\\_tau}[u,l,S,e] \\\\
    & x \\in \\{0,1\\},\\ y \\in [0,1],\\ z \\ge 0.

Component names follow ``docs/model.md``.  Indices are readable: ``x[edge-0,3,17]``
(node name, layer, expert), ``y[user-0,3,17,edge-0]`` (user name, layer,
expert, place, the cloud being ``cloud``), ``z[user-0,3,5]`` (user name, layer,
position of the set in that user's layer-3 routing list).

Only what can matter gets a variable (the optimum is unchanged):

* ``(u, l, e)`` with positive activation probability, and the sets ``S`` of
  the routing table (all have ``p > 0``);
* a place ``n`` for ``(u, l, e)`` only when ``n`` is reachable by ``u``,
  strictly faster than the cloud (``t[u,n,l] < c[u,l]``) and the expert fits
  (``s_l <= Q_n``); any other node is dominated by the cloud;
* ``x[n,l,e]`` only when some such ``(u, l, e, n)`` exists; every other
  element appears in a capacity row alone, so it is 0 in some optimum.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo
from pyomo.core.expr.numeric_expr import LinearExpression

from ..instances.model import Instance

__all__ = ["Support", "support", "build_assignment_model", "CLOUD"]

CLOUD = "cloud"
"""The place name of the cloud in ``y`` indices (``cloud*`` if a node is called ``cloud``)."""


@dataclass(frozen=True)
class Support:
    """Index sets of both formulations, computed with numpy from the flat arrays.

    Attributes
    ----------
    triples : int64 (k, 3)
        ``(u, l, e)`` with positive activation probability, sorted by ``(u, l, e)``.
    option_triple, option_node : int64 (q,)
        Useful places: triple ``option_triple[i]`` may be served by node
        ``option_node[i]`` (reachable, faster than the cloud, expert fits).
    option_latency : float64 (q,)
        ``t[u,n,l]`` of each option.
    elements : int64 (m, 3)
        The ``(n, l, e)`` that get an ``x`` variable, sorted.
    option_element : int64 (q,)
        Row of ``elements`` of each option.
    member_row, member_triple : int64 (nnz,)
        Set membership: routing row ``member_row[i]`` contains triple ``member_triple[i]``.
    row_pos : int64 (S,)
        Position of each routing row within its ``(u, l)`` list.
    cloud_name : str
        Place name used for the cloud.
    """

    triples: np.ndarray
    option_triple: np.ndarray
    option_node: np.ndarray
    option_latency: np.ndarray
    elements: np.ndarray
    option_element: np.ndarray
    member_row: np.ndarray
    member_triple: np.ndarray
    row_pos: np.ndarray
    cloud_name: str


def support(instance: Instance) -> Support:
    """The :class:`Support` of ``instance`` (cached on the instance)."""
    cached = instance.__dict__.get("_formulation_support")
    if cached is not None:
        return cached
    L, E = instance.L, instance.max_experts
    se = instance.set_experts
    rows, cols = np.nonzero(se >= 0)
    keys = (instance.set_user[rows] * L + instance.set_layer[rows]) * E + se[rows, cols]
    tkeys, member_triple = np.unique(keys, return_inverse=True)
    triples = np.stack([tkeys // (L * E), (tkeys // E) % L, tkeys % E], axis=1).astype(np.int64)
    tu, tl, te = triples[:, 0], triples[:, 1], triples[:, 2]
    lat = instance.latency[tu, :, tl]                                   # (k, N)
    fits = instance.expert_size[tl][:, None] <= instance.capacity[None, :]
    useful = np.isfinite(lat) & (lat < instance.cloud_latency[tu, tl][:, None]) & fits
    opt_t, opt_n = np.nonzero(useful)
    ekeys = (opt_n * L + tl[opt_t]) * E + te[opt_t]
    uniq, opt_el = np.unique(ekeys, return_inverse=True)
    elements = np.stack([uniq // (L * E), (uniq // E) % L, uniq % E], axis=1).astype(np.int64)
    pos = np.arange(instance.n_sets, dtype=np.int64)
    group = instance.set_user * L + instance.set_layer
    row_pos = pos - instance.offsets[group]
    cloud = CLOUD
    while cloud in instance.node_names:
        cloud += "*"
    sup = Support(triples=triples, option_triple=opt_t.astype(np.int64), option_node=opt_n.astype(np.int64),
                  option_latency=lat[opt_t, opt_n], elements=elements, option_element=opt_el.astype(np.int64),
                  member_row=rows.astype(np.int64), member_triple=member_triple.astype(np.int64),
                  row_pos=row_pos.astype(np.int64), cloud_name=cloud)
    object.__setattr__(instance, "_formulation_support", sup)
    return sup


# ---------------------------------------------------------------- helpers
def linear(coefs, variables, constant: float = 0.0) -> LinearExpression:
    """``constant + sum coefs[i] * variables[i]`` built directly (no operator overloading)."""
    from pyomo.core.expr.numeric_expr import MonomialTermExpression

    args = [MonomialTermExpression((float(c), v)) for c, v in zip(coefs, variables)]
    if constant:
        args.insert(0, float(constant))
    return LinearExpression(args)


def element_index(instance: Instance, sup: Support) -> list[tuple[str, int, int]]:
    """Readable ``x`` indices ``(node name, l, e)``."""
    names = instance.node_names
    return [(names[n], int(l), int(e)) for n, l, e in sup.elements.tolist()]


def triple_index(instance: Instance, sup: Support) -> list[tuple[str, int, int]]:
    """Readable ``(user name, l, e)`` indices."""
    names = instance.user_names
    return [(names[u], int(l), int(e)) for u, l, e in sup.triples.tolist()]


def set_index(instance: Instance) -> list[tuple[str, int, int]]:
    """Readable ``(user name, l, position)`` indices of the routing rows."""
    sup = support(instance)
    names = instance.user_names
    return [(names[u], int(l), int(k))
            for u, l, k in zip(instance.set_user.tolist(), instance.set_layer.tolist(), sup.row_pos.tolist())]


def add_x(m: pyo.ConcreteModel, instance: Instance, relax: bool) -> list[tuple[str, int, int]]:
    """``x[n,l,e]``: binary (``[0,1]`` when ``relax``); returns the index list."""
    idx = element_index(instance, support(instance))
    m.x = pyo.Var(idx, domain=pyo.UnitInterval if relax else pyo.Binary, dense=True)
    return idx


def add_capacity(m: pyo.ConcreteModel, instance: Instance, xidx: list) -> None:
    """``capacity[n]``: ``sum_{l,e} s_l x[n,l,e] <= Q_n`` (nodes without variables skipped)."""
    sup = support(instance)
    xv = [m.x[i] for i in xidx]
    size = instance.expert_size[sup.elements[:, 1]] if len(sup.elements) else np.zeros(0)
    by_node: dict[int, list[int]] = {}
    for i, n in enumerate(sup.elements[:, 0].tolist()):
        by_node.setdefault(n, []).append(i)
    nodes = [instance.node_names[n] for n in sorted(by_node)]
    exprs = {instance.node_names[n]: (None, linear(size[ii], [xv[i] for i in ii]), int(instance.capacity[n]))
             for n, ii in by_node.items()}
    m.capacity = pyo.Constraint(nodes, rule=lambda m, n: exprs[n])


def _csr(owner: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Order and pointer array grouping positions by ``owner`` (``0 <= owner < size``)."""
    order = np.argsort(owner, kind="stable")
    ptr = np.zeros(size + 1, dtype=np.int64)
    np.add.at(ptr, owner + 1, 1)
    return order, np.cumsum(ptr)


# ------------------------------------------------------------------ model
def build_assignment_model(instance: Instance, *, relax: bool = False) -> pyo.ConcreteModel:
    """The assignment MILP of ``docs/model.md`` section 1 as a Pyomo ``ConcreteModel``.

    Parameters
    ----------
    instance : Instance
    relax : bool, default False
        Make ``x`` continuous in ``[0, 1]`` (the LP relaxation).

    Returns
    -------
    pyomo.environ.ConcreteModel
        Components ``x``, ``y``, ``z``, ``capacity``, ``assign``, ``link``,
        ``z_tau`` and the objective ``latency`` (seconds per token, the value
        of ``T`` at the extracted placement when solved to optimality).

    Notes
    -----
    Sizes: ``|x| = m`` useful elements, ``|y| = k + q`` (triples plus useful
    places), ``|z| = S`` routing rows; rows ``N + k + q + nnz`` with ``nnz``
    the total set size.  Every index set is computed with numpy; the Pyomo
    expressions are built directly as ``LinearExpression`` objects.
    """
    sup = support(instance)
    m = pyo.ConcreteModel(name=f"assignment[{instance.name}]")
    xidx = add_x(m, instance, relax)
    _add_y(m, instance)
    _add_z(m, instance)
    add_capacity(m, instance, xidx)
    _add_assign(m, instance)
    _add_link(m, instance, xidx)
    _add_z_tau(m, instance)
    zv = list(m.z.values())
    m.latency = pyo.Objective(expr=linear(instance.coef, zv), sense=pyo.minimize)
    m._support = sup
    return m


def _y_index(instance: Instance) -> tuple[list, list]:
    sup = support(instance)
    tidx = triple_index(instance, sup)
    names = instance.node_names
    node_y = [tidx[t] + (names[n],) for t, n in zip(sup.option_triple.tolist(), sup.option_node.tolist())]
    cloud_y = [t + (sup.cloud_name,) for t in tidx]
    return node_y, cloud_y


def _add_y(m: pyo.ConcreteModel, instance: Instance) -> None:
    node_y, cloud_y = _y_index(instance)
    m.y = pyo.Var(node_y + cloud_y, domain=pyo.UnitInterval, dense=True)
    m._node_y, m._cloud_y = node_y, cloud_y


def _add_z(m: pyo.ConcreteModel, instance: Instance) -> None:
    m.z = pyo.Var(set_index(instance), domain=pyo.NonNegativeReals, dense=True)


def _add_assign(m: pyo.ConcreteModel, instance: Instance) -> None:
    """``assign[u,l,e]``: ``sum_n y[u,l,e,n] + y[u,l,e,cloud] = 1``."""
    sup = support(instance)
    tidx = triple_index(instance, sup)
    yn = [m.y[i] for i in m._node_y]
    yc = [m.y[i] for i in m._cloud_y]
    order, ptr = _csr(sup.option_triple, len(tidx))
    exprs = {}
    for t, key in enumerate(tidx):
        vs = [yn[i] for i in order[ptr[t]:ptr[t + 1]].tolist()] + [yc[t]]
        exprs[key] = (linear(np.ones(len(vs)), vs), 1)
    m.assign = pyo.Constraint(tidx, rule=lambda m, *k: exprs[k])


def _add_link(m: pyo.ConcreteModel, instance: Instance, xidx: list) -> None:
    """``link[u,l,e,n]``: ``y[u,l,e,n] <= x[n,l,e]``."""
    sup = support(instance)
    xv = [m.x[i] for i in xidx]
    yn = [m.y[i] for i in m._node_y]
    exprs = {key: (None, linear((1.0, -1.0), (yn[i], xv[el])), 0)
             for i, (key, el) in enumerate(zip(m._node_y, sup.option_element.tolist()))}
    m.link = pyo.Constraint(m._node_y, rule=lambda m, *k: exprs[k])


def _add_z_tau(m: pyo.ConcreteModel, instance: Instance) -> None:
    """``z_tau[u,l,S,e]``: ``z[u,l,S] >= tau[u,l,e]`` (``tau`` the ``y``-weighted latency)."""
    sup = support(instance)
    k = len(sup.triples)
    yn = [m.y[i] for i in m._node_y]
    yc = [m.y[i] for i in m._cloud_y]
    order, ptr = _csr(sup.option_triple, k)
    tu, tl = sup.triples[:, 0], sup.triples[:, 1]
    cl = instance.cloud_latency[tu, tl]
    tau_vars, tau_coefs = [], []
    for t in range(k):
        ii = order[ptr[t]:ptr[t + 1]].tolist()
        tau_vars.append([yn[i] for i in ii] + [yc[t]])
        tau_coefs.append(np.append(sup.option_latency[ii], cl[t]))
    zv = list(m.z.values())
    sidx = list(m.z.keys())
    idx, exprs = [], {}
    for r, t in zip(sup.member_row.tolist(), sup.member_triple.tolist()):
        key = sidx[r] + (int(sup.triples[t, 2]),)
        idx.append(key)
        exprs[key] = (None, linear(np.append(tau_coefs[t], -1.0), tau_vars[t] + [zv[r]]), 0)
    m.z_tau = pyo.Constraint(idx, rule=lambda m, *k: exprs[k])
