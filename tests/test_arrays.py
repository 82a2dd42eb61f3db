"""The array form of the level model and its direct HiGHS solve, against Pyomo, brute force and the evaluator."""
from __future__ import annotations

import numpy as np
import pytest

from reference import random_instance_dict
from slimcaching.algorithms.bruteforce import brute_force
from slimcaching.formulations import lp_bound
from slimcaching.formulations.arrays import arrays_placement, build_level_arrays, layer_latencies, start_vector
from slimcaching.formulations.assignment import support
from slimcaching.formulations.direct import safe_lp_bound, solve_arrays
from slimcaching.instances.model import Placement
from slimcaching.instances.validate import instance_from_dict
from slimcaching.objective import latency

RTOL = 1e-7


def _instance(seed: int):
    return instance_from_dict(random_instance_dict(seed, max_layers=3, max_experts=4, max_k=3, max_nodes=3,
                                                   max_users=3, max_cap=6))


def _random_feasible(inst, rng) -> Placement:
    x = np.zeros((inst.N, inst.L, inst.max_experts), dtype=bool)
    for n in range(inst.N):
        left = int(inst.capacity[n])
        for l, e in rng.permutation([(l, e) for l in range(inst.L) for e in range(inst.experts[l])]):
            if inst.expert_size[l] <= left and rng.random() < 0.6:
                x[n, l, e] = True
                left -= int(inst.expert_size[l])
    return Placement(x)


@pytest.mark.parametrize("seed", range(30))
def test_full_model_equals_pyomo_lp_and_brute_force(seed):
    inst = _instance(seed)
    plain = build_level_arrays(inst, tightenings=())
    if plain.n_x == 0:
        return
    lp = solve_arrays(plain, integer=False)
    assert lp.objective == pytest.approx(lp_bound(inst, "level"), rel=1e-9, abs=1e-12)
    assert lp.safe_bound <= lp.objective * (1 + 1e-12) + 1e-15
    assert lp.safe_bound == pytest.approx(lp.objective, rel=1e-9)
    tight = build_level_arrays(inst)
    mip = solve_arrays(tight, integer=True)
    placement = arrays_placement(tight, mip.col_value)
    opt = brute_force(inst).latency
    assert placement.is_feasible(inst)
    assert latency(inst, placement) == pytest.approx(opt, rel=RTOL)
    assert mip.objective == pytest.approx(opt, rel=RTOL)


@pytest.mark.parametrize("seed", range(30))
def test_sub_models_are_the_best_completion_of_their_fixed_part(seed):
    """Random fixed parts (layer windows, node subsets): the start vector's objective is T(x), the
    sub-MILP optimum re-evaluates exactly and is never worse than the start."""
    inst = _instance(seed)
    sup = support(inst)
    rng = np.random.default_rng(seed)
    for trial in range(4):
        x = _random_feasible(inst, rng)
        if trial % 2:
            layers = rng.random(inst.L) < 0.5
            free = layers[sup.elements[:, 1]]
        else:
            layers = np.ones(inst.L, dtype=bool)
            free = np.isin(sup.elements[:, 0], rng.choice(inst.N, size=min(2, inst.N), replace=False))
        m = build_level_arrays(inst, layers=layers, free=free, x_fixed=x.x)
        v = start_vector(m, x)
        assert m.latency(m.offset + m.obj @ v) == pytest.approx(latency(inst, x), rel=1e-12, abs=1e-15)
        assert np.all(m.A.matvec(v) <= m.row_hi + 1e-12)
        if m.n_x == 0:
            continue
        r = solve_arrays(m, integer=True, cutoff=latency(inst, x) * (1 + 1e-9))
        if r.col_value is None:  # nothing better than the start exists
            assert r.status == "Infeasible"
            continue
        p = arrays_placement(m, r.col_value, x_fixed=x.x)
        assert p.is_feasible(inst)
        assert latency(inst, p) == pytest.approx(r.objective, rel=RTOL)
        assert latency(inst, p) <= latency(inst, x) * (1 + 1e-9)
        assert np.array_equal(p.x[~np.isin(np.arange(inst.N), np.unique(sup.elements[free, 0]))],
                              x.x[~np.isin(np.arange(inst.N), np.unique(sup.elements[free, 0]))])


@pytest.mark.parametrize("seed", range(10))
def test_safe_bound_holds_for_any_dual_vector(seed):
    inst = _instance(seed)
    m = build_level_arrays(inst)
    if m.n_x == 0:
        return
    lp = solve_arrays(m, integer=False)
    rng = np.random.default_rng(seed)
    for scale in (1e-3, 1e-1, 10.0):
        y = lp.row_dual + scale * rng.normal(size=len(lp.row_dual)) * np.abs(lp.row_dual).max()
        assert safe_lp_bound(m, y) <= lp.objective * (1 + 1e-12) + 1e-15


def test_layer_latencies_sum_to_the_latency():
    inst = _instance(4)
    x = _random_feasible(inst, np.random.default_rng(0))
    assert layer_latencies(inst, x.x).sum() == pytest.approx(latency(inst, x), rel=1e-12)
