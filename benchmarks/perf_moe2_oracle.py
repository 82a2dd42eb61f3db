"""MoE² from quality oracles: DMO against the MILP at many categories, DMO's masters, M beyond 16, greedy's ratio.

Four sections (``--sections``, all by default):

* ``speed`` -- DMO (``master="mckp"``) against the MILP (``exact``) at
  ``C = 8`` categories, ``M`` in ``--sizes``, latency budgets ``default`` and
  ``loose``; ``--seeds`` instances, each solved ``--repeat`` times.  CPU time
  of this process *and* its children (the MILP is built and solved in a forked
  child), median and inter-quartile range over the ``seeds x repeat`` runs,
  and the ratio of medians DMO / MILP measured in the same run;
* ``masters`` -- the three DMO masters (``mckp``, ``joint``, Tuy's
  ``polyblock``) by oracle calls at ``C = 3``;
* ``large`` -- DMO on noisy-OR oracles (:func:`generate_moe2` with
  ``model=True``) at ``M`` = 20-32, where no quality table fits: oracle calls
  against the candidate count, status and CPU time, and the MILP as a
  reference where it still fits;
* ``greedy`` -- greedy's ratio to the optimum on noisy-OR (submodular)
  instances next to learned-gate instances of complementary experts
  (:func:`generate_moe2_gated`, dense and top-2);
* ``restriction`` -- the optimality-preserving property: the full-set gate
  restricted to random subsets ``S`` against a gate retrained on ``S``, on the
  generator's data and on realisable data (targets exactly a softmax of the
  features), with a ridge of ``1e-2`` and ``1e-8``.

Every instance is seeded; every run has a time limit (``--time-limit``), and a
run that reaches it is reported as such, never counted as solved.

Run with ``python -m benchmarks.perf_moe2_oracle`` (``--quick`` for a smoke run).
"""
from __future__ import annotations

import argparse
import os
import statistics
from typing import Any, Callable

import numpy as np


from slimcaching.moe2.algorithms import MOE2_ALGORITHMS
from slimcaching.moe2.bits import popcount
from slimcaching.moe2.gating import GatedMixtureQuality, restriction_gap
from slimcaching.moe2.generator import generate_moe2, generate_moe2_gated
from slimcaching.result import Status

from .perf_moe2 import SCENARIOS
from .timing import Timing, machine, single_threaded

__all__ = ["main", "cpu_seconds", "speed", "masters", "large", "greedy_ratios"]


def cpu_seconds() -> float:
    """CPU seconds used so far by this process and its reaped children (user + system)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    c = cpu_seconds()
    out = fn()
    return cpu_seconds() - c, out


def _candidates(inst) -> int:
    return sum(1 << popcount(int(a)) for a in inst.allowed_masks())


# ------------------------------------------------------------------ DMO vs MILP at C = 8
def speed(sizes: list[int], *, categories: int, seeds: int, repeat: int, time_limit: float) -> str:
    lines = [f"### DMO (mckp) against the MILP, C = {categories}: CPU s (this process + solver child), "
             f"median [IQR] over {seeds} seeds x {repeat} repeats", "",
             "| scenario | M | candidates (median) | DMO CPU s | MILP CPU s | DMO / MILP | DMO calls | MILP calls "
             "| solved DMO / MILP | agree |", "|---|---:|---:|---:|---:|---:|---:|---:|:---:|:---:|"]
    for scenario, bq in SCENARIOS.items():
        for M in sizes:
            t = {"dmo": [], "exact": []}
            calls = {"dmo": [], "exact": []}
            solved = {"dmo": 0, "exact": 0}
            cands, agree = [], True
            for s in range(seeds):
                inst = generate_moe2(100 + s, experts=M, categories=categories, budget_quantile=bq)
                cands.append(_candidates(inst))
                obj = {}
                for _ in range(repeat):
                    for name in ("dmo", "exact"):  # alternate, so drifts in machine load hit both alike
                        sec, r = _timed(lambda: MOE2_ALGORITHMS[name](inst, time_limit=time_limit))
                        t[name].append(sec)
                        calls[name].append(r.oracle_calls)
                        solved[name] += r.status is Status.OPTIMAL
                        if r.status is Status.OPTIMAL:
                            obj.setdefault(name, r.objective)
                if len(obj) == 2 and abs(obj["dmo"] - obj["exact"]) > 1e-9 * max(1.0, abs(obj["exact"])):
                    agree = False
            td, tm = Timing(tuple(t["dmo"])), Timing(tuple(t["exact"]))
            (md, iq_d), (mm, iq_m) = (td.median, td.iqr), (tm.median, tm.iqr)
            n = seeds * repeat
            lines.append(f"| {scenario} | {M} | {statistics.median(cands):.0f} | {md:.3f} [{iq_d:.3f}] | "
                         f"{mm:.3f} [{iq_m:.3f}] | {md / mm:.2f} | {statistics.median(calls['dmo']):.0f} | "
                         f"{statistics.median(calls['exact']):.0f} | {solved['dmo']}/{n} / {solved['exact']}/{n} | "
                         f"{'yes' if agree else 'NO'} |")
    return "\n".join(lines)


# ------------------------------------------------------------------ the masters by oracle calls
def masters(sizes: list[int], *, categories: int, seeds: int, time_limit: float) -> str:
    lines = [f"### DMO masters by oracle calls, C = {categories}, scenario loose (median over {seeds} seeds; "
             "CPU s median)", "",
             "| M | candidates | mckp calls | joint calls | polyblock calls | mckp s | joint s | polyblock s "
             "| solved mckp / joint / polyblock |", "|---:|---:|---:|---:|---:|---:|---:|---:|:---:|"]
    for M in sizes:
        calls: dict[str, list] = {m: [] for m in ("mckp", "joint", "polyblock")}
        secs: dict[str, list] = {m: [] for m in calls}
        solved = {m: 0 for m in calls}
        cands = []
        for s in range(seeds):
            inst = generate_moe2(100 + s, experts=M, categories=categories, budget_quantile=SCENARIOS["loose"])
            cands.append(_candidates(inst))
            for m in calls:
                sec, r = _timed(lambda: MOE2_ALGORITHMS["dmo"](inst, master=m, time_limit=time_limit))
                calls[m].append(r.oracle_calls)
                secs[m].append(sec)
                solved[m] += r.status is Status.OPTIMAL
        med = {m: statistics.median(v) for m, v in calls.items()}
        sm = {m: statistics.median(v) for m, v in secs.items()}
        lines.append(f"| {M} | {statistics.median(cands):.0f} | {med['mckp']:.0f} | {med['joint']:.0f} | "
                     f"{med['polyblock']:.0f} | {sm['mckp']:.3f} | {sm['joint']:.3f} | {sm['polyblock']:.3f} | "
                     f"{solved['mckp']}/{seeds} / {solved['joint']}/{seeds} / {solved['polyblock']}/{seeds} |")
    return "\n".join(lines)


# ------------------------------------------------------------------ beyond the table
def large(sizes: list[int], *, categories: int, seeds: int, time_limit: float,
          milp_cap: int = 100_000) -> str:
    """DMO from noisy-OR oracles; the MILP as reference where its candidates number at most ``milp_cap``."""
    lines = [f"### DMO (mckp) on noisy-OR oracles beyond 16 experts, C = {categories}, scenario default "
             f"(MILP reference where at most {milp_cap} candidates)", "",
             "| M | seed | candidates | DMO calls | calls / candidates | DMO status | DMO CPU s | gap "
             "| MILP status | MILP CPU s | agree |",
             "|---:|---:|---:|---:|---:|:---:|---:|---:|:---:|---:|:---:|"]
    for M in sizes:
        for s in range(seeds):
            inst = generate_moe2(100 + s, experts=M, categories=categories, model=True)
            cand = _candidates(inst)
            sec, r = _timed(lambda: MOE2_ALGORITHMS["dmo"](inst, time_limit=time_limit))
            gap = "" if r.gap is None else f"{r.gap:.1e}"
            ref = "| — | — | — |"
            if cand <= milp_cap:
                msec, m = _timed(lambda: MOE2_ALGORITHMS["exact"](inst, time_limit=time_limit))
                both = r.status is Status.OPTIMAL and m.status is Status.OPTIMAL
                same = abs(r.objective - m.objective) <= 1e-9 * max(1.0, abs(m.objective))
                ref = f"| {m.status.value} | {msec:.2f} | {('yes' if same else 'NO') if both else '—'} |"
            lines.append(f"| {M} | {100 + s} | {cand:.3g} | {r.oracle_calls} | {r.oracle_calls / cand:.1e} | "
                         f"{r.status.value} | {sec:.2f} | {gap} {ref}")
    return "\n".join(lines)


# ------------------------------------------------------------------ greedy on instances that do not flatter it
def greedy_ratios(sizes: list[int], *, categories: int, seeds: int, time_limit: float) -> str:
    kinds = {
        "noisy-OR": lambda s, M: generate_moe2(100 + s, experts=M, categories=categories),
        "gate, dense": lambda s, M: generate_moe2_gated(100 + s, experts=M, categories=categories),
        "gate, top-2, per-query energy": lambda s, M: generate_moe2_gated(
            100 + s, experts=M, categories=categories, top_k=2, energy_accounting="per-query"),
    }
    lines = [f"### greedy / optimum (optimum by DMO, proven), C = {categories}, {seeds} seeds per cell: "
             "median (min)", "", "| quality | " + " | ".join(f"M = {M}" for M in sizes) + " |",
             "|---|" + "---:|" * len(sizes)]
    for kind, make in kinds.items():
        cells = []
        for M in sizes:
            ratios = []
            for s in range(seeds):
                inst = make(s, M)
                opt = MOE2_ALGORITHMS["dmo"](inst, time_limit=time_limit)
                if opt.status is not Status.OPTIMAL or opt.objective <= 0:
                    continue
                ratios.append(MOE2_ALGORITHMS["greedy"](inst).objective / opt.objective)
            cells.append(f"{statistics.median(ratios):.3f} ({min(ratios):.3f})" if ratios else "—")
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------ the optimality-preserving property
def _realisable(seed: int, M: int, C: int, queries: int, l2: float) -> GatedMixtureQuality:
    """Losses ``l = -tau z + c_q`` from a hidden gate ``z = W0 x + b0``: the targets are exactly ``softmax(z)``."""
    rng = np.random.default_rng(seed)
    W0, b0 = rng.standard_normal((M, 4)), rng.standard_normal(M)
    feats = [rng.standard_normal((queries, 4)) for _ in range(C)]
    losses = [0.1 * (-(x @ W0.T + b0)) for x in feats]
    losses = [loss - loss.min(axis=1, keepdims=True) for loss in losses]  # c_q: a per-query shift
    return GatedMixtureQuality.train(feats, losses, np.full(C, 2.0), temperature=0.1, l2=l2)


def restriction(sizes: list[int], *, seeds: int, subsets: int = 20) -> str:
    """``restriction_gap`` on random subsets: where the full-set gate restricted to ``S`` is the retrained one."""
    cases = {
        "generator (complementary specialists, l2 = 1e-2)": lambda s, M: generate_moe2_gated(
            100 + s, experts=M, categories=3).quality,
        "realisable targets, l2 = 1e-2": lambda s, M: _realisable(100 + s, M, 3, 48, 1e-2),
        "realisable targets, l2 = 1e-8": lambda s, M: _realisable(100 + s, M, 3, 48, 1e-8),
    }
    lines = [f"### The optimality-preserving property: full-set gate restricted to S vs retrained on S "
             f"({subsets} random S of size 2..M-1 per instance, {seeds} seeds)", "",
             "| data | M | J_S gap, median (max) | parameter gap, median (max) | abs(q_restricted - q_retrained), "
             "median (max) |", "|---|---:|---:|---:|---:|"]
    for name, make in cases.items():
        for M in sizes:
            jg, pg, qg = [], [], []
            for s in range(seeds):
                model = make(s, M)
                rng = np.random.default_rng(s)
                for _ in range(subsets):
                    S = sorted(rng.choice(M, size=int(rng.integers(2, M)), replace=False).tolist())
                    r = restriction_gap(model, S)
                    jg.append(r["objective_gap"])
                    pg.append(r["param_gap"])
                    qg.extend(abs(a - b) for a, b in zip(r["q_restricted"], r["q_retrained"]))
            lines.append(f"| {name} | {M} | {statistics.median(jg):.1e} ({max(jg):.1e}) | "
                         f"{statistics.median(pg):.1e} ({max(pg):.1e}) | {statistics.median(qg):.1e} "
                         f"({max(qg):.1e}) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.perf_moe2_oracle", description=__doc__.split("\n")[0])
    ap.add_argument("--sections", default="speed,masters,large,greedy,restriction")
    ap.add_argument("--sizes", default="8,10,12", help="M for the speed section")
    ap.add_argument("--categories", type=int, default=8, help="C for the speed section")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--master-sizes", default="8,10,12,14")
    ap.add_argument("--large-sizes", default="20,24,28,32")
    ap.add_argument("--greedy-sizes", default="6,8,10")
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--quick", action="store_true", help="one seed, one repeat, small sizes")
    a = ap.parse_args(argv)
    ints = lambda s: [int(x) for x in s.split(",") if x]  # noqa: E731
    if a.quick:
        a.sizes, a.seeds, a.repeat, a.master_sizes, a.large_sizes, a.greedy_sizes = "8", 1, 1, "8", "20", "6"
    sections = set(a.sections.split(","))
    with single_threaded():  # BLAS on one thread, as in the other benchmarks (inherited by the solver child)
        out = _sections(a, sections, ints)
    out.append(f"Machine: {machine()}.")
    print("\n\n".join(out))


def _sections(a: argparse.Namespace, sections: set[str], ints: Callable[[str], list[int]]) -> list[str]:
    out = []
    if "speed" in sections:
        out.append(speed(ints(a.sizes), categories=a.categories, seeds=a.seeds, repeat=a.repeat,
                         time_limit=a.time_limit))
    if "masters" in sections:
        out.append(masters(ints(a.master_sizes), categories=3, seeds=a.seeds, time_limit=a.time_limit))
    if "large" in sections:
        out.append(large(ints(a.large_sizes), categories=3, seeds=a.seeds, time_limit=a.time_limit))
    if "restriction" in sections:
        out.append(restriction(ints(a.greedy_sizes), seeds=a.seeds))
    if "greedy" in sections:
        out.append(greedy_ratios(ints(a.greedy_sizes), categories=3, seeds=a.seeds, time_limit=a.time_limit))
    return out


if __name__ == "__main__":
    main()
