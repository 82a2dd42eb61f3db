"""Node orders of the successive decomposition: quality and CPU time on every shipped suite.

For each instance of each suite, ``successive`` runs with every order
(``greedy``, ``latency``, ``capacity``, ``given``) and ``maxconv`` (``eps``
0.05) with ``greedy`` and ``latency``.  All are deterministic, so the
reduction is computed once; the CPU time (``time.process_time``) is repeated
``--repeat`` times and reported as median and interquartile range.

Quality: on suites whose instances the exact MILP (or brute force) closes
within ``--time-limit`` (``tiny``, ``small``), the ratio ``R(alg) / R(opt)``
against the proven optimum; elsewhere (``mixed-precision``, ``paper``) the
ratio ``R(alg) / R(best order)`` against the best of the orders in the same
run, and how often each order is (co-)best.  Time: median CPU seconds per
instance and the per-instance ratio to the ``latency`` order, measured in the
same run.

Instances with more than ``--max-sets`` routing rows are skipped and listed
(the default, 60000, leaves out ``paper-deepseek-v3-5g-mec-bf16``: 118784
rows, 256 experts per layer, where one ``latency``-order run alone took more
than ten minutes of wall time on the shared machine).

Run with ``python -m benchmarks.perf_orders`` (``--suites``, ``--repeat``,
``--time-limit``, ``--max-sets``).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.perf_quality import optimum
from benchmarks.timing import machine
from slimcaching.algorithms.maxconv import maxconv
from slimcaching.algorithms.successive import successive
from slimcaching.instances.io import read_instance

__all__ = ["main", "METHODS", "measure"]

METHODS = {
    "successive[order=greedy]": lambda inst: successive(inst, order="greedy"),
    "successive[order=latency]": lambda inst: successive(inst, order="latency"),
    "successive[order=capacity]": lambda inst: successive(inst, order="capacity"),
    "successive[order=given]": lambda inst: successive(inst, order="given"),
    "maxconv[order=greedy]": lambda inst: maxconv(inst, order="greedy", eps=0.05),
    "maxconv[order=latency]": lambda inst: maxconv(inst, order="latency", eps=0.05),
}
_OPTIMA_SUITES = ("tiny", "small")
_TIME_BASE = {"successive": "successive[order=latency]", "maxconv": "maxconv[order=latency]"}


def _cpu(fn, inst, repeat: int):
    times, res = [], None
    for _ in range(max(1, repeat)):
        t0 = time.process_time()
        res = fn(inst)
        times.append(time.process_time() - t0)
    return times, res


def measure(suite: Path, repeat: int, time_limit: float, max_sets: int) -> dict:
    rows = {m: {"ratio": [], "k1": [], "best": 0, "time": [], "iqr": [], "rel_time": [], "solves": []}
            for m in METHODS}
    skipped, unproven, used = [], 0, 0
    for f in sorted(p for p in suite.iterdir() if p.name.endswith((".json", ".json.gz"))):
        inst = read_instance(f)
        if inst.n_sets > max_sets:
            skipped.append(f"{f.name} ({inst.n_sets} rows)")
            continue
        out = {m: _cpu(fn, inst, repeat) for m, fn in METHODS.items()}
        red = {m: res.reduction for m, (_, res) in out.items()}
        if suite.name in _OPTIMA_SUITES:
            opt = optimum(inst, time_limit)
            if opt is None:
                unproven += 1
                continue
            ref = out[next(iter(METHODS))][1].empty_latency - opt[0]
        else:
            ref = max(red.values())
        used += 1
        top = max(red.values())
        med = {m: statistics.median(t) for m, (t, _) in out.items()}
        for m, (t, res) in out.items():
            rows[m]["ratio"].append(red[m] / ref if ref > 0 else 1.0)
            if inst.max_set_size <= 1 and inst.N >= 2:
                rows[m]["k1"].append(rows[m]["ratio"][-1])
            rows[m]["iqr"].append(_iqr(t))
            rows[m]["best"] += red[m] >= top - 1e-12 * max(abs(top), 1e-300)
            rows[m]["time"].append(med[m])
            base = _TIME_BASE[m.split("[")[0]]
            rows[m]["rel_time"].append(med[m] / med[base] if med[base] > 0 else np.nan)
            rows[m]["solves"].append(res.info["single_node_solves"])
    return {"rows": rows, "skipped": skipped, "unproven": unproven, "used": used}


def _iqr(v):
    q1, q3 = np.percentile(v, [25, 75])
    return q3 - q1


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suites", nargs="+", default=["tiny", "small", "mixed-precision", "paper"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--time-limit", type=float, default=30.0, help="seconds per exact solve (tiny, small)")
    ap.add_argument("--max-sets", type=int, default=60000)
    args = ap.parse_args(argv)
    lines = [f"### Node orders of successive / maxconv (machine: {machine()})", "",
             f"CPU time per instance: median of {args.repeat} runs, 'median CPU' the median of that over "
             "instances, 'IQR CPU' the median over instances of the interquartile range over the repeats; "
             "'time / latency' is the median over instances of the per-instance ratio to the same method's "
             "latency order, measured in the same run.  'min K=1' is the minimum ratio on the instances "
             "with K = 1 and at least two nodes (the regime of the proven 1/2, or (1-eps)/(2-eps))."]
    for name in args.suites:
        suite = Path("instances") / name
        m = measure(suite, args.repeat, args.time_limit, args.max_sets)
        against = "R(opt), proven" if name in _OPTIMA_SUITES else "R(best order in this run)"
        lines += ["", f"#### {name}: {m['used']} instances; ratio against {against}"
                      + (f"; {m['unproven']} skipped (no proven optimum)" if m["unproven"] else "")
                      + (f"; skipped (--max-sets): {', '.join(m['skipped'])}" if m["skipped"] else ""), "",
                  "| method | mean ratio | min ratio | min K=1 | (co-)best | median CPU | IQR CPU | time / latency "
                  "| median single-node solves |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for meth, r in m["rows"].items():
            if not r["time"]:
                continue
            k1 = f"{np.min(r['k1']):.4f} ({len(r['k1'])})" if r["k1"] else "-"
            lines.append(f"| {meth} | {np.mean(r['ratio']):.4f} | {np.min(r['ratio']):.4f} | {k1} "
                         f"| {r['best']}/{m['used']} | {statistics.median(r['time']) * 1e3:.1f} ms "
                         f"| {statistics.median(r['iqr']) * 1e3:.1f} ms "
                         f"| {np.nanmedian(r['rel_time']):.2f} | {statistics.median(r['solves']):g} |")
        print("\n".join(lines[-(len(m["rows"]) + 4):]), file=sys.stderr, flush=True)
    text = "\n".join(lines)
    return text


if __name__ == "__main__":
    print(main())
