"""Count enumeration to the end: does it prove the optimum where ``certify``'s 600 s do not?

Usage (from the repository root)::

    python -m benchmarks.perf_enumeration [--files F ...] [--time-limit 3600] [--seed 0] [--records R]

For each instance this builds a start with work limits only, so the start
and every count below are the same on any machine:

1. the tightened level LP's capacity prices
   (:func:`~slimcaching.formulations.decomposition.lp_prices`);
2. column generation by layer (MILP pricing, at most 40 rounds, 200 nodes per
   pricing MILP), then 40 rounds of perturbed columns
   (:func:`~slimcaching.formulations.decomposition.perturbed_columns`) and
   price-and-branch over all of them (2000 nodes);
3. :func:`~slimcaching.algorithms.lns.milp_lns` from that placement
   (60 sub-MILPs of 200 nodes, no whole-model finish);

then runs :func:`~slimcaching.formulations.enumeration.count_enumeration`
from the decomposition's prices and that start, with no node limit and
``--time-limit`` as its only cap.  One JSON line per instance: the start and
its latency, the Lagrangian bound ``LB`` used for fixing, the count vectors
(all, kept, with exact tables), the outer MILP (status, nodes, seconds), the
final bound, latency, gap and whether the optimum is proved, wall and CPU
seconds (this process and its HiGHS children) of each part, and the placement
of that latency as a ``slimcaching-placement/1`` object (written to a file,
``slimcaching evaluate`` re-checks a proven optimum).  The proof does
not depend on the machine; the seconds do, and a cap that ends the outer MILP
leaves a gap.

``make bench`` runs it on ``mixed-mixtral-8x7b-wifi-rtx-L8`` (8 x 8, about
two minutes on 2 cores).  The 600 s ``certify`` of
``mixed-mixtral-8x7b-5g-mec`` (32 x 8) leaves 0.38-0.41 %; this benchmark on
it is the measurement in ``docs/formulations.md`` ("Count enumeration: exact
where layers have few experts").
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from benchmarks.timing import machine

__all__ = ["main", "enumeration_rows", "enumeration_table", "DEFAULT_FILES", "START_WORK"]

DEFAULT_FILES = ["instances/mixed-precision/mixed-mixtral-8x7b-wifi-rtx-L8.json"]

START_WORK = {"cg_rounds": 40, "pricing_nodes": 200, "perturb_rounds": 40, "pab_nodes": 2000,
              "lns_steps": 60, "lns_nodes": 200}
"""The work limits of the start (the ``work_limit=1`` caps of ``certify`` for the same stages)."""


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def enumeration_rows(files: list[str], *, time_limit: float | None, seed: int,
                     records: str | None = None) -> list[dict]:
    """One row per file: the work-limited start, then the count enumeration (see the module docstring)."""
    from slimcaching.algorithms.lns import milp_lns
    from slimcaching.formulations.decomposition import (column_generation, lp_prices, perturbed_columns,
                                                        price_and_branch)
    from slimcaching.formulations.enumeration import count_enumeration
    from slimcaching.instances.io import placement_to_dict, read_instance
    from slimcaching.objective import latency
    from slimcaching.result import versions

    w = START_WORK
    rows = []
    for f in files:
        inst = read_instance(f)
        t0, c0 = time.perf_counter(), _cpu()
        _, prices = lp_prices(inst)
        dw = column_generation(inst, prices=prices, pricing="milp", price_time=None, max_rounds=w["cg_rounds"],
                               node_limit=w["pricing_nodes"])
        extra = perturbed_columns(inst, dw.prices, dw.capacity, known=dw.columns, rounds=w["perturb_rounds"],
                                  seed=seed, price_time=None, node_limit=w["pricing_nodes"])
        start, _ = price_and_branch(inst, dw.columns + extra, dw.capacity, node_limit=w["pab_nodes"])
        if start is None:
            start = inst.empty_placement()
        pab = latency(inst, start)
        start, lns = milp_lns(inst, start, time_limit=None, seed=seed, finish_rows=0, max_steps=w["lns_steps"],
                              sub_nodes=w["lns_nodes"])
        t1, c1 = time.perf_counter(), _cpu()
        r = count_enumeration(inst, dw.prices, start=start, time_limit=time_limit)
        t2, c2 = time.perf_counter(), _cpu()
        outer = r.info.get("outer") or {}
        row = {"instance": inst.name, "file": f, "instance_hash": inst.content_hash(), "seed": seed,
               "time_limit": time_limit, "start_work": w, "decomposition_bound": dw.bound,
               "price_and_branch": pab, "start_latency": latency(inst, start), "lns_steps": lns["steps"],
               "start_bound": r.start_bound, "vectors": r.vectors, "kept": r.kept, "solved": r.solved,
               "table_layers": sum(layer["table"] for layer in r.info["layers"]),
               "outer_status": outer.get("status"), "outer_nodes": outer.get("nodes"),
               "outer_wall_s": outer.get("wall_s"), "bound": r.bound, "latency": r.latency,
               "gap": max(0.0, (r.latency - r.bound) / r.latency) if r.latency > 0 else 0.0, "proved": r.proved,
               "start_wall_s": t1 - t0, "start_cpu_s": c1 - c0, "enumeration_wall_s": t2 - t1,
               "enumeration_cpu_s": c2 - c1, "versions": versions(),
               # the placement of `latency` (a proven optimum when `proved`), a slimcaching-placement/1 object
               "placement": placement_to_dict(inst, r.placement)}
        rows.append(row)
        if records:
            with open(records, "a") as fh:
                fh.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
    return rows


def enumeration_table(rows: list[dict]) -> str:
    lines = [f"### Count enumeration from a work-limited start (machine: {machine()})", "",
             "| instance | start (price-and-branch -> LNS) | LB | vectors kept / all (tables) | outer MILP "
             "| bound | latency | gap | wall / CPU: start, enumeration |",
             "|---|---|---:|---:|---|---:|---:|---:|---|"]
    for r in rows:
        outer = (f"{r['outer_status']}, {r['outer_nodes']} nodes, {r['outer_wall_s']:.0f} s"
                 if r["outer_status"] is not None else "not reached")
        gap = "**0 (optimal)**" if r["proved"] else f"{100 * r['gap']:.3f} %"
        lines.append(f"| {r['instance']} | {r['price_and_branch']:.6f} -> {r['start_latency']:.6f} | "
                     f"{r['start_bound']:.6f} | {r['kept']} / {r['vectors']} ({r['table_layers']} layers) | {outer} | "
                     f"{r['bound']:.6f} | {r['latency']:.6f} | {gap} | {r['start_wall_s']:.0f} / "
                     f"{r['start_cpu_s']:.0f} s, {r['enumeration_wall_s']:.0f} / {r['enumeration_cpu_s']:.0f} s |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    from slimcaching.errors import InputError

    ap = argparse.ArgumentParser(prog="python -m benchmarks.perf_enumeration", description=__doc__.split("\n")[0])
    ap.add_argument("--files", nargs="+", default=DEFAULT_FILES)
    ap.add_argument("--time-limit", type=float, default=3600.0,
                    help="seconds of the count enumeration, a cap (default 3600)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--records", help="append each row as a JSON line to this file")
    args = ap.parse_args(argv)
    if not args.time_limit > 0:
        ap.error("--time-limit must be > 0")
    try:
        rows = enumeration_rows(args.files, time_limit=args.time_limit, seed=args.seed, records=args.records)
    except InputError as exc:  # one line, exit 2; the rows printed so far stay printed
        print(exc.one_line(), file=sys.stderr)
        raise SystemExit(2)
    except ValueError as exc:  # count_enumeration refuses more than MAX_VECTORS count vectors
        print(f"perf_enumeration: {exc}", file=sys.stderr)
        raise SystemExit(2)
    out = enumeration_table(rows)
    print(out)
    return out


if __name__ == "__main__":  # pragma: no cover
    main()
