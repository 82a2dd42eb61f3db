"""Certified gaps on the shipped real-architecture instances, and the flagship against HiGHS.

Usage (from the repository root)::

    python -m benchmarks.perf_certify [--files F ...] [--time-limit 600] [--work-limit W] [--gap G]
                                      [--records certify.jsonl]
    python -m benchmarks.perf_certify --flagship [--files F ...] [--time-limit 60] [--repeat 3]
    python -m benchmarks.perf_certify --lp [--files F ...]
    python -m benchmarks.perf_certify --decompose [--files F ...] [--time-limit 120]
    python -m benchmarks.perf_certify --perturb [--files F ...] [--rounds 40] [--spread 0.1]

The first form runs ``certify`` on each instance (default: every file of
``instances/paper`` and ``instances/mixed-precision``) and prints one row per
instance: ``T(empty)``, the best proven bound (method, time), the best
latency (method, time), the certified gap, wall and CPU time.  Each
certificate is appended to ``--records`` as it finishes (one JSON object per
line: nothing computed is lost if a later instance fails), the input of
``slimcaching.analysis.certified`` tables.  ``--gap G`` passes a target gap
(``certify(..., gap=G)``: stop at a proven gap of ``G``, searching only below
it); the table's title says which.

The second form runs the flagship ``lns`` and HiGHS alone on the full
tightened level model for the same wall time, ``--repeat`` times each with
seeds ``0..repeat-1``, and reports medians and the latency ratio
``T(lns) / T(HiGHS)`` of each seed (the issue's target: never above 1).

``--lp`` prints the level LP bound, plain and with every tightening
(``lp_bound(inst, "level", tightenings=...)``), with CPU times; ``--decompose``
runs the ``decompose`` algorithm (``best`` start, tightened-LP prices,
stabilised column generation, price-and-branch) and prints its rounds, bound,
bound source, incumbent and gap.  ``--perturb`` runs the layer
decomposition (tightened-LP prices, MILP pricing, at most 40 rounds) and
price-and-branch over its columns, then ``--rounds`` rounds of
``perturbed_columns`` and price-and-branch again, and prints both
latencies against the decomposition's bound with the CPU seconds of each
step (no time limits: the latencies are the same on any machine).  These
reproduce the tables of ``docs/formulations.md``.
"""
from __future__ import annotations

import argparse
import glob
import json
import statistics
import time

from benchmarks.timing import machine

__all__ = ["main", "certify_rows", "flagship_rows", "perturb_rows", "DEFAULT_FILES"]

DEFAULT_FILES = sorted(glob.glob("instances/paper/*.json*")) + sorted(glob.glob("instances/mixed-precision/*.json*"))
MIXTRAL_PAPER = sorted(glob.glob("instances/paper/paper-mixtral-8x7b-*.json"))


def certify_rows(files: list[str], *, time_limit: float, seed: int, records: str | None,
                 work_limit: float | None = None, gap: float = 0.0) -> list[dict]:
    """``certify`` on each file; one row per instance (also appended to ``records``)."""
    from slimcaching.algorithms.certify import certify
    from slimcaching.instances.io import read_instance

    rows = []
    for f in files:
        inst = read_instance(f)
        cert = certify(inst, time_limit=time_limit, seed=seed, work_limit=work_limit, gap=gap)
        d = cert.to_dict(inst)
        d["file"] = f
        bound = next(b for b in cert.bounds if b["method"] == cert.bound_method and b["value"] == cert.bound)
        inc = next(i for i in cert.incumbents if i["method"] == cert.latency_method and i["value"] == cert.latency)
        row = {"instance": inst.name, "T_empty": d["empty_latency"], "bound": cert.bound,
               "bound_method": cert.bound_method, "bound_s": bound["time_s"], "latency": cert.latency,
               "latency_method": cert.latency_method, "latency_s": inc["time_s"], "gap": cert.gap,
               "wall_s": cert.runtime_s, "cpu_s": cert.cpu_s, "work_limit": work_limit, "gap_target": gap,
               "reproducible": cert.info.get("reproducible"), "load": _load()}
        rows.append(row)
        if records:
            with open(records, "a") as fh:
                fh.write(json.dumps(d) + "\n")
        print(json.dumps(row), flush=True)
    return rows


def _load() -> float | None:
    """The 1-minute load average at the end of a run (the machine is shared)."""
    try:
        import os
        return os.getloadavg()[0]
    except OSError:
        return None


def certify_table(rows: list[dict], time_limit: float, gap: float = 0.0) -> str:
    target = f"; target gap {100 * gap:g} %" if gap else ""
    lines = [f"### certify on the shipped instances (machine: {machine()}; budget {time_limit:g} s each{target})", "",
             "| instance | T(empty) | bound | bound method | at | best latency | latency method | at "
             "| certified gap | wall | CPU |",
             "|---|---:|---:|---|---:|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['instance']} | {r['T_empty']:.6g} | {r['bound']:.6f} | {r['bound_method']} | "
                     f"{r['bound_s']:.0f} s | {r['latency']:.6f} | {r['latency_method']} | {r['latency_s']:.0f} s | "
                     f"{100 * r['gap']:.3f} % | {r['wall_s']:.0f} s | {r['cpu_s']:.0f} s |")
    return "\n".join(lines)


def flagship_rows(files: list[str], *, time_limit: float, repeat: int) -> list[dict]:
    """``lns`` and HiGHS alone (full tightened level model) for the same wall time, per seed."""
    from slimcaching.algorithms import run
    from slimcaching.formulations.arrays import arrays_placement, build_level_arrays
    from slimcaching.formulations.direct import solve_arrays
    from slimcaching.instances.io import read_instance
    from slimcaching.objective import latency

    rows = []
    for f in files:
        inst = read_instance(f)
        for seed in range(repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            res = run(inst, "lns", seed=seed, time_limit=time_limit)
            lns_wall, lns_cpu = time.perf_counter() - t0, time.process_time() - c0
            t0, c0 = time.perf_counter(), time.process_time()
            model = build_level_arrays(inst)
            h = solve_arrays(model, integer=True, time_limit=max(0.01, time_limit - (time.perf_counter() - t0)),
                             seed=seed)
            highs_t = latency(inst, arrays_placement(model, h.col_value)) if h.col_value is not None else None
            row = {"instance": inst.name, "seed": seed, "lns": res.latency, "lns_bound": res.bound,
                   "lns_gap": res.gap, "lns_wall_s": lns_wall, "lns_cpu_s": lns_cpu, "highs": highs_t,
                   "highs_bound": h.bound, "highs_wall_s": time.perf_counter() - t0,
                   "highs_cpu_s": time.process_time() - c0}
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def flagship_table(rows: list[dict], time_limit: float) -> str:
    lines = [f"### flagship `lns` against HiGHS's incumbent at equal wall time (machine: {machine()}; "
             f"{time_limit:g} s each)", "",
             "| instance | seeds | T(lns) median | gap to its bound (median) | T(HiGHS) median | "
             "T(lns)/T(HiGHS) per seed | CPU lns / HiGHS (median) |",
             "|---|---:|---:|---:|---:|---|---|"]
    for name in dict.fromkeys(r["instance"] for r in rows):
        rs = [r for r in rows if r["instance"] == name]
        ratios = ", ".join(f"{r['lns'] / r['highs']:.4f}" if r["highs"] else "no HiGHS incumbent" for r in rs)
        gaps = [r["lns_gap"] for r in rs if r["lns_gap"] is not None]
        highs = [r["highs"] for r in rs if r["highs"]]
        lines.append(f"| {name} | {len(rs)} | {statistics.median(r['lns'] for r in rs):.6f} | "
                     f"{100 * statistics.median(gaps):.3f} % | "
                     f"{statistics.median(highs):.6f} | {ratios} | "
                     f"{statistics.median(r['lns_cpu_s'] for r in rs):.0f} s / "
                     f"{statistics.median(r['highs_cpu_s'] for r in rs):.0f} s |" if highs and gaps else
                     f"| {name} | {len(rs)} | {statistics.median(r['lns'] for r in rs):.6f} | | | {ratios} | |")
    return "\n".join(lines)


def lp_rows(files: list[str]) -> list[dict]:
    """Plain and tightened level LP bound of each file, with CPU seconds."""
    from slimcaching.formulations.solve import lp_bound
    from slimcaching.formulations.tightenings import DEFAULT_TIGHTENINGS
    from slimcaching.instances.io import read_instance

    rows = []
    for f in files:
        inst = read_instance(f)
        row = {"instance": inst.name}
        for key, tight in (("plain", ()), ("tightened", DEFAULT_TIGHTENINGS)):
            c0 = time.process_time()
            row[key] = lp_bound(inst, "level", tightenings=tight)
            row[f"{key}_cpu_s"] = time.process_time() - c0
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def lp_table(rows: list[dict]) -> str:
    lines = [f"### level LP bound, plain and tightened (machine: {machine()})", "",
             "| instance | plain LP | tightened LP | gain | CPU plain / tightened |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['instance']} | {r['plain']:.6f} | {r['tightened']:.6f} | "
                     f"{100 * (r['tightened'] / r['plain'] - 1):+.2f} % | "
                     f"{r['plain_cpu_s']:.1f} s / {r['tightened_cpu_s']:.1f} s |")
    return "\n".join(lines)


def decompose_rows(files: list[str], *, time_limit: float, seed: int) -> list[dict]:
    """The ``decompose`` algorithm on each file within ``time_limit``."""
    from slimcaching.algorithms import run
    from slimcaching.instances.io import read_instance

    rows = []
    for f in files:
        inst = read_instance(f)
        t0, c0 = time.perf_counter(), time.process_time()
        res = run(inst, "decompose", seed=seed, time_limit=time_limit)
        row = {"instance": inst.name, "N": inst.N, "rounds": res.info["rounds"], "converged": res.info["converged"],
               "bound": res.bound, "bound_source": res.info["bound_source"], "lp_bound": res.info["lp_bound"],
               "latency": res.latency, "incumbent_source": res.info["incumbent_source"],
               "best_latency": res.info["best_latency"], "gap": res.gap,
               "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def decompose_table(rows: list[dict], time_limit: float) -> str:
    lines = [f"### `decompose` (machine: {machine()}; budget {time_limit:g} s each)", "",
             "| instance | N | rounds | converged | bound (source) | vs tightened LP | incumbent (source) | "
             "gap | wall | CPU |", "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        vs = (f"{100 * (r['bound'] / r['lp_bound'] - 1):+.3f} %" if r["lp_bound"] else "(no LP)")
        lines.append(f"| {r['instance']} | {r['N']} | {r['rounds']} | {r['converged']} | {r['bound']:.6f} "
                     f"({r['bound_source']}) | {vs} | {r['latency']:.6f} ({r['incumbent_source']}) | "
                     f"{100 * r['gap']:.3f} % | {r['wall_s']:.0f} s | {r['cpu_s']:.0f} s |")
    return "\n".join(lines)


def perturb_rows(files: list[str], *, rounds: int, seed: int, spread: float = 0.1) -> list[dict]:
    """Price-and-branch over the decomposition's columns, then with ``rounds`` rounds of perturbed columns."""
    from slimcaching.formulations.decomposition import (column_generation, lp_prices, perturbed_columns,
                                                        price_and_branch)
    from slimcaching.instances.io import read_instance
    from slimcaching.objective import latency

    rows = []
    for f in files:
        inst = read_instance(f)
        c0 = time.process_time()
        _, prices = lp_prices(inst)
        dw = column_generation(inst, prices=prices, price_time=None, max_rounds=40)
        c1 = time.process_time()
        alone, _ = price_and_branch(inst, dw.columns, dw.capacity)
        c2 = time.process_time()
        extra = perturbed_columns(inst, dw.prices, dw.capacity, known=dw.columns, rounds=rounds, seed=seed,
                                  spread=spread, price_time=None)
        c3 = time.process_time()
        more, _ = price_and_branch(inst, dw.columns + extra, dw.capacity)
        c4 = time.process_time()
        row = {"instance": inst.name, "N": inst.N, "bound": dw.bound, "rounds": dw.rounds,
               "columns": len(dw.columns), "pab": latency(inst, alone) if alone is not None else None,
               "perturbed_columns": len(extra), "pab_perturbed": latency(inst, more) if more is not None else None,
               "decomposition_cpu_s": c1 - c0, "pab_cpu_s": c2 - c1, "perturb_cpu_s": c3 - c2,
               "pab_perturbed_cpu_s": c4 - c3, "perturb_rounds": rounds, "spread": spread, "seed": seed}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def perturb_table(rows: list[dict]) -> str:
    lines = [f"### price-and-branch with perturbed columns (machine: {machine()})", "",
             "| instance | N | bound (rounds) | columns | price-and-branch (gap) | + perturbed columns | "
             "price-and-branch (gap) | CPU: decomposition / perturbed pricing / both price-and-branch |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]

    def gap(t: float | None, b: float) -> str:
        return "none" if t is None else f"{t:.6f} ({100 * max(0.0, (t - b) / t):.3f} %)"

    for r in rows:
        lines.append(f"| {r['instance']} | {r['N']} | {r['bound']:.6f} ({r['rounds']}) | {r['columns']} | "
                     f"{gap(r['pab'], r['bound'])} | {r['perturbed_columns']} | "
                     f"{gap(r['pab_perturbed'], r['bound'])} | {r['decomposition_cpu_s']:.1f} s / "
                     f"{r['perturb_cpu_s']:.1f} s / {r['pab_cpu_s'] + r['pab_perturbed_cpu_s']:.1f} s |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", nargs="+", default=None, metavar="INSTANCE")
    ap.add_argument("--time-limit", type=float, default=None,
                    help="seconds per instance (default 600 for certify, 60 for --flagship)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work-limit", type=float, default=None,
                    help="certify in work mode (caps per stage; --time-limit is the wall on top)")
    ap.add_argument("--gap", type=float, default=0.0,
                    help="certify's target gap, a fraction (default 0: prove the optimum)")
    ap.add_argument("--records", default=None, help="append each certificate to this JSON-lines file")
    ap.add_argument("--flagship", action="store_true", help="lns against HiGHS at equal time instead")
    ap.add_argument("--repeat", type=int, default=3, help="seeds per instance for --flagship")
    ap.add_argument("--lp", action="store_true", help="plain and tightened level LP bounds instead")
    ap.add_argument("--decompose", action="store_true", help="the decompose algorithm instead")
    ap.add_argument("--perturb", action="store_true", help="price-and-branch with perturbed columns instead")
    ap.add_argument("--rounds", type=int, default=40, help="rounds of perturbed pricing for --perturb")
    ap.add_argument("--spread", type=float, default=0.1, help="spread of the price factors for --perturb")
    args = ap.parse_args(argv)
    if args.perturb:
        out = perturb_table(perturb_rows(args.files or MIXTRAL_PAPER, rounds=args.rounds, seed=args.seed,
                                         spread=args.spread))
    elif args.lp:
        out = lp_table(lp_rows(args.files or DEFAULT_FILES))
    elif args.decompose:
        tl = 120.0 if args.time_limit is None else args.time_limit
        out = decompose_table(decompose_rows(args.files or DEFAULT_FILES, time_limit=tl, seed=args.seed), tl)
    elif args.flagship:
        tl = 60.0 if args.time_limit is None else args.time_limit
        out = flagship_table(flagship_rows(args.files or MIXTRAL_PAPER, time_limit=tl, repeat=args.repeat), tl)
    else:
        tl = 600.0 if args.time_limit is None else args.time_limit
        out = certify_table(certify_rows(args.files or DEFAULT_FILES, time_limit=tl, seed=args.seed,
                                         records=args.records, work_limit=args.work_limit, gap=args.gap),
                            tl, args.gap)
    print(out)
    return out


if __name__ == "__main__":  # pragma: no cover
    main()
