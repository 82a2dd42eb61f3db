"""The count decomposition (integer per-node layer counts): its bound against brute force and the layer bound."""
from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest

from reference import random_instance_dict
from slimcaching.algorithms import run
from slimcaching.algorithms.bruteforce import brute_force
from slimcaching.formulations.counts import KnapsackPricer, count_generation
from slimcaching.formulations.decomposition import column_generation, lp_prices, price_and_branch
from slimcaching.instances.io import read_instance
from slimcaching.instances.validate import instance_from_dict
from slimcaching.objective import latency

RTOL = 1e-7


def _instance(seed: int):
    return instance_from_dict(random_instance_dict(seed, max_layers=3, max_experts=4, max_k=3, max_nodes=3,
                                                   max_users=3, max_cap=6))


@functools.lru_cache(maxsize=None)
def _both(seed: int):
    """Instance, layer decomposition and count decomposition of ``seed`` (shared by the tests)."""
    inst = _instance(seed)
    _, prices = lp_prices(inst)
    dw = column_generation(inst, prices=prices)
    return inst, dw, count_generation(inst, start=dw)


@pytest.mark.parametrize("seed", range(60))
def test_count_bound_is_between_the_layer_bound_and_the_optimum(seed):
    inst, dw, cd = _both(seed)
    opt = brute_force(inst).latency
    assert cd.bound <= opt * (1 + 1e-9) + 1e-12
    # at the layer decomposition's prices the count bound is already at least its bound
    assert cd.start_bound >= dw.bound - RTOL * max(opt, 1e-12)
    assert cd.bound >= cd.start_bound
    placement, _ = price_and_branch(inst, cd.columns, cd.capacity)
    assert placement is not None and placement.is_feasible(inst)
    assert latency(inst, placement) >= opt * (1 - RTOL)


def test_count_bound_is_strictly_stronger_on_some_mixed_size_instances():
    """Not a vacuous method: on random mixed-size instances it closes part of the layer bound's gap."""
    gains = 0
    for seed in range(60):
        inst, dw, cd = _both(seed)
        gains += cd.bound > dw.bound * (1 + 1e-6) + 1e-12
    assert gains >= 3


@pytest.mark.parametrize("seed", range(20))
def test_knapsack_pricer_against_enumeration(seed):
    rng = np.random.default_rng(seed)
    L = int(rng.integers(1, 5))
    sizes = rng.integers(1, 7, size=L)
    upper = rng.integers(0, 4, size=L)
    cap = int(rng.integers(0, 15))
    p = KnapsackPricer(sizes, upper, cap, scale=1e4)
    for _ in range(3):
        mu = rng.random(L) * 1e-3
        ub, k = p.price(mu)
        best = max(float(mu @ np.array(c)) for c in itertools.product(*[range(u + 1) for u in upper])
                   if int(sizes @ np.array(c)) <= cap)
        assert ub >= best * (1 - 1e-12)
        assert ub == pytest.approx(best, rel=1e-7, abs=1e-15)
        assert np.all(k >= 0) and np.all(k <= upper) and int(sizes @ k) <= cap


def test_one_expert_size_gives_no_gain():
    """With a single size every node's count polytope is integral: the count bound equals the layer bound."""
    for seed in range(60):
        d = random_instance_dict(seed, max_layers=3, max_experts=4, max_k=3, max_nodes=3, max_users=3, max_cap=6)
        for layer in d["layers"]:
            layer["expert_size"] = 2
        inst = instance_from_dict(d)
        _, prices = lp_prices(inst)
        dw = column_generation(inst, prices=prices)
        if not dw.converged:
            continue
        cd = count_generation(inst, start=dw)
        assert cd.bound <= dw.bound * (1 + 1e-6) + 1e-12


@pytest.mark.slow
def test_count_bound_on_mixed_mixtral_l8_is_above_the_lp():
    """8 x 8, 4 nodes, mixed precision: the layer bound equals the LP; the count bound is > 1 % higher."""
    inst = read_instance("instances/mixed-precision/mixed-mixtral-8x7b-wifi-rtx-L8.json")
    lp, prices = lp_prices(inst)
    dw = column_generation(inst, prices=prices)
    assert dw.bound == pytest.approx(lp, rel=1e-6)
    cd = count_generation(inst, start=dw)
    assert cd.bound > lp * 1.01
    best = run(inst, "best", seed=0, time_limit=20)
    assert cd.bound <= best.latency


def test_a_planted_wrong_count_set_is_caught_by_decompose(monkeypatch):
    """If the count sets K_n wrongly allowed nothing, the count bound would be T(empty): decompose refuses it."""
    from slimcaching.formulations.bounds import InvalidBound

    monkeypatch.setattr("slimcaching.formulations.counts.useful_counts",
                        lambda inst: np.zeros((inst.N, inst.L), dtype=np.int64))
    for seed in range(60):
        inst = _instance(seed)
        if len(np.unique(inst.expert_size)) > 1 and brute_force(inst).latency < run(inst, "cloud").latency * 0.99:
            break
    with pytest.raises(InvalidBound, match="from counts exceeds the latency"):
        run(inst, "decompose", seed=0)


@pytest.mark.parametrize("seed", range(0, 60, 3))
def test_work_limited_generations_keep_their_bounds_valid(seed):
    """Node limits on every pricing MILP and knapsack, and round caps (certify's work mode): the
    bounds stay below the brute-force optimum and the runs are repeatable exactly."""
    inst = _instance(seed)
    opt = brute_force(inst).latency
    _, prices = lp_prices(inst)
    runs = []
    for _ in range(2):
        dw = column_generation(inst, prices=prices, price_time=None, node_limit=1, max_rounds=3)
        cd = count_generation(inst, start=dw, price_time=None, node_limit=1, max_rounds=3)
        runs.append((dw.bound, dw.rounds, cd.bound, cd.rounds, len(cd.columns), len(cd.counts)))
        assert dw.rounds <= 3 and cd.rounds <= 3
        assert dw.bound <= opt * (1 + 1e-9) + 1e-12 and cd.bound <= opt * (1 + 1e-9) + 1e-12
    assert runs[0] == runs[1]


def test_stall_rounds_end_a_generation_that_stopped_rising():
    """``stall_rounds=k``: a bound that never rises after the start round ends the run k rounds later;
    one that rises every round runs to ``max_rounds``."""
    from slimcaching.formulations.decomposition import stabilised_generation

    def master():
        return 1e6, None, np.zeros(1)  # a master far above every bound: never converged

    def flat(prices, duals):
        return 1.0, 1, 1

    counter = itertools.count(1)

    def rising(prices, duals):
        return float(next(counter)), 1, 1

    common = dict(center=np.zeros(1), start=np.zeros(1), max_rounds=40, left=lambda: 1.0)
    assert stabilised_generation(master, flat, stall_rounds=5, **common).rounds == 6
    assert stabilised_generation(master, flat, **common).rounds == 40
    assert stabilised_generation(master, rising, stall_rounds=5, **common).rounds == 40


@pytest.mark.parametrize("seed", range(60))
def test_a_stalled_count_generation_keeps_a_valid_bound(seed):
    """With ``stall_rounds`` the count bound is still between its start and the optimum, never above
    the full run's, and the run is never longer."""
    inst, dw, full = _both(seed)
    cut = count_generation(inst, start=dw, stall_rounds=2)
    opt = brute_force(inst).latency
    assert cut.start_bound - RTOL * opt <= cut.bound <= full.bound + RTOL * max(opt, 1e-12)
    assert cut.bound <= opt * (1 + 1e-9) + 1e-12
    assert cut.rounds <= full.rounds
