"""MoE² edge LLM expert selection (``docs/model.md`` section 2): data model, validation, I/O, evaluator.

``M`` heterogeneous LLM experts run on edge servers; expert ``i`` costs energy
``e_i`` (J) and latency ``d_i`` (s) per request.  Each application category
``k`` (weight ``lambda_k > 0``, latency budget ``D_k``) selects a subset
``S_k`` of experts whose outputs a gating network mixes.  A selection
``(S_1, ..., S_C)`` is *feasible* when

* latency, per category: ``S_k`` is empty, or ``max_{i in S_k} d_i + a <= D_k``
  where ``a`` is the aggregation delay.  The gate runs for every non-empty
  selection, so ``a`` applies to a single expert too; the empty selection
  serves nothing and has latency ``0`` (always within budget);
* energy, coupling all categories: ``sum_k lambda_k sum_{i in S_k} e_i <= E``.

The objective, maximised, is ``sum_k lambda_k q_k(S_k)`` with ``q_k`` a
monotone non-decreasing set function given as a table over all ``2**M``
subsets (``q_k(empty)`` is part of the table).  The empty selection is always
feasible, so every instance has an optimum.

In memory, subsets are bit masks (bit ``i`` set <=> expert ``i`` selected) and
the quality tables are one ``float64 (C, 2**M)`` array indexed by mask.  In
files (``"format": "moe2-instance/1"``, see ``docs/moe2.md``) a subset is the
string of its sorted expert ids joined by commas (``""`` for the empty set,
``"0,2,5"``).

Budgets are compared with the tolerance of :func:`within`, the one place
feasibility is decided, so every algorithm, the MILP and the evaluator agree.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from ..fileio import content_hash
from ..validation import Collector, as_float, brief, is_num, readonly

__all__ = [
    "Moe2Instance", "Moe2Evaluation", "MOE2_FORMAT", "SELECTION_FORMAT", "MAX_EXPERTS", "MONOTONE_TOL",
    "within", "subset_key", "parse_subset_key", "mask_of", "ids_of", "subset_sums", "subset_max",
    "moe2_from_dict", "read_moe2_instance", "write_moe2_instance",
    "selection_from_dict", "read_selection", "selection_to_dict", "normalise_selection",
    "evaluate_moe2",
]

MOE2_FORMAT = "moe2-instance/1"
SELECTION_FORMAT = "moe2-selection/1"
MAX_EXPERTS = 16          # quality tables hold 2**M entries per category
MONOTONE_TOL = 1e-12      # q(S | {i}) >= q(S) - MONOTONE_TOL
FEAS_RTOL = 1e-9          # budgets: value <= budget + FEAS_RTOL * max(1, |budget|)


def within(value: float | np.ndarray, budget: float) -> bool | np.ndarray:
    """``value <= budget`` up to a relative tolerance of ``1e-9`` (the one feasibility test)."""
    return value <= budget + FEAS_RTOL * max(1.0, abs(float(budget)))


# ------------------------------------------------------------------ subsets as bit masks
def subset_key(mask: int) -> str:
    """File key of a subset: sorted expert ids joined by commas (``""`` for the empty set)."""
    return ",".join(str(i) for i in ids_of(mask))


def ids_of(mask: int) -> list[int]:
    """Sorted expert ids of a bit mask."""
    mask = int(mask)
    out, i = [], 0
    while mask:
        if mask & 1:
            out.append(i)
        mask >>= 1
        i += 1
    return out


def mask_of(ids: Sequence[int]) -> int:
    m = 0
    for i in ids:
        m |= 1 << int(i)
    return m


def parse_subset_key(key: str, M: int) -> int | None:
    """Mask of a canonical key, or ``None`` when ``key`` is not canonical for ``M`` experts."""
    if key == "":
        return 0
    prev, mask = -1, 0
    for part in key.split(","):
        # ASCII digits only: str.isdigit() also accepts '١' (Arabic-Indic one) and '²', which
        # int() reads as 1 or rejects; at most two digits, as M <= 16
        if not (part.isascii() and part.isdigit()) or len(part) > 2 or (len(part) > 1 and part[0] == "0"):
            return None
        i = int(part)
        if i <= prev or i >= M:
            return None
        prev = i
        mask |= 1 << i
    return mask


def subset_sums(values: np.ndarray) -> np.ndarray:
    """``float64 (2**M,)``: ``out[mask] = sum_{i in mask} values[i]`` (vectorised doubling)."""
    values = np.asarray(values, dtype=np.float64)
    out = np.zeros(1 << len(values))
    for i, v in enumerate(values):
        out[1 << i: 2 << i] = out[: 1 << i] + v
    return out


def subset_max(values: np.ndarray, empty: float = 0.0) -> np.ndarray:
    """``float64 (2**M,)``: ``out[mask] = max_{i in mask} values[i]`` (``empty`` for mask 0)."""
    values = np.asarray(values, dtype=np.float64)
    out = np.full(1 << len(values), float(empty))
    for i, v in enumerate(values):
        out[1 << i: 2 << i] = np.maximum(out[: 1 << i], v) if i else v
    out[0] = empty
    return out


# ------------------------------------------------------------------ data model
@dataclass(frozen=True, eq=False)
class Moe2Instance:
    """A MoE² expert-selection instance (``docs/model.md`` section 2).

    Attributes
    ----------
    name : str
    server_names, server_kinds : tuple of str (N,)
    server_power : float64 (N,)     power draw under load, W (informational).
    expert_names : tuple of str (M,)
    expert_server : int64 (M,)      index of the hosting server.
    energy : float64 (M,)           ``e_i``, J per request.
    latency : float64 (M,)          ``d_i``, s per request.
    category_names : tuple of str (C,)
    weight : float64 (C,)           ``lambda_k > 0``.
    latency_budget : float64 (C,)   ``D_k``, s.
    quality : float64 (C, 2**M)     ``q_k(S)`` indexed by bit mask, monotone.
    energy_budget : float           ``E``, J.
    aggregation_delay : float       ``a``, s, added to every non-empty selection.
    metadata : dict                 free-form provenance (generator parameters).
    """

    name: str
    server_names: tuple[str, ...]
    server_kinds: tuple[str, ...]
    server_power: np.ndarray
    expert_names: tuple[str, ...]
    expert_server: np.ndarray
    energy: np.ndarray
    latency: np.ndarray
    category_names: tuple[str, ...]
    weight: np.ndarray
    latency_budget: np.ndarray
    quality: np.ndarray
    energy_budget: float
    aggregation_delay: float
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for n in ("server_names", "server_kinds", "expert_names", "category_names"):
            object.__setattr__(self, n, tuple(getattr(self, n)))
        object.__setattr__(self, "expert_server", readonly(self.expert_server, np.int64))
        for n in ("server_power", "energy", "latency", "weight", "latency_budget"):
            object.__setattr__(self, n, readonly(getattr(self, n), np.float64))
        q = readonly(self.quality, np.float64)
        if q.shape != (len(self.category_names), 1 << len(self.expert_names)):
            raise ValueError(f"quality must have shape (C, 2**M) = ({len(self.category_names)}, "
                             f"{1 << len(self.expert_names)}), got {q.shape}")
        object.__setattr__(self, "quality", q)
        object.__setattr__(self, "energy_budget", float(self.energy_budget))
        object.__setattr__(self, "aggregation_delay", float(self.aggregation_delay))

    @property
    def M(self) -> int:
        return len(self.expert_names)

    @property
    def C(self) -> int:
        return len(self.category_names)

    def allowed_masks(self) -> np.ndarray:
        """``int64 (C,)``: experts that fit category ``k``'s latency budget, ``d_i + a <= D_k``.

        A subset meets the latency budget iff it is a subset of this mask
        (the empty set always does).
        """
        out = np.zeros(self.C, dtype=np.int64)
        for k in range(self.C):
            ok = within(self.latency + self.aggregation_delay, float(self.latency_budget[k]))
            out[k] = mask_of(np.flatnonzero(ok))
        return out

    def subset_energy(self) -> np.ndarray:
        """``float64 (2**M,)``: ``sum_{i in S} e_i`` per mask (cached)."""
        v = self.__dict__.get("_subset_energy")
        if v is None:
            v = readonly(subset_sums(self.energy), np.float64)
            object.__setattr__(self, "_subset_energy", v)
        return v

    def to_dict(self) -> dict[str, Any]:
        """The ``moe2-instance/1`` JSON object (exact float round trip)."""
        keys = [subset_key(m) for m in range(1 << self.M)]
        d: dict[str, Any] = {
            "format": MOE2_FORMAT,
            "name": self.name,
            "energy_budget": self.energy_budget,
            "aggregation_delay": self.aggregation_delay,
            "servers": [{"name": n, "kind": k, "power_w": float(p)}
                        for n, k, p in zip(self.server_names, self.server_kinds, self.server_power)],
            "experts": [{"name": n, "server": self.server_names[s], "energy": float(e), "latency": float(t)}
                        for n, s, e, t in zip(self.expert_names, self.expert_server, self.energy, self.latency)],
            "categories": [{"name": n, "weight": float(w), "latency_budget": float(b),
                            "quality": dict(zip(keys, (float(x) for x in self.quality[k])))}
                           for k, (n, w, b) in enumerate(zip(self.category_names, self.weight,
                                                            self.latency_budget))],
        }
        if self.metadata:
            d["metadata"] = self.metadata
        return d

    def content_hash(self) -> str:
        """SHA-256 (hex, first 16 chars) of the problem data, independent of ``name`` and ``metadata``."""
        h = self.__dict__.get("_hash")
        if h is None:
            h = content_hash(self.to_dict())
            object.__setattr__(self, "_hash", h)
        return h

    def __repr__(self) -> str:
        return f"Moe2Instance(name={self.name!r}, M={self.M}, C={self.C}, E={self.energy_budget:.6g})"


# ------------------------------------------------------------------ validation
def _names(c: Collector, items: list, path: str) -> list[str | None]:
    out: list[str | None] = []
    seen: set[str] = set()
    for j, it in enumerate(items):
        if not isinstance(it, dict):
            c.add(f"{path}[{j}]", f"must be an object, got {type(it).__name__}")
            out.append(None)
            continue
        n = c.field(it, "name", f"{path}[{j}]", str, "a string")
        if n is not None:
            if n in seen:
                c.add(f"{path}[{j}].name", f"duplicate name {n!r}")
            seen.add(n)
        out.append(n)
    return out


def _quality_table(c: Collector, q: Any, path: str, M: int) -> np.ndarray | None:
    """Parse one category's table: every subset present once, canonical keys, finite values, monotone."""
    if not isinstance(q, dict):
        c.add(path, f"must be an object mapping subset keys to numbers, got {type(q).__name__}")
        return None
    n = 1 << M
    table = np.full(n, np.nan)
    ok = True
    for key, v in q.items():
        mask = parse_subset_key(key, M)
        if mask is None:
            c.add(f"{path}[{key!r}]", f"key must list distinct expert ids in increasing order separated by "
                                      f"commas, each in 0..{M - 1} (\"\" for the empty set)")
            ok = False
            continue
        if not is_num(v) or not math.isfinite(as_float(v)):
            c.add(f"{path}[{key!r}]", f"quality must be a finite number, got {brief(v)}")
            ok = False
            continue
        table[mask] = float(v)
    missing = np.flatnonzero(np.isnan(table))
    if ok and len(missing):
        c.add(path, f"quality table must have an entry for each of the {n} subsets; "
                    f"{len(missing)} missing, e.g. {subset_key(int(missing[0]))!r}")
        return None
    if not ok:
        return None
    # monotone: q(S | {i}) >= q(S) - tol for every S and i not in S
    masks = np.arange(n)
    first = None
    count = 0
    for i in range(M):
        without = masks[(masks >> i) & 1 == 0]
        bad = without[table[without | (1 << i)] < table[without] - MONOTONE_TOL]
        count += len(bad)
        if len(bad) and first is None:
            first = (int(bad[0]), int(bad[0]) | (1 << i), i)
    if first is not None:
        s, t, i = first
        more = f" ({count - 1} more such pair{'s' if count > 2 else ''})" if count > 1 else ""
        c.add(path, f"quality must be monotone non-decreasing: q({subset_key(t)!r}) = {float(table[t])!r} < "
                    f"q({subset_key(s)!r}) = {float(table[s])!r} although adding expert {i} must not lower quality{more}")
        return None
    return table


def _check_finite_sums(c: Collector, weights: list[float], energy: list[float], latency: list[float],
                       agg: float) -> None:
    """Finite inputs must give finite results: the total energy and every selection's latency."""
    with np.errstate(over="ignore"):
        total = float(np.sum(weights)) * float(np.sum(energy))
        slowest = max(latency, default=0.0) + agg
    if not math.isfinite(total):
        c.add("$.experts", "energies summed over all experts and categories overflow a float: use a larger unit")
    if not math.isfinite(slowest):
        c.add("$.aggregation_delay", "latency plus aggregation delay overflows a float: use a larger unit")


def moe2_from_dict(d: Any, file: str = "<input>") -> Moe2Instance:
    """Validate a decoded ``moe2-instance/1`` object and build the instance.

    Raises
    ------
    InputError
        naming ``file``, the JSON path and the rule for every violation found.
    """
    c = Collector()
    if not isinstance(d, dict):
        raise InputError(file, ("$", f"must be a JSON object, got {type(d).__name__}"))
    fmt = d.get("format")
    if fmt != MOE2_FORMAT:
        raise InputError(file, ("$.format", f"must be {MOE2_FORMAT!r}, got {fmt!r}"))
    name = c.field(d, "name", "$", str, "a string")
    energy_budget = c.number(d, "energy_budget", "$", positive=False)
    agg = c.number(d, "aggregation_delay", "$", positive=False)
    servers = c.field(d, "servers", "$", list, "a list of servers")
    experts = c.field(d, "experts", "$", list, "a list of experts")
    cats = c.field(d, "categories", "$", list, "a list of categories")

    server_names: list[str | None] = []
    kinds: list[str] = []
    power: list[float] = []
    if servers is not None:
        if not servers:
            c.add("$.servers", "must list at least one server")
        server_names = _names(c, servers, "$.servers")
        for j, s in enumerate(servers):
            if isinstance(s, dict):
                kind = s.get("kind", "")
                if not isinstance(kind, str):
                    c.add(f"$.servers[{j}].kind", f"must be a string, got {type(kind).__name__}")
                kinds.append(kind if isinstance(kind, str) else "")
                p = c.number(s, "power_w", f"$.servers[{j}]", positive=True)
                power.append(p if p is not None else 0.0)
    M = 0
    e_list: list[float] = []
    d_list: list[float] = []
    host: list[int] = []
    expert_names: list[str | None] = []
    if experts is not None:
        M = len(experts)
        if M == 0:
            c.add("$.experts", "must list at least one expert")
        if M > MAX_EXPERTS:
            c.add("$.experts", f"at most {MAX_EXPERTS} experts (quality tables have 2**M entries), got {M}")
        expert_names = _names(c, experts, "$.experts")
        index = {n: j for j, n in enumerate(server_names) if n is not None}
        for j, x in enumerate(experts):
            if not isinstance(x, dict):
                continue
            p = f"$.experts[{j}]"
            s = c.field(x, "server", p, str, "a server name")
            if s is not None and servers is not None:
                if s not in index:
                    c.add(f"{p}.server", f"unknown server {s!r}; servers: {', '.join(map(str, index))}")
                host.append(index.get(s, -1))
            else:
                host.append(-1)
            e_list.append(c.number(x, "energy", p, positive=True) or 0.0)
            d_list.append(c.number(x, "latency", p, positive=True) or 0.0)
    cat_names: list[str | None] = []
    weights: list[float] = []
    budgets: list[float] = []
    tables: list[np.ndarray | None] = []
    if cats is not None:
        if not cats:
            c.add("$.categories", "must list at least one category")
        cat_names = _names(c, cats, "$.categories")
        for k, cat in enumerate(cats):
            if not isinstance(cat, dict):
                continue
            p = f"$.categories[{k}]"
            weights.append(c.number(cat, "weight", p, positive=True) or 0.0)
            budgets.append(c.number(cat, "latency_budget", p, positive=True) or 0.0)
            if "quality" not in cat:
                c.add(f"{p}.quality", "missing required field 'quality'")
                tables.append(None)
            elif experts is not None and 0 < M <= MAX_EXPERTS:
                tables.append(_quality_table(c, cat["quality"], f"{p}.quality", M))
    if not c.problems:
        _check_finite_sums(c, weights, e_list, d_list, agg)
    if c.problems:
        raise InputError(file, c.problems)
    meta = d.get("metadata", {})
    return Moe2Instance(
        name=name, server_names=server_names, server_kinds=kinds, server_power=power,
        expert_names=expert_names, expert_server=host, energy=e_list, latency=d_list,
        category_names=cat_names, weight=weights, latency_budget=budgets,
        quality=np.vstack(tables), energy_budget=energy_budget, aggregation_delay=agg,
        metadata=meta if isinstance(meta, dict) else {},
    )


def read_moe2_instance(path: str | os.PathLike) -> Moe2Instance:
    """Read and validate a ``moe2-instance/1`` file (``.json`` or ``.json.gz``)."""
    from ..fileio import read_json

    return moe2_from_dict(read_json(path), file=str(path))


def write_moe2_instance(instance: Moe2Instance, path: str | os.PathLike) -> None:
    """Write ``instance`` as ``moe2-instance/1`` (gzip when the name ends in ``.gz``).

    Raises
    ------
    InputError
        ``instance`` breaks a rule of the reader (it is checked first, so no
        file is written that :func:`read_moe2_instance` would reject).
    """
    from ..fileio import write_json

    doc = instance.to_dict()
    moe2_from_dict(doc, file=os.fspath(path))
    write_json(doc, path, indent=None)


# ------------------------------------------------------------------ selections
def normalise_selection(instance: Moe2Instance, selection: Any, file: str = "<selection>") -> np.ndarray:
    """``int64 (C,)`` masks from masks, or from a list of id lists (one per category).

    Raises
    ------
    InputError
        when the shape or an id is wrong.
    """
    if isinstance(selection, np.ndarray) and selection.dtype.kind in "iu":
        if selection.shape != (instance.C,):
            raise InputError(file, ("$.selection", f"must hold {instance.C} masks, got shape {selection.shape}"))
        if np.any(selection < 0) or np.any(selection >= (1 << instance.M)):
            raise InputError(file, ("$.selection", f"masks must be in 0..{(1 << instance.M) - 1}"))
        return selection.astype(np.int64)
    sel = list(selection)
    if len(sel) != instance.C:
        raise InputError(file, ("$.selection", f"must hold one list per category ({instance.C}), got {len(sel)}"))
    out = np.zeros(instance.C, dtype=np.int64)
    for k, ids in enumerate(sel):
        out[k] = _ids_to_mask(instance, ids, f"$.selection[{k}]", file)
    return out


def _ids_to_mask(instance: Moe2Instance, ids: Any, path: str, file: str) -> int:
    if not isinstance(ids, (list, tuple, np.ndarray)):
        raise InputError(file, (path, f"must be a list of expert ids, got {type(ids).__name__}"))
    m = 0
    for j, i in enumerate(ids):
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
            raise InputError(file, (f"{path}[{j}]", f"expert id must be an integer, got {i!r}"))
        if not 0 <= int(i) < instance.M:
            raise InputError(file, (f"{path}[{j}]", f"expert id must be in 0..{instance.M - 1}, got {int(i)}"))
        if m >> int(i) & 1:
            raise InputError(file, (f"{path}[{j}]", f"duplicate expert id {int(i)}"))
        m |= 1 << int(i)
    return m


def selection_from_dict(d: Any, instance: Moe2Instance, file: str = "<selection>") -> np.ndarray:
    """Validate a ``moe2-selection/1`` object against ``instance``; return ``int64 (C,)`` masks.

    ``selection`` maps every category name to a list of expert ids (``[]`` for none).
    """
    if not isinstance(d, dict):
        raise InputError(file, ("$", f"must be a JSON object, got {type(d).__name__}"))
    if d.get("format") != SELECTION_FORMAT:
        raise InputError(file, ("$.format", f"must be {SELECTION_FORMAT!r}, got {d.get('format')!r}"))
    sel = d.get("selection")
    if not isinstance(sel, dict):
        raise InputError(file, ("$.selection", "must be an object mapping category names to lists of expert ids"))
    names = set(instance.category_names)
    for n in sel:
        if n not in names:
            raise InputError(file, (f"$.selection[{n!r}]", f"unknown category {n!r}; categories: "
                                                           f"{', '.join(instance.category_names)}"))
    out = np.zeros(instance.C, dtype=np.int64)
    for k, n in enumerate(instance.category_names):
        if n not in sel:
            raise InputError(file, (f"$.selection[{n!r}]", f"missing category {n!r} (use [] to select no expert)"))
        out[k] = _ids_to_mask(instance, sel[n], f"$.selection[{n!r}]", file)
    return out


def read_selection(path: str | os.PathLike, instance: Moe2Instance) -> np.ndarray:
    """Read a ``moe2-selection/1`` file; return ``int64 (C,)`` masks."""
    from ..fileio import read_json

    return selection_from_dict(read_json(path), instance, file=str(path))


def selection_to_dict(instance: Moe2Instance, masks: Sequence[int], **fields: Any) -> dict[str, Any]:
    """The ``moe2-selection/1`` object for ``masks``; ``fields`` are written after ``selection``."""
    d: dict[str, Any] = {"format": SELECTION_FORMAT, "instance": instance.name,
                         "selection": {n: ids_of(int(m)) for n, m in zip(instance.category_names, masks)}}
    d.update(fields)
    return d


# ------------------------------------------------------------------ the evaluator
@dataclass
class Moe2Evaluation:
    """Objective and feasibility of a selection, from the definition.

    Attributes
    ----------
    objective : float            ``sum_k lambda_k q_k(S_k)``.
    energy : float               ``sum_k lambda_k sum_{i in S_k} e_i``.
    feasible : bool              both budgets hold (tolerance of :func:`within`).
    energy_ok : bool
    latency : float64 (C,)       ``max_{i in S_k} d_i + a`` (``0`` for the empty set).
    latency_ok : bool (C,)
    quality : float64 (C,)       ``q_k(S_k)``.
    """

    objective: float
    energy: float
    feasible: bool
    energy_ok: bool
    latency: np.ndarray
    latency_ok: np.ndarray
    quality: np.ndarray

    def to_dict(self, instance: Moe2Instance, masks: Sequence[int]) -> dict[str, Any]:
        return {
            "objective": self.objective, "energy": self.energy, "energy_budget": instance.energy_budget,
            "feasible": self.feasible, "energy_ok": self.energy_ok,
            "categories": {n: {"selection": ids_of(int(m)), "quality": float(q), "latency": float(t),
                               "latency_budget": float(b), "latency_ok": bool(ok)}
                           for n, m, q, t, b, ok in zip(instance.category_names, masks, self.quality,
                                                        self.latency, instance.latency_budget, self.latency_ok)},
        }


def evaluate_moe2(instance: Moe2Instance, selection: Any) -> Moe2Evaluation:
    """Evaluate a selection (``int64 (C,)`` masks or one id list per category): the family's one evaluator."""
    masks = normalise_selection(instance, selection)
    k = np.arange(instance.C)
    quality = instance.quality[k, masks]
    energy = float(np.dot(instance.weight, instance.subset_energy()[masks]))
    lat_max = np.array([max((instance.latency[i] for i in ids_of(int(m))), default=0.0) for m in masks])
    latency = np.where(masks > 0, lat_max + instance.aggregation_delay, 0.0)
    lat_ok = np.array([bool(within(float(t), float(b))) for t, b in zip(latency, instance.latency_budget)])
    e_ok = bool(within(energy, instance.energy_budget))
    return Moe2Evaluation(objective=float(np.dot(instance.weight, quality)), energy=energy,
                          feasible=bool(e_ok and lat_ok.all()), energy_ok=e_ok, latency=latency,
                          latency_ok=lat_ok, quality=quality)
