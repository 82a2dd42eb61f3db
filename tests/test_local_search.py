"""Local search (polish), cyclic re-optimisation and best: properties against brute force."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from reference import latency_from_definition, random_cache, random_instance_dict
from slimcaching.errors import InputError
from slimcaching.instances.generators import random_instance
from slimcaching.instances.model import Placement
from slimcaching.instances.validate import instance_from_dict
from slimcaching.objective import IncrementalEvaluator, latency
from slimcaching.algorithms.local_search import (MOVE_KINDS, best, candidate_sets, cyclic, polish,
                                                 replace_candidates, spread_candidates)
from slimcaching.result import Status

seeds = st.integers(0, 2**32 - 1)


# ------------------------------------------------------------------ helpers
def _cache_of(inst, x: np.ndarray) -> dict[str, set[tuple[int, int]]]:
    return {name: {(int(l), int(e)) for l, e in np.argwhere(x[n])} for n, name in enumerate(inst.node_names)}


def _T(d, inst, x) -> float:
    """Latency from the definition (tests/reference.py), independent of the evaluator."""
    return latency_from_definition(d, _cache_of(inst, x))


def _feasible_random_start(inst, rng) -> Placement:
    """A random feasible placement: random element order, add while it fits."""
    x = np.zeros((inst.N, inst.L, inst.max_experts), dtype=bool)
    used = np.zeros(inst.N, dtype=np.int64)
    cand = np.argwhere(np.broadcast_to(inst.valid_mask()[None], x.shape))
    for n, l, e in cand[rng.permutation(len(cand))]:
        if rng.random() < 0.5 and used[n] + inst.expert_size[l] <= inst.capacity[n]:
            x[n, l, e] = True
            used[n] += inst.expert_size[l]
    return Placement(x)


def _neighbours(inst, x: np.ndarray, max_sets: int):
    """Every placement one step of each kind away (as polish defines them), by kind."""
    size, cap = inst.expert_size, inst.capacity
    valid = inst.valid_mask()
    used = (x.sum(axis=2) * size[None, :]).sum(axis=1)
    cached = [tuple(v) for v in np.argwhere(x)]
    free_el = [tuple(v) for v in np.argwhere(~x & valid[None])]
    for n, l, e in free_el:  # add
        if used[n] + size[l] <= cap[n]:
            y = x.copy(); y[n, l, e] = True
            yield "add", y
    for l, members in enumerate(candidate_sets(inst, max_sets)):  # set
        for n in range(inst.N):
            for row in members:
                miss = [e for e in row if e >= 0 and not x[n, l, e]]
                if len(miss) >= 2 and used[n] + size[l] * len(miss) <= cap[n]:
                    y = x.copy(); y[n, l, miss] = True
                    yield "set", y
    for add in spread_candidates(inst, Placement(x), max_sets):  # spread
        y = x.copy()
        for n, l, e in add:
            y[n, l, e] = True
        yield "spread", y
    for (n1, l1, e1), (n2, l2, e2) in itertools.combinations(cached, 2):  # exchange between nodes
        if n1 != n2 and not x[n1, l2, e2] and not x[n2, l1, e1] \
                and used[n1] - size[l1] + size[l2] <= cap[n1] and used[n2] - size[l2] + size[l1] <= cap[n2]:
            y = x.copy(); y[n1, l1, e1] = y[n2, l2, e2] = False; y[n1, l2, e2] = y[n2, l1, e1] = True
            yield "exchange", y
    for add, remove in replace_candidates(inst, Placement(x), max_sets):  # replace
        y = x.copy()
        for n, l, e in remove:
            assert y[n, l, e] and l != add[0][1]
            y[n, l, e] = False
        for n, l, e in add:
            y[n, l, e] = True
        assert (y.sum(axis=2) * size[None, :]).sum(axis=1)[add[0][0]] <= cap[add[0][0]]
        yield "replace", y
    for n, l, e in cached:
        y = x.copy(); y[n, l, e] = False
        yield "drop", y
        for n2, l2, e2 in free_el:  # swap at the same node
            if n2 == n and used[n] - size[l] + size[l2] <= cap[n]:
                z = y.copy(); z[n, l2, e2] = True
                yield "swap", z
        for m in range(inst.N):  # move to another node, evicting at most one element there
            if x[m, l, e]:
                continue
            if used[m] + size[l] <= cap[m]:
                z = y.copy(); z[m, l, e] = True
                yield "move", z
            for mb, lb, eb in cached:
                if mb == m and used[m] - size[lb] + size[l] <= cap[m]:
                    z = y.copy(); z[m, l, e] = True; z[m, lb, eb] = False
                    yield "move", z


def _brute_force_T(d, inst) -> float:
    """Optimum by enumerating every feasible placement (tiny instances only)."""
    valid = np.argwhere(inst.valid_mask())
    per_node = []
    for n in range(inst.N):
        opts = []
        for r in range(len(valid) + 1):
            for sub in itertools.combinations(range(len(valid)), r):
                if sum(inst.expert_size[valid[i][0]] for i in sub) <= inst.capacity[n]:
                    opts.append(sub)
        per_node.append(opts)
    best = np.inf
    for combo in itertools.product(*per_node):
        x = np.zeros((inst.N, inst.L, inst.max_experts), dtype=bool)
        for n, sub in enumerate(combo):
            for i in sub:
                x[n, valid[i][0], valid[i][1]] = True
        best = min(best, latency(inst, x))
    return best


# --------------------------------------------------- IncrementalEvaluator.losses
@settings(max_examples=60, deadline=None)
@given(seed=seeds)
def test_losses_equal_two_full_evaluations(seed):
    d = random_instance_dict(seed)
    inst = instance_from_dict(d)
    rng = np.random.default_rng(seed)
    x = Placement.from_cache(inst, {k: sorted(v) for k, v in random_cache(d, rng, 0.5).items()}).x
    ev = IncrementalEvaluator(inst, Placement(x))
    el = np.argwhere(np.broadcast_to(inst.valid_mask()[None], x.shape))
    got = ev.losses(el)
    t_x = _T(d, inst, x)
    for (n, l, e), g in zip(el, got):
        if not x[n, l, e]:
            assert g == 0.0
            continue
        y = x.copy(); y[n, l, e] = False
        assert g == pytest.approx(_T(d, inst, y) - t_x, abs=1e-12)
        assert g >= -1e-15


# ------------------------------------------------------------------- polish
@settings(max_examples=300, deadline=None)
@given(seed=seeds)
def test_polish_never_worse_and_locally_optimal(seed):
    d = random_instance_dict(seed, max_layers=2, max_experts=4, max_nodes=3, max_users=2, max_cap=4)
    inst = instance_from_dict(d)
    rng = np.random.default_rng(seed)
    start = _feasible_random_start(inst, rng) if rng.random() < 0.7 else None
    res = polish(inst, start=start, seed=seed, max_sets=3)
    assert res.status == Status.HEURISTIC and res.info["stopped"] == "local_optimum"
    assert res.feasible and res.placement.is_feasible(inst)
    t_start = _T(d, inst, start.x if start is not None else inst.empty_placement().x)
    t_end = _T(d, inst, res.placement.x)
    assert t_end <= t_start + 1e-12
    assert res.latency == pytest.approx(t_end, abs=1e-12)
    assert res.latency == latency(inst, res.placement)
    tol = res.params["tol"]
    for kind, y in _neighbours(inst, res.placement.x, max_sets=3):
        assert _T(d, inst, y) >= t_end - tol - 1e-12, f"improving {kind} move left"


@pytest.mark.parametrize("seed", range(24))
def test_polish_locally_optimal_when_sets_must_span_nodes(seed):
    """Nodes too small for a whole activated set: spread, exchange and swap steps all matter here."""
    rng = np.random.default_rng(seed)
    inst = random_instance(layers=2, experts=int(rng.integers(3, 5)), top_k=int(rng.integers(2, 4)), nodes=3,
                           users=2, seed=seed, capacity_fraction=float(rng.uniform(0.1, 0.3)), reach=1.0)
    d = inst.to_dict()
    start = _feasible_random_start(inst, rng) if seed % 2 else None
    res = polish(inst, start=start, seed=seed, max_sets=3)
    t_end = _T(d, inst, res.placement.x)
    if start is not None:
        assert t_end <= _T(d, inst, start.x) + 1e-12
    for kind, y in _neighbours(inst, res.placement.x, max_sets=3):
        assert _T(d, inst, y) >= t_end - res.params["tol"] - 1e-12, f"improving {kind} move left"


def _polish_both_ways(inst, start, seed, moves=MOVE_KINDS, max_sets=64):
    """The local search with its per-layer caches and bounds, and the reference that evaluates
    every candidate afresh, from the same start and seed: (placement, latency, info) each."""
    from slimcaching.algorithms.local_search.moves import _local_search

    out = []
    for incremental in (True, False):
        ev = IncrementalEvaluator(inst, start)
        info = _local_search(ev, kinds=tuple(moves), tol=1e-12 * ev.empty_latency,
                             rng=np.random.default_rng(seed), deadline=float("inf"), max_moves=None,
                             max_sets=max_sets, incremental=incremental)
        out.append((ev.x.copy(), ev.latency, info))
    return out


@pytest.mark.parametrize("seed", range(10))
def test_polish_bookkeeping_takes_the_reference_steps(seed):
    """Cached batch gains, cached same-layer exchanges and bounded replace candidates change
    only the work, not the steps: the same moves, the same placement, bit for bit."""
    rng = np.random.default_rng(seed)
    inst = random_instance(layers=int(rng.integers(2, 6)), experts=int(rng.integers(4, 9)),
                           top_k=int(rng.integers(1, 5)), nodes=int(rng.integers(2, 5)), users=2, seed=seed,
                           tokens=16, capacity_fraction=float(rng.uniform(0.1, 0.4)))
    start = (_feasible_random_start(inst, rng), None, cyclic(inst, seed=seed).placement)[seed % 3]
    (x1, t1, i1), (x0, t0, i0) = _polish_both_ways(inst, start, seed)
    assert np.array_equal(x1, x0) and t1 == t0 and i1["moves"] == i0["moves"] and i1["sweeps"] == i0["sweeps"]


@pytest.mark.slow
@pytest.mark.parametrize("layers,top_k,start", [(8, 8, "random"), (16, 8, "cyclic"), (12, 4, "empty")])
def test_polish_bookkeeping_takes_the_reference_steps_at_size(layers, top_k, start):
    inst = random_instance(layers=layers, experts=16, top_k=top_k, nodes=8, users=4, seed=layers, tokens=64,
                           capacity_fraction=0.1)
    p0 = None if start == "empty" else (cyclic(inst, seed=0).placement if start == "cyclic"
                                        else _feasible_random_start(inst, np.random.default_rng(layers)))
    (x1, t1, i1), (x0, t0, i0) = _polish_both_ways(inst, p0, layers)
    assert np.array_equal(x1, x0) and t1 == t0 and i1["moves"] == i0["moves"]


def test_polish_escapes_the_zero_gain_stall_with_set_steps():
    """Top-2 sets only: every single add from empty gains 0, a set-add does not."""
    inst = random_instance(layers=3, experts=5, top_k=2, nodes=2, users=2, seed=3)
    only_singles = polish(inst, moves="add,drop,swap,move,exchange")
    assert only_singles.reduction == 0.0
    with_sets = polish(inst)
    assert with_sets.reduction > 0.0 and with_sets.info["moves"]["set"] > 0


def test_polish_reaches_the_optimum_often_on_tiny_instances():
    """Not a guarantee, a regression check: from the empty start, within 10 % on tiny K=1 instances."""
    ratios = []
    for seed in range(12):
        d = random_instance_dict(seed, max_layers=2, max_experts=3, max_k=1, max_nodes=2, max_users=2, max_cap=3)
        inst = instance_from_dict(d)
        t0 = latency(inst, inst.empty_placement())
        opt = _brute_force_T(d, inst)
        if t0 - opt <= 1e-12:
            continue
        ratios.append((t0 - polish(inst).latency) / (t0 - opt))
    assert len(ratios) >= 5
    assert min(ratios) >= 0.5 and np.mean(ratios) >= 0.9


def test_polish_time_limit_zero_returns_start():
    inst = random_instance(layers=4, experts=6, top_k=2, nodes=3, users=3, seed=1)
    start = _feasible_random_start(inst, np.random.default_rng(0))
    res = polish(inst, start=start, time_limit=0.0)
    assert res.status == Status.TIME_LIMIT
    assert res.placement == start
    assert res.info["stopped"] == "time_limit"


def test_polish_max_moves_and_seed_recorded():
    inst = random_instance(layers=4, experts=6, top_k=1, nodes=3, users=3, seed=2)
    res = polish(inst, max_moves=3, seed=7)
    assert sum(res.info["moves"].values()) == 3 and res.info["stopped"] == "max_moves"
    assert res.seed == 7 and res.params["seed"] == 7
    full = polish(inst, seed=7)
    assert full.reduction >= res.reduction


def test_polish_is_deterministic_for_a_seed():
    inst = random_instance(layers=4, experts=6, top_k=2, nodes=3, users=3, seed=4)
    start = _feasible_random_start(inst, np.random.default_rng(1))
    a, b = polish(inst, start=start, seed=5), polish(inst, start=start, seed=5)
    assert a.placement == b.placement


def test_polish_bad_input_messages():
    inst = random_instance(layers=2, experts=4, top_k=2, nodes=2, users=2, seed=0)
    with pytest.raises(InputError, match=r"start must be a Placement of shape \(2, 2, 4\)"):
        polish(inst, start=Placement(np.zeros((1, 2, 4), dtype=bool)))
    x = np.ones((2, 2, 4), dtype=bool)
    with pytest.raises(InputError, match=r"start: \$\.cache\.edge-0: start uses 8 > capacity 2 of node 'edge-0'"):
        polish(inst, start=Placement(x))
    inst3 = random_instance(layers=2, experts=[2, 4], top_k=1, nodes=1, users=1, seed=0)
    y = np.zeros((1, 2, 4), dtype=bool); y[0, 0, 3] = True
    with pytest.raises(InputError, match=r"layer 0 has 2 experts, expert 3 does not exist"):
        polish(inst3, start=Placement(y))
    with pytest.raises(InputError, match=r"moves must be a non-empty subset of add, set, spread, drop, swap, move, "
                                         r"exchange, replace; got jump"):
        polish(inst, moves="add,jump")
    with pytest.raises(InputError, match=r"max_moves must be an integer >= 0, got -1"):
        polish(inst, max_moves=-1)
    with pytest.raises(InputError, match=r"tol must be a number >= 0, got -1"):
        polish(inst, tol=-1)
    with pytest.raises(InputError, match=r"time limit must be a number >= 0 seconds, got -2"):
        polish(inst, time_limit=-2)


def test_move_kinds_constant():
    assert MOVE_KINDS == ("add", "set", "spread", "drop", "swap", "move", "exchange", "replace")


# ------------------------------------------------------------------- cyclic
def _node_caches(inst, n):
    """Every feasible cache of node ``n`` as a bool (L, Emax) array."""
    valid = np.argwhere(inst.valid_mask())
    for r in range(len(valid) + 1):
        for sub in itertools.combinations(range(len(valid)), r):
            if sum(inst.expert_size[valid[i][0]] for i in sub) <= inst.capacity[n]:
                c = np.zeros((inst.L, inst.max_experts), dtype=bool)
                for i in sub:
                    c[valid[i][0], valid[i][1]] = True
                yield c


@settings(max_examples=60, deadline=None)
@given(seed=seeds)
def test_cyclic_improves_on_successive_and_is_nodewise_optimal(seed):
    from slimcaching.algorithms.successive import successive

    d = random_instance_dict(seed, max_layers=2, max_experts=4, max_nodes=3, max_users=2, max_cap=4)
    inst = instance_from_dict(d)
    res = cyclic(inst, seed=seed)
    base = successive(inst, seed=seed)
    assert res.feasible and res.status == Status.HEURISTIC
    assert res.latency == latency(inst, res.placement)
    assert res.latency <= base.latency + 1e-12
    assert res.info["start_latency"] == pytest.approx(base.latency, abs=1e-12)
    if res.info["single_node_exact"] and res.info["stopped"] == "no_improvement":
        t_end = _T(d, inst, res.placement.x)
        for n in range(inst.N):
            for c in _node_caches(inst, n):
                y = res.placement.x.copy(); y[n] = c
                assert _T(d, inst, y) >= t_end - res.params["tol"] - 1e-12


@settings(max_examples=40, deadline=None)
@given(seed=seeds)
def test_cyclic_from_a_given_start_is_never_worse(seed):
    d = random_instance_dict(seed, max_layers=3, max_experts=5, max_nodes=3, max_users=3, max_cap=6)
    inst = instance_from_dict(d)
    start = _feasible_random_start(inst, np.random.default_rng(seed))
    res = cyclic(inst, start=start, seed=seed)
    assert res.feasible
    assert res.latency <= latency(inst, start) + 1e-12
    assert res.params["start"] == "given" and res.guarantee is None


def test_cyclic_repairs_a_bad_start():
    """From a placement caching the least useful experts, one pass must strictly improve."""
    inst = random_instance(layers=3, experts=6, top_k=2, nodes=3, users=3, seed=11)
    ev = IncrementalEvaluator(inst)
    x = np.zeros((inst.N, inst.L, inst.max_experts), dtype=bool)
    for n in range(inst.N):  # fill every node with layer-0 experts 0.. (arbitrary, not optimised)
        k = int(inst.capacity[n] // inst.expert_size[0])
        x[n, 0, : min(k, inst.experts[0])] = True
    res = cyclic(inst, start=Placement(x))
    assert res.latency < latency(inst, Placement(x)) - 1e-9
    assert res.info["improvements"] >= 1 and res.info["passes"] >= 2
    assert ev.latency == latency(inst, inst.empty_placement())


def test_cyclic_time_limit_and_bad_parameters():
    inst = random_instance(layers=3, experts=5, top_k=2, nodes=3, users=2, seed=5)
    start = _feasible_random_start(inst, np.random.default_rng(2))
    res = cyclic(inst, start=start, time_limit=0.0)
    assert res.status == Status.TIME_LIMIT and res.placement == start
    with pytest.raises(InputError, match=r"unknown parameter 'bogus' for cyclic"):
        cyclic(inst, bogus=1)
    with pytest.raises(InputError, match=r"max_passes must be an integer >= 1, got 0"):
        cyclic(inst, max_passes=0)
    with pytest.raises(InputError, match=r"unknown node 'nowhere' in order"):
        cyclic(inst, order=["nowhere", "edge-0", "edge-1"])


def _cyclic_from_scratch(inst, start, tol, single):
    """Cyclic re-optimisation as it reads: every node re-solved from scratch in every pass."""
    from slimcaching.algorithms.successive import node_order, solve_single_node

    ev = IncrementalEvaluator(inst, start)
    while True:
        improved = False
        for n in node_order(inst, "greedy"):
            sol = solve_single_node(ev, n, exclude_current=True, **single)
            new = {(int(l), int(e)) for _, l, e in sol.elements}
            old = {(int(l), int(e)) for l, e in np.argwhere(ev.x[n])}
            add = [(n, l, e) for l, e in sorted(new - old)]
            remove = [(n, l, e) for l, e in sorted(old - new)]
            if new != old and ev.gain_of(add=add, remove=remove) > tol:
                ev.apply(add=add, remove=remove)
                improved = True
        if not improved:
            return ev.x


@pytest.mark.parametrize("seed,layer_solver,start", [(0, "auto", "random"), (1, "heuristic", "random"),
                                                     (2, "auto", "successive"), (3, "heuristic", "successive"),
                                                     (4, "enumerate", "random")])
def test_cyclic_with_kept_tables_takes_the_steps_of_solving_from_scratch(seed, layer_solver, start):
    """Kept tables and skipped unchanged nodes change no step: the same placement, bit for bit."""
    inst = random_instance(layers=6, experts=10, top_k=3, nodes=4, users=3, seed=seed, capacity_fraction=0.3)
    p0 = (_feasible_random_start(inst, np.random.default_rng(seed)) if start == "random"
          else successive_for(inst, layer_solver))
    res = cyclic(inst, start=p0, seed=seed, layer_solver=layer_solver, max_passes=None)
    assert res.info["stopped"] == "no_improvement"
    x = _cyclic_from_scratch(inst, p0, res.params["tol"], {"layer_solver": layer_solver})
    assert np.array_equal(res.placement.x, x)
    assert res.info["tables_built"] < res.info["passes"] * inst.N * inst.L or res.info["passes"] == 1


def successive_for(inst, layer_solver):
    from slimcaching.algorithms.successive import successive

    return successive(inst, layer_solver=layer_solver).placement


# --------------------------------------------------------------------- best
@settings(max_examples=40, deadline=None)
@given(seed=seeds)
def test_best_never_worse_than_successive_and_locally_optimal(seed):
    from slimcaching.algorithms.successive import successive

    d = random_instance_dict(seed, max_layers=2, max_experts=4, max_nodes=3, max_users=2, max_cap=4)
    inst = instance_from_dict(d)
    res = best(inst, seed=seed, max_sets=3)
    stages = [s["latency"] for s in res.info["stages"]]
    assert [s["algorithm"] for s in res.info["stages"]] == ["successive", "cyclic", "polish"]
    assert stages[0] == pytest.approx(successive(inst, seed=seed).latency, abs=1e-12)
    assert stages[2] <= stages[1] + 1e-12 <= stages[0] + 2e-12
    assert res.latency == latency(inst, res.placement) <= stages[2]
    chosen = [r["stages"] for r in res.info["restarts"] if r["start"] == res.info["chosen"]]
    assert res.latency == (chosen[0][-1]["latency"] if chosen else stages[2])
    assert res.feasible and res.reduction >= -1e-12
    t_end = _T(d, inst, res.placement.x)
    for kind, y in _neighbours(inst, res.placement.x, max_sets=3):
        assert _T(d, inst, y) >= t_end - res.params["polish"]["tol"] - 1e-12, f"improving {kind} move left"


def test_best_is_optimal_where_successive_is_proven_optimal():
    """One node, layers enumerated exactly: successive's ratio-1 guarantee is inherited."""
    for seed in range(8):
        d = random_instance_dict(seed, max_layers=2, max_experts=4, max_nodes=1, max_users=2, max_cap=5)
        inst = instance_from_dict(d)
        res = best(inst)
        assert res.guarantee is not None and "inherited" in res.guarantee
        assert res.latency == pytest.approx(_brute_force_T(d, inst), abs=1e-12)


def test_best_registry_guarantees_and_bad_parameter():
    from slimcaching.algorithms import guarantees_of

    assert [g.ratio for g in guarantees_of("best")] == [g.ratio for g in guarantees_of("successive")]
    assert guarantees_of("polish") == ()
    inst = random_instance(layers=2, experts=4, top_k=2, nodes=2, users=2, seed=0)
    with pytest.raises(InputError, match=r"unknown parameter 'speed' for best; valid: eps, extra_starts, layer_solver"):
        best(inst, speed=3)
    with pytest.raises(InputError, match=r"extra_starts must name registered algorithms other than best; got 'best'"):
        best(inst, extra_starts="independent,best")
    with pytest.raises(InputError, match=r"restarts must be an integer >= 0, got -1"):
        best(inst, restarts=-1)
    res = best(inst, time_limit=0.0)
    assert res.status == Status.TIME_LIMIT and res.feasible


def test_best_restarts_reach_the_worked_example_optimum(worked_example):
    """The main chain stops in a basin caching layer 0; a random restart finds the optimum (layer 1)."""
    from slimcaching.instances.io import read_instance

    inst = read_instance(worked_example / "tiny.json")
    main_only = best(inst, extra_starts=(), restarts=0)
    assert main_only.latency > 9.5
    res = best(inst)
    assert res.params["restarts"] == 4 and len(res.info["restarts"]) == 5
    assert res.latency == pytest.approx(9.172273055346421, rel=1e-12)
    assert res.latency <= main_only.latency


@pytest.mark.parametrize("seed", range(30))
def test_cross_layer_exchanges_equal_a_scan_of_every_pair(seed):
    """The sorted per-node-pair search lists exactly the pairs, values and order of a scan over
    every pair a < b (ties, -inf relocations and tight rooms included)."""
    from slimcaching.algorithms.local_search.moves import _cross_layer_exchanges

    rng = np.random.default_rng(seed)
    C, N, L = int(rng.integers(1, 40)), int(rng.integers(1, 5)), int(rng.integers(1, 5))
    nodes, layers = rng.integers(0, N, C), rng.integers(0, L, C)
    el_size = rng.integers(1, 4, C)
    free = rng.integers(0, 3, N)
    reloc = np.round(rng.normal(0, 1, (C, N)), 1)  # rounded: many exact ties
    reloc[rng.random((C, N)) < 0.2] = -np.inf
    tol = float(rng.choice([0.0, 1e-12, 0.5]))
    g, a, b = _cross_layer_exchanges(reloc, nodes, layers, free, el_size, tol, 1e-9)
    want = []
    for i in range(C):
        for k in range(i + 1, C):
            v = reloc[i, nodes[k]] + reloc[k, nodes[i]]
            if (nodes[i] != nodes[k] and layers[i] != layers[k] and v > tol
                    and free[nodes[i]] + el_size[i] - el_size[k] >= 0
                    and free[nodes[k]] + el_size[k] - el_size[i] >= 0):
                want.append((v, i, k))
    assert [(float(v), int(i), int(k)) for v, i, k in zip(g, a, b)] == want
