"""Benchmark of instance building: trace import and real-architecture generation.

Targets (medians), at DeepSeek-V3 scale (58 MoE layers x 256 experts, top-8):

* canonicalising a router trace of 1 million activated-expert rows (4 users,
  ~2 150 tokens each) into ``(user, token, layer, experts)`` sets: <= 2 s,
  i.e. >= 500 000 rows/s (vectorised group-by, no loop over tokens);
* counting its set distributions and building the instance: <= 2 s;
* reading the same trace in the list format (Parquet, one row per token and
  layer) end to end: <= 2 s;
* generating the ``paper`` DeepSeek-V3 instance (8 nodes, 4 users, 512
  sampled tokens per user and layer): <= 10 s.

Run with ``python -m benchmarks.perf_instances``.
"""
from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np

from slimcaching.instances.io import write_instance
from slimcaching.instances.suites import model_instance
from slimcaching.instances.traces import instance_from_trace, read_trace, sample_trace, trace_from_frame, write_trace
from benchmarks.timing import median_time, target_table

__all__ = ["main", "run"]


def _median_time(fn, repeat: int) -> float:
    return median_time(fn, repeat)[0]


def run(seed: int = 0, repeat: int = 3, rows: int = 1_000_000) -> list[tuple[str, float, float, str]]:
    """Return rows ``(measure, median seconds, target seconds, note)``."""
    src = model_instance("DeepSeek-V3", network="5g-mec", nodes=8, users=4, seed=seed, tokens=512)
    tokens = max(1, rows // (src.U * src.L * 8))
    df = sample_trace(src, tokens, np.random.default_rng(seed))
    out = []
    t = _median_time(lambda: trace_from_frame(df), repeat)
    out.append(("canonicalise trace (long -> sets)", t, 2.0,
                f"{len(df):,} rows, {len(df) / t:,.0f} rows/s"))
    tr = trace_from_frame(df)
    out.append(("set distributions + instance", _median_time(
        lambda: instance_from_trace(tr, model="DeepSeek-V3", network="5g-mec", nodes=8, seed=seed), repeat), 2.0,
        f"{tr.n_sets:,} token-layer sets"))
    with tempfile.TemporaryDirectory() as tmp:
        pq = os.path.join(tmp, "trace.parquet")
        write_trace(df, pq)
        out.append(("read Parquet trace end to end", _median_time(lambda: read_trace(pq), repeat), float("nan"),
                    "long format: pandas.read_parquet + canonicalise"))
        lst = df.groupby(["user", "token", "layer"], sort=False)["expert"].agg(list).reset_index()
        pql = os.path.join(tmp, "trace-list.parquet")
        write_trace(lst.rename(columns={"expert": "experts"}), pql)
        t = _median_time(lambda: read_trace(pql), repeat)
        out.append(("read Parquet list trace end to end", t, 2.0,
                    f"list format, {len(lst):,} rows (one per token and layer), explode + canonicalise"))
        out.append(("generate paper DeepSeek-V3 instance", _median_time(
            lambda: model_instance("DeepSeek-V3", network="5g-mec", nodes=8, users=4, seed=seed, tokens=512),
            repeat), 10.0, f"{src.n_sets:,} sets"))
        gz = os.path.join(tmp, "v3.json.gz")
        out.append(("write it as .json.gz", _median_time(lambda: write_instance(src, gz), repeat), float("nan"),
                    "gzip, mtime 0"))
    return out


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rows", type=int, default=1_000_000, help="activated-expert rows in the trace")
    args = ap.parse_args(argv)
    rows = run(args.seed, args.repeat, args.rows)
    out = target_table("Instances", rows)
    print(out)
    return out


if __name__ == "__main__":  # pragma: no cover
    main()
