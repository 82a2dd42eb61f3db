"""The evaluator against a loop-by-loop transcription of docs/model.md, and its structure."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from reference import latency_from_definition, random_cache, random_instance_dict
from slimcaching.instances.model import Placement
from slimcaching.instances.validate import instance_from_dict
from slimcaching.objective import IncrementalEvaluator, empty_latency, evaluate, latency

seeds = st.integers(0, 2**32 - 1)


def _placement(inst, cache):
    return Placement.from_cache(inst, {k: sorted(v) for k, v in cache.items()})


@settings(max_examples=300, deadline=None)
@given(seed=seeds)
def test_evaluator_equals_definition(seed):
    d = random_instance_dict(seed)
    inst = instance_from_dict(d)
    rng = np.random.default_rng(seed)
    cache = random_cache(d, rng)
    assert latency(inst, _placement(inst, cache)) == pytest.approx(latency_from_definition(d, cache), rel=1e-12)
    assert empty_latency(inst) == pytest.approx(latency_from_definition(d, {}), rel=1e-12)


def test_worked_example(worked_example):
    from slimcaching.instances.io import read_instance, read_placement

    inst = read_instance(worked_example / "tiny.json")
    pl, extra = read_placement(worked_example / "tiny.optimal.json", inst)
    ev = evaluate(inst, pl)
    assert ev.latency == pytest.approx(9.172273055346421, rel=1e-12)
    assert ev.empty_latency == pytest.approx(13.648378615658398, rel=1e-12)
    assert ev.feasible


@settings(max_examples=150, deadline=None)
@given(seed=seeds)
def test_reduction_is_monotone(seed):
    inst = instance_from_dict(random_instance_dict(seed))
    rng = np.random.default_rng(seed)
    x = rng.random((inst.N, inst.L, inst.max_experts)) < 0.3
    x &= inst.valid_mask()[None]
    y = x | ((rng.random(x.shape) < 0.3) & inst.valid_mask()[None])
    assert latency(inst, y) <= latency(inst, x) + 1e-12
    assert latency(inst, x) <= empty_latency(inst) + 1e-12


@settings(max_examples=200, deadline=None)
@given(seed=seeds)
def test_k1_reduction_is_submodular(seed):
    """For |S| = 1 everywhere, R(A+e) - R(A) >= R(B+e) - R(B) for A ⊆ B, e ∉ B."""
    d = random_instance_dict(seed, max_k=1)
    inst = instance_from_dict(d)
    assert inst.max_set_size == 1
    rng = np.random.default_rng(seed)
    valid = np.argwhere(np.broadcast_to(inst.valid_mask()[None], (inst.N, inst.L, inst.max_experts)))
    for _ in range(5):
        b = (rng.random((inst.N, inst.L, inst.max_experts)) < 0.5) & inst.valid_mask()[None]
        a = b & (rng.random(b.shape) < 0.5)
        outside = [tuple(v) for v in valid if not b[tuple(v)]]
        if not outside:
            continue
        e = outside[rng.integers(len(outside))]
        a2, b2 = a.copy(), b.copy()
        a2[e] = True
        b2[e] = True
        gain_a = latency(inst, a) - latency(inst, a2)
        gain_b = latency(inst, b) - latency(inst, b2)
        assert gain_a >= gain_b - 1e-12


def test_k2_reduction_is_not_submodular():
    """Co-activation: caching one expert of a pair alone gains nothing, both gain a lot."""
    d = {"format": "slimcaching-instance/1", "name": "pair", "layers": [{"experts": 2, "expert_size": 1, "top_k": 2}],
         "nodes": [{"name": "a", "capacity": 2}],
         "users": [{"name": "u", "weight": 1.0, "latency": {"a": 1.0}, "cloud_latency": 5.0,
                    "routing": [[{"experts": [0, 1], "p": 1.0}]]}]}
    inst = instance_from_dict(d)
    ev = IncrementalEvaluator(inst)
    assert ev.gain(0, 0, 0) == 0.0
    ev.add(0, 0, 1)
    assert ev.gain(0, 0, 0) == pytest.approx(4.0)


@settings(max_examples=150, deadline=None)
@given(seed=seeds)
def test_incremental_gains_equal_full_evaluations(seed):
    inst = instance_from_dict(random_instance_dict(seed))
    rng = np.random.default_rng(seed)
    x = (rng.random((inst.N, inst.L, inst.max_experts)) < 0.3) & inst.valid_mask()[None]
    ev = IncrementalEvaluator(inst, Placement(x))
    assert ev.latency == pytest.approx(latency(inst, x), rel=1e-12)
    cand = np.argwhere(np.broadcast_to(inst.valid_mask()[None], x.shape))
    batch = ev.gains(cand)
    for (n, l, e), g in zip(cand, batch):
        y = x.copy()
        y[n, l, e] = True
        full = latency(inst, x) - latency(inst, y)
        assert ev.gain(n, l, e) == pytest.approx(full, abs=1e-12)
        assert g == pytest.approx(full, abs=1e-12)
    # a mixed move: remove one cached element, add two others
    cached = np.argwhere(x)
    free = np.argwhere(~x & inst.valid_mask()[None])
    if len(cached) and len(free) >= 2:
        rem = [tuple(cached[0])]
        add = [tuple(v) for v in free[:2]]
        y = x.copy()
        y[rem[0]] = False
        for a in add:
            y[a] = True
        full = latency(inst, x) - latency(inst, y)
        assert ev.gain_of(add=add, remove=rem) == pytest.approx(full, abs=1e-12)
        assert ev.latency == pytest.approx(latency(inst, x), rel=1e-12)  # gain_of does not mutate
        assert ev.apply(add=add, remove=rem) == pytest.approx(full, abs=1e-12)
        assert ev.latency == pytest.approx(latency(inst, y), rel=1e-12)
        assert np.array_equal(ev.x, y)
        assert np.array_equal(ev.used, Placement(y).storage_used(inst))
        assert np.allclose(ev.tau, IncrementalEvaluator(inst, Placement(y)).tau)


def test_storage_and_feasibility():
    d = random_instance_dict(7)
    inst = instance_from_dict(d)
    full = Placement(np.broadcast_to(inst.valid_mask()[None], (inst.N, inst.L, inst.max_experts)).copy())
    ev = evaluate(inst, full)
    expected = int((inst.experts * inst.expert_size).sum())
    assert all(v == expected for v in ev.storage_used)
    assert ev.feasible == bool(np.all(expected <= inst.capacity))
    assert ev.over_capacity == [inst.node_names[n] for n in range(inst.N) if expected > inst.capacity[n]]


# ------------------------------------------------------------ kernels and layouts
@settings(max_examples=100, deadline=None)
@given(seed=seeds)
def test_key_gains_and_pair_interactions_equal_full_evaluations(seed):
    """A key's change of node set alone (key_gains), and two same-layer key changes: the joint
    gain is the two single gains plus the interaction on the rows holding both experts, whatever
    the node sets (full evaluations as reference)."""
    inst = instance_from_dict(random_instance_dict(seed))
    rng = np.random.default_rng(seed)
    x = (rng.random((inst.N, inst.L, inst.max_experts)) < 0.4) & inst.valid_mask()[None]
    ev = IncrementalEvaluator(inst, Placement(x))
    t_x = latency(inst, x)
    l = int(rng.integers(inst.L))
    valid = np.nonzero(inst.valid_mask()[l])[0]
    if len(valid) < 2:
        return
    pairs = [rng.choice(valid, 2, replace=False) for _ in range(4)]
    pairs += [pairs[0], pairs[0][::-1]]  # the same experts again, with other node sets
    ea, eb = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    cols_a, cols_b = rng.random((len(pairs), inst.N)) < 0.5, rng.random((len(pairs), inst.N)) < 0.5
    ta, tb = ev.key_columns(l, cols_a), ev.key_columns(l, cols_b)
    got = ev.pair_interactions(l, ea, ta, eb, tb)
    single_a, single_b = ev.key_gains(l, ea, ta), ev.key_gains(l, eb, tb)
    assert got.shape == single_a.shape == (len(pairs),)
    for p in range(len(pairs)):
        ya, yb, yab = x.copy(), x.copy(), x.copy()
        ya[:, l, ea[p]] = cols_a[p]
        yb[:, l, eb[p]] = cols_b[p]
        yab[:, l, ea[p]], yab[:, l, eb[p]] = cols_a[p], cols_b[p]
        g_a, g_b, g_ab = (t_x - latency(inst, y) for y in (ya, yb, yab))
        assert got[p] == pytest.approx(g_ab - g_a - g_b, abs=1e-12)
        assert single_a[p] == pytest.approx(g_a, abs=1e-12)
        assert single_b[p] == pytest.approx(g_b, abs=1e-12)
    assert ev.latency == pytest.approx(t_x, rel=1e-12)  # nothing applied


from slimcaching.objective import (LAYOUTS, available_kernels, member_index, set_latency,  # noqa: E402
                                   tau as tau_of)

KERNEL_CASES = [(k, lay) for k in ("numpy", "numba") for lay in LAYOUTS]


def _kernel_or_skip(kernel):
    if kernel not in available_kernels():
        pytest.skip(f"kernel {kernel!r} not installed (pip install 'slimcaching[fast]')")


@pytest.mark.parametrize("kernel,layout", KERNEL_CASES)
@settings(max_examples=150, deadline=None)
@given(seed=seeds)
def test_every_kernel_and_layout_equals_the_definition(kernel, layout, seed):
    _kernel_or_skip(kernel)
    d = random_instance_dict(seed)
    inst = instance_from_dict(d)
    cache = random_cache(d, np.random.default_rng(seed))
    pl = _placement(inst, cache)
    t = latency(inst, pl, kernel=kernel, layout=layout)
    assert t == pytest.approx(latency_from_definition(d, cache), rel=1e-12)
    # the same bits as the plain numpy evaluation over the routing table's own layout
    assert t == latency(inst, pl, kernel="numpy", layout="sk")
    ref = np.array([max(tau_of(inst, pl.x)[inst.set_user[s], inst.set_layer[s], e]
                        for e in inst.set_experts[s] if e >= 0) for s in range(inst.n_sets)])
    assert np.array_equal(set_latency(inst, tau_of(inst, pl.x, kernel=kernel), kernel=kernel, layout=layout), ref)


@pytest.mark.parametrize("kernel", ["numpy", "numba"])
@settings(max_examples=100, deadline=None)
@given(seed=seeds)
def test_evaluator_state_is_the_top_two_member_latencies(kernel, seed):
    """setlat / setlat2 are the largest and second largest member latency (with multiplicity)
    from the start and after every applied change, for either kernel."""
    _kernel_or_skip(kernel)
    inst = instance_from_dict(random_instance_dict(seed))
    rng = np.random.default_rng(seed)
    x = (rng.random((inst.N, inst.L, inst.max_experts)) < 0.3) & inst.valid_mask()[None]
    ev = IncrementalEvaluator(inst, Placement(x), kernel=kernel)

    def check():
        memb = np.sort(np.append(ev.tau.ravel(), 0.0)[member_index(inst)], axis=1)[:, ::-1]
        assert np.array_equal(ev.setlat, memb[:, 0])
        assert np.array_equal(ev.setlat2, memb[:, 1] if memb.shape[1] > 1 else np.zeros(inst.n_sets))
        assert np.array_equal(ev.tau, tau_of(inst, ev.x))

    check()
    valid = np.argwhere(np.broadcast_to(inst.valid_mask()[None], x.shape))
    for n, l, e in valid[rng.permutation(len(valid))][:6]:
        (ev.remove if ev.x[n, l, e] else ev.add)(int(n), int(l), int(e))
        check()


def test_unknown_kernel_and_layout_are_refused():
    inst = instance_from_dict(random_instance_dict(3))
    with pytest.raises(ValueError, match="kernel must be 'auto' or one of numpy, numba, got 'gpu'"):
        latency(inst, inst.empty_placement(), kernel="gpu")
    with pytest.raises(ValueError, match="layout must be 'auto' or one of ks, sk, got 'kk'"):
        latency(inst, inst.empty_placement(), layout="kk")


def test_batched_queries_in_chunks_equal_one_batch(monkeypatch):
    import slimcaching.objective as objective

    inst = instance_from_dict(random_instance_dict(11, max_layers=3, max_experts=5, max_users=3))
    rng = np.random.default_rng(11)
    x = (rng.random((inst.N, inst.L, inst.max_experts)) < 0.4) & inst.valid_mask()[None]
    ev = IncrementalEvaluator(inst, Placement(x))
    cand = np.argwhere(np.broadcast_to(inst.valid_mask()[None], x.shape))
    whole_g, whole_l = ev.gains(cand), ev.losses(cand)
    monkeypatch.setattr(objective, "_ENTRY_CHUNK", 3)
    assert np.array_equal(ev.gains(cand), whole_g)
    assert np.array_equal(ev.losses(cand), whole_l)


def _random_moves(inst, x, rng, count):
    """``count`` random moves (additions and removals of distinct elements) as the flat
    arrays of ``gains_of_many`` and as ``(add, remove)`` lists."""
    moves, move, el, added = [], [], [], []
    valid = np.argwhere(np.broadcast_to(inst.valid_mask()[None], x.shape))
    for i in range(count):
        pick = valid[rng.choice(len(valid), size=min(len(valid), int(rng.integers(1, 6))), replace=False)]
        add = [tuple(int(v) for v in p) for p in pick if not x[tuple(p)]]
        rem = [tuple(int(v) for v in p) for p in pick if x[tuple(p)]]
        moves.append((add, rem))
        for p in rem + add:
            move.append(i)
            el.append(p)
            added.append(p in add)
    return moves, np.array(move), np.array(el).reshape(-1, 3), np.array(added, dtype=bool)


@settings(max_examples=100, deadline=None)
@given(seed=seeds)
def test_many_moves_at_once_equal_gain_of(seed):
    import slimcaching.objective as objective

    inst = instance_from_dict(random_instance_dict(seed))
    rng = np.random.default_rng(seed)
    x = (rng.random((inst.N, inst.L, inst.max_experts)) < 0.3) & inst.valid_mask()[None]
    ev = IncrementalEvaluator(inst, Placement(x))
    moves, move, el, added = _random_moves(inst, x, rng, 20)
    ref = [ev.gain_of(add=a, remove=r) for a, r in moves]
    assert np.allclose(ev.gains_of_many(move, el, added), ref, rtol=1e-12, atol=1e-14)
    old = objective._ENTRY_CHUNK
    try:  # in chunks of (about) one move each
        objective._ENTRY_CHUNK = 1
        assert np.allclose(ev.gains_of_many(move, el, added), ref, rtol=1e-12, atol=1e-14)
    finally:
        objective._ENTRY_CHUNK = old
    assert np.array_equal(ev.x, x)  # nothing applied


def test_auto_kernel_compiles_only_for_large_instances(monkeypatch):
    """``kernel="auto"``: the environment variable wins; otherwise numba (when it works here) from
    AUTO_COMPILED_MEMBERS set members on, numpy below and when the size is unknown."""
    from slimcaching.objective import AUTO_COMPILED_MEMBERS, resolve_kernel, set_members

    monkeypatch.delenv("SLIMCACHING_KERNEL", raising=False)
    big = "numba" if "numba" in available_kernels() else "numpy"
    assert resolve_kernel("auto") == "numpy"
    assert resolve_kernel("auto", AUTO_COMPILED_MEMBERS - 1) == "numpy"
    assert resolve_kernel("auto", AUTO_COMPILED_MEMBERS) == big
    monkeypatch.setenv("SLIMCACHING_KERNEL", "numpy")
    assert resolve_kernel("auto", 10 * AUTO_COMPILED_MEMBERS) == "numpy"
    inst = instance_from_dict(random_instance_dict(3))
    assert set_members(inst) == sum(len([e for e in row if e >= 0]) for row in inst.set_experts)
