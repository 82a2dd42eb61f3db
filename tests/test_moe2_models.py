"""MoE² from quality oracles: learned gating, callables, noisy-OR models, per-query (two-level) accounting.

Every exact method's claim is checked against a brute force over every
combination of subsets, evaluated by the family's one evaluator; every box
bound DMO relies on is checked against the true maximum over the box.
"""
from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest

from slimcaching.errors import InputError
from slimcaching.moe2.algorithms import MOE2_ALGORITHMS, dmo, exhaustive
from slimcaching.moe2.bits import bit_matrix, ids_of
from slimcaching.moe2.common import CountingOracle
from slimcaching.moe2.dmo import routed_energy_lower
from slimcaching.moe2.gating import GatedMixtureQuality, restricted_gate, restriction_gap
from slimcaching.moe2.generator import generate_moe2, generate_moe2_gated
from slimcaching.moe2.instance import (Moe2Instance, evaluate_moe2, moe2_from_dict, read_moe2_instance,
                                      write_moe2_instance)
from slimcaching.moe2.quality import CallableQuality
from slimcaching.result import Status


def brute_force(inst: Moe2Instance) -> float:
    """The optimum by the evaluator on every combination of subsets (latency and energy from the definition)."""
    best = -math.inf
    for combo in itertools.product(range(1 << inst.M), repeat=inst.C):
        ev = evaluate_moe2(inst, np.array(combo, dtype=np.int64))
        if ev.feasible:
            best = max(best, ev.objective)
    return best


def _gated_cases():
    out = []
    for s in range(18):
        M, C = (3, 4, 5)[s % 3], 1 + (s // 3) % 2
        if M == 5 and C == 2:
            M = 4
        top_k = (None, 1, 2)[(s // 6) % 3]
        acc = "per-query" if top_k is not None and s % 2 else "pool"
        out.append(generate_moe2_gated(200 + s, experts=M, categories=C, queries=24, top_k=top_k,
                                       energy_accounting=acc, energy_fraction=(0.15, 0.35, 0.7)[s % 3]))
    return out


GATED = _gated_cases()


@pytest.mark.parametrize("inst", GATED, ids=lambda i: f"{i.name}-{i.quality.top_k}-{i.energy_accounting}")
def test_exact_methods_equal_brute_force_on_learned_gate_instances(inst):
    opt = brute_force(inst)
    for name, kw in (("dmo", {}), ("dmo", {"master": "joint"}), ("exhaustive", {}), ("exact", {})):
        r = MOE2_ALGORITHMS[name](inst, **kw)
        assert r.status is Status.OPTIMAL and r.feasible
        assert r.objective == pytest.approx(opt, abs=1e-10), (name, kw)
        assert r.bound is not None and r.bound >= opt - 1e-12
    g = MOE2_ALGORITHMS["greedy"](inst)
    assert g.feasible and g.objective <= opt + 1e-12


def test_learned_gate_qualities_are_neither_monotone_nor_submodular():
    q = generate_moe2_gated(1, experts=6, categories=2).quality.to_table().table
    M = 6
    drops = sum(q[k, S | 1 << i] < q[k, S] - 1e-12 for k in range(2) for S in range(1 << M) for i in range(M)
                if not S >> i & 1)
    supermod = sum(q[k, S | 1 << i | 1 << j] - q[k, S | 1 << j] > q[k, S | 1 << i] - q[k, S] + 1e-12
                   for k in range(2) for S in range(1 << M) for i in range(M) for j in range(M)
                   if i != j and not (S >> i & 1 or S >> j & 1))
    assert drops > 0 and supermod > 0


@pytest.mark.parametrize("top_k", [None, 1, 2, 3])
def test_gate_box_bound_is_a_bound(top_k):
    """``upper(k, lo, hi) >= max { q_k(T) : lo <= T <= hi }`` on every box of a 6-expert model."""
    inst = generate_moe2_gated(7, experts=6, categories=2, queries=30, top_k=top_k)
    q = inst.quality
    table = q.to_table().table
    M = q.M
    for k in range(q.C):
        for hi in range(1 << M):
            sub = [T for T in range(1 << M) if T & ~hi == 0]
            for lo in sub[:: max(1, len(sub) // 6)]:
                best = max(table[k, T] for T in sub if T & lo == lo)
                assert q.upper(k, lo, hi) >= best


@pytest.mark.parametrize("top_k", [1, 2, 3])
def test_routed_energy_lower_bound_is_a_bound(top_k):
    inst = generate_moe2_gated(8, experts=5, categories=2, queries=20, top_k=top_k, energy_accounting="per-query")
    for k in range(inst.C):
        energy = inst.category_energy(k, np.arange(1 << inst.M))
        for hi in range(1 << inst.M):
            for lo in range(1 << inst.M):
                if lo & ~hi:
                    continue
                low = min(energy[T] for T in range(1 << inst.M) if T & ~hi == 0 and T & lo == lo)
                assert routed_energy_lower(inst, k, lo, hi) <= low + 1e-12


def test_restricted_gate_equals_the_formula():
    W = np.array([[1.0, -0.5], [0.2, 0.3], [-1.0, 2.0]])
    b = np.array([0.1, 0.0, -0.2])
    x = np.array([[0.5, 1.0], [-1.0, 0.25]])
    for S in ([0, 2], [1], [0, 1, 2]):
        g = restricted_gate(W, b, x, S)
        for q in range(2):
            z = {i: float(W[i] @ x[q] + b[i]) for i in S}
            den = sum(math.exp(v) for v in z.values())
            for i in range(3):
                assert g[q, i] == pytest.approx(math.exp(z[i]) / den if i in S else 0.0, rel=1e-14, abs=0)


@pytest.mark.parametrize("top_k", [None, 1, 2])
def test_gated_quality_equals_the_formula(top_k):
    """``q_k(S) = l_empty - (1/Q) sum_q sum_{i in R_q(S)} g^{R_q(S)}_i l_{q,i}``, computed query by query."""
    inst = generate_moe2_gated(3, experts=5, categories=2, queries=12, top_k=top_k)
    q = inst.quality
    for k in range(q.C):
        for S in range(1, 1 << q.M):
            ids = ids_of(S)
            total = 0.0
            for row in range(q.features[k].shape[0]):
                z = q.weights @ q.features[k][row] + q.bias
                run = ids if top_k is None else sorted(ids, key=lambda i: (-z[i], i))[:top_k]
                g = restricted_gate(q.weights, q.bias, q.features[k][row], sorted(run))[0]
                total += sum(g[i] * q.losses[k][row, i] for i in run)
            assert q.value(k, S) == pytest.approx(q.empty_loss[k] - total / q.features[k].shape[0], abs=1e-12)


def _hand_two_level(accounting: str) -> Moe2Instance:
    """3 experts, 1 category, 2 validation queries, a top-1 gate.

    Logits: query 0 prefers 0 > 1 > 2, query 1 prefers 2 > 1 > 0.  Energies 10, 20, 40 J.
    """
    W = np.array([[1.0], [0.0], [-1.0]])
    x = [np.array([[1.0], [-1.0]])]
    losses = [np.array([[0.0, 1.0, 1.0], [1.0, 1.0, 0.0]])]
    q = GatedMixtureQuality(x, losses, np.ones(1), W, np.zeros(3), temperature=0.1, l2=0.01, top_k=1,
                            target="correctness")
    return Moe2Instance(name="hand", server_names=["s"], server_kinds=["x"], server_power=[1.0],
                        expert_names=["a", "b", "c"], expert_server=[0, 0, 0], energy=[10.0, 20.0, 40.0],
                        latency=[1.0, 1.0, 1.0], category_names=["k"], weight=[1.0], latency_budget=[5.0],
                        quality=q, energy_budget=30.0, aggregation_delay=0.0, energy_accounting=accounting)


def test_two_level_accounting_by_hand():
    """Pool {0, 2}: query 0 runs expert 0 (10 J), query 1 runs expert 2 (40 J): 25 J per request on average,
    against 50 J when the whole pool is charged.  Both answer correctly: quality 1."""
    for acc, energy, feasible in (("per-query", 25.0, True), ("pool", 50.0, False)):
        inst = _hand_two_level(acc)
        ev = evaluate_moe2(inst, np.array([0b101]))
        assert ev.quality[0] == pytest.approx(1.0)
        assert ev.energy_routed[0] == pytest.approx(25.0) and ev.energy_pool[0] == pytest.approx(50.0)
        assert ev.energy == pytest.approx(energy) and ev.feasible is feasible
        np.testing.assert_allclose(inst.quality.usage(0, np.array([0b101]))[0], [0.5, 0.0, 0.5])
    # pool {0, 1}: query 0 runs 0 (right), query 1 runs 1 (wrong): quality 0.5, routed energy 15 J
    ev = evaluate_moe2(_hand_two_level("per-query"), np.array([0b011]))
    assert ev.quality[0] == pytest.approx(0.5) and ev.energy == pytest.approx(15.0)
    # the optimum within 30 J: per-query, {0, 2} costs 25 J at quality 1 ({0, 1, 2} routes the same way: a tie);
    # charging the pool, {0, 2} costs 50 J and {0, 1} (30 J, quality 0.5) is the best that fits
    routed = dmo(_hand_two_level("per-query"))
    assert routed.objective == pytest.approx(1.0) and routed.energy == pytest.approx(25.0)
    assert routed.selection in ([[0, 2]], [[0, 1, 2]])
    pool = dmo(_hand_two_level("pool"))
    assert pool.objective == pytest.approx(0.5) and pool.energy <= 30.0


def test_optimality_preserving_property_holds_for_the_full_set_and_is_measured_elsewhere():
    inst = generate_moe2_gated(4, experts=5, categories=2, queries=40)
    full = restriction_gap(inst.quality, list(range(5)))
    assert abs(full["objective_gap"]) < 1e-9 and full["param_gap"] < 1e-6
    for S in ([0, 1], [1, 3, 4], [2]):
        gap = restriction_gap(inst.quality, S)
        assert gap["objective_gap"] >= -1e-9  # the retrained gate minimises J_S


# ------------------------------------------------------------------ callables and oracle models
def test_callable_quality_monotone_and_not():
    base = generate_moe2(5, experts=6, categories=2, energy_fraction=0.4)
    t = base.quality.table
    mono = dataclasses.replace(base, quality=CallableQuality(lambda k, m: t[k, m], 2, 6, monotone=True,
                                                                       key="table-5"))
    r = dmo(mono)
    assert r.status is Status.OPTIMAL and r.objective == pytest.approx(exhaustive(base).objective, abs=1e-12)
    # a non-monotone callable with a valid box bound (the envelope over the box's subsets)
    rng = np.random.default_rng(0)
    wild = rng.random((2, 64))
    env = lambda k, lo, hi: max(wild[k, T] for T in range(64) if T & ~hi == 0 and T & lo == lo)  # noqa: E731
    inst = dataclasses.replace(base, quality=CallableQuality(lambda k, m: wild[k, m], 2, 6, upper=env,
                                                                       key="wild"))
    opt = brute_force(inst)
    for master in ("mckp", "joint"):
        assert dmo(inst, master=master).objective == pytest.approx(opt, abs=1e-12)
    assumed = dmo(inst, assume_monotone=True)
    assert assumed.status is Status.HEURISTIC and assumed.bound is None and "no optimality claim" in assumed.message
    with pytest.raises(InputError, match="polyblock needs a quality model proven monotone"):
        dmo(inst, master="polyblock")


@pytest.mark.parametrize("seed", range(12))
def test_polyblock_equals_exhaustive_on_monotone_instances(seed):
    inst = generate_moe2(300 + seed, experts=4 + seed % 5, categories=1 + seed % 3,
                         energy_fraction=(0.1, 0.3, 0.6)[seed % 3])
    r = dmo(inst, master="polyblock")
    ref = exhaustive(inst)
    assert r.status is Status.OPTIMAL and r.feasible
    assert r.objective == pytest.approx(ref.objective, abs=1e-12) and r.bound >= ref.objective - 1e-12


def test_noisy_or_model_equals_its_table_and_dmo_goes_past_16_experts():
    a = generate_moe2(3, experts=10, categories=3)
    b = generate_moe2(3, experts=10, categories=3, model=True)
    np.testing.assert_array_equal(a.quality.table, b.quality.to_table().table)
    assert dmo(a).objective == dmo(b).objective
    loose = generate_moe2(11, experts=24, categories=3, model=True, budget_quantile=(1.0, 1.0))
    for name in ("exhaustive", "exact"):  # 3 * 2**24 candidates: refused before any is listed
        with pytest.raises(InputError, match="would list 5.03e.07 candidate subsets"):
            MOE2_ALGORITHMS[name](loose)
    big = generate_moe2(11, experts=24, categories=3, model=True)  # 13, 18 and 15 usable experts
    r = dmo(big, time_limit=120)
    assert r.status is Status.OPTIMAL and r.feasible and r.bound <= r.objective * (1 + 2e-9)
    assert r.oracle_calls < 3 * 2 ** 20  # far fewer than the candidates


def test_dmo_on_one_category_of_18_experts_equals_exhaustive():
    inst = generate_moe2(12, experts=18, categories=1, model=True, budget_quantile=(1.0, 1.0),
                         energy_fraction=0.3)
    ref = exhaustive(inst)
    for master in ("mckp", "joint", "polyblock"):
        r = dmo(inst, master=master)
        assert r.objective == pytest.approx(ref.objective, abs=1e-12), master
        assert r.oracle_calls <= ref.oracle_calls


@pytest.mark.parametrize("make", [
    lambda: generate_moe2_gated(5, experts=5, categories=2, queries=10, top_k=2, energy_accounting="per-query"),
    lambda: generate_moe2(5, experts=20, categories=2, model=True),
], ids=["gated-top2-per-query", "noisy-or-20"])
def test_format_2_round_trip_keeps_hash_and_values(tmp_path, make):
    inst = make()
    path = tmp_path / "inst.json.gz"
    write_moe2_instance(inst, path)
    back = read_moe2_instance(path)
    assert back.content_hash() == inst.content_hash() and back.energy_accounting == inst.energy_accounting
    masks = np.arange(1, 200, 7, dtype=np.int64) & ((1 << inst.M) - 1)
    for k in range(inst.C):
        np.testing.assert_array_equal(back.quality.values(k, masks), inst.quality.values(k, masks))
        np.testing.assert_array_equal(back.category_energy(k, masks), inst.category_energy(k, masks))


def test_format_2_gate_errors_name_the_path(tmp_path):
    d = generate_moe2_gated(5, experts=3, categories=1, queries=4).to_dict()
    d["quality"]["gate"]["top_k"] = 7
    d["quality"]["validation"][0]["correct"][1][2] = 1.5
    with pytest.raises(InputError) as e:
        moe2_from_dict(d, "bad.json")
    assert str(e.value) == ("bad.json: $.quality.validation[0].correct[1][2]: correct must be in [0, 1], got 1.5 "
                            "(and 1 more problem)")
    d["quality"]["validation"][0]["correct"][1][2] = 1.0
    with pytest.raises(InputError, match=r"bad.json: \$.quality.gate.top_k: must be null or an integer in 1..3, got 7"):
        moe2_from_dict(d, "bad.json")


def test_energy_free_bound_is_a_bound_for_non_monotone_qualities():
    """The MILP's fallback bound; ``q_k(U_k)`` alone would be below the optimum on some of these instances."""
    from slimcaching.moe2.common import _usable
    from slimcaching.moe2.milp import energy_free_bound

    below = 0
    for inst in GATED:
        opt = brute_force(inst)
        oracle = CountingOracle(inst)
        assert energy_free_bound(inst, oracle) >= opt - 1e-12
        naive = sum(inst.weight[k] * inst.quality.value(k, int(u)) for k, u in enumerate(_usable(inst)))
        below += naive < opt - 1e-9
    assert below > 0  # the case the model's box bound is there for


@pytest.mark.parametrize("seed", range(4))
def test_dmo_equals_the_milp_at_eight_categories(seed):
    """Exhaustive search does not fit at C = 8; the MILP is the reference there.  (The joint and polyblock
    masters are exact too but need minutes here, since they refine one joint box; they are checked at C <= 3.)"""
    make = generate_moe2 if seed % 2 else generate_moe2_gated
    inst = make(400 + seed, experts=5 + seed % 3, categories=8)
    milp = MOE2_ALGORITHMS["exact"](inst)
    r = dmo(inst, time_limit=300)
    assert r.status is Status.OPTIMAL and milp.status is Status.OPTIMAL
    assert r.objective == pytest.approx(milp.objective, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("master", ["mckp", "joint"])
def test_dmo_bound_at_the_time_limit_is_a_bound_on_learned_gates(master):
    inst = generate_moe2_gated(21, experts=8, categories=3, energy_fraction=0.5)
    opt = exhaustive(inst).objective
    r = dmo(inst, master=master, time_limit=1e-4)
    assert r.status is Status.TIME_LIMIT and r.feasible
    assert r.objective <= opt + 1e-12 and r.bound is not None and r.bound >= opt


def test_runner_reads_format_2_and_dmo_is_exact_on_learned_gates(tmp_path):
    from slimcaching.analysis.report import load_frame, with_ratios
    from slimcaching.analysis.runner import run_sweep

    (tmp_path / "g").mkdir()
    for s in range(2):
        write_moe2_instance(generate_moe2_gated(s, experts=5, categories=2, queries=12, top_k=2,
                                                energy_accounting="per-query"), tmp_path / "g" / f"g{s}.json")
    db = tmp_path / "r.sqlite"
    run_sweep([tmp_path / "g"], "dmo,greedy,exhaustive", db=db, progress=False)
    m = with_ratios(load_frame(db)).set_index(["instance_hash", "name"])
    assert len(m) == 6
    for h in set(m.index.get_level_values(0)):
        assert m.loc[(h, "exhaustive")]["proven"]
        assert m.loc[(h, "dmo")]["ratio"] == pytest.approx(1.0, abs=1e-9)
        assert m.loc[(h, "greedy")]["ratio"] <= 1 + 1e-9
