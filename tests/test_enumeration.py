"""Count-vector enumeration: an exact method, checked against brute force at every latency scale."""
from __future__ import annotations

import functools

import numpy as np
import pytest

from reference import random_instance_dict, scale_latencies
from slimcaching.algorithms.bruteforce import brute_force
from slimcaching.formulations.decomposition import column_generation
from slimcaching.formulations.enumeration import count_enumeration, count_vectors
from slimcaching.instances.validate import instance_from_dict
from slimcaching.objective import latency

RTOL = 1e-7


def _dict(seed: int) -> dict:
    return random_instance_dict(seed, max_layers=3, max_experts=4, max_k=3, max_nodes=3, max_users=3, max_cap=6)


@functools.lru_cache(maxsize=None)
def _case(seed: int, scale: float = 1.0):
    inst = instance_from_dict(scale_latencies(_dict(seed), scale) if scale != 1.0 else _dict(seed))
    return inst, brute_force(inst), column_generation(inst)


def _check(inst, opt, r):
    assert r.bound <= opt.latency * (1 + 1e-9) + 1e-300
    assert r.bound >= min(r.start_bound, r.latency)
    assert r.placement.is_feasible(inst)
    assert r.latency == latency(inst, r.placement)
    assert r.latency >= opt.latency * (1 - 1e-12)


@pytest.mark.parametrize("count_variables", [False, True], ids=["z", "z+K"])
@pytest.mark.parametrize("tabulate", [True, False], ids=["tables", "milps"])
@pytest.mark.parametrize("seed", range(60))
def test_solves_to_the_brute_force_optimum(seed, tabulate, count_variables):
    inst, opt, dw = _case(seed)
    r = count_enumeration(inst, dw.prices, tabulate=tabulate, count_variables=count_variables)
    _check(inst, opt, r)
    assert all(layer["table"] == tabulate for layer in r.info["layers"])
    assert r.complete and r.proved
    assert r.latency == pytest.approx(opt.latency, rel=RTOL, abs=1e-300)
    assert r.bound == pytest.approx(opt.latency, rel=RTOL, abs=1e-300)
    assert r.vectors == count_vectors(inst)


@pytest.mark.parametrize("count_variables", [False, True], ids=["z", "z+K"])
@pytest.mark.parametrize("tabulate", [True, False], ids=["tables", "milps"])
@pytest.mark.parametrize("seed", range(0, 60, 3))
def test_fixing_with_an_optimal_start_keeps_the_proof(seed, tabulate, count_variables):
    """With ``U = T(opt)`` every vector of a better placement is fixed: the start is proven optimal."""
    inst, opt, dw = _case(seed)
    r = count_enumeration(inst, dw.prices, start=opt.placement, tabulate=tabulate, count_variables=count_variables)
    _check(inst, opt, r)
    assert r.proved and r.bound == pytest.approx(opt.latency, rel=RTOL, abs=1e-300)
    assert r.kept <= count_vectors(inst)


@pytest.mark.parametrize("tabulate", [True, False], ids=["tables", "milps"])
@pytest.mark.parametrize("seed", range(0, 60, 4))
@pytest.mark.parametrize("kind", ["zero", "random", "huge"])
def test_any_prices_give_a_valid_proof(seed, kind, tabulate):
    """Reduced-cost fixing is valid at every ``nu >= 0``; bad prices only fix fewer vectors."""
    inst, opt, _ = _case(seed)
    rng = np.random.default_rng(seed)
    nu = {"zero": np.zeros(inst.N), "random": rng.random(inst.N) * 1e-2,
          "huge": np.full(inst.N, 10.0)}[kind]
    r = count_enumeration(inst, nu, start=opt.placement if seed % 8 == 0 else None, tabulate=tabulate)
    _check(inst, opt, r)
    assert r.proved and r.latency == pytest.approx(opt.latency, rel=RTOL, abs=1e-300)


@pytest.mark.parametrize("tabulate", [True, False], ids=["tables", "milps"])
@pytest.mark.parametrize("scale", [1e-9, 1e-6, 1e-3, 1e3])
@pytest.mark.parametrize("seed", range(0, 30, 3))
def test_every_latency_scale(seed, scale, tabulate):
    """The false-certificate regime of the fuzzing reports (latencies of 1e-5 s and below) included."""
    inst, opt, dw = _case(seed, scale)
    r = count_enumeration(inst, dw.prices, tabulate=tabulate)
    _check(inst, opt, r)
    assert r.proved and r.latency == pytest.approx(opt.latency, rel=RTOL)


@pytest.mark.parametrize("scale", [1.0, 1e-9, 1e3])
@pytest.mark.parametrize("seed", range(0, 60, 2))
def test_node_set_tables_solve_to_the_brute_force_optimum(seed, scale, node_sets):
    inst, opt, dw = _case(seed, scale)
    for start in (None, opt.placement):
        r = count_enumeration(inst, dw.prices, start=start)
        _check(inst, opt, r)
        assert all(layer["table"] for layer in r.info["layers"])
        assert r.complete and r.proved
        assert r.latency == pytest.approx(opt.latency, rel=RTOL, abs=1e-300)
        assert r.bound == pytest.approx(opt.latency, rel=RTOL, abs=1e-300)


@pytest.mark.parametrize("tabulate", [True, False], ids=["tables", "milps"])
@pytest.mark.parametrize("seed", range(0, 60, 2))
def test_a_target_gap_is_proven_against_the_brute_force_optimum(seed, tabulate):
    """With ``target_gap`` the search below ``U (1 - G)`` ends with a certified gap of at most ``G``:
    from the optimum, nothing lies below the target and the bound is the target's (never above the
    optimum); from the empty placement, whose target is above the optimum, a better placement is found
    and proven optimal."""
    inst, opt, dw = _case(seed)
    for target in (0.3, 0.05, 1e-3):
        r = count_enumeration(inst, dw.prices, start=opt.placement, tabulate=tabulate, target_gap=target)
        _check(inst, opt, r)
        assert r.complete and r.latency == opt.latency
        # the target (its cutoff, 2e-8 above it, less 1e-8), or the start bound where that is higher
        assert r.bound == pytest.approx(max(opt.latency * (1 - target) * (1 + 2e-8) * (1 - 1e-8), r.start_bound),
                                        rel=1e-12)
        assert (r.latency - r.bound) / r.latency <= target  # the gap meets the target exactly
        empty = latency(inst, inst.empty_placement())
        if opt.latency < empty * (1 - target) * (1 - 1e-6):  # the optimum lies below the target
            r = count_enumeration(inst, dw.prices, tabulate=tabulate, target_gap=target)
            _check(inst, opt, r)
            assert r.complete and r.proved
            assert r.latency == pytest.approx(opt.latency, rel=RTOL, abs=1e-300)
        # from the empty placement with the target 0.1 % below the optimum: nothing lies below it,
        # whatever HiGHS finds above it (it may report such a solution's value as its dual bound)
        g = 1 - opt.latency * (1 - 1e-3) / empty
        if g > 0:
            r = count_enumeration(inst, dw.prices, tabulate=tabulate, target_gap=g)
            _check(inst, opt, r)
            assert r.complete and r.bound >= opt.latency * (1 - 1e-3) * (1 - 1e-7)
    with pytest.raises(ValueError, match="target_gap"):
        count_enumeration(inst, dw.prices, target_gap=1.0)


def test_a_vanishing_time_limit_keeps_the_start_and_a_valid_bound():
    for seed in range(10):
        inst, opt, dw = _case(seed)
        r = count_enumeration(inst, dw.prices, time_limit=1e-9)
        _check(inst, opt, r)
        assert not r.complete
        assert r.latency == latency(inst, inst.empty_placement())


def test_refuses_more_vectors_than_its_limit():
    inst, _, dw = _case(1)
    with pytest.raises(ValueError, match="count vectors"):
        count_enumeration(inst, dw.prices, max_vectors=count_vectors(inst) - 1)


def test_a_planted_wrong_layer_bound_is_caught_by_brute_force(monkeypatch):
    """The comparison has teeth: layer bounds inflated by 5 % give a bound above the optimum somewhere."""
    from slimcaching.formulations import enumeration

    honest = enumeration._CountPricer.below

    def inflated(self, threshold, time_limit):
        g, pattern = honest(self, threshold, time_limit)
        return g * 1.05, pattern

    monkeypatch.setattr(enumeration._CountPricer, "below", inflated)
    caught = 0
    for seed in range(30):
        inst, opt, dw = _case(seed)
        r = count_enumeration(inst, dw.prices, tabulate=False)
        caught += r.bound > opt.latency * (1 + 1e-9)
    assert caught >= 1


@pytest.mark.parametrize("scan", ["masks", "node sets"])
def test_a_planted_wrong_table_is_caught_by_brute_force(monkeypatch, scan):
    """The same teeth for the exact tables, of either scan: costs inflated by 5 % give a bound above the
    optimum somewhere."""
    from slimcaching.formulations import count_tables, enumeration

    if scan == "node sets":
        monkeypatch.setattr(count_tables, "TABLE_WORK", 0)

    honest = enumeration.count_table

    def inflated(*args, **kwargs):
        table = honest(*args, **kwargs)
        table.cost = table.cost * 1.05
        return table

    monkeypatch.setattr(enumeration, "count_table", inflated)
    caught = 0
    for seed in range(30):
        inst, opt, dw = _case(seed)
        r = count_enumeration(inst, dw.prices)
        caught += r.bound > opt.latency * (1 + 1e-9)
    assert caught >= 1


def test_both_fixing_stages_remove_vectors():
    """Not a vacuous filter: with ``U = T(opt)`` the floor test and the MILP cutoff each fix vectors."""
    vectors = after_floor = solved = kept = 0
    for seed in range(0, 60, 3):
        inst, opt, dw = _case(seed)
        r = count_enumeration(inst, dw.prices, start=opt.placement, tabulate=False)
        vectors += r.vectors
        after_floor += sum(layer["after_floor"] for layer in r.info["layers"])
        solved += r.solved
        kept += r.kept
    assert after_floor < vectors and kept < solved


def test_vectors_without_a_pattern_keep_their_bound_and_give_no_placement(monkeypatch):
    """A pricing MILP cut by the clock may return a bound and no solution: the bound still counts."""
    from slimcaching.formulations import enumeration

    honest = enumeration._CountPricer.below

    def no_pattern(self, threshold, time_limit):
        g, _ = honest(self, threshold, time_limit)
        return g, None

    monkeypatch.setattr(enumeration._CountPricer, "below", no_pattern)
    for seed in range(0, 30, 3):
        inst, opt, dw = _case(seed)
        r = count_enumeration(inst, dw.prices, tabulate=False)
        _check(inst, opt, r)
        assert r.latency == latency(inst, inst.empty_placement())  # nothing assembled
        if r.complete and r.kept:
            assert r.bound == pytest.approx(min(opt.latency, r.latency), rel=RTOL, abs=1e-300)
