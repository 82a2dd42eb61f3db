"""Node orders of the successive decomposition and their guarantee regimes, against brute force.

Every proven guarantee of ``successive`` / ``maxconv`` (Theorems 1, 2 and 4
in :func:`slimcaching.algorithms.successive.successive`) is checked against
the brute-force optimum on small instances of its regime, for every order;
the tight and the unbounded families of the same docstring are built and
measured.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from slimcaching.algorithms.bruteforce import brute_force
from slimcaching.algorithms.maxconv import maxconv
from slimcaching.algorithms.successive import (ORDERS, exact_tables, node_order, solve_single_node, successive,
                                               uniform_disjoint)
from slimcaching.instances.generators import assemble, random_instance
from slimcaching.instances.io import read_instance
from slimcaching.objective import IncrementalEvaluator, evaluate

def _ratio(res, opt) -> float:
    return res.reduction / opt.reduction if opt.reduction > 0 else 1.0


def _claimed(res) -> float:
    """The ratio of the (first, strongest) proven guarantee stated in ``res.guarantee``."""
    assert res.guarantee is not None and res.guarantee.startswith("R(alg) >= ")
    return float(res.guarantee.split()[2])


# ------------------------------------------------------------ Theorem 2: K = 1, several nodes
def _k1_instance(seed: int):
    rng = np.random.default_rng(seed)
    L = int(rng.integers(1, 3))
    return random_instance(layers=L, experts=int(rng.integers(2, 5)), top_k=1,
                           nodes=int(rng.integers(2, 4)), users=int(rng.integers(1, 4)), seed=seed,
                           capacity_fraction=float(rng.uniform(0.2, 0.6)),
                           expert_size=[int(s) for s in rng.integers(1, 3, size=L)],
                           reach=float(rng.uniform(0.4, 1.0)), skew=float(rng.uniform(0, 1.5)))


def _check_k1_one_half(seed):
    inst = _k1_instance(seed)
    assert inst.max_set_size == 1 and inst.N >= 2
    opt = brute_force(inst)
    assert opt.status == "optimal"
    for order in ORDERS:
        res = successive(inst, order=order)
        assert res.feasible
        assert _claimed(res) == 0.5, res.guarantee
        assert _ratio(res, opt) >= 0.5 - 1e-12, (order, _ratio(res, opt))


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_k1_every_order_meets_one_half_against_brute_force(seed):
    _check_k1_one_half(seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(200))
def test_k1_every_order_meets_one_half_against_brute_force_200_seeds(seed):
    _check_k1_one_half(seed)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10**6), eps=st.sampled_from([0.5, 0.2]))
def test_k1_maxconv_meets_alpha_over_one_plus_alpha(seed, eps):
    inst = _k1_instance(seed)
    opt = brute_force(inst)
    for order in ("greedy", "latency"):
        res = maxconv(inst, order=order, eps=eps)
        claim = (1 - eps) / (2 - eps)
        assert _claimed(res) == pytest.approx(claim, abs=1e-6)
        assert _ratio(res, opt) >= claim - 1e-12


def _tight_k1(delta: float, eta: float):
    """Theorem 2 is tight: two nodes, ``a`` can serve x or y, ``b`` only x.

    ``x`` (weight ``1 + delta``) is a little faster at ``a``, so both the
    greedy order and the latency order fill ``a`` with ``x`` first and ``b``
    has nothing left to add; the optimum puts ``y`` at ``a`` and ``x`` at ``b``.
    Ratio ``(1 + delta) / (2 + delta) + O(eta)``.
    """
    inf = np.inf
    lat = np.array([[[0.1], [0.1 + eta]], [[0.1], [inf]]])          # (U=2, N=2, L=1)
    routing = [[(np.array([[0]]), np.array([1.0]))], [(np.array([[1]]), np.array([1.0]))]]
    return assemble(name="tight-k1", experts=[2], expert_size=[1], top_k=[1], node_names=["a", "b"],
                    capacity=[1, 1], user_names=["u1", "u2"], weight=np.array([1 + delta, 1.0]),
                    latency=lat, cloud_latency=np.ones((2, 1)), routing=routing)


@pytest.mark.parametrize("delta", [0.1, 0.01])
def test_k1_one_half_is_tight_for_greedy_and_latency_orders(delta):
    eta = 1e-3
    inst = _tight_k1(delta, eta)
    opt = brute_force(inst)
    for order in ("greedy", "latency"):
        res = successive(inst, order=order)
        r = _ratio(res, opt)
        assert _claimed(res) == 0.5 and r >= 0.5
        assert r == pytest.approx((1 + delta) / (2 + delta), abs=2 * eta)
    # visiting b first is optimal here: the bound is about the order not being known in advance
    assert successive(inst, order=["b", "a"]).reduction == pytest.approx(opt.reduction, abs=1e-12)


# ------------------------------------------------------------ the greedy order itself
def _greedy_from_scratch(inst, **single):
    """Reference greedy order: every round re-solves every remaining node from scratch."""
    ev = IncrementalEvaluator(inst)
    remaining = node_order(inst, "latency")
    tol = 1e-12 * ev.empty_latency
    picks = []
    while remaining:
        sols = {m: solve_single_node(ev, m, **single) for m in remaining}
        best = max(s.value for s in sols.values())
        pick = next(m for m in remaining if sols[m].value >= best - tol)
        if len(sols[pick].elements):
            ev.apply(add=[tuple(int(v) for v in r) for r in sols[pick].elements])
        remaining.remove(pick)
        picks.append(pick)
    return ev, picks


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10**6), top_k=st.sampled_from([1, 2]), eps=st.sampled_from([None, 0.3]))
def test_greedy_order_equals_rebuilding_every_table_every_round(seed, top_k, eps):
    """Rebuilding only the tables a commit changed gives the same rounds as rebuilding all of them."""
    rng = np.random.default_rng(seed)
    inst = random_instance(layers=int(rng.integers(1, 4)), experts=int(rng.integers(3, 7)), top_k=top_k,
                           nodes=int(rng.integers(2, 6)), users=int(rng.integers(1, 4)), seed=seed,
                           capacity_fraction=float(rng.uniform(0.1, 0.5)), reach=float(rng.uniform(0.3, 1.0)))
    res = successive(inst, order="greedy", eps=eps)
    ev, picks = _greedy_from_scratch(inst, eps=eps)
    assert [inst.node_names[m] for m in picks] == res.info["order"]
    assert res.latency == pytest.approx(ev.latency, rel=1e-12, abs=1e-15)
    assert res.info["single_node_solves"] <= inst.N * (inst.N + 1) // 2
    for rec in res.info["nodes"]:
        assert rec["round"] is not None and rec["candidates"] >= 1


@pytest.mark.parametrize("seed", range(4))
def test_greedy_first_round_takes_the_best_single_node_and_gains_add_up(seed):
    inst = random_instance(layers=2, experts=6, top_k=2, nodes=4, users=3, seed=seed, reach=0.6)
    res = successive(inst, order="greedy")
    ev = IncrementalEvaluator(inst)
    first = max(solve_single_node(ev, n).value for n in range(inst.N))
    gains = [rec["value"] for rec in res.info["nodes"]]
    assert gains[0] == pytest.approx(first, rel=1e-12)
    assert sum(gains) == pytest.approx(res.reduction, rel=1e-9)     # predicted gains are the realised ones
    assert [rec["round"] for rec in res.info["nodes"]] == list(range(1, inst.N + 1))


def test_greedy_time_limit_keeps_feasible_incumbent():
    inst = random_instance(layers=3, experts=6, top_k=2, nodes=4, users=2, seed=1)
    res = successive(inst, order="greedy", time_limit=1e-9)
    assert res.status == "time_limit" and res.feasible and res.guarantee is None


# ------------------------------------------------------------ Theorem 4: identical latencies, disjoint sets
def _uniform_disjoint_instance(seed: int):
    """K <= 2, each layer's experts split into disjoint activated sets; identical node latencies."""
    rng = np.random.default_rng(seed)
    L, U, N = int(rng.integers(1, 3)), int(rng.integers(1, 3)), int(rng.integers(2, 4))
    experts = [int(rng.integers(3, 6)) for _ in range(L)]
    sizes = [int(rng.integers(1, 3)) for _ in range(L)]
    routing = [[None] * L for _ in range(U)]
    for l in range(L):
        perm = rng.permutation(experts[l])
        cuts, i = [], 0
        while i < experts[l]:
            k = 2 if i + 1 < experts[l] and rng.random() < 0.7 else 1
            cuts.append(sorted(perm[i:i + k].tolist()) + [-1] * (2 - k))
            i += k
        for u in range(U):
            pick = rng.choice(len(cuts), size=int(rng.integers(1, len(cuts) + 1)), replace=False)
            routing[u][l] = (np.array([cuts[j] for j in sorted(pick)]), rng.dirichlet(np.ones(len(pick))) + 1e-3)
    smax = 2 * max(sizes)
    cap = rng.integers(smax, smax + 3, size=N)
    cloud = rng.uniform(0.05, 0.12, size=(U, L))
    t = cloud * rng.uniform(0.15, 0.85, size=(U, L))
    lat = np.repeat(t[:, None, :], N, axis=1)
    return assemble(name=f"uniform-disjoint-{seed}", experts=experts, expert_size=sizes, top_k=[2] * L,
                    node_names=[f"n{i}" for i in range(N)], capacity=cap.tolist(),
                    user_names=[f"u{i}" for i in range(U)], weight=rng.dirichlet(np.ones(U) * 2),
                    latency=lat, cloud_latency=cloud, routing=routing)


def _check_one_quarter(seed):
    inst = _uniform_disjoint_instance(seed)
    assert uniform_disjoint(inst) and exact_tables(inst, {})
    opt = brute_force(inst)
    for order in ORDERS:
        res = successive(inst, order=order)
        if inst.max_set_size >= 2:
            assert _claimed(res) == 0.25, res.guarantee
        assert _ratio(res, opt) >= 0.25 - 1e-12


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_uniform_disjoint_every_order_meets_one_quarter_against_brute_force(seed):
    _check_one_quarter(seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(200))
def test_uniform_disjoint_every_order_meets_one_quarter_against_brute_force_200_seeds(seed):
    _check_one_quarter(seed)


def test_uniform_disjoint_predicate_rejects_each_broken_condition():
    inst = _uniform_disjoint_instance(3)
    assert uniform_disjoint(inst)
    # (i) a node faster than the others
    lat = inst.latency.copy()
    lat[0, 0, 0] *= 0.5
    broken = assemble(name="x", experts=inst.experts.tolist(), expert_size=inst.expert_size.tolist(),
                      top_k=inst.top_k.tolist(), node_names=inst.node_names, capacity=inst.capacity.tolist(),
                      user_names=inst.user_names, weight=inst.weight, latency=lat,
                      cloud_latency=inst.cloud_latency,
                      routing=[[(inst.set_experts[inst.sets_of(u, l)], inst.set_prob[inst.sets_of(u, l)])
                                for l in range(inst.L)] for u in range(inst.U)])
    assert not uniform_disjoint(broken)
    # (ii) the decoy family below (overlapping real pairs); (iii) a node too small for a set
    assert not uniform_disjoint(_decoy_family(2, 0.1))
    small = assemble(name="y", experts=[2], expert_size=[1], top_k=[2], node_names=["a", "b"], capacity=[1, 2],
                     user_names=["u"], weight=np.ones(1), latency=np.full((1, 2, 1), 0.1),
                     cloud_latency=np.ones((1, 1)), routing=[[(np.array([[0, 1]]), np.array([1.0]))]])
    assert not uniform_disjoint(small)


# ------------------------------------------------------------ Theorem 3: no constant for K >= 2
def _decoy_family(N: int, delta: float):
    """Theorem 3 (b): ``N`` nodes of capacity 2, every pair of ``2N`` real experts, ``N`` heavier decoy pairs."""
    import itertools

    real = list(itertools.combinations(range(2 * N), 2))
    decoys = [(2 * N + 2 * i, 2 * N + 2 * i + 1) for i in range(N)]
    sets = np.array(real + decoys)
    p = np.array([1.0] * len(real) + [1.0 + delta] * len(decoys))
    return assemble(name=f"decoy-{N}", experts=[4 * N], expert_size=[1], top_k=[2],
                    node_names=[f"n{i}" for i in range(N)], capacity=[2] * N, user_names=["u"],
                    weight=np.ones(1), latency=np.full((1, N, 1), 0.1), cloud_latency=np.ones((1, 1)),
                    routing=[[(sets, p)]])


@pytest.mark.parametrize("N", [2, 3])
def test_k2_ratio_tends_to_zero_on_the_decoy_family(N):
    delta = 0.05
    inst = _decoy_family(N, delta)
    spread = np.zeros((N, 1, inst.max_experts), dtype=bool)
    for n in range(N):
        spread[n, 0, [2 * n, 2 * n + 1]] = True
    r_spread = evaluate(inst, spread).reduction        # a feasible placement: R(opt) >= r_spread
    for order in ORDERS:
        res = successive(inst, order=order)
        assert res.guarantee is None                   # no regime applies, none is claimed
        assert res.reduction / r_spread <= (1 + delta) / (2 * N - 1) + 1e-12
    if N == 2:
        assert brute_force(inst).reduction >= r_spread - 1e-12


def test_committed_k2_counterexample_has_ratio_zero_for_every_order():
    inst = read_instance("docs/worst-case/successive-k2.instance.json")
    opt = brute_force(inst)
    assert opt.reduction > 0
    for order in ORDERS:
        res = successive(inst, order=order)
        assert res.reduction == pytest.approx(0.0, abs=1e-15) and res.guarantee is None


def test_without_sets_fitting_every_node_equal_latencies_still_give_ratio_zero():
    """Theorem 3 (a) with equal latencies: only condition (iii) of Theorem 4 fails, and the ratio is 0."""
    inst = assemble(name="k2-equal", experts=[2], expert_size=[1], top_k=[2], node_names=["a", "b"], capacity=[1, 1],
                    user_names=["u"], weight=np.ones(1), latency=np.full((1, 2, 1), 0.4),
                    cloud_latency=np.full((1, 1), 1.3), routing=[[(np.array([[0, 1]]), np.array([1.0]))]])
    assert not uniform_disjoint(inst)
    opt = brute_force(inst)
    assert opt.reduction == pytest.approx(0.9)
    for order in ORDERS:
        assert successive(inst, order=order).reduction == 0.0


def test_committed_greedy_order_k1_worst_case_reproduces_and_meets_one_half():
    doc = __import__("json").load(open("docs/worst-case/successive-greedy-k1.json"))
    inst = read_instance("docs/worst-case/successive-greedy-k1.instance.json")
    res, opt = successive(inst, order="greedy"), brute_force(inst)
    assert _ratio(res, opt) == pytest.approx(doc["ratio"], abs=1e-9)
    assert _claimed(res) == 0.5 <= _ratio(res, opt)
    assert [c["status"] for c in doc["claimed_guarantees"]] == ["proven"]


@pytest.mark.parametrize("order", ["greedy", "latency"])
def test_deadline_inside_a_node_stops_before_the_next_table(order, monkeypatch):
    """The deadline is checked before every layer table, in the greedy rounds as in the fixed ones."""
    import time as _time

    from slimcaching.algorithms import successive as mod

    calls = []
    real = mod.layer_table

    def slow_table(*a, **k):
        calls.append(1)
        _time.sleep(0.05)
        return real(*a, **k)

    monkeypatch.setattr(mod, "layer_table", slow_table)
    inst = random_instance(layers=4, experts=5, top_k=2, nodes=3, users=2, seed=2)
    res = successive(inst, order=order, time_limit=0.12)
    assert res.status == "time_limit" and res.feasible and res.guarantee is None
    assert len(calls) < inst.L * inst.N          # stopped inside the first round, not after it
    assert len(calls) <= 4                       # at most one table past the deadline
