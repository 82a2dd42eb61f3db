"""Limits are promises: time limits (build included), the deterministic node limit, Ctrl-C inside a
HiGHS solve, brute force's count before it enumerates, and the choice of solver.

A time limit holds when the call returns within ``time_limit * 1.05 + 2`` s with a feasible
incumbent and a bound that is a bound.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from reference import random_instance_dict
from slimcaching.algorithms import run
from slimcaching.algorithms.bruteforce import brute_force, count_maximal_caches, maximal_node_caches
from slimcaching.cli import main
from slimcaching.errors import InputError
from slimcaching.formulations import exact
from slimcaching.formulations import solve as solve_mod
from slimcaching.formulations.solve import capacity_free_bound, start_placement
from slimcaching.instances.generators import random_instance
from slimcaching.instances.io import read_instance, write_instance
from slimcaching.instances.validate import instance_from_dict
from slimcaching.objective import latency
from slimcaching.result import Status
from slimcaching.solvers import available_solvers

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "instances" / "tiny" / "tiny-003.json"


def promised(limit: float) -> float:
    return limit * 1.05 + 2.0


def _busy(n: int = 2) -> list[subprocess.Popen]:
    """Processes that keep the CPU busy (the machine under load)."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


# ------------------------------------------------------------------ exact: time limits
def test_time_limit_holds_when_the_build_is_slow(monkeypatch):
    """The model is built in the solver process, so a build that never ends cannot hold the call."""
    inst = read_instance(TINY)
    opt = brute_force(inst).latency
    real = solve_mod.FORMULATIONS["level"]

    def slow_build(instance, relax=False):
        time.sleep(120)
        return real(instance, relax=relax)

    monkeypatch.setitem(solve_mod.FORMULATIONS, "level", slow_build)
    t0 = time.perf_counter()
    res = run(inst, "exact", time_limit=2.0, seed=0)
    assert time.perf_counter() - t0 <= promised(2.0)
    assert res.status is Status.TIME_LIMIT and res.info["stopped_by"] == "time_limit"
    assert res.info["build_time_s"] is None  # the build never finished
    assert res.feasible and res.latency <= latency(inst, start_placement(inst))
    assert res.bound == pytest.approx(capacity_free_bound(inst)) and res.bound <= opt
    assert res.info["incumbent_source"] in ("fill", "best")


@pytest.mark.slow
def test_time_limit_holds_when_the_solver_ignores_its_own(monkeypatch):
    """HiGHS told to run for a day (its own time_limit overridden): the parent still stops it."""
    inst = random_instance(layers=12, experts=16, top_k=2, nodes=4, users=4, seed=7)
    t0 = time.perf_counter()
    res = exact(inst, formulation="assignment", time_limit=3.0, seed=0, solver_options={"time_limit": 86400})
    assert time.perf_counter() - t0 <= promised(3.0)
    assert res.status is Status.TIME_LIMIT and res.info["stopped_by"] == "time_limit"
    assert res.feasible and res.latency <= latency(inst, start_placement(inst))
    assert res.bound is not None and res.bound <= res.latency


# ------------------------------------------------------------------ exact: node limit
def _node_limited():
    inst = random_instance(layers=10, experts=4, top_k=1, nodes=2, users=4, seed=2,
                           expert_size=[3, 5, 7, 11, 13, 17, 19, 23, 29, 31], capacity_fraction=0.3)
    res = exact(inst, node_limit=30, seed=0, time_limit=600)
    return (res.status, res.latency, res.bound, res.info["mip_node_count"], res.info["stopped_by"],
            res.placement.elements().tolist(), res.params["threads"])


@pytest.mark.slow
def test_node_limit_gives_the_same_answer_on_a_loaded_machine():
    quiet = _node_limited()
    procs = _busy()
    try:
        loaded = _node_limited()
    finally:
        for p in procs:
            p.kill()
    assert quiet == loaded
    status, lat, bound, nodes, stopped_by, _, threads = quiet
    assert stopped_by == "node_limit" and nodes == 30 and threads == 1
    assert status is Status.FEASIBLE and bound < lat  # stopped before the proof: not "optimal"


def test_node_limit_is_recorded_and_checked():
    inst = read_instance(TINY)
    res = exact(inst, node_limit=1000)
    assert res.status is Status.OPTIMAL and res.params["node_limit"] == 1000 and res.info["node_limit"] == 1000
    assert res.info["stopped_by"] is None
    with pytest.raises(InputError, match=r"--node-limit: must be an integer >= 1, got 0"):
        exact(inst, node_limit=0)


# ------------------------------------------------------------------ Ctrl-C
@pytest.mark.slow
def test_sigint_inside_highs_keeps_the_incumbent_and_exits_130(tmp_path):
    """A real SIGINT to ``slimcaching solve``: within 2 s, exit 130, one line, the placement written."""
    inst_file, out = tmp_path / "inst.json", tmp_path / "out.json"
    write_instance(random_instance(layers=8, experts=16, top_k=2, nodes=4, users=4, seed=0), inst_file)
    proc = subprocess.Popen([sys.executable, "-m", "slimcaching.cli", "solve", str(inst_file), "--algorithm", "exact",
                             "-o", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while not _children(proc.pid):  # the solver process has been started ...
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(8)  # ... and has had time to build and load the model and enter HiGHS
        assert proc.poll() is None
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        elapsed = time.monotonic() - t0
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert elapsed <= 2.0
    assert err.strip() == "interrupted"
    d = json.loads(out.read_text())
    assert d["status"] == "feasible" and d["info"]["stopped_by"] == "interrupt"
    inst = read_instance(inst_file)
    assert d["latency"] <= latency(inst, start_placement(inst)) * (1 + 1e-12)
    assert d["bound"] <= d["latency"]
    assert not _children(proc.pid)


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(c) for c in fh.read().split()]
    except OSError:
        return []


# ------------------------------------------------------------------ brute force
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_count_equals_the_caches_listed(seed):
    inst = instance_from_dict(random_instance_dict(seed, max_layers=3, max_experts=5, max_k=3, max_nodes=3,
                                                   max_users=3, max_cap=6))
    for n in range(inst.N):
        caches = maximal_node_caches(inst, n)
        assert count_maximal_caches(inst, n) == len(caches) == len(set(caches))
        used = [sum(int(inst.expert_size[l]) for l, _ in c) for c in caches]
        assert max(used, default=0) <= inst.capacity[n]


def test_brute_force_refuses_before_enumerating():
    """The README's example has 1.2e21 combinations: refused at once, not after minutes."""
    inst = random_instance(layers=4, experts=8, top_k=2, nodes=3, users=3, seed=1)
    t0 = time.perf_counter()
    with pytest.raises(InputError, match=r"brute-force would enumerate 1.16e\+21 placements .*use exact"):
        brute_force(inst, time_limit=1.0)
    assert time.perf_counter() - t0 < 2.0


def test_brute_force_honours_its_time_limit():
    inst = random_instance(layers=3, experts=6, top_k=2, nodes=2, users=2, seed=4)
    counts = [count_maximal_caches(inst, n) for n in range(inst.N)]
    assert np.prod(counts) > 50_000  # several seconds of evaluations
    t0 = time.perf_counter()
    res = brute_force(inst, time_limit=0.5, max_placements=10**9)
    assert time.perf_counter() - t0 <= promised(0.5)
    assert res.status is Status.TIME_LIMIT and res.feasible
    assert res.bound == pytest.approx(capacity_free_bound(inst)) and res.bound <= res.latency
    assert 0 < res.info["placements_evaluated"] < res.info["placements"]


# ------------------------------------------------------------------ MoE² MILP
@pytest.mark.slow
def test_moe2_milp_time_limit_returns_the_greedy_incumbent_and_a_bound():
    from slimcaching.moe2.algorithms import MOE2_ALGORITHMS
    from slimcaching.moe2.generator import generate_moe2

    inst = generate_moe2(1, experts=16, categories=3)
    inst.content_hash()  # the instance hash (not the solver) costs ~1 CPU-s at M = 16; cached here
    greedy = MOE2_ALGORITHMS["greedy"](inst)
    t0 = time.perf_counter()
    res = MOE2_ALGORITHMS["exact"](inst, time_limit=1.0, seed=0)
    assert time.perf_counter() - t0 <= promised(1.0)
    assert res.feasible and res.objective >= greedy.objective  # never the empty selection
    assert res.bound is not None and res.bound >= res.objective
    assert res.status in (Status.TIME_LIMIT, Status.OPTIMAL)
    if res.status is Status.TIME_LIMIT:
        assert res.info["stopped_by"] == "time_limit"


def test_moe2_milp_bound_is_checked(tamper_solver):
    """A HiGHS bound below a feasible selection is dropped, never raised to the incumbent."""
    from slimcaching.moe2 import milp
    from slimcaching.moe2.algorithms import MOE2_ALGORITHMS
    from slimcaching.moe2.generator import generate_moe2

    inst = generate_moe2(2, experts=6, categories=3)
    opt = MOE2_ALGORITHMS["exhaustive"](inst).objective

    def lie(rep):
        rep.bound *= 0.5

    tamper_solver(milp, lie)
    res = MOE2_ALGORITHMS["exact"](inst)
    assert res.status is Status.FEASIBLE and "numerical failure" in res.message
    assert res.info["bound_source"] == "energy-free" and res.bound >= opt * (1 - 1e-12)
    assert res.objective == pytest.approx(opt, rel=1e-9)


# ------------------------------------------------------------------ --solver
def test_missing_solver_is_one_line_naming_the_available_ones(capsys):
    rc = main(["solve", str(TINY), "--algorithm", "exact", "--solver", "no-such-solver"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert err.startswith("--solver: solver 'no-such-solver' is not available; available: highs")


def test_bad_solver_option_is_one_line(capsys):
    rc = main(["solve", str(TINY), "--algorithm", "exact", "--solver-option", "no_such_option=1"])
    err = capsys.readouterr().err
    assert rc == 2 and err == "--solver-option: HiGHS rejects option no_such_option=1\n"
    rc = main(["solve", str(TINY), "--algorithm", "exact", "--solver-option", "novalue"])
    assert rc == 2 and "expected KEY=VALUE" in capsys.readouterr().err


@pytest.mark.parametrize("solver", [s for s in ("appsi_highs", "glpk", "cbc", "scip", "gurobi", "cplex")
                                    if s in available_solvers()])
@pytest.mark.parametrize("formulation", ["level", "assignment"])
def test_other_solvers_equal_brute_force(solver, formulation, tmp_path, capsys):
    inst = read_instance(TINY)
    opt = brute_force(inst).latency
    out = tmp_path / "p.json"
    rc = main(["solve", str(TINY), "--algorithm", "exact", "--solver", solver, "--formulation", formulation,
               "--time-limit", "60", "-o", str(out)])
    assert rc == 0, capsys.readouterr().err
    d = json.loads(out.read_text())
    assert d["status"] == "optimal" and d["info"]["solver"] == solver and d["params"]["solver"] == solver
    assert d["latency"] == pytest.approx(opt, rel=1e-9) and d["bound"] <= opt * (1 + 1e-12)


def test_solver_options_reach_highs():
    inst = random_instance(layers=10, experts=4, top_k=1, nodes=2, users=4, seed=2,
                           expert_size=[3, 5, 7, 11, 13, 17, 19, 23, 29, 31], capacity_fraction=0.3)
    res = exact(inst, solver_options=["mip_max_nodes=3", "presolve=off"], threads=1)
    assert res.params["solver_options"] == {"mip_max_nodes": 3, "presolve": "off"}
    assert res.info["mip_node_count"] == 3 and res.info["termination_condition"] == "iterationLimit"
    assert res.status is Status.FEASIBLE and res.bound < res.latency


@pytest.mark.slow
def test_sigint_during_the_moe2_milp_raises_with_the_greedy_selection():
    import threading

    from slimcaching.moe2.algorithms import MOE2_ALGORITHMS
    from slimcaching.moe2.generator import generate_moe2
    from slimcaching.solvers import SolveInterrupted

    inst = generate_moe2(1, experts=16, categories=8)
    inst.content_hash()
    greedy = MOE2_ALGORITHMS["greedy"](inst)
    sent = []

    def interrupt():
        end = time.monotonic() + 60
        while not _children(os.getpid()) and time.monotonic() < end:
            time.sleep(0.05)
        time.sleep(1.0)
        if _children(os.getpid()):  # only while the solver process runs: never into pytest itself
            sent.append(time.monotonic())
            os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(SolveInterrupted) as caught:
        MOE2_ALGORITHMS["exact"](inst, seed=0)
    assert time.monotonic() - sent[0] <= 2.0
    res = caught.value.result
    assert res.info["stopped_by"] == "interrupt" and res.feasible
    assert res.objective >= greedy.objective and res.bound >= res.objective
    assert not _children(os.getpid())
