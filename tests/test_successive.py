"""Successive decomposition: exact on one node, exact tables, single-node contract, options."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from slimcaching.algorithms.bruteforce import brute_force
from slimcaching.algorithms import successive as successive_module
from slimcaching.algorithms.successive import (layer_table, node_order, solve_single_node, successive)
from slimcaching.cli import main as cli_main
from slimcaching.errors import InputError
from slimcaching.instances.generators import assemble, random_instance
from slimcaching.instances.validate import instance_from_dict
from slimcaching.objective import IncrementalEvaluator, latency

from reference import latency_from_definition, random_instance_dict


def _as_cache(inst, x):
    out = {name: set() for name in inst.node_names}
    for n, l, e in np.argwhere(x):
        out[inst.node_names[n]].add((int(l), int(e)))
    return out


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_single_node_equals_brute_force(seed):
    d = random_instance_dict(seed, max_nodes=1, max_cap=8, max_experts=5)
    inst = instance_from_dict(d)
    res = successive(inst)
    opt = brute_force(inst)
    assert res.feasible
    assert res.status == "optimal"
    assert res.latency == pytest.approx(opt.latency, abs=1e-12)
    assert res.latency == pytest.approx(latency_from_definition(d, _as_cache(inst, res.placement.x)), abs=1e-12)
    assert res.guarantee is not None


def _layer_value_from_definition(inst, tau0, n, l, A):
    """Extra reduction of caching the experts ``A`` of layer ``l`` at ``n`` (loops over rows)."""
    total = 0.0
    for s in range(inst.n_sets):
        if inst.set_layer[s] != l:
            continue
        u = inst.set_user[s]
        mem = [int(e) for e in inst.set_experts[s] if e >= 0]
        before = max(tau0[u, l, e] for e in mem)
        after = max(min(tau0[u, l, e], inst.latency[u, n, l]) if e in A else tau0[u, l, e] for e in mem)
        total += inst.coef[s] * (before - after)
    return total


@pytest.mark.parametrize("seed", range(6))
def test_enumerated_table_is_best_subset_of_each_size(seed):
    inst = random_instance(layers=2, experts=7, top_k=3, nodes=2, users=2, seed=seed)
    ev = IncrementalEvaluator(inst)
    ev.apply(add=[(1, 0, 0), (1, 0, 3), (1, 1, 2)])
    for l in range(2):
        tb = layer_table(inst, ev.tau, 0, l, cmax=7, layer_solver="enumerate")
        assert tb.method == "enumerate"
        for c in range(len(tb.h)):
            best = max(_layer_value_from_definition(inst, ev.tau, 0, l, set(A))
                       for A in itertools.combinations(range(7), c))
            assert tb.h[c] == pytest.approx(best, abs=1e-12)
            assert len(tb.sets[c]) <= c
            assert _layer_value_from_definition(inst, ev.tau, 0, l, set(tb.sets[c].tolist())) == \
                pytest.approx(tb.h[c], abs=1e-12)
        hs = layer_table(inst, ev.tau, 0, l, cmax=7, layer_solver="heuristic")
        assert hs.method == "heuristic"
        for c in range(len(hs.h)):
            assert hs.h[c] <= tb.h[c] + 1e-12
            assert _layer_value_from_definition(inst, ev.tau, 0, l, set(hs.sets[c].tolist())) == \
                pytest.approx(hs.h[c], abs=1e-12)


def _pair_instance():
    """Experts 0 and 1 are always co-activated; 2 and 3 are each alone and worth less than the pair."""
    sets = np.array([[0, 1], [2, -1], [3, -1]])
    p = np.array([0.6, 0.2, 0.2])
    return assemble(name="pair", experts=[4], expert_size=[1], top_k=[2], node_names=["a"], capacity=[2],
                    user_names=["u"], weight=np.ones(1), latency=np.full((1, 1, 1), 0.1),
                    cloud_latency=np.ones((1, 1)), routing=[[(sets, p)]])


@pytest.mark.parametrize("solver", ["enumerate", "heuristic"])
def test_coactivated_pair_is_found(solver):
    inst = _pair_instance()
    res = successive(inst, layer_solver=solver)
    assert sorted(map(tuple, res.placement.elements().tolist())) == [(0, 0, 0), (0, 0, 1)]
    assert res.reduction == pytest.approx(0.6 * 0.9)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6), exclude=st.booleans(), eps=st.sampled_from([None, 0.2]))
def test_solve_single_node_contract(seed, exclude, eps):
    d = random_instance_dict(seed, max_nodes=3, max_cap=6)
    inst = instance_from_dict(d)
    start = successive(inst).placement
    ev = IncrementalEvaluator(inst, start)
    snap = (ev.x.copy(), ev.tau.copy(), ev.setlat.copy(), ev.used.copy())
    n = seed % inst.N
    sol = solve_single_node(ev, n, exclude_current=exclude, eps=eps)
    assert np.array_equal(ev.x, snap[0]) and np.array_equal(ev.tau, snap[1])   # ev not mutated
    assert np.array_equal(ev.setlat, snap[2]) and np.array_equal(ev.used, snap[3])
    assert len(sol.layer_methods) == inst.L
    el = sol.elements
    assert np.all(el[:, 0] == n) if len(el) else True
    size = int(inst.expert_size[el[:, 1]].sum()) if len(el) else 0
    x_other = ev.x.copy()
    if exclude:
        x_other[n] = False
        assert size <= inst.capacity[n]
    else:
        assert size <= inst.capacity[n] - ev.used[n]
        assert not np.any(ev.x[el[:, 0], el[:, 1], el[:, 2]]) if len(el) else True
    x_new = x_other.copy()
    if len(el):
        x_new[el[:, 0], el[:, 1], el[:, 2]] = True
    realised = latency(inst, x_other) - latency(inst, x_new)
    assert sol.value == pytest.approx(realised, abs=1e-12)
    if exclude and sol.exact and eps is None:
        # exact: no cache of node n does better against the others
        cur = x_other.copy()
        cur[n] = ev.x[n]
        assert latency(inst, x_new) <= latency(inst, cur) + 1e-12


def test_solve_single_node_capacity_argument():
    inst = random_instance(layers=3, experts=6, top_k=2, nodes=2, users=2, seed=4)
    ev = IncrementalEvaluator(inst)
    for q in (0, 1, 3):
        sol = solve_single_node(ev, 0, capacity=q)
        assert len(sol.elements) <= q
        assert sol.exact and sol.info["capacity"] == q


def test_node_order_options():
    inst = random_instance(layers=2, experts=4, top_k=2, nodes=4, users=3, seed=2, reach=1.0)
    assert node_order(inst, "given") == [0, 1, 2, 3]
    mean = np.array([(inst.weight * inst.latency[:, n, :].mean(axis=1)).sum() for n in range(4)])
    assert node_order(inst, "latency") == list(np.argsort(mean, kind="stable"))
    assert node_order(inst, ["edge-3", "edge-1", 0, 2]) == [3, 1, 0, 2]
    with pytest.raises(InputError, match=r"--order: order must be one of greedy, latency, capacity, given"):
        node_order(inst, "fastest")
    with pytest.raises(InputError, match=r"--order: unknown node 'nope' in order"):
        node_order(inst, ["nope"])
    with pytest.raises(InputError, match=r"--order: order must list every node exactly once"):
        node_order(inst, [0, 1])
    res = successive(inst, order="capacity")
    assert res.info["order"] == [inst.node_names[i] for i in np.argsort(-inst.capacity, kind="stable")]


def test_bad_options():
    inst = random_instance(layers=1, experts=23, top_k=2, nodes=1, users=1, seed=0, capacity_fraction=0.5,
                           skew=0.0)
    with pytest.raises(InputError, match=r"--layer-solver: layer_solver must be one of auto, enumerate, heuristic"):
        successive(inst, layer_solver="exact")
    with pytest.raises(InputError, match=r"--max-enumerate: max_enumerate must be an integer in 0..22"):
        successive(inst, max_enumerate=30)
    with pytest.raises(InputError, match=r"--layer-solver: layer 0 has 23 useful experts at node 0"):
        successive(inst, layer_solver="enumerate")
    res = successive(inst)                                  # auto falls back to the heuristic
    assert res.info["nodes"][0]["layer_methods"] == ["heuristic"]
    assert res.status == "heuristic" and res.guarantee is None


def test_k1_layers_get_the_exact_modular_table_at_any_size():
    """K = 1: the layer gain is modular, so auto needs neither enumeration nor the heuristic."""
    inst = random_instance(layers=1, experts=23, top_k=1, nodes=1, users=1, seed=0, capacity_fraction=0.5,
                           skew=0.0)
    res = successive(inst)
    assert res.info["nodes"][0]["layer_methods"] == ["modular"]
    assert res.status == "optimal" and res.guarantee.startswith("R(alg) >= 1 R(opt) when one node")
    # the best c-set of a modular layer is the c heaviest experts; compare with enumeration where it fits
    small = random_instance(layers=2, experts=9, top_k=1, nodes=2, users=3, seed=4)
    ev = IncrementalEvaluator(small)
    ev.apply(add=[(1, 0, 2), (1, 1, 5)])
    for l in range(2):
        mod = successive_module._node_tables(small, ev.tau, 0, 9, "auto", 16)[l]
        enum = layer_table(small, ev.tau, 0, l, cmax=9, layer_solver="enumerate")
        assert mod.method == "modular" and mod.useful == enum.useful
        np.testing.assert_allclose(mod.h, enum.h, rtol=0, atol=1e-12)
        for c in range(len(mod.h)):
            assert _layer_value_from_definition(small, ev.tau, 0, l, set(mod.sets[c].tolist())) == \
                pytest.approx(mod.h[c], abs=1e-12)


def test_time_limit_returns_incumbent():
    inst = random_instance(layers=3, experts=6, top_k=2, nodes=3, users=2, seed=1)
    res = successive(inst, time_limit=1e-9)
    assert res.status == "time_limit" and res.feasible
    assert res.latency == pytest.approx(latency(inst, res.placement))


def test_cli_solve(tmp_path, capsys):
    inst = random_instance(layers=2, experts=4, top_k=2, nodes=2, users=2, seed=3)
    path = tmp_path / "inst.json"
    path.write_text(json.dumps(inst.to_dict()))
    out = tmp_path / "p.json"
    assert cli_main(["solve", str(path), "--algorithm", "successive", "--output", str(out),
                     "--param", "layer_solver=heuristic"]) == 0
    data = json.loads(out.read_text())
    assert data["algorithm"] == "successive" and data["params"]["layer_solver"] == "heuristic"
    assert cli_main(["solve", str(path), "--algorithm", "successive", "--param", "layer_solver=bogus"]) == 2
    assert "layer_solver must be one of" in capsys.readouterr().err
