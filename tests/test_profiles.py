"""Performance profiles, ECDFs, bootstrap intervals and the common instance set."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from slimcaching.analysis.profiles import (RUNTIME_FLOOR_S, bootstrap_ci, common_matrix, cost_matrix, ecdf,
                                           performance_profile, performance_ratios, ratio_matrix)


def test_performance_profile_by_hand():
    inf = np.inf
    costs = pd.DataFrame({"A": [1.0, 3.0, 2.0], "B": [2.0, 3.0, inf], "C": [inf, 6.0, 8.0]}, index=["p", "q", "r"])
    r = performance_ratios(costs)
    assert r.loc["p"].tolist() == [1.0, 2.0, inf]
    assert r.loc["q"].tolist() == [1.0, 1.0, 2.0]
    assert r.loc["r"].tolist() == [1.0, inf, 4.0]
    rho = performance_profile(r, np.array([1.0, 2.0, 4.0, 100.0]))
    assert rho.loc[1.0].tolist() == pytest.approx([1.0, 1 / 3, 0.0])
    assert rho.loc[2.0].tolist() == pytest.approx([1.0, 2 / 3, 1 / 3])
    assert rho.loc[4.0].tolist() == pytest.approx([1.0, 2 / 3, 2 / 3])
    # a failure never counts, however large tau
    assert rho.loc[100.0, "B"] == pytest.approx(2 / 3)
    # the definition, brute force: rho_s(tau) = |{p : t_ps <= tau min_s t_ps}| / |P|
    for tau in (1.0, 1.5, 3.0):
        for s in costs.columns:
            want = np.mean([costs.loc[p, s] <= tau * costs.loc[p].min() for p in costs.index])
            assert performance_profile(r, np.array([tau])).loc[tau, s] == pytest.approx(want)


def test_performance_ratios_floor_and_unsolved_problem():
    costs = pd.DataFrame({"A": [1e-7, np.inf], "B": [5e-5, np.inf]})
    r = performance_ratios(costs, floor=RUNTIME_FLOOR_S)
    assert r.iloc[0].tolist() == [1.0, 1.0]  # both below the timer floor: a tie
    assert np.isinf(r.iloc[1]).all()


def test_ecdf():
    x, y = ecdf(np.array([0.5, 0.2, 1.0, 0.2]))
    assert x.tolist() == [0.2, 0.2, 0.5, 1.0] and y.tolist() == [0.25, 0.5, 0.75, 1.0]


def test_bootstrap_interval_is_seeded_paired_and_covers_the_mean():
    rng = np.random.default_rng(0)
    v = rng.normal(size=40)
    lo, hi = bootstrap_ci(v, seed=7)
    assert (lo, hi) == bootstrap_ci(v, seed=7)
    assert lo < v.mean() < hi
    # paired: the same resamples for every line, so a shifted line gets the shifted interval
    lo2, hi2 = bootstrap_ci(v + 3.0, seed=7)
    assert lo2 == pytest.approx(lo + 3.0) and hi2 == pytest.approx(hi + 3.0)
    # a 95 % interval of the mean of 40 standard normals is about +-1.96/sqrt(40) wide
    assert 0.4 < hi - lo < 0.9
    assert bootstrap_ci(np.array([2.5])) == (2.5, 2.5)
    assert all(np.isnan(bootstrap_ci(np.array([]))))


def _rows(records):
    base = {"family": "caching", "feasible": 1, "status": "heuristic", "proven": True}
    return pd.DataFrame([{**base, **r} for r in records])


def test_cost_matrix_counts_failures_and_keeps_common_instances():
    df = _rows([
        {"instance_hash": "p", "algorithm": "A", "runtime_s": 1.0, "latency": 2.0, "gain": 1.0, "seed": 0},
        {"instance_hash": "p", "algorithm": "A", "runtime_s": 3.0, "latency": 2.0, "gain": 1.0, "seed": 1},
        {"instance_hash": "p", "algorithm": "B", "runtime_s": 1.0, "latency": 1.0, "gain": 2.0, "status": "error"},
        {"instance_hash": "q", "algorithm": "A", "runtime_s": 1.0, "latency": 2.0, "gain": 1.0},
        {"instance_hash": "q", "algorithm": "B", "runtime_s": 2.0, "latency": 3.0, "gain": 0.5},
        {"instance_hash": "r", "algorithm": "A", "runtime_s": 1.0, "latency": 2.0, "gain": 1.0},  # B never ran
    ])
    c = cost_matrix(df, "runtime")
    assert list(c.index) == ["p", "q"]  # r left out for everyone
    assert c.loc["p", "A"] == 2.0 and np.isinf(c.loc["p", "B"]) and c.loc["q", "B"] == 2.0
    assert cost_matrix(df, "inverse_gain").loc["q", "B"] == 2.0


def test_common_matrix_drops_an_algorithm_run_on_few_instances():
    long = pd.DataFrame({"i": ["a", "b", "c", "d", "a"], "alg": ["X", "X", "X", "X", "Y"],
                         "v": [1.0, 2.0, 3.0, 4.0, 5.0]})
    m = common_matrix(long, index="i", columns="alg", values="v")
    assert list(m.columns) == ["X"] and len(m) == 4


def test_ratio_matrix_only_proven_instances():
    df = _rows([
        {"instance_hash": "p", "algorithm": "A", "ratio": 0.5},
        {"instance_hash": "p", "algorithm": "B", "ratio": 1.0},
        {"instance_hash": "q", "algorithm": "A", "ratio": 0.4, "proven": False},
        {"instance_hash": "q", "algorithm": "B", "ratio": 0.9, "proven": False},
    ])
    m = ratio_matrix(df)
    assert list(m.index) == ["p"] and m.loc["p"].tolist() == [0.5, 1.0]
