"""The exact solver's promises, measured: what the solver process costs, how far past a time limit
``exact`` returns, how fast Ctrl-C ends a solve, and that a node limit gives the same answer on a
quiet and a busy machine; and how far past a time limit the in-process HiGHS users (``lns``,
``decompose``, ``certify``) return with two busy loops on the machine.

Usage::

    python -m benchmarks.perf_solver [--repeat 15] [--limits 2 5] [--quick] [--only highs-users]

Every timing is a median with its interquartile range over repeats run in the same process, next
to the alternative it is compared with (ratios, not absolute numbers, are what carries over to
another machine).  CPU time counts the solver process too (``os.times`` of reaped children).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.timing import machine

ROOT = Path(__file__).resolve().parents[1]


def _quantiles(xs: list[float]) -> tuple[float, float]:
    """Median and interquartile range."""
    if len(xs) < 2:
        return xs[0], 0.0
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return statistics.median(xs), q[2] - q[0]


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _fmt(xs: list[float], unit: float = 1e3, suffix: str = "ms") -> str:
    med, iqr = _quantiles(xs)
    return f"{med * unit:.1f} {suffix} (IQR {iqr * unit:.1f})"


def process_overhead(repeat: int) -> str:
    """The same tiny level models solved in a child process and in-process, interleaved."""
    from slimcaching.formulations.solve import FORMULATIONS, latency_scale, scaled_instance, _model_builder
    from slimcaching.instances.io import read_instance
    from slimcaching.solvers import solve_model

    files = sorted((ROOT / "instances" / "tiny").glob("tiny-*.json"))[:10]
    builders = []
    for f in files:
        inst = read_instance(f)
        builders.append(_model_builder(FORMULATIONS["level"], scaled_instance(inst, latency_scale(inst))))
    wall = {True: [], False: []}
    cpu = {True: [], False: []}
    for _ in range(repeat):
        for isolate in (True, False):
            t0, c0 = time.perf_counter(), _cpu()
            for b in builders:
                rep = solve_model(b, isolate=isolate)
                assert rep.objective is not None
            wall[isolate].append((time.perf_counter() - t0) / len(builders))
            cpu[isolate].append((_cpu() - c0) / len(builders))
    ratio = statistics.median(wall[True]) / statistics.median(wall[False])
    return "\n".join([
        f"#### One tiny level model: build, load, solve ({len(files)} `tiny` instances x {repeat} repeats)", "",
        "| where | wall per solve | CPU per solve |", "|---|---:|---:|",
        f"| child process (default) | {_fmt(wall[True])} | {_fmt(cpu[True])} |",
        f"| in-process | {_fmt(wall[False])} | {_fmt(cpu[False])} |",
        "", f"Wall-time ratio child / in-process: {ratio:.2f}."])


def _medium():
    from slimcaching.instances.generators import random_instance

    return random_instance(layers=8, experts=16, top_k=2, nodes=4, users=4, seed=0)


def time_limits(limits: list[float], repeat: int) -> str:
    """``exact`` (registered, with ``best`` as warm start) past its limit; also with a build that sleeps."""
    from slimcaching.algorithms import run
    from slimcaching.formulations import solve as solve_mod

    inst = _medium()
    lines = ["#### How far past the limit `exact` returns (medium: 8 x 16, K = 2, 4 nodes, 4 users; "
             f"{repeat} repeats)", "", "| case | limit | overshoot median | overshoot max | promised (5 % + 2 s) |",
             "|---|---:|---:|---:|---:|"]
    real = solve_mod.FORMULATIONS["level"]

    def slow(instance, relax=False):
        time.sleep(3600)
        return real(instance, relax=relax)

    for case in ("level model", "build that never ends"):
        solve_mod.FORMULATIONS["level"] = real if case == "level model" else slow
        try:
            for limit in limits:
                over = []
                for _ in range(repeat):
                    t0 = time.perf_counter()
                    res = run(inst, "exact", time_limit=limit, seed=0)
                    over.append(time.perf_counter() - t0 - limit)
                    assert res.feasible and res.bound <= res.latency
                lines.append(f"| {case} | {limit:g} s | {statistics.median(over):+.2f} s | {max(over):+.2f} s "
                             f"| +{0.05 * limit + 2:.2f} s |")
        finally:
            solve_mod.FORMULATIONS["level"] = real
    return "\n".join(lines)


def _busy_instance():
    """The instance of ``tests/test_time_limits.py``: 8 x 32, K = 4, 4 nodes, 2 users, 512 tokens."""
    from slimcaching.instances.generators import random_instance

    return random_instance(layers=8, experts=32, top_k=4, nodes=4, users=2, seed=1, capacity_fraction=0.1,
                           tokens=512)


def highs_users(limits: list[float], repeat: int, busy: int = 2) -> str:
    """``lns``, ``decompose`` and ``certify`` past their limit, with ``busy`` busy-loop processes running.

    Overshoot = wall time - limit; CPU counts this process and its reaped children (the
    large models are solved in a child process).  Runs interleave the methods, so each
    repeat sees the same load for all three.
    """
    from slimcaching.algorithms import run
    from slimcaching.algorithms.certify import certify

    inst = _busy_instance()
    methods = ("lns", "decompose", "certify")
    over = {(m, lim): [] for m in methods for lim in limits}
    cpu = {(m, lim): [] for m in methods for lim in limits}
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
    try:
        for limit in limits:
            for _ in range(repeat):
                for m in methods:
                    t0, c0 = time.perf_counter(), _cpu()
                    if m == "certify":
                        cert = certify(inst, time_limit=limit, seed=0)
                        assert cert.bound <= cert.latency
                    else:
                        res = run(inst, m, seed=0, time_limit=limit)
                        assert res.feasible
                    over[m, limit].append(time.perf_counter() - t0 - limit)
                    cpu[m, limit].append(_cpu() - c0)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    lines = [f"#### How far past the limit the in-process HiGHS users return ({busy} busy loops; 8 x 32, K = 4, "
             f"4 nodes, 2 users; {repeat} repeats)", "",
             "| method | limit | overshoot median (IQR) | overshoot max | CPU median (IQR) | promised (5 % + 2 s) |",
             "|---|---:|---:|---:|---:|---:|"]
    for m in methods:
        for limit in limits:
            med, iqr = _quantiles(over[m, limit])
            cmed, ciqr = _quantiles(cpu[m, limit])
            lines.append(f"| {m} | {limit:g} s | {med:+.2f} s ({iqr:.2f}) | {max(over[m, limit]):+.2f} s "
                         f"| {cmed:.2f} s ({ciqr:.2f}) | +{0.05 * limit + 2:.2f} s |")
    return "\n".join(lines)


def sigint(repeat: int) -> str:
    """A real SIGINT to ``slimcaching solve --algorithm exact`` about 8 s into the solve."""
    from slimcaching.instances.io import write_instance

    lat, wrote = [], []
    with tempfile.TemporaryDirectory() as tmp:
        inst_file, out = Path(tmp) / "medium.json", Path(tmp) / "out.json"
        write_instance(_medium(), inst_file)
        for _ in range(repeat):
            out.unlink(missing_ok=True)
            proc = subprocess.Popen([sys.executable, "-m", "slimcaching.cli", "solve", str(inst_file),
                                     "--algorithm", "exact", "-o", str(out)], cwd=ROOT,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            time.sleep(12)
            t0 = time.monotonic()
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=60)
            lat.append(time.monotonic() - t0)
            d = json.loads(out.read_text())
            wrote.append(proc.returncode == 130 and d["info"]["stopped_by"] == "interrupt")
    return "\n".join([f"#### Ctrl-C inside HiGHS ({repeat} repeats, medium level model, 12 s in)", "",
                      "| signal to exit | placement written, exit 130 |", "|---:|:---:|",
                      f"| {_fmt(lat, 1, 's')}, max {max(lat):.2f} s | {sum(wrote)}/{len(wrote)} |"])


def node_limit() -> str:
    """The same node limit on a quiet and a busy machine (two busy-loop processes)."""
    from slimcaching.formulations import exact
    from slimcaching.instances.generators import random_instance

    inst = random_instance(layers=10, experts=4, top_k=1, nodes=2, users=4, seed=2,
                           expert_size=[3, 5, 7, 11, 13, 17, 19, 23, 29, 31], capacity_fraction=0.3)
    rows = []
    for busy in (0, 2, 0):
        procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
        try:
            t0 = time.perf_counter()
            res = exact(inst, node_limit=30, seed=0, time_limit=600)
            wall = time.perf_counter() - t0
        finally:
            for p in procs:
                p.kill()
        rows.append(f"| {busy} | {res.status} | {res.latency!r} | {res.bound!r} | {res.info['mip_node_count']} "
                    f"| {res.info['stopped_by']} | {wall:.2f} s |")
    return "\n".join(["#### Node limit 30 (10 x 4, K = 1, 2 nodes, sizes 3..31): quiet, busy, quiet", "",
                      "| busy processes | status | T(x) | bound | nodes | stopped by | wall |",
                      "|---:|---|---:|---:|---:|---|---:|", *rows])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15, help="repeats of the process-overhead measurement")
    ap.add_argument("--limits", type=float, nargs="+", default=[2.0, 5.0, 15.0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats everywhere")
    ap.add_argument("--only", choices=["highs-users"], help="run only this measurement")
    args = ap.parse_args(argv)
    rep = 3 if args.quick else args.repeat
    if args.only == "highs-users":
        print(highs_users(args.limits, 1 if args.quick else 3))
        return
    print(f"### The exact solver's limits (machine: {machine()})\n")
    print(process_overhead(rep) + "\n")
    print(time_limits(args.limits, 1 if args.quick else 3) + "\n")
    print(sigint(1 if args.quick else 3) + "\n")
    print(highs_users(args.limits, 1 if args.quick else 3) + "\n")
    print(node_limit())


if __name__ == "__main__":
    main()
