"""Lower bounds on ``T(opt)`` that need no MILP, and the one validity cross-check of every bound.

* :func:`capacity_free_bound` (in :mod:`.solve`): ``T`` with every useful element cached.
* :func:`separable_bound`: a Lagrangian bound that relaxes the capacities and
  the maximum over a set's experts; exact per-expert enumeration, no model,
  any instance size (the only bound besides the capacity-free one that is
  computed on DeepSeek-V3 within seconds).
* :func:`check_bound`: a bound above a feasible latency is a false
  certificate; every method that reports a bound passes it through here with
  every incumbent it knows.
"""
from __future__ import annotations

import math
import time

import numpy as np

from ..instances.model import Instance
from ..objective import empty_latency, member_index

__all__ = ["InvalidBound", "check_bound", "separable_bound", "target_cutoff", "BOUND_RTOL"]

BOUND_RTOL = 1e-9
"""A bound may exceed a feasible latency by this relative amount (floating point) before it is rejected."""


class InvalidBound(RuntimeError):
    """A claimed lower bound exceeds the latency of a feasible placement: a bug, never reported as a result."""


def target_cutoff(upper: float, gap: float) -> float:
    """The objective cutoff of a search that proves a gap of at most ``gap`` below ``upper``.

    A branch-and-bound run that finds nothing below its cutoff ``c`` proves
    ``T(opt) >= c (1 - 1e-8)`` (HiGHS's tolerance is ``1e-9``;
    :func:`~slimcaching.algorithms.lns.cutoff_branch_and_bound`), so the
    cutoff is ``upper (1 - gap)`` raised by ``2e-8``: the bound it proves is at
    least ``upper (1 - gap)``.  Never above ``upper``; ``gap = 0`` gives
    ``upper`` itself.
    """
    return min(upper * (1 - gap) * (1 + 2e-8), upper) if gap > 0 else upper


def check_bound(bound: float | None, bound_method: str, latency: float, latency_method: str) -> None:
    """Raise :class:`InvalidBound` if ``bound > latency (1 + BOUND_RTOL)``.

    Both numbers and both methods are named in the message, so a planted or
    accidental invalid cut is caught where it first meets a feasible placement.
    """
    if bound is not None and bound > latency * (1 + BOUND_RTOL) + 1e-300:
        raise InvalidBound(f"bound {bound!r} from {bound_method} exceeds the latency {latency!r} of a feasible "
                           f"placement from {latency_method} (relative excess {(bound - latency) / latency:.3g})")


def _subset_latency(instance: Instance, layer: int, nodes: np.ndarray) -> np.ndarray:
    """``float (U, 2^k)``: ``min(c[u,l], min_{n in A} t[u,n,l])`` for every subset ``A`` of ``nodes`` (bit ``b`` = ``nodes[b]``)."""
    k = len(nodes)
    out = np.repeat(instance.cloud_latency[:, layer][:, None], 1 << k, axis=1)
    subsets = np.arange(1 << k)
    for b in range(k):
        has = ((subsets >> b) & 1) == 1
        out[:, has] = np.minimum(out[:, has], instance.latency[:, nodes[b], layer][:, None])
    return out


def separable_bound(instance: Instance, *, capacity: np.ndarray | None = None, upper: float | None = None,
                    rounds: int = 3000, time_limit: float | None = None, max_nodes: int = 14,
                    patience: int = 20, decay: float = 0.7, min_step: float = 1e-4) -> dict:
    """The best of a sequence of Lagrangian bounds that relax capacities and the set maximum.

    Parameters
    ----------
    capacity : int (N,), optional
        Capacities (e.g. the tightened ``Q'``); default ``Q``.
    upper : float, optional
        A feasible latency, the target of the Polyak steps (default ``T(empty)``).
    rounds : int
        Subgradient rounds at most (a work limit: the result does not depend
        on machine speed).
    time_limit : float, optional
        Seconds; checked between rounds.
    max_nodes : int
        Nodes per layer beyond which the ``2^N`` enumeration is refused
        (``ValueError``).
    patience, decay : int, float
        Both step sizes are multiplied by ``decay`` after ``patience`` rounds
        in a row without a better bound.
    min_step : float
        The rounds stop (``converged``) once the step factor is below this.

    Returns
    -------
    dict
        ``bound`` (seconds; ``-inf`` if no round ran), ``prices`` (N,),
        ``rounds``, ``converged``, ``wall_s``.

    Notes
    -----
    For prices ``nu >= 0`` and weights ``lam[S, e] >= 0`` summing to 1 over the
    members of each set: ``max_{e in S} tau_e >= sum_e lam[S,e] tau_e`` and, for a
    feasible ``x``, ``nu . (u(x) - Q) <= 0``, so

    ``T(x) >= sum_{u,l,e} w_u m[u,l,e] tau[u,l,e](x) + nu . (u(x) - Q)``,
    ``m[u,l,e] = sum_{S ni e} p[u,l,S] lam[S,e]``.

    The right side is a sum over experts ``(l, e)`` of a function of the set
    ``A`` of nodes caching it, minimised exactly over the ``2^N`` subsets
    (unreachable nodes only cost), minus ``nu . Q``: a valid lower bound for
    every ``(nu, lam)``.  The rounds move ``nu`` by projected subgradient steps
    (Polyak step towards ``upper``) and ``lam`` towards the member that is
    slowest in the current minimiser (a supergradient step of the concave
    ``lam -> bound``); both steps shrink only when the bound has stopped
    rising, not on a fixed schedule.  (A fixed schedule, 0.7 every 20
    rounds, froze the steps after about 400 rounds: on
    ``paper-olmoe-1b-7b-wifi-rtx-bf16`` it stopped at 0.2501 where this one
    reaches 0.2742 in 3000 rounds; ``benchmarks/perf_bounds.py``.)  Validity never depends on the steps: every round's
    ``(nu, lam)`` gives a bound.  For ``K = 1`` the ``lam`` part is exact and the bound
    is the Lagrangian dual of the capacities with integral subproblems, at
    least the LP bound at the optimal ``nu``.  Cost per round:
    ``O(L (E U + E 2^N + U 2^N N))``.

    References
    ----------
    .. [1] A. M. Geoffrion, "Lagrangean relaxation for integer programming",
       Mathematical Programming Study 2, 1974.
    .. [2] M. Held, P. Wolfe, H. P. Crowder, "Validation of subgradient
       optimization", Mathematical Programming 6, 1974.
    """
    t0 = time.perf_counter()
    deadline = math.inf if time_limit is None else t0 + float(time_limit)
    L, N, U, E = instance.L, instance.N, instance.U, instance.max_experts
    cap = np.asarray(instance.capacity if capacity is None else capacity, dtype=float)
    nodes_of = [np.flatnonzero(instance.expert_size[l] <= cap) for l in range(L)]
    if any(len(nd) > max_nodes for nd in nodes_of):
        raise ValueError(f"separable_bound enumerates 2^N node subsets; N = {N} > max_nodes = {max_nodes}")
    sub = [_subset_latency(instance, l, nodes_of[l]) for l in range(L)]
    members = [((np.arange(1 << len(nd))[:, None] >> np.arange(len(nd))[None, :]) & 1).astype(float)
               for nd in nodes_of]
    idx = member_index(instance)
    valid = instance.set_experts >= 0
    lam = np.where(valid, 1.0 / np.maximum(valid.sum(axis=1), 1)[:, None], 0.0)
    coef = instance.coef
    upper = empty_latency(instance) if upper is None else float(upper)
    nu = np.zeros(N)
    best, best_nu = -math.inf, nu.copy()
    step, lam_step = 1.0, 0.5
    done = since = 0
    for it in range(rounds):
        if time.perf_counter() > deadline or step < min_step:
            break
        m = np.bincount(idx.ravel(), weights=(coef[:, None] * lam).ravel(), minlength=U * L * E + 1)[:-1]
        m = m.reshape(U, L, E)
        total, usage = 0.0, np.zeros(N)
        tau_min = np.empty((U, L, E))
        for l in range(L):
            nd = nodes_of[l]
            price = instance.expert_size[l] * (members[l] @ nu[nd])
            cost = m[:, l, :].T @ sub[l] + price[None, :]            # (E, 2^k)
            a = cost.argmin(axis=1)
            total += math.fsum(cost[np.arange(E), a].tolist())
            usage[nd] += instance.expert_size[l] * members[l][a].sum(axis=0)
            tau_min[:, l, :] = sub[l][:, a]
        lb = total - float(nu @ cap)
        done += 1
        if lb > best + 1e-12 * abs(lb):
            best, best_nu, since = lb, nu.copy(), 0
        else:
            since += 1
        g = usage - cap
        if float(g @ g) > 0:
            nu = np.maximum(0.0, nu + step * max(upper - lb, 0.0) / float(g @ g) * g)
        slowest = np.append(tau_min.ravel(), -np.inf)[idx].argmax(axis=1)
        target = np.zeros_like(lam)
        target[np.arange(len(lam)), slowest] = 1.0
        lam = (1 - lam_step) * lam + lam_step * target
        if since >= patience:
            step *= decay
            lam_step *= decay
            since = 0
    return {"bound": best, "prices": best_nu, "rounds": done, "converged": step < min_step,
            "wall_s": time.perf_counter() - t0}
