"""A suite (``paper``, ``mixed-precision``): every heuristic against the best proven bound, one row per instance.

Usage (from the repository root)::

    python -m benchmarks.perf_paper_table [--suite paper|mixed-precision] [--files F ...] [--algorithms LIST]
                                          [--records R ...] [--db DB] [--hard-timeout S] [--numba-sets N]

``--suite`` picks the default files (``instances/<suite>/``) and records
(``benchmarks/records/<suite>-certify.jsonl``); ``--files`` and ``--records``
override them.

1. Runs every registered algorithm that needs no MILP solver (:data:`HEURISTICS`:
   ``best``, ``polish``, ``cyclic``, ``successive``, ``maxconv``, ``greedy``,
   ``independent``, ``popularity``, ``random``, ``cloud``) on each file (default:
   every file of ``instances/paper``) through the sweep runner
   (:func:`slimcaching.analysis.runner.run_sweep`), seed 0, one run at a time,
   **without a time limit**: every one of them is deterministic then, so the
   table does not depend on the machine's speed.  Each run gets a hard timeout
   (``--hard-timeout``, default 1800 s); a run that has not returned by then is
   ended and stored as ``timeout``, and the table says so (column *not finished*).
   Instances with more than ``--numba-sets`` activation sets run with
   ``SLIMCACHING_KERNEL=numba`` when numba is installed (same latencies, up to
   summation order; the table names the instances).
2. Imports the certificates of ``--records`` (JSON lines written by
   ``slimcaching certify --output`` or ``python -m benchmarks.perf_certify
   --records``; default ``benchmarks/records/paper-certify.jsonl``) with
   :func:`slimcaching.analysis.certified.import_certificates`, which checks each
   placement with the evaluator and every bound against every feasible latency.
3. Prints :func:`slimcaching.analysis.certified.certified_table` (markdown):
   instance, size, T(empty), best bound (method, time), best latency (method,
   time), certified gap, and each algorithm's ratio ``R(alg) / R_ref`` with
   ``R_ref = T(empty) - bound`` (a certified lower bound on its true ratio), or
   exact against a proven optimum where one exists (column *reference*); then the
   CPU seconds of every run, the load and the machine.

``--db`` keeps the results store (a rerun skips the runs already in it); the
default is a fresh temporary store.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import tempfile
import time
from pathlib import Path

from benchmarks.timing import machine

__all__ = ["main", "HEURISTICS", "DEFAULT_FILES", "DEFAULT_RECORDS", "SUITES", "suite_files", "suite_records",
           "sweep", "tables"]

SUITES = ("paper", "mixed-precision")
"""The suites with certificates kept as data (``benchmarks/records/<suite>-certify.jsonl``)."""


def suite_files(suite: str) -> list[str]:
    """The instance files of ``instances/<suite>/``, sorted."""
    return sorted(glob.glob(f"instances/{suite}/*.json*"))


def suite_records(suite: str) -> list[str]:
    """The certificate records of ``suite``."""
    return [f"benchmarks/records/{suite}-certify.jsonl"]


DEFAULT_FILES = suite_files("paper")
DEFAULT_RECORDS = suite_records("paper")

#: Registered algorithms that call a MILP solver (or enumerate): not part of the heuristic sweep.
SOLVER_BASED = ("exact", "brute-force", "decompose", "lns")


def heuristics() -> list[str]:
    """Every registered algorithm except :data:`SOLVER_BASED`, in the tables' order."""
    from slimcaching.algorithms import REGISTRY
    from slimcaching.analysis.report import algorithm_rank

    return sorted((a for a in REGISTRY if a not in SOLVER_BASED), key=algorithm_rank)


HEURISTICS = heuristics()


def _sets(f: str) -> int:
    from slimcaching.instances.io import read_instance

    return int(len(read_instance(f).set_prob))


def sweep(files: list[str], algorithms: list[str], db: str, *, hard_timeout: float,
          numba_sets: int | None) -> dict:
    """Run ``algorithms`` on ``files`` into ``db`` (seed 0, no time limit); CPU and load of the sweep."""
    from slimcaching.analysis.runner import run_sweep
    from slimcaching.objective import available_kernels

    big = [f for f in files if numba_sets is not None and "numba" in available_kernels() and _sets(f) > numba_sets]
    groups = [([f for f in files if f not in big], None), (big, "numba")]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0, load0 = time.perf_counter(), os.getloadavg()
    summary = {"ran": 0, "skipped": 0, "timeouts": 0, "errors": 0, "numba": [Path(f).name for f in big]}
    for group, kernel in groups:
        if not group:
            continue
        old = os.environ.get("SLIMCACHING_KERNEL")
        if kernel:
            os.environ["SLIMCACHING_KERNEL"] = kernel
        try:
            s = run_sweep(group, ",".join(algorithms), db=db, seeds=[0], time_limit=None, hard_timeout=hard_timeout,
                          jobs=1, progress=False, log=lambda m: print(f"# {m}", flush=True))
        finally:
            if kernel:
                if old is None:
                    os.environ.pop("SLIMCACHING_KERNEL", None)
                else:
                    os.environ["SLIMCACHING_KERNEL"] = old
        for k in ("ran", "skipped", "timeouts", "errors"):
            summary[k] += getattr(s, k)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary.update(wall_s=time.perf_counter() - t0, cpu_s=(after.ru_utime + after.ru_stime)
                   - (before.ru_utime + before.ru_stime), load=(load0[1], os.getloadavg()[1]))
    return summary


def tables(db: str, files: list[str], algorithms: list[str]) -> tuple[str, str]:
    """The certified table and the CPU table (markdown) of the instances of ``files`` in ``db``."""
    import pandas as pd

    from slimcaching.analysis.certified import certified_table
    from slimcaching.analysis.report import format_table, load_frame, with_ratios
    from slimcaching.instances.io import read_instance

    hashes = [read_instance(f).content_hash() for f in files]
    df = with_ratios(load_frame(db))
    df = df[df["instance_hash"].isin(hashes)]
    cols = [*algorithms, *(["certify"] if (df["name"] == "certify").any() else [])]
    t = certified_table(df, cols)
    t = t.set_index(t["instance_name"]).loc[[n for n in dict.fromkeys(
        df.drop_duplicates("instance_hash").set_index("instance_hash").loc[hashes, "instance_name"])
        if n in set(t["instance_name"])]].reset_index(drop=True)
    certified = format_table(t, "markdown")
    runs = df[df["name"].isin(algorithms)].copy()

    def cpu(r: pd.Series) -> str:
        info = r["info"] if isinstance(r["info"], dict) else json.loads(r["info"] or "{}")
        if r["status"] == "timeout":
            return f"timeout ({float(r['wall_s']):.0f} s wall)"
        if r["status"] == "error":
            return "error"
        c = info.get("cpu_s")
        return "-" if c is None else f"{c:.3g}"

    runs["cpu"] = runs.apply(cpu, axis=1)
    pivot = runs.pivot_table(index="instance_name", columns="algorithm", values="cpu", aggfunc="first")
    pivot = pivot.reindex(index=list(t["instance_name"]), columns=[a for a in algorithms if a in pivot.columns])
    cpu_table = format_table(pivot.reset_index().fillna("-"), "markdown")
    return certified, cpu_table


def _only(records: list[str], files: list[str], tmp: str) -> list[str]:
    """``records`` restricted to the lines of ``files`` (copies in ``tmp``): the others are not read."""
    want = {str(Path(f).resolve()) for f in files}
    out = []
    for k, r in enumerate(records):
        lines = [ln for ln in Path(r).read_text(encoding="utf-8").splitlines()
                 if ln.strip() and str(Path(json.loads(ln).get("file", "")).resolve()) in want]
        out.append(str(Path(tmp) / f"records-{k}.jsonl"))
        Path(out[-1]).write_text("".join(ln + "\n" for ln in lines), encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", choices=SUITES, default="paper",
                    help="default files and records: instances/SUITE/ and benchmarks/records/SUITE-certify.jsonl")
    ap.add_argument("--files", nargs="+", default=None, metavar="INSTANCE")
    ap.add_argument("--algorithms", default=",".join(HEURISTICS),
                    help=f"comma-separated (default: {','.join(HEURISTICS)})")
    ap.add_argument("--records", nargs="*", default=None, metavar="JSONL",
                    help="certify records to import (default: the suite's)")
    ap.add_argument("--db", default=None, help="results store to use and keep (default: a temporary one)")
    ap.add_argument("--hard-timeout", type=float, default=1800.0, help="seconds per run (default 1800)")
    ap.add_argument("--numba-sets", type=int, default=100_000,
                    help="run instances with more activation sets with the numba kernel (default 100000)")
    args = ap.parse_args(argv)
    if args.files is None:
        args.files = suite_files(args.suite)
    if args.records is None:
        args.records = suite_records(args.suite)
    algorithms = [a.strip() for a in args.algorithms.split(",") if a.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or str(Path(tmp) / f"{args.suite}.sqlite")
        s = sweep(list(args.files), algorithms, db, hard_timeout=args.hard_timeout, numba_sets=args.numba_sets)
        from slimcaching.analysis.certified import import_certificates

        imported = sum(import_certificates(db, r) for r in _only(args.records, args.files, tmp))
        certified, cpu_table = tables(db, list(args.files), algorithms)
    out = "\n".join([
        f"### The {args.suite} suite: every heuristic against the best bound (machine: {machine()})", "",
        f"Heuristics seed 0, no time limit, hard timeout {args.hard_timeout:g} s, one run at a time; "
        f"this sweep ran {s['ran']} run(s) ({s['skipped']} already in the store), {s['timeouts']} timeout(s), "
        f"{s['errors']} error(s), {s['wall_s']:.0f} s wall, {s['cpu_s']:.0f} s CPU, 5-min load "
        f"{s['load'][0]:.2f} -> {s['load'][1]:.2f}; numba kernel on: {', '.join(s['numba']) or 'none'}. "
        f"{imported} certificate(s) imported from {', '.join(args.records) or 'none'}. Ratios: R(alg)/(T(empty) - "
        f"bound), certified lower bounds (reference *bound*), exact against a proven optimum (reference *optimum*).",
        "", certified, "CPU seconds per run (runs that did not finish: wall time at the hard timeout):", "", cpu_table])
    print(out)
    return out


if __name__ == "__main__":  # pragma: no cover
    main()
