"""Held-out evaluation: does an optimum over-fit the trace it was computed on?

``from-trace --split fit:test`` writes a *fit* and a *test* instance over one
network.  :func:`generalisation_gap` runs each algorithm on *fit* and
evaluates its placement on *test* with the one evaluator:

* ``gap = T_test(x_fit) - T_fit(x_fit)``: how much worse the placement does on
  unseen tokens than it promised on the ones it was fitted to;
* ``regret = T_test(x_fit) - T_test(x_test)``, where ``x_test`` is the same
  algorithm run on *test* (an in-hindsight reference);

both also relative to ``T_test(empty)``.  :func:`heldout_table` formats the
rows as markdown for the analysis tables.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import InputError
from ..instances.model import Instance
from ..objective import empty_latency, latency

__all__ = ["generalisation_gap", "heldout_table", "check_same_network"]


def check_same_network(fit: Instance, test: Instance) -> None:
    """A placement of ``fit`` must mean the same thing on ``test``: same nodes, capacities, layers, sizes."""
    same = (fit.node_names == test.node_names and np.array_equal(fit.capacity, test.capacity)
            and np.array_equal(fit.experts, test.experts) and np.array_equal(fit.expert_size, test.expert_size)
            and np.array_equal(fit.top_k, test.top_k))
    if not same:
        raise InputError(test.name, ("", f"instances {fit.name!r} and {test.name!r} are not over the same network "
                                         f"and model (nodes, capacities, layers, expert sizes, top-k must agree): "
                                         f"build both with one `from-trace --split`"))


def generalisation_gap(fit: Instance, test: Instance, algorithms: Sequence[str], *, seed: int | None = 0,
                       time_limit: float | None = None) -> list[dict]:
    """One row per algorithm: ``T_fit(x_fit)``, ``T_test(x_fit)``, ``T_test(x_test)``, gap and regret."""
    from ..algorithms.registry import run

    check_same_network(fit, test)
    t0 = empty_latency(test)
    rows = []
    for name in algorithms:
        r_fit = run(fit, name, seed=seed, time_limit=time_limit)
        r_test = run(test, name, seed=seed, time_limit=time_limit)
        t_ff = float(r_fit.latency)
        t_tf = latency(test, r_fit.placement)
        t_tt = float(r_test.latency)
        rows.append({"algorithm": name, "fit_latency": t_ff, "test_latency": t_tf, "test_optimised_latency": t_tt,
                     "gap": t_tf - t_ff, "regret": t_tf - t_tt, "gap_pct_of_cloud": 100 * (t_tf - t_ff) / t0,
                     "regret_pct_of_cloud": 100 * (t_tf - t_tt) / t0, "fit_status": str(r_fit.status),
                     "test_status": str(r_test.status)})
    return rows


def heldout_table(rows: list[dict]) -> str:
    """Markdown table of :func:`generalisation_gap` rows (latencies in ms)."""
    out = ["| algorithm | T_fit(x_fit) ms | T_test(x_fit) ms | T_test(x_test) ms | gap ms | regret ms | "
           "regret % of cloud |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['algorithm']} | {1e3 * r['fit_latency']:.4f} | {1e3 * r['test_latency']:.4f} | "
                   f"{1e3 * r['test_optimised_latency']:.4f} | {1e3 * r['gap']:+.4f} | {1e3 * r['regret']:+.4f} | "
                   f"{r['regret_pct_of_cloud']:.3f} |")
    return "\n".join(out)
