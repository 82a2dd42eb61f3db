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
from benchmarks.timing import Timing, cpu_time, loglog_slope, machine, ratio, single_threaded

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


def polish_bookkeeping(layers=SLOPE_LAYERS, repeat: int = 3, seed: int = 0) -> list[tuple[int, int, Timing, Timing]]:
    """CPU time of polish's local search with its per-layer caches and bounds against the
    reference that evaluates every candidate afresh (``incremental=False``), interleaved
    round by round on the instances of :func:`slopes`, each from ``cyclic``'s placement (as
    in ``best``); both take the same steps (tests/test_local_search.py).  Returns
    ``(layers, members, incremental, reference)`` per size.
    """
    from slimcaching.algorithms.local_search import cyclic
    from slimcaching.algorithms.local_search.moves import MOVE_KINDS, _local_search
    from slimcaching.objective import IncrementalEvaluator
    from benchmarks.timing import paired

    out = []
    for L in layers:
        inst = random_instance(layers=L, experts=16, top_k=8, nodes=8, users=4, seed=seed, tokens=64,
                               capacity_fraction=0.1, name=f"slope-{L}")
        start = cyclic(inst, seed=seed).placement

        def search(incremental, inst=inst, start=start):
            ev = IncrementalEvaluator(inst, start)
            return _local_search(ev, kinds=MOVE_KINDS, tol=1e-12 * ev.empty_latency,
                                 rng=np.random.default_rng(seed), deadline=float("inf"), max_moves=None,
                                 max_sets=64, incremental=incremental)

        with single_threaded():
            t = paired({"incremental": lambda: search(True), "reference": lambda: search(False)},
                       repeat=repeat, warmup=0)
        out.append((L, int((inst.set_experts >= 0).sum()), t["incremental"], t["reference"]))
    return out


DEEPSEEK_V3 = "instances/paper/paper-deepseek-v3-5g-mec-bf16.json.gz"


def deepseek_chain(path: str = DEEPSEEK_V3, seed: int = 0, time_limit: float | None = None
                   ) -> list[tuple[str, float, float, float, float, str]]:
    """``best``'s main chain stage by stage on the DeepSeek-V3 paper instance: ``successive``,
    ``cyclic`` from it, ``polish`` from that.  Returns ``(stage, CPU s, wall s, latency,
    R / T(empty), status)`` per stage; one run (BLAS pinned)."""
    from slimcaching.algorithms import run as run_algorithm
    from slimcaching.algorithms.local_search import cyclic, polish
    from slimcaching.instances.io import read_instance

    inst = read_instance(path)
    out, prev = [], None
    stages = (("successive", lambda p: run_algorithm(inst, "successive", seed=seed, time_limit=time_limit)),
              ("cyclic", lambda p: cyclic(inst, seed=seed, start=p, time_limit=time_limit)),
              ("polish", lambda p: polish(inst, seed=seed, start=p, time_limit=time_limit)))
    for name, fn in stages:
        with single_threaded():
            c0, w0 = time.process_time(), time.perf_counter()
            res = fn(None if prev is None else prev.placement)
            cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        out.append((name, cpu, wall, res.latency, res.reduction / res.empty_latency, str(res.status)))
        prev = res
    return out


def deepseek_best(path: str = DEEPSEEK_V3, seed: int = 0) -> str:
    """``best(seed=seed)`` with its defaults on the DeepSeek-V3 paper instance, one run (BLAS
    pinned, kernels as ``kernel="auto"`` picks them): markdown with CPU and wall seconds, peak
    RSS, and every chain's stages (latency, runtime), the chosen chain in bold."""
    import resource

    from slimcaching.algorithms.local_search import best
    from slimcaching.instances.io import read_instance

    inst = read_instance(path)
    with single_threaded():
        c0, w0 = time.process_time(), time.perf_counter()
        res = best(inst, seed=seed)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines = [f"\nbest(seed={seed}) on {path} ({machine()}): {cpu:.1f} CPU s, {wall:.1f} s wall, peak RSS "
             f"{rss:.0f} MiB, latency {res.latency:.6f}, R / T(empty) {100 * res.reduction / res.empty_latency:.2f} %, "
             f"status {res.status}\n", "| chain | stage | latency | runtime s |", "|---|---|---:|---:|"]
    chains = [("main", res.info["stages"])] + [(o["start"], o["stages"]) for o in res.info["restarts"]]
    for name, stages in chains:
        for k, st in enumerate(stages):
            won = k == len(stages) - 1 and (name == res.info["chosen"] or (name == "main" and res.info["chosen"] == "successive"))
            lat = f"**{st['latency']:.6f}**" if won else f"{st['latency']:.6f}"
            lines.append(f"| {name} | {st['algorithm']} | {lat} | {st['runtime_s']:.1f} |")
    return "\n".join(lines)


def successive_kernels(path: str = DEEPSEEK_V3, repeat: int = 3, reference_repeat: int = 1
                       ) -> tuple[dict, dict, bool]:
    """``successive`` on the DeepSeek-V3 paper instance with the compiled chain (``repeat`` runs)
    and with the numpy steps (``reference_repeat`` runs, the first interleaved after the first
    compiled run), CPU and wall seconds, BLAS pinned; the compiled kernel is compiled (or loaded
    from numba's cache) before timing.  Returns per kernel ``{"cpu": Timing, "wall": Timing,
    "latency", "reduction"}`` and whether the placements are identical."""
    import os

    from slimcaching.algorithms.knapsack import _chain_kernel
    from slimcaching.algorithms.successive import successive
    from slimcaching.instances.io import read_instance

    inst = read_instance(path)
    if _chain_kernel() is None:
        raise SystemExit("--successive-kernels needs numba (pip install 'slimcaching[fast]')")
    before = os.environ.get("SLIMCACHING_KERNEL")
    runs = {"numba": [], "numpy": []}
    placements = {}
    plan = ["numba", "numpy"][: 1 + (reference_repeat > 0)]
    plan += ["numba"] * (repeat - 1) + ["numpy"] * (reference_repeat - 1)
    try:
        for kernel in plan:
            os.environ["SLIMCACHING_KERNEL"] = kernel
            with single_threaded():
                c0, w0 = time.process_time(), time.perf_counter()
                res = successive(inst)
                runs[kernel].append((time.process_time() - c0, time.perf_counter() - w0, res))
            placements[kernel] = res.placement.x
    finally:
        if before is None:
            os.environ.pop("SLIMCACHING_KERNEL", None)
        else:
            os.environ["SLIMCACHING_KERNEL"] = before
    out = {k: {"cpu": Timing(tuple(c for c, _, _ in v)), "wall": Timing(tuple(w for _, w, _ in v)),
               "latency": v[-1][2].latency, "reduction": v[-1][2].reduction / v[-1][2].empty_latency}
           for k, v in runs.items() if v}
    same = len(placements) < 2 or bool(np.array_equal(placements["numba"], placements["numpy"]))
    return out["numba"], out.get("numpy"), same


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--highs-limit", type=float, default=120.0, help="seconds for HiGHS on the Mixtral instance")
    ap.add_argument("--quick", action="store_true", help="skip HiGHS, one repetition")
    ap.add_argument("--slopes-only", action="store_true", help="only the table of log-log slopes")
    ap.add_argument("--slope-layers", default=",".join(map(str, SLOPE_LAYERS)),
                    help="layers of the growing instances of the slope table (comma-separated)")
    ap.add_argument("--polish-only", action="store_true",
                    help="only polish's bookkeeping against its reference, on the slope instances")
    ap.add_argument("--deepseek-chain", action="store_true",
                    help="only best's main chain, stage by stage, on the DeepSeek-V3 paper instance")
    ap.add_argument("--deepseek-best", action="store_true",
                    help="only best (default parameters) on the DeepSeek-V3 paper instance: CPU, wall, peak RSS, "
                         "every chain's stages")
    ap.add_argument("--successive-kernels", action="store_true",
                    help="only successive on the DeepSeek-V3 paper instance, compiled chain against numpy steps")
    ap.add_argument("--reference-repeat", type=int, default=1,
                    help="runs of the numpy steps in --successive-kernels (0: none)")
    args = ap.parse_args(argv)
    if args.successive_kernels:
        fast, ref, same = successive_kernels(repeat=args.repeat, reference_repeat=args.reference_repeat)
        print(f"\nsuccessive on {DEEPSEEK_V3} (CPU and wall s, median ± IQR; {machine()})\n")
        print("| chain steps | runs | CPU s | wall s | R / T(empty) |\n|---|---:|---:|---:|---:|")
        for name, t in (("compiled (SLIMCACHING_KERNEL=numba)", fast), ("numpy", ref)):
            if t is not None:
                print(f"| {name} | {len(t['cpu'].values)} | {t['cpu'].fmt('s')} | {t['wall'].fmt('s')} | "
                      f"{100 * t['reduction']:.2f} % |")
        if ref is not None:
            print(f"\nnumpy / compiled CPU: {ref['cpu'].median / fast['cpu'].median:.2f}x; "
                  f"identical placements: {same}")
        return
    if args.deepseek_best:
        print(deepseek_best(seed=args.seed))
        return
    if args.deepseek_chain:
        print("\n| stage | CPU s | wall s | latency | R / T(empty) | status |\n|---|---:|---:|---:|---:|---|")
        for name, cpu, wall, lat, red, status in deepseek_chain(seed=args.seed):
            print(f"| {name} | {cpu:.1f} | {wall:.1f} | {lat:.6f} | {100 * red:.2f} % | {status} |")
        return
    if args.polish_only:
        print("\npolish from cyclic's placement: incremental bookkeeping against the reference "
              "(same steps; CPU s, median ± IQR; slope of the medians)\n")
        print("| layers | set members | incremental | reference | reference / incremental |")
        print("|---:|---:|---:|---:|---:|")
        rows = polish_bookkeeping(tuple(int(v) for v in args.slope_layers.split(",")), repeat=args.repeat)
        for L, mem, inc, ref in rows:
            print(f"| {L} | {mem} | {inc.fmt('s')} | {ref.fmt('s')} | {ratio(ref, inc).median:.2f}x (IQR {ratio(ref, inc).iqr:.2f}) |")
        print(f"\nslope: incremental {loglog_slope([r[1] for r in rows], [r[2].median for r in rows]):.2f}, "
              f"reference {loglog_slope([r[1] for r in rows], [r[3].median for r in rows]):.2f}")
        return
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
