"""MoE² edge LLM expert selection (``docs/model.md`` section 2): data model, validation, I/O, evaluator.

``M`` heterogeneous LLM experts run on edge servers; expert ``i`` costs energy
``e_i`` (J) and latency ``d_i`` (s) per request.  Each application category
``k`` (weight ``lambda_k > 0``, latency budget ``D_k``) selects a pool
``S_k`` of experts whose outputs a gating network mixes.  A selection
``(S_1, ..., S_C)`` is *feasible* when

* latency, per category: ``S_k`` is empty, or ``max_{i in S_k} d_i + a <= D_k``
  where ``a`` is the aggregation delay.  The gate runs for every non-empty
  selection, so ``a`` applies to a single expert too; the empty selection
  serves nothing and has latency ``0`` (always within budget);
* energy, coupling all categories: ``sum_k lambda_k eps_k(S_k) <= E``, where the
  per-request energy ``eps_k`` is charged by the instance's *accounting*:
  ``"pool"`` (default) ``eps_k(S) = sum_{i in S} e_i``, every pool member
  runs; ``"per-query"`` ``eps_k(S) = sum_i u_{k,i}(S) e_i`` with ``u_{k,i}(S)`` the
  share of category ``k``'s validation queries on which expert ``i`` runs
  (a per-query top-k gate runs only part of the pool).

The objective, maximised, is ``sum_k lambda_k q_k(S_k)``, with ``q_k`` given by a
quality model (:mod:`slimcaching.moe2.quality`, :mod:`slimcaching.moe2.gating`):
a table over all ``2**M`` subsets, a noisy-OR model, the mixture of a learned
gate, or a Python callable.  The empty selection is always feasible, so every
instance has an optimum.

In memory, subsets are bit masks (bit ``i`` set <=> expert ``i`` selected,
:mod:`slimcaching.moe2.bits`).  In files (``docs/moe2.md``) a table instance
is ``"format": "moe2-instance/1"`` (a subset is the string of its sorted
expert ids joined by commas, ``""`` for the empty set, ``"0,2,5"``); an
instance with a quality model or per-query accounting is
``"format": "moe2-instance/2"``.

Budgets are compared with the tolerance of :func:`within`, the one place
feasibility is decided, so every algorithm, the MILP and the evaluator agree.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from ..validation import Collector, as_float, brief, is_num, readonly
from .bits import (MAX_MASK_BITS, bit_matrix, ids_of, mask_of, mask_sums, parse_subset_key, subset_key, subset_max,
                   subset_sums)
from .gating import GatedMixtureQuality, gated_from_dict
from .quality import (MONOTONE_TOL, NoisyOrQuality, QualityModel, TableQuality, noisy_or_from_dict,
                      table_monotone_violations)

__all__ = [
    "Moe2Instance", "Moe2Evaluation", "MOE2_FORMAT", "MOE2_FORMAT_V2", "MOE2_FORMATS", "SELECTION_FORMAT",
    "MAX_EXPERTS", "MAX_MODEL_EXPERTS", "MONOTONE_TOL", "ACCOUNTINGS",
    "within", "subset_key", "parse_subset_key", "mask_of", "ids_of", "subset_sums", "subset_max",
    "moe2_from_dict", "read_moe2_instance", "write_moe2_instance",
    "selection_from_dict", "read_selection", "selection_to_dict", "normalise_selection",
    "evaluate_moe2",
]

MOE2_FORMAT = "moe2-instance/1"
MOE2_FORMAT_V2 = "moe2-instance/2"
MOE2_FORMATS = (MOE2_FORMAT, MOE2_FORMAT_V2)
SELECTION_FORMAT = "moe2-selection/1"
MAX_EXPERTS = 16          # quality tables hold 2**M entries per category
MAX_MODEL_EXPERTS = MAX_MASK_BITS  # a quality model costs what it costs; masks are int64
SUBSET_ENERGY_MAX_M = 20  # up to here the 2**M table of subset energies is cached
ACCOUNTINGS = ("pool", "per-query")
FEAS_RTOL = 1e-9          # budgets: value <= budget + FEAS_RTOL * max(1, |budget|)


def within(value: float | np.ndarray, budget: float) -> bool | np.ndarray:
    """``value <= budget`` up to a relative tolerance of ``1e-9`` (the one feasibility test)."""
    return value <= budget + FEAS_RTOL * max(1.0, abs(float(budget)))


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
    quality : QualityModel          ``q_k(S)``; a ``float64 (C, 2**M)`` array indexed by
                                    bit mask is accepted and becomes a :class:`TableQuality`.
    energy_budget : float           ``E``, J.
    aggregation_delay : float       ``a``, s, added to every non-empty selection.
    metadata : dict                 free-form provenance (generator parameters).
    energy_accounting : str         ``"pool"`` or ``"per-query"`` (module docstring).
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
    quality: QualityModel
    energy_budget: float
    aggregation_delay: float
    metadata: dict = field(default_factory=dict)
    energy_accounting: str = "pool"

    def __post_init__(self) -> None:
        for n in ("server_names", "server_kinds", "expert_names", "category_names"):
            object.__setattr__(self, n, tuple(getattr(self, n)))
        object.__setattr__(self, "expert_server", readonly(self.expert_server, np.int64))
        for n in ("server_power", "energy", "latency", "weight", "latency_budget"):
            object.__setattr__(self, n, readonly(getattr(self, n), np.float64))
        q = self.quality
        if not isinstance(q, QualityModel):
            q = TableQuality(np.asarray(q, dtype=np.float64))
        if (q.C, q.M) != (len(self.category_names), len(self.expert_names)):
            raise ValueError(f"quality model has C = {q.C}, M = {q.M}; the instance has "
                             f"C = {len(self.category_names)}, M = {len(self.expert_names)}")
        if q.M > MAX_MODEL_EXPERTS:
            raise ValueError(f"at most {MAX_MODEL_EXPERTS} experts (int64 masks), got {q.M}")
        if self.energy_accounting not in ACCOUNTINGS:
            raise ValueError(f"energy_accounting must be one of {ACCOUNTINGS}, got {self.energy_accounting!r}")
        object.__setattr__(self, "quality", q)
        object.__setattr__(self, "energy_budget", float(self.energy_budget))
        object.__setattr__(self, "aggregation_delay", float(self.aggregation_delay))

    @property
    def M(self) -> int:
        return len(self.expert_names)

    @property
    def C(self) -> int:
        return len(self.category_names)

    @property
    def table(self) -> np.ndarray:
        """``float64 (C, 2**M)``: the quality table (table instances only)."""
        if not isinstance(self.quality, TableQuality):
            raise TypeError(f"instance {self.name!r} has a {self.quality.kind} quality, not a table")
        return self.quality.table

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
        """``float64 (2**M,)``: ``sum_{i in S} e_i`` per mask (cached; ``M <= 20`` only)."""
        v = self.__dict__.get("_subset_energy")
        if v is None:
            if self.M > SUBSET_ENERGY_MAX_M:
                raise ValueError(f"subset_energy() tabulates 2**M values; M = {self.M} is too many, "
                                 "use mask_energy(masks)")
            v = readonly(subset_sums(self.energy), np.float64)
            object.__setattr__(self, "_subset_energy", v)
        return v

    def mask_energy(self, masks: np.ndarray) -> np.ndarray:
        """``float64 (n,)``: ``e(S) = sum_{i in S} e_i`` of each mask (the same numbers as :meth:`subset_energy`)."""
        masks = np.asarray(masks, dtype=np.int64)
        if self.M <= SUBSET_ENERGY_MAX_M:
            return self.subset_energy()[masks]
        return mask_sums(self.energy, masks).reshape(masks.shape)

    def category_energy(self, k: int, masks: np.ndarray) -> np.ndarray:
        """``float64 (n,)``: per-request energy ``eps_k(S)`` of category ``k`` under the instance's accounting."""
        masks = np.asarray(masks, dtype=np.int64).reshape(-1)
        if self.energy_accounting == "pool" or not self.quality.routes_per_query:
            return self.mask_energy(masks)
        return self.quality.usage(k, masks) @ self.energy

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: ``moe2-instance/1`` for a table with pool accounting, else ``moe2-instance/2``
        (exact float round trip)."""
        v1 = isinstance(self.quality, TableQuality) and self.energy_accounting == "pool"
        d: dict[str, Any] = {
            "format": MOE2_FORMAT if v1 else MOE2_FORMAT_V2,
            "name": self.name,
            "energy_budget": self.energy_budget,
            "aggregation_delay": self.aggregation_delay,
            "servers": [{"name": n, "kind": k, "power_w": float(p)}
                        for n, k, p in zip(self.server_names, self.server_kinds, self.server_power)],
            "experts": [{"name": n, "server": self.server_names[s], "energy": float(e), "latency": float(t)}
                        for n, s, e, t in zip(self.expert_names, self.expert_server, self.energy, self.latency)],
            "categories": [{"name": n, "weight": float(w), "latency_budget": float(b)}
                           for n, w, b in zip(self.category_names, self.weight, self.latency_budget)],
        }
        if v1:
            for k, cat in enumerate(d["categories"]):
                cat["quality"] = self.quality.category_dict(k)
        else:
            d["energy_accounting"] = self.energy_accounting
            if isinstance(self.quality, TableQuality):
                d["quality"] = {"kind": "table", "tables": [self.quality.category_dict(k) for k in range(self.C)]}
            else:
                d["quality"] = self.quality.to_dict()
        if self.metadata:
            d["metadata"] = self.metadata
        return d

    def content_hash(self) -> str:
        """SHA-256 (hex, first 16 chars) of the problem data, independent of ``name`` and ``metadata``.

        The scalars and names are hashed as canonical JSON and the quality
        model's arrays as raw little-endian ``float64`` bytes (with their
        shapes), so hashing costs about as much as reading the arrays once
        (a few milliseconds for a 16-expert table) and two instances that
        describe the same problem, read from a file or built in memory, share
        a hash.
        """
        h = self.__dict__.get("_hash")
        if h is None:
            head, arrays = self.quality.hash_parts()
            doc = {"energy_budget": self.energy_budget, "aggregation_delay": self.aggregation_delay,
                   "energy_accounting": self.energy_accounting,
                   "servers": [[n, k, float(p)] for n, k, p in zip(self.server_names, self.server_kinds,
                                                                   self.server_power)],
                   "experts": [[n, int(s), float(e), float(t)] for n, s, e, t in
                               zip(self.expert_names, self.expert_server, self.energy, self.latency)],
                   "categories": [[n, float(w), float(b)] for n, w, b in
                                  zip(self.category_names, self.weight, self.latency_budget)],
                   "quality": head, "arrays": [list(a.shape) for a in arrays]}
            sha = hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())
            for a in arrays:
                sha.update(np.ascontiguousarray(a, dtype="<f8").tobytes())
            h = sha.hexdigest()[:16]
            object.__setattr__(self, "_hash", h)
        return h

    def __repr__(self) -> str:
        return (f"Moe2Instance(name={self.name!r}, M={self.M}, C={self.C}, E={self.energy_budget:.6g}, "
                f"quality={self.quality.kind})")


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
    count, first = table_monotone_violations(table)
    if first is not None:
        s, t, i = first
        more = f" ({count - 1} more such pair{'s' if count > 2 else ''})" if count > 1 else ""
        c.add(path, f"quality must be monotone non-decreasing: q({subset_key(t)!r}) = {float(table[t])!r} < "
                    f"q({subset_key(s)!r}) = {float(table[s])!r} although adding expert {i} must not lower quality{more}")
        return None
    return table


def _tables(c: Collector, tables: Any, path: str, C: int, M: int) -> TableQuality | None:
    """``{"kind": "table", "tables": [one key -> value object per category]}`` (format 2)."""
    if M > MAX_EXPERTS:
        c.add("$.experts", f"at most {MAX_EXPERTS} experts with a quality table (2**M entries), got {M}")
        return None
    if not isinstance(tables, list) or len(tables) != C:
        got = f"{len(tables)} entries" if isinstance(tables, list) else type(tables).__name__
        c.add(f"{path}.tables", f"must be a list of {C} tables, one per category, got {got}")
        return None
    rows = [_quality_table(c, t, f"{path}.tables[{k}]", M) for k, t in enumerate(tables)]
    return None if any(r is None for r in rows) else TableQuality(np.vstack(rows))


def _quality_model(c: Collector, q: Any, C: int, M: int) -> QualityModel | None:
    """The ``$.quality`` object of a ``moe2-instance/2`` file, by its ``kind``."""
    if not isinstance(q, dict):
        c.add("$.quality", f"must be an object with a 'kind', got {type(q).__name__}")
        return None
    kind = q.get("kind")
    if kind == "table":
        return _tables(c, q.get("tables"), "$.quality", C, M)
    if kind == "noisy-or":
        return noisy_or_from_dict(c, q, "$.quality", C, M)
    if kind == "gated-mixture":
        return gated_from_dict(c, q, "$.quality", C, M)
    c.add("$.quality.kind", f"must be 'table', 'noisy-or' or 'gated-mixture', got {kind!r}")
    return None


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
    """Validate a decoded ``moe2-instance/1`` or ``moe2-instance/2`` object and build the instance.

    Raises
    ------
    InputError
        naming ``file``, the JSON path and the rule for every violation found.
    """
    c = Collector()
    if not isinstance(d, dict):
        raise InputError(file, ("$", f"must be a JSON object, got {type(d).__name__}"))
    fmt = d.get("format")
    if fmt not in MOE2_FORMATS:
        raise InputError(file, ("$.format", f"must be {MOE2_FORMAT!r} or {MOE2_FORMAT_V2!r}, got {fmt!r}"))
    v2 = fmt == MOE2_FORMAT_V2
    name = c.field(d, "name", "$", str, "a string")
    energy_budget = c.number(d, "energy_budget", "$", positive=False)
    agg = c.number(d, "aggregation_delay", "$", positive=False)
    servers = c.field(d, "servers", "$", list, "a list of servers")
    experts = c.field(d, "experts", "$", list, "a list of experts")
    cats = c.field(d, "categories", "$", list, "a list of categories")
    accounting = "pool"
    if v2:
        accounting = d.get("energy_accounting", "pool")
        if accounting not in ACCOUNTINGS:
            c.add("$.energy_accounting", f"must be 'pool' or 'per-query', got {accounting!r}")
    elif "quality" in d or "energy_accounting" in d:
        c.add("$.quality" if "quality" in d else "$.energy_accounting",
              f"belongs to format {MOE2_FORMAT_V2!r}; format {MOE2_FORMAT!r} has a quality table per category")

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
    limit = MAX_MODEL_EXPERTS if v2 else MAX_EXPERTS
    if experts is not None:
        M = len(experts)
        if M == 0:
            c.add("$.experts", "must list at least one expert")
        if M > limit:
            c.add("$.experts", f"at most {MAX_EXPERTS} experts (quality tables have 2**M entries), got {M}" if not v2
                  else f"at most {MAX_MODEL_EXPERTS} experts (subsets are 64-bit masks), got {M}")
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
            if v2:
                if "quality" in cat:
                    c.add(f"{p}.quality", f"not allowed in format {MOE2_FORMAT_V2!r}: the quality comes from "
                                          "$.quality")
            elif "quality" not in cat:
                c.add(f"{p}.quality", "missing required field 'quality'")
                tables.append(None)
            elif experts is not None and 0 < M <= MAX_EXPERTS:
                tables.append(_quality_table(c, cat["quality"], f"{p}.quality", M))
    if not c.problems:
        _check_finite_sums(c, weights, e_list, d_list, agg)
    model: QualityModel | None = None
    if v2 and "quality" not in d:
        c.add("$.quality", "missing required field 'quality' (an object with kind 'table', 'noisy-or' or "
                           "'gated-mixture')")
    elif v2 and not c.problems and cats:
        model = _quality_model(c, d["quality"], len(cats), M)
    if c.problems:
        raise InputError(file, c.problems)
    meta = d.get("metadata", {})
    return Moe2Instance(
        name=name, server_names=server_names, server_kinds=kinds, server_power=power,
        expert_names=expert_names, expert_server=host, energy=e_list, latency=d_list,
        category_names=cat_names, weight=weights, latency_budget=budgets,
        quality=model if v2 else TableQuality(np.vstack(tables)), energy_budget=energy_budget,
        aggregation_delay=agg, metadata=meta if isinstance(meta, dict) else {}, energy_accounting=accounting,
    )


def read_moe2_instance(path: str | os.PathLike) -> Moe2Instance:
    """Read and validate a ``moe2-instance/1`` or ``/2`` file (``.json`` or ``.json.gz``)."""
    from ..fileio import read_json

    return moe2_from_dict(read_json(path), file=str(path))


def write_moe2_instance(instance: Moe2Instance, path: str | os.PathLike) -> None:
    """Write ``instance`` (format 1 or 2, see :meth:`Moe2Instance.to_dict`; gzip when the name ends in ``.gz``).

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
    energy : float               ``sum_k lambda_k eps_k(S_k)`` under the instance's accounting.
    feasible : bool              both budgets hold (tolerance of :func:`within`).
    energy_ok : bool
    latency : float64 (C,)       ``max_{i in S_k} d_i + a`` (``0`` for the empty set).
    latency_ok : bool (C,)
    quality : float64 (C,)       ``q_k(S_k)``.
    accounting : str             ``"pool"`` or ``"per-query"``.
    energy_pool : float64 (C,)   ``e(S_k)``: per-request energy if every pool member runs.
    energy_routed : float64 (C,) per-request energy of the experts that actually run
                                 (mean over the validation queries; ``= energy_pool`` for dense gating).
    latency_routed_mean, latency_routed_max : float64 (C,)
                                 mean and largest latency over the validation queries of the
                                 experts that actually run, ``+ a`` (``= latency`` for dense gating).
    """

    objective: float
    energy: float
    feasible: bool
    energy_ok: bool
    latency: np.ndarray
    latency_ok: np.ndarray
    quality: np.ndarray
    accounting: str = "pool"
    energy_pool: np.ndarray | None = None
    energy_routed: np.ndarray | None = None
    latency_routed_mean: np.ndarray | None = None
    latency_routed_max: np.ndarray | None = None

    def to_dict(self, instance: Moe2Instance, masks: Sequence[int]) -> dict[str, Any]:
        return {
            "objective": self.objective, "energy": self.energy, "energy_budget": instance.energy_budget,
            "energy_accounting": self.accounting, "feasible": self.feasible, "energy_ok": self.energy_ok,
            "categories": {n: {"selection": ids_of(int(m)), "quality": float(q), "latency": float(t),
                               "latency_budget": float(b), "latency_ok": bool(ok), "energy_pool": float(ep),
                               "energy_routed": float(er), "latency_routed_mean": float(lm),
                               "latency_routed_max": float(lx)}
                           for n, m, q, t, b, ok, ep, er, lm, lx in zip(
                               instance.category_names, masks, self.quality, self.latency,
                               instance.latency_budget, self.latency_ok, self.energy_pool, self.energy_routed,
                               self.latency_routed_mean, self.latency_routed_max)},
        }


def _routed_latency(instance: Moe2Instance, k: int, mask: int, pool_latency: float) -> tuple[float, float]:
    """Mean and largest latency (``+ a``) over category ``k``'s validation queries of the experts that run."""
    q = instance.quality
    if mask == 0 or not q.routes_per_query:
        return pool_latency, pool_latency
    run = q.runs(k, mask)
    lat = np.where(run, instance.latency[None, :], 0.0).max(axis=1) + instance.aggregation_delay
    return float(lat.mean()), float(lat.max())


def evaluate_moe2(instance: Moe2Instance, selection: Any) -> Moe2Evaluation:
    """Evaluate a selection (``int64 (C,)`` masks or one id list per category): the family's one evaluator.

    Quality from ``instance.quality``; the energy constraint under the
    instance's accounting (``category_energy``); latency from the pool.
    Both the pool and the routed energy and latency are reported.
    """
    masks = normalise_selection(instance, selection)
    C = instance.C
    quality = np.array([instance.quality.value(k, int(masks[k])) for k in range(C)])
    e_pool = instance.mask_energy(masks)
    if instance.quality.routes_per_query:
        e_routed = np.array([float((instance.quality.usage(k, masks[k:k + 1]) @ instance.energy)[0])
                             for k in range(C)])
    else:
        e_routed = e_pool
    eps = e_routed if instance.energy_accounting == "per-query" else e_pool
    energy = float(np.dot(instance.weight, eps))
    lat_max = np.array([max((instance.latency[i] for i in ids_of(int(m))), default=0.0) for m in masks])
    latency = np.where(masks > 0, lat_max + instance.aggregation_delay, 0.0)
    lat_ok = np.array([bool(within(float(t), float(b))) for t, b in zip(latency, instance.latency_budget)])
    routed = np.array([_routed_latency(instance, k, int(masks[k]), float(latency[k])) for k in range(C)])
    e_ok = bool(within(energy, instance.energy_budget))
    return Moe2Evaluation(objective=float(np.dot(instance.weight, quality)), energy=energy,
                          feasible=bool(e_ok and lat_ok.all()), energy_ok=e_ok, latency=latency,
                          latency_ok=lat_ok, quality=quality, accounting=instance.energy_accounting,
                          energy_pool=e_pool, energy_routed=e_routed,
                          latency_routed_mean=routed[:, 0], latency_routed_max=routed[:, 1])
