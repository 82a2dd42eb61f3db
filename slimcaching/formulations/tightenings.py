"""Valid tightenings of the caching MILPs (``docs/model.md`` section 1).

A tightening removes fractional points of the LP relaxation and no integer
point, so the optimum is unchanged and the LP bound can only go up.  Each one
is switchable (for ablation) and its proof is in its docstring:

* ``capacity-rounding`` (:func:`reachable_capacity`): replace ``Q_n`` by the
  largest storage a placement can actually use at node ``n``;
* ``cardinality`` (:func:`cardinality_rows`): per (node, layer), at most
  ``floor(Q'_n / s_l)`` experts.

Both only read the instance and the support of the formulations; they are
applied to the Pyomo models by :func:`apply_tightenings` (used by ``exact``
and ``lp_bound``) and to the array form by
:func:`slimcaching.formulations.arrays.build_level_arrays`.

Lifted knapsack covers of the capacity rows were measured and are not a
tightening here: they raise the tightened LP by 0.004-0.44 % on the
mixed-precision L8 instances, less than HiGHS's own root cuts, and as extra
rows they lower HiGHS's bound at equal node counts (``benchmarks/perf_covers.py``,
``docs/formulations.md``, "Lifted knapsack covers: measured, not a tightening").

Which tightenings ran is recorded as ``Result.info["tightenings"]``: the
list of names, and for capacity rounding the original and rounded capacity of
every node where they differ.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pyomo.environ as pyo

from ..errors import InputError
from ..instances.model import Instance
from .assignment import linear, support

__all__ = ["TIGHTENINGS", "DEFAULT_TIGHTENINGS", "check_tightenings", "reachable_capacity", "tightened_capacities",
           "useful_counts",
           "cardinality_rows", "apply_tightenings"]

TIGHTENINGS: tuple[str, ...] = ("capacity-rounding", "cardinality")
"""Every tightening, in the order they are applied."""

DEFAULT_TIGHTENINGS: tuple[str, ...] = ("capacity-rounding", "cardinality")
"""On by default in ``exact``, ``lp_bound`` and every method built on the level model."""

#: Capacities (in units of the gcd of the sizes) above which the exact
#: subset-sum reachability is skipped and only the gcd rounding is applied.
MAX_REACHABILITY_BITS = 50_000_000


def check_tightenings(value: Any) -> tuple[str, ...]:
    """Normalise a tightening selection: ``"all"``, ``"none"``, a comma list or an iterable of names.

    Raises
    ------
    InputError
        For an unknown name (the valid ones are listed).
    """
    if value is None or value == "all":
        return DEFAULT_TIGHTENINGS if value is None else TIGHTENINGS
    if value == "none" or value == ():
        return ()
    names = [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)
    unknown = [n for n in names if n not in TIGHTENINGS]
    if unknown:
        raise InputError("--param tightenings", ("", f"unknown tightening(s) {', '.join(map(repr, unknown))}; "
                                                     f"valid: all, none or a comma list of {', '.join(TIGHTENINGS)}"))
    return tuple(n for n in TIGHTENINGS if n in names)


def reachable_capacity(sizes: np.ndarray, counts: np.ndarray, capacity: int) -> int:
    """The largest storage ``sum_l sizes[l] k_l <= capacity`` with integers ``0 <= k_l <= counts[l]``.

    Parameters
    ----------
    sizes : int (L,)
        Expert size ``s_l`` of each layer.
    counts : int (L,)
        How many experts of layer ``l`` can be cached at the node (the useful
        elements ``x[n,l,.]`` of the formulations).
    capacity : int
        ``Q_n``.

    Returns
    -------
    int
        ``Q'_n <= Q_n``.

    Notes
    -----
    Validity: a placement caches ``k_l`` experts of layer ``l`` at the node and
    uses exactly ``sum_l s_l k_l`` storage, an amount the set above contains
    whenever it is ``<= Q_n``; so ``sum_l s_l k_l <= Q'_n`` holds for every
    feasible placement and the capacity row with ``Q'_n`` has the same integer
    points.  Elements without a variable are never cached by an optimal
    solution of the formulations (they appear in no other row), so they do not
    count.  The classical special case is the *gcd rounding*
    ``Q'_n = floor(Q_n / g) g`` with ``g = gcd(s_l)`` (every amount used is a
    multiple of ``g``); the reachable set is never larger, so this is never
    weaker.

    Computation: bounded-knapsack reachability in units of ``g`` with a
    Python-integer bitset, one shift-or per binary piece of each ``counts[l]``
    (``O(sum_l log counts[l] * Q_n / g / 64)`` word operations).  Above
    :data:`MAX_REACHABILITY_BITS` units only the gcd rounding is applied.

    References
    ----------
    .. [1] G. L. Nemhauser, L. A. Wolsey, "Integer and Combinatorial
       Optimization", Wiley, 1988, section II.2 (coefficient reduction).
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    counts = np.asarray(counts, dtype=np.int64)
    capacity = int(capacity)
    keep = (counts > 0) & (sizes <= capacity)
    sizes, counts = sizes[keep], counts[keep]
    if len(sizes) == 0 or capacity <= 0:
        return 0
    total = int((sizes * counts).sum())
    if total <= capacity:
        return total
    g = int(np.gcd.reduce(sizes))
    units = capacity // g
    if units > MAX_REACHABILITY_BITS:
        return units * g
    mask = (1 << (units + 1)) - 1
    reach = 1
    for s, c in zip((sizes // g).tolist(), counts.tolist()):
        piece = 1
        while c > 0:  # binary splitting: pieces 1, 2, 4, ... cover every count 0..c
            take = min(piece, c)
            reach = (reach | (reach << (s * take))) & mask
            c -= take
            piece <<= 1
    return (reach.bit_length() - 1) * g


def useful_counts(instance: Instance) -> np.ndarray:
    """``int (N, L)``: how many elements ``(n, l, .)`` have a variable in the formulations."""
    el = support(instance).elements
    out = np.zeros((instance.N, instance.L), dtype=np.int64)
    if len(el):
        np.add.at(out, (el[:, 0], el[:, 1]), 1)
    return out


def tightened_capacities(instance: Instance, tightenings: Iterable[str] = DEFAULT_TIGHTENINGS,
                         capacity: np.ndarray | None = None, counts: np.ndarray | None = None) -> np.ndarray:
    """``int64 (N,)``: ``Q'_n`` (:func:`reachable_capacity`) when ``capacity-rounding`` is selected, else ``Q_n``.

    ``capacity`` (residual capacities) and ``counts`` (``int (N, L)`` elements
    that may still be cached) default to the instance's and the support's.
    """
    cap = np.asarray(instance.capacity if capacity is None else capacity, dtype=np.int64).copy()
    if "capacity-rounding" not in tuple(tightenings):
        return cap
    counts = useful_counts(instance) if counts is None else counts
    for n in range(instance.N):
        cap[n] = reachable_capacity(instance.expert_size, counts[n], int(cap[n]))
    return cap


def cardinality_rows(instance: Instance, capacity: np.ndarray, counts: np.ndarray) -> list[tuple[int, int, int]]:
    """``(n, l, k)``: the rows ``sum_e x[n,l,e] <= k`` with ``k = floor(Q'_n / s_l) < counts[n, l]``.

    Notes
    -----
    Validity: every cached expert of layer ``l`` at node ``n`` uses ``s_l``
    storage, so ``s_l sum_e x[n,l,e] <= Q'_n`` for every feasible placement
    (the other terms of the capacity row are ``>= 0``), and the left side is an
    integer.  This is the Chvatal-Gomory rounding of the capacity row
    restricted to one layer; rows with ``k >= counts[n, l]`` are implied by
    ``x <= 1`` and are not generated.
    """
    rows = []
    for n in range(instance.N):
        for l in np.flatnonzero(counts[n]).tolist():
            k = int(capacity[n]) // int(instance.expert_size[l])
            if k < counts[n, l]:
                rows.append((n, l, k))
    return rows


def apply_tightenings(model: pyo.ConcreteModel, instance: Instance,
                      tightenings: Iterable[str] = DEFAULT_TIGHTENINGS) -> dict[str, Any]:
    """Tighten a Pyomo model of :mod:`.level` or :mod:`.assignment` in place.

    ``capacity-rounding`` lowers the right-hand side of ``capacity[n]``;
    ``cardinality`` adds the component ``cardinality[n, l]`` (node name,
    layer).  Returns the record kept as ``Result.info["tightenings"]``:
    ``{"applied": [...], "capacity": {node: [Q_n, Q'_n], ...}, "cardinality_rows": k}``.
    """
    names = check_tightenings(tuple(tightenings))
    if not names or len(model.x) == 0:
        return tightening_record(instance, ())
    counts = useful_counts(instance)
    cap = tightened_capacities(instance, names, counts=counts)
    node_names = instance.node_names
    if "capacity-rounding" in names:
        for n in range(instance.N):
            name = node_names[n]
            if cap[n] < instance.capacity[n] and name in model.capacity:
                model.capacity[name].set_value((None, model.capacity[name].body, int(cap[n])))
    rows = cardinality_rows(instance, cap, counts) if "cardinality" in names else []
    if rows:
        keys = [(node_names[n], l) for n, l, _ in rows]
        by_key: dict[tuple[str, int], list] = {}
        for (name, l, e), var in model.x.items():
            by_key.setdefault((name, l), []).append(var)
        exprs = {(node_names[n], l): (None, linear(np.ones(len(by_key[(node_names[n], l)])),
                                                   by_key[(node_names[n], l)]), k) for n, l, k in rows}
        model.cardinality = pyo.Constraint(keys, rule=lambda m, name, l: exprs[(name, l)])
    return tightening_record(instance, names)


def tightening_record(instance: Instance, tightenings: Iterable[str] = DEFAULT_TIGHTENINGS) -> dict[str, Any]:
    """What :func:`apply_tightenings` does to a model of ``instance``, computed from the instance alone:
    ``{"applied": [...], "capacity": {node: [Q_n, Q'_n], ...}, "cardinality_rows": k}``.

    Only nodes that can cache something have a capacity row, so only they are listed.
    """
    names = check_tightenings(tuple(tightenings))
    record: dict[str, Any] = {"applied": list(names), "capacity": {}, "cardinality_rows": 0}
    if not names:
        return record
    counts = useful_counts(instance)
    cap = tightened_capacities(instance, names, counts=counts)
    if "capacity-rounding" in names:
        for n in range(instance.N):
            if cap[n] < instance.capacity[n] and counts[n].any():
                record["capacity"][instance.node_names[n]] = [int(instance.capacity[n]), int(cap[n])]
    if "cardinality" in names:
        record["cardinality_rows"] = len(cardinality_rows(instance, cap, counts))
    return record
