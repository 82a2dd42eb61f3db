"""(max,+) convolutions: exact DP = brute force, approximate >= (1 - eps) exact, concave merge exact."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from slimcaching.algorithms.bruteforce import brute_force
from slimcaching.algorithms.maxconv import (approx_tables_dp, concave_tables_merge, exact_tables_dp, is_concave,
                                            maxconv, solve_tables)
from slimcaching.errors import InputError
from slimcaching.instances.validate import instance_from_dict

from reference import random_instance_dict


def random_tables(rng: np.random.Generator, L: int, mmax: int, concave: bool = False):
    tables = []
    for _ in range(L):
        m = int(rng.integers(0, mmax + 1))
        inc = rng.exponential(1.0, size=m) * (rng.random(m) < 0.8)
        if concave:
            inc = np.sort(inc)[::-1]
        tables.append(np.concatenate([[0.0], np.cumsum(inc)]))
    return tables


def brute_tables(weights, tables, Q):
    best = 0.0
    for counts in itertools.product(*[range(len(h)) for h in tables]):
        if sum(c * w for c, w in zip(counts, weights)) <= Q:
            best = max(best, sum(h[c] for h, c in zip(tables, counts)))
    return best


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6), L=st.integers(1, 4), Q=st.integers(0, 25))
def test_exact_dp_equals_brute_force(seed, L, Q):
    rng = np.random.default_rng(seed)
    tables = random_tables(rng, L, 4)
    w = rng.integers(1, 6, size=L)
    sol = exact_tables_dp(w, tables, Q)
    assert sol.weight <= Q
    assert sol.value == pytest.approx(sum(tables[l][c] for l, c in enumerate(sol.counts)))
    assert sol.value == pytest.approx(brute_tables(w, tables, Q), abs=1e-12)


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 10**6), L=st.integers(1, 8), eps=st.sampled_from([0.5, 0.3, 0.1, 0.05, 0.01]),
       Q=st.integers(0, 400))
def test_approx_at_least_one_minus_eps_of_exact(seed, L, eps, Q):
    rng = np.random.default_rng(seed)
    tables = random_tables(rng, L, 8)
    w = rng.integers(1, 40, size=L)
    ex = exact_tables_dp(w, tables, Q)
    ap = approx_tables_dp(w, tables, Q, eps)
    assert ap.weight <= Q
    assert ap.value <= ex.value + 1e-9
    assert ap.value >= (1 - eps) * ex.value - 1e-12


def test_approx_is_not_trivially_exact():
    """With a coarse eps the scaled DP does lose value on some inputs (the test above can fail)."""
    rng = np.random.default_rng(7)
    lost = 0
    for _ in range(200):
        tables = random_tables(rng, 6, 6)
        w = rng.integers(1, 30, size=6)
        Q = int(rng.integers(10, 100))
        lost += approx_tables_dp(w, tables, Q, 0.5).value < exact_tables_dp(w, tables, Q).value - 1e-12
    assert lost > 0


def test_approx_state_count_independent_of_capacity():
    rng = np.random.default_rng(3)
    tables = random_tables(rng, 10, 8)
    w = rng.integers(1, 5, size=10)
    a = approx_tables_dp(w * 1000, tables, 10**9, 0.1)
    b = approx_tables_dp(w * 1000, tables, 10**12, 0.1)
    assert a.info["states"] == b.info["states"] <= 10 * 10 / 0.1 + 1
    assert a.value == b.value == pytest.approx(sum(h[-1] for h in tables))


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10**6), L=st.integers(1, 6), Q=st.integers(0, 30), w=st.integers(1, 4))
def test_concave_merge_is_exact(seed, L, Q, w):
    rng = np.random.default_rng(seed)
    tables = random_tables(rng, L, 6, concave=True)
    assert all(is_concave(h) for h in tables)
    mg = concave_tables_merge([w] * L, tables, Q)
    assert mg.weight <= Q
    assert mg.value == pytest.approx(exact_tables_dp([w] * L, tables, Q).value, abs=1e-12)
    assert solve_tables([w] * L, tables, Q).method == "concave"


def test_concave_merge_rejects_non_concave():
    with pytest.raises(ValueError, match="equal weights and concave"):
        concave_tables_merge([1, 2], [np.array([0.0, 1.0]), np.array([0.0, 1.0])], 5)
    with pytest.raises(ValueError, match="equal weights and concave"):
        concave_tables_merge([1], [np.array([0.0, 1.0, 3.0])], 5)


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
