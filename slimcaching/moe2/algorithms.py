"""Algorithms for MoE² edge LLM expert selection (``docs/model.md`` section 2).

Problem: choose ``S_k`` within the latency-feasible experts ``A_k`` of every
category ``k`` to maximise ``f(S) = sum_k lambda_k q_k(S_k)`` subject to
``g(S) = sum_k lambda_k eps_k(S_k) <= E`` (``eps_k`` the per-request energy
under the instance's accounting).  Every method reads ``q_k`` and ``eps_k``
only through a counting oracle (:class:`~slimcaching.moe2.common.CountingOracle`),
so it works from a table, a quality model or a Python callable alike.

* :func:`dmo`        the paper's method: discrete monotonic optimisation
  (branch-reduce-and-bound over the binary box, or Tuy's polyblock), exact;
* :func:`exhaustive` every feasible subset of every category, every combination, exact;
* :func:`exact`      the subset-choice MILP solved by HiGHS
  (:mod:`slimcaching.moe2.milp`), exact;
* :func:`greedy`, :func:`fastest`, :func:`random_selection`: baselines.

Every function has the signature ``f(instance, *, seed=None, time_limit=None,
**params) -> Moe2Result`` and is listed in :data:`MOE2_ALGORITHMS`.  Objective,
energy and feasibility in a result always come from the family's one evaluator,
:func:`slimcaching.moe2.instance.evaluate_moe2`.

When no expert fits (no ``(k, i)`` with ``d_i + a <= D_k`` and
``lambda_k e_i <= E``), the empty selection is the only feasible one: every
algorithm returns it with status ``optimal`` and a message saying so; this is
never an error.
"""
from __future__ import annotations

import itertools
import math
import time
from typing import Callable

import numpy as np

from ..errors import InputError
from ..result import Status
from .bits import ids_of, popcount, submasks
from .common import (MAX_CANDIDATES, NOTHING_FITS, CountingOracle, Moe2Result, _begin, _check_time_limit, _finish,
                     _usable, check_candidates)
from .dmo import dmo_joint, dmo_mckp, dmo_polyblock
from .instance import Moe2Instance, within

__all__ = [
    "Moe2Result", "CountingOracle", "MOE2_ALGORITHMS", "get_moe2_algorithm", "MASTERS",
    "dmo", "exhaustive", "exact", "greedy", "fastest", "random_selection", "NOTHING_FITS",
]


# ------------------------------------------------------------------ exact: exhaustive search
def exhaustive(instance: Moe2Instance, *, seed: int | None = None, time_limit: float | None = None,
               max_candidates: int = MAX_CANDIDATES, **params) -> Moe2Result:
    """Exact optimum by exhaustive search.

    Queries ``q_k`` (and, under per-query accounting, ``eps_k``) on every
    latency-feasible subset of every category, then enumerates every
    combination ``(S_1, ..., S_C)``, keeping the best one that meets the
    energy budget (ties: the first in enumeration order).

    Parameters
    ----------
    max_candidates : int
        Refuse (``InputError``) when ``sum_k 2**|A_k|`` exceeds this; counted
        before anything is listed, so memory stays bounded.

    Guarantee
    ---------
    ``f(S) = max { f(T) : T feasible }`` (optimal) whenever it finishes within
    ``time_limit``; otherwise status ``time_limit`` with the best combination
    seen (the empty selection if the limit struck while the candidates were
    being evaluated).  No monotonicity is assumed.

    Notes
    -----
    Oracle calls ``sum_k 2**|A_k|``; time ``O(prod_k 2**|A_k|)``, vectorised over
    the last two categories (chunks of at most ``2**21`` pairs), so practical
    for ``M * C`` up to about 30.
    """
    t0, record, triv = _begin(instance, "exhaustive", params, time_limit, seed, valid=("max_candidates",))
    if triv is not None:
        return triv
    allowed = [int(a) for a in instance.allowed_masks()]
    check_candidates("exhaustive", [popcount(a) for a in allowed], max_candidates)
    oracle = CountingOracle(instance)
    C, lam, B = instance.C, instance.weight, instance.energy_budget
    deadline = None if time_limit is None else t0 + float(time_limit)
    cand = [submasks(a) for a in allowed]
    val, en = [], []
    for k in range(C):
        v, e = [], []
        for s in range(0, len(cand[k]), 4096):  # in pieces, so that an expensive oracle meets the deadline
            v.append(lam[k] * oracle.many(k, cand[k][s:s + 4096]))
            e.append(lam[k] * oracle.many_energy(k, cand[k][s:s + 4096]))
            if deadline is not None and time.perf_counter() > deadline:
                return _finish(instance, np.zeros(C, dtype=np.int64), algorithm="exhaustive",
                               status=Status.TIME_LIMIT, t0=t0, oracle=oracle, params=record, seed=seed,
                               info={"candidates": [len(c) for c in cand]},
                               message="time limit reached while evaluating the candidate subsets")
        val.append(np.concatenate(v))
        en.append(np.concatenate(e))
    best_val, best = -np.inf, None
    stopped = False
    tol = B + 1e-9 * max(1.0, abs(B))  # within(): value <= budget + rtol * max(1, |budget|)
    outer = list(range(C - 2)) if C >= 2 else []
    inner = [C - 2, C - 1] if C >= 2 else [0]
    combos = 0
    for idx in itertools.product(*(range(len(cand[k])) for k in outer)):
        base_v = sum(val[k][j] for k, j in zip(outer, idx))
        base_e = sum(en[k][j] for k, j in zip(outer, idx))
        if base_e > tol:
            continue
        if len(inner) == 1:
            v = base_v + val[0]
            ok = base_e + en[0] <= tol
            combos += len(v)
            if ok.any():
                j = int(np.argmax(np.where(ok, v, -np.inf)))
                if v[j] > best_val:
                    best_val, best = v[j], [int(cand[0][j])]
            continue
        a, b = inner
        chunk = max(1, (1 << 21) // len(cand[b]))
        for s in range(0, len(cand[a]), chunk):
            va = val[a][s:s + chunk, None] + val[b][None, :] + base_v
            ok = en[a][s:s + chunk, None] + en[b][None, :] + base_e <= tol
            combos += va.size
            flat = np.where(ok, va, -np.inf).ravel()
            j = int(np.argmax(flat))
            if flat[j] > best_val:
                ja, jb = divmod(j, len(cand[b]))
                best_val = flat[j]
                best = [int(cand[k][jj]) for k, jj in zip(outer, idx)] + [int(cand[a][s + ja]), int(cand[b][jb])]
            if deadline is not None and time.perf_counter() > deadline:
                stopped = True
                break
        if stopped:
            break
    masks = np.array(best, dtype=np.int64) if best is not None else np.zeros(C, dtype=np.int64)
    info = {"combinations": combos, "candidates": [len(c) for c in cand]}
    if stopped:
        return _finish(instance, masks, algorithm="exhaustive", status=Status.TIME_LIMIT, t0=t0, oracle=oracle,
                       params=record, seed=seed, info=info, message="time limit reached; best combination so far")
    res = _finish(instance, masks, algorithm="exhaustive", status=Status.OPTIMAL, t0=t0, oracle=oracle,
                  params=record, seed=seed, info=info)
    res.bound = res.objective
    return res


# ------------------------------------------------------------------ the paper's method: DMO
MASTERS = ("mckp", "joint", "polyblock")


def dmo(instance: Moe2Instance, *, seed: int | None = None, time_limit: float | None = None,
        master: str = "mckp", assume_monotone: bool = False, **params) -> Moe2Result:
    """Exact expert selection by discrete monotonic optimisation.

    The decision is a point ``x`` of the binary box with one coordinate per
    (category, usable expert); the objective ``f(x) = sum_k lambda_k q_k(x_k)``
    and the constraint ``g(x) = sum_k lambda_k eps_k(x_k) <= E`` are handled
    through box bounds [1, 2] (:mod:`slimcaching.moe2.dmo`):

    * *bound*: ``f <= sum_k lambda_k q_k(hi_k)`` on ``[lo, hi]`` when every ``q_k`` is
      proven monotone (one oracle call for a new ``hi``); otherwise the quality
      model's bound on ``max_{lo <= T <= hi} q_k(T)``;
    * *reduce*: under pool accounting a free coordinate ``j`` with
      ``g(lo + e_j) > E`` is zero in every feasible point of the box; a box whose
      energy lower bound exceeds ``E`` is empty;
    * *branch*: split on the free coordinate of largest energy.

    Parameters
    ----------
    master : {"mckp", "joint", "polyblock"}
        How boxes are kept and refined.  ``"mckp"`` (default): each category
        keeps its own partition of its box into boxes; an exact multiple-choice
        knapsack over the boxes (optimistic items) and the evaluated subsets
        (exact items) bounds the optimum; the best combination of exact items
        is the incumbent; the master's boxes are branched until nothing beats
        the incumbent.  ``"joint"``: best-first branch-reduce-and-bound on the
        joint box.  ``"polyblock"``: Tuy's polyblock outer approximation
        (needs a proven-monotone ``q`` and pool accounting).
    assume_monotone : bool
        Bound boxes by ``q_k(hi)`` even when the quality model is not proven
        monotone: the paper's reading, where the optimality-preserving
        property makes ``q_k`` monotone.  On such a model the result is then a
        heuristic (status ``heuristic``, no bound), since a non-monotone ``q_k``
        can hide its best subset below a box's top corner.

    Guarantee
    ---------
    ``f(S) <= OPT <= bound <= f(S) + 1e-9 max(1, |f(S)|)`` on every instance
    (every master is exact: finite lattice, valid bounds; ``1e-9`` is the
    relative tolerance at which a bound closes on the incumbent), whenever it
    finishes within ``time_limit``; otherwise status ``time_limit`` with a
    feasible incumbent and ``bound`` such that ``f(S) <= OPT <= bound``.  No
    guarantee with ``assume_monotone`` on a model not proven monotone.

    Notes
    -----
    Oracle calls are memoised, so at most ``sum_k 2**|A_k|`` (what exhaustive
    search uses) and in practice far fewer: only top corners of boxes whose
    bound is still competitive are queried.  The mckp master is a dynamic
    programme over Pareto fronts that prunes partial solutions unable to beat
    the incumbent; the number of rounds is exponential in the worst case (the
    problem contains the 0-1 knapsack).

    References
    ----------
    .. [1] H. Tuy, "Monotonic optimization: problems and solution approaches",
       SIAM Journal on Optimization 11(2), 2000.
    .. [2] H. Tuy, M. Minoux, N. T. Hoai-Phuong, "Discrete monotonic
       optimization with application to a discrete location problem", SIAM
       Journal on Optimization 17(1), 2006.
    .. [3] L. Jin, Z. Chen, Y. Liu, et al., "MoE²: Optimizing collaborative
       inference for edge large language models", arXiv:2501.09410, 2025.
    .. [4] H. Kellerer, U. Pferschy, D. Pisinger, "Knapsack Problems",
       Springer, 2004, ch. 11 (multiple-choice knapsack).
    """
    if master not in MASTERS:
        raise InputError("--param master", ("", f"must be one of {', '.join(map(repr, MASTERS))}, got {master!r}"))
    if not isinstance(assume_monotone, bool):
        raise InputError("--param assume_monotone", ("", f"must be true or false, got {assume_monotone!r}"))
    extra = {"assume_monotone": True} if assume_monotone else {}
    t0, record, triv = _begin(instance, "dmo", params, time_limit, seed, valid=("master", "assume_monotone"),
                              master=master, **extra)
    if triv is not None:
        return triv
    proven = instance.quality.monotone
    oracle = CountingOracle(instance)
    oracle.assume_monotone = assume_monotone
    if master == "polyblock" and (oracle.routed or not (proven or assume_monotone)):
        raise InputError("--param master", ("", "polyblock needs a quality model proven monotone (or "
                                                 "assume_monotone=true) and pool energy accounting"))
    deadline = None if time_limit is None else t0 + float(time_limit)
    run = {"mckp": dmo_mckp, "joint": dmo_joint, "polyblock": dmo_polyblock}[master]
    masks, status, bound, info = run(instance, oracle, deadline)
    message = "" if status is Status.OPTIMAL else "time limit reached; best feasible selection found so far"
    if assume_monotone and not proven:
        status = Status.HEURISTIC if status is Status.OPTIMAL else status
        bound = None
        message = ("bounds assumed q monotone (assume_monotone), which is not proven for this "
                   f"{instance.quality.kind} quality: no optimality claim" + (f"; {message}" if message else ""))
    res = _finish(instance, masks, algorithm="dmo", status=status, t0=t0, oracle=oracle, params=record,
                  seed=seed, bound=bound, info=info, message=message)
    if bound is not None:
        res.bound = max(res.objective, float(bound))
    return res


# ------------------------------------------------------------------ exact: MILP
def exact(instance: Moe2Instance, *, seed: int | None = None, time_limit: float | None = None,
          **params) -> Moe2Result:
    """Exact optimum of the subset-choice MILP, solved by HiGHS (see :mod:`slimcaching.moe2.milp`);
    :func:`greedy` is the selection returned if HiGHS stops with nothing better."""
    from .milp import solve_moe2_milp  # Pyomo is imported when the MILP is asked for, not with the registry

    _check_time_limit(time_limit)
    return solve_moe2_milp(instance, seed=seed, time_limit=time_limit,
                           heuristic=lambda budget: greedy(instance, seed=seed, time_limit=budget), **params)


# ------------------------------------------------------------------ baselines
def greedy(instance: Moe2Instance, *, seed: int | None = None, time_limit: float | None = None,
           **params) -> Moe2Result:
    """Greedy by quality gain per unit of energy, compared with the best single expert.

    Repeatedly adds the (category, expert) pair of largest
    ``lambda_k (q_k(S_k + i) - q_k(S_k)) / (lambda_k (eps_k(S_k + i) - eps_k(S_k)))``
    among pairs that keep both budgets and have a positive gain (a pair that
    costs no energy, possible under per-query accounting, comes first);
    returns the better of that and the best feasible single pair.

    Guarantee
    ---------
    None for general ``q_k`` (status ``heuristic``).  When every ``q_k`` is
    monotone submodular (noisy-OR qualities, as from
    :func:`~slimcaching.moe2.generator.generate_moe2`) and the energy is
    charged per pool (additive), the objective is monotone submodular under
    one knapsack constraint and this rule gives
    ``f(S) >= (1 - 1/e) / 2 * OPT`` [1, 2].  Learned-gating qualities are
    neither submodular nor, in general, monotone: no guarantee.

    Notes
    -----
    ``O(n^2)`` oracle queries for ``n`` usable pairs; only the category
    changed in a step is re-queried.

    References
    ----------
    .. [1] A. Krause, C. Guestrin, "A note on the budgeted maximization of
       submodular functions", CMU-CALD-05-103, 2005.
    .. [2] M. Sviridenko, "A note on maximizing a submodular set function
       subject to a knapsack constraint", Operations Research Letters 32(1), 2004.
    """
    t0, record, triv = _begin(instance, "greedy", params, time_limit, seed)
    if triv is not None:
        return triv
    oracle = CountingOracle(instance)
    C, B = instance.C, instance.energy_budget
    lam, e = instance.weight, instance.energy
    usable = _usable(instance)
    pairs = [(k, i) for k in range(C) for i in ids_of(int(usable[k]))]
    S = [0] * C
    cur = [oracle(k, 0) for k in range(C)]
    cur_e = [oracle.energy(k, 0) for k in range(C)]
    used = 0.0
    order: list[tuple[int, int]] = []
    deadline = None if time_limit is None else t0 + float(time_limit)
    stopped = False
    while True:
        best, best_ratio, best_de = None, 0.0, 0.0
        for k, i in pairs:
            if S[k] >> i & 1:
                continue
            new = S[k] | 1 << i
            de = lam[k] * (e[i] if not oracle.routed else oracle.energy(k, new) - cur_e[k])
            if not within(used + de, B):
                continue
            gain = lam[k] * (oracle(k, new) - cur[k])
            if gain <= 0:
                continue
            ratio = gain / de if de > 0 else math.inf
            if ratio > best_ratio:
                best, best_ratio, best_de = (k, i), ratio, de
        if best is None:
            break
        k, i = best
        S[k] |= 1 << i
        cur[k] = oracle(k, S[k])
        cur_e[k] = oracle.energy(k, S[k])
        used += best_de
        order.append(best)
        if deadline is not None and time.perf_counter() > deadline:
            stopped = True
            break
    value = float(np.dot(lam, cur))
    single, single_val = None, value
    base = float(sum(lam[k] * oracle(k, 0) for k in range(C)))
    for k, i in pairs:
        if not within(lam[k] * e[i], B):  # a single expert runs on every request
            continue
        v = base + lam[k] * (oracle(k, 1 << i) - oracle(k, 0))
        if v > single_val:
            single, single_val = (k, i), v
    masks = list(S)
    if single is not None:
        masks = [0] * C
        masks[single[0]] = 1 << single[1]
    info = {"order": [list(p) for p in order], "best_single_used": single is not None}
    return _finish(instance, masks, algorithm="greedy", status=Status.TIME_LIMIT if stopped else Status.HEURISTIC,
                   t0=t0, oracle=oracle, params=record, seed=seed, info=info,
                   message="time limit reached" if stopped else "")


def fastest(instance: Moe2Instance, *, seed: int | None = None, time_limit: float | None = None,
            **params) -> Moe2Result:
    """Fastest-feasible: each category takes its fastest expert that fits both budgets.

    Categories are served in decreasing weight order; each takes the expert
    of smallest latency ``d_i`` with ``d_i + a <= D_k`` whose energy still fits
    the remaining budget (none if no expert does).  Quality is never queried;
    a single expert costs ``e_i`` under either accounting.

    Guarantee
    ---------
    None (status ``heuristic``).  ``O(C M log M)``, no oracle calls.
    """
    t0, record, triv = _begin(instance, "fastest", params, time_limit, seed)
    if triv is not None:
        return triv
    allowed = instance.allowed_masks()
    masks = [0] * instance.C
    used = 0.0
    for k in np.argsort(-instance.weight, kind="stable"):
        for i in np.argsort(instance.latency, kind="stable"):
            w = instance.weight[k] * instance.energy[i]
            if allowed[k] >> int(i) & 1 and within(used + w, instance.energy_budget):
                masks[k] = 1 << int(i)
                used += w
                break
    return _finish(instance, masks, algorithm="fastest", status=Status.HEURISTIC, t0=t0, oracle=None,
                   params=record, seed=seed)


def random_selection(instance: Moe2Instance, *, seed: int | None = None, time_limit: float | None = None,
                     **params) -> Moe2Result:
    """Random maximal selection: latency-feasible pairs in a seeded random order, each kept if energy allows.

    The energy is charged per pool (every member), which can only overstate
    the per-query energy, so the result is feasible under either accounting.

    Guarantee
    ---------
    None (status ``heuristic``).  ``O(C M)``, no oracle calls; the seed is
    recorded (``None`` draws fresh entropy, recorded in ``info``).
    """
    t0, record, triv = _begin(instance, "random", params, time_limit, seed)
    if triv is not None:
        return triv
    seed_used = int(np.random.SeedSequence().entropy % (2 ** 63)) if seed is None else int(seed)
    rng = np.random.default_rng(seed_used)
    allowed = instance.allowed_masks()
    pairs = [(k, i) for k in range(instance.C) for i in ids_of(int(allowed[k]))]
    masks = [0] * instance.C
    used = 0.0
    for j in rng.permutation(len(pairs)):
        k, i = pairs[j]
        w = instance.weight[k] * instance.energy[i]
        if within(used + w, instance.energy_budget):
            masks[k] |= 1 << i
            used += w
    return _finish(instance, masks, algorithm="random", status=Status.HEURISTIC, t0=t0, oracle=None,
                   params=record, seed=seed, info={"seed_used": seed_used})


MOE2_ALGORITHMS: dict[str, Callable[..., Moe2Result]] = {
    "dmo": dmo,
    "exhaustive": exhaustive,
    "exact": exact,
    "greedy": greedy,
    "fastest": fastest,
    "random": random_selection,
}
"""Name -> function; every one is ``f(instance, *, seed=None, time_limit=None, **params) -> Moe2Result``."""

EXACT_METHODS = ("dmo", "exhaustive", "exact")


def get_moe2_algorithm(name: str) -> Callable[..., Moe2Result]:
    """The MoE² algorithm called ``name``; unknown names list the valid ones."""
    if name not in MOE2_ALGORITHMS:
        raise InputError("--algorithm", ("", f"unknown MoE² algorithm {name!r}; valid: {', '.join(MOE2_ALGORITHMS)}"))
    return MOE2_ALGORITHMS[name]
