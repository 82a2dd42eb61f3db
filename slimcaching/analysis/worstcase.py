"""Search for instances on which an algorithm does badly.

Hill climbing with random restarts over *tiny* caching instances (a handful
of experts, one or two layers, nodes and users) to minimise an algorithm's
empirical ratio ``R(alg) / R(opt)``, where ``R(opt)`` is computed exactly by
the brute-force reference (or the MILP).  Each evaluation builds the instance,
runs the algorithm and the reference, and compares their reductions as
computed by the one evaluator.  The worst instance found is written with its
*certificate*: the algorithm's placement and an optimal placement, both
re-evaluated, so anybody can check the ratio with ``slimcaching evaluate``.

A ratio found here is an upper bound on the algorithm's worst-case ratio on
the searched class; it says nothing about instances outside it.
"""
from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..instances.generators import assemble
from ..instances.model import Instance

__all__ = ["WORSTCASE_FORMAT", "BRUTE_FORCE_BUDGET", "Genome", "WorstCase", "worst_case", "write_worst_case",
           "placement_count_bound"]

WORSTCASE_FORMAT = "slimcaching-worstcase/1"


@dataclass
class Genome:
    """The searchable description of a tiny instance (dense, mutable)."""

    experts: np.ndarray        # int (L,)
    sizes: np.ndarray          # int (L,)
    top_k: int
    capacity: np.ndarray       # int (N,)
    weight: np.ndarray         # float (U,)
    cloud: np.ndarray          # float (U, L)
    frac: np.ndarray           # float (U, N, L): t = frac * cloud, in (0, 1)
    reach: np.ndarray          # bool (U, N)
    probs: list[list[np.ndarray]]  # probs[u][l] over subsets[l]
    subsets: list[list[tuple[int, ...]]] = field(default_factory=list)

    def copy(self) -> "Genome":
        return Genome(self.experts.copy(), self.sizes.copy(), self.top_k, self.capacity.copy(),
                      self.weight.copy(), self.cloud.copy(), self.frac.copy(), self.reach.copy(),
                      [[p.copy() for p in row] for row in self.probs], self.subsets)

    def to_instance(self, name: str = "worst-case") -> Instance:
        U, N, L = self.frac.shape
        K = self.top_k
        routing = []
        for u in range(U):
            row = []
            for l in range(L):
                p = self.probs[u][l]
                keep = np.flatnonzero(p > 0)
                sets = np.full((len(keep), K), -1, dtype=np.int64)
                for i, j in enumerate(keep):
                    s = self.subsets[l][j]
                    sets[i, :len(s)] = s
                row.append((sets, p[keep]))
            routing.append(row)
        lat = np.where(self.reach[:, :, None], self.frac * self.cloud[:, None, :], np.inf)
        return assemble(name=name, experts=self.experts, expert_size=self.sizes, top_k=np.full(L, K),
                        node_names=[f"edge-{n}" for n in range(N)], capacity=self.capacity,
                        user_names=[f"user-{u}" for u in range(U)], weight=self.weight, latency=lat,
                        cloud_latency=self.cloud, routing=routing, size_unit="unit",
                        metadata={"generator": "worst_case"})


def _random_genome(rng: np.random.Generator, top_k: int, max_layers: int, max_experts: int, max_nodes: int,
                   max_users: int, max_size: int) -> Genome:
    L = int(rng.integers(1, max_layers + 1))
    N = int(rng.integers(1, max_nodes + 1))
    U = int(rng.integers(1, max_users + 1))
    E = rng.integers(max(top_k, 2), max(top_k, max_experts) + 1, size=L)
    S = rng.integers(1, max_size + 1, size=L)
    subsets = [[c for k in range(1, top_k + 1) for c in itertools.combinations(range(int(e)), k)] for e in E]
    model = int((E * S).sum())
    cap = int(S.min()) * rng.integers(0, -(-model // int(S.min())) + 1, size=N)  # whole experts, mostly
    full_only = top_k > 1 and rng.random() < 0.5  # only |S| = K: co-activation at its strongest
    probs = []
    for _u in range(U):
        row = []
        for l in range(L):
            n_sub = len(subsets[l])
            full = np.array([len(c) == top_k for c in subsets[l]])
            p = rng.dirichlet(np.ones(n_sub)) * (rng.random(n_sub) < 0.6) * (full if full_only else 1)
            if p.sum() <= 0:
                p[rng.choice(np.flatnonzero(full)) if full_only else rng.integers(n_sub)] = 1.0
            row.append(p / p.sum())
        probs.append(row)
    reach = rng.random((U, N)) < 0.8
    reach[np.arange(U), rng.integers(0, N, size=U)] = True
    return Genome(E.astype(np.int64), S.astype(np.int64), top_k, cap.astype(np.int64),
                  rng.dirichlet(np.ones(U)), rng.uniform(0.5, 1.5, size=(U, L)),
                  rng.uniform(0.05, 0.95, size=(U, N, L)), reach, probs, subsets)


def _mutate(g: Genome, rng: np.random.Generator, max_size: int) -> Genome:
    g = g.copy()
    U, N, L = g.frac.shape
    move = int(rng.integers(7))
    if move == 0:  # a node latency
        u, n, l = rng.integers(U), rng.integers(N), rng.integers(L)
        g.frac[u, n, l] = float(np.clip(g.frac[u, n, l] * np.exp(rng.normal(0, 0.5)), 1e-3, 0.999))
    elif move == 1:  # routing mass of one (u, l)
        u, l = rng.integers(U), rng.integers(L)
        p = g.probs[u][l]
        j = rng.integers(len(p))
        if p[j] > 0 and (p > 0).sum() > 1 and rng.random() < 0.4:
            p[j] = 0.0
        else:
            p[j] = p[j] * np.exp(rng.normal(0, 0.7)) + (0.0 if p[j] > 0 else rng.random() * 0.3)
        g.probs[u][l] = p / p.sum()
    elif move == 2:  # a capacity
        n = rng.integers(N)
        step = int(rng.choice([-1, 1]) * rng.choice([1, int(g.sizes[rng.integers(L)])]))
        g.capacity[n] = int(np.clip(g.capacity[n] + step, 0, int((g.experts * g.sizes).sum())))
    elif move == 3:  # an expert size
        l = rng.integers(L)
        g.sizes[l] = int(np.clip(g.sizes[l] + rng.choice([-1, 1]), 1, max_size))
    elif move == 4:  # user weights
        g.weight = g.weight * np.exp(rng.normal(0, 0.5, size=U))
        g.weight /= g.weight.sum()
    elif move == 5:  # a cloud latency
        u, l = rng.integers(U), rng.integers(L)
        g.cloud[u, l] *= float(np.exp(rng.normal(0, 0.3)))
    else:  # reachability
        u, n = rng.integers(U), rng.integers(N)
        g.reach[u, n] = not g.reach[u, n]
        if not g.reach[u].any():
            g.reach[u, n] = True
    return g


@dataclass
class WorstCase:
    """The outcome of :func:`worst_case`."""

    algorithm: str
    params: dict
    top_k: int
    seed: int
    evals: int
    restarts: int
    ratio: float
    latency_ratio: float
    instance: Instance | None
    alg_result: Any
    opt_result: Any
    reference: str
    history: list[tuple[int, float]]
    runtime_s: float
    skipped: int = 0


#: Largest number of placements the brute-force reference may have to enumerate
#: for one candidate; larger candidates are skipped (counted in ``skipped``).
#: At this size brute force takes a few seconds.
BRUTE_FORCE_BUDGET = 200_000


def placement_count_bound(instance: Instance) -> int:
    """An upper bound on the placements brute force enumerates: ``prod_n sum_{k <= k_n} C(m_n, k)``.

    ``m_n`` counts the ``(l, e)`` elements some user can reach on node ``n``
    and ``k_n = Q_n // min_l s_l`` is the most of them that fit, so every
    feasible cache of node ``n`` (maximal or not) is one of the counted
    subsets.  Exact integer arithmetic; the count stops growing once it
    passes ``BRUTE_FORCE_BUDGET`` (only the comparison matters).
    """
    total = 1
    smin = int(instance.expert_size.min())
    for n in range(instance.N):
        reach = np.isfinite(instance.latency[:, n, :]).any(axis=0)
        m = int(instance.experts[reach].sum())
        k = min(m, int(instance.capacity[n]) // smin)
        caches = 0
        for j in range(k + 1):
            caches += math.comb(m, j)
            if caches > BRUTE_FORCE_BUDGET:
                break
        total = min(total * caches, BRUTE_FORCE_BUDGET + 1)
    return total


def _evaluate(g: Genome, algorithm: str, params: dict, reference: str, seed: int,
              ref_time_limit: float | None, left: Callable[[], float | None]):
    """Run the reference and the algorithm on the candidate ``g``; ``None`` when it must be skipped.

    ``left()`` is the time left of the whole search (``None``: no limit).  The
    reference gets at most that much time (and ``ref_time_limit``); a
    brute-force reference is not started on a candidate with more than
    :data:`BRUTE_FORCE_BUDGET` placements.  The algorithm gets the time left
    too; a run it cuts short is skipped, as its placement is not the
    algorithm's answer.
    """
    from ..algorithms import run
    from ..errors import InputError

    inst = g.to_instance()
    if reference == "brute-force" and placement_count_bound(inst) > BRUTE_FORCE_BUDGET:
        return None
    budget = left()
    if budget is not None and budget <= 0:
        return None
    limit = budget if ref_time_limit is None else ref_time_limit if budget is None else min(budget, ref_time_limit)
    try:
        opt = run(inst, reference, seed=seed, time_limit=limit)
    except InputError:  # the reference refuses the candidate (too large for it)
        return None
    if str(opt.status) != "optimal":
        return None
    budget = left()
    if budget is not None and budget <= 0:
        return None
    res = run(inst, algorithm, seed=seed, time_limit=budget, **params)
    if str(res.status) == "time_limit":  # cut short by the search's clock: not the algorithm's answer
        return None
    if not res.feasible:
        return inst, res, opt, -1.0, np.inf  # an infeasible answer is the worst possible
    if opt.reduction <= 1e-12:
        return inst, res, opt, 1.0, 1.0
    return inst, res, opt, res.reduction / opt.reduction, res.latency / opt.latency


def worst_case(algorithm: str = "greedy", *, top_k: int = 1, evals: int = 300, seed: int = 0,
               params: dict | None = None, reference: str = "brute-force", restart_after: int = 60,
               max_layers: int = 2, max_experts: int = 4, max_nodes: int = 2, max_users: int = 2,
               max_size: int = 2, time_limit: float | None = None, ref_time_limit: float | None = 10.0,
               progress: bool = False) -> WorstCase:
    """Minimise ``R(alg) / R(opt)`` over tiny instances by hill climbing with restarts.

    Parameters
    ----------
    algorithm : str
        A registered caching algorithm.
    top_k : int
        ``K`` of every layer; activated sets have 1 to ``K`` experts.
    evals : int
        Number of (algorithm, reference) evaluations.
    seed : int
        Seeds the search and every algorithm run.
    params : dict, optional
        Algorithm parameters.
    reference : str
        Exact reference (``"brute-force"`` or ``"exact"``); candidates it does
        not solve to proven optimality are skipped and counted.
    restart_after : int
        Restart from a fresh random instance after this many evaluations
        without improvement of the current point.
    max_layers, max_experts, max_nodes, max_users, max_size : int
        Bounds of the searched class.
    time_limit : float, optional
        Seconds for the whole search; the worst instance so far is returned.
        Each reference and algorithm run gets at most the time left, and a
        brute-force reference is not started on a candidate with more than
        :data:`BRUTE_FORCE_BUDGET` placements (see
        :func:`placement_count_bound`), so the search ends within the limit
        plus the overshoot of one run's own time limit.  The clock starts
        once both algorithms are imported (on the first call of a process,
        Pyomo's import takes seconds), as for :func:`~slimcaching.algorithms.run`.
    ref_time_limit : float, optional
        Seconds for one reference run (default 10).

    Returns
    -------
    WorstCase
        The smallest ratio found, the instance, both results and the history
        ``(evaluation, best ratio so far)``.

    Notes
    -----
    A restart draws the sizes of the instance, then every number; for
    ``K >= 2`` half of the restarts put all routing mass on sets of exactly
    ``K`` experts.  A move changes one number: a node latency, the routing
    mass of one subset, a capacity, an expert size, the user weights, a cloud
    latency or a reachability flag.  A move is kept when the ratio does not
    increase.
    """
    from tqdm.auto import tqdm

    from ..algorithms import get_algorithm

    params = dict(params or {})
    rng = np.random.default_rng(seed)
    get_algorithm(algorithm), get_algorithm(reference)  # imported (a one-time cost) before the clock starts
    t0 = time.perf_counter()
    best = None
    cur_g, cur_r, stale, restarts, skipped = None, np.inf, 0, 0, 0
    history: list[tuple[int, float]] = []
    bar = tqdm(total=evals, unit="eval", desc=f"worst-case {algorithm}", disable=not progress)
    def left() -> float | None:
        return None if time_limit is None else time_limit - (time.perf_counter() - t0)

    for i in range(evals):
        if time_limit is not None and left() <= 0:
            break
        if cur_g is None or stale >= restart_after:
            g = _random_genome(rng, top_k, max_layers, max_experts, max_nodes, max_users, max_size)
            restarts += cur_g is not None
            cur_g, cur_r, stale = None, np.inf, 0
        else:
            g = _mutate(cur_g, rng, max_size)
        out = _evaluate(g, algorithm, params, reference, seed, ref_time_limit, left)
        bar.update(1)
        if out is None:
            skipped += 1
            stale += 1
            continue
        inst, res, opt, r, lr = out
        if r <= cur_r:
            stale = 0 if r < cur_r else stale + 1
            cur_g, cur_r = g, r
        else:
            stale += 1
        if best is None or r < best[3]:
            best = (inst, res, opt, r, lr)
            bar.set_postfix(ratio=f"{r:.4f}")
        history.append((i + 1, best[3]))
    bar.close()
    if best is None:
        return WorstCase(algorithm, params, top_k, seed, len(history), restarts, np.nan, np.nan, None, None,
                         None, reference, history, time.perf_counter() - t0, skipped)
    inst, res, opt, r, lr = best
    return WorstCase(algorithm, params, top_k, seed, history[-1][0] if history else 0, restarts, float(r),
                     float(lr), inst, res, opt, reference, history, time.perf_counter() - t0, skipped)


def write_worst_case(wc: WorstCase, path: str | Path) -> dict[str, Any]:
    """Write the certificate of a search: the instance, both placements re-evaluated.

    Also writes the instance alone next to it (``<stem>.instance.json``) so it
    can be fed to ``slimcaching solve`` and ``evaluate``.
    """
    from ..algorithms import guarantees_of
    from ..instances.io import placement_to_dict, write_instance, write_json
    from ..objective import evaluate

    if wc.instance is None:
        raise ValueError("no instance was evaluated; nothing to write")
    inst = wc.instance
    ea, eo = evaluate(inst, wc.alg_result.placement), evaluate(inst, wc.opt_result.placement)
    claims = []
    try:
        for g in guarantees_of(wc.algorithm):
            if g.applies(inst, wc.params):
                claims.append({"ratio": g.ratio, "status": g.status, "regime": g.regime, "reference": g.reference,
                               "violated": bool(eo.reduction > 0 and ea.reduction / eo.reduction < g.ratio - 1e-9)})
    except Exception:  # guarantees are optional metadata here
        pass
    doc = {
        "format": WORSTCASE_FORMAT,
        "algorithm": wc.algorithm, "params": wc.params, "top_k": wc.top_k, "seed": wc.seed,
        "evals": wc.evals, "restarts": wc.restarts, "skipped": wc.skipped, "runtime_s": wc.runtime_s,
        "reference_algorithm": wc.reference,
        "ratio": ea.reduction / eo.reduction if eo.reduction > 0 else 1.0,
        "latency_ratio": ea.latency / eo.latency if eo.latency > 0 else None,
        "claimed_guarantees": claims,
        "history": [[int(i), float(r)] for i, r in wc.history],
        "instance": inst.to_dict(),
        "algorithm_placement": placement_to_dict(inst, wc.alg_result.placement, algorithm=wc.algorithm,
                                                 latency=ea.latency, reduction=ea.reduction,
                                                 empty_latency=ea.empty_latency, feasible=ea.feasible),
        "optimal_placement": placement_to_dict(inst, wc.opt_result.placement, algorithm=wc.reference,
                                               latency=eo.latency, reduction=eo.reduction,
                                               empty_latency=eo.empty_latency, status="optimal"),
    }
    path = Path(path)
    write_json(doc, path)
    stem = path.name[:-len(".json.gz")] if path.name.endswith(".json.gz") else path.stem
    write_instance(inst, path.with_name(stem + ".instance.json"))
    return doc
