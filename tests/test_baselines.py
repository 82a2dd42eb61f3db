"""Baselines, and the generic property of every algorithm of this family:
feasible, reported latency = evaluator's = the from-definition loop."""
from __future__ import annotations

import json

import numpy as np
import pytest

from slimcaching.algorithms import run
from slimcaching.algorithms.baselines import (activation_marginals, cloud, independent, independent_surrogate,
                                              popularity, random_placement)
from slimcaching.algorithms.greedy import greedy
from slimcaching.cli import main as cli_main
from slimcaching.instances.generators import random_instance
from slimcaching.instances.validate import instance_from_dict
from slimcaching.objective import evaluate
from slimcaching.result import Result

from reference import latency_from_definition, random_instance_dict

FAMILY = ["cloud", "random", "popularity", "independent", "greedy", "successive", "maxconv"]


def _cache(inst, placement):
    out = {name: set() for name in inst.node_names}
    for n, l, e in placement.elements():
        out[inst.node_names[n]].add((int(l), int(e)))
    return out


def test_every_algorithm_feasible_and_reports_the_evaluator_latency():
    for seed in range(250):
        d = random_instance_dict(seed)
        inst = instance_from_dict(d)
        ref_empty = latency_from_definition(d, {})
        for name in FAMILY:
            res = run(inst, name, seed=seed)
            assert isinstance(res, Result) and res.algorithm == name
            assert res.feasible and res.placement.is_feasible(inst), (seed, name)
            assert res.placement.x.shape == (inst.N, inst.L, inst.max_experts)
            assert not np.any(res.placement.x & ~inst.valid_mask()[None])
            ev = evaluate(inst, res.placement)
            assert res.latency == ev.latency and res.reduction == ev.reduction
            assert res.latency == pytest.approx(latency_from_definition(d, _cache(inst, res.placement)), abs=1e-12)
            assert res.empty_latency == pytest.approx(ref_empty, abs=1e-12)
            assert res.reduction >= -1e-12
            assert res.runtime_s >= 0 and res.seed == (seed if name != "random" else res.seed)


def test_cloud_is_empty():
    inst = random_instance(layers=2, experts=4, top_k=2, nodes=2, users=2, seed=0)
    res = cloud(inst)
    assert len(res.placement) == 0 and res.reduction == 0.0


def _maximal(inst, x):
    free = inst.capacity - (x.sum(axis=2) * inst.expert_size).sum(axis=1)
    for n in range(inst.N):
        for l in range(inst.L):
            for e in range(inst.experts[l]):
                if not x[n, l, e] and inst.expert_size[l] <= free[n]:
                    return False
    return True


@pytest.mark.parametrize("seed", range(5))
def test_random_is_seeded_and_maximal(seed):
    inst = random_instance(layers=3, experts=5, top_k=2, nodes=3, users=2, seed=seed, expert_size=[1, 2, 3])
    a, b = random_placement(inst, seed=seed), random_placement(inst, seed=seed)
    assert a.placement == b.placement and a.seed == seed and a.params["seed"] == seed
    assert _maximal(inst, a.placement.x)
    c = random_placement(inst)
    assert isinstance(c.seed, int)
    assert random_placement(inst, seed=c.seed).placement == c.placement
    others = {random_placement(inst, seed=s).placement.x.tobytes() for s in range(10)}
    assert len(others) > 1


def test_activation_marginals_from_definition():
    d = random_instance_dict(11, max_k=3, max_experts=5)
    inst = instance_from_dict(d)
    q = activation_marginals(inst)
    for u, us in enumerate(d["users"]):
        for l, sets in enumerate(us["routing"]):
            for e in range(d["layers"][l]["experts"]):
                assert q[u, l, e] == pytest.approx(sum(s["p"] for s in sets if e in s["experts"]))


def test_popularity_single_node_equal_sizes_takes_top_experts():
    inst = random_instance(layers=3, experts=6, top_k=2, nodes=1, users=3, seed=4, capacity_fraction=0.3)
    res = popularity(inst)
    q = activation_marginals(inst)
    pop = np.einsum("u,ule->le", inst.weight, q)
    k = int(inst.capacity[0])
    chosen = {(int(l), int(e)) for _, l, e in res.placement.elements()}
    assert len(chosen) == k
    threshold = np.sort(pop.ravel())[::-1][k - 1]
    assert all(pop[l, e] >= threshold - 1e-15 for l, e in chosen)


def test_popularity_fills_fastest_node_with_most_popular_first():
    inst = random_instance(layers=2, experts=8, top_k=2, nodes=3, users=2, seed=6, reach=1.0,
                           capacity_fraction=0.2)
    res = popularity(inst)
    x = res.placement.x
    assert _maximal(inst, x)
    from slimcaching.algorithms.successive import node_order

    first = node_order(inst, "latency")[0]
    q = np.einsum("u,ule->le", inst.weight, activation_marginals(inst))
    top = np.argsort(-q.ravel(), kind="stable")[: int(inst.capacity[first])]
    assert set(map(int, top)) == set(int(l * inst.max_experts + e) for l, e in np.argwhere(x[first]))
    # a second node prefers experts not cached on the first
    second = node_order(inst, "latency")[1]
    assert not np.any(x[first] & x[second])


def test_independent_equals_greedy_when_k_is_1():
    inst = random_instance(layers=3, experts=6, top_k=1, nodes=2, users=3, seed=2)
    a = independent(inst)
    b = greedy(inst)
    assert a.placement == b.placement and a.latency == b.latency


def test_independent_is_blind_to_coactivation():
    d = random_instance_dict(5, max_k=3)
    inst = instance_from_dict(d)
    sur = independent_surrogate(inst)
    assert sur.max_set_size == 1 and sur.N == inst.N and np.array_equal(sur.capacity, inst.capacity)
    res = independent(inst)
    assert res.latency == pytest.approx(latency_from_definition(d, _cache(inst, res.placement)), abs=1e-12)
    assert "surrogate_reduction" in res.info


@pytest.mark.parametrize("name", FAMILY)
def test_cli_solve(tmp_path, name):
    inst = random_instance(layers=2, experts=4, top_k=2, nodes=2, users=2, seed=3)
    path = tmp_path / "inst.json"
    path.write_text(json.dumps(inst.to_dict()))
    out = tmp_path / "p.json"
    assert cli_main(["solve", str(path), "--algorithm", name, "--seed", "4", "--output", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["algorithm"] == name and data["latency"] == pytest.approx(
        evaluate(inst, run(inst, name, seed=4).placement).latency)


@pytest.mark.parametrize("name", FAMILY)
def test_unknown_parameter_is_an_input_error(tmp_path, name, capsys):
    from slimcaching.errors import InputError

    inst = random_instance(layers=1, experts=3, top_k=1, nodes=1, users=1, seed=0)
    with pytest.raises(InputError, match=rf"--param: {name} does not take bogus; valid parameters: "):
        run(inst, name, bogus=1)
    path = tmp_path / "inst.json"
    path.write_text(json.dumps(inst.to_dict()))
    assert cli_main(["solve", str(path), "--algorithm", name, "--param", "bogus=1"]) == 2
    assert "does not take bogus" in capsys.readouterr().err
