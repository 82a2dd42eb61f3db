"""Benchmark of the foundation: evaluator, incremental gains, JSON loading, at DeepSeek-V3 scale.

Instance: the shipped ``instances/paper/paper-deepseek-v3-5g-mec-bf16.json.gz``
(58 layers x 256 experts, top-8, 8 nodes, 4 users).  Every number is CPU time
(median ± IQR over repeats, BLAS pinned to one thread); methods compared in a
ratio are timed interleaved in the same run (:mod:`benchmarks.timing`).

Targets (issue 15): a full evaluation within 3x of the time to read its arrays
once; a single incremental gain >= 4x faster than the previous evaluator
(transcribed below as the *before* baseline and timed in the same run);
batched gains of every element in bounded memory.

Run with ``python -m benchmarks.perf_foundation`` (``--repeat``).
"""
from __future__ import annotations

import argparse
import time
import tracemalloc
from pathlib import Path

import numpy as np

from slimcaching.instances.io import read_instance
from slimcaching.instances.model import Placement
from slimcaching.objective import (IncrementalEvaluator, available_kernels, latency, member_index,
                                   member_index_ks, tau)
from benchmarks.timing import cpu_time, machine, paired, ratio, single_threaded

__all__ = ["main", "run", "INSTANCE"]

INSTANCE = Path(__file__).resolve().parents[1] / "instances" / "paper" / "paper-deepseek-v3-5g-mec-bf16.json.gz"


# ------------------------------------------------------------- the evaluator before issue 15
def _latency_before(inst, x: np.ndarray) -> float:
    """The full evaluation as it was: a masked minimum per node, an (S, Kmax) gather reduced
    row-wise, and the weighted sum through BLAS."""
    out = np.broadcast_to(inst.cloud_latency[:, :, None], (inst.U, inst.L, inst.max_experts)).copy()
    for n in range(inst.N):
        if x[n].any():
            np.minimum(out, np.where(x[n][None, :, :], inst.latency[:, n, :, None], np.inf), out=out)
    ext = np.append(out.ravel(), 0.0)
    return float(inst.coef @ ext[member_index(inst)].max(axis=1))


def _gain_before(ev: IncrementalEvaluator, n: int, l: int, e: int) -> float:
    """One incremental gain as it was: every row containing ``(l, e)`` gathered whole
    (``O(r Kmax)``), the member replaced, the row maximum taken again."""
    if ev.x[n, l, e]:
        return 0.0
    rows, cols = ev.rows_of(l, e)
    if len(rows) == 0:
        return 0.0
    inst = ev.instance
    users = inst.set_user[rows]
    new = np.minimum(ev.tau[users, l, e], inst.latency[users, n, l])
    memb = ev.tau_flat[member_index(inst)[rows]]
    memb[np.arange(len(rows)), cols] = new
    return float(inst.coef[rows] @ (ev.setlat[rows] - memb.max(axis=1)))


def run(repeat: int = 30, seed: int = 0) -> tuple[list[tuple[str, str, str, str]], dict]:
    """Rows ``(measure, CPU median ± IQR, target, note)`` and the raw numbers."""
    t0 = time.process_time()
    inst = read_instance(INSTANCE)
    load_once = time.process_time() - t0
    S, K = member_index(inst).shape
    members = int((inst.set_experts >= 0).sum())
    rng = np.random.default_rng(seed)
    # a placement as full as the instance allows: each node filled with random experts
    x = np.zeros((inst.N, inst.L, inst.max_experts), dtype=bool)
    valid = np.argwhere(inst.valid_mask())
    for n in range(inst.N):
        pick = valid[rng.permutation(len(valid))[: int(inst.capacity[n] // inst.expert_size.max())]]
        x[n, pick[:, 0], pick[:, 1]] = True
    rows, raw = [], {}
    idx_ks, coef = member_index_ks(inst), np.ascontiguousarray(inst.coef)
    idx_sk32 = member_index(inst).astype(np.int32)
    tau0 = tau(inst, x)
    nbytes = idx_ks.nbytes + coef.nbytes + tau0.nbytes + x.nbytes
    nbytes32 = idx_sk32.nbytes + coef.nbytes + tau0.nbytes + x.nbytes

    def read():  # one pass over every array the numpy evaluation reads
        return idx_ks.max(), coef.sum(), tau0.sum(), np.count_nonzero(x)

    def read32():  # the same for the compiled kernel's int32 index
        return idx_sk32.max(), coef.sum(), tau0.sum(), np.count_nonzero(x)

    fns = {"read": read, "read32": read32, "numpy": lambda: latency(inst, x, kernel="numpy"),
           "before": lambda: _latency_before(inst, x)}
    if "numba" in available_kernels():
        fns["numba"] = lambda: latency(inst, x, kernel="numba")
    assert abs(latency(inst, x, kernel="numpy") - _latency_before(inst, x)) <= 1e-12 * latency(inst, x)
    with single_threaded():
        full = paired(fns, repeat)
    raw["full"] = full
    r_np = ratio(full["numpy"], full["read"])
    rows.append(("read the evaluation's arrays once", full["read"].fmt(), "",
                 f"{nbytes / 2**20:.1f} MiB: (Kmax, S) int64 index, coef, tau, x"))
    rows.append(("full evaluation T(x), numpy", full["numpy"].fmt(), "<= 3x read",
                 f"{r_np.median:.1f}x read (IQR {r_np.iqr:.1f}); {S} sets, {members} members"))
    if "numba" in full:
        r_nb = ratio(full["numba"], full["read32"])
        r_nb64 = ratio(full["numba"], full["read"])
        rows.append(("read the compiled kernel's arrays once", full["read32"].fmt(), "",
                     f"{nbytes32 / 2**20:.1f} MiB: (S, Kmax) int32 index, coef, tau, x"))
        rows.append(("full evaluation T(x), numba", full["numba"].fmt(), "<= 3x read",
                     f"{r_nb.median:.1f}x its own read (IQR {r_nb.iqr:.1f}); "
                     f"{r_nb64.median:.1f}x the int64 arrays' read"))
    r_before = ratio(full["before"], full["numpy"])
    rows.append(("full evaluation T(x), before", full["before"].fmt(), "",
                 f"numpy path {r_before.median:.1f}x faster (IQR {r_before.iqr:.1f})"))

    ev = IncrementalEvaluator(inst, Placement(x))
    cand = np.argwhere(~x & inst.valid_mask()[None])
    pick = [tuple(int(v) for v in r) for r in cand[rng.choice(len(cand), size=500, replace=False)]]
    assert max(abs(_gain_before(ev, *p) - ev.gain(*p)) for p in pick) <= 1e-12

    def gains_now():
        for p in pick:
            ev.gain(*p)

    def gains_before():
        for p in pick:
            _gain_before(ev, *p)

    with single_threaded():
        one = paired({"now": gains_now, "before": gains_before}, max(5, repeat // 3))
    raw["gain"] = one
    per = {k: type(v)(tuple(t / len(pick) for t in v.values)) for k, v in one.items()}
    r_gain = ratio(one["before"], one["now"])
    rows.append(("one incremental gain of (n,l,e)", per["now"].fmt("us", 2), ">= 4x faster than before",
                 f"{r_gain.median:.1f}x faster (IQR {r_gain.iqr:.1f}); before {per['before'].fmt('us', 2)}; "
                 f"{len(pick)} random uncached elements, {np.diff(ev._ptr).mean():.0f} rows each on average"))
    batch = cand[:4096]
    with single_threaded():
        tb, _ = cpu_time(lambda: ev.gains(batch), repeat)
    rows.append(("batched gains, 4096 elements, per element",
                 type(tb)(tuple(t / len(batch) for t in tb.values)).fmt("us", 2), "", "IncrementalEvaluator.gains"))
    every = np.argwhere(np.broadcast_to(inst.valid_mask()[None], x.shape))
    ev0 = IncrementalEvaluator(inst)
    with single_threaded():
        tracemalloc.start()
        t_all = time.process_time()
        ev0.gains(every)
        t_all = time.process_time() - t_all
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    raw["peak_all_gains"] = peak
    rows.append(("gains of all elements from empty (greedy's first pass)", f"{t_all * 1e3:.0f} ms (one run)",
                 "<= 500 MiB", f"{len(every)} elements; traced peak {peak / 2**20:.0f} MiB"))
    tl, _ = cpu_time(lambda: read_instance(INSTANCE), 3, warmup=0)
    rows.append(("load the instance (.json.gz)", tl.fmt("s"), "", f"{INSTANCE.stat().st_size / 2**20:.1f} MiB file; "
                 f"first load {load_once:.2f} s"))
    return rows, raw


def table(rows: list[tuple[str, str, str, str]]) -> str:
    lines = [f"Machine: {machine()}", "", "| measure | CPU time (median ± IQR) | target | note |",
             "|---|---:|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args(argv)
    rows, _ = run(args.repeat, args.seed)
    out = table(rows)
    print(out)
    return out


if __name__ == "__main__":  # pragma: no cover
    main()
