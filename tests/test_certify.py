"""``certify``: gap 0 on the worked example, bounds never above any feasible latency, planted wrong cuts caught."""
from __future__ import annotations

import json
import math
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from reference import random_instance_dict
from slimcaching.algorithms import run
from slimcaching.algorithms.bruteforce import brute_force
from slimcaching.algorithms.certify import WORK_UNIT, certify
from slimcaching.errors import InputError
from slimcaching.formulations.bounds import InvalidBound, check_bound, separable_bound
from slimcaching.instances.io import read_instance
from slimcaching.instances.model import Placement
from slimcaching.instances.validate import instance_from_dict
from slimcaching.objective import latency


def test_certify_on_the_worked_example_closes_the_gap(worked_example):
    inst = read_instance(worked_example / "tiny.json")
    cert = certify(inst, time_limit=60)
    assert cert.gap == 0.0 or cert.gap <= 1e-9
    assert cert.status == "optimal"
    assert cert.latency == pytest.approx(9.172273055346421, rel=1e-9)
    assert latency(inst, cert.placement) == cert.latency


def test_certify_command_prints_one_json_object(worked_example, tmp_path):
    out = subprocess.run([sys.executable, "-m", "slimcaching.cli", "certify", str(worked_example / "tiny.json"),
                          "--time-limit", "60"], capture_output=True, text=True, check=True)
    d = json.loads(out.stdout)
    for key in ("latency", "bound", "gap", "status", "latency_method", "bound_method", "placement"):
        assert key in d
    assert d["gap"] <= 1e-9 and d["status"] == "optimal"
    inst = read_instance(worked_example / "tiny.json")
    assert latency(inst, Placement.from_cache(inst, d["placement"])) == pytest.approx(d["latency"], rel=1e-12)
    target = tmp_path / "cert.json"
    subprocess.run([sys.executable, "-m", "slimcaching.cli", "certify", str(worked_example / "tiny.json"),
                    "--time-limit", "30", "--output", str(target)], capture_output=True, text=True, check=True)
    assert json.loads(target.read_text())["bound"] == pytest.approx(d["bound"], rel=1e-9)


def test_certify_bad_time_limit_is_a_one_line_error(worked_example):
    out = subprocess.run([sys.executable, "-m", "slimcaching.cli", "certify", str(worked_example / "tiny.json"),
                          "--time-limit", "-1"], capture_output=True, text=True)
    assert out.returncode == 2 and "--time-limit" in out.stderr and "Traceback" not in out.stderr
    with pytest.raises(InputError, match="--time-limit: must be a number > 0"):
        certify(read_instance(worked_example / "tiny.json"), time_limit=0)


@given(st.integers(0, 10_000))
@settings(max_examples=25, deadline=None)
def test_every_bound_of_certify_is_below_the_optimum(seed):
    """Random instances (unequal sizes, unreachable and device nodes): every bound any method
    reported is <= T(opt) <= every incumbent, and the reported gap is honest."""
    inst = instance_from_dict(random_instance_dict(seed, max_layers=3, max_experts=4, max_k=3, max_nodes=3,
                                                   max_users=3, max_cap=6))
    opt = brute_force(inst).latency
    cert = certify(inst, time_limit=20, seed=seed)
    for b in cert.bounds:
        assert b["value"] <= opt * (1 + 1e-9), b
    for i in cert.incumbents:
        assert i["value"] >= opt * (1 - 1e-9), i
    assert cert.bound <= opt * (1 + 1e-9) <= cert.latency * (1 + 2e-9)
    assert latency(inst, cert.placement) == cert.latency


@pytest.mark.parametrize("route", ["enumeration", "branch-and-bound"])
def test_a_target_gap_is_certified_and_every_bound_stays_below_the_optimum(monkeypatch, route):
    """``gap=G``: every bound is <= T(opt) <= every incumbent, and a run that no clock cut ends with a
    certified gap of at most ``G``; through the count enumeration and through branch-and-bound (the
    enumeration switched off), each of which proves a target cutoff on some instances."""
    from slimcaching.algorithms import certify as certify_module

    if route == "branch-and-bound":
        monkeypatch.setattr(certify_module, "ENUMERATION_WORK", 0)
        monkeypatch.setattr(certify_module, "LONG_BUDGET", math.inf)
    method = "count enumeration" if route == "enumeration" else "HiGHS branch-and-bound (cutoff)"
    target_bounds = 0
    for seed in range(60):
        inst = instance_from_dict(random_instance_dict(seed, max_layers=3, max_experts=4, max_k=3, max_nodes=3,
                                                       max_users=3, max_cap=6))
        opt = brute_force(inst).latency
        for target in (0.02, 0.2):
            cert = certify(inst, time_limit=60, work_limit=0.05, seed=seed, gap=target)
            assert cert.info["gap_target"] == target
            for b in cert.bounds:
                assert b["value"] <= opt * (1 + 1e-9), b
            for i in cert.incumbents:
                assert i["value"] >= opt * (1 - 1e-9), i
            assert latency(inst, cert.placement) == cert.latency
            assert not cert.info["wall_cut"] and cert.gap <= target
            if any(b["method"] == "count enumeration" for b in cert.bounds) and \
                    max(b["value"] for b in cert.bounds if not b["method"].startswith("HiGHS branch-and-bound")) \
                    >= cert.latency * (1 - target):
                assert "branch_and_bound" not in cert.info  # the target was met: nothing runs after it
            target_bounds += any(b["method"] == method and b["value"] < opt * (1 - 1e-6) for b in cert.bounds)
    assert target_bounds >= 3


@pytest.mark.parametrize("value", ["1", "-0.1", "nan", "x"])
def test_a_bad_target_gap_is_a_one_line_error(worked_example, value):
    out = subprocess.run([sys.executable, "-m", "slimcaching.cli", "certify", str(worked_example / "tiny.json"),
                          "--gap", value], capture_output=True, text=True)
    assert out.returncode == 2 and "--gap" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    with pytest.raises(InputError, match="--gap: must be a number in"):
        certify(read_instance(worked_example / "tiny.json"), time_limit=10, gap=1.0)


@given(st.integers(0, 10_000))
@settings(max_examples=40, deadline=None)
def test_separable_bound_is_below_the_optimum(seed):
    inst = instance_from_dict(random_instance_dict(seed, max_layers=3, max_experts=4, max_k=3, max_nodes=3,
                                                   max_users=3, max_cap=6))
    opt = brute_force(inst).latency
    res = separable_bound(inst, upper=opt, rounds=60)
    assert res["bound"] <= opt * (1 + 1e-9)
    # the default run: still below the optimum, never below a shorter run, and it stops only
    # when its steps have shrunk (converged) or at the round cap
    full = separable_bound(inst, upper=opt)
    assert full["converged"] or full["rounds"] == 3000
    assert res["bound"] <= full["bound"] <= opt * (1 + 1e-9)


def _stable(cert) -> dict:
    """What a work-mode certificate must reproduce: values, methods, placement (not times)."""
    return {"latency": cert.latency, "bound": cert.bound, "latency_method": cert.latency_method,
            "bound_method": cert.bound_method, "x": cert.placement.x.tobytes(),
            "bounds": [(b["method"], b["value"]) for b in cert.bounds],
            "incumbents": [(i["method"], i["value"]) for i in cert.incumbents]}


@pytest.mark.parametrize("seed", [3, 17])
def test_work_mode_gives_the_same_certificate_twice_and_records_its_limits(seed):
    """Work mode stops every stage at a count: two runs agree exactly, and the caps are recorded."""
    inst = instance_from_dict(random_instance_dict(seed, max_layers=4, max_experts=5, max_k=3, max_nodes=3,
                                                   max_users=3, max_cap=8))
    first = certify(inst, time_limit=120, seed=1, work_limit=0.05)
    # a busy machine: the second run shares the core with a spinning thread
    import threading
    import time as _time
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            sum(range(1000))
    t = threading.Thread(target=spin, daemon=True)
    t.start()
    try:
        _time.sleep(0.01)
        second = certify(inst, time_limit=120, seed=1, work_limit=0.05)
    finally:
        stop.set()
        t.join()
    assert first.info["reproducible"] and second.info["reproducible"]
    assert first.info["work_limits"] == {k: max(1, round(v * 0.05)) for k, v in WORK_UNIT.items()}
    assert first.info["wall_cut"] == [] and first.info["work_limit"] == 0.05
    assert _stable(first) == _stable(second)
    opt = brute_force(inst).latency
    assert first.bound <= opt * (1 + 1e-9) <= first.latency * (1 + 2e-9)


def test_work_mode_reports_a_stage_the_wall_clock_cut(worked_example):
    """A work cap far beyond the wall: the wall ends it, and the run says it is not reproducible."""
    inst = read_instance(worked_example / "tiny.json")
    cert = certify(inst, time_limit=0.05, work_limit=1000)
    assert cert.info["reproducible"] is False
    assert cert.bound <= cert.latency * (1 + 1e-9)


def test_bad_work_limit_is_a_one_line_error(worked_example):
    out = subprocess.run([sys.executable, "-m", "slimcaching.cli", "certify", str(worked_example / "tiny.json"),
                          "--work-limit", "0"], capture_output=True, text=True)
    assert out.returncode == 2 and "--work-limit" in out.stderr and "Traceback" not in out.stderr
    with pytest.raises(InputError, match="--work-limit: must be a number > 0"):
        certify(read_instance(worked_example / "tiny.json"), work_limit=-1)


@pytest.mark.parametrize("seed", range(6))
def test_a_start_placement_is_an_incumbent_from_the_outset(seed, monkeypatch):
    """``start``: with ``best`` giving nothing and a budget too short for the later stages to matter,
    the certificate's latency is the start's (here the brute-force optimum), by the evaluator; every
    bound stays below it; and a start that does not fit the capacities is refused, naming the node."""
    import slimcaching.algorithms.certify as certify_mod

    inst = instance_from_dict(random_instance_dict(seed, max_layers=3, max_experts=4, max_k=3, max_nodes=3,
                                                   max_users=3, max_cap=6))
    bf = brute_force(inst)
    cert = certify(inst, time_limit=30, start=bf.placement)
    assert cert.latency == pytest.approx(bf.latency, rel=1e-12) and cert.info["start_latency"] == cert.latency
    assert {"method": "start", "value": latency(inst, bf.placement)}.items() <= cert.incumbents[1].items()
    assert all(b["value"] <= bf.latency * (1 + 1e-9) for b in cert.bounds)
    assert cert.info["start_gap"] == pytest.approx(max(0.0, (bf.latency - cert.bound) / bf.latency), abs=1e-15)
    monkeypatch.setattr(certify_mod, "best", lambda instance, **kw: run(instance, "cloud"))
    cold = certify(inst, time_limit=1e-3)
    warm = certify(inst, time_limit=1e-3, start=bf.placement)
    assert warm.latency == pytest.approx(bf.latency, rel=1e-12)
    assert warm.latency <= cold.latency
    full = Placement(np.ones((inst.N, inst.L, inst.max_experts), dtype=bool))
    over = full.over_capacity(inst)
    if over:
        with pytest.raises(InputError, match=rf"start: \$\.cache\.{inst.node_names[over[0]]}: caches .* more than"):
            certify(inst, time_limit=30, start=full)
    with pytest.raises(InputError, match=r"start: \$\.cache: must be a placement of instance"):
        certify(inst, time_limit=30, start=Placement(np.zeros((inst.N + 1, inst.L, inst.max_experts), bool)))


def test_a_start_below_a_planted_bound_is_caught(monkeypatch, worked_example):
    """The start is checked against every bound like any other incumbent: a bound above its latency
    (a planted capacity-free bound) raises instead of being reported."""
    import slimcaching.algorithms.certify as certify_mod

    inst = read_instance(worked_example / "tiny.json")
    opt = brute_force(inst)
    monkeypatch.setattr(certify_mod, "capacity_free_bound", lambda instance: opt.latency * 1.01)
    with pytest.raises(InvalidBound, match="start"):
        certify(inst, time_limit=30, start=opt.placement)


def test_certify_command_takes_a_start_file(worked_example, tmp_path):
    """``--start F``: the certificate lists F's placement as an incumbent, with a hash that tells
    placements apart; a placement over a node's capacity is a one-line error naming F (exit 2), and F
    cannot be the output.  (A placement of another instance: the library test above.)"""
    inst = read_instance(worked_example / "tiny.json")
    opt = brute_force(inst)
    start = tmp_path / "start.json"
    start.write_text(json.dumps({"format": "slimcaching-placement/1", "cache": opt.placement.to_cache(inst)}))
    cli = [sys.executable, "-m", "slimcaching.cli", "certify", str(worked_example / "tiny.json"), "--time-limit", "30"]
    out = subprocess.run(cli + ["--start", str(start)], capture_output=True, text=True, check=True)
    d = json.loads(out.stdout)
    assert d["incumbents"][1]["method"] == "start"
    assert d["incumbents"][1]["value"] == pytest.approx(opt.latency, rel=1e-12)
    assert d["latency"] == pytest.approx(opt.latency, rel=1e-12)
    assert d["info"]["start_gap"] == pytest.approx(d["gap"], abs=1e-12)  # the start is the optimum here
    other = certify(inst, time_limit=5, start=inst.empty_placement())
    assert d["info"]["start_hash"] != other.info["start_hash"]
    assert d["info"]["start_hash"] == certify(inst, time_limit=5, start=opt.placement).info["start_hash"]
    over = tmp_path / "over.json"
    over.write_text(json.dumps({"format": "slimcaching-placement/1", "cache": Placement(
        np.ones((inst.N, inst.L, inst.max_experts), dtype=bool)).to_cache(inst)}))
    bad = subprocess.run(cli + ["--start", str(over)], capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert str(over) in bad.stderr and "more than the node's capacity" in bad.stderr
    same = subprocess.run(cli + ["--start", str(start), "--output", str(start)], capture_output=True, text=True)
    assert same.returncode == 2 and "refusing to overwrite" in same.stderr
    assert json.loads(start.read_text())["format"] == "slimcaching-placement/1"  # untouched


def _planted(monkeypatch):
    """A wrong 'tightening': allow no expert of any layer on any node (removes every nonempty placement)."""
    def wrong(instance, capacity, counts):
        return [(n, l, 0) for n in range(instance.N) for l in np.flatnonzero(counts[n]).tolist()]

    for mod in ("slimcaching.formulations.tightenings", "slimcaching.formulations.arrays"):
        monkeypatch.setattr(f"{mod}.cardinality_rows", wrong)


def test_a_planted_wrong_cut_is_caught_by_certify(monkeypatch, worked_example):
    inst = read_instance(worked_example / "tiny.json")
    _planted(monkeypatch)
    with pytest.raises(InvalidBound, match=r"bound .* from .* exceeds the latency .* of a feasible placement"):
        certify(inst, time_limit=30)


def test_a_planted_wrong_cut_is_caught_by_decompose(monkeypatch, worked_example):
    inst = read_instance(worked_example / "tiny.json")
    _planted(monkeypatch)
    with pytest.raises(InvalidBound):
        run(inst, "decompose", seed=0)


def test_check_bound_tolerates_rounding_only():
    check_bound(1.0 + 1e-12, "lp", 1.0, "best")
    with pytest.raises(InvalidBound, match="bound 1.001 from lp exceeds the latency 1.0 of a feasible placement "
                                           "from best"):
        check_bound(1.001, "lp", 1.0, "best")


@given(st.integers(0, 10_000))
@settings(max_examples=15, deadline=None)
def test_rins_with_everything_free_is_the_whole_model_and_never_worse(seed):
    """RINS fixes only where LP and incumbent agree: with a fractional LP everywhere it solves the
    whole model (the brute-force optimum); with the incumbent's own values it has nothing to do."""
    from slimcaching.algorithms.certify import _Ledger, _rins

    inst = instance_from_dict(random_instance_dict(seed, max_layers=3, max_experts=4, max_k=3, max_nodes=3,
                                                   max_users=3, max_cap=6))
    opt = brute_force(inst).latency
    ledger = _Ledger(inst, 0.0)
    info: dict = {}
    _rins(inst, ledger, np.full(inst.empty_placement().x.shape, 0.5), 30.0, 0, info, None, ())
    assert info["rins"]["free"] == info["rins"]["elements"]
    assert ledger.best_latency == pytest.approx(opt, rel=1e-7)
    same = _Ledger(inst, 0.0)
    _rins(inst, same, same.placement.x.astype(float), 30.0, 0, info, 50, ())
    assert info["rins"]["free"] == 0 and same.best_latency == latency(inst, inst.empty_placement())


def test_certify_cpu_time_counts_the_highs_child_processes(monkeypatch):
    """Models solved in a child process (here: all of them) are part of the reported CPU time.
    (Not the worked example: price-and-branch closes its gap after one tiny LP, whose child uses
    less than the 10 ms that ``os.times`` counts; on this file the children use seconds.)"""
    import os

    from slimcaching.formulations import direct

    monkeypatch.setattr(direct, "ISOLATE_ROWS", 0)
    inst = read_instance("instances/small/small-004.json")
    before = os.times()
    cert = certify(inst, time_limit=60)
    after = os.times()
    children = (after.children_user + after.children_system) - (before.children_user + before.children_system)
    own = (after.user + after.system) - (before.user + before.system)
    assert cert.status == "optimal"
    assert children > 0  # the check has something to count
    assert children <= cert.cpu_s <= own + children + 1e-9


@pytest.mark.parametrize("seed", [0, 3, 9, 13])  # instances with a non-empty level model
def test_large_model_path_bounds_stay_below_the_optimum(seed, monkeypatch):
    """With the full LP ruled out (as on the large paper files), the separable bound and the
    LP-priced decomposition it starts are still <= T(opt), and work mode caps the subgradient rounds."""
    import slimcaching.algorithms.certify as certify_mod

    monkeypatch.setattr(certify_mod, "FULL_LP_ROWS", 0)
    inst = instance_from_dict(random_instance_dict(seed, max_layers=3, max_experts=4, max_k=3, max_nodes=3,
                                                   max_users=3, max_cap=6))
    opt = brute_force(inst).latency
    for kw in ({"time_limit": 30}, {"time_limit": 120, "work_limit": 0.2}):
        cert = certify(inst, seed=0, **kw)
        methods = {b["method"]: b for b in cert.bounds}
        assert "separable Lagrangian" in methods and not cert.info["full_model"]
        for b in cert.bounds:
            assert b["value"] <= opt * (1 + 1e-9), b
        assert cert.bound <= opt * (1 + 1e-9) <= cert.latency * (1 + 2e-9)
        if "work_limit" in kw:
            assert methods["separable Lagrangian"]["rounds"] <= WORK_UNIT["separable_rounds"] * 0.2


@pytest.mark.parametrize("stall", [None, 1], ids=["default", "lns-stall-1"])
def test_certify_closes_small_gaps_by_count_enumeration(monkeypatch, stall):
    """Where the LP, the decomposition, RINS and the LNS leave a gap on a small model, the count
    enumeration closes it: the certificate is the brute-force optimum, proven; also when the LNS before
    it stops at its first step that improves nothing."""
    from slimcaching.algorithms import certify as certify_module

    if stall is not None:
        monkeypatch.setattr(certify_module, "LNS_STALL", stall)
    reached = stalled = 0
    for seed in range(40):
        inst = instance_from_dict(random_instance_dict(seed, max_layers=3, max_experts=4, max_k=3, max_nodes=3,
                                                       max_users=3, max_cap=6))
        cert = certify(inst, time_limit=60, work_limit=0.05, seed=seed)
        if "count_enumeration" not in cert.info:
            continue
        reached += 1
        opt = brute_force(inst).latency
        assert cert.info["count_enumeration"]["complete"] and cert.info["count_enumeration"]["proved"]
        assert cert.info["count_enumeration"]["table_layers"] == inst.L  # every layer costed exactly by table
        assert cert.status == "optimal" and cert.bound_method == "count enumeration"
        assert cert.latency == pytest.approx(opt, rel=1e-9) and cert.bound <= opt * (1 + 1e-9)
        stalled += bool(cert.info.get("lns", {}).get("stalled"))
    assert reached >= 5
    if stall == 1:
        assert stalled >= 3


@pytest.mark.parametrize("rung", [0.01, 0.05])
def test_the_enumeration_proves_its_rung_first_then_the_optimum(monkeypatch, rung):
    """Aiming at the optimum, the count enumeration first searches below ``ENUMERATION_RUNG`` only, and
    for the optimum only once that is proven; the certificate is the brute-force optimum, proven, and
    every bound on the way stays below it."""
    from slimcaching.algorithms import certify as certify_module

    monkeypatch.setattr(certify_module, "ENUMERATION_RUNG", rung)
    targets = []
    real = certify_module.count_enumeration

    def recording(*args, target_gap=0.0, **kw):
        targets.append(target_gap)
        return real(*args, target_gap=target_gap, **kw)

    monkeypatch.setattr(certify_module, "count_enumeration", recording)
    both = 0
    for seed in range(40):
        inst = instance_from_dict(random_instance_dict(seed, max_layers=3, max_experts=4, max_k=3, max_nodes=3,
                                                       max_users=3, max_cap=6))
        targets.clear()
        cert = certify(inst, time_limit=60, work_limit=0.05, seed=seed)
        opt = brute_force(inst).latency
        for b in cert.bounds:
            assert b["value"] <= opt * (1 + 1e-9), b
        assert not cert.info["wall_cut"]
        if not targets:
            continue
        assert targets in ([rung, 0.0], [rung], [0.0])
        if targets[0] == rung:
            assert cert.info["count_enumeration_rung"]["target_gap"] == rung
        if targets == [rung, 0.0]:
            both += 1
        assert cert.status == "optimal" and cert.latency == pytest.approx(opt, rel=1e-9)
    assert both >= 3


def test_the_lns_stalls_before_branch_and_bound_exactly_on_mixed_expert_sizes(monkeypatch):
    """With the enumeration switched off, the LNS before branch-and-bound gets the stall rule on the
    models with more than one expert size (the count decomposition's route) and on no other; every
    certificate still brackets the brute-force optimum."""
    from slimcaching.algorithms import certify as certify_module

    monkeypatch.setattr(certify_module, "ENUMERATION_WORK", 0)
    monkeypatch.setattr(certify_module, "LONG_BUDGET", math.inf)
    monkeypatch.setattr(certify_module, "LNS_STALL", 1)
    calls = []
    real = certify_module.milp_lns

    def recording(*args, stall_steps=None, **kw):
        calls.append(stall_steps)
        return real(*args, stall_steps=stall_steps, **kw)

    monkeypatch.setattr(certify_module, "milp_lns", recording)
    seen = {True: 0, False: 0}
    for seed in range(40):
        data = random_instance_dict(seed, max_layers=3, max_experts=4, max_k=3, max_nodes=3, max_users=3, max_cap=6)
        if seed % 2:  # one expert size on every other instance
            for layer in data["layers"]:
                layer["expert_size"] = 1
        inst = instance_from_dict(data)
        calls.clear()
        cert = certify(inst, time_limit=60, work_limit=0.05, seed=seed)
        opt = brute_force(inst).latency
        assert cert.bound <= opt * (1 + 1e-9) and opt <= cert.latency * (1 + 1e-9)
        assert "count_enumeration" not in cert.info
        if "lns" not in cert.info:  # the gap closed before the LNS
            continue
        mixed = len(np.unique(inst.expert_size)) > 1
        assert calls == [1 if mixed else None]
        seen[mixed] += 1
    assert seen[True] >= 3 and seen[False] >= 3, seen


@pytest.mark.parametrize("name", ["tiny-012", "tiny-027"])
def test_a_long_budget_routes_fully_tabulated_instances_through_the_count_enumeration(monkeypatch, name):
    """With the work route closed (``ENUMERATION_WORK`` = 0), a budget below ``LONG_BUDGET`` goes
    through branch-and-bound and one at or above it through the count enumeration; both certificates
    hold the brute-force optimum, and the enumeration's is its own proof."""
    from slimcaching.algorithms import certify as certify_module
    from slimcaching.formulations import enumeration

    inst = read_instance(f"instances/tiny/{name}.json")
    opt = brute_force(inst).latency
    assert enumeration.tabulated(inst) and enumeration.count_vectors(inst) <= enumeration.LONG_VECTORS
    monkeypatch.setattr(certify_module, "ENUMERATION_WORK", 0)
    monkeypatch.setattr(certify_module, "LONG_BUDGET", 60.0)
    monkeypatch.setattr(certify_module, "LONG_ROUTE_BEST", 0.5)
    best_limits, enum_ends = [], []
    real_best, real_enumerate = certify_module.best, certify_module._enumerate

    def timed_best(*args, time_limit=None, **kw):
        best_limits.append(time_limit)
        return real_best(*args, time_limit=time_limit, **kw)

    def timed_enumerate(instance, ledger, prices, seconds, *args, **kw):
        enum_ends.append(time.perf_counter() + seconds - t_call)
        return real_enumerate(instance, ledger, prices, seconds, *args, **kw)

    monkeypatch.setattr(certify_module, "best", timed_best)
    monkeypatch.setattr(certify_module, "_enumerate", timed_enumerate)
    t_call = time.perf_counter()
    short = certify(inst, time_limit=59.0)
    assert "long_enumeration" not in short.info and "count_enumeration" not in short.info
    assert best_limits == [pytest.approx(0.05 * 59.0)] and not enum_ends
    t_call = time.perf_counter()
    long = certify(inst, time_limit=60.0)
    # the last enumeration's record (the rung's, when it already proved the optimum)
    record = long.info.get("count_enumeration", long.info.get("count_enumeration_rung"))
    assert long.info["long_enumeration"] and record["proved"]
    # the long route: a short ``best``, and the enumeration (the rung's and the optimum's, if both run)
    # may run to the end of the budget (not 95 %)
    assert best_limits[1] == 0.5 and 1 <= len(enum_ends) <= 2
    assert all(0.97 * 60.0 < end < 60.5 for end in enum_ends)
    assert record["table_layers"] == inst.L
    for cert in (short, long):
        assert cert.status == "optimal" and cert.latency == pytest.approx(opt, rel=1e-9)
        assert cert.bound <= opt * (1 + 1e-9)
        assert latency(inst, cert.placement) == pytest.approx(cert.latency, rel=1e-12)


def test_tabulated_says_which_shipped_files_the_long_route_can_take():
    """``mixed-mixtral-8x7b-5g-mec`` (two shared nodes: the mask scan) and ``mixed-mixtral-8x7b-wifi-jetson``
    (four shared nodes: the node-set scan) have a count table for every layer and at most
    ``LONG_VECTORS`` vectors; the paper Mixtral ``wifi-jetson`` file (twelve node sets per expert) has
    none; and ``mixed-llama-4-scout-wifi-jetson-L12`` has tables but too many vectors."""
    from slimcaching.formulations import enumeration

    mec, jetson, scout = (read_instance(f"instances/mixed-precision/{n}.json") for n in
                          ("mixed-mixtral-8x7b-5g-mec", "mixed-mixtral-8x7b-wifi-jetson",
                           "mixed-llama-4-scout-wifi-jetson-L12"))
    for inst in (mec, jetson):
        assert enumeration.tabulated(inst) and enumeration.count_vectors(inst) <= enumeration.LONG_VECTORS
    assert not enumeration.tabulated(read_instance("instances/paper/paper-mixtral-8x7b-wifi-jetson-int4.json"))
    assert enumeration.tabulated(scout) and enumeration.count_vectors(scout) > enumeration.LONG_VECTORS
