"""(max,+) merges of per-layer tables: exact DP = brute force, approximate >= (1 - eps) exact, concave merge exact."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from slimcaching.algorithms.knapsack import (approx_tables_dp, concave_tables_merge, exact_tables_dp, is_concave,
                                             solve_tables)


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


def test_exact_dp_stops_at_its_deadline_and_equals_itself_without_one():
    """A capacity in the millions (mixed precision, gcd 1 KiB): the DP checks the deadline per layer."""
    import time

    from slimcaching.algorithms.knapsack import exact_tables_dp, solve_tables

    rng = np.random.default_rng(0)
    w = rng.integers(40_000, 180_000, size=6)
    hs = [np.concatenate([[0.0], np.cumsum(rng.random(8))]) for _ in range(6)]
    Q = 2_000_000
    assert exact_tables_dp(w, hs, Q, deadline=time.perf_counter() - 1) is None
    assert solve_tables(w, hs, Q, None, time.perf_counter() - 1) is None
    full = exact_tables_dp(w, hs, Q, deadline=time.perf_counter() + 3600)
    assert full is not None and full.value == exact_tables_dp(w, hs, Q).value
    assert int((full.counts * w).sum()) <= Q


# ------------------------------------------------------------ the chain heuristic against its reference
def _chain_input(rng: np.random.Generator, r: int, K: int, m: int, levels: int):
    """Rows of a layer as ``layer_table`` hands them to the chain: members sorted by decreasing value.

    ``levels`` small: coefficients and latencies from a few values, so pooled
    gains tie exactly and the tie-breaks are exercised."""
    loc = np.stack([rng.choice(m, size=K, replace=False) for _ in range(r)]) if r else np.zeros((0, K), np.int64)
    k = rng.integers(1, K + 1, size=r)
    imp = np.arange(K)[None, :] < k[:, None]
    v = np.sort(rng.integers(2, 2 + levels, size=(r, K)).astype(float), axis=1)[:, ::-1]
    tn = np.ones((r, 1))
    vals = np.concatenate([np.where(imp, v, tn), tn], axis=1)
    coef = rng.integers(1, levels + 1, size=r) / levels
    return loc.astype(np.int64), imp, vals, coef, np.arange(100, 100 + m, dtype=np.int64)


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 10**6), r=st.integers(0, 60), K=st.integers(1, 5), m=st.integers(5, 20),
       levels=st.sampled_from([1, 2, 3, 1000]), cmax=st.integers(1, 25), max_rows=st.sampled_from([None, 7]))
def test_compiled_chain_equals_the_numpy_steps(seed, r, K, m, levels, cmax, max_rows):
    """The incremental compiled chain makes the numpy steps' choices, bit for bit, exact ties included."""
    pytest.importorskip("numba")
    from slimcaching.algorithms.knapsack import _heuristic_chain

    args = _chain_input(np.random.default_rng(seed), r, K, m, levels)
    a = _heuristic_chain(*args, cmax, max_rows=max_rows, kernel="numba")
    b = _heuristic_chain(*args, cmax, max_rows=max_rows, kernel="numpy")
    assert np.array_equal(a.h, b.h)
    assert len(a.sets) == len(b.sets) and all(np.array_equal(x, y) for x, y in zip(a.sets, b.sets))


SMALL_SUITE = sorted((Path(__file__).resolve().parents[1] / "instances" / "small").glob("small-*.json"))


@pytest.mark.parametrize("algorithm", ["successive", "cyclic"])
def test_compiled_chain_places_as_the_numpy_steps_on_the_small_suite(monkeypatch, algorithm):
    """``layer_solver="heuristic"`` (every table by the chain) on the shipped small suite: the same
    placements with ``SLIMCACHING_KERNEL=numba`` as with numpy."""
    pytest.importorskip("numba")
    from slimcaching.algorithms import run
    from slimcaching.instances.io import read_instance

    insts = [read_instance(f) for f in SMALL_SUITE]
    placed = {}
    for kernel in ("numba", "numpy"):
        monkeypatch.setenv("SLIMCACHING_KERNEL", kernel)
        placed[kernel] = [run(i, algorithm, seed=0, layer_solver="heuristic") for i in insts]
    for i, a, b in zip(insts, placed["numba"], placed["numpy"]):
        assert np.array_equal(a.placement.x, b.placement.x), i.name
        assert a.latency == b.latency


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6), L=st.integers(1, 6), Q=st.integers(0, 40), ties=st.booleans())
def test_compiled_dp_equals_the_numpy_dp(seed, L, Q, ties):
    """Same counts and value, bit for bit (tables with equal entries exercise the tie-breaks)."""
    pytest.importorskip("numba")
    rng = np.random.default_rng(seed)
    tables = random_tables(rng, L, 6)
    if ties:
        tables = [np.round(h) for h in tables]
    weights = [int(v) for v in rng.integers(1, 5, size=L)]
    a = exact_tables_dp(weights, tables, Q, kernel="numba")
    b = exact_tables_dp(weights, tables, Q, kernel="numpy")
    assert np.array_equal(a.counts, b.counts) and a.value == b.value
