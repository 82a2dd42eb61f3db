"""Lifted knapsack covers on the capacity rows of the level model: do they raise the bound?

Usage (from the repository root)::

    python -m benchmarks.perf_covers [--files F ...] [--rounds 15] [--node-limit 1] [--seed 0]

For each instance (default: the two mixed-precision L8 instances) this solves
the tightened level LP (:func:`slimcaching.formulations.arrays.build_level_arrays`,
every default tightening), then runs up to ``--rounds`` rounds of cover
separation: on each node's capacity row ``sum s_l x[n,l,e] <= Q'_n`` it looks
for a violated lifted cover inequality (:func:`separate_cover`), adds the most
violated one per node and re-solves.  It prints one JSON line per round (cuts
so far, LP bound, largest violation) and then three HiGHS MILP runs with the
same ``mip_max_nodes`` (``--node-limit``; 1 = the root and its cut loop) and
seed: the tightened model as it is, with the separated covers added, and with
the capacity rows written over integer per-(node, layer) count columns
``k[n,l] = sum_e x[n,l,e]`` (:func:`highs_bound`).  Node limits, not time,
so the comparison does not depend on the machine's load.

This is the measurement behind ``docs/formulations.md`` ("Where the
mixed-precision gap is"): the covers are not a tightening of the package.

Validity of the cuts (why a bound measured here is a bound): every node's
integer points satisfy ``sum s_l x <= Q'_n`` (``Q'_n`` is valid, see
:func:`slimcaching.formulations.tightenings.reachable_capacity`), and a lifted
cover inequality is valid for the binary knapsack set of that one row
(:func:`lift_cover`), so it is valid for the model.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from benchmarks.timing import machine

__all__ = ["lift_cover", "minimal_cover", "cover_candidates", "separate_cover", "cover_rounds", "highs_bound",
           "covers_table", "main", "DEFAULT_FILES"]

DEFAULT_FILES = ["instances/mixed-precision/mixed-phi-3.5-moe-wifi-rtx-L8.json",
                 "instances/mixed-precision/mixed-mixtral-8x7b-wifi-rtx-L8.json"]

VIOLATION = 1e-6
"""Smallest violation ``alpha x - rhs`` for a cut to be added."""


def lift_cover(sizes: np.ndarray, capacity: int, cover: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, int]:
    """Exact sequential up-lifting of the cover inequality ``sum_{i in C} x_i <= |C| - 1``.

    Parameters
    ----------
    sizes : int (n,)
        Item weights ``a_i`` of the knapsack row ``sum a_i x_i <= capacity``.
    capacity : int
    cover : int (r,)
        Item indices with ``sum_C a_i > capacity``.
    order : int (n - r,)
        The items outside the cover, in lifting order.

    Returns
    -------
    alpha : int (n,)
        Coefficients (1 on the cover).
    rhs : int
        ``|C| - 1``.

    Notes
    -----
    Validity: ``sum_C x <= |C| - 1`` holds for every binary ``x`` with
    ``a x <= capacity`` because ``C`` does not fit.  Lifting item ``j`` with
    ``alpha_j = rhs - max{alpha . x : x on the items so far, a x <= capacity - a_j}``
    keeps validity (if ``x_j = 1`` the others use at most ``capacity - a_j``)
    [1]_.  The maximum is computed exactly with integer profits by a
    minimum-weight dynamic programme ``W[p]`` (least weight reaching profit at
    least ``p``, ``p <= rhs + 1``), ``O(n rhs)``.  An item that cannot fit
    (``a_j > capacity``) is 0 in every integer point and gets ``alpha_j = rhs``.

    References
    ----------
    .. [1] Z. Gu, G. L. Nemhauser, M. W. P. Savelsbergh, "Lifted cover
       inequalities for 0-1 integer programs: computation", INFORMS Journal on
       Computing 10(4), 1998.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    cover = np.asarray(cover, dtype=np.int64)
    if sizes[cover].sum() <= capacity:
        raise ValueError("not a cover: its items fit")
    rhs = len(cover) - 1
    alpha = np.zeros(len(sizes), dtype=np.int64)
    alpha[cover] = 1
    big = np.iinfo(np.int64).max // 4
    w = np.full(rhs + 2, big, dtype=np.int64)
    w[0] = 0
    w[1:] = np.cumsum(np.sort(sizes[cover]))[:rhs + 1]
    for j in np.asarray(order, dtype=np.int64).tolist():
        room = capacity - int(sizes[j])
        if room < 0:
            alpha[j] = rhs
            continue
        aj = rhs - min(int(np.flatnonzero(w <= room)[-1]), rhs)
        alpha[j] = aj
        if aj > 0:
            shifted = np.concatenate([np.zeros(aj, dtype=np.int64), w[:-aj]]) if aj < len(w) else np.zeros_like(w)
            w = np.minimum(w, shifted + int(sizes[j]))
    return alpha, rhs


def minimal_cover(sizes: np.ndarray, capacity: int, items: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Drop items of a cover, lowest ``x`` first, while the rest still exceeds ``capacity``.

    Dropping an item never lowers the violation ``sum_C x - |C| + 1`` (it
    changes by ``1 - x_i >= 0``) and makes the lifting stronger.
    """
    keep = sorted(np.asarray(items).tolist(), key=lambda i: (x[i], -sizes[i]))
    total = int(sizes[keep].sum())
    out = []
    for i in keep:
        if total - int(sizes[i]) > capacity:
            total -= int(sizes[i])
        else:
            out.append(i)
    return np.array(sorted(out), dtype=np.int64)


def _cheapest_cover(sizes: np.ndarray, capacity: int, x: np.ndarray) -> np.ndarray | None:
    """The cover minimising ``sum_C (1 - x_i)`` (the classical separation problem), by a small HiGHS MILP."""
    import highspy

    from slimcaching.formulations.direct import new_highs

    n = len(sizes)
    h = new_highs()
    h.setOptionValue("threads", 1)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, 1
    lp.col_cost_ = np.maximum(1.0 - x, 0.0)
    lp.col_lower_, lp.col_upper_ = np.zeros(n), np.ones(n)
    lp.row_lower_, lp.row_upper_ = np.array([capacity + 1.0]), np.array([highspy.kHighsInf])
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.arange(n + 1, dtype=np.int32)
    lp.a_matrix_.index_ = np.zeros(n, dtype=np.int32)
    lp.a_matrix_.value_ = sizes.astype(float)
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = n, 1
    lp.integrality_ = [highspy.HighsVarType.kInteger] * n
    h.passModel(lp)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    chosen = np.flatnonzero(np.array(h.getSolution().col_value) > 0.5)
    return chosen if sizes[chosen].sum() > capacity else None


def cover_candidates(sizes: np.ndarray, capacity: int, x: np.ndarray) -> list[np.ndarray]:
    """Minimal covers to lift: the cheapest cover, and greedy ones.

    The greedy covers take every item at ``x = 1``, then the others by
    decreasing ``x`` (ties: larger, then smaller items first) or by
    ``x > 0`` then size, until the capacity is exceeded (the construction of
    Gu, Nemhauser and Savelsbergh, with the items at 1 kept in the cover
    instead of down-lifted).  Within a layer all items weigh the same, so
    these orders pick per-layer counts.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    ones = np.flatnonzero(x > 1 - 1e-9)
    rest = np.flatnonzero(x <= 1 - 1e-9).tolist()
    orders = [sorted(rest, key=lambda i: (-x[i], -sizes[i])), sorted(rest, key=lambda i: (-x[i], sizes[i])),
              sorted(rest, key=lambda i: (-int(x[i] > 1e-9), -sizes[i])),
              sorted(rest, key=lambda i: (-int(x[i] > 1e-9), sizes[i]))]
    out = []
    for order in orders:
        chosen, total = list(ones), int(sizes[ones].sum())
        for i in order:
            if total > capacity:
                break
            chosen.append(i)
            total += int(sizes[i])
        if total > capacity:
            out.append(minimal_cover(sizes, capacity, np.array(chosen), x))
    cheapest = _cheapest_cover(sizes, capacity, x)
    if cheapest is not None:
        out.append(minimal_cover(sizes, capacity, cheapest, x))
    return out


def separate_cover(sizes: np.ndarray, capacity: int, x: np.ndarray) -> tuple[np.ndarray, int, float] | None:
    """The most violated (by violation over the coefficient norm) lifted cover of one knapsack row at ``x``.

    Returns ``(alpha, rhs, violation)`` or ``None`` when no candidate of
    :func:`cover_candidates`, lifted by :func:`lift_cover` (items by
    decreasing ``x``, then decreasing size), is violated by more than
    :data:`VIOLATION`.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    x = np.asarray(x, dtype=float)
    best, best_score = None, 0.0
    for cover in cover_candidates(sizes, capacity, x):
        inside = np.zeros(len(sizes), dtype=bool)
        inside[cover] = True
        order = sorted(np.flatnonzero(~inside).tolist(), key=lambda i: (-x[i], -sizes[i]))
        alpha, rhs = lift_cover(sizes, capacity, cover, np.array(order, dtype=np.int64))
        viol = float(alpha @ x) - rhs
        score = viol / float(np.sqrt((alpha.astype(float) ** 2).sum()))
        if viol > VIOLATION and score > best_score:
            best, best_score = (alpha, rhs, viol), score
    return best


def _add_row(h, cols: np.ndarray, vals: np.ndarray, hi: float) -> None:
    import highspy

    h.addRow(-highspy.kHighsInf, float(hi), len(cols), np.asarray(cols, dtype=np.int32), np.asarray(vals, float))


def cover_rounds(model, rounds: int) -> tuple[list[tuple[np.ndarray, np.ndarray, int]], list[dict]]:
    """Rounds of cover separation on the LP of a :class:`~slimcaching.formulations.arrays.LevelArrays`.

    Returns the cuts ``(x columns, coefficients, rhs)`` and one record per LP
    solve: ``round`` (0 = the tightened LP), ``cuts``, ``bound`` (seconds;
    HiGHS's LP optimum), ``safe_bound`` (:func:`~slimcaching.formulations.direct.safe_lp_bound`
    of the model with the cuts), ``max_violation`` and ``cpu_s``.
    """
    from slimcaching.formulations.arrays import SparseRows
    from slimcaching.formulations.assignment import support
    from slimcaching.formulations.direct import run, safe_lp_bound, to_highs

    inst = model.instance
    el = support(inst).elements[model.x_el]
    sizes = inst.expert_size[el[:, 1]].astype(np.int64)
    h = to_highs(model, integer=False, threads=1)
    cuts: list[tuple[np.ndarray, np.ndarray, int]] = []
    history = []
    c0 = time.process_time()
    viol = 0.0
    for rnd in range(rounds + 1):
        run(h)
        sol = h.getSolution()
        with_cuts = _with_rows(model, cuts, SparseRows)
        history.append({"round": rnd, "cuts": len(cuts), "bound": h.getInfo().objective_function_value / model.scale,
                        "safe_bound": safe_lp_bound(with_cuts, np.array(sol.row_dual)), "max_violation": viol,
                        "cpu_s": time.process_time() - c0})
        if rnd == rounds:
            break
        x = np.array(sol.col_value)[:model.n_x]
        viol, found = 0.0, 0
        for n in model.capacity_node.tolist():
            mine = np.flatnonzero(el[:, 0] == n)
            cut = separate_cover(sizes[mine], int(model.capacity[n]), x[mine])
            if cut is None:
                continue
            alpha, rhs, v = cut
            nz = np.flatnonzero(alpha)
            cuts.append((mine[nz], alpha[nz], rhs))
            _add_row(h, mine[nz], alpha[nz], rhs)
            viol, found = max(viol, v), found + 1
        if not found:
            break
    return cuts, history


def _with_rows(model, cuts, SparseRows):
    """A copy of ``model`` with the cut rows appended (for the safe bound from the duals)."""
    import dataclasses

    if not cuts:
        return model
    rows = [model.A.row] + [np.full(len(c), model.n_rows + i) for i, (c, _, _) in enumerate(cuts)]
    cols = [model.A.col] + [c for c, _, _ in cuts]
    vals = [model.A.val] + [a.astype(float) for _, a, _ in cuts]
    A = SparseRows(np.concatenate(rows), np.concatenate(cols), np.concatenate(vals),
                   (model.n_rows + len(cuts), model.n_cols))
    return dataclasses.replace(model, A=A, row_lo=np.concatenate([model.row_lo, np.full(len(cuts), -np.inf)]),
                               row_hi=np.concatenate([model.row_hi, [float(r) for _, _, r in cuts]]))


def highs_bound(model, *, cuts=(), count_form: bool = False, node_limit: int = 1, seed: int = 0,
                time_limit: float | None = None) -> dict:
    """HiGHS on the MILP of ``model`` with ``mip_max_nodes = node_limit``: its dual bound and incumbent (seconds).

    ``cuts`` are added as rows; ``count_form`` adds an integer column
    ``k[n,l] = sum_e x[n,l,e]`` per (node, layer) and writes each capacity row
    as ``sum_l s_l k[n,l] <= Q'_n`` (the same integer points; HiGHS then
    sees the count knapsack of every node and can cut it).
    """
    import highspy

    from slimcaching.formulations.assignment import support
    from slimcaching.formulations.direct import run, to_highs

    h = to_highs(model, integer=True, threads=1, node_limit=node_limit, time_limit=time_limit, seed=seed)
    for cols, alpha, rhs in cuts:
        _add_row(h, cols, alpha, rhs)
    if count_form:
        inst = model.instance
        el = support(inst).elements[model.x_el]
        for n, row in zip(model.capacity_node.tolist(), model.capacity_row.tolist()):
            for layer in np.unique(el[el[:, 0] == n, 1]).tolist():
                mine = np.flatnonzero((el[:, 0] == n) & (el[:, 1] == layer))
                h.addCol(0.0, 0.0, float(len(mine)), 0, np.array([], dtype=np.int32), np.array([], dtype=float))
                k = h.getNumCol() - 1
                h.changeColIntegrality(k, highspy.HighsVarType.kInteger)
                h.addRow(0.0, 0.0, len(mine) + 1, np.append(mine, k).astype(np.int32),
                         np.append(np.ones(len(mine)), -1.0))
                for c in mine.tolist():
                    h.changeCoeff(row, c, 0.0)
                h.changeCoeff(row, k, float(inst.expert_size[layer]))
    c0, t0 = time.process_time(), time.perf_counter()
    run(h)
    info = h.getInfo()
    return {"bound": info.mip_dual_bound / model.scale,
            "incumbent": info.objective_function_value / model.scale if info.primal_solution_status >= 1 else None,
            "nodes": int(info.mip_node_count), "cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    from slimcaching.errors import InputError
    from slimcaching.formulations.arrays import build_level_arrays
    from slimcaching.instances.io import read_instance

    ap = argparse.ArgumentParser(prog="python -m benchmarks.perf_covers", description=__doc__.split("\n")[0])
    ap.add_argument("--files", nargs="+", default=DEFAULT_FILES)
    ap.add_argument("--rounds", type=int, default=15, help="separation rounds on the LP (default 15)")
    ap.add_argument("--node-limit", type=int, default=1, help="mip_max_nodes of the three HiGHS runs (default 1)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.rounds < 0 or args.node_limit < 1:
        ap.error("--rounds must be >= 0 and --node-limit >= 1")
    rows = []
    for f in args.files:
        try:
            inst = read_instance(f)
        except InputError as exc:  # one line, exit 2; the rows printed so far stay printed
            print(exc.one_line(), file=sys.stderr)
            return 2
        model = build_level_arrays(inst)
        cuts, history = cover_rounds(model, args.rounds)
        lp = history[0]["bound"]
        for rec in history:
            rows.append({"instance": inst.name, "stage": f"LP + covers, round {rec['round']}", **rec,
                         "gain_pct": 100 * (rec["bound"] / lp - 1)})
            print(json.dumps(rows[-1]), flush=True)
        for label, kw in (("HiGHS", {}), ("HiGHS + covers", {"cuts": cuts}), ("HiGHS, count form", {"count_form": True})):
            rec = highs_bound(model, node_limit=args.node_limit, seed=args.seed, **kw)
            rows.append({"instance": inst.name, "stage": f"{label}, {args.node_limit} node(s)", **rec,
                         "gain_pct": 100 * (rec["bound"] / lp - 1)})
            print(json.dumps(rows[-1]), flush=True)
    print(covers_table(rows))
    return 0


def covers_table(rows: list[dict]) -> str:
    """The rows of :func:`main` as markdown."""
    lines = [f"### Lifted covers on the level model (machine: {machine()})", "",
             "| instance | stage | cuts / nodes | bound | vs tightened LP | CPU |", "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        count = r["cuts"] if "cuts" in r else r["nodes"]
        lines.append(f"| {r['instance']} | {r['stage']} | {count} | {r['bound']:.6f} | {r['gain_pct']:+.3f} % "
                     f"| {r['cpu_s']:.1f} s |")
    return "\n".join(lines)

if __name__ == "__main__":
    raise SystemExit(main())
