"""The separable Lagrangian bound on the large paper instances: how high, in how many rounds and CPU-s.

Usage (from the repository root)::

    python -m benchmarks.perf_bounds [--files F ...] [--rounds 3000] [--repeat 1]

For each instance (default: the paper files whose level model is too large
for ``certify`` to solve its LP, where this bound gives the prices of the
layer decomposition) it runs
:func:`slimcaching.formulations.bounds.separable_bound` on the tightened
capacities, with the Polyak target set to the best latency of the committed
certificate (``benchmarks/records/paper-certify.jsonl``), and prints the
bound, the rounds it took and whether its steps converged, its CPU time
(median and interquartile range over ``--repeat`` runs, one thread of BLAS),
the committed certificate's bound, and the certified gap each gives against
that latency.

The bound depends only on the instance and the round cap, never on the
machine: the rounds are a work limit and there is no time limit here.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.timing import cpu_time, machine, single_threaded

__all__ = ["main", "run", "DEFAULT_FILES"]

DEFAULT_FILES = [
    "instances/paper/paper-olmoe-1b-7b-wifi-rtx-bf16.json.gz",
    "instances/paper/paper-olmoe-1b-7b-5g-mec-bf16.json.gz",
    "instances/paper/paper-deepseek-v2-lite-wifi-rtx-bf16.json.gz",
    "instances/paper/paper-deepseek-v2-lite-5g-mec-int8.json.gz",
    "instances/paper/paper-qwen1.5-moe-a2.7b-wifi-jetson-bf16.json.gz",
    "instances/paper/paper-qwen1.5-moe-a2.7b-5g-device-bf16.json.gz",
    "instances/paper/paper-deepseek-v3-5g-mec-bf16.json.gz",
]
RECORDS = Path(__file__).resolve().parent / "records" / "paper-certify.jsonl"


def _records() -> dict[str, dict]:
    out = {}
    for line in RECORDS.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            out[Path(r["file"]).name] = r
    return out


def run(files: list[str], rounds: int = 3000, repeat: int = 1) -> str:
    """The benchmark's markdown."""
    from slimcaching.formulations.bounds import separable_bound
    from slimcaching.formulations.tightenings import tightened_capacities
    from slimcaching.instances.io import read_instance

    recs = _records()

    def cpu(timing) -> str:
        return f"{timing.median:.1f} s" if repeat == 1 else timing.fmt("s", 1)

    spread = "one run each" if repeat == 1 else f"median ± IQR over {repeat} runs"
    lines = [f"### Separable Lagrangian bound (machine: {machine()}; CPU s: {spread})", "",
             "| instance | size | latency (record) | bound (record, method) | separable bound | rounds | converged "
             "| CPU s | gap: record | gap: separable |",
             "|---|---|---:|---|---:|---:|:---:|---:|---:|---:|"]
    for f in files:
        inst = read_instance(f)
        rec = recs.get(Path(f).name)
        upper = rec["latency"] if rec else None
        cap = tightened_capacities(inst)
        with single_threaded():
            timing, res = cpu_time(lambda: separable_bound(inst, capacity=cap, upper=upper, rounds=rounds),
                                   repeat, warmup=0)
        size = f"{inst.L} x {inst.max_experts}, top-{inst.max_top_k}, N={inst.N}"
        if rec:
            gap_rec = (rec["latency"] - rec["bound"]) / rec["latency"]
            gap_sep = (rec["latency"] - res["bound"]) / rec["latency"]
            lines.append(f"| {inst.name} | {size} | {rec['latency']:.6f} | {rec['bound']:.6f} ({rec['bound_method']}) "
                         f"| {res['bound']:.6f} | {res['rounds']} | {'yes' if res['converged'] else 'no'} "
                         f"| {cpu(timing)} | {100 * gap_rec:.2f} % | {100 * gap_sep:.2f} % |")
        else:
            lines.append(f"| {inst.name} | {size} | - | - | {res['bound']:.6f} | {res['rounds']} "
                         f"| {'yes' if res['converged'] else 'no'} | {cpu(timing)} | - | - |")
    lines += ["", f"Round cap {rounds}; Polyak target: the record's latency; capacities: tightened (`Q'`)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", nargs="+", default=DEFAULT_FILES, metavar="INSTANCE")
    ap.add_argument("--rounds", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args(argv)
    print(run(args.files, args.rounds, args.repeat))


if __name__ == "__main__":
    main()
