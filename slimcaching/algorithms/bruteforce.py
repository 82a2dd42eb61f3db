"""Exhaustive search over placements: the exact reference for tiny instances."""
from __future__ import annotations

import itertools
import math
import time
from typing import Iterator

import numpy as np

from ..errors import InputError
from ..formulations.assignment import support
from ..formulations.solve import capacity_free_bound
from ..instances.model import Instance, Placement
from ..objective import latency
from ..result import Result, Status, make_result

__all__ = ["brute_force", "maximal_node_caches", "count_maximal_caches"]

MAX_COUNT_STATES = 1_000_000
"""Largest number of ``(storage used, smallest size left out)`` states the count may hold."""


class _OutOfTime(Exception):
    pass


def _groups(instance: Instance, n: int) -> list[tuple[int, list[tuple[int, int]]]]:
    """The useful ``(l, e)`` of node ``n`` grouped by size, smallest size first.

    Useful (as for the MILPs, :func:`slimcaching.formulations.assignment.support`):
    some user activates ``e`` in layer ``l`` with positive probability,
    reaches ``n`` and is faster there than in the cloud, and the expert fits.
    Caching anything else changes no ``tau``.
    """
    el = support(instance).elements
    mine = el[el[:, 0] == n]
    by_size: dict[int, list[tuple[int, int]]] = {}
    for l, e in mine[:, 1:].tolist():
        by_size.setdefault(int(instance.expert_size[l]), []).append((l, e))
    return sorted(by_size.items())


def count_maximal_caches(instance: Instance, n: int) -> int:
    """How many caches :func:`maximal_node_caches` would list for node ``n``, without listing them.

    A cache is a choice of ``k_g`` of the ``m_g`` useful elements of each
    size ``s_g`` (``C(m_g, k_g)`` ways); it is maximal when the smallest size
    left out no longer fits.  Dynamic programme over the size groups in
    increasing order, on ``(storage used, smallest size left out)``.

    Raises
    ------
    InputError
        More than :data:`MAX_COUNT_STATES` states (far beyond what
        enumeration could finish).
    """
    cap = int(instance.capacity[n])
    states: dict[tuple[int, int], int] = {(0, 0): 1}  # 0: nothing left out yet
    for size, items in _groups(instance, n):
        m = len(items)
        new: dict[tuple[int, int], int] = {}
        for (used, first_out), ways in states.items():
            for k in range(min(m, (cap - used) // size) + 1):
                key = (used + k * size, first_out or (size if k < m else 0))
                new[key] = new.get(key, 0) + ways * math.comb(m, k)
        states = new
        if len(states) > MAX_COUNT_STATES:
            raise InputError("--algorithm", ("", f"brute-force cannot even count the caches of node "
                                                 f"{instance.node_names[n]!r} (more than {MAX_COUNT_STATES} partial "
                                                 "sizes); it is meant for tiny instances: use exact"))
    return sum(ways for (used, first_out), ways in states.items() if first_out == 0 or used + first_out > cap)


def maximal_node_caches(instance: Instance, n: int, deadline: float | None = None) -> list[tuple[tuple[int, int], ...]]:
    """Every inclusion-maximal set of useful ``(l, e)`` that fits in node ``n``'s capacity.

    Only maximal sets matter because ``T`` is non-increasing in ``x`` and
    elements that are not useful (see :func:`count_maximal_caches`) change
    nothing.  Listed per size group (how many of each size, then which),
    pruning a branch as soon as it can no longer become maximal, so the work
    follows the number of maximal sets rather than of all feasible sets.
    """
    cap = int(instance.capacity[n])
    groups = _groups(instance, n)
    room = np.cumsum([0] + [size * len(items) for size, items in groups][::-1])[::-1]  # storage of groups g..
    out: list[tuple[tuple[int, int], ...]] = []
    visits = [0]

    def rec(g: int, used: int, first_out: int, parts: list[tuple[list, int]]) -> None:
        visits[0] += 1
        if deadline is not None and visits[0] % 256 == 0 and time.perf_counter() > deadline:
            raise _OutOfTime
        if first_out and used + room[g] <= cap - first_out:
            return  # even taking everything left, the smallest left-out size would still fit
        if g == len(groups):
            for combo in itertools.product(*(itertools.combinations(items, k) for items, k in parts)):
                out.append(tuple(itertools.chain.from_iterable(combo)))
            return
        size, items = groups[g]
        m = len(items)
        for k in range(min(m, (cap - used) // size), -1, -1):
            rec(g + 1, used + k * size, first_out or (size if k < m else 0), parts + [(items, k)])

    rec(0, 0, 0, [])
    return out


def _placements(instance: Instance, per_node: list[list]) -> Iterator[np.ndarray]:
    x = np.zeros((instance.N, instance.L, instance.max_experts), dtype=bool)
    for combo in itertools.product(*per_node):
        x[:] = False
        for n, cache in enumerate(combo):
            for l, e in cache:
                x[n, l, e] = True
        yield x


def brute_force(instance: Instance, *, seed: int | None = None, time_limit: float | None = None,
                max_placements: int = 2_000_000) -> Result:
    """Exact optimum by enumerating every combination of maximal per-node caches.

    Parameters
    ----------
    instance : Instance
    time_limit : float, optional
        Seconds for everything (counting, listing, evaluating); when reached,
        the best placement so far is returned with status ``time_limit`` and
        :func:`~slimcaching.formulations.solve.capacity_free_bound` as bound.
    max_placements : int
        Refuse (``InputError``) instances with more combinations than this;
        they are counted before anything is listed.

    Returns
    -------
    Result
        Status ``optimal`` (bound = latency) when the enumeration completed.
        ``info``: ``placements``, the number the enumeration covers,
        ``placements_evaluated`` and ``maximal_caches_per_node``.

    Raises
    ------
    InputError
        More than ``max_placements`` combinations, or too many to count.

    Notes
    -----
    Cost ``prod_n M_n`` evaluations, where ``M_n`` is the number of maximal
    feasible caches of node ``n`` (:func:`count_maximal_caches`, counted
    first by a dynamic programme over the size groups); meant for instances
    with a handful of experts per node.  Exactness follows from monotonicity
    of ``T``: some optimal placement is maximal on every node.  Placements are
    compared by the evaluator's ``T`` with no tolerance (the first of equal
    values is kept), so the optimum is exact at every latency scale.
    """
    t0 = time.perf_counter()
    deadline = None if time_limit is None else t0 + float(time_limit)
    counts = [count_maximal_caches(instance, n) for n in range(instance.N)]
    total = math.prod(counts)
    if total > max_placements:
        raise InputError("--algorithm", ("", f"brute-force would enumerate {total:.3g} placements (more than "
                                             f"max_placements = {max_placements}); it is meant for tiny "
                                             "instances: use exact"))
    best_t, best_x = math.inf, None
    status, count = Status.OPTIMAL, 0
    try:
        per_node = [maximal_node_caches(instance, n, deadline) for n in range(instance.N)]
        for x in _placements(instance, per_node):
            t = latency(instance, x)
            count += 1
            if t < best_t:
                best_t, best_x = t, x.copy()
            if deadline is not None and count % 64 == 0 and time.perf_counter() > deadline:
                raise _OutOfTime
    except _OutOfTime:
        status = Status.TIME_LIMIT
    placement = Placement(best_x) if best_x is not None else instance.empty_placement()
    bound = best_t if status is Status.OPTIMAL else capacity_free_bound(instance)
    return make_result(instance, placement, algorithm="brute-force", status=status,
                       runtime_s=time.perf_counter() - t0, params={"max_placements": max_placements},
                       seed=seed, bound=bound,
                       info={"placements": total, "placements_evaluated": count, "maximal_caches_per_node": counts})
