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


def test_private_nodes_are_exercised():
    """The per-user minimisation over private nodes is not vacuous on these instances."""
    from slimcaching.formulations.count_tables import _layer_data

    privates = 0
    for seed in range(40):
        inst = _instance(seed)
        hi = _ranges(inst, tightened_capacities(inst, tuple(DEFAULT_TIGHTENINGS)))
        for layer in range(inst.L):
            data = _layer_data(inst, layer, hi[layer])
            privates += len(data[3]) > 0 and len(data[2]) > 0
    assert privates >= 5


def test_limits_give_no_table():
    inst = _instance(3)
    hi = _ranges(inst, tightened_capacities(inst, tuple(DEFAULT_TIGHTENINGS)))[0]
    assert count_table(inst, 0, hi, max_work=table_work(inst, 0, hi) - 1) is None
    assert count_table(inst, 0, hi, deadline=time.perf_counter() - 1) is None
    assert count_table(inst, 0, hi, max_work=table_work(inst, 0, hi)) is not None
