"""The move kinds of :func:`~slimcaching.algorithms.local_search.polish` and the neighbourhood driver.

*add*, *set* (a whole activated set at one node), *spread* (a set across
nodes), *drop*, *swap*, *move*, *exchange* (two nodes trade elements) and
*replace* (a set in place of a node's cheapest elements), scanned by
:class:`_Neighbourhood` and applied first-improvement by :func:`_local_search`,
all through the incremental evaluator.
"""
from __future__ import annotations

import time

import numpy as np

from ...instances.model import Instance, Placement
from ...objective import IncrementalEvaluator

__all__ = ["MOVE_KINDS", "candidate_sets", "spread_candidates", "replace_candidates"]

#: The step kinds :func:`polish` implements, in the order it tries them.
MOVE_KINDS: tuple[str, ...] = ("add", "set", "spread", "drop", "swap", "move", "exchange", "replace")


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
    out = []
    for l, (members, _) in enumerate(sets):
        out += _spread_layer(x, instance.capacity - used, int(instance.expert_size[l]), l, members, scores[l])
    return out


def _spread_layer(x: np.ndarray, room: np.ndarray, sl: int, l: int, members: np.ndarray,
                  scores: np.ndarray) -> list[list[tuple[int, int, int]]]:
    """:func:`_spread`'s candidates of layer ``l`` (``room``: free space per node, not modified).

    They depend on ``x[:, l]`` and on ``room`` only through ``min(room // sl, Kmax)``.
    """
    out = []
    for j, row in enumerate(members):
        sc = scores[j]
        order = np.argsort(sc, kind="stable")
        left = room.copy()
        chosen = []
        for e in sorted(int(v) for v in row if v >= 0):
            have = x[:, l, e]
            cur = sc[have].min() if have.any() else np.inf
            for n in order:
                if sc[n] >= cur:
                    break
                if left[n] >= sl:
                    chosen.append((int(n), l, e))
                    left[n] -= sl
                    break
        if len(chosen) >= 2:
            out.append(chosen)
    return out


def _replace(x: np.ndarray, used: np.ndarray, loss: np.ndarray, cached: np.ndarray, instance: Instance,
             sets: list[np.ndarray], meta: list | None = None) -> list[tuple[list, list]]:
    """The *replace* candidates ``(add, remove)``: a candidate set in place of a node's cheapest elements.

    For each node ``n``, layer ``l`` and candidate set of ``l`` with two or
    more members missing at ``n`` that do not fit in ``n``'s free space:
    evict ``n``'s cached elements of other layers in increasing order of
    their current loss (``loss``, aligned with ``cached``; ties by element
    order) until the missing members fit, and add them.  Nodes without
    enough such elements give no candidate.

    If ``meta`` is a list, one ``(n, l, j, lb)`` per candidate is appended to
    it: ``j`` the set's row in ``sets[l]`` and ``lb`` a lower bound on the
    loss of the evictions together, ``sum`` over the evicted layers of the
    largest single loss among that layer's evicted elements.  (Evicting
    distinct keys of one layer raises each routing row's latency at least
    as much as evicting any one of them, and layers have disjoint rows.)
    """
    size, cap = instance.expert_size, instance.capacity
    out = []
    for n in range(instance.N):
        mine = np.nonzero(cached[:, 0] == n)[0]
        mine = mine[np.argsort(loss[mine], kind="stable")]
        free = int(cap[n] - used[n])
        if meta is not None:  # increments of the per-layer maximum along the eviction order
            inc, last = np.empty(len(mine)), {}
            for t, (lt, v) in enumerate(zip(cached[mine, 1].tolist(), loss[mine].tolist())):
                inc[t] = v - last.get(lt, 0.0)
                last[lt] = v
        for l, members in enumerate(sets):
            keep = cached[mine, 1] != l
            others = mine[keep]
            freed = np.cumsum(size[cached[others, 1]])
            lbs = np.cumsum(inc[keep]) if meta is not None else None
            for j, row in enumerate(members):
                miss = [int(e) for e in row if e >= 0 and not x[n, l, e]]
                short = len(miss) * int(size[l]) - free
                if len(miss) < 2 or short <= 0 or not len(freed) or freed[-1] < short:
                    continue
                k = int(np.searchsorted(freed, short)) + 1
                out.append(([(n, l, e) for e in miss], [tuple(int(v) for v in cached[i]) for i in others[:k]]))
                if meta is not None:
                    meta.append((n, l, j, float(lbs[k - 1])))
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
                 max_sets: int, incremental: bool = True):
        inst = ev.instance
        self.ev, self.kinds, self.tol, self.rng = ev, kinds, tol, rng
        self.incremental = incremental
        self.version = np.zeros(inst.L, dtype=np.int64)  # bumped when a step changes the layer
        self.batch_cache: dict[tuple[int, int, int], tuple] = {}  # d -> (version, gains, batch, swaps in it)
        self.pair_cache: dict[int, tuple[int, list]] = {}  # layer -> (version, improving same-layer exchanges)
        self.index: np.ndarray | None = None  # (n, l, e) -> row in the sweep's array of cached elements
        self.replace_gain: list = [None] * inst.L  # per layer (N, m_l): gain of adding a replace set's missing members
        # slack of the batched evaluation against gain_of (float summation order), far above its error
        self.slack = 1e-9 * max(ev.empty_latency, 1e-300)
        self.size = inst.expert_size
        self.cap = inst.capacity
        self.lat_nl = np.ascontiguousarray(np.transpose(inst.latency, (1, 2, 0)))  # (N, L, U)
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
        self.spread_lists: list = [None] * L  # per layer ((version, rooms it depends on), candidates)
        self.H = [np.full((N, len(m)), -np.inf) for m in self.sets]  # gain of each set-add
        self.Hb = [np.full((N, len(m)), np.nan) for m in self.sets]  # the same from one batch (rounded)
        self.need = [np.zeros((N, len(m)), dtype=np.int64) for m in self.sets]  # members missing
        for l in range(L):
            self._refresh(l)

    def _refresh(self, l: int) -> None:
        self.spread_cache[l].clear()
        self.replace_gain[l] = None
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
        self.Hb[l] = np.full(self.H[l].shape, np.nan)

    def best_replace(self, deadline: float) -> tuple[float, list | None, list | None]:
        """Best *replace* candidate (used only at a local optimum of the rest).

        Every candidate that could be the best is evaluated exactly with
        :meth:`~slimcaching.objective.IncrementalEvaluator.gain_of`, in the
        order of :func:`_replace`, so the answer is the same as evaluating
        all of them.  A candidate is skipped when an upper bound on its gain
        cannot beat ``max(best so far, tol)``: by separability of ``T`` over
        layers its gain is the gain of adding the set's missing members (layer
        ``l``) minus the joint loss of the evictions (other layers), the first
        cached per layer and computed in one batch, the second bounded below
        (see :func:`_replace`); ``self.slack`` absorbs the batch's rounding.
        """
        ev = self.ev
        cached = np.argwhere(ev.x)
        loss = ev.losses(cached)
        self.queries += len(cached)
        meta: list | None = [] if self.incremental else None
        cands = _replace(ev.x, ev.used, loss, cached, ev.instance, self.replace_sets, meta)
        ub = self._replace_bounds(cands, meta) if meta is not None else None
        best_g, best = -np.inf, (None, None)
        for c, (add, remove) in enumerate(cands):
            if time.perf_counter() > deadline:
                break
            if ub is not None and ub[c] + self.slack <= max(best_g, self.tol):
                continue
            g = ev.gain_of(add=add, remove=remove)
            self.queries += 1
            if g > best_g:
                best_g, best = g, (add, remove)
        return best_g, best[0], best[1]

    def _set_add_gains(self, nlj: list[tuple[int, int, int]], sets: list[np.ndarray]) -> np.ndarray:
        """Gains of adding, for each ``(n, l, j)``, the members of ``sets[l][j]`` missing at
        ``n``, from one batch (equal to ``gain_of`` up to rounding, see ``self.slack``)."""
        move, el = [], []
        for i, (n, l, j) in enumerate(nlj):
            miss = [(n, l, int(e)) for e in sets[l][j] if e >= 0 and not self.ev.x[n, l, e]]
            move += [i] * len(miss)
            el += miss
        self.queries += len(nlj)
        if not el:
            return np.zeros(len(nlj))
        g = self.ev.gains_of_many(np.array(move), np.array(el), np.ones(len(el), dtype=bool))
        return np.concatenate([g, np.zeros(len(nlj) - len(g))])

    def _replace_bounds(self, cands: list, meta: list) -> np.ndarray:
        """Upper bounds on the gains of the replace candidates ``cands`` (see :meth:`best_replace`)."""
        if not cands:
            return np.zeros(0)
        nlj = np.array([m[:3] for m in meta], dtype=np.int64)
        for l in np.unique(nlj[:, 1]):
            if self.replace_gain[l] is None:
                self.replace_gain[l] = np.full((self.ev.instance.N, len(self.replace_sets[l])), np.nan)
        todo = sorted({(n, l, j) for n, l, j in nlj.tolist() if np.isnan(self.replace_gain[l][n, j])})
        for (n, l, j), v in zip(todo, self._set_add_gains(todo, self.replace_sets)):
            self.replace_gain[l][n, j] = v
        add = np.array([self.replace_gain[l][n, j] for n, l, j in nlj.tolist()])
        return add - np.array([m[3] for m in meta])

    def best_spread(self) -> tuple[float, list[tuple[int, int, int]] | None]:
        """Best *spread* candidate (gains of one layer's additions depend only on that layer)."""
        ev = self.ev
        best_g, best = -np.inf, None
        room = self.cap - ev.used
        cands = []
        for l, (members, _) in enumerate(self.spread_sets):
            sl = int(self.size[l])
            key = (int(self.version[l]), np.minimum(room // max(sl, 1), members.shape[1]).tobytes())
            hit = self.spread_lists[l] if self.incremental else None
            if hit is None or hit[0] != key:
                hit = self.spread_lists[l] = (key, _spread_layer(ev.x, room, sl, l, members, self.spread_scores[l]))
            cands += hit[1]
        for cand in cands:
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
            todo = fits & np.isnan(self.H[l])
            if self.incremental and todo.any():
                # batch values first; exact values only where they could be the layer's maximum
                fresh = todo & np.isnan(self.Hb[l])
                if fresh.any():
                    self.Hb[l][fresh] = self._set_add_gains([(int(n), l, int(j)) for n, j in zip(*np.nonzero(fresh))],
                                                            self.sets)
                lo = np.where(fits, np.where(np.isnan(self.H[l]), self.Hb[l] - self.slack, self.H[l]), -np.inf).max()
                todo &= self.Hb[l] + self.slack >= lo
            for n, j in zip(*np.nonzero(todo)):
                self.H[l][n, j] = ev.gain_of(add=[(int(n), l, int(e)) for e in members[j]
                                                  if e >= 0 and not ev.x[n, l, e]])
                self.queries += 1
            g = np.where(fits & ~np.isnan(self.H[l]), self.H[l], -np.inf)  # the rest is below the maximum
            i = int(np.argmax(g))
            if g.flat[i] > best_g:
                n, j = np.unravel_index(i, g.shape)
                best_g = float(g.flat[i])
                best = [(int(n), l, int(e)) for e in members[j] if e >= 0 and not ev.x[n, l, e]]
        return best_g, best

    def apply(self, add: list[tuple[int, int, int]], remove: list[tuple[int, int, int]]) -> float:
        g = self.ev.apply(add=add, remove=remove)
        for l in sorted({l for _, l, _ in add + remove}):
            self.version[l] += 1
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
        order = list(map(tuple, np.argwhere(ev.x).tolist()))
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
                index = np.full(ev.x.shape, -1, dtype=np.int64)  # (n, l, e) -> row of cached
                index[cached[:, 0], cached[:, 1], cached[:, 2]] = np.arange(len(cached))
                self.index = index
                free = self.cap - ev.used
                el_size = self.size[cached[:, 1]]
                reloc = np.full((len(cached), ev.instance.N), -np.inf) if do_pair else None
                if do_swap and self.incremental:
                    # per node the best and second best layer of single-addition gains (room ignored):
                    # an upper bound on every other-layer swap of an element of that node
                    gm = np.where(~ev.x & self.valid[None], self.G, -np.inf).max(axis=2)    # (N, L)
                    top_l = np.argmax(gm, axis=1)
                    top1 = gm[np.arange(len(gm)), top_l]
                    gm[np.arange(len(gm)), top_l] = -np.inf
                    top2 = gm.max(axis=1)
                stale = False
            i = int(index[d])
            n, l, e = d
            room = free[n] + self.size[l]
            best_g, best = -np.inf, None  # best gain over Y = x - d, and its (kind, add, remove)
            if do_drop:
                best_g, best = 0.0, ("drop", [], [])
            # no other-layer swap can be accepted when its upper bound cannot beat tol (then it
            # cannot be the step either: a batch move of equal gain would not be accepted)
            swap_ub = (top1[n] if top_l[n] != l else top2[n]) if do_swap and self.incremental else np.inf
            if do_swap and swap_ub - loss[i] > tol:
                ok = ~ev.x[n] & self.valid & (self.size[:, None] <= room)
                ok[l] = False
                if ok.any():
                    g = np.where(ok, self.G[n], -np.inf)
                    j = int(np.argmax(g))
                    if g.flat[j] > best_g:
                        l2, e2 = np.unravel_index(j, g.shape)
                        best_g, best = float(g.flat[j]), ("swap", [(n, int(l2), int(e2))], [])
            hit = self.batch_cache.get(d) if self.incremental and not eval_move else None
            if self.incremental and not eval_move and (hit is None or hit[0] != self.version[l]):
                self._layer_batches(l, cached, loss, do_swap, do_move or do_pair)
                hit = self.batch_cache.get(d)
            if hit is not None and hit[0] == self.version[l]:
                batch, n_swap = hit[2], hit[3]     # layer l unchanged: the same batch
            else:
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
        (:func:`_cross_layer_exchanges`); same-layer pairs are evaluated jointly.
        """
        tol = self.tol
        layers = cached[:, 1]
        g, a, b = _cross_layer_exchanges(reloc, cached[:, 0], layers, free, el_size, tol, self.slack)
        cands = [(float(g[j]), int(a[j]), int(b[j])) for j in range(len(g))]
        for l in np.unique(layers):
            idx = np.nonzero(layers == l)[0]
            found = self._same_layer_pairs(int(l), cached, idx, deadline)
            if found is None:
                break
            cands += found
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

    def _same_layer_pairs(self, l: int, cached: np.ndarray, idx: np.ndarray,
                          deadline: float) -> list[tuple[float, int, int]] | None:
        """The best improving exchange between the cached elements ``cached[idx]`` of layer ``l``, exact.

        Returns ``[(gain, a, b)]`` (``a < b`` indices into ``cached``; the
        first in ``itertools.combinations`` order among equal gains), ``[]``
        if none gains more than ``tol``, or ``None`` if the deadline passed.
        Only the best one matters: every same-layer exchange of ``l`` uses
        layer ``l`` alone, so :meth:`_pairs`, which takes exchanges best first
        with pairwise disjoint layers, can take at most the first of them.
        The value of such an exchange reads layer ``l`` only (and two
        same-layer elements always fit in each other's place), so the answer
        is cached until a step changes layer ``l``.

        Without the incremental bookkeeping every pair is evaluated with
        ``gain_of``.  With it, pairs are first valued in one vectorised pass:
        an exchange gives each expert a new node set, so its value is the two
        relocations' (a single-key change each,
        :meth:`~slimcaching.objective.IncrementalEvaluator.key_gains`, one per
        element and node) plus their interaction on the rows holding both
        experts (:meth:`~slimcaching.objective.IncrementalEvaluator.pair_interactions`).
        Only pairs within ``2 slack`` of the best value (``slack`` bounds the
        rounding of either evaluation, so the exact best is among them) are
        evaluated exactly with ``gain_of``.
        """
        ev, tol = self.ev, self.tol
        hit = self.pair_cache.get(l) if self.incremental else None
        if hit is not None and hit[0] == self.version[l]:
            return [(g, int(self.index[a]), int(self.index[b])) for g, a, b in hit[1]]
        n_, e_ = cached[idx, 0], cached[idx, 2]
        ia, ib = np.triu_indices(len(idx), 1)
        x = ev.x
        ok = (n_[ia] != n_[ib]) & (e_[ia] != e_[ib]) & ~x[n_[ia], l, e_[ib]] & ~x[n_[ib], l, e_[ia]]
        ia, ib = ia[ok], ib[ok]
        if not self.incremental:
            pairs = list(zip(ia.tolist(), ib.tolist()))
        else:
            if time.perf_counter() > deadline:
                return None
            pairs = []
            if len(ia):
                # without[j]: tau of e_j with n_j removed; a relocation of j to m adds m's latencies
                lat = self.lat_nl[:, l, :]                                         # (N, U)
                cols = x[:, l, e_].T.copy()
                cols[np.arange(len(idx)), n_] = False
                without = ev.key_columns(l, cols)                                  # (k, U)
                jj, mm = np.nonzero(~x[:, l, e_].T)
                reloc = np.full((len(idx), len(lat)), -np.inf)
                reloc[jj, mm] = ev.key_gains(l, e_[jj], np.minimum(without[jj], lat[mm]))
                ta, tb = np.minimum(without[ia], lat[n_[ib]]), np.minimum(without[ib], lat[n_[ia]])
                g = reloc[ia, n_[ib]] + reloc[ib, n_[ia]] + ev.pair_interactions(l, e_[ia], ta, e_[ib], tb)
                self.queries += len(ia)
                top = g.max()
                if top + self.slack > tol:
                    keep = g >= top - 2 * self.slack
                    pairs = list(zip(ia[keep].tolist(), ib[keep].tolist()))
        out = []
        for a, b in pairs:
            if time.perf_counter() > deadline:
                return None
            (n1, _, e1), (n2, _, e2) = cached[idx[a]].tolist(), cached[idx[b]].tolist()
            g = ev.gain_of(add=[(n1, l, e2), (n2, l, e1)], remove=[(n1, l, e1), (n2, l, e2)])
            self.queries += 1
            if g > tol and (not out or g > out[0][0]):
                out = [(g, int(idx[a]), int(idx[b]))]
        if self.incremental:
            self.pair_cache[l] = (int(self.version[l]), [(g, tuple(int(v) for v in cached[a]),
                                                          tuple(int(v) for v in cached[b])) for g, a, b in out])
        return out

    def _layer_batches(self, l: int, cached: np.ndarray, loss: np.ndarray, swaps: bool, moves: bool) -> None:
        """The sweep's batch of every cached element ``d`` of layer ``l`` at once, into ``batch_cache``.

        For ``d = (n, l, e)`` the batch holds its same-layer swaps
        ``(n, l, e2)`` (``e2`` not cached at ``n``) and its relocations
        ``(m, l, e)`` (``m`` without ``e``), each valued as the gain of adding
        it to ``Y = x - d``, as :meth:`_batch` computes by removing ``d``.
        Here nothing is removed: a swap's value is ``G[n, l, e2]`` (its gain
        in ``x``) plus the interaction of evicting ``d`` with adding ``e2``
        (both change one key of layer ``l``:
        :meth:`~slimcaching.objective.IncrementalEvaluator.pair_interactions`),
        and a relocation's is the gain of giving ``e`` the node set with ``n``
        replaced by ``m``
        (:meth:`~slimcaching.objective.IncrementalEvaluator.key_gains`) plus
        ``loss(d)``.
        Equal to :meth:`_batch`'s values up to the order of floating-point
        summation; one vectorised pass per layer instead of two applied
        changes and a gain batch per element.
        """
        ev, x = self.ev, self.ev.x
        pos = np.nonzero(cached[:, 1] == l)[0]
        if not len(pos):
            return
        dn, de = cached[pos, 0], cached[pos, 2]
        k = len(pos)
        lat = self.lat_nl[:, l, :]                                                  # (N, U)
        cols = x[:, l, de].T.copy()
        cols[np.arange(k), dn] = False
        without = ev.key_columns(l, cols)                                           # (k, U): tau of e, d gone
        if swaps:
            si, se2 = np.nonzero(~x[dn, l, :] & self.valid[l][None, :])     # per d, e2 ascending
            tb = np.minimum(ev.tau[:, l, se2].T, lat[dn[si]])                # e2 added at n
            g_swap = self.G[dn[si], l, se2] + ev.pair_interactions(l, de[si], without[si], se2, tb)
            self.queries += len(si)
        else:
            si, se2, g_swap = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
        if moves:
            mi, mm = np.nonzero(~x[:, l, de].T)                                # per d, m ascending
            g_move = ev.key_gains(l, de[mi], np.minimum(without[mi], lat[mm])) + loss[pos[mi]]
            self.queries += len(mi)
        else:
            mi, mm, g_move = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
        s_cut = np.searchsorted(si, np.arange(k + 1))
        m_cut = np.searchsorted(mi, np.arange(k + 1))
        version = int(self.version[l])
        for j in range(k):
            n, e = int(dn[j]), int(de[j])
            a, b, c, d_ = s_cut[j], s_cut[j + 1], m_cut[j], m_cut[j + 1]
            batch = [(n, l, int(e2)) for e2 in se2[a:b]] + [(int(m), l, e) for m in mm[c:d_]]
            self.batch_cache[(n, l, e)] = (version, np.concatenate([g_swap[a:b], g_move[c:d_]]), batch, b - a)

    def _batch(self, d, batch, n_swap, best_g, best, cached, loss, free, el_size, do_move):
        """Same-layer swaps and moves of ``d``, evaluated with ``d`` removed; updates the best.

        Returns the best gain over ``x - d``, its move, and the batch's gains over ``x - d``.
        """
        ev = self.ev
        n, l, e = d
        hit = self.batch_cache.get(d) if self.incremental else None
        if hit is not None and hit[0] == self.version[l] and not (do_move and len(batch) > n_swap):
            # same layer state, hence the same batch and bit-identical gains (they read layer l only)
            g = hit[1]
            if n_swap:
                j = int(np.argmax(g[:n_swap]))
                if g[j] > best_g:
                    best_g, best = float(g[j]), ("swap", [batch[j]], [])
            return best_g, best, g
        ev.apply(remove=[d])
        try:
            g = ev.gains(np.asarray(batch))
            self.queries += len(batch)
            if self.incremental:
                self.batch_cache[d] = (int(self.version[l]), g, batch, n_swap)
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


def _cross_layer_exchanges(reloc: np.ndarray, nodes: np.ndarray, layers: np.ndarray, free: np.ndarray,
                           el_size: np.ndarray, tol: float, slack: float) -> tuple[np.ndarray, ...]:
    """Exchanges of cached elements of different layers on different nodes that fit and gain more than ``tol``.

    Element ``i`` is cached on ``nodes[i]`` in layer ``layers[i]`` with size
    ``el_size[i]``; ``reloc[i, m]`` is the value of relocating it alone to
    ``m`` (``-inf`` where not allowed); ``free[n]`` the room of node ``n``.
    The pair ``a < b`` is returned if ``nodes[a] != nodes[b]``,
    ``layers[a] != layers[b]``, each fits in the other's place and
    ``reloc[a, nodes[b]] + reloc[b, nodes[a]] > tol``.

    Returns ``(value, a, b)`` arrays ordered by ``(a, b)``: the pairs a scan of
    every pair would list, in its order, with the same values.  Per pair of
    nodes one side is sorted and each element's partners are read off by
    binary search against ``tol`` minus its own value (relaxed by ``slack``
    against rounding; the exact sum then decides), so the work is
    ``O(C log C)`` plus the candidates instead of ``C^2``.
    """
    as_, bs = [], []
    N = len(free)
    for n1 in range(N):
        on1 = np.nonzero(nodes == n1)[0]
        if not len(on1):
            continue
        for n2 in range(n1 + 1, N):
            on2 = np.nonzero(nodes == n2)[0]
            if not len(on2):
                continue
            u, v = reloc[on1, n2], reloc[on2, n1]
            order = np.argsort(-v, kind="stable")                      # partners, best first
            cnt = len(v) - np.searchsorted(v[order][::-1], tol - u - slack, side="right")
            total = int(cnt.sum())
            if not total:
                continue
            i = np.repeat(np.arange(len(on1)), cnt)
            k = order[np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt)]
            a, b = on1[i], on2[k]
            as_.append(np.minimum(a, b))
            bs.append(np.maximum(a, b))
    if not as_:
        return np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64)
    a, b = np.concatenate(as_), np.concatenate(bs)
    g = reloc[a, nodes[b]] + reloc[b, nodes[a]]
    ok = ((g > tol) & (layers[a] != layers[b])
          & (free[nodes[a]] + el_size[a] - el_size[b] >= 0) & (free[nodes[b]] + el_size[b] - el_size[a] >= 0))
    g, a, b = g[ok], a[ok], b[ok]
    o = np.lexsort((b, a))
    return g[o], a[o], b[o]


def _local_search(ev: IncrementalEvaluator, *, kinds: tuple[str, ...], tol: float, rng: np.random.Generator,
                  deadline: float, max_moves: int | None, max_sets: int, incremental: bool = True) -> dict:
    """Run :func:`polish`'s loop on ``ev`` in place; returns what it did.

    ``incremental=False`` evaluates every candidate afresh, as before the
    per-layer caches and bounds: the reference the tests compare against
    (the same steps, hence the same placement).
    """
    nb = _Neighbourhood(ev, kinds, tol, rng, max_sets, incremental)
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
