"""Exact count tables: CPU time of each scan per layer, on the shipped files that have tables.

Usage (from the repository root)::

    python -m benchmarks.perf_count_tables [--files F ...] [--layers K] [--repeat R]

For each file, the first ``K`` layers (default 4) get
:func:`slimcaching.formulations.count_tables.count_table` with the scan
``certify`` uses (``auto``) and, where that is the mask scan and the
node-set scan is within ``TABLE_WORK`` patterns too, also with the node-set
scan; the two are interleaved round by round and their ratio is the median
of the per-round ratios (:func:`benchmarks.timing.paired`).  (On the
``5g-mec`` file the node-set scan would be 15^8 = 2.6 billion patterns a
layer, against the mask scan's 34 million evaluations: one layer, one call
each, took 23.4 s against 0.61 s, so it is not timed by default.)  CPU time
of the process, BLAS pinned to one thread, median and IQR over ``R`` repeats
(default 3) after a warm-up call.  The row also gives the scan's work
(mask evaluations, patterns, or DP steps), the vectors each table keeps
(finite entries) and, scaled to all layers, the median time of a whole file.

Defaults: the three shipped files with tables, one per method —
``mixed-mixtral-8x7b-5g-mec`` (mask scan: two shared and two private
nodes), ``mixed-mixtral-8x7b-wifi-jetson`` (node-set scan: four shared
nodes) and ``mixed-llama-4-scout-wifi-jetson-L12`` (top-1: dynamic
programme).  Under a minute.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from benchmarks.timing import machine, paired, ratio, single_threaded

__all__ = ["main", "DEFAULT_FILES", "table_rows"]

DEFAULT_FILES = ["instances/mixed-precision/mixed-mixtral-8x7b-5g-mec.json",
                 "instances/mixed-precision/mixed-mixtral-8x7b-wifi-jetson.json",
                 "instances/mixed-precision/mixed-llama-4-scout-wifi-jetson-L12.json"]


def table_rows(files: list[str], *, layers: int, repeat: int) -> list[dict]:
    """One row per file and scan timed (see the module docstring)."""
    from slimcaching.formulations.count_tables import TABLE_WORK, _method, count_table
    from slimcaching.formulations.enumeration import _ranges
    from slimcaching.formulations.tightenings import DEFAULT_TIGHTENINGS, tightened_capacities
    from slimcaching.instances.io import read_instance

    rows = []
    for path in files:
        inst = read_instance(path)
        hi = _ranges(inst, tightened_capacities(inst, tuple(DEFAULT_TIGHTENINGS)))
        per: dict[str, list] = {}
        for l in range(min(layers, inst.L)):
            method, work = _method(inst, l, hi[l], "auto")
            if not np.isfinite(work):
                continue
            scans = {method: method}
            if method == "masks" and _method(inst, l, hi[l], "node-sets")[1] <= TABLE_WORK:
                scans["node-sets"] = "node-sets"
            fns = {name: (lambda s=s, l=l: count_table(inst, l, hi[l], scan=s, max_work=np.inf))
                   for name, s in scans.items()}
            with single_threaded():
                timings = paired(fns, repeat)
            for name, t in timings.items():
                table = fns[name]()
                row = per.setdefault(name, [])
                row.append({"layer": l, "timing": t, "work": _method(inst, l, hi[l], name)[1],
                            "kept": int(np.isfinite(table.cost).sum()), "vectors": int(table.cost.size),
                            "ratio": ratio(t, timings["masks"]) if name == "node-sets" and "masks" in timings
                            else None})
        for name, items in per.items():
            med = [it["timing"].median for it in items]
            rows.append({"instance": inst.name, "scan": name, "layers": len(items), "of": inst.L,
                         "median_s": float(np.median(med)), "iqr_s": float(np.median([it["timing"].iqr for it in items])),
                         "work": float(np.median([it["work"] for it in items])),
                         "kept": [it["kept"] for it in items], "vectors": items[0]["vectors"],
                         "file_s": float(np.median(med)) * inst.L,
                         "ratio": (None if items[0]["ratio"] is None else
                                   float(np.median([it["ratio"].median for it in items])))})
    return rows


def table(rows: list[dict], repeat: int) -> str:
    compared = any(r["ratio"] is not None for r in rows)
    lines = [f"### Count tables: CPU time per layer ({repeat} repeats, BLAS on one thread)", "",
             "| instance | scan | layers timed | CPU per layer (median ± IQR) | work per layer | vectors kept "
             "/ all | whole file (scaled) |" + (" node sets / masks (same run) |" if compared else ""),
             "|---|---|---:|---:|---:|---:|---:|" + ("---:|" if compared else "")]
    for r in rows:
        kept = f"{min(r['kept'])}-{max(r['kept'])} / {r['vectors']}"
        rat = "" if r["ratio"] is None else f"{r['ratio']:.3f}"
        lines.append(f"| {r['instance']} | {r['scan']} | {r['layers']} of {r['of']} | "
                     f"{r['median_s']:.3f} ± {r['iqr_s']:.3f} s | {r['work']:.3g} | {kept} | "
                     f"{r['file_s']:.1f} s |" + (f" {rat} |" if compared else ""))
    lines += ["", f"Machine: {machine()}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    from slimcaching.errors import InputError

    ap = argparse.ArgumentParser(prog="python -m benchmarks.perf_count_tables", description=__doc__.split("\n")[0])
    ap.add_argument("--files", nargs="+", default=DEFAULT_FILES)
    ap.add_argument("--layers", type=int, default=4, help="layers timed per file (default 4)")
    ap.add_argument("--repeat", type=int, default=3, help="timed calls per scan and layer (default 3)")
    args = ap.parse_args(argv)
    if args.layers < 1 or args.repeat < 1:
        ap.error("--layers and --repeat must be >= 1")
    try:
        rows = table_rows(args.files, layers=args.layers, repeat=args.repeat)
    except InputError as exc:  # one line, exit 2
        print(exc.one_line(), file=sys.stderr)
        raise SystemExit(2)
    out = table(rows, args.repeat)
    print(out)
    return out


if __name__ == "__main__":  # pragma: no cover
    main()
