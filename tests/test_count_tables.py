"""Exact count tables: every ``g_l(k)`` equal to brute force over the layer's placements."""
from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest

from reference import random_instance_dict, scale_latencies
from slimcaching.formulations.arrays import layer_latencies
from slimcaching.formulations.assignment import support
from slimcaching.formulations.count_tables import count_table, table_work
from slimcaching.formulations.enumeration import _ranges
from slimcaching.formulations.tightenings import DEFAULT_TIGHTENINGS, tightened_capacities
from slimcaching.instances.validate import instance_from_dict


def _instance(seed: int, scale: float = 1.0):
    d = random_instance_dict(seed, max_layers=2, max_experts=5, max_k=3, max_nodes=4, max_users=3, max_cap=8)
    return instance_from_dict(scale_latencies(d, scale) if scale != 1.0 else d)


def _brute(inst, layer: int, hi: np.ndarray) -> dict:
    """``{k: g_l(k)}`` over every subset of the layer's useful elements."""
    el = support(inst).elements
    mine = el[el[:, 1] == layer]
    best: dict = {}
    for bits in itertools.product([False, True], repeat=len(mine)):
        x = np.zeros((inst.N, inst.L, inst.max_experts), dtype=bool)
        chosen = mine[np.array(bits, dtype=bool)]
        x[chosen[:, 0], chosen[:, 1], chosen[:, 2]] = True
        k = tuple(int(v) for v in x[:, layer].sum(axis=1))
        if all(k[n] <= hi[n] for n in range(inst.N)):
            best[k] = min(best.get(k, math.inf), float(layer_latencies(inst, x)[layer]))
    return best


@pytest.mark.parametrize("scale", [1.0, 1e-9, 1e3])
@pytest.mark.parametrize("seed", range(40))
def test_every_count_vector_matches_brute_force(seed, scale):
    inst = _instance(seed, scale)
    hi = _ranges(inst, tightened_capacities(inst, tuple(DEFAULT_TIGHTENINGS)))
    for layer in range(inst.L):
        table = count_table(inst, layer, hi[layer])
        ref = _brute(inst, layer, hi[layer])
        assert table.cost.shape == tuple(hi[layer] + 1)
        for k in itertools.product(*[range(h + 1) for h in hi[layer]]):
            if k not in ref:
                assert table.cost[k] == math.inf
                continue
            assert table.cost[k] == pytest.approx(ref[k], rel=1e-9, abs=0)
            # the stored pattern has exactly these counts and this latency
            x = np.zeros((inst.N, inst.L, inst.max_experts), dtype=bool)
            x[:, layer] = table.pattern(k, inst.max_experts)
            assert tuple(x[:, layer].sum(axis=1)) == k
            assert layer_latencies(inst, x)[layer] == pytest.approx(table.cost[k], rel=1e-9, abs=0)
        assert table.work == table_work(inst, layer, hi[layer])


def test_both_methods_and_private_nodes_are_exercised():
    """The brute-force comparison above covers the top-1 dynamic programme and the mask scan, and the
    scan's per-user minimisation over private nodes."""
    from slimcaching.formulations.count_tables import _layer_data, _singletons

    singleton = scanned_with_private = 0
    for seed in range(40):
        inst = _instance(seed)
        hi = _ranges(inst, tightened_capacities(inst, tuple(DEFAULT_TIGHTENINGS)))
        for layer in range(inst.L):
            if _singletons(inst, layer):
                singleton += 1
                continue
            _, _, shared, private, _ = _layer_data(inst, layer, hi[layer])
            scanned_with_private += len(private) > 0 and len(shared) > 0
    assert singleton >= 10 and scanned_with_private >= 5


@pytest.mark.parametrize("seed", [13, 33, 99])
def test_top1_tables_on_wide_layers(seed):
    """15-16 experts, top-1: the dynamic programme, exact against brute force (12-16 useful elements)."""
    d = random_instance_dict(seed, max_layers=1, max_experts=16, max_k=1, max_nodes=3, max_users=3, max_cap=12)
    inst = instance_from_dict(d)
    assert inst.experts[0] >= 11 and inst.N >= 2
    hi = _ranges(inst, tightened_capacities(inst, tuple(DEFAULT_TIGHTENINGS)))
    table = count_table(inst, 0, hi[0])
    ref = _brute(inst, 0, hi[0])
    for k in itertools.product(*[range(h + 1) for h in hi[0]]):
        assert table.cost[k] == pytest.approx(ref.get(k, math.inf), rel=1e-9, abs=0)
        if k in ref:
            x = np.zeros((inst.N, inst.L, inst.max_experts), dtype=bool)
            x[:, 0] = table.pattern(k, inst.max_experts)
            assert tuple(x[:, 0].sum(axis=1)) == k
            assert layer_latencies(inst, x)[0] == pytest.approx(ref[k], rel=1e-9, abs=0)


def test_limits_give_no_table():
    inst = _instance(3)
    hi = _ranges(inst, tightened_capacities(inst, tuple(DEFAULT_TIGHTENINGS)))[0]
    assert count_table(inst, 0, hi, max_work=table_work(inst, 0, hi) - 1) is None
    assert count_table(inst, 0, hi, deadline=time.perf_counter() - 1) is None
    assert count_table(inst, 0, hi, max_work=table_work(inst, 0, hi)) is not None


def test_no_table_beyond_the_bitmask_width():
    """Patterns are int64 bitmasks: a top-1 layer of 69 experts gets no table (its vectors get MILPs)."""
    inst = instance_from_dict(random_instance_dict(0, max_layers=1, max_experts=80, max_k=1, max_nodes=2,
                                                   max_users=2, max_cap=4))
    assert inst.experts[0] > 62
    hi = _ranges(inst, tightened_capacities(inst, tuple(DEFAULT_TIGHTENINGS)))[0]
    assert table_work(inst, 0, hi) == math.inf and count_table(inst, 0, hi) is None
