"""The one evaluator of the objective ``T(x)`` (``docs/model.md`` section 1).

.. math::

    \\tau_{u,l,e}(x) = \\min\\bigl(c_{u,l},\\ \\min\\{t_{u,n,l} : x_{n,l,e} = 1\\}\\bigr),\\qquad
    T(x) = \\sum_u w_u \\sum_l \\sum_S p_{u,l,S} \\max_{e \\in S} \\tau_{u,l,e}(x),

and ``R(x) = T(empty) - T(x)``.  Unreachable nodes carry ``t = inf`` so they
never win the minimum.  Everything is vectorised over the flat routing table
of :class:`~slimcaching.instances.model.Instance`: one gather of ``tau`` per
set member and a row-wise maximum.

:func:`evaluate` is the full evaluation; :class:`IncrementalEvaluator` keeps
``tau`` and the per-set latencies of a current placement and answers the gain
of adding / removing elements by touching only the routing rows that contain
the changed ``(l, e)`` keys.  Every algorithm reports latencies computed here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from .instances.model import Instance, Placement

__all__ = ["Evaluation", "evaluate", "latency", "empty_latency", "tau", "set_latency", "activation_marginals",
           "member_index", "IncrementalEvaluator"]


# ----------------------------------------------------------------- helpers
def _cached(instance: Instance, key: str, build):
    v = instance.__dict__.get(key)
    if v is None:
        v = build()
        object.__setattr__(instance, key, v)
    return v


def member_index(instance: Instance) -> np.ndarray:
    """``int64 (S, Kmax)``: index of each set member in ``tau.ravel()``; padding
    points at one sentinel slot past the end (holding 0, latencies are > 0)."""
    def build():
        L, E = instance.L, instance.max_experts
        se = instance.set_experts
        flat = (instance.set_user[:, None] * L + instance.set_layer[:, None]) * E + se
        sentinel = instance.U * L * E
        flat = np.where(se >= 0, flat, sentinel).astype(np.int64)
        flat.setflags(write=False)
        return flat
    return _cached(instance, "_member_index", build)


def activation_marginals(instance: Instance) -> np.ndarray:
    """``float64 (U, L, Emax)``: ``q[u,l,e] = sum_{S containing e} p[u,l,S]``."""
    q = np.zeros(instance.U * instance.L * instance.max_experts + 1)  # last slot: padding sentinel
    flat = member_index(instance)
    np.add.at(q, flat.ravel(), np.repeat(instance.set_prob, flat.shape[1]))
    return q[:-1].reshape(instance.U, instance.L, instance.max_experts)


def _inverse(instance: Instance) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR index from key ``l*Emax + e`` to the routing rows containing ``e``
    (all users) and its column in ``set_experts``."""
    def build():
        E = instance.max_experts
        se = instance.set_experts
        rows, cols = np.nonzero(se >= 0)
        keys = instance.set_layer[rows] * E + se[rows, cols]
        order = np.argsort(keys, kind="stable")
        ptr = np.zeros(instance.L * E + 1, dtype=np.int64)
        np.add.at(ptr, keys + 1, 1)
        ptr = np.cumsum(ptr)
        return ptr, rows[order].astype(np.int64), cols[order].astype(np.int64)
    return _cached(instance, "_inverse", build)


def tau(instance: Instance, x: np.ndarray) -> np.ndarray:
    """``float64 (U, L, Emax)``: latency serving each ``(u, l, e)`` under ``x (N, L, Emax)``."""
    out = np.broadcast_to(instance.cloud_latency[:, :, None],
                          (instance.U, instance.L, instance.max_experts)).copy()
    for n in range(instance.N):
        if x[n].any():
            cand = np.where(x[n][None, :, :], instance.latency[:, n, :, None], np.inf)
            np.minimum(out, cand, out=out)
    return out


def set_latency(instance: Instance, tau_arr: np.ndarray) -> np.ndarray:
    """``float64 (S,)``: ``max_{e in S} tau[u,l,e]`` for each routing row."""
    ext = np.append(tau_arr.ravel(), 0.0)
    if instance.n_sets == 0:
        return np.zeros(0)
    return ext[member_index(instance)].max(axis=1)


def empty_latency(instance: Instance) -> float:
    """``T(empty)``: the cloud-only latency."""
    return _cached(instance, "_empty_latency",
                   lambda: float(instance.coef @ set_latency(instance, tau(instance, instance.empty_placement().x))))


def latency(instance: Instance, placement: Placement | np.ndarray) -> float:
    """``T(x)`` in seconds per token."""
    x = placement.x if isinstance(placement, Placement) else np.asarray(placement, dtype=bool)
    return float(instance.coef @ set_latency(instance, tau(instance, x)))


@dataclass
class Evaluation:
    """What :func:`evaluate` reports about a placement."""

    latency: float
    empty_latency: float
    reduction: float
    feasible: bool
    storage_used: np.ndarray
    capacity: np.ndarray
    over_capacity: list[str] = field(default_factory=list)

    def to_dict(self, instance: Instance) -> dict:
        return {
            "latency": self.latency,
            "reduction": self.reduction,
            "empty_latency": self.empty_latency,
            "feasible": self.feasible,
            "storage_used": {n: int(v) for n, v in zip(instance.node_names, self.storage_used)},
            "capacity": {n: int(v) for n, v in zip(instance.node_names, self.capacity)},
            "over_capacity": self.over_capacity,
            "instance_hash": instance.content_hash(),
        }


def evaluate(instance: Instance, placement: Placement | np.ndarray) -> Evaluation:
    """Full evaluation: ``T(x)``, ``T(empty)``, ``R(x)``, storage use, feasibility."""
    p = placement if isinstance(placement, Placement) else Placement(placement)
    t = latency(instance, p)
    t0 = empty_latency(instance)
    used = p.storage_used(instance)
    over = [instance.node_names[n] for n in p.over_capacity(instance)]
    return Evaluation(latency=t, empty_latency=t0, reduction=t0 - t, feasible=not over,
                      storage_used=used, capacity=instance.capacity.copy(), over_capacity=over)


# ------------------------------------------------------------ incremental
class IncrementalEvaluator:
    """A current placement with ``tau`` and per-set latencies kept up to date.

    Gains are reductions of ``T`` (positive is better).  A gain query touches
    only the routing rows containing the changed ``(l, e)`` keys: for an expert
    in ``r`` rows of top-``K`` sets the cost is ``O(r K)``.

    Parameters
    ----------
    instance : Instance
    placement : Placement, optional
        Starting placement (copied); empty by default.

    Attributes
    ----------
    x : bool (N, L, Emax)      current placement (do not modify directly).
    tau : float64 (U, L, Emax) current serving latencies (a view of ``tau_flat``).
    setlat : float64 (S,)      current per-set latency.
    used : int64 (N,)          storage used per node.
    """

    def __init__(self, instance: Instance, placement: Placement | None = None):
        self.instance = instance
        self.x = (placement.x.copy() if placement is not None
                  else np.zeros((instance.N, instance.L, instance.max_experts), dtype=bool))
        self._flat = member_index(instance)
        self._ptr, self._rows, self._cols = _inverse(instance)
        self._coef = instance.coef
        self._E = instance.max_experts
        self.tau_flat = np.append(tau(instance, self.x).ravel(), 0.0)
        self.tau = self.tau_flat[:-1].reshape(instance.U, instance.L, instance.max_experts)
        self.setlat = self.tau_flat[self._flat].max(axis=1) if instance.n_sets else np.zeros(0)
        self.used = Placement(self.x).storage_used(instance)
        self.empty_latency = empty_latency(instance)

    # -- state
    @property
    def latency(self) -> float:
        return float(self._coef @ self.setlat)

    @property
    def reduction(self) -> float:
        return self.empty_latency - self.latency

    def placement(self) -> Placement:
        return Placement(self.x.copy())

    def fits(self, n: int, l: int, free: int = 0) -> bool:
        """Whether one more layer-``l`` expert fits on node ``n`` (after freeing ``free`` units)."""
        inst = self.instance
        return bool(self.used[n] - free + inst.expert_size[l] <= inst.capacity[n])

    def rows_of(self, l: int, e: int) -> tuple[np.ndarray, np.ndarray]:
        """Routing rows containing expert ``e`` of layer ``l`` and its column in each."""
        k = l * self._E + e
        a, b = self._ptr[k], self._ptr[k + 1]
        return self._rows[a:b], self._cols[a:b]

    def _column(self, l: int, e: int, x_col: np.ndarray) -> np.ndarray:
        """``tau[:, l, e]`` for the node indicator ``x_col (N,)``."""
        inst = self.instance
        col = inst.cloud_latency[:, l].copy()
        nodes = np.nonzero(x_col)[0]
        if len(nodes):
            np.minimum(col, inst.latency[:, nodes, l].min(axis=1), out=col)
        return col

    def _expand(self, el: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For elements ``el (k, 3)``: every routing row containing each element's
        ``(l, e)`` as flat arrays ``owner`` (index into ``el``), ``rows``, ``cols``."""
        keys = el[:, 1] * self._E + el[:, 2]
        starts = self._ptr[keys]
        counts = self._ptr[keys + 1] - starts
        total = int(counts.sum())
        owner = np.repeat(np.arange(len(el)), counts)
        offs = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        idx = np.repeat(starts, counts) + offs
        return owner, self._rows[idx], self._cols[idx]

    def _replaced(self, rows: np.ndarray, cols: np.ndarray, new: np.ndarray) -> np.ndarray:
        """Latency of each routing row in ``rows`` if its member in column ``cols``
        were served at ``new`` (everything else as now)."""
        memb = self.tau_flat[self._flat[rows]]
        memb[np.arange(len(rows)), cols] = new
        return memb.max(axis=1)

    # -- single-element gain (hot path)
    def gain(self, n: int, l: int, e: int) -> float:
        """Increase of ``R`` from adding ``(n, l, e)`` (0 if already cached)."""
        if self.x[n, l, e]:
            return 0.0
        rows, cols = self.rows_of(l, e)
        if len(rows) == 0:
            return 0.0
        users = self.instance.set_user[rows]
        new = np.minimum(self.tau[users, l, e], self.instance.latency[users, n, l])
        return float(self._coef[rows] @ (self.setlat[rows] - self._replaced(rows, cols, new)))

    def gains(self, elements: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`gain` for ``elements int (k, 3)`` of ``(n, l, e)``; ``float64 (k,)``."""
        el = np.asarray(elements, dtype=np.int64).reshape(-1, 3)
        k = len(el)
        owner, rows, cols = self._expand(el)
        if len(rows) == 0:
            return np.zeros(k)
        users = self.instance.set_user[rows]
        n, l, e = el[owner, 0], el[owner, 1], el[owner, 2]
        new = np.minimum(self.tau[users, l, e], self.instance.latency[users, n, l])
        diff = self._coef[rows] * (self.setlat[rows] - self._replaced(rows, cols, new))
        out = np.bincount(owner, weights=diff, minlength=k)
        out[self.x[el[:, 0], el[:, 1], el[:, 2]]] = 0.0
        return out

    def losses(self, elements: np.ndarray) -> np.ndarray:
        """Decrease of ``R`` from evicting each ``(n, l, e)`` of ``elements int (k, 3)`` on its
        own; ``float64 (k,)``, ``>= 0`` (0 for elements not cached)."""
        el = np.asarray(elements, dtype=np.int64).reshape(-1, 3)
        k = len(el)
        owner, rows, cols = self._expand(el)
        if len(rows) == 0:
            return np.zeros(k)
        total = len(rows)
        users = self.instance.set_user[rows]
        n, l, e = el[owner, 0], el[owner, 1], el[owner, 2]
        others = self.x[:, l, e].T.copy()  # (total, N): nodes caching the key
        others[np.arange(total), n] = False
        via = np.where(others, self.instance.latency[users, :, l], np.inf).min(axis=1)
        new = np.minimum(self.instance.cloud_latency[users, l], via)
        diff = self._coef[rows] * (self._replaced(rows, cols, new) - self.setlat[rows])
        out = np.bincount(owner, weights=diff, minlength=k)
        out[~self.x[el[:, 0], el[:, 1], el[:, 2]]] = 0.0
        return out

    # -- general moves
    def _changed(self, add: Iterable[Sequence[int]], remove: Iterable[Sequence[int]]):
        """New ``tau`` columns and affected rows for a batch of additions / removals."""
        cols: dict[tuple[int, int], np.ndarray] = {}
        for n, l, e in remove:
            cols.setdefault((l, e), self.x[:, l, e].copy())[n] = False
        for n, l, e in add:
            cols.setdefault((l, e), self.x[:, l, e].copy())[n] = True
        newcols = {key: self._column(key[0], key[1], xc) for key, xc in cols.items()}
        rows = [self.rows_of(l, e)[0] for (l, e) in newcols]
        rows = np.unique(np.concatenate(rows)) if rows else np.zeros(0, dtype=np.int64)
        return cols, newcols, rows

    def gain_of(self, add: Iterable[Sequence[int]] = (), remove: Iterable[Sequence[int]] = ()) -> float:
        """Increase of ``R`` (may be negative) if ``add`` and ``remove`` were applied together."""
        _, newcols, rows = self._changed(add, remove)
        if len(rows) == 0:
            return 0.0
        saved = {}
        U, L, E = self.tau.shape
        for (l, e), col in newcols.items():
            sl = np.arange(U) * L * E + l * E + e
            saved[(l, e)] = (sl, self.tau_flat[sl].copy())
            self.tau_flat[sl] = col
        newlat = self.tau_flat[self._flat[rows]].max(axis=1)
        for sl, old in saved.values():
            self.tau_flat[sl] = old
        return float(self._coef[rows] @ (self.setlat[rows] - newlat))

    def apply(self, add: Iterable[Sequence[int]] = (), remove: Iterable[Sequence[int]] = ()) -> float:
        """Apply the move; returns its gain in ``R``."""
        add, remove = list(add), list(remove)
        cols, newcols, rows = self._changed(add, remove)
        U, L, E = self.tau.shape
        for (l, e), col in newcols.items():
            self.tau_flat[np.arange(U) * L * E + l * E + e] = col
            self.x[:, l, e] = cols[(l, e)]
        size = self.instance.expert_size
        for n, l, e in remove:
            self.used[n] -= size[l]
        for n, l, e in add:
            self.used[n] += size[l]
        if len(rows) == 0:
            return 0.0
        newlat = self.tau_flat[self._flat[rows]].max(axis=1)
        g = float(self._coef[rows] @ (self.setlat[rows] - newlat))
        self.setlat[rows] = newlat
        return g

    def add(self, n: int, l: int, e: int) -> float:
        """Cache ``(n, l, e)``; returns the gain in ``R``."""
        if self.x[n, l, e]:
            return 0.0
        return self.apply(add=[(n, l, e)])

    def remove(self, n: int, l: int, e: int) -> float:
        """Evict ``(n, l, e)``; returns the (non-positive) change in ``R``."""
        if not self.x[n, l, e]:
            return 0.0
        return self.apply(remove=[(n, l, e)])
