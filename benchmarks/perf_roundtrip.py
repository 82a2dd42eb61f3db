"""Benchmark of the round trip export -> HiGHS (outside Pyomo) -> import-solution at paper scale.

For each instance: export the model as MPS, let highspy solve the file with a
work limit (MIP nodes, so the file HiGHS writes does not depend on machine
speed) and write its own solution file, then import that file.  Reported: the
model size, the CPU time of ``export_model`` and of ``import_solution``
(median and IQR over ``--repeat`` runs, ``time.process_time`` of this
process), their ratio in the same run, and whether the imported latency
equals HiGHS's objective (the check ``import_solution`` itself makes).

Run with ``python -m benchmarks.perf_roundtrip [--instances A B] [--repeat 3]``.
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from benchmarks.timing import cpu_time, machine, ratio

__all__ = ["main", "run", "DEFAULT_INSTANCES"]

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCES = ("paper-mixtral-8x7b-wifi-rtx-bf16.json", "paper-olmoe-1b-7b-wifi-rtx-bf16.json.gz")


def run(instances=DEFAULT_INSTANCES, *, formulation: str = "level", repeat: int = 3,
        node_limit: int = 50) -> list[dict]:
    """One row per instance: sizes, CPU times of export and import, and the objective check."""
    import highspy

    from slimcaching.formulations.export import export_model
    from slimcaching.formulations.import_solution import import_solution
    from slimcaching.instances.io import read_instance

    rows = []
    for name in instances:
        inst = read_instance(ROOT / "instances" / "paper" / name)
        with tempfile.TemporaryDirectory() as tmp:
            mps = os.path.join(tmp, "model.mps")
            t_export, _ = cpu_time(lambda: export_model(inst, formulation=formulation, fmt="mps", path=mps), repeat,
                                   warmup=0)
            h = highspy.Highs()
            h.setOptionValue("output_flag", False)
            h.setOptionValue("threads", 1)
            h.setOptionValue("mip_max_nodes", node_limit)
            h.readModel(mps)
            h.run()
            sol = os.path.join(tmp, "model.sol")
            h.writeSolution(sol, 0)
            objective = h.getInfo().objective_function_value
            t_import, imp = cpu_time(lambda: import_solution(inst, sol, formulation=formulation), repeat, warmup=0)
            rows.append({
                "instance": name, "N": inst.N, "L": inst.L, "E": inst.max_experts, "sets": inst.n_sets,
                "columns": h.getNumCol(), "rows": h.getNumRow(),
                "mps_mb": os.path.getsize(mps) / 1e6, "sol_mb": os.path.getsize(sol) / 1e6,
                "highs_status": h.modelStatusToString(h.getModelStatus()),
                "export_cpu": t_export, "import_cpu": t_import,
                "objective": objective, "latency": imp.result.latency,
                "rel_diff": abs(imp.result.latency - objective) / abs(objective),
            })
    return rows


def table(rows: list[dict], repeat: int) -> str:
    lines = [f"### Round trip at paper scale (machine: {machine()}; CPU s, median ± IQR over {repeat} runs)", "",
             "| instance | N x L x E, sets | columns x rows | MPS / .sol MB | HiGHS stopped | export CPU s | "
             "import CPU s | import / export | \\|T(x) - objective\\| / objective |",
             "|---|---|---|---|---|---:|---:|---:|---:|"]
    for r in rows:
        rel = ratio(r["import_cpu"], r["export_cpu"])
        lines.append(f"| {r['instance']} | {r['N']} x {r['L']} x {r['E']}, {r['sets']} | {r['columns']} x {r['rows']} "
                     f"| {r['mps_mb']:.1f} / {r['sol_mb']:.1f} | {r['highs_status']} | {r['export_cpu'].fmt('s', 2)} "
                     f"| {r['import_cpu'].fmt('s', 2)} | {rel.fmt('s', 2).removesuffix(' s')} | {r['rel_diff']:.1e} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", nargs="+", default=list(DEFAULT_INSTANCES), help="file names in instances/paper")
    ap.add_argument("--formulation", choices=["level", "assignment"], default="level")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--node-limit", type=int, default=50, help="HiGHS mip_max_nodes (a work limit)")
    args = ap.parse_args(argv)
    rows = run(args.instances, formulation=args.formulation, repeat=args.repeat, node_limit=args.node_limit)
    print(table(rows, args.repeat))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
