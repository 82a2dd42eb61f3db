"""The cover-cut measurement (benchmarks/perf_covers.py): its cuts are valid, so the bounds it reports are bounds."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from benchmarks.perf_covers import cover_rounds, highs_bound, lift_cover, separate_cover
from reference import random_instance_dict
from slimcaching.algorithms.bruteforce import brute_force
from slimcaching.formulations.arrays import build_level_arrays
from slimcaching.instances.validate import instance_from_dict


def _feasible_points(sizes, cap):
    for y in itertools.product((0, 1), repeat=len(sizes)):
        y = np.array(y)
        if y @ sizes <= cap:
            yield y


@st.composite
def _knapsack(draw):
    """Items grouped in layers of equal size (as in the capacity rows), a capacity and a fractional point."""
    layer_sizes = draw(st.lists(st.integers(1, 30), min_size=1, max_size=4))
    counts = draw(st.lists(st.integers(1, 4), min_size=len(layer_sizes), max_size=len(layer_sizes)))
    sizes = np.repeat(layer_sizes, counts)[:10].astype(np.int64)
    cap = draw(st.integers(0, int(sizes.sum()) - 1))
    x = np.array(draw(st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.9, 1.0]), min_size=len(sizes),
                               max_size=len(sizes))))
    return sizes, cap, x


@given(_knapsack())
@settings(max_examples=150, deadline=None)
def test_separated_covers_are_valid_and_exactly_lifted(case):
    sizes, cap, x = case
    cut = separate_cover(sizes, cap, x)
    if cut is None:
        return
    alpha, rhs, viol = cut
    assert viol == pytest.approx(alpha @ x - rhs) and viol > 0
    points = list(_feasible_points(sizes, cap))
    assert max(alpha @ y for y in points) <= rhs  # valid: no integer point is cut off
    assert max(alpha @ y for y in points) == rhs  # and tight


def test_lifting_gives_each_item_its_largest_valid_coefficient():
    """Sequential lifting is exact: raising any lifted coefficient (in lifting order) by one makes the cut invalid."""
    rng = np.random.default_rng(0)
    for _ in range(40):
        sizes = np.repeat(rng.integers(1, 20, size=3), rng.integers(1, 4, size=3)).astype(np.int64)
        cap = int(rng.integers(sizes.max(), sizes.sum()))
        order = rng.permutation(len(sizes))
        cover, total = [], 0
        for i in order:
            cover.append(int(i))
            total += int(sizes[i])
            if total > cap:
                break
        rest = np.array([i for i in range(len(sizes)) if i not in cover])
        alpha, rhs = lift_cover(sizes, cap, np.array(cover), rest)
        points = list(_feasible_points(sizes, cap))
        assert max(alpha @ y for y in points) <= rhs
        if len(rest):
            j = rest[0]  # first lifted: its coefficient is the exact maximum given the cover alone
            if sizes[j] <= cap:
                up = alpha.copy()
                up[j] += 1
                assert max(up @ y for y in points) > rhs


@pytest.mark.parametrize("seed", range(12))
def test_cover_rounds_raise_the_lp_and_stay_below_the_optimum(seed):
    d = random_instance_dict(seed, max_layers=3, max_experts=4, max_k=3, max_nodes=3, max_users=3, max_cap=7)
    inst = instance_from_dict(d)
    opt = brute_force(inst).latency
    model = build_level_arrays(inst)
    cuts, history = cover_rounds(model, 5)
    bounds = [h["bound"] for h in history]
    assert all(b2 >= b1 - 1e-9 * opt for b1, b2 in zip(bounds, bounds[1:]))
    assert all(h["safe_bound"] <= h["bound"] + 1e-9 * opt for h in history)
    assert bounds[-1] <= opt * (1 + 1e-9)
    res = highs_bound(model, cuts=cuts, node_limit=10_000)
    assert res["incumbent"] == pytest.approx(opt, rel=1e-7)  # the cuts removed no optimal placement
    assert highs_bound(model, count_form=True, node_limit=10_000)["incumbent"] == pytest.approx(opt, rel=1e-7)


def test_a_known_violated_cover_is_found():
    """Two layers (sizes 2, 2 and 3), capacity 4: x = (1, 0, 1/2) satisfies the row and the count hull
    (k_A / 2 + k_B <= 1) but not the cover x_0 + x_2 <= 1; lifting gives x_1 coefficient 0 (x_0 and x_1 fit)."""
    alpha, rhs, viol = separate_cover(np.array([2, 2, 3]), 4, np.array([1.0, 0.0, 0.5]))
    assert rhs == 1 and viol == pytest.approx(0.5)
    assert alpha.tolist() == [1, 0, 1]


def test_a_bad_instance_file_is_one_line_and_exit_2(tmp_path, capsys):
    from benchmarks.perf_covers import main

    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "nope"}')
    assert main(["--files", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.json" in err and "format" in err
