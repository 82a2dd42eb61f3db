"""Option checks and guarantee bookkeeping shared by ``polish``, ``cyclic`` and ``best``."""
from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import InputError
from ...instances.model import Instance, Placement
from ...objective import IncrementalEvaluator
from ...result import Guarantee
from .moves import MOVE_KINDS

def _deadline(time_limit: float | None, t0: float) -> float:
    if time_limit is None:
        return np.inf
    if not (isinstance(time_limit, (int, float)) and time_limit >= 0):
        raise InputError("--time-limit", ("", f"time limit must be a number >= 0 seconds, got {time_limit!r}"))
    return t0 + float(time_limit)


def _check_start(instance: Instance, start: Placement | None) -> Placement | None:
    """``start`` must be a feasible placement of ``instance`` (shape, valid experts, capacity)."""
    if start is None:
        return None
    x = start.x if isinstance(start, Placement) else None
    shape = (instance.N, instance.L, instance.max_experts)
    if x is None or x.shape != shape:
        got = getattr(x, "shape", type(start).__name__)
        raise InputError("start", ("", f"start must be a Placement of shape {shape}, got {got}"))
    if np.any(x & ~instance.valid_mask()[None, :, :]):
        n, l, e = np.argwhere(x & ~instance.valid_mask()[None, :, :])[0]
        raise InputError("start", (f"$.cache.{instance.node_names[n]}",
                                   f"layer {l} has {instance.experts[l]} experts, expert {e} does not exist"))
    used = start.storage_used(instance)
    over = np.nonzero(used > instance.capacity)[0]
    if len(over):
        n = int(over[0])
        raise InputError("start", (f"$.cache.{instance.node_names[n]}",
                                   f"start uses {used[n]} > capacity {instance.capacity[n]} of node "
                                   f"{instance.node_names[n]!r}"))
    return start


def _check_tol(tol: float | None, ev: IncrementalEvaluator) -> float:
    if tol is None:
        return 1e-12 * max(ev.empty_latency, 1e-300)
    if not (isinstance(tol, (int, float)) and tol >= 0):
        raise InputError("--param", ("tol", f"tol must be a number >= 0, got {tol!r}"))
    return float(tol)


def _check_moves(moves: Any) -> tuple[str, ...]:
    if isinstance(moves, str):
        moves = [m.strip() for m in moves.split(",") if m.strip()]
    moves = tuple(moves)
    bad = [m for m in moves if m not in MOVE_KINDS]
    if bad or not moves:
        raise InputError("--param", ("moves", f"moves must be a non-empty subset of {', '.join(MOVE_KINDS)}; "
                                              f"got {', '.join(map(str, bad)) or 'nothing'}"))
    return tuple(m for m in MOVE_KINDS if m in moves)


def _check_count(name: str, v: Any, low: int) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
        raise InputError("--param", (name, f"{name} must be an integer >= {low}, got {v!r}"))
    return int(v)


_SINGLE_NODE_KEYS = ("layer_solver", "max_enumerate", "eps")


def _single_node_kwargs(params: dict) -> dict:
    return {k: params[k] for k in _SINGLE_NODE_KEYS if params.get(k) is not None}


def _applicable(gs: tuple[Guarantee, ...], instance: Instance, params: dict) -> str | None:
    """Text of the guarantees whose regime holds for this run, or ``None``."""
    return "; ".join(g.text() for g in gs if g.applies(instance, params)) or None


def _inherit(g: Guarantee, via: str) -> Guarantee:
    """``g`` for a method whose ``R`` is at least ``successive``'s (when it starts from it)."""
    return Guarantee(ratio=g.ratio, regime=g.regime + f" (inherited: R({via}) >= R(successive))",
                     reference=g.reference, status=g.status,
                     applies=lambda inst, p: p.get("start", "successive") == "successive" and g.applies(inst, p))
