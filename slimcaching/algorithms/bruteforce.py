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
from ..solvers import SolveInterrupted

__all__ = ["brute_force", "maximal_node_caches", "iter_maximal_node_caches", "count_maximal_caches",
           "LIST_BUDGET"]

MAX_COUNT_STATES = 1_000_000
"""Largest number of ``(storage used, smallest size left out)`` states the count may hold."""

LIST_BUDGET = 1_000_000
"""Most ``(l, e)`` entries brute force keeps in lists of listed caches (about 100 bytes each in
Python tuples, so about 100 MB); the caches of a node that do not fit in what is left of it are
listed again, lazily, each time the enumeration needs them."""

_CHECK_EVERY = 64
"""Visits of the listing's recursion between two looks at the clock."""


class _OutOfTime(Exception):
    pass


class _Clock:
    """Raises :class:`_OutOfTime` once ``deadline`` (a ``time.perf_counter()`` value) has passed,
    looking at the clock every ``every`` calls of :meth:`tick`."""

    def __init__(self, deadline: float | None, every: int = _CHECK_EVERY):
        self.deadline, self.every, self.calls = deadline, every, 0

    def tick(self) -> None:
        self.calls += 1
        if self.deadline is not None and self.calls % self.every == 0 and time.perf_counter() > self.deadline:
            raise _OutOfTime


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


def count_maximal_caches(instance: Instance, n: int, deadline: float | None = None) -> int:
    """How many caches :func:`maximal_node_caches` would list for node ``n``, without listing them.

    A cache is a choice of ``k_g`` of the ``m_g`` useful elements of each
    size ``s_g`` (``C(m_g, k_g)`` ways); it is maximal when the smallest size
    left out no longer fits.  Dynamic programme over the size groups in
    increasing order, on ``(storage used, smallest size left out)``.

    Parameters
    ----------
    instance : Instance
    n : int
        Node index.
    deadline : float, optional
        A ``time.perf_counter()`` value; the count raises ``_OutOfTime`` once it has passed.

    Raises
    ------
    InputError
        More than :data:`MAX_COUNT_STATES` states (far beyond what
        enumeration could finish).
    """
    cap = int(instance.capacity[n])
    clock = _Clock(deadline, every=1024)
    states: dict[tuple[int, int], int] = {(0, 0): 1}  # 0: nothing left out yet
    for size, items in _groups(instance, n):
        m = len(items)
        new: dict[tuple[int, int], int] = {}
        for (used, first_out), ways in states.items():
            clock.tick()
            for k in range(min(m, (cap - used) // size) + 1):
                key = (used + k * size, first_out or (size if k < m else 0))
                new[key] = new.get(key, 0) + ways * math.comb(m, k)
        states = new
        if len(states) > MAX_COUNT_STATES:
            raise InputError("--algorithm", ("", f"brute-force cannot even count the caches of node "
                                                 f"{instance.node_names[n]!r} (more than {MAX_COUNT_STATES} partial "
                                                 "sizes); it is meant for tiny instances: use exact"))
    return sum(ways for (used, first_out), ways in states.items() if first_out == 0 or used + first_out > cap)


def _approx(count: int) -> str:
    """``count`` to three digits, also beyond the range of a float."""
    digits = len(str(count))
    return f"{count:.3g}" if digits < 300 else f"about 1e+{digits - 1}"


def _combinations(parts: list[tuple[list, int]]) -> Iterator[tuple[tuple[int, int], ...]]:
    """``product(*(combinations(items, k) for items, k in parts))``, flattened, in that order.

    Lazy: ``itertools.product`` would first list every ``combinations(items, k)``
    (``C(m, k)`` tuples, which alone can exceed any memory).
    """
    if not parts:
        yield ()
        return
    (items, k), rest = parts[0], parts[1:]
    for head in itertools.combinations(items, k):
        for tail in _combinations(rest):
            yield head + tail


def iter_maximal_node_caches(instance: Instance, n: int,
                             deadline: float | None = None) -> Iterator[tuple[tuple[int, int], ...]]:
    """Every inclusion-maximal set of useful ``(l, e)`` that fits in node ``n``'s capacity, one at a time.

    Only maximal sets matter because ``T`` is non-increasing in ``x`` and
    elements that are not useful (see :func:`count_maximal_caches`) change
    nothing.  Generated per size group (how many of each size, then which),
    pruning a branch as soon as it can no longer become maximal, so the work
    follows the number of maximal sets rather than of all feasible sets.
    Memory: the recursion's path (one entry per size group), whatever the
    number of caches.

    Raises
    ------
    _OutOfTime
        ``deadline`` (a ``time.perf_counter()`` value) passed; checked every
        :data:`_CHECK_EVERY` steps of the recursion.
    """
    cap = int(instance.capacity[n])
    groups = _groups(instance, n)
    room = np.cumsum([0] + [size * len(items) for size, items in groups][::-1])[::-1]  # storage of groups g..
    clock = _Clock(deadline)

    def rec(g: int, used: int, first_out: int, parts: list[tuple[list, int]]):
        clock.tick()
        if first_out and used + room[g] <= cap - first_out:
            return  # even taking everything left, the smallest left-out size would still fit
        if g == len(groups):
            yield from _combinations(parts)
            return
        size, items = groups[g]
        m = len(items)
        for k in range(min(m, (cap - used) // size), -1, -1):
            yield from rec(g + 1, used + k * size, first_out or (size if k < m else 0), parts + [(items, k)])

    yield from rec(0, 0, 0, [])


def maximal_node_caches(instance: Instance, n: int, deadline: float | None = None) -> list[tuple[tuple[int, int], ...]]:
    """:func:`iter_maximal_node_caches` as a list (in the same order)."""
    return list(iter_maximal_node_caches(instance, n, deadline))


class _Caches:
    """The maximal caches of one node, listed on demand: the first complete pass is recorded
    when ``keep``, later passes replay it; otherwise every pass lists them again."""

    def __init__(self, instance: Instance, n: int, deadline: float | None, keep: bool):
        self.instance, self.n, self.deadline, self.keep = instance, n, deadline, keep
        self.listed: list | None = None

    def __iter__(self) -> Iterator[tuple[tuple[int, int], ...]]:
        if self.listed is not None:
            return iter(self.listed)
        fresh = iter_maximal_node_caches(self.instance, self.n, self.deadline)
        return self._record(fresh) if self.keep else fresh

    def _record(self, fresh: Iterator) -> Iterator:
        listed = []
        for cache in fresh:
            listed.append(cache)
            yield cache
        self.listed = listed


def _node_caches(instance: Instance, counts: list[int], deadline: float | None,
                 budget: int = LIST_BUDGET) -> list[_Caches]:
    """One :class:`_Caches` per node; the inner nodes (listed most often) are kept first while
    ``count x largest cache`` fits in ``budget``; node 0 is listed only once and never kept."""
    keep = [False] * instance.N
    for n in range(instance.N - 1, 0, -1):
        groups = _groups(instance, n)
        width = min(sum(len(items) for _, items in groups),
                    int(instance.capacity[n]) // groups[0][0] if groups else 0)  # the most a cache holds
        entries = counts[n] * max(1, width)
        if entries <= budget:
            keep[n], budget = True, budget - entries
    return [_Caches(instance, n, deadline, keep[n]) for n in range(instance.N)]


def _placements(instance: Instance, caches: list[_Caches]) -> Iterator[np.ndarray]:
    """Every combination of one cache per node, in ``itertools.product`` order (node 0 slowest),
    as one boolean array rewritten in place (copy it to keep it)."""
    x = np.zeros((instance.N, instance.L, instance.max_experts), dtype=bool)

    def rec(n: int) -> Iterator[np.ndarray]:
        if n == instance.N:
            yield x
            return
        for cache in caches[n]:
            x[n] = False
            for l, e in cache:
                x[n, l, e] = True
            yield from rec(n + 1)

    return rec(0)


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
        Status ``optimal`` (bound = latency) when the enumeration completed,
        and only then.  ``info``: ``placements``, the number the enumeration
        covers (``None`` if the limit struck while counting),
        ``placements_evaluated``, ``maximal_caches_per_node`` and
        ``stopped_by`` (``time_limit``, ``interrupt`` or ``None``).

    Raises
    ------
    InputError
        More than ``max_placements`` combinations, or too many to count.
    SolveInterrupted
        Ctrl-C; its ``result`` is the best placement so far (status
        ``feasible``, the capacity-free bound).

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
    best_t, best_x = math.inf, None
    status, count, counts, total, stopped_by = Status.OPTIMAL, 0, None, None, None
    try:
        counts = [count_maximal_caches(instance, n, deadline) for n in range(instance.N)]
        total = math.prod(counts)
        if total > max_placements:
            raise InputError("--algorithm", ("", f"brute-force would enumerate {_approx(total)} placements (more than "
                                                 f"max_placements = {max_placements}); it is meant for tiny "
                                                 "instances: use exact"))
        for x in _placements(instance, _node_caches(instance, counts, deadline)):
            t = latency(instance, x)
            count += 1
            if t < best_t:
                best_t, best_x = t, x.copy()
            if deadline is not None and time.perf_counter() > deadline:
                raise _OutOfTime
    except _OutOfTime:
        status, stopped_by = Status.TIME_LIMIT, "time_limit"
    except KeyboardInterrupt:  # Ctrl-C: the best so far goes back with the interruption
        status, stopped_by = Status.FEASIBLE, "interrupt"
    if status is Status.OPTIMAL and count != total:  # never "optimal" without every placement seen
        raise RuntimeError(f"brute-force evaluated {count} placements, but counted {total}")
    placement = Placement(best_x) if best_x is not None else instance.empty_placement()
    bound = best_t if status is Status.OPTIMAL else capacity_free_bound(instance)
    res = make_result(instance, placement, algorithm="brute-force", status=status,
                       runtime_s=time.perf_counter() - t0, params={"max_placements": max_placements},
                       seed=seed, bound=bound,
                       info={"placements": total, "placements_evaluated": count, "maximal_caches_per_node": counts,
                             "stopped_by": stopped_by})
    if stopped_by == "interrupt":
        raise SolveInterrupted(res)
    return res
