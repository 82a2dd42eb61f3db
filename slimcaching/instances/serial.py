"""Fast instance files: the JSON text written without building a Python object per
set, and a columnar ``.npz`` form that loads in a fraction of a second.

``.json`` / ``.json.gz``: :func:`dumps_instance` returns exactly
``json.dumps(instance.to_dict(), indent=1, ensure_ascii=False) + "\\n"`` (the
bytes :func:`slimcaching.fileio.write_json` wrote before), but renders the
routing tables with one format step per set instead of ``json``'s
pure-Python indenting encoder over a dict and a list per set.

``.npz`` (``slimcaching-instance-columnar/1``): the arrays of
:class:`~.model.Instance` (``experts``, ``expert_size``, ``top_k``,
``capacity``, ``weight``, ``latency`` with ``inf`` for unreachable nodes,
``cloud_latency``, ``set_experts`` in the narrowest integer type, ``set_prob``,
``offsets``) plus ``header.json`` (format tag, name, size unit, node and user
names, metadata) as UTF-8 bytes, uncompressed so loading is a read.  The reader
validates every rule of ``docs/model.md`` on the arrays, vectorised.
"""
from __future__ import annotations

import io
import json
import math
import os
import zipfile

import numpy as np

from ..errors import InputError
from ..fileio import write_bytes, write_text
from ..validation import Collector
from .model import Instance
from .validate import SUM_TOL

__all__ = ["dumps_instance", "write_instance_file", "read_columnar", "write_columnar", "COLUMNAR_FORMAT"]

COLUMNAR_FORMAT = "slimcaching-instance-columnar/1"
_ARRAYS = ("experts", "expert_size", "top_k", "capacity", "weight", "latency", "cloud_latency", "set_experts",
           "set_prob", "offsets")


# ------------------------------------------------------------------ JSON text
def _member_lines(inst: Instance) -> list[str]:
    """For every set, its ids one per line (``"       3,\\n       7"``), built column by column with numpy."""
    se = inst.set_experts
    i7 = " " * 7
    idstr = np.array([f"{i7}{e}" for e in range(max(inst.max_experts, 1))] + [""], dtype=object)
    cols = np.where(se >= 0, se, len(idstr) - 1)
    text = idstr[cols[:, 0]] if se.shape[1] else np.full(len(se), "", dtype=object)
    for j in range(1, se.shape[1]):
        more = se[:, j] >= 0
        text = np.where(more, text + ",\n" + idstr[cols[:, j]], text)
    return text.tolist()


def _routing_text(inst: Instance, u: int, lines: list[str], probs: list[str]) -> str:
    if inst.L == 0:
        return "[]"
    i6 = " " * 6
    layers = []
    for l in range(inst.L):
        sl = inst.sets_of(u, l)
        sets = [f"     {{\n{i6}\"experts\": [\n{m}\n{i6}],\n{i6}\"p\": {p}\n     }}" if m else
                f"     {{\n{i6}\"experts\": [],\n{i6}\"p\": {p}\n     }}"
                for m, p in zip(lines[sl], probs[sl])]
        layers.append("    [\n" + ",\n".join(sets) + "\n    ]" if sets else "    []")
    return "[\n" + ",\n".join(layers) + "\n   ]"


def dumps_instance(inst: Instance) -> str:
    """The JSON text of ``inst`` (see the module docstring), byte-identical to the ``json`` module's."""
    for p in inst.set_prob.tolist():
        if not math.isfinite(p):
            raise ValueError("Out of range float values are not JSON compliant")
    text = json.dumps(inst.to_dict(routing_placeholders=True), indent=1, ensure_ascii=False,
                      allow_nan=False) + "\n"
    lines = _member_lines(inst)
    probs = list(map(float.__repr__, inst.set_prob.tolist()))
    out, pos = [], 0
    for u in range(inst.U):
        key = '"routing": ' + json.dumps(f"\x00routing-{u}", ensure_ascii=False)
        at = text.index(key, pos)
        out.append(text[pos:at + len('"routing": ')])
        out.append(_routing_text(inst, u, lines, probs))
        pos = at + len(key)
    out.append(text[pos:])
    return "".join(out)


def write_instance_file(inst: Instance, path: str | os.PathLike) -> None:
    """Write ``inst`` by extension: ``.npz`` columnar, otherwise JSON (gzip for ``.gz``)."""
    if str(path).lower().endswith(".npz"):
        write_columnar(inst, path)
    else:
        write_text(dumps_instance(inst), path)


# ------------------------------------------------------------------ columnar
def _narrow(a: np.ndarray) -> np.ndarray:
    hi = int(a.max()) if a.size else 0
    for dt in (np.int8, np.int16, np.int32):
        if hi <= np.iinfo(dt).max:
            return a.astype(dt)
    return a


def write_columnar(inst: Instance, path: str | os.PathLike) -> None:
    """Write the columnar ``.npz`` form of ``inst`` (see the module docstring)."""
    header = {"format": COLUMNAR_FORMAT, "name": inst.name, "size_unit": inst.size_unit,
              "nodes": list(inst.node_names), "users": list(inst.user_names), "metadata": inst.metadata}
    arrays = {k: np.asarray(getattr(inst, k)) for k in _ARRAYS}
    arrays["set_experts"] = _narrow(arrays["set_experts"])
    arrays["header.json"] = np.frombuffer(json.dumps(header, ensure_ascii=False, allow_nan=False).encode(), np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_bytes(buf.getbuffer(), path)


def read_columnar(path: str | os.PathLike) -> Instance:
    """Read and validate a columnar ``.npz`` instance.

    Raises
    ------
    InputError
        Not such a file, or any rule of the instance format broken (every
        problem collected, named by array and index).
    """
    path = str(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise InputError(path, ("", "file not found")) from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(path, ("", f"cannot read .npz instance: {str(exc).splitlines()[0]}")) from None
    missing = [k for k in _ARRAYS + ("header.json",) if k not in data]
    if missing:
        raise InputError(path, ("$", f"not a {COLUMNAR_FORMAT} file: missing {', '.join(missing)}"))
    try:
        header = json.loads(data.pop("header.json").tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError(path, ("$.header", f"not valid JSON: {exc}")) from None
    if not isinstance(header, dict) or header.get("format") != COLUMNAR_FORMAT:
        raise InputError(path, ("$.format", f"unknown format tag {header.get('format') if isinstance(header, dict) else None!r}, "
                                            f"expected {COLUMNAR_FORMAT!r}"))
    c = Collector()
    _check_columnar(c, header, data)
    if c.problems:
        raise InputError(path, c.problems)
    L = len(data["experts"])
    S = len(data["set_prob"])
    off = data["offsets"].astype(np.int64)
    counts = np.diff(off)
    ul = np.repeat(np.arange(len(counts)), counts)
    return Instance(name=header["name"], size_unit=header.get("size_unit", "MiB"), experts=data["experts"],
                    expert_size=data["expert_size"], top_k=data["top_k"], node_names=header["nodes"],
                    capacity=data["capacity"], user_names=header["users"], weight=data["weight"],
                    latency=data["latency"], cloud_latency=data["cloud_latency"],
                    set_experts=data["set_experts"].reshape(S, -1), set_prob=data["set_prob"], set_user=ul // max(L, 1),
                    set_layer=ul % max(L, 1), offsets=off, metadata=header.get("metadata") or {})


def _check_columnar(c: Collector, h: dict, d: dict) -> None:
    for key, typ in (("name", str), ("size_unit", str), ("nodes", list), ("users", list), ("metadata", dict)):
        if key in h and not isinstance(h[key], typ):
            c.add(f"$.{key}", f"must be a {typ.__name__}")
    if c.problems:
        return
    nodes, users = h.get("nodes", []), h.get("users", [])
    if not all(isinstance(n, str) for n in nodes) or len(set(nodes)) != len(nodes):
        c.add("$.nodes", "node names must be distinct strings")
    if not users or not all(isinstance(n, str) for n in users):
        c.add("$.users", "must list at least one user name")
    E, Sz, K = (d[k].astype(np.int64) for k in ("experts", "expert_size", "top_k"))
    L, N, U = len(E), len(nodes), len(users)
    if L == 0:
        c.add("$.layers", "must list at least one layer")
    for name, arr in (("experts", E), ("expert_size", Sz), ("top_k", K)):
        if arr.ndim != 1 or len(arr) != L or (arr <= 0).any():
            c.add(f"$.{name}", f"must be {L} positive integers")
    if len(K) == L and len(E) == L and (K > E).any():
        c.add(f"$.top_k[{int(np.flatnonzero(K > E)[0])}]", "top_k cannot exceed the number of experts")
    shapes = {"capacity": (N,), "weight": (U,), "latency": (U, N, L), "cloud_latency": (U, L),
              "offsets": (U * L + 1,)}
    for name, shape in shapes.items():
        if d[name].shape != shape:
            c.add(f"$.{name}", f"must have shape {shape}, got {d[name].shape}")
    if c.problems:
        return
    if not np.issubdtype(d["capacity"].dtype, np.integer) or (d["capacity"] < 0).any():
        c.add("$.capacity", "must be non-negative integers")
    w = d["weight"].astype(float)
    if not (np.isfinite(w).all() and (w > 0).all()):
        c.add("$.weight", "user weights must be positive numbers")
    elif abs(w.sum() - 1) > SUM_TOL:
        c.add("$.weight", f"user weights must sum to 1 within {SUM_TOL:g}, got {w.sum():.9g}")
    lat, cl = d["latency"].astype(float), d["cloud_latency"].astype(float)
    if not ((lat > 0) | np.isposinf(lat)).all() or np.isnan(lat).any():
        c.add("$.latency", "latencies must be positive (inf for an unreachable node)")
    if not (np.isfinite(cl).all() and (cl > 0).all()):
        c.add("$.cloud_latency", "cloud latencies must be positive numbers")
    off = d["offsets"].astype(np.int64)
    se, p = d["set_experts"].astype(np.int64), d["set_prob"].astype(float)
    S = len(p)
    if off[0] != 0 or off[-1] != S or (np.diff(off) <= 0).any():
        c.add("$.offsets", f"must rise strictly from 0 to the {S} sets (every (user, layer) needs a set)")
        return
    if se.ndim != 2 or len(se) != S or se.shape[1] == 0:
        c.add("$.set_experts", f"must have shape ({S}, k)")
        return
    if not (np.isfinite(p).all() and (p > 0).all()):
        i = int(np.flatnonzero(~(np.isfinite(p) & (p > 0)))[0])
        c.add(f"$.set_prob[{i}]", f"probability must be > 0, got {p[i]!r}")
    ul = np.repeat(np.arange(U * L), np.diff(off))
    lay = ul % L
    tot = np.bincount(ul, weights=p, minlength=U * L)
    bad = np.abs(tot - 1) > SUM_TOL
    if bad.any():
        g = int(np.flatnonzero(bad)[0])
        c.add(f"$.users[{g // L}].routing[{g % L}]", f"probabilities must sum to 1 within {SUM_TOL:g}, got {tot[g]:.9g}")
    valid = se >= 0
    size = valid.sum(axis=1)
    tail_ok = (np.diff(valid.astype(np.int8), axis=1) <= 0).all(axis=1)
    problems = [(size == 0, "activated set must not be empty"),
                (~tail_ok | ((se < 0) & (se != -1)).any(axis=1), "ids must be >= 0 with -1 padding at the end"),
                (size > K[lay], "set exceeds the layer's top_k"),
                (((se >= E[lay][:, None]) & valid).any(axis=1), "expert id out of range for the layer")]
    for mask, rule in problems:
        if mask.any():
            i = int(np.flatnonzero(mask)[0])
            c.add(f"$.set_experts[{i}]", rule)
    if c.problems:
        return
    srt = np.sort(np.where(valid, se, np.iinfo(np.int64).max), axis=1)
    if ((srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] != np.iinfo(np.int64).max)).any():
        i = int(np.flatnonzero(((srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] != np.iinfo(np.int64).max)).any(axis=1))[0])
        c.add(f"$.set_experts[{i}]", "repeated expert in a set")
    # duplicate sets of one (user, layer): hash each sorted row to one integer, confirm equal hashes exactly
    big = np.iinfo(np.int64).max
    rows = np.where(srt == big, -1, srt)
    mult = np.random.default_rng(0).integers(1, 2 ** 62, size=rows.shape[1] + 1, dtype=np.uint64) | np.uint64(1)
    with np.errstate(over="ignore"):
        h = ul.astype(np.uint64) * mult[0] + (rows.astype(np.uint64) * mult[1:]).sum(axis=1, dtype=np.uint64)
    order = np.argsort(h, kind="stable")
    eq = np.flatnonzero(h[order][1:] == h[order][:-1])
    for i in eq:
        a, b = order[i], order[i + 1]
        if ul[a] == ul[b] and (rows[a] == rows[b]).all():
            c.add(f"$.set_experts[{max(a, b)}]", "set listed twice for this user and layer")
            break
