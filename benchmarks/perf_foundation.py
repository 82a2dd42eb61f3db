"""Benchmark of the foundation: evaluator, incremental gains, JSON loading.

Targets (DeepSeek-V3 scale: 58 layers x 256 experts, top-8, 8 nodes, 4 users,
about 512 sets per user and layer): one full evaluation <= 50 ms, one
incremental gain <= 0.5 ms, loading the JSON <= 2 s (medians).

Run with ``python -m benchmarks.perf_foundation``.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from slimcaching.instances.generators import random_instance
from slimcaching.instances.io import read_instance, write_instance
from slimcaching.objective import IncrementalEvaluator, latency
from benchmarks.timing import machine, median_time, target_table

__all__ = ["main", "run", "machine"]




def _median_time(fn, repeat: int) -> float:
    return median_time(fn, repeat)[0]


def run(seed: int = 0, repeat: int = 30) -> list[tuple[str, float, float, str]]:
    """Return rows ``(measure, median seconds, target seconds, note)``."""
    t0 = time.perf_counter()
    inst = random_instance(layers=58, experts=256, top_k=8, nodes=8, users=4, seed=seed, tokens=520,
                           capacity_fraction=0.05, skew=1.0, name="deepseek-v3-scale")
    gen = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    x = (rng.random((inst.N, inst.L, inst.max_experts)) < 0.05) & inst.valid_mask()[None]
    rows = []
    rows.append(("full evaluation T(x)", _median_time(lambda: latency(inst, x), repeat), 0.050,
                 f"{inst.n_sets} sets, {inst.n_sets * inst.max_set_size} set members"))
    ev = IncrementalEvaluator(inst)
    ev.apply(add=[tuple(v) for v in np.argwhere(x)])
    cand = np.argwhere(~x & inst.valid_mask()[None])
    pick = cand[rng.choice(len(cand), size=200, replace=False)]
    it = iter(np.tile(pick, (repeat * 10 // len(pick) + 2, 1)))
    rows.append(("incremental gain of one (n,l,e)", _median_time(lambda: ev.gain(*next(it)), 10 * repeat), 0.0005,
                 "IncrementalEvaluator.gain"))
    batch = cand[:4096]
    rows.append(("batched gains, 4096 elements (per element)",
                 _median_time(lambda: ev.gains(batch), repeat) / len(batch), 0.0005, "IncrementalEvaluator.gains"))
    with tempfile.TemporaryDirectory() as d:
        f = os.path.join(d, "inst.json")
        write_instance(inst, f)
        size = os.path.getsize(f)
        rows.append(("load instance JSON", _median_time(lambda: read_instance(f), 5), 2.0,
                     f"{size / 2**20:.1f} MiB file"))
        fz = f + ".gz"
        write_instance(inst, fz)
        rows.append(("load instance JSON.gz", _median_time(lambda: read_instance(fz), 5), 2.0,
                     f"{os.path.getsize(fz) / 2**20:.1f} MiB file"))
    rows.append(("generate the instance (once)", gen, float("nan"), "random_instance, Plackett-Luce sampling"))
    return rows


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args(argv)
    rows = run(args.seed, args.repeat)
    out = target_table("Foundation", rows, unit="ms")
    print(out)
    return out


if __name__ == "__main__":  # pragma: no cover
    main()
