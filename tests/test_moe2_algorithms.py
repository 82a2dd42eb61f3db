"""MoE² algorithms: exact methods agree with each other and with a brute force from the definition,
DMO saves oracle calls, every algorithm respects both budgets, nothing-fits gives the empty selection."""
from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slimcaching.errors import InputError
from slimcaching.moe2.algorithms import MOE2_ALGORITHMS, dmo, exhaustive, get_moe2_algorithm, greedy
from slimcaching.moe2.common import NOTHING_FITS, CountingOracle, Moe2Result
from slimcaching.moe2.generator import generate_moe2
from slimcaching.moe2.instance import Moe2Instance, evaluate_moe2
from slimcaching.moe2.milp import build_moe2_milp, candidate_subsets
from slimcaching.result import Status

TOL = 1e-9


def _tol(b: float) -> float:
    return b + 1e-9 * max(1.0, abs(b))


def brute_force(inst: Moe2Instance) -> float:
    """``docs/model.md`` section 2 from the definition: every subset of every category, every combination."""
    best = -math.inf
    subsets = [list(itertools.chain.from_iterable(itertools.combinations(range(inst.M), r)
                                                  for r in range(inst.M + 1)))] * inst.C
    for combo in itertools.product(*subsets):
        energy = value = 0.0
        ok = True
        for k, S in enumerate(combo):
            if S and max(inst.latency[i] for i in S) + inst.aggregation_delay > _tol(inst.latency_budget[k]):
                ok = False
                break
            energy += inst.weight[k] * sum(inst.energy[i] for i in S)
            value += inst.weight[k] * inst.quality.value(k, sum(1 << i for i in S))
        if ok and energy <= _tol(inst.energy_budget):
            best = max(best, value)
    return best


def random_monotone(inst: Moe2Instance, seed: int) -> Moe2Instance:
    """Same instance with arbitrary monotone (generally non-submodular) quality tables, q(empty) > 0 allowed."""
    rng = np.random.default_rng(seed)
    q = rng.random((inst.C, 1 << inst.M)) ** 3
    for m in range(1, 1 << inst.M):  # q(S) := max(own draw, q(S - i) for every i): monotone, with plateaus
        for i in range(inst.M):
            if m >> i & 1:
                q[:, m] = np.maximum(q[:, m], q[:, m ^ (1 << i)])
    return dataclasses.replace(inst, quality=q, name=inst.name + "-monotone")


def _instances():
    """120 instances, M in 2..10, C in 1..3, energy budgets from tight to loose; half with non-submodular q."""
    out = []
    for s in range(120):
        M, C = 2 + s % 9, 1 + (s // 9) % 3
        inst = generate_moe2(1000 + s, experts=M, categories=C, energy_fraction=(0.05, 0.2, 0.35, 0.6, 1.1)[s % 5],
                             budget_quantile=(0.3, 1.0))
        out.append(random_monotone(inst, s) if s % 2 else inst)
    return out


INSTANCES = _instances()


@pytest.fixture(scope="module")
def solved():
    rows = []
    for inst in INSTANCES:
        rows.append({name: MOE2_ALGORITHMS[name](inst, seed=3) for name in ("dmo", "exhaustive", "exact")})
    return rows


def test_dmo_and_milp_equal_exhaustive_on_120_instances(solved):
    assert len(solved) >= 100
    assert max(i.M for i in INSTANCES) == 10
    for inst, r in zip(INSTANCES, solved):
        ref = r["exhaustive"]
        assert ref.status is Status.OPTIMAL and ref.feasible
        for name in ("dmo", "exact"):
            assert r[name].status is Status.OPTIMAL, (inst.name, name, r[name].message)
            assert r[name].feasible, (inst.name, name)
            assert r[name].objective == pytest.approx(ref.objective, abs=1e-9), (inst.name, name)
            assert r[name].bound == pytest.approx(ref.objective, abs=1e-7)


def test_dmo_uses_fewer_oracle_calls_than_exhaustive(solved):
    dmo_calls = np.array([r["dmo"].oracle_calls for r in solved])
    ex_calls = np.array([r["exhaustive"].oracle_calls for r in solved])
    assert (dmo_calls <= ex_calls).all()  # memoised: never more than every feasible subset
    assert dmo_calls.mean() < ex_calls.mean()
    # the comparison is not won by trivial cases: many instances need branching (top corner infeasible)
    assert sum(r["dmo"].info["nodes"] > 1 for r in solved if "nodes" in r["dmo"].info) >= 40
    big = np.array([i.M >= 8 for i in INSTANCES])
    assert dmo_calls[big].mean() < 0.8 * ex_calls[big].mean()


def test_joint_master_is_exact_too(solved):
    for inst, r in list(zip(INSTANCES, solved))[::3]:
        j = dmo(inst, master="joint")
        assert j.status is Status.OPTIMAL and j.feasible and j.params["master"] == "joint"
        assert j.objective == pytest.approx(r["exhaustive"].objective, abs=1e-9)
        assert j.oracle_calls <= r["exhaustive"].oracle_calls


def test_exhaustive_queries_every_latency_feasible_subset(solved):
    for inst, r in zip(INSTANCES, solved):
        allowed = inst.allowed_masks()
        if r["exhaustive"].info.get("nothing_fits"):
            continue
        assert r["exhaustive"].oracle_calls == sum(2 ** bin(int(a)).count("1") for a in allowed)


@pytest.mark.parametrize("s", range(0, 120, 7))
def test_exhaustive_equals_brute_force_from_definition(s):
    inst = INSTANCES[s]
    if inst.M ** 1 * inst.C > 12 or (1 << inst.M) ** inst.C > 5000:
        inst = random_monotone(generate_moe2(s, experts=4, categories=2, energy_fraction=0.3), s)
    assert exhaustive(inst).objective == pytest.approx(brute_force(inst), abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2 ** 31), M=st.integers(1, 4), C=st.integers(1, 2), frac=st.floats(0.01, 1.2),
       mono=st.booleans())
def test_dmo_equals_brute_force_property(seed, M, C, frac, mono):
    inst = generate_moe2(seed, experts=M, categories=C, energy_fraction=frac)
    if mono:
        inst = random_monotone(inst, seed)
    r = dmo(inst)
    assert r.feasible and r.status is Status.OPTIMAL
    assert r.objective == pytest.approx(brute_force(inst), abs=1e-12)


@pytest.mark.parametrize("name", list(MOE2_ALGORITHMS))
def test_every_algorithm_respects_both_budgets_and_reports_the_evaluator(name):
    fn = MOE2_ALGORITHMS[name]
    for inst in INSTANCES[::4]:
        r = fn(inst, seed=5)
        assert isinstance(r, Moe2Result) and r.algorithm == name
        ev = evaluate_moe2(inst, r.selection)
        assert r.feasible and ev.feasible and ev.energy_ok and ev.latency_ok.all()
        assert r.energy <= _tol(inst.energy_budget)
        for k, S in enumerate(r.selection):
            assert S == sorted(set(S))
            if S:
                assert max(inst.latency[S]) + inst.aggregation_delay <= _tol(inst.latency_budget[k])
        assert r.objective == ev.objective and r.energy == ev.energy
        assert r.runtime_s >= 0 and r.oracle_calls >= 0
        d = r.to_dict()
        for key in ("objective", "selection", "energy", "feasible", "oracle_calls", "runtime_s", "status"):
            assert key in d
        assert list(d["selection"]) == list(inst.category_names)
        if name in ("greedy", "fastest", "random"):
            assert r.status in (Status.HEURISTIC, Status.OPTIMAL)


@pytest.mark.parametrize("name", list(MOE2_ALGORITHMS))
def test_nothing_fits_gives_empty_selection_with_a_clear_status(name):
    base = generate_moe2(4, experts=5, categories=2)
    no_energy = dataclasses.replace(base, energy_budget=0.0)
    no_latency = dataclasses.replace(base, latency_budget=np.full(2, base.aggregation_delay + 1e-3))
    tiny_energy = dataclasses.replace(base, energy_budget=0.5 * float(np.min(base.energy)) * float(np.min(base.weight)))
    for inst in (no_energy, no_latency, tiny_energy):
        r = MOE2_ALGORITHMS[name](inst, seed=1)
        assert r.selection == [[], []]
        assert r.status is Status.OPTIMAL and r.feasible
        assert r.message == NOTHING_FITS
        assert r.objective == pytest.approx(float(np.dot(inst.weight, inst.table[:, 0])))


def test_greedy_guarantee_on_submodular_instances(solved):
    """Generator quality is submodular: greedy + best single >= (1 - 1/e)/2 OPT."""
    for inst, r in zip(INSTANCES[::2], solved[::2]):
        g = greedy(inst)
        assert g.objective >= (1 - 1 / math.e) / 2 * r["exhaustive"].objective - 1e-12


def test_baselines_never_beat_the_optimum_and_ratios_are_in_unit_interval(solved):
    for inst, r in zip(INSTANCES, solved):
        opt = r["exhaustive"].objective
        for name in ("greedy", "fastest", "random"):
            v = MOE2_ALGORITHMS[name](inst, seed=0).objective
            assert v <= opt + 1e-12
            if opt > 0:
                assert 0 <= v / opt <= 1 + 1e-12


def test_random_is_seeded():
    inst = generate_moe2(2, experts=9, categories=3)
    a, b = MOE2_ALGORITHMS["random"](inst, seed=4), MOE2_ALGORITHMS["random"](inst, seed=4)
    assert a.selection == b.selection and a.seed == 4
    draws = {tuple(map(tuple, MOE2_ALGORITHMS["random"](inst, seed=s).selection)) for s in range(10)}
    assert len(draws) > 1
    c = MOE2_ALGORITHMS["random"](inst)
    assert c.seed is None and isinstance(c.info["seed_used"], int)


def test_time_limit_returns_incumbent_and_valid_bound():
    inst = generate_moe2(9, experts=12, categories=3, energy_fraction=0.15, budget_quantile=(1.0, 1.0))
    opt = MOE2_ALGORITHMS["exact"](inst).objective
    for name in ("dmo", "exhaustive", "exact", "greedy"):
        r = MOE2_ALGORITHMS[name](inst, time_limit=1e-4)
        assert r.feasible and r.status in (Status.TIME_LIMIT, Status.OPTIMAL, Status.HEURISTIC)
        assert r.objective <= opt + 1e-9
        if r.bound is not None:
            assert r.bound >= opt - 1e-7
    assert dmo(inst, time_limit=1e-4).status is Status.TIME_LIMIT


def test_counting_oracle_counts_distinct_evaluations():
    inst = generate_moe2(0, experts=3, categories=2)
    o = CountingOracle(inst)
    assert o(0, 5) == inst.table[0, 5] and o(0, 5) == inst.table[0, 5]
    assert (o.calls, o.queries) == (1, 2)
    np.testing.assert_array_equal(o.many(1, np.array([1, 1, 2])), inst.table[1, [1, 1, 2]])
    assert (o.calls, o.queries) == (3, 5)


def test_milp_has_one_binary_per_candidate_subset():
    inst = generate_moe2(6, experts=6, categories=3, energy_fraction=0.2)
    m = build_moe2_milp(inst)
    cands = candidate_subsets(inst)
    assert len(m.z) == sum(len(c) for c in cands)
    assert m.oracle.calls == len(m.z)
    sub_e = inst.subset_energy()
    for k, c in enumerate(cands):
        assert 0 in c
        assert (inst.weight[k] * sub_e[c] <= _tol(inst.energy_budget)).all()
        assert ((c & ~inst.allowed_masks()[k]) == 0).all()


def test_unknown_algorithm_and_params_are_input_errors():
    inst = generate_moe2(0, experts=3, categories=1)
    with pytest.raises(InputError, match=r"unknown MoE² algorithm 'foo'; valid: dmo, exhaustive, exact, greedy"):
        get_moe2_algorithm("foo")
    with pytest.raises(InputError, match=r"unknown parameter\(s\) depth for dmo; valid: master"):
        dmo(inst, depth=3)
    with pytest.raises(InputError, match=r"--param master: must be one of 'mckp', 'joint', 'polyblock', got 'lp'"):
        dmo(inst, master="lp")
    with pytest.raises(InputError, match=r"unknown parameter\(s\) x for exact; valid: threads"):
        MOE2_ALGORITHMS["exact"](inst, x=1)
    with pytest.raises(InputError, match=r"--time-limit: must be a number > 0, got -1"):
        exhaustive(inst, time_limit=-1)
