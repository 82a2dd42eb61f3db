"""maxconv: the successive decomposition with approximate (max,+) convolutions, within eps of the optimum."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from slimcaching.algorithms.bruteforce import brute_force
from slimcaching.algorithms.knapsack import approx_tables_dp
from slimcaching.algorithms.maxconv import maxconv
from slimcaching.errors import InputError
from slimcaching.instances.validate import instance_from_dict

from reference import random_instance_dict


@pytest.mark.parametrize("eps", [0.0, 1.0, -0.2, 2])
def test_bad_eps(eps):
    with pytest.raises(InputError, match=r"eps must satisfy 0 < eps < 1"):
        approx_tables_dp([1], [np.array([0.0, 1.0])], 3, eps)
    inst = instance_from_dict(random_instance_dict(1))
    with pytest.raises(InputError, match=r"--eps: eps must satisfy 0 < eps < 1"):
        maxconv(inst, eps=eps)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6), eps=st.sampled_from([0.5, 0.2, 0.05]))
def test_maxconv_single_node_within_eps_of_optimum(seed, eps):
    inst = instance_from_dict(random_instance_dict(seed, max_nodes=1, max_cap=8))
    opt = brute_force(inst)
    res = maxconv(inst, eps=eps)
    assert res.feasible
    assert res.reduction >= (1 - eps) * opt.reduction - 1e-12
    assert res.reduction <= opt.reduction + 1e-12


def test_maxconv_uses_approximation_on_large_capacities():
    from slimcaching.instances.generators import random_instance

    inst = random_instance(layers=6, experts=4, top_k=2, nodes=1, users=2, seed=5,
                           expert_size=[100003, 200003, 150001, 120011, 99991, 170003])
    res = maxconv(inst, eps=0.1)
    assert res.info["nodes"][0]["dp"] == "approx"
    assert res.guarantee is not None and "0.9" in res.guarantee
    from slimcaching.algorithms.successive import successive

    ref = successive(inst)
    assert ref.status == "optimal"
    assert res.reduction >= 0.9 * ref.reduction - 1e-12


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10**6), eps=st.sampled_from([0.3, 0.1, 0.05]))
def test_single_node_value_within_eps_of_exact_dp_on_large_capacities(seed, eps):
    """Instance level, with capacities so large that the scaled DP (not the exact fallback) runs."""
    from slimcaching.algorithms.successive import solve_single_node, successive
    from slimcaching.instances.generators import random_instance
    from slimcaching.objective import IncrementalEvaluator

    rng = np.random.default_rng(seed)
    sizes = rng.integers(50_000, 100_000, size=4)
    sizes[0] = 50_021                                     # prime: gcd 1
    inst = random_instance(layers=4, experts=5, top_k=2, nodes=3, users=3, seed=seed, expert_size=sizes,
                           capacity_fraction=0.3)
    ev = IncrementalEvaluator(inst, successive(inst, order="given").placement)
    n = seed % inst.N
    ex = solve_single_node(ev, n)
    ap = solve_single_node(ev, n, eps=eps)
    assert ap.info["dp"] in ("approx", "concave")
    assert ap.value >= (1 - eps) * ex.value - 1e-12
    assert ap.value <= ex.value + 1e-12
    assert int(inst.expert_size[ap.elements[:, 1]].sum()) <= inst.capacity[n]
