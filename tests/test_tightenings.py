"""Tightenings: each leaves the optimum unchanged (brute force) and never lowers the LP bound."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from reference import random_instance_dict
from slimcaching.algorithms.bruteforce import brute_force
from slimcaching.errors import InputError
from slimcaching.formulations import exact, lp_bound
from slimcaching.formulations.tightenings import (TIGHTENINGS, cardinality_rows, check_tightenings,
                                                  reachable_capacity, tightened_capacities)
from slimcaching.instances.io import read_instance
from slimcaching.instances.validate import instance_from_dict
from slimcaching.result import Status

RTOL = 1e-7
SELECTIONS = [(), ("capacity-rounding",), ("cardinality",), TIGHTENINGS]


def _reachable_by_enumeration(sizes, counts, cap):
    best = 0
    for ks in itertools.product(*[range(c + 1) for c in counts]):
        used = sum(s * k for s, k in zip(sizes, ks))
        if used <= cap:
            best = max(best, used)
    return best


@given(st.lists(st.tuples(st.integers(1, 40), st.integers(0, 4)), min_size=0, max_size=4), st.integers(0, 200))
@settings(max_examples=200, deadline=None)
def test_reachable_capacity_is_the_largest_usable_storage(items, cap):
    sizes = np.array([s for s, _ in items], dtype=np.int64)
    counts = np.array([c for _, c in items], dtype=np.int64)
    got = reachable_capacity(sizes, counts, cap)
    assert got == _reachable_by_enumeration(sizes.tolist(), counts.tolist(), cap)
    if len(sizes) and counts.sum():
        g = int(np.gcd.reduce(sizes))
        assert got <= (cap // g) * g  # never weaker than the gcd rounding


def test_gcd_rounding_on_the_mixtral_paper_instance():
    """Uniform sizes (336 MiB): the rounded capacity is the largest multiple of 336."""
    inst = read_instance("instances/paper/paper-mixtral-8x7b-wifi-rtx-bf16.json")
    cap = tightened_capacities(inst)
    assert np.all(cap == (inst.capacity // 336) * 336)
    assert np.all(cap < inst.capacity)


def test_cardinality_rows_only_where_they_cut():
    d = random_instance_dict(3)
    inst = instance_from_dict(d)
    counts = np.full((inst.N, inst.L), 5)
    cap = np.full(inst.N, 4)
    for n, l, k in cardinality_rows(inst, cap, counts):
        assert k == 4 // inst.expert_size[l] and k < 5


@pytest.mark.parametrize("seed", range(40))
def test_every_tightening_keeps_the_optimum_and_raises_the_lp(seed):
    """Brute force on tiny instances; the LP bound never falls and stays below the optimum."""
    d = random_instance_dict(seed, max_layers=2, max_experts=4, max_k=3, max_nodes=3, max_users=3, max_cap=7)
    inst = instance_from_dict(d)
    opt = brute_force(inst).latency
    for formulation in ("level", "assignment"):
        plain = lp_bound(inst, formulation)
        for sel in SELECTIONS:
            res = exact(inst, formulation=formulation, tightenings=sel, warm_start=False)
            assert res.status is Status.OPTIMAL
            assert res.latency == pytest.approx(opt, rel=RTOL)
            assert res.info["tightenings"]["applied"] == list(sel)
            lp = lp_bound(inst, formulation, tightenings=sel)
            assert plain <= lp + 1e-9 * opt
            assert lp <= opt * (1 + 1e-9)


def test_rounding_raises_the_lp_where_capacity_is_not_usable():
    """Sizes 3, capacity 7: the plain LP fills 7 units, the rounded one only 6."""
    d = random_instance_dict(0, max_layers=1, max_experts=4, max_k=2, max_nodes=1, max_users=1, max_cap=7)
    d["layers"] = [{"experts": 4, "expert_size": 3, "top_k": 2}]
    d["nodes"] = [{"name": "n0", "capacity": 7}]
    d["users"][0]["latency"] = {"n0": 0.5}
    d["users"][0]["cloud_latency"] = 2.0
    d["users"][0]["routing"] = [[{"experts": [0, 1], "p": 0.5}, {"experts": [2, 3], "p": 0.5}]]
    inst = instance_from_dict(d)
    plain = lp_bound(inst, "level")
    tight = lp_bound(inst, "level", tightenings="all")
    opt = brute_force(inst).latency
    assert plain < tight <= opt * (1 + 1e-12)
    res = exact(inst, warm_start=False)
    assert res.info["tightenings"]["capacity"] == {"n0": [7, 6]}


@pytest.mark.parametrize("value, expected", [(None, TIGHTENINGS), ("all", TIGHTENINGS), ("none", ()),
                                             ("cardinality", ("cardinality",)),
                                             ("cardinality,capacity-rounding", TIGHTENINGS)])
def test_selection_parsing(value, expected):
    assert check_tightenings(value) == expected


def test_unknown_tightening_is_a_clear_error():
    with pytest.raises(InputError, match=r"unknown tightening\(s\) 'covers'; valid: all, none or a comma list "
                                         r"of capacity-rounding, cardinality"):
        check_tightenings("covers")
