"""Benchmark of streaming trace import at 10M tokens (``make bench``).

Targets (issue 13), on the 2-core machine:

* a 10M-token Mixtral-8x7B (32 layers x 8 experts, top-2) vLLM trace
  (``int16 [tokens, 32, 2]``, 4 request files) imported in <= 60 s with peak
  memory <= 1.5 GB;
* a 10M-token DeepSeek-V2-Lite (26 x 64, top-6) trace in <= 5 min within the
  same memory.

The traces are generated once (seeded) into ``--dir`` (default
``$SLIMCACHING_TRACE_BENCH``, else ``slimcaching-traces-bench`` in the
temporary directory; not in the
repository): each user's tokens draw one set per layer from the routing
model of :func:`slimcaching.instances.suites.model_instance` with
``tokens=65536`` sampled sets per ``(user, layer)``, so a trace has up to
``4 x L x 65536`` distinct ``(user, layer, set)`` entries (reported).

Each import runs ``slimcaching from-trace`` in a fresh process (so peak RSS is
the import's alone), sequentially, ``--repeat`` times; the table reports the
median and IQR of wall time, CPU time and peak RSS (``ru_maxrss`` of the
child, from ``os.wait4``).  Run with ``python -m benchmarks.perf_traces [--tokens N] [--repeat R]``.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.timing import machine

__all__ = ["main", "generate", "CASES"]

#: name -> (catalog model, users, target seconds, extra from-trace options)
CASES = {"mixtral": ("Mixtral-8x7B", 4, 60.0, []),
         # 6.5M distinct (user, layer, set) entries (40 tokens each), more than the default --max-sets
         "deepseek-v2-lite": ("DeepSeek-V2-Lite", 4, 300.0, ["--max-sets", "0"])}
MEMORY_TARGET_GB = 1.5


def default_dir() -> Path:
    return Path(os.environ.get("SLIMCACHING_TRACE_BENCH", Path(tempfile.gettempdir()) / "slimcaching-traces-bench"))


def generate(case: str, tokens: int, out: Path, seed: int = 0) -> Path:
    """Write ``out/<case>-<tokens>/user-<u>.npy`` (vLLM layout, int16) once; returns the folder."""
    from slimcaching.instances.suites import model_instance

    model, users, _, _ = CASES[case]
    folder = out / f"{case}-{tokens}"
    done = folder / ".complete"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    inst = model_instance(model, network="5g-mec", nodes=4, users=users, seed=seed, tokens=65536)
    rng = np.random.default_rng([seed, 13])
    per_user = tokens // users
    L, K = inst.L, inst.max_top_k
    step = 250_000
    for u in range(users):
        path = folder / f"user-{u}.npy"
        arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.int16, shape=(per_user, L, K))
        for a in range(0, per_user, step):
            b = min(per_user, a + step)
            for l in range(L):
                sl = inst.sets_of(u, l)
                p = inst.set_prob[sl]
                idx = rng.choice(len(p), size=b - a, p=p / p.sum())
                arr[a:b, l, :] = inst.set_experts[sl][idx][:, :K]
        arr.flush()
        del arr
    done.write_text("ok\n")
    return folder


def _run_import(folder: Path, model: str, extra: list[str]) -> tuple[float, float, float, str]:
    """One import in a child process: wall s, CPU s, peak RSS GB, the child's stderr."""
    out = folder.parent / f"{folder.name}.instance.npz"
    cmd = [sys.executable, "-m", "slimcaching.cli", "from-trace", str(folder), "--model", model,
           "--network", "5g-mec", "--seed", "0", *extra, "-o", str(out)]
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, ru = os.wait4(proc.pid, 0)        # this child's own rusage (not a running max over children)
        wall = time.perf_counter() - t0
        err.seek(0)
        text = err.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"import failed: {text.strip()}")
    cpu = ru.ru_utime + ru.ru_stime
    after_rss = ru.ru_maxrss
    # only the small JSON header: the parent must stay small, since a forked child's ru_maxrss
    # starts from the parent's resident size
    import json

    with np.load(out) as z:
        meta = json.loads(z["header.json"].tobytes().decode())["metadata"]["trace"]
    return wall, cpu, after_rss / 2 ** 20, f"{meta['distinct_sets']:,} ({meta['tokens_per_distinct_set']} tokens each)"


def _iqr(v: list[float]) -> float:
    if len(v) < 2:
        return 0.0
    q = statistics.quantiles(v, n=4)
    return q[2] - q[0]


def run(tokens: int, repeat: int, cases: list[str], out: Path) -> str:
    lines = [f"### Streaming trace import, {tokens:,} tokens (machine: {machine()})", "",
             "| trace | file size | distinct (user, layer, set) | wall median (IQR) | CPU median | "
             "peak RSS median (max) | target | met |", "|---|---:|---:|---:|---:|---:|---|:---:|"]
    for case in cases:
        model, _, target, extra = CASES[case]
        folder = generate(case, tokens, out)
        size = sum(f.stat().st_size for f in folder.glob("*.npy")) / 2 ** 30
        runs = [_run_import(folder, model, extra) for _ in range(max(1, repeat))]
        wall = [r[0] for r in runs]
        cpu = [r[1] for r in runs]
        rss = [r[2] for r in runs]
        distinct = runs[-1][3]
        met = "yes" if statistics.median(wall) <= target and max(rss) <= MEMORY_TARGET_GB else "NO"
        lines.append(f"| {model} vLLM `{folder.name}` {' '.join(extra)} | {size:.2f} GiB | {distinct} | "
                     f"{statistics.median(wall):.1f} s ({_iqr(wall):.1f}) | {statistics.median(cpu):.1f} s | "
                     f"{statistics.median(rss):.2f} GB ({max(rss):.2f}) | <= {target:.0f} s, "
                     f"<= {MEMORY_TARGET_GB} GB | {met} |")
    lines += ["", f"Each import: `slimcaching from-trace FOLDER --model M --network 5g-mec --seed 0 [extra] -o X.npz` "
                  f"in a fresh process, {repeat} run(s), sequentially; peak RSS is that child's ru_maxrss (os.wait4)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated: {', '.join(CASES)}")
    ap.add_argument("--dir", default=str(default_dir()), help="where the generated traces live")
    args = ap.parse_args(argv)
    text = run(args.tokens, args.repeat, [c for c in args.cases.split(",") if c], Path(args.dir))
    print(text)
    return text


if __name__ == "__main__":  # pragma: no cover
    main()
