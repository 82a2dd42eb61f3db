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


def _layers(seeds):
    """``(instance, hi, layer)`` for every layer of the random instances of ``seeds``."""
    for seed in seeds:
        inst = _instance(seed)
        hi = _ranges(inst, tightened_capacities(inst, tuple(DEFAULT_TIGHTENINGS)))
        for layer in range(inst.L):
            yield inst, hi, layer


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
    for inst, hi, layer in _layers(range(40)):
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
    assert count_table(inst, 0, hi, max_work=math.inf) is None  # no limit does not make a table possible


def _at_most(ref: dict, k: tuple) -> float:
    """``G(k)``: the least brute-force latency over count vectors ``<= k``."""
    return min((v for kk, v in ref.items() if all(a <= b for a, b in zip(kk, k))), default=math.inf)


@pytest.mark.parametrize("scale", [1.0, 1e-9, 1e3])
@pytest.mark.parametrize("seed", range(40))
def test_node_set_scan_matches_brute_force(seed, scale, node_sets):
    """Kept vectors: ``g_l(k)`` exactly, with a pattern of exactly these counts; the others dominated."""
    from slimcaching.formulations.count_tables import _singletons

    inst = _instance(seed, scale)
    hi = _ranges(inst, tightened_capacities(inst, tuple(DEFAULT_TIGHTENINGS)))
    for layer in range(inst.L):
        table = count_table(inst, layer, hi[layer])
        assert table.dominance != _singletons(inst, layer)
        ref = _brute(inst, layer, hi[layer])
        for k in itertools.product(*[range(h + 1) for h in hi[layer]]):
            if math.isfinite(table.cost[k]):
                assert table.cost[k] == pytest.approx(ref[k], rel=1e-9, abs=0)
                assert table.cost[k] == pytest.approx(_at_most(ref, k), rel=1e-9, abs=0)
                x = np.zeros((inst.N, inst.L, inst.max_experts), dtype=bool)
                x[:, layer] = table.pattern(k, inst.max_experts)
                assert tuple(x[:, layer].sum(axis=1)) == k
                assert layer_latencies(inst, x)[layer] == pytest.approx(table.cost[k], rel=1e-9, abs=0)
            else:  # some vector one count below is no worse
                below = [tuple(v - (m == n) for m, v in enumerate(k)) for n in range(len(k)) if k[n] > 0]
                assert below and min(_at_most(ref, b) for b in below) <= _at_most(ref, k) * (1 + 1e-9)
        assert table.work == table_work(inst, layer, hi[layer])


def test_node_set_scan_keeps_and_drops_vectors_and_splits_blocks_exactly(node_sets, monkeypatch):
    """Not vacuous: over these instances both kept and dominated vectors occur, and a product split into
    one-column blocks gives the same table."""
    from slimcaching.formulations import count_tables
    from slimcaching.formulations.count_tables import _singletons

    kept = dropped = splits = 0
    for i, (inst, hi, layer) in enumerate(_layers(range(40))):
        if _singletons(inst, layer):
            continue
        table = count_table(inst, layer, hi[layer])
        kept += int(np.isfinite(table.cost).sum())
        dropped += int(np.isinf(table.cost).sum())
        if i % 3 == 0:
            with monkeypatch.context() as m:
                m.setattr(count_tables, "_BLOCK", 1)
                split = count_table(inst, layer, hi[layer])
            np.testing.assert_array_equal(split.cost, table.cost)
            splits += 1
    assert kept >= 100 and dropped >= 100 and splits >= 5


@pytest.mark.slow
def test_node_set_scan_on_the_four_shared_nodes_of_the_mixtral_wifi_jetson_file():
    """At real scale (8 experts, 4 shared nodes, 3 users: 43 million patterns): a sample of kept vectors
    equals the count-restricted level MILP, and no dominated vector's MILP is below the table's least
    latency at a vector one count below."""
    from slimcaching.formulations.enumeration import _CountPricer
    from slimcaching.instances.io import read_instance

    inst = read_instance("instances/mixed-precision/mixed-mixtral-8x7b-wifi-jetson.json")
    cap = tightened_capacities(inst, tuple(DEFAULT_TIGHTENINGS))
    hi = _ranges(inst, cap)
    layer = 3
    table = count_table(inst, layer, hi[layer])
    assert table.dominance and table.work == 9 ** 8
    least = table.cost.copy()
    for n in range(inst.N):
        least = np.minimum.accumulate(least, axis=n)
    pricer = _CountPricer(inst, layer, cap, DEFAULT_TIGHTENINGS)
    rng = np.random.default_rng(0)
    grid = np.array(list(itertools.product(*[range(h + 1) for h in hi[layer]])))
    finite = np.isfinite(table.cost.reshape(-1))
    for i in np.concatenate([rng.choice(np.flatnonzero(finite), 12, replace=False),
                             rng.choice(np.flatnonzero(~finite), 12, replace=False)]):
        k = tuple(int(v) for v in grid[i])
        pricer.set_counts(np.array(k), np.array(k))
        g, pattern = pricer.below(math.inf, None)
        assert pattern is not None  # solved to optimality
        if finite[i]:
            assert table.cost[k] == pytest.approx(g, rel=1e-9, abs=0)
        else:
            below = [tuple(v - (m == n) for m, v in enumerate(k)) for n in range(len(k)) if k[n] > 0]
            assert min(least[b] for b in below) <= g * (1 + 1e-9)


def test_forced_scans_agree_where_they_apply():
    """``scan="masks"`` and ``"node-sets"`` on every layer (top-1 ones too) give the same least latency at
    every count vector, a past deadline gives no node-set table, ``"dp"`` builds no table for a top-2
    layer, and an unknown scan is refused."""
    from slimcaching.formulations.count_tables import _singletons

    top2 = 0
    for inst, hi, layer in _layers(range(0, 40, 4)):
        masks = count_table(inst, layer, hi[layer], scan="masks")
        sets = count_table(inst, layer, hi[layer], scan="node-sets")
        assert not masks.dominance and sets.dominance
        assert count_table(inst, layer, hi[layer], scan="node-sets", deadline=time.perf_counter() - 1) is None
        least = masks.cost.copy()
        for n in range(inst.N):
            least = np.minimum.accumulate(least, axis=n)
        kept = np.isfinite(sets.cost)
        np.testing.assert_allclose(sets.cost[kept], least[kept], rtol=1e-9, atol=0)
        if not _singletons(inst, layer):
            top2 += 1
            assert count_table(inst, layer, hi[layer], scan="dp") is None
    assert top2 >= 5
    with pytest.raises(ValueError, match="scan must be one of"):
        table_work(inst, 0, hi[0], scan="bitmask")
