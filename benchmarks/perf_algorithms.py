"""Benchmark of the paper's algorithms against the speed targets (issue 4).

Targets (medians):

* Mixtral scale (32 layers x 8 experts, top-2, 6 nodes, 4 users): ``successive``
  <= 5 s and >= 10x faster than HiGHS proving optimality on the same instance;
* DeepSeek-V2-Lite scale (26 x 64, top-6, 8 nodes, 4 users, 4096 sampled
  tokens per user and layer): ``successive`` <= 60 s;
* Switch scale, K = 1 (12 x 128, 8 nodes, 8 users): ``greedy`` <= 2 s;
* mixed precision (32 x 8, top-2, 3 nodes, per-layer sizes with gcd 1,
  capacities about 1.9e6 units): ``maxconv`` (eps = 0.05) >= 10x faster than
  the exact DP (``successive``), and its reduction compared.

Only the solves are timed (instances are generated first).  HiGHS runs once
with a time limit; when it does not prove optimality within it, the reported
speed-up is a lower bound (``>=``).

Run with ``python -m benchmarks.perf_algorithms`` (``--quick`` skips
HiGHS and repeats every solve once).
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from slimcaching.instances.generators import random_instance
from benchmarks.timing import Timing, cpu_time, loglog_slope, machine, single_threaded

__all__ = ["main", "run", "instances"]


def _median(fn, repeat: int) -> tuple[Timing, object]:
    """CPU time of ``repeat`` calls (no warm-up: every call is a whole solve) and the last result."""
    with single_threaded():
        return cpu_time(fn, repeat, warmup=0)


def instances(seed: int = 0) -> dict:
    """The four benchmark instances (seeded)."""
    sizes = np.random.default_rng(seed + 1).integers(20_000, 40_000, size=32)
    sizes[0] = 20_011                       # a prime: the gcd of the sizes is 1
    return {
        "mixtral": random_instance(layers=32, experts=8, top_k=2, nodes=6, users=4, seed=seed, name="mixtral-scale"),
        "deepseek": random_instance(layers=26, experts=64, top_k=6, nodes=8, users=4, seed=seed,
                                    name="deepseek-v2-lite-scale"),
        "switch": random_instance(layers=12, experts=128, top_k=1, nodes=8, users=8, seed=seed, name="switch-scale"),
        "mixed": random_instance(layers=32, experts=8, top_k=2, nodes=3, users=4, seed=seed, expert_size=sizes,
                                 name="mixed-precision"),
    }


def run(seed: int = 0, repeat: int = 3, highs_limit: float = 120.0, quick: bool = False
        ) -> list[tuple[str, float, str, str]]:
    """Return rows ``(measure, median seconds, target, note)``."""
    from slimcaching.algorithms.greedy import greedy
    from slimcaching.algorithms.maxconv import maxconv
    from slimcaching.algorithms.successive import successive

    inst = instances(seed)
    rep = 1 if quick else repeat
    rows = []

    m = inst["mixtral"]
    t_succ, r_succ = _median(lambda: successive(m), max(rep, 5))
    rows.append(("successive, Mixtral scale", t_succ, "<= 5 s",
                 f"{m.n_sets} sets; T = {r_succ.latency:.6f}"))
    if not quick:
        from slimcaching.formulations.solve import exact

        t0 = time.process_time()
        r_ex = exact(m, time_limit=highs_limit)
        t_ex = Timing((time.process_time() - t0,))
        proved = str(r_ex.status) == "optimal"
        speed = t_ex.median / t_succ.median
        gap = "n/a" if r_ex.gap is None else f"{r_ex.gap:.2%}"
        rows.append(("HiGHS (level MILP), Mixtral scale", t_ex, ">= 10x successive",
                     f"status {r_ex.status}, gap {gap}, T = {r_ex.latency:.6f}; speed-up "
                     f"{'' if proved else '>= '}{speed:.0f}x; successive / HiGHS latency "
                     f"{r_succ.latency / r_ex.latency:.4f}"))

    d = inst["deepseek"]
    t_d, r_d = _median(lambda: successive(d), rep)
    heur = sum(v["layer_methods"].count("heuristic") for v in r_d.info["nodes"])
    rows.append(("successive, DeepSeek-V2-Lite scale", t_d, "<= 60 s",
                 f"{d.n_sets} sets; {heur} of {d.L * d.N} (node, layer) tables by the heuristic"))

    s = inst["switch"]
    t_g, r_g = _median(lambda: greedy(s), max(rep, 5))
    rows.append(("greedy, Switch scale K = 1", t_g, "<= 2 s",
                 f"{len(r_g.placement)} elements cached, {r_g.info['gain_evaluations']} gain evaluations"))

    x = inst["mixed"]
    t_dp, r_dp = _median(lambda: successive(x), rep)
    t_mc, r_mc = _median(lambda: maxconv(x, eps=0.05), max(rep, 5))
    rows.append(("successive (exact DP), mixed precision", t_dp, "",
                 f"gcd of sizes {int(np.gcd.reduce(x.expert_size))}, capacity {int(x.capacity[0])} units, "
                 f"R = {r_dp.reduction:.6f}"))
    rows.append(("maxconv eps = 0.05, mixed precision", t_mc, ">= 10x faster than exact DP",
                 f"speed-up {t_dp.median / t_mc.median:.0f}x; R(maxconv) / R(exact DP) = {r_mc.reduction / r_dp.reduction:.6f}"))
    return rows


def heuristic_quality(seeds: int = 5) -> list[tuple[str, float, float, float, float]]:
    """Per-layer table heuristic against exact enumeration inside ``successive``.

    Instances with 16 experts per layer (so every layer can be enumerated),
    8 layers, 4 nodes, 4 users, capacity 15 % of the model per node.  Returns
    rows ``(setting, min ratio, median ratio, median s enumerate, median s heuristic)``
    of ``R(heuristic tables) / R(enumerated tables)``.
    """
    from slimcaching.algorithms.successive import successive

    rows = []
    for k in (2, 4):
        ratios, te, th = [], [], []
        for seed in range(seeds):
            inst = random_instance(layers=8, experts=16, top_k=k, nodes=4, users=4, seed=seed,
                                   capacity_fraction=0.15)
            t0 = time.perf_counter()
            a = successive(inst, layer_solver="enumerate")
            t1 = time.perf_counter()
            b = successive(inst, layer_solver="heuristic")
            t2 = time.perf_counter()
            ratios.append(b.reduction / a.reduction)
            te.append(t1 - t0)
            th.append(t2 - t1)
        rows.append((f"8 x 16, top-{k}, 4 nodes", min(ratios), statistics.median(ratios),
                     statistics.median(te), statistics.median(th)))
    return rows


def family_on_mixtral(seed: int = 0) -> list[tuple[str, float, float, float]]:
    """Every algorithm of this family on the Mixtral-scale instance: ``(name, seconds, T, R)``."""
    from slimcaching.algorithms import run as run_algorithm

    inst = instances(seed)["mixtral"]
    rows = []
    for name in ("cloud", "random", "popularity", "independent", "greedy", "successive", "maxconv"):
        t0 = time.perf_counter()
        res = run_algorithm(inst, name, seed=seed)
        rows.append((name, time.perf_counter() - t0, res.latency, res.reduction))
    return rows


#: The growing instances of :func:`slopes`: top-8, 8 nodes, 4 users, 16 experts per layer,
#: 64 sampled tokens per user and layer; layers double, so set members double.
SLOPE_LAYERS = (2, 4, 8, 16)
_REFERENCES = ("exact", "brute-force")


def slopes(layers=SLOPE_LAYERS, time_limit: float = 120.0, seed: int = 0) -> list[tuple[str, list, float, str]]:
    """Log-log slope of CPU time against set members for every registered algorithm.

    One run per algorithm and size (BLAS pinned to one thread), each under
    ``time_limit``; a run stopped by the limit ends that algorithm's series
    (the slope uses the sizes it finished).  The exact references are left
    out: their cost grows exponentially by design and they are timed in
    ``perf_formulations``.  Returns ``(algorithm, [(members, CPU s, status)],
    slope, note)``.
    """
    import time as _time

    from slimcaching.algorithms import REGISTRY, run as run_algorithm

    insts = [random_instance(layers=L, experts=16, top_k=8, nodes=8, users=4, seed=seed, tokens=64,
                             capacity_fraction=0.1, name=f"slope-{L}") for L in layers]
    members = [int((i.set_experts >= 0).sum()) for i in insts]
    out = []
    for name in REGISTRY:
        if name in _REFERENCES:
            continue
        series, note = [], ""
        for inst, mem in zip(insts, members):
            with single_threaded():
                t0 = _time.process_time()
                res = run_algorithm(inst, name, seed=seed, time_limit=time_limit)
                cpu = _time.process_time() - t0
            if str(res.status) == "time_limit":
                note = f"stopped by the {time_limit:g} s limit at {mem} members"
                break
            series.append((mem, cpu, str(res.status)))
        out.append((name, series, loglog_slope([m for m, _, _ in series], [c for _, c, _ in series]), note))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--highs-limit", type=float, default=120.0, help="seconds for HiGHS on the Mixtral instance")
    ap.add_argument("--quick", action="store_true", help="skip HiGHS, one repetition")
    ap.add_argument("--slopes-only", action="store_true", help="only the table of log-log slopes")
    ap.add_argument("--slope-layers", default=",".join(map(str, SLOPE_LAYERS)),
                    help="layers of the growing instances of the slope table (comma-separated)")
    args = ap.parse_args(argv)
    print("\nCPU time against set members (top-8, 8 nodes, 4 users, 16 experts per layer; one run per size; "
          "slope of log CPU s against log members)\n")
    print("| algorithm | members: CPU s | slope |")
    print("|---|---|---:|")
    for name, series, slope, note in slopes(tuple(int(v) for v in args.slope_layers.split(","))):
        pts = ", ".join(f"{m}: {c:.2f}" for m, c, _ in series)
        print(f"| {name} | {pts}{'; ' + note if note else ''} | {slope:.2f} |")
    if args.slopes_only:
        return
    rows = run(seed=args.seed, repeat=args.repeat, highs_limit=args.highs_limit, quick=args.quick)
    print(f"Machine: {machine()}\n")
    print("| measure | CPU time (median ± IQR) | target | note |")
    print("|---|---:|---|---|")
    for name, t, target, note in rows:
        print(f"| {name} | {t.fmt('s')} | {target} | {note} |")
    print("\nEvery algorithm on the Mixtral-scale instance (one run each)\n")
    print("| algorithm | s | T | R |")
    print("|---|---:|---:|---:|")
    for name, t, T, R in family_on_mixtral(args.seed):
        print(f"| {name} | {t:.3f} | {T:.5f} | {R:.5f} |")
    print("\nPer-layer tables: heuristic against exact enumeration (successive, 5 seeds)\n")
    print("| instances | min R(heur)/R(enum) | median | median s enumerate | median s heuristic |")
    print("|---|---:|---:|---:|---:|")
    for name, lo, med, te, th in heuristic_quality():
        print(f"| {name} | {lo:.4f} | {med:.4f} | {te:.3f} | {th:.3f} |")


if __name__ == "__main__":  # pragma: no cover
    main()
