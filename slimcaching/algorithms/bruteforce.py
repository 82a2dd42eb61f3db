"""Exhaustive search over placements: the exact reference for tiny instances."""
from __future__ import annotations

import itertools
import time

import numpy as np

from ..errors import InputError
from ..instances.model import Instance, Placement
from ..objective import latency
from ..result import Result, Status, make_result

__all__ = ["brute_force", "maximal_node_caches"]


def maximal_node_caches(instance: Instance, n: int) -> list[tuple[tuple[int, int], ...]]:
    """Every inclusion-maximal set of ``(l, e)`` that fits in node ``n``'s capacity.

    Only maximal sets matter because ``R`` is monotone.  Elements no reachable
    user can benefit from (node unreachable by every user) are skipped, so an
    unreachable node contributes only the empty cache.
    """
    reach = np.isfinite(instance.latency[:, n, :]).any(axis=0)  # (L,)
    elems = [(l, e) for l in range(instance.L) if reach[l] for e in range(int(instance.experts[l]))]
    sizes = [int(instance.expert_size[l]) for l, _ in elems]
    cap = int(instance.capacity[n])
    out: list[tuple[tuple[int, int], ...]] = []

    def rec(i: int, chosen: list[int], used: int) -> None:
        if i == len(elems):
            # maximal: no unchosen element still fits
            chosen_set = set(chosen)
            if all(j in chosen_set or used + sizes[j] > cap for j in range(len(elems))):
                out.append(tuple(elems[j] for j in chosen))
            return
        if used + sizes[i] <= cap:
            chosen.append(i)
            rec(i + 1, chosen, used + sizes[i])
            chosen.pop()
        rec(i + 1, chosen, used)

    rec(0, [], 0)
    return out


def brute_force(instance: Instance, *, seed: int | None = None, time_limit: float | None = None,
                max_placements: int = 2_000_000) -> "Result":  # noqa: F821
    """Exact optimum by enumerating every combination of maximal per-node caches.

    Parameters
    ----------
    instance : Instance
    time_limit : float, optional
        Seconds; when reached the best placement so far is returned with
        status ``time_limit``.
    max_placements : int
        Refuse (``InputError``) instances with more combinations than this.

    Returns
    -------
    Result
        Status ``optimal`` when the enumeration completed.

    Notes
    -----
    Cost ``prod_n M_n`` evaluations, where ``M_n`` is the number of maximal
    feasible caches of node ``n``; meant for instances with a handful of
    experts per node.  Exactness follows from monotonicity of ``R``: some
    optimal placement is maximal on every node.
    """
    t0 = time.perf_counter()
    per_node = [maximal_node_caches(instance, n) for n in range(instance.N)]
    total = int(np.prod([len(c) for c in per_node], dtype=float))
    if total > max_placements:
        raise InputError("--algorithm", ("", f"brute-force would enumerate {total} placements "
                                         f"(more than max_placements = {max_placements})"))
    best_t, best_x = np.inf, None
    status = Status.OPTIMAL
    x = np.zeros((instance.N, instance.L, instance.max_experts), dtype=bool)
    count = 0
    for combo in itertools.product(*per_node):
        x[:] = False
        for n, cache in enumerate(combo):
            for l, e in cache:
                x[n, l, e] = True
        t = latency(instance, x)
        count += 1
        if t < best_t - 1e-15:
            best_t, best_x = t, x.copy()
        if time_limit is not None and count % 256 == 0 and time.perf_counter() - t0 > time_limit:
            status = Status.TIME_LIMIT
            break
    placement = Placement(best_x if best_x is not None else x * False)
    return make_result(instance, placement, algorithm="brute-force", status=status,
                       runtime_s=time.perf_counter() - t0, params={"max_placements": max_placements},
                       seed=seed, bound=best_t if status == Status.OPTIMAL else None,
                       info={"placements_evaluated": count, "maximal_caches_per_node": [len(c) for c in per_node]})
