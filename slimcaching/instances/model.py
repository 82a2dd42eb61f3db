"""The in-memory data model: :class:`Instance` and :class:`Placement`.

Everything is stored as flat numpy arrays so the evaluator and the algorithms
can vectorise over them.  Symbols follow ``docs/model.md`` section 1.

Routing sets of all ``(u, l)`` pairs are stored in one flat table:

* ``set_experts`` : ``int64 (S, Kmax)``, expert ids padded with ``-1``;
* ``set_prob``    : ``float64 (S,)``, ``p[u,l,S] > 0``;
* ``set_user``, ``set_layer`` : ``int64 (S,)``;
* ``offsets``     : ``int64 (U*L + 1,)``; the sets of ``(u, l)`` are rows
  ``offsets[u*L + l] : offsets[u*L + l + 1]``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..fileio import content_hash
from ..validation import readonly

__all__ = ["Instance", "Placement"]


@dataclass(frozen=True, eq=False)
class Instance:
    """An expert-caching instance (``docs/model.md`` section 1).

    Attributes
    ----------
    name : str
    size_unit : str
    experts : int64 (L,)        ``E_l``, routed experts of layer ``l``.
    expert_size : int64 (L,)    ``s_l`` in ``size_unit``.
    top_k : int64 (L,)          ``K_l``.
    node_names : tuple of str (N,)
    capacity : int64 (N,)       ``Q_n``.
    user_names : tuple of str (U,)
    weight : float64 (U,)       ``w_u``, sums to 1.
    latency : float64 (U, N, L) ``t[u,n,l]``; ``inf`` where ``n`` is unreachable by ``u``.
    cloud_latency : float64 (U, L) ``c[u,l]``.
    set_experts, set_prob, set_user, set_layer, offsets : flat routing table
        (see the module docstring).
    metadata : dict
        Free-form provenance (generator parameters, trace statistics, ...);
        written to and read from the file's ``"metadata"`` field.
    """

    name: str
    size_unit: str
    experts: np.ndarray
    expert_size: np.ndarray
    top_k: np.ndarray
    node_names: tuple[str, ...]
    capacity: np.ndarray
    user_names: tuple[str, ...]
    weight: np.ndarray
    latency: np.ndarray
    cloud_latency: np.ndarray
    set_experts: np.ndarray
    set_prob: np.ndarray
    set_user: np.ndarray
    set_layer: np.ndarray
    offsets: np.ndarray
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("experts", "expert_size", "top_k", "capacity", "set_experts",
                     "set_user", "set_layer", "offsets"):
            object.__setattr__(self, name, readonly(np.asarray(getattr(self, name), dtype=np.int64)))
        for name in ("weight", "latency", "cloud_latency", "set_prob"):
            object.__setattr__(self, name, readonly(np.asarray(getattr(self, name), dtype=np.float64)))
        object.__setattr__(self, "node_names", tuple(self.node_names))
        object.__setattr__(self, "user_names", tuple(self.user_names))
        if self.set_experts.ndim != 2:
            object.__setattr__(self, "set_experts", readonly(self.set_experts.reshape(len(self.set_prob), -1)))

    # ------------------------------------------------------------------ sizes
    @property
    def L(self) -> int:
        return int(self.experts.shape[0])

    @property
    def N(self) -> int:
        return len(self.node_names)

    @property
    def U(self) -> int:
        return len(self.user_names)

    @property
    def max_experts(self) -> int:
        """``max_l E_l``: the expert axis length of placement arrays."""
        return int(self.experts.max()) if self.L else 0

    @property
    def max_top_k(self) -> int:
        return int(self.top_k.max()) if self.L else 0

    @property
    def n_sets(self) -> int:
        return int(self.set_prob.shape[0])

    @property
    def max_set_size(self) -> int:
        """Largest activated set actually present (``<= max_top_k``)."""
        if self.n_sets == 0:
            return 0
        return int((self.set_experts >= 0).sum(axis=1).max())

    @property
    def set_sizes(self) -> np.ndarray:
        return (self.set_experts >= 0).sum(axis=1)

    def sets_of(self, u: int, l: int) -> slice:
        """Row slice of the routing table holding the sets of ``(u, l)``."""
        k = u * self.L + l
        return slice(int(self.offsets[k]), int(self.offsets[k + 1]))

    def reachable(self) -> np.ndarray:
        """``bool (U, N)``: node ``n`` is reachable by user ``u``."""
        return np.isfinite(self.latency).all(axis=2)

    def valid_mask(self) -> np.ndarray:
        """``bool (L, Emax)``: ``e < E_l``."""
        return np.arange(self.max_experts)[None, :] < self.experts[:, None]

    @property
    def coef(self) -> np.ndarray:
        """``float64 (S,)``: ``w_u * p[u,l,S]`` for each routing row."""
        c = self.__dict__.get("_coef")
        if c is None:
            c = readonly(self.weight[self.set_user] * self.set_prob)
            object.__setattr__(self, "_coef", c)
        return c

    # ---------------------------------------------------------------- identity
    def to_dict(self, *, routing_placeholders: bool = False) -> dict[str, Any]:
        """The instance as the ``slimcaching-instance/1`` JSON object.

        Latencies are written per layer when they differ across layers, as one
        number otherwise; unreachable nodes are omitted from ``latency``.
        ``routing_placeholders`` puts the string ``"\\u0000routing-<u>"`` where
        user ``u``'s routing goes (the fast writer of :mod:`.serial` renders it).
        """
        layers = [
            {"experts": int(e), "expert_size": int(s), "top_k": int(k)}
            for e, s, k in zip(self.experts, self.expert_size, self.top_k)
        ]
        nodes = [{"name": n, "capacity": int(q)} for n, q in zip(self.node_names, self.capacity)]
        users = []
        for u, uname in enumerate(self.user_names):
            lat: dict[str, Any] = {}
            for n, nname in enumerate(self.node_names):
                row = self.latency[u, n]
                if np.isfinite(row).all():
                    lat[nname] = _scalar_or_list(row)
            routing: Any = []
            for l in range(self.L if not routing_placeholders else 0):
                sl = self.sets_of(u, l)
                rows = self.set_experts[sl]
                routing.append([
                    {"experts": [int(e) for e in r if e >= 0], "p": float(p)}
                    for r, p in zip(rows, self.set_prob[sl])
                ])
            users.append({
                "name": uname,
                "weight": float(self.weight[u]),
                "latency": lat,
                "cloud_latency": _scalar_or_list(self.cloud_latency[u]),
                "routing": routing if not routing_placeholders else f"\x00routing-{u}",
            })
        d: dict[str, Any] = {
            "format": "slimcaching-instance/1",
            "name": self.name,
            "size_unit": self.size_unit,
            "layers": layers,
            "nodes": nodes,
            "users": users,
        }
        if self.metadata:
            d["metadata"] = self.metadata
        return d

    def content_hash(self) -> str:
        """SHA-256 (hex, first 16 chars) of the problem data.

        Independent of ``name`` and ``metadata``: two files describing the same
        optimisation problem share a hash.  Used as the key of result rows.
        """
        h = self.__dict__.get("_hash")
        if h is None:
            h = content_hash(self.to_dict())
            object.__setattr__(self, "_hash", h)
        return h

    def empty_placement(self) -> "Placement":
        return Placement(np.zeros((self.N, self.L, self.max_experts), dtype=bool))

    def __repr__(self) -> str:
        return (f"Instance(name={self.name!r}, L={self.L}, N={self.N}, U={self.U}, "
                f"experts={self.max_experts}, top_k={self.max_top_k}, sets={self.n_sets})")


def _scalar_or_list(row: np.ndarray) -> float | list[float]:
    if row.size and np.all(row == row[0]):
        return float(row[0])
    return [float(v) for v in row]


@dataclass(eq=False)
class Placement:
    """A cache decision ``x[n,l,e]`` as ``bool (N, L, Emax)``.

    Entries with ``e >= E_l`` are always ``False``.
    """

    x: np.ndarray

    def __post_init__(self) -> None:
        self.x = np.asarray(self.x, dtype=bool)
        if self.x.ndim != 3:
            raise ValueError("Placement.x must be a 3-d boolean array (N, L, Emax)")

    def copy(self) -> "Placement":
        return Placement(self.x.copy())

    def storage_used(self, instance: Instance) -> np.ndarray:
        """``(N,)``: ``sum_{l,e} s_l x[n,l,e]``, computed exactly.

        The sums are taken in Python integers, so they cannot wrap around:
        the result is ``int64`` when every sum fits (always for a validated
        instance, whose model size is at most ``2^62``) and an ``object``
        array of Python integers otherwise.
        """
        counts = self.x.sum(axis=2)
        sizes = [int(s) for s in instance.expert_size]
        used = [sum(int(c) * s for c, s in zip(row, sizes)) for row in counts]
        fits = all(v <= np.iinfo(np.int64).max for v in used)
        return np.array(used, dtype=np.int64 if fits else object).reshape(len(used))

    def over_capacity(self, instance: Instance) -> list[int]:
        """Indices of the nodes whose storage use exceeds their capacity (exact integer comparison)."""
        return [n for n, (u, q) in enumerate(zip(self.storage_used(instance), instance.capacity)) if int(u) > int(q)]

    def is_feasible(self, instance: Instance) -> bool:
        return not self.over_capacity(instance)

    def elements(self) -> np.ndarray:
        """``int64 (k, 3)``: the cached ``(n, l, e)`` triples, sorted."""
        return np.argwhere(self.x).astype(np.int64)

    def to_cache(self, instance: Instance) -> dict[str, list[list[int]]]:
        """The ``cache`` field of the placement file: node name -> ``[[l, e], ...]``."""
        out: dict[str, list[list[int]]] = {name: [] for name in instance.node_names}
        for n, l, e in self.elements():
            out[instance.node_names[n]].append([int(l), int(e)])
        return out

    @classmethod
    def from_cache(cls, instance: Instance, cache: Mapping[str, list]) -> "Placement":
        """Build from a validated ``cache`` mapping (see :mod:`.validate`)."""
        x = np.zeros((instance.N, instance.L, instance.max_experts), dtype=bool)
        index = {name: i for i, name in enumerate(instance.node_names)}
        for name, pairs in cache.items():
            for l, e in pairs:
                x[index[name], l, e] = True
        return cls(x)

    @classmethod
    def from_elements(cls, instance: Instance, elements) -> "Placement":
        x = np.zeros((instance.N, instance.L, instance.max_experts), dtype=bool)
        el = np.asarray(list(elements), dtype=np.int64).reshape(-1, 3)
        if len(el):
            x[el[:, 0], el[:, 1], el[:, 2]] = True
        return cls(x)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Placement) and self.x.shape == other.x.shape and bool(np.all(self.x == other.x))

    def __len__(self) -> int:
        return int(self.x.sum())
