"""Benchmark of the exact formulations: model size, build time, LP bound, root gap, solve time.

For each instance size and ``K`` in 1, 2, 4, and for both MILPs (``assignment``,
``level``): variables, constraints, build time (median of ``--repeat`` builds),
the LP relaxation value and its solve time, the MILP solve (status, time
inside HiGHS, total), and the root gap ``(T* - LP) / T*`` where ``T*`` is the
best latency found by either MILP (the optimum when one of them proves it).

Build target: a medium instance (16 layers x 16 experts, K = 2, 4 nodes,
4 users) builds in at most a few seconds.

Run with ``python -m benchmarks.perf_formulations`` (all sizes,
10-minute limit per MILP; hours) or e.g.
``python -m benchmarks.perf_formulations --sizes tiny small medium --time-limit 120``.
"""
from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

from slimcaching.algorithms.exact import exact
from slimcaching.formulations.solve import build_model, lp_bound
from slimcaching.instances.generators import random_instance
from slimcaching.instances.model import Instance
from slimcaching.objective import empty_latency
from benchmarks.timing import machine

__all__ = ["SIZES", "main", "run", "instance_for", "lp_comparison"]

SIZES: dict[str, dict[str, int]] = {
    "tiny": dict(layers=2, experts=4, nodes=2, users=2),
    "small": dict(layers=4, experts=8, nodes=3, users=3),
    "medium": dict(layers=8, experts=16, nodes=4, users=4),
    "large": dict(layers=16, experts=16, nodes=4, users=4),
    "xlarge": dict(layers=32, experts=64, nodes=6, users=6),
}
"""Instance sizes (``random_instance`` arguments); ``large`` is the build-target instance."""


def instance_for(size: str, k: int, seed: int = 0) -> Instance:
    """The benchmark instance of ``size`` with top-``k`` routing.

    Routing: exact Plackett-Luce when there are at most 2000 ordered sets,
    else the empirical distribution of 256 sampled tokens per ``(u, l)`` (as a
    trace would give); capacity 25 % of the model per node.
    """
    p = SIZES[size]
    k = min(k, p["experts"])
    return random_instance(**p, top_k=k, seed=seed, capacity_fraction=0.25, exact_limit=2000, tokens=256,
                           name=f"{size}-K{k}-s{seed}")


@dataclass
class Row:
    size: str
    k: int
    sets: int
    formulation: str
    n_variables: int
    n_constraints: int
    build_s: float
    lp: float
    lp_s: float
    status: str
    latency: float
    bound: float | None
    highs_s: float
    total_s: float
    root_gap: float | None = None


def run(sizes: list[str], ks: list[int], *, time_limit: float, seed: int = 0, repeat: int = 3,
        formulations: tuple[str, ...] = ("assignment", "level"), verbose: bool = True,
        build_only: bool = False) -> list[Row]:
    """Measure every ``(size, k, formulation)``; ``build_only`` skips the LP and MILP solves."""
    rows: list[Row] = []
    for size in sizes:
        for k in ks:
            inst = instance_for(size, k, seed)
            group = []
            for f in formulations:
                builds = []
                for _ in range(repeat):
                    t0 = time.perf_counter()
                    m = build_model(inst, f)
                    builds.append(time.perf_counter() - t0)
                nv, nc = m.nvariables(), m.nconstraints()
                del m
                if build_only:
                    row = Row(size, k, inst.n_sets, f, nv, nc, statistics.median(builds), float("nan"),
                              float("nan"), "not solved", float("nan"), None, float("nan"), float("nan"))
                else:
                    t0 = time.perf_counter()
                    try:
                        lp = lp_bound(inst, f, time_limit=time_limit)
                    except RuntimeError:  # LP not solved within the limit
                        lp = float("nan")
                    lp_s = time.perf_counter() - t0
                    res = exact(inst, formulation=f, time_limit=time_limit, seed=seed)
                    row = Row(size, k, inst.n_sets, f, nv, nc, statistics.median(builds), lp, lp_s,
                              str(res.status), res.latency, res.bound,
                              res.info.get("highs_time_s") or float("nan"), res.runtime_s)
                group.append(row)
                if verbose:
                    print(f"# {size} K={k} {f}: {row}", flush=True)
            best = min(r.latency for r in group)
            for r in group:
                if r.lp == r.lp and best == best:  # not nan: both were solved
                    r.root_gap = max(0.0, (best - r.lp) / best) if best > 0 else 0.0
            rows.extend(group)
    return rows


def table(rows: list[Row]) -> str:
    lines = ["| size | K | sets | formulation | vars | cons | build | LP bound | LP time | root gap | status "
             "| T(incumbent) | bound | HiGHS time | total |",
             "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        bound = "" if r.bound is None else f"{r.bound:.6g}"
        gap = "" if r.root_gap is None else f"{100 * r.root_gap:.3f} %"
        lines.append(f"| {r.size} | {r.k} | {r.sets} | {r.formulation} | {r.n_variables} | {r.n_constraints} "
                     f"| {r.build_s:.3f} s | {r.lp:.6g} | {r.lp_s:.2f} s | {gap} "
                     f"| {r.status} | {r.latency:.6g} | {bound} | {r.highs_s:.2f} s | {r.total_s:.2f} s |")
    return "\n".join(lines)


def lp_comparison(paths: list[str], *, time_limit: float, seed: int = 0) -> str:
    """LP bounds of both formulations on instance files (e.g. the ``paper`` suite).

    The reference upper value is the latency of the ``best`` heuristic, so
    ``gap = (T_best - LP) / T_best`` over-states the true root gap by at most
    ``best``'s own gap; the last column is the share of the assignment LP's
    gap that the level LP closes.
    """
    from slimcaching.algorithms.local_search import best
    from slimcaching.instances.io import read_instance

    lines = ["| instance | K | sets | T(empty) | T(best) | LP assignment | gap | LP level | gap | level closes |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for path in paths:
        inst = read_instance(path)
        ub = best(inst, seed=seed).latency
        vals = {}
        for f in ("assignment", "level"):
            t0 = time.perf_counter()
            try:
                vals[f] = (lp_bound(inst, f, time_limit=time_limit), time.perf_counter() - t0)
            except RuntimeError:
                vals[f] = (float("nan"), time.perf_counter() - t0)
        (la, ta), (ll, tl) = vals["assignment"], vals["level"]
        ga, gl = (ub - la) / ub, (ub - ll) / ub
        closes = (ll - la) / (ub - la) if ub > la else float("nan")
        lines.append(f"| {inst.name} | {inst.max_top_k} | {inst.n_sets} | {empty_latency(inst):.6g} | {ub:.6g} "
                     f"| {la:.6g} ({ta:.1f} s) | {100 * ga:.3f} % | {ll:.6g} ({tl:.1f} s) | {100 * gl:.3f} % "
                     f"| {100 * closes:.1f} % |")
        print(lines[-1], flush=True)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES))
    ap.add_argument("--k", nargs="+", type=int, default=[1, 2, 4])
    ap.add_argument("--time-limit", type=float, default=600.0, help="seconds per MILP solve")
    ap.add_argument("--repeat", type=int, default=3, help="builds per model (median reported)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--formulations", nargs="+", choices=["assignment", "level"], default=["assignment", "level"])
    ap.add_argument("--build-only", action="store_true", help="sizes and build times only")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--files", nargs="+", metavar="INSTANCE",
                    help="instead: compare the two LP bounds on these instance files (e.g. instances/paper/*)")
    args = ap.parse_args(argv)
    if args.files:
        out = "\n".join([f"### LP bounds on instance files (machine: {machine()}; LP limit {args.time_limit:g} s)",
                         "", lp_comparison(args.files, time_limit=args.time_limit, seed=args.seed)])
        print(out)
        return out
    rows = run(args.sizes, args.k, time_limit=args.time_limit, seed=args.seed, repeat=args.repeat,
               formulations=tuple(args.formulations), verbose=not args.quiet, build_only=args.build_only)
    out = "\n".join([f"### Exact formulations (machine: {machine()}; time limit {args.time_limit:g} s, "
                     f"seed {args.seed})", "", table(rows)])
    print(out)
    return out


if __name__ == "__main__":  # pragma: no cover
    main()
