"""Benchmark of the MoE² family: DMO against exhaustive search and the MILP as ``M`` grows.

For each number of experts ``M`` and each of ``--seeds`` generated instances
(``C = --categories``), runs the three exact methods with a time limit
(default 60 s) and the baselines.  A method is not run at larger ``M`` once it
has hit the time limit (nor for the remaining seeds of that ``M``).  Two scenarios:

* ``default``: the generator's latency budgets (each category admits 40-100 %
  of the experts);
* ``loose``: every expert fits every latency budget (``2**M`` candidate subsets
  per category, the hardest case for every exact method).

Prints two markdown tables (medians over seeds): oracle calls and runtime of
the exact methods, and the ratio ``objective(alg) / objective(opt)`` of the
baselines; then the machine.

Run with ``python -m benchmarks.perf_moe2`` (add ``--quick`` for a
small grid).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from typing import Any

from slimcaching.moe2.algorithms import MOE2_ALGORITHMS
from slimcaching.moe2.generator import generate_moe2
from slimcaching.result import Status, versions

__all__ = ["main", "run", "machine"]

EXACT = ("dmo", "exhaustive", "exact")
BASELINES = ("greedy", "fastest", "random")
SCENARIOS = {"default": (0.4, 1.0), "loose": (1.0, 1.0)}


def machine() -> str:
    v = versions()
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {v['python']}, "
            f"numpy {v.get('numpy')}, pyomo {v.get('pyomo')}, highspy {v.get('highspy')}")


def run(sizes: list[int], *, categories: int = 3, seeds: int = 3, time_limit: float = 60.0,
        scenario: str = "default", log: bool = True) -> list[dict[str, Any]]:
    """One row per (M, seed, algorithm): status, objective, oracle calls, runtime, ratio to the optimum."""
    rows: list[dict[str, Any]] = []
    alive = set(EXACT)
    for M in sizes:
        stopped: set[str] = set()
        for s in range(seeds):
            inst = generate_moe2(100 + s, experts=M, categories=categories,
                                 budget_quantile=SCENARIOS[scenario])
            cand = sum(2 ** bin(int(a)).count("1") for a in inst.allowed_masks())
            res = {}
            for name in EXACT:
                if name in alive and name not in stopped:  # one time-out at this M is enough
                    res[name] = MOE2_ALGORITHMS[name](inst, seed=s, time_limit=time_limit)
                    if res[name].status is not Status.OPTIMAL:
                        stopped.add(name)
            opt = [r.objective for r in res.values() if r.status is Status.OPTIMAL]
            opt_v = max(opt) if opt else None
            for name in BASELINES:
                res[name] = MOE2_ALGORITHMS[name](inst, seed=s, time_limit=time_limit)
            for name, r in res.items():
                rows.append({"scenario": scenario, "M": M, "C": categories, "seed": 100 + s, "candidates": cand,
                             "algorithm": name, "status": str(r.status), "objective": r.objective,
                             "oracle_calls": r.oracle_calls, "runtime_s": r.runtime_s,
                             "nodes": r.info.get("nodes"), "optimum": opt_v,
                             "ratio": None if not opt_v else r.objective / opt_v,
                             "agrees": None if opt_v is None or r.status is not Status.OPTIMAL
                             else abs(r.objective - opt_v) <= 1e-9})
            if log:
                print(f"  [{scenario}] M={M} seed={100 + s}: " + ", ".join(
                    f"{n} {res[n].runtime_s:.2f}s/{res[n].oracle_calls}" for n in EXACT if n in res), flush=True)
        alive -= stopped
    return rows


def _med(vals: list[float]) -> float | None:
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def _fmt(v: Any, spec: str) -> str:
    return "—" if v is None else format(v, spec)


def tables(rows: list[dict[str, Any]]) -> str:
    """The two markdown tables of a run."""
    out = []
    sizes = sorted({r["M"] for r in rows})
    for scenario in sorted({r["scenario"] for r in rows}):
        sub = [r for r in rows if r["scenario"] == scenario]
        C = sub[0]["C"]
        out.append(f"\n### Exact methods, scenario `{scenario}`, C = {C} (medians; solved = optimal within the limit)\n")
        out.append("| M | candidate subsets | DMO calls | exhaustive calls | MILP calls | DMO s | exhaustive s | "
                   "MILP s | DMO nodes | solved DMO / exh / MILP | all agree |")
        out.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|:---:|")
        for M in sizes:
            r_m = [r for r in sub if r["M"] == M]
            if not r_m:
                continue

            def col(alg: str, key: str) -> list:
                return [r[key] for r in r_m if r["algorithm"] == alg and r["status"] == "optimal"]

            def solved(alg: str) -> str:
                ran = [r for r in r_m if r["algorithm"] == alg]
                return f"{sum(r['status'] == 'optimal' for r in ran)}/{len(ran)}" if ran else "—"

            agree = [r["agrees"] for r in r_m if r["agrees"] is not None]
            out.append(
                f"| {M} | {_fmt(_med([r['candidates'] for r in r_m if r['algorithm'] == 'greedy']), '.0f')} "
                f"| {_fmt(_med(col('dmo', 'oracle_calls')), '.0f')} "
                f"| {_fmt(_med(col('exhaustive', 'oracle_calls')), '.0f')} "
                f"| {_fmt(_med(col('exact', 'oracle_calls')), '.0f')} "
                f"| {_fmt(_med(col('dmo', 'runtime_s')), '.3f')} "
                f"| {_fmt(_med(col('exhaustive', 'runtime_s')), '.3f')} "
                f"| {_fmt(_med(col('exact', 'runtime_s')), '.3f')} "
                f"| {_fmt(_med(col('dmo', 'nodes')), '.0f')} "
                f"| {solved('dmo')} / {solved('exhaustive')} / {solved('exact')} "
                f"| {'yes' if agree and all(agree) else ('NO' if agree else '—')} |")
        out.append(f"\n### Baselines, scenario `{scenario}`: objective / optimum, median (min)\n")
        out.append("| M | " + " | ".join(BASELINES) + " |")
        out.append("|---:|" + "---:|" * len(BASELINES))
        for M in sizes:
            cells = []
            for alg in BASELINES:
                rs = [r["ratio"] for r in sub if r["M"] == M and r["algorithm"] == alg and r["ratio"] is not None]
                cells.append(f"{statistics.median(rs):.3f} ({min(rs):.3f})" if rs else "—")
            out.append(f"| {M} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.perf_moe2", description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="4,6,8,10,11,12,13,14,15,16", help="comma-separated M values")
    ap.add_argument("--categories", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--scenarios", default="default,loose")
    ap.add_argument("--quick", action="store_true", help="sizes 4,6,8 and one seed")
    ap.add_argument("--json", help="also write the raw rows to this file")
    a = ap.parse_args(argv)
    sizes = [4, 6, 8] if a.quick else [int(x) for x in a.sizes.split(",")]
    seeds = 1 if a.quick else a.seeds
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for sc in a.scenarios.split(","):
        rows += run(sizes, categories=a.categories, seeds=seeds, time_limit=a.time_limit, scenario=sc)
    print(f"\n## MoE² exact methods and baselines (time limit {a.time_limit:g} s per run, {seeds} seed(s))")
    print(tables(rows))
    print(f"\nMachine: {machine()}; total {time.perf_counter() - t0:.0f} s.")
    if a.json:
        with open(a.json, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":  # pragma: no cover
    main()
