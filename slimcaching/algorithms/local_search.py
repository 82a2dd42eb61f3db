"""Our algorithms beyond the paper: local search on top of the successive decomposition.

* :func:`polish` -- first-improvement local search on any starting placement
  with *add*, *set* (a whole activated set at one node), *spread* (a set
  across nodes), *drop*, *swap*, *move*, *exchange* (two nodes trade
  elements) and *replace* (a set in place of a node's cheapest elements) steps, driven by the incremental evaluator; stops at a local
  optimum of that neighbourhood (or a limit).
* :func:`cyclic` -- cyclic re-optimisation (block-coordinate ascent over
  nodes): re-solve one node's single-node problem with every other node
  fixed, accept strict improvements, sweep the nodes until a whole pass
  improves nothing.
* :func:`best` -- ``successive``, then :func:`cyclic`, then :func:`polish`;
  the same cyclic + polish chain from the ``independent`` placement and from
  seeded random placements; the best of the chains.

None of them has an approximation guarantee of its own.  Each accepts only
moves that strictly increase ``R``, so its result is never worse than its
start: any guarantee proven for the start (for :func:`cyclic` and
:func:`best`, the one of ``successive``) carries over, and
``R(best) >= R(successive)`` on every instance.
"""
from __future__ import annotations

import itertools
import time
from typing import Any

import numpy as np

from ..errors import InputError
from ..instances.model import Instance, Placement
from ..objective import IncrementalEvaluator
from ..result import Guarantee, Result, Status, make_result
from . import successive as _successive

__all__ = ["polish", "cyclic", "best", "candidate_sets", "spread_candidates", "replace_candidates", "MOVE_KINDS",
           "AUTO_RESTART_ELEMENTS"]

#: ``best(restarts="auto")`` adds random restarts up to this many elements ``N sum_l E_l``.
AUTO_RESTART_ELEMENTS = 1000

#: The step kinds :func:`polish` implements, in the order it tries them.
MOVE_KINDS: tuple[str, ...] = ("add", "set", "spread", "drop", "swap", "move", "exchange", "replace")


# ----------------------------------------------------------------- helpers
def _deadline(time_limit: float | None, t0: float) -> float:
    if time_limit is None:
        return np.inf
    if not (isinstance(time_limit, (int, float)) and time_limit >= 0):
        raise InputError("--time-limit", ("", f"time limit must be a number >= 0 seconds, got {time_limit!r}"))
    return t0 + float(time_limit)


def _check_start(instance: Instance, start: Placement | None) -> Placement | None:
    """``start`` must be a feasible placement of ``instance`` (shape, valid experts, capacity)."""
    if start is None:
        return None
    x = start.x if isinstance(start, Placement) else None
    shape = (instance.N, instance.L, instance.max_experts)
    if x is None or x.shape != shape:
        got = getattr(x, "shape", type(start).__name__)
        raise InputError("start", ("", f"start must be a Placement of shape {shape}, got {got}"))
    if np.any(x & ~instance.valid_mask()[None, :, :]):
        n, l, e = np.argwhere(x & ~instance.valid_mask()[None, :, :])[0]
        raise InputError("start", (f"$.cache.{instance.node_names[n]}",
                                   f"layer {l} has {instance.experts[l]} experts, expert {e} does not exist"))
    used = start.storage_used(instance)
    over = np.nonzero(used > instance.capacity)[0]
    if len(over):
        n = int(over[0])
        raise InputError("start", (f"$.cache.{instance.node_names[n]}",
                                   f"start uses {used[n]} > capacity {instance.capacity[n]} of node "
                                   f"{instance.node_names[n]!r}"))
    return start


def _check_tol(tol: float | None, ev: IncrementalEvaluator) -> float:
    if tol is None:
        return 1e-12 * max(ev.empty_latency, 1e-300)
    if not (isinstance(tol, (int, float)) and tol >= 0):
        raise InputError("--param", ("tol", f"tol must be a number >= 0, got {tol!r}"))
    return float(tol)


def _check_moves(moves: Any) -> tuple[str, ...]:
    if isinstance(moves, str):
        moves = [m.strip() for m in moves.split(",") if m.strip()]
    moves = tuple(moves)
    bad = [m for m in moves if m not in MOVE_KINDS]
    if bad or not moves:
        raise InputError("--param", ("moves", f"moves must be a non-empty subset of {', '.join(MOVE_KINDS)}; "
                                              f"got {', '.join(map(str, bad)) or 'nothing'}"))
    return tuple(m for m in MOVE_KINDS if m in moves)


def _check_count(name: str, v: Any, low: int) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
        raise InputError("--param", (name, f"{name} must be an integer >= {low}, got {v!r}"))
    return int(v)


# ------------------------------------------------------------- local search
def candidate_sets(instance: Instance, max_sets: int) -> list[np.ndarray]:
    """Per layer, the ``max_sets`` activated sets of two or more experts with the largest mass.

    Mass of a set ``S`` of layer ``l`` is ``sum_u w_u p[u,l,S]`` (sets equal
    as sets are merged); ties broken by the member ids.  Returns one
    ``int64 (m_l, Kmax)`` array per layer, members in descending order
    padded with ``-1``.
    """
    return [m for m, _ in _sets_with_mass(instance, max_sets)]


def _sets_with_mass(instance: Instance, max_sets: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`candidate_sets` and, per set, each user's mass ``w_u p[u,l,S]`` (``float64 (m_l, U)``)."""
    out = []
    se = np.sort(np.where(instance.set_experts >= 0, instance.set_experts, -1), axis=1)[:, ::-1]
    size = (se >= 0).sum(axis=1)
    U = instance.U
    for l in range(instance.L):
        rows = np.nonzero((instance.set_layer == l) & (size >= 2))[0]
        if len(rows) == 0 or max_sets == 0:
            out.append((np.zeros((0, se.shape[1]), dtype=np.int64), np.zeros((0, U))))
            continue
        uniq, inv = np.unique(se[rows], axis=0, return_inverse=True)
        inv = inv.ravel()
        mass = np.bincount(inv, weights=instance.coef[rows], minlength=len(uniq))
        keep = np.argsort(-mass, kind="stable")[:max_sets]
        per_user = np.bincount(inv * U + instance.set_user[rows], weights=instance.coef[rows],
                               minlength=len(uniq) * U).reshape(len(uniq), U)
        out.append((uniq[keep].astype(np.int64), per_user[keep]))
    return out


def _set_node_scores(instance: Instance, sets: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    """Per layer ``float64 (m_l, N)``: ``sum_u m_u(S) min(t[u,n,l], c[u,l])``, lower is better."""
    out = []
    for l, (_, mass) in enumerate(sets):
        t = np.minimum(instance.latency[:, :, l], instance.cloud_latency[:, l, None])  # (U, N)
        out.append(mass @ t)
    return out


def _spread(x: np.ndarray, used: np.ndarray, instance: Instance, sets: list[tuple[np.ndarray, np.ndarray]],
            scores: list[np.ndarray]) -> list[list[tuple[int, int, int]]]:
    """The *spread* candidates: for each candidate set, its members placed across nodes.

    Nodes are ranked by the set's score (:func:`_set_node_scores`, ties by
    index).  Each member ``e`` (ascending id) goes to the best-ranked node that
    has room (counting this candidate's earlier placements) and scores
    strictly better than every node already caching ``(l, e)``; a member with
    no such node is left out.  Candidates placing fewer than two elements are
    omitted (one element is an *add*).
    """
    size, cap = instance.expert_size, instance.capacity
    out = []
    for l, (members, _) in enumerate(sets):
        sl = int(size[l])
        for j, row in enumerate(members):
            sc = scores[l][j]
            order = np.argsort(sc, kind="stable")
            room = cap - used
            chosen = []
            for e in sorted(int(v) for v in row if v >= 0):
                have = x[:, l, e]
                cur = sc[have].min() if have.any() else np.inf
                for n in order:
                    if sc[n] >= cur:
                        break
                    if room[n] >= sl:
                        chosen.append((int(n), l, e))
                        room[n] -= sl
                        break
            if len(chosen) >= 2:
                out.append(chosen)
    return out


def _replace(x: np.ndarray, used: np.ndarray, loss: np.ndarray, cached: np.ndarray, instance: Instance,
             sets: list[np.ndarray]) -> list[tuple[list, list]]:
    """The *replace* candidates ``(add, remove)``: a candidate set in place of a node's cheapest elements.

    For each node ``n``, layer ``l`` and candidate set of ``l`` with two or
    more members missing at ``n`` that do not fit in ``n``'s free space:
    evict ``n``'s cached elements of other layers in increasing order of
    their current loss (``loss``, aligned with ``cached``; ties by element
    order) until the missing members fit, and add them.  Nodes without
    enough such elements give no candidate.
    """
    size, cap = instance.expert_size, instance.capacity
    out = []
    for n in range(instance.N):
        mine = np.nonzero(cached[:, 0] == n)[0]
        mine = mine[np.argsort(loss[mine], kind="stable")]
        free = int(cap[n] - used[n])
        for l, members in enumerate(sets):
            others = mine[cached[mine, 1] != l]
            freed = np.cumsum(size[cached[others, 1]])
            for row in members:
                miss = [int(e) for e in row if e >= 0 and not x[n, l, e]]
                short = len(miss) * int(size[l]) - free
                if len(miss) < 2 or short <= 0 or not len(freed) or freed[-1] < short:
                    continue
                k = int(np.searchsorted(freed, short)) + 1
                out.append(([(n, l, e) for e in miss], [tuple(int(v) for v in cached[i]) for i in others[:k]]))
    return out


def replace_candidates(instance: Instance, placement: Placement, max_sets: int = 64) -> list[tuple[list, list]]:
    """The ``(add, remove)`` pairs :func:`polish`'s *replace* step considers at ``placement``."""
    ev = IncrementalEvaluator(instance, placement)
    cached = np.argwhere(placement.x)
    return _replace(placement.x, ev.used, ev.losses(cached), cached, instance, candidate_sets(instance, max_sets))


def spread_candidates(instance: Instance, placement: Placement, max_sets: int = 64) -> list[list[tuple[int, int, int]]]:
    """The element lists :func:`polish`'s *spread* step considers at ``placement``."""
    sets = _sets_with_mass(instance, max_sets)
    return _spread(placement.x, placement.storage_used(instance), instance, sets, _set_node_scores(instance, sets))


class _Neighbourhood:
    """The step kinds of :func:`polish` around the placement held by ``ev``.

    Keeps ``G[n, l, e]``, the gain of adding each element on its own, up to
    date layer by layer: a change of ``(n, l, e)`` only touches the routing
    rows of layer ``l``, so only that layer's gains are recomputed.
    """

    def __init__(self, ev: IncrementalEvaluator, kinds: tuple[str, ...], tol: float, rng: np.random.Generator,
                 max_sets: int):
        inst = ev.instance
        self.ev, self.kinds, self.tol, self.rng = ev, kinds, tol, rng
        self.size = inst.expert_size
        self.cap = inst.capacity
        self.valid = inst.valid_mask()  # (L, Emax)
        N, L, E = inst.N, inst.L, inst.max_experts
        grid = np.argwhere(np.broadcast_to(self.valid[None], (N, L, E)))  # sorted by (n, l, e)
        self.layer_elements = [grid[grid[:, 1] == l] for l in range(L)]
        self.G = np.zeros((N, L, E))
        self.queries = 0
        with_mass = _sets_with_mass(inst, max_sets if {"set", "spread", "replace"} & set(kinds) else 0)
        self.replace_sets = [m for m, _ in with_mass] if "replace" in kinds else []
        self.sets = [m for m, _ in with_mass] if "set" in kinds else [np.zeros((0, 0), np.int64)] * L
        self.spread_sets = with_mass if "spread" in kinds else []
        self.spread_scores = _set_node_scores(inst, self.spread_sets)
        self.spread_cache: list[dict] = [{} for _ in range(L)]  # elements -> gain; valid until layer l changes
        self.H = [np.full((N, len(m)), -np.inf) for m in self.sets]  # gain of each set-add
        self.need = [np.zeros((N, len(m)), dtype=np.int64) for m in self.sets]  # members missing
        for l in range(L):
            self._refresh(l)

    def _refresh(self, l: int) -> None:
        self.spread_cache[l].clear()
        el = self.layer_elements[l]
        if len(el):
            self.G[el[:, 0], el[:, 1], el[:, 2]] = self.ev.gains(el)
            self.queries += len(el)
        members = self.sets[l]
        if len(members) == 0:
            return
        # members missing at each node; gains are computed lazily in best_set (NaN = not yet)
        present = np.where(members[None, :, :] >= 0, self.ev.x[:, l, :][:, np.maximum(members, 0)], True)
        self.need[l] = (~present).sum(axis=2)
        self.H[l] = np.where(self.need[l] >= 2, np.nan, -np.inf)

    def best_replace(self, deadline: float) -> tuple[float, list | None, list | None]:
        """Best *replace* candidate, every one evaluated exactly (used only at a local optimum of the rest)."""
        ev = self.ev
        cached = np.argwhere(ev.x)
        loss = ev.losses(cached)
        best_g, best = -np.inf, (None, None)
        for add, remove in _replace(ev.x, ev.used, loss, cached, ev.instance, self.replace_sets):
            if time.perf_counter() > deadline:
                break
            g = ev.gain_of(add=add, remove=remove)
            self.queries += 1
            if g > best_g:
                best_g, best = g, (add, remove)
        return best_g, best[0], best[1]

    def best_spread(self) -> tuple[float, list[tuple[int, int, int]] | None]:
        """Best *spread* candidate (gains of one layer's additions depend only on that layer)."""
        ev = self.ev
        best_g, best = -np.inf, None
        for cand in _spread(ev.x, ev.used, ev.instance, self.spread_sets, self.spread_scores):
            l = cand[0][1]
            key = tuple(cand)
            g = self.spread_cache[l].get(key)
            if g is None:
                g = self.spread_cache[l][key] = ev.gain_of(add=cand)
                self.queries += 1
            if g > best_g:
                best_g, best = g, cand
        return best_g, best

    def best_set(self) -> tuple[float, list[tuple[int, int, int]] | None]:
        """Best addition of the missing members (two or more) of one candidate set at one node."""
        ev = self.ev
        best_g, best = -np.inf, None
        for l, members in enumerate(self.sets):
            if len(members) == 0:
                continue
            fits = (ev.used[:, None] + self.size[l] * self.need[l] <= self.cap[:, None]) & (self.need[l] >= 2)
            for n, j in zip(*np.nonzero(fits & np.isnan(self.H[l]))):
                self.H[l][n, j] = ev.gain_of(add=[(int(n), l, int(e)) for e in members[j]
                                                  if e >= 0 and not ev.x[n, l, e]])
                self.queries += 1
            g = np.where(fits, self.H[l], -np.inf)
            i = int(np.argmax(g))
            if g.flat[i] > best_g:
                n, j = np.unravel_index(i, g.shape)
                best_g = float(g.flat[i])
                best = [(int(n), l, int(e)) for e in members[j] if e >= 0 and not ev.x[n, l, e]]
        return best_g, best

    def apply(self, add: list[tuple[int, int, int]], remove: list[tuple[int, int, int]]) -> float:
        g = self.ev.apply(add=add, remove=remove)
        for l in sorted({l for _, l, _ in add + remove}):
            self._refresh(l)
        return g

    # -- the step kinds
    def best_add(self) -> tuple[float, tuple[int, int, int] | None]:
        """Best single addition that fits (gain, element)."""
        ev = self.ev
        fits = (ev.used[:, None] + self.size[None, :] <= self.cap[:, None])  # (N, L)
        ok = ~ev.x & self.valid[None] & fits[:, :, None]
        if not ok.any():
            return -np.inf, None
        g = np.where(ok, self.G, -np.inf)
        i = int(np.argmax(g))
        return float(g.flat[i]), tuple(int(v) for v in np.unravel_index(i, g.shape))

    def sweep(self, deadline: float, budget: int | None) -> tuple[dict[str, int], float, bool]:
        """One pass of drop / swap / move over the cached elements, then exchanges if nothing moved.

        Elements are visited in a seeded random order.  For the visited
        ``d = (n, l, e)`` the candidates are: dropping ``d``; every swap of
        ``d`` for an uncached ``(n, l', e')`` that fits once ``d`` is gone;
        every move of ``d`` to a node ``m`` without it, evicting at most one
        cached ``b`` of ``m`` (none if ``d`` fits).  Values are exact: with
        ``Y = x - d``, gains of additions in ``Y`` come from one batch
        evaluation with ``d`` removed; the loss of an element of another layer
        than ``d``'s is the same in ``x`` and ``Y`` (disjoint routing rows),
        so swaps into other layers are ``G[n, l', e'] - loss(d)`` and
        evictions of other-layer ``b`` cost ``loss(b)``; same-layer evictions
        are evaluated jointly, only when the bound ``gain_Y(m, l, e) - loss(d)``
        (``R`` is monotone) could beat the best so far.  The best candidate of
        ``d`` is applied at once if it improves ``R`` by more than ``tol``
        and the pass continues from the new placement.

        Returns the steps applied per kind, their total gain and whether the
        deadline passed.
        """
        ev, tol = self.ev, self.tol
        applied = {k: 0 for k in self.kinds}
        gained = 0.0
        do_drop, do_swap, do_move, do_pair = (k in self.kinds for k in ("drop", "swap", "move", "exchange"))
        # With add and swap enabled a move cannot improve once they cannot (R is monotone):
        # move(d -> m) <= add(m, l, e), and move(d -> m, evicting b) <= swap(b -> (m, l, e)) at m,
        # which this pass checks when it visits b.  So moves are only evaluated without them.
        eval_move = do_move and not ("add" in self.kinds and do_swap)
        if not (do_drop or do_swap or do_move or do_pair):
            return applied, gained, False
        order = [tuple(int(v) for v in r) for r in np.argwhere(ev.x)]
        order = [order[i] for i in self.rng.permutation(len(order))]
        stale = True
        reloc = None
        for d in order:
            if budget is not None and sum(applied.values()) >= budget:
                return applied, gained, False
            if time.perf_counter() > deadline:
                return applied, gained, True
            if not ev.x[d]:
                continue
            if stale:  # the placement changed: refresh the cached elements, their losses, the free space
                cached = np.argwhere(ev.x)
                loss = ev.losses(cached)
                self.queries += len(cached)
                index = {tuple(int(v) for v in r): k for k, r in enumerate(cached)}
                free = self.cap - ev.used
                el_size = self.size[cached[:, 1]]
                reloc = np.full((len(cached), ev.instance.N), -np.inf) if do_pair else None
                stale = False
            i = index[d]
            n, l, e = d
            room = free[n] + self.size[l]
            best_g, best = -np.inf, None  # best gain over Y = x - d, and its (kind, add, remove)
            if do_drop:
                best_g, best = 0.0, ("drop", [], [])
            if do_swap:
                ok = ~ev.x[n] & self.valid & (self.size[:, None] <= room)
                ok[l] = False
                if ok.any():
                    g = np.where(ok, self.G[n], -np.inf)
                    j = int(np.argmax(g))
                    if g.flat[j] > best_g:
                        l2, e2 = np.unravel_index(j, g.shape)
                        best_g, best = float(g.flat[j]), ("swap", [(n, int(l2), int(e2))], [])
            batch = []
            if do_swap:
                batch += [(n, l, int(e2)) for e2 in np.nonzero(~ev.x[n, l] & self.valid[l])[0]]
            n_swap = len(batch)
            if do_move or do_pair:
                batch += [(int(m), l, e) for m in np.nonzero(~ev.x[:, l, e])[0]]
            if batch:
                best_g, best, g = self._batch(d, batch, n_swap, best_g, best, cached, loss, free, el_size, eval_move)
                if do_pair:
                    reloc[i, [m for m, _, _ in batch[n_swap:]]] = g[n_swap:] - loss[i]
            if best is not None and best_g - loss[i] > tol:
                kind, add, remove = best
                gained += self.apply(add, [d] + remove)
                applied[kind] += 1
                stale = True
        if do_pair and not stale and reloc is not None and time.perf_counter() <= deadline:
            for g_val, add, remove in self._pairs(cached, reloc, free, el_size, deadline):
                if budget is not None and sum(applied.values()) >= budget:
                    break
                if not all(ev.x[r] for r in remove) or any(ev.x[a] for a in add) or not self._fits(add, remove):
                    continue
                g_now = ev.gain_of(add=add, remove=remove)  # exact again: earlier exchanges touched other layers
                self.queries += 1
                if g_now > tol:
                    gained += self.apply(add, remove)
                    applied["exchange"] += 1
        return applied, gained, time.perf_counter() > deadline

    def _fits(self, add: list, remove: list) -> bool:
        used = self.ev.used.copy()
        for n, l, _ in remove:
            used[n] -= self.size[l]
        for n, l, _ in add:
            used[n] += self.size[l]
        return bool(np.all(used <= self.cap))

    def _pairs(self, cached: np.ndarray, reloc: np.ndarray, free: np.ndarray, el_size: np.ndarray,
               deadline: float) -> list[tuple[float, list, list]]:
        """Improving *exchanges* (cached ``a`` on ``n1`` and ``b`` on ``n2`` trade places), best first,
        greedily restricted to pairwise disjoint layer sets so their values stay exact when applied in turn.

        ``reloc[i, m]`` is the exact change of ``R`` when cached element ``i``
        alone is relocated to node ``m`` (``-inf`` where ``m`` holds its key).
        For ``a`` and ``b`` of different layers the exchange changes disjoint
        routing rows, so its value is ``reloc[a, n2] + reloc[b, n1]`` exactly
        (vectorised over all pairs); same-layer pairs are evaluated jointly.
        """
        ev, tol = self.ev, self.tol
        nodes, layers, experts = cached[:, 0], cached[:, 1], cached[:, 2]
        fit = free[nodes][:, None] + el_size[:, None] - el_size[None, :] >= 0  # room at a's node for b
        ok = (nodes[:, None] != nodes[None, :]) & (layers[:, None] != layers[None, :]) & fit & fit.T
        val = reloc[:, nodes]  # val[i, k] = reloc[i, node of k]
        tot = np.triu(np.where(ok, val + val.T, -np.inf), 1)
        tot[np.tril_indices_from(tot)] = -np.inf
        cands = [(float(tot[i, k]), int(i), int(k)) for i, k in zip(*np.nonzero(tot > tol))]
        x = ev.x
        for l in np.unique(layers):
            idx = np.nonzero(layers == l)[0]
            for a, b in itertools.combinations(idx, 2):
                n1, n2, e1, e2 = nodes[a], nodes[b], experts[a], experts[b]
                if n1 == n2 or e1 == e2 or x[n1, l, e2] or x[n2, l, e1]:
                    continue
                if time.perf_counter() > deadline:
                    break
                g = ev.gain_of(add=[(int(n1), int(l), int(e2)), (int(n2), int(l), int(e1))],
                               remove=[tuple(int(v) for v in cached[a]), tuple(int(v) for v in cached[b])])
                self.queries += 1
                if g > tol:
                    cands.append((g, int(a), int(b)))
        cands.sort(key=lambda c: -c[0])
        out, taken = [], set()
        for g, a, b in cands:
            ls = {int(layers[a]), int(layers[b])}
            if ls & taken:
                continue
            taken |= ls
            (n1, l1, e1), (n2, l2, e2) = (tuple(int(v) for v in cached[t]) for t in (a, b))
            out.append((g, [(n1, l2, e2), (n2, l1, e1)], [(n1, l1, e1), (n2, l2, e2)]))
        return out

    def _batch(self, d, batch, n_swap, best_g, best, cached, loss, free, el_size, do_move):
        """Same-layer swaps and moves of ``d``, evaluated with ``d`` removed; updates the best.

        Returns the best gain over ``x - d``, its move, and the batch's gains over ``x - d``.
        """
        ev = self.ev
        n, l, e = d
        ev.apply(remove=[d])
        try:
            g = ev.gains(np.asarray(batch))
            self.queries += len(batch)
            if n_swap:
                j = int(np.argmax(g[:n_swap]))
                if g[j] > best_g:
                    best_g, best = float(g[j]), ("swap", [batch[j]], [])
            for j in range(n_swap if do_move else len(batch), len(batch)):
                m = batch[j][0]
                a = batch[j]
                if g[j] <= best_g:  # R monotone: no eviction at m beats adding a alone
                    continue
                if free[m] >= self.size[l]:
                    best_g, best = float(g[j]), ("move", [a], [])
                    continue
                on_m = np.nonzero((cached[:, 0] == m) & (free[m] + el_size >= self.size[l]))[0]
                other = on_m[cached[on_m, 1] != l]
                if len(other):
                    k = other[int(np.argmin(loss[other]))]
                    if g[j] - loss[k] > best_g:
                        best_g, best = float(g[j] - loss[k]), ("move", [a], [tuple(int(v) for v in cached[k])])
                for k in on_m[cached[on_m, 1] == l]:
                    b = tuple(int(v) for v in cached[k])
                    gb = ev.gain_of(add=[a], remove=[b])
                    self.queries += 1
                    if gb > best_g:
                        best_g, best = float(gb), ("move", [a], [b])
        finally:
            ev.apply(add=[d])
        return best_g, best, g


def _local_search(ev: IncrementalEvaluator, *, kinds: tuple[str, ...], tol: float, rng: np.random.Generator,
                  deadline: float, max_moves: int | None, max_sets: int) -> dict:
    """Run :func:`polish`'s loop on ``ev`` in place; returns what it did."""
    nb = _Neighbourhood(ev, kinds, tol, rng, max_sets)
    counts = {k: 0 for k in kinds}
    gained = 0.0
    scans = 0
    stopped = "local_optimum"
    while True:
        if time.perf_counter() > deadline:
            stopped = "time_limit"
            break
        if max_moves is not None and sum(counts.values()) >= max_moves:
            stopped = "max_moves"
            break
        if "add" in kinds:
            g, a = nb.best_add()
            if a is not None and g > tol:
                gained += nb.apply([a], [])
                counts["add"] += 1
                continue
        if "set" in kinds:
            g, members = nb.best_set()
            if members is not None and g > tol:
                gained += nb.apply(members, [])
                counts["set"] += 1
                continue
        if "spread" in kinds:
            g, members = nb.best_spread()
            if members is not None and g > tol:
                gained += nb.apply(members, [])
                counts["spread"] += 1
                continue
        scans += 1
        budget = None if max_moves is None else max_moves - sum(counts.values())
        applied, g, timed_out = nb.sweep(deadline, budget)
        gained += g
        for k, v in applied.items():
            counts[k] += v
        if timed_out:
            stopped = "time_limit"
            break
        if any(applied.values()):
            continue
        if "replace" in kinds and (max_moves is None or sum(counts.values()) < max_moves):
            g, add, remove = nb.best_replace(deadline)
            if add is not None and g > tol:
                gained += nb.apply(add, remove)
                counts["replace"] += 1
                continue
        if time.perf_counter() > deadline:
            stopped = "time_limit"
        break
    return {"moves": counts, "sweeps": scans, "gain_queries": nb.queries,
            "gain": gained, "stopped": stopped}


def polish(instance: Instance, *, start: Placement | None = None, seed: int | None = None,
           time_limit: float | None = None, moves: Any = MOVE_KINDS, max_moves: int | None = None,
           max_sets: int = 64, tol: float | None = None) -> Result:
    """Local search from a placement to a local optimum of eight step kinds.

    Problem: minimise ``T(x)`` (maximise ``R(x)``) subject to
    ``sum_{l,e} s_l x[n,l,e] <= Q_n`` (``MODEL.md`` section 1), starting from
    ``start``.

    Neighbourhood of a placement ``x`` (every member respects the capacities):

    * *add* ``(n, l, e)`` not cached with ``used_n + s_l <= Q_n``;
    * *set*: add at one node ``n`` the two or more missing members of one
      of the ``max_sets`` most probable activated sets ``S`` of a layer
      (:func:`candidate_sets`), if they fit.  With top-``K >= 2`` routing a
      single add often gains exactly zero (its partner stays in the cloud);
      this step is what lets the search leave the empty placement;
    * *spread*: add the members of one candidate set across nodes when no
      single node can hold it (:func:`spread_candidates`: each member goes to
      the best node for the set's users that has room and beats every node
      already caching it);
    * *drop* a cached ``(n, l, e)``;
    * *swap* at one node: drop a cached ``(n, l, e)`` and add an uncached
      ``(n, l', e')`` (any layer) with ``used_n - s_l + s_l' <= Q_n``;
    * *move* a cached ``(n, l, e)`` to a node ``m`` without it, evicting at
      ``m`` at most one cached element ``b`` so that it fits
      (``used_m - s_b + s_l <= Q_m``; no eviction if ``used_m + s_l <= Q_m``).
      Because ``R`` is monotone, a move is never better than the add of
      ``(m, l, e)`` (no eviction) or the swap of ``b`` for ``(m, l, e)`` at
      ``m`` (eviction), so with *add* and *swap* enabled moves are covered by
      those checks and not evaluated separately; a drop never improves but
      is checked.  The local-optimality claim below covers both exactly;
    * *exchange*: cached ``(n1, l1, e1)`` and ``(n2, l2, e2)``, ``n1 != n2``,
      trade nodes (if both fit and neither node already has the other's
      expert).  This is the move between nodes that monotonicity does not
      make redundant;
    * *replace*: at one node, a candidate set's two or more missing members
      in place of the node's cheapest elements of other layers
      (:func:`replace_candidates`), for full nodes where single swaps gain
      nothing because a set needs several members at once.

    Each iteration applies the best improving add if there is one, else the
    best improving set, else the best improving spread; otherwise it sweeps
    the cached elements in a seeded random order, applying for each the best
    of its drop / swap / move steps as soon as it improves (first
    improvement over elements); if the sweep changed nothing, it applies the
    improving exchanges, best first, among pairwise layer-disjoint ones;
    if those change nothing either, the best improving replace.  The search
    stops when none of this changes anything.  A step
    is improving when it increases ``R`` by more than ``tol``.

    Guarantee: ``R(polish(x0)) >= R(x0)`` for every start ``x0``, and on
    return with ``info["stopped"] == "local_optimum"`` no step of the enabled
    kinds increases ``R`` by more than ``tol``.  There is no approximation
    guarantee beyond the start's: if ``R(x0) >= alpha R(opt)`` then
    ``R(polish(x0)) >= alpha R(opt)``.

    Parameters
    ----------
    instance : Instance
    start : Placement, optional
        Feasible starting placement; the empty placement when omitted.
    seed : int, optional
        Seeds the order in which cached elements are scanned (``None``: 0,
        so runs are reproducible by default).
    time_limit : float, optional
        Seconds; when reached the current (never worse) placement is returned
        with status ``time_limit``.
    moves : sequence of str or comma-separated str
        Enabled step kinds, a subset of :data:`MOVE_KINDS` (default all).
    max_moves : int, optional
        Stop after this many accepted moves (status ``heuristic``).
    max_sets : int
        Candidate sets per layer for the *set*, *spread* and *replace* steps
        (default 64).
    tol : float, optional
        Improvement threshold in seconds; default ``1e-12 T(empty)``.

    Returns
    -------
    Result
        ``info`` holds accepted steps per kind, the number of element scans,
        gain queries, the total gain, the start latency and why it stopped.

    Raises
    ------
    InputError
        If ``start`` is not a feasible placement of ``instance`` or a
        parameter is out of range.

    Notes
    -----
    Add gains of all ``N L E`` elements are kept in an array and refreshed
    only for the layers a move touches (one vectorised
    :meth:`~slimcaching.objective.IncrementalEvaluator.gains` call per layer,
    ``O(N E r K)`` for ``r`` routing rows per expert).  A sweep costs one
    vectorised ``losses`` call (again after each applied step) plus, per
    cached element, an
    ``O(N L E)`` mask for swaps into other layers (exact by separability of
    ``T`` over layers) and one evaluation with the element removed of its
    ``E_l + N`` same-layer swaps and moves; evictions from another layer are
    exact by the same separability, same-layer evictions are evaluated one by
    one only when a monotonicity bound says they could win.  The exchange
    pass reuses the relocation values of that scan: for elements of different
    layers the value of an exchange is the sum of two relocations (disjoint
    routing rows), an ``O(C^2)`` array operation for ``C`` cached elements;
    same-layer pairs (about ``C^2 / L``) are evaluated one by one.  *set* and
    *spread* gains are cached per layer until that layer changes; *replace*
    is evaluated (``N L max_sets`` exact gains) only at a local optimum of
    the other kinds.  Every
    accepted step increases ``R`` by more than ``tol``, so the search
    terminates.

    References
    ----------
    .. [1] E. Aarts and J. K. Lenstra (eds.), "Local Search in Combinatorial
       Optimization", Wiley, 1997.
    .. [2] Q. Chen, X. Chen, K. Huang, "SlimCaching: Edge Caching of
       Mixture-of-Experts for Distributed Inference", arXiv:2507.06567, 2025.
    """
    t0 = time.perf_counter()
    deadline = _deadline(time_limit, t0)
    start = _check_start(instance, start)
    kinds = _check_moves(moves)
    max_moves = _check_count("max_moves", max_moves, 0)
    max_sets = _check_count("max_sets", max_sets, 0)
    ev = IncrementalEvaluator(instance, start)
    tol_ = _check_tol(tol, ev)
    start_latency = ev.latency
    info = _local_search(ev, kinds=kinds, tol=tol_, rng=np.random.default_rng(0 if seed is None else seed),
                         deadline=deadline, max_moves=max_moves, max_sets=max_sets)
    info["start_latency"] = start_latency
    status = Status.TIME_LIMIT if info["stopped"] == "time_limit" else Status.HEURISTIC
    params = {"moves": list(kinds), "max_moves": max_moves, "max_sets": max_sets, "tol": tol_,
              "start": "given" if start is not None else "empty", "seed": seed}
    return make_result(instance, ev.placement(), algorithm="polish", status=status,
                       runtime_s=time.perf_counter() - t0, params=params, seed=seed, info=info)


polish.guarantees = ()  # type: ignore[attr-defined]


# ------------------------------------------------------- cyclic re-optimisation
_SINGLE_NODE_KEYS = ("layer_solver", "max_enumerate", "eps")


def _single_node_kwargs(params: dict) -> dict:
    return {k: params[k] for k in _SINGLE_NODE_KEYS if params.get(k) is not None}


def _cyclic_sweeps(ev: IncrementalEvaluator, *, order: list[int], max_passes: int | None, tol: float,
                   deadline: float, single: dict) -> dict:
    """Re-solve one node at a time on ``ev`` in place until a pass improves nothing."""
    solve_single_node = _successive.solve_single_node
    inst = ev.instance
    passes = improved_nodes = rejected = 0
    exact = True
    stopped = "no_improvement"
    while True:
        if max_passes is not None and passes >= max_passes:
            stopped = "max_passes"
            break
        passes += 1
        improved = False
        for n in order:
            if time.perf_counter() > deadline:
                stopped = "time_limit"
                break
            sol = solve_single_node(ev, n, exclude_current=True, **single)
            exact = exact and bool(getattr(sol, "exact", True))
            new = {(int(l), int(e)) for _, l, e in np.asarray(sol.elements, dtype=np.int64).reshape(-1, 3)}
            old = {(int(l), int(e)) for l, e in np.argwhere(ev.x[n])}
            if new == old:
                continue
            if sum(int(inst.expert_size[l]) for l, _ in new) > inst.capacity[n]:
                rejected += 1  # a single-node solver must respect Q_n; never commit an infeasible cache
                continue
            add = [(n, l, e) for l, e in sorted(new - old)]
            remove = [(n, l, e) for l, e in sorted(old - new)]
            if ev.gain_of(add=add, remove=remove) > tol:
                ev.apply(add=add, remove=remove)
                improved = True
                improved_nodes += 1
        if stopped == "time_limit" or not improved:
            break
    return {"passes": passes, "improvements": improved_nodes, "stopped": stopped,
            "single_node_exact": exact, "rejected_infeasible": rejected}


def _applicable(gs: tuple[Guarantee, ...], instance: Instance, params: dict) -> str | None:
    """Text of the guarantees whose regime holds for this run, or ``None``."""
    return "; ".join(g.text() for g in gs if g.applies(instance, params)) or None


def cyclic(instance: Instance, *, seed: int | None = None, time_limit: float | None = None,
           start: Placement | None = None, max_passes: int | None = 50, order: Any = "latency",
           tol: float | None = None, **params) -> Result:
    """Cyclic re-optimisation: block-coordinate ascent over nodes with the single-node solver.

    Problem: maximise ``R(x)`` subject to ``sum_{l,e} s_l x[n,l,e] <= Q_n``
    (``MODEL.md`` section 1).  Starting from ``successive``'s placement (or
    ``start``), visit the nodes in ``order``; for node ``n``, with every other
    node fixed, solve the single-node problem "which experts maximise the
    extra reduction within ``Q_n``" as if ``n`` were empty
    (:func:`slimcaching.algorithms.successive.solve_single_node`) and replace
    ``n``'s cache by the answer if that strictly increases ``R`` (by more
    than ``tol``).  Stop when a whole pass changes nothing, after
    ``max_passes`` passes, or at the time limit.

    Guarantee: ``R(cyclic) >= R(start)``; in particular
    ``R(cyclic) >= R(successive)`` by default, so every guarantee proven for
    ``successive`` holds for ``cyclic`` in the same regime (listed in
    ``Result.guarantee``), and none beyond it.  When every single-node solve
    is exact (``info["single_node_exact"]``) and the run stopped with
    ``"no_improvement"``, the result is *node-wise optimal*: no change of one
    node's cache alone increases ``R`` by more than ``tol``.

    Parameters
    ----------
    instance : Instance
    seed : int, optional
        Passed to ``successive`` for the start (recorded).
    time_limit : float, optional
        Seconds for the whole run including the start; the incumbent is
        returned with status ``time_limit`` when reached.
    start : Placement, optional
        Feasible start; ``successive``'s placement when omitted.
    max_passes : int or None
        Cap on passes over the nodes (``None``: until no improvement).
    order : {"latency", "capacity", "given"} or sequence of node names / indices
        Node visiting order within a pass, and of the ``successive`` start
        (:func:`slimcaching.algorithms.successive.node_order`).
    tol : float, optional
        Improvement threshold; default ``1e-12 T(empty)``.
    **params
        ``layer_solver``, ``max_enumerate``, ``eps``: passed to the
        single-node solver and to ``successive``.

    Returns
    -------
    Result
        ``info``: passes, accepted node re-solves, start latency, whether all
        single-node solves were exact, why it stopped.

    Raises
    ------
    InputError
        Bad ``start``, ``order``, ``max_passes`` or an unknown parameter.

    Notes
    -----
    One pass costs ``N`` single-node solves (dynamic programming over layers
    and storage, see ``successive``) plus one incremental ``gain_of`` per node
    whose answer differs.  Each accepted re-solve increases ``R`` by more
    than ``tol`` and there are finitely many placements, so the loop
    terminates even without ``max_passes``.

    References
    ----------
    .. [1] Q. Chen, X. Chen, K. Huang, "SlimCaching: Edge Caching of
       Mixture-of-Experts for Distributed Inference", arXiv:2507.06567, 2025.
    .. [2] P. Tseng, "Convergence of a block coordinate descent method for
       nondifferentiable minimization", J. Optim. Theory Appl. 109(3), 2001.
    """
    t0 = time.perf_counter()
    deadline = _deadline(time_limit, t0)
    unknown = sorted(set(params) - set(_SINGLE_NODE_KEYS))
    if unknown:
        raise InputError("--param", (unknown[0], f"unknown parameter {unknown[0]!r} for cyclic; valid: "
                                                 f"start, max_passes, order, tol, {', '.join(_SINGLE_NODE_KEYS)}"))
    start = _check_start(instance, start)
    max_passes = _check_count("max_passes", max_passes, 1)
    nodes = _successive.node_order(instance, order)
    single = _single_node_kwargs(params)
    info: dict[str, Any] = {}
    if start is None:
        left = None if time_limit is None else max(0.0, deadline - time.perf_counter())
        res0 = _successive.successive(instance, seed=seed, time_limit=left, order=order, **single)
        start_placement = res0.placement
        info["start"] = {"algorithm": res0.algorithm, "latency": res0.latency, "status": str(res0.status),
                         "runtime_s": res0.runtime_s}
    else:
        start_placement = start
        info["start"] = {"algorithm": "given"}
    ev = IncrementalEvaluator(instance, start_placement)
    tol_ = _check_tol(tol, ev)
    info["start_latency"] = ev.latency
    info.update(_cyclic_sweeps(ev, order=nodes, max_passes=max_passes, tol=tol_, deadline=deadline,
                               single=single))
    timed_out = info["stopped"] == "time_limit" or info["start"].get("status") == str(Status.TIME_LIMIT)
    run_params = {"start": "given" if start is not None else "successive", "max_passes": max_passes,
                  "order": nodes, "tol": tol_, **single, "seed": seed}
    return make_result(instance, ev.placement(), algorithm="cyclic",
                       status=Status.TIME_LIMIT if timed_out else Status.HEURISTIC,
                       runtime_s=time.perf_counter() - t0, params=run_params, seed=seed,
                       guarantee=_applicable(cyclic.guarantees, instance, run_params), info=info)


# --------------------------------------------------------------------- best
def best(instance: Instance, *, seed: int | None = None, time_limit: float | None = None,
         extra_starts: Any = ("independent",), restarts: int | str = "auto", **params) -> Result:
    """Our strongest heuristic: ``successive``, then :func:`cyclic`, then :func:`polish` (plus restarts).

    Problem: maximise ``R(x)`` subject to the node capacities
    (``MODEL.md`` section 1).  The main chain runs ``successive``, then
    :func:`cyclic` from its placement, then :func:`polish` from that; each
    stage accepts only strict improvements.  The same cyclic + polish chain
    is then run from each algorithm in ``extra_starts`` (default the
    co-activation-blind ``independent`` baseline, whose placements spread
    experts over nodes and land in other basins) and from ``restarts``
    seeded random placements (the ``random`` baseline), and the placement
    with the lowest latency is returned (the main chain's on ties).

    Guarantee: ``R(best) >= R(main chain) >= R(cyclic stage) >= R(successive)``,
    hence every approximation guarantee of ``successive`` holds for ``best``
    in the same regime (reported in ``Result.guarantee``), and none beyond
    it.  On return without a time limit the placement is a local optimum of
    the neighbourhood of :func:`polish`.

    Parameters
    ----------
    instance : Instance
    seed : int, optional
        Passed to every stage and seeds the random restarts (``None``: 0);
        recorded.
    time_limit : float, optional
        Seconds for all stages together, the main chain first; a stage that
        starts after the limit returns its input unchanged and the result
        has status ``time_limit``.
    extra_starts : sequence of str or comma-separated str
        Registered algorithms whose placements also start a cyclic + polish
        chain (not ``best``); empty for none.
    restarts : int or "auto"
        Random starts (seeds drawn from ``seed``), each followed by cyclic +
        polish; 0 for none.  ``"auto"`` (default): 4 when the instance has
        at most :data:`AUTO_RESTART_ELEMENTS` elements ``N sum_l E_l``, else
        0, so large instances stay fast.  ``extra_starts=(), restarts=0``
        runs the main chain only.
    **params
        ``layer_solver``, ``max_enumerate``, ``eps`` (successive and
        cyclic), ``order``, ``max_passes`` (cyclic), ``moves``,
        ``max_moves``, ``max_sets`` (polish), ``tol`` (cyclic and polish).

    Returns
    -------
    Result
        ``info["stages"]``: the main chain's stages (algorithm, latency,
        status, runtime, the stage's own ``info``); ``info["restarts"]``: per
        extra or random start its stages; ``info["chosen"]``: which chain won.

    Raises
    ------
    InputError
        An unknown or out-of-range parameter.

    Notes
    -----
    Cost is the sum of the chains': ``successive`` (``N`` single-node DPs),
    a few ``cyclic`` passes (``N`` single-node DPs each) and the polish
    scans (see :func:`polish`), once per start: ``1 + len(extra_starts) +
    restarts`` chains (a random start costs the most polish steps).

    References
    ----------
    .. [1] Q. Chen, X. Chen, K. Huang, "SlimCaching: Edge Caching of
       Mixture-of-Experts for Distributed Inference", arXiv:2507.06567, 2025.
    .. [2] E. Aarts and J. K. Lenstra (eds.), "Local Search in Combinatorial
       Optimization", Wiley, 1997.
    """
    from . import REGISTRY, get_algorithm

    t0 = time.perf_counter()
    deadline = _deadline(time_limit, t0)
    valid = set(_SINGLE_NODE_KEYS) | {"order", "max_passes", "moves", "max_moves", "max_sets", "tol"}
    unknown = sorted(set(params) - valid)
    if unknown:
        raise InputError("--param", (unknown[0], f"unknown parameter {unknown[0]!r} for best; valid: "
                                                 f"{', '.join(sorted(valid | {'extra_starts', 'restarts'}))}"))
    if isinstance(extra_starts, str):
        extra_starts = [v.strip() for v in extra_starts.split(",") if v.strip()]
    extra_starts = list(extra_starts or ())
    bad = [v for v in extra_starts if v not in REGISTRY or v == "best"]
    if bad:
        raise InputError("--param", ("extra_starts", f"extra_starts must name registered algorithms other than "
                                                     f"best; got {bad[0]!r}"))
    if restarts == "auto":
        restarts = 4 if instance.N * int(instance.experts.sum()) <= AUTO_RESTART_ELEMENTS else 0
    restarts = _check_count("restarts", restarts, 0)
    single = _single_node_kwargs(params)
    cyc = {k: params[k] for k in ("order", "max_passes", "tol") if k in params}
    pol = {k: params[k] for k in ("moves", "max_moves", "max_sets", "tol") if k in params}

    def left() -> float | None:
        return None if time_limit is None else max(0.0, deadline - time.perf_counter())

    def chain(first: Result) -> list[Result]:
        r2 = cyclic(instance, seed=seed, time_limit=left(), start=first.placement, **cyc, **single)
        r3 = polish(instance, start=r2.placement, seed=seed, time_limit=left(), **pol)
        return [first, r2, r3]

    def report(stages: list[Result]) -> list[dict]:
        return [{"algorithm": r.algorithm, "latency": r.latency, "status": str(r.status),
                 "runtime_s": r.runtime_s, "info": r.info} for r in stages]

    r1 = _successive.successive(instance, seed=seed, time_limit=left(), **single,
                                **({"order": params["order"]} if "order" in params else {}))
    main = chain(r1)
    chosen, final, timed_out = "successive", main[-1], any(r.status == Status.TIME_LIMIT for r in main)
    starts = [(name, name, seed) for name in extra_starts]
    starts += [(f"random(seed={int(s)})", "random", int(s))
               for s in np.random.default_rng(0 if seed is None else seed).integers(0, 2**31 - 1, size=restarts)]
    others = []
    for label, name, s in starts:
        stages = chain(get_algorithm(name)(instance, seed=s, time_limit=left()))
        others.append({"start": label, "stages": report(stages)})
        timed_out = timed_out or any(r.status == Status.TIME_LIMIT for r in stages)
        if stages[-1].latency < final.latency:
            chosen, final = label, stages[-1]
    info = {"stages": report(main), "restarts": others, "chosen": chosen}
    run_params = {**r1.params, "cyclic": main[1].params, "polish": main[2].params,
                  "extra_starts": extra_starts, "restarts": restarts, "seed": seed}
    return make_result(instance, final.placement, algorithm="best",
                       status=Status.TIME_LIMIT if timed_out else Status.HEURISTIC,
                       runtime_s=time.perf_counter() - t0, params=run_params, seed=seed,
                       guarantee=_applicable(best.guarantees, instance, run_params), info=info)


def _inherit(g: Guarantee, via: str) -> Guarantee:
    """``g`` for a method whose ``R`` is at least ``successive``'s (when it starts from it)."""
    return Guarantee(ratio=g.ratio, regime=g.regime + f" (inherited: R({via}) >= R(successive))",
                     reference=g.reference,
                     applies=lambda inst, p: p.get("start", "successive") == "successive" and g.applies(inst, p))


cyclic.guarantees = tuple(_inherit(g, "cyclic") for g in _successive.successive.guarantees)  # type: ignore[attr-defined]
best.guarantees = tuple(_inherit(g, "best") for g in _successive.successive.guarantees)  # type: ignore[attr-defined]
