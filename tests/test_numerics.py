"""Never a false certificate: exact and brute force agree at every latency scale, and a wrong
solver answer is caught rather than reported as optimal.

HiGHS's tolerances are absolute; before latencies were scaled, ``tiny-003`` with every
latency times 1e-5 came back "optimal" 18 % above the optimum with a bound above it.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from reference import brute_force as brute_force_from_definition
from reference import random_instance_dict, scale_latencies
from slimcaching.algorithms.bruteforce import brute_force
from slimcaching.formulations import exact, lp_bound
from slimcaching.formulations import solve as solve_mod
from slimcaching.formulations.solve import capacity_free_bound, latency_scale, scaled_instance
from slimcaching.instances.validate import instance_from_dict
from slimcaching.objective import latency
from slimcaching.result import Status

ROOT = Path(__file__).resolve().parents[1]
SCALES = [1e-12, 1e-9, 1e-7, 1e-5, 1.0, 1e3, 1e9]
FILES = [ROOT / "tests" / "data" / "tiny.json", ROOT / "instances" / "tiny" / "tiny-003.json"]


def _check_against(inst, opt: float, formulation: str) -> None:
    res = exact(inst, formulation=formulation)
    assert res.status is Status.OPTIMAL, res.message
    assert res.info["numerics"] == "ok"
    assert res.latency == pytest.approx(opt, rel=1e-9)
    assert res.bound <= opt * (1 + 1e-12)  # a bound, at every scale
    assert res.bound >= opt * (1 - 1e-6)  # and it closes the gap
    assert res.gap <= 1e-6


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_exact_equals_brute_force_at_every_latency_scale(path, scale):
    d = scale_latencies(json.loads(path.read_text()), scale)
    inst = instance_from_dict(d)
    bf = brute_force(inst)
    assert bf.status is Status.OPTIMAL
    assert bf.latency == pytest.approx(brute_force_from_definition(d), rel=1e-12)
    for formulation in ("level", "assignment"):
        _check_against(inst, bf.latency, formulation)
        assert lp_bound(inst, formulation) <= bf.latency * (1 + 1e-12)
    assert capacity_free_bound(inst) <= bf.latency * (1 + 1e-12)


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scale=st.sampled_from([1e-12, 1e-9, 1e-5, 1e3, 1e9]))
def test_exact_equals_brute_force_on_random_scaled_instances(seed, scale):
    d = scale_latencies(random_instance_dict(seed, max_layers=2, max_experts=3, max_k=3, max_nodes=3,
                                             max_users=3, max_cap=5), scale)
    inst = instance_from_dict(d)
    opt = brute_force_from_definition(d)
    bf = brute_force(inst)
    assert bf.latency == pytest.approx(opt, rel=1e-12) and bf.bound == bf.latency
    for formulation in ("level", "assignment"):
        _check_against(inst, opt, formulation)
        assert lp_bound(inst, formulation) <= opt * (1 + 1e-12)


@pytest.mark.parametrize("scale", [1e-9, 1e-5, 1e4])
@pytest.mark.parametrize("seed", range(4))
def test_cold_model_path_never_bounds_above_the_optimum_at_any_scale(seed, scale, monkeypatch):
    """The path of the largest models (no full LP, layers priced as LPs by PDLP, the line search from
    prices that price every layer out) proves nothing above the brute-force optimum at small or large
    latency scales, and ``certify`` on it returns a placement whose latency the evaluator confirms."""
    import slimcaching.algorithms.certify as certify_mod
    import slimcaching.formulations.decomposition as decomposition_mod
    from slimcaching.algorithms.certify import certify
    from slimcaching.formulations.decomposition import column_generation
    from slimcaching.objective import empty_latency

    monkeypatch.setattr(certify_mod, "FULL_LP_ROWS", 0)
    monkeypatch.setattr(certify_mod, "MILP_PRICING_ROWS", 0)
    monkeypatch.setattr(decomposition_mod, "WARM_PRICING_ROWS", 0)
    inst = instance_from_dict(scale_latencies(random_instance_dict(
        seed, max_layers=3, max_experts=4, max_k=3, max_nodes=3, max_users=3, max_cap=6), scale))
    opt = brute_force(inst).latency
    nu = np.full(inst.N, 10.0 * empty_latency(inst))  # every expert priced far above what it saves
    dw = column_generation(inst, prices=nu, pricing="lp", price_time=None, time_limit=None, max_rounds=60)
    assert dw.lp_solver == "pdlp"
    assert sum(h["alpha"] is None for h in dw.history) > 1  # the line search ran
    assert all(h["bound"] <= opt * (1 + 1e-9) for h in dw.history if h["bound"] is not None)
    cert = certify(inst, seed=0, time_limit=30)
    assert cert.info["decomposition"]["lp_solver"] == "pdlp" and not cert.info["full_model"]
    for b in cert.bounds:
        assert b["value"] <= opt * (1 + 1e-9), b
    assert cert.latency >= opt * (1 - 1e-9)
    assert latency(inst, cert.placement) == pytest.approx(cert.latency, rel=1e-12)


def test_brute_force_is_exact_below_any_absolute_tolerance():
    """Two placements 1e-13 s apart at a 1e-12 scale: a 1e-15 absolute tolerance called them equal."""
    d = scale_latencies(json.loads(FILES[1].read_text()), 1e-12)
    inst = instance_from_dict(d)
    bf = brute_force(inst)
    scaled_back = brute_force(instance_from_dict(json.loads(FILES[1].read_text())))
    assert bf.latency == pytest.approx(scaled_back.latency * 1e-12, rel=1e-12)
    assert bf.placement == scaled_back.placement


def test_scaling_is_exact():
    d = scale_latencies(json.loads(FILES[0].read_text()), 3e-9)
    inst = instance_from_dict(d)
    s = latency_scale(inst)
    assert math.frexp(s)[0] == 0.5  # a power of two
    scaled = scaled_instance(inst, s)
    assert np.array_equal(scaled.latency * s, inst.latency)  # exact both ways
    assert np.array_equal(scaled.cloud_latency * s, inst.cloud_latency)
    assert 0.5 < latency(scaled, scaled.empty_placement()) < 2


# ------------------------------------------------------- planted solver failures
@pytest.mark.parametrize("formulation", ["level", "assignment"])
def test_planted_bound_above_the_optimum_is_caught(tamper_solver, formulation):
    inst = instance_from_dict(json.loads(FILES[1].read_text()))
    opt = brute_force(inst).latency

    def lie(rep):
        rep.bound *= 1.2

    calls = tamper_solver(solve_mod, lie)
    res = exact(inst, formulation=formulation)
    assert res.status is not Status.OPTIMAL
    assert res.bound <= opt * (1 + 1e-12)
    assert res.bound == pytest.approx(capacity_free_bound(inst), rel=1e-15)
    assert res.info["bound_source"] == "capacity-free" and res.info["resolved"]
    assert "numerical failure" in res.message and "above T" in res.info["numerics"]
    assert len(calls) == 2 and calls[1]["primal_feasibility_tolerance"] == 1e-10  # re-solved tight
    assert res.latency == pytest.approx(opt, rel=1e-9)  # the placement itself was fine


def test_planted_failure_that_a_tight_resolve_fixes(tamper_solver):
    inst = instance_from_dict(json.loads(FILES[1].read_text()))
    opt = brute_force(inst).latency

    def lie(rep):
        rep.bound *= 1.5

    tamper_solver(solve_mod, lie, times=1)
    res = exact(inst)
    assert res.status is Status.OPTIMAL and res.info["resolved"] and res.info["numerics"] == "ok"
    assert "re-solved with tight tolerances" in res.message
    assert res.bound <= opt * (1 + 1e-12) and res.latency == pytest.approx(opt, rel=1e-9)


def test_planted_placement_that_disagrees_with_its_objective(tamper_solver):
    """The solver claims its optimum for the empty placement: the evaluator cross-check refuses it."""
    inst = instance_from_dict(json.loads(FILES[1].read_text()))
    opt = brute_force(inst).latency

    def swap(rep):
        rep.values = np.zeros_like(rep.values)

    tamper_solver(solve_mod, swap)
    res = exact(inst, warm_start=False)
    assert res.status is not Status.OPTIMAL
    assert "solver objective" in res.info["numerics"] and "evaluator gives" in res.info["numerics"]
    assert res.bound <= opt * (1 + 1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["small-049", "small-010"])
def test_shipped_instances_where_unscaled_highs_certified_wrongly(name):
    """Unscaled, HiGHS 1.16 called small-049 (assignment) optimal with a bound 4.5e-7 s above a
    placement the level model finds; HiGHS 1.5-1.15 gave small-010 (level) a placement 5.4e-6
    (relative) off its objective.  Both formulations must now agree and bound each other."""
    from slimcaching.instances.io import read_instance

    inst = read_instance(ROOT / "instances" / "small" / f"{name}.json")
    a, lv = exact(inst, formulation="assignment"), exact(inst, formulation="level")
    assert a.status is Status.OPTIMAL and lv.status is Status.OPTIMAL, (a.message, lv.message)
    assert a.latency == pytest.approx(lv.latency, rel=1e-9)
    assert a.bound <= lv.latency * (1 + 1e-12) and lv.bound <= a.latency * (1 + 1e-12)
