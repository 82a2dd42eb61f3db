"""Streaming, bounded-memory counting of activated sets.

Every adapter yields the canonical table in bounded :class:`Chunk` s (one row
per ``(user, token, layer)`` activated set, experts padded with ``-1``).
:func:`count_chunks` checks each chunk against the architecture, encodes every
set as **one integer key** (:class:`SetCodec`) and tallies ``(group, key)``
pairs with vectorised ``np.unique`` / ``np.bincount`` merges per chunk
(:class:`Tally`); no Python object is ever made per token or per expert id.
The result, :class:`Counts`, holds the empirical set distribution of every
``(part, user, layer)`` and the tokens behind it.

Memory is ``O(chunk + distinct (user, layer, set) triples)``, independent of
the number of tokens; the distinct count itself is reported (the
tokens-per-distinct-set ratio) and can be cut down with :func:`truncate`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from ...errors import InputError

__all__ = ["Chunk", "SetCodec", "Tally", "Counts", "count_chunks", "sorted_sets", "truncate", "DEGENERATE_RATIO",
           "DEFAULT_CHUNK_ROWS", "iter_rows"]

#: Rows (activated sets) per chunk: bounded memory, large enough that numpy amortises its call overhead.
DEFAULT_CHUNK_ROWS = 1 << 20

#: Below this many tokens per distinct ``(user, layer, set)``, the empirical
#: distribution is little more than the trace itself: a warning says so.
DEGENERATE_RATIO = 5.0


@dataclass
class Chunk:
    """A bounded slice of the canonical table.

    Attributes
    ----------
    user : int64 (n,)      global user code (index into the source's ``user_names``).
    token : int64 (n,)     token id within the user (time order).
    layer : int64 (n,)     layer id as written in the source (before ``--layer-base``).
    experts : int (n, k)   expert ids, padded with ``-1``; any integer dtype.
    row : int64 (n,)       source row of each set, for error messages.
    """

    user: np.ndarray
    token: np.ndarray
    layer: np.ndarray
    experts: np.ndarray
    row: np.ndarray

    def __len__(self) -> int:
        return int(self.user.shape[0])


# ------------------------------------------------------------------ set keys
class SetCodec:
    """One integer key per activated set (sorted ids, at most ``top_k`` of ``E``).

    * ``bitmask`` (``E <= 64``): bit ``e`` set for every member (no sort needed);
    * ``packed``: the sorted ids in ``b = ceil(log2 E)``-bit fields, a short set
      padded by repeating its last id (ids are distinct, so a repeat marks padding);
      needs ``top_k * b <= 64``;
    * ``rows`` otherwise (e.g. 384 experts, top-8): the padded rows themselves,
      counted with ``np.unique(axis=0)``.

    Keys are ``uint64``; :meth:`decode` gives the sorted ids back, padded with ``-1``.
    """

    def __init__(self, experts: int, top_k: int):
        self.E, self.K = int(experts), int(top_k)
        self.bits = max(1, math.ceil(math.log2(self.E))) if self.E > 1 else 1
        packed = self.K * self.bits
        if self.E <= 64:
            self.mode, self.key_bits = "bitmask", self.E
        elif packed <= 64:
            self.mode, self.key_bits = "packed", packed
        else:
            self.mode, self.key_bits = "rows", 64

    def encode(self, sets: np.ndarray) -> np.ndarray:
        """``uint64 (n,)`` keys of ``sets`` (sorted ascending, ``-1`` padding last)."""
        valid = sets >= 0
        if self.mode == "bitmask":
            bits = np.left_shift(np.uint64(1), np.where(valid, sets, 0).astype(np.uint64))
            return np.bitwise_or.reduce(np.where(valid, bits, np.uint64(0)), axis=1)
        if self.mode == "packed":
            size = valid.sum(axis=1)
            last = sets[np.arange(len(sets)), np.maximum(size - 1, 0)]
            filled = np.where(valid, sets, last[:, None]).astype(np.uint64)
            key = np.zeros(len(sets), dtype=np.uint64)
            for j in range(sets.shape[1]):
                key = np.left_shift(key, np.uint64(self.bits)) | filled[:, j]
            # sets narrower than K: shift as if padded to K columns
            for _ in range(self.K - sets.shape[1]):
                key = np.left_shift(key, np.uint64(self.bits)) | filled[:, -1]
            return key
        raise ValueError("rows mode has no integer keys")

    def decode(self, keys: np.ndarray) -> np.ndarray:
        """``int64 (n, K)``: sorted ids padded with ``-1``."""
        keys = np.asarray(keys, dtype=np.uint64)
        n = len(keys)
        if self.mode == "bitmask":
            e = np.arange(self.E, dtype=np.uint64)
            member = ((keys[:, None] >> e[None, :]) & np.uint64(1)).astype(bool)
            size = member.sum(axis=1)
            out = np.full((n, max(int(size.max()) if n else 1, 1)), -1, dtype=np.int64)
            r, c = np.nonzero(member)
            rank = np.arange(len(r)) - np.searchsorted(r, r)
            out[r, rank] = c
            return out
        mask = np.uint64((1 << self.bits) - 1)
        cols = [((keys >> np.uint64(self.bits * (self.K - 1 - j))) & mask).astype(np.int64) for j in range(self.K)]
        out = np.stack(cols, axis=1) if cols else np.zeros((n, 0), dtype=np.int64)
        rep = np.zeros_like(out, dtype=bool)
        rep[:, 1:] = out[:, 1:] == out[:, :-1]
        out[rep] = -1
        return out


# ------------------------------------------------------------------ tallies
class Tally:
    """Counts of keys, merged lazily: partial ``(unique keys, counts)`` pairs are folded
    into one sorted pair when their total length exceeds the merged one.

    Keys are ``uint64`` integers, or ``int64`` rows of ``width`` ids when ``width`` is given.
    """

    def __init__(self, width: int | None = None) -> None:
        self.axis = None if width is None else 0
        self.keys = np.zeros(0, dtype=np.uint64) if width is None else np.zeros((0, width), dtype=np.int64)
        self.counts = np.zeros(0, dtype=np.int64)
        self._parts: list[tuple[np.ndarray, np.ndarray]] = []
        self._pending = 0

    def add(self, keys: np.ndarray, counts: np.ndarray) -> None:
        self._parts.append((keys, counts))
        self._pending += len(keys)
        if self._pending > max(1 << 16, 2 * len(self.keys)):
            self.merge()

    def merge(self) -> "Tally":
        if self._parts:
            k = np.concatenate([self.keys] + [p[0] for p in self._parts])
            c = np.concatenate([self.counts] + [p[1] for p in self._parts])
            self.keys, inv = np.unique(k, axis=self.axis, return_inverse=True)
            self.counts = np.bincount(inv.ravel(), weights=c, minlength=len(self.keys)).astype(np.int64)
            self._parts, self._pending = [], 0
        return self


# ------------------------------------------------------------------ result
@dataclass
class Counts:
    """Empirical set distributions of every ``(part, user, layer)`` of a trace.

    Attributes
    ----------
    user_names : tuple of str (U,)
    layers : int64 (L',)          model MoE layers present, sorted (instance layer ``i`` is ``layers[i]``).
    parts : tuple of str (P,)     ``("all",)``, or ``("fit", "test")`` after a split.
    sets : list (P*U*L') of int64 (C, k)   sorted ids padded with ``-1``, lexicographic order.
    counts : list (P*U*L') of int64 (C,)    tokens that activated each set.
    tokens : int64 (P, U, L')     tokens behind each distribution.
    rows : int                    ``(token, layer)`` rows read.
    info : dict                   source facts for the instance metadata (format, user column, ...).
    """

    user_names: tuple
    layers: np.ndarray
    parts: tuple
    sets: list
    counts: list
    tokens: np.ndarray
    rows: int
    info: dict = field(default_factory=dict)

    def index(self, part: int, u: int, l: int) -> int:
        return (part * len(self.user_names) + u) * len(self.layers) + l

    @property
    def distinct(self) -> int:
        return int(sum(len(c) for c in self.counts))

    @property
    def ratio(self) -> float:
        """Tokens per distinct ``(part, user, layer, set)``: low means the distribution is degenerate."""
        return self.rows / max(self.distinct, 1)

    @property
    def max_set_size(self) -> int:
        return max((int((s >= 0).sum(axis=1).max()) for s in self.sets if len(s)), default=0)


# ------------------------------------------------------------------ checks
def _check_chunk(file: str, ch: Chunk, layers: int, experts: int, top_k: int, layer_base: int,
                 model: str, codec: "SetCodec") -> tuple[np.ndarray, np.ndarray]:
    """Vectorised checks of one chunk, column by column (fast for small k); returns the
    0-based layers and the set keys (``uint64``), or sorted ``-1``-padded rows in ``rows`` mode."""
    layer = ch.layer.astype(np.int64, copy=False) - int(layer_base) if layer_base else ch.layer.astype(np.int64, copy=False)
    lo, hi = int(layer.min()), int(layer.max())
    if lo < 0 or hi >= layers:
        bad = (layer < 0) | (layer >= layers)
        i = int(np.flatnonzero(bad)[0])
        base = f" after --layer-base {layer_base}" if layer_base else ""
        hint = ("; a trace that numbers every transformer layer needs --layer-base set to the id of the first "
                "MoE layer") if layer[i] >= layers else ""
        raise InputError(file, (f"$[{ch.row[i]}].layer",
                                f"unknown layer {int(ch.layer[i])}{base}: {model} has {layers} MoE layers "
                                f"(0..{layers - 1}){hint} ({int(bad.sum())} set(s) in this chunk)"))
    ex = np.asarray(ch.experts)
    if ex.ndim != 2 or ex.shape[1] == 0:
        raise InputError(file, ("$", f"expected a set of expert ids per row, got shape {ex.shape}"))
    if not np.issubdtype(ex.dtype, np.integer):
        ex = ex.astype(np.int64)
    if int(ex.min()) < -1 or int(ex.max()) >= experts:
        badx = ((ex >= experts) | (ex < -1)).any(axis=1)
        i = int(np.flatnonzero(badx)[0])
        v = ex[i][(ex[i] >= experts) | (ex[i] < -1)]
        raise InputError(file, (f"$[{ch.row[i]}].expert",
                                f"expert {int(v[0])} out of range: {model} has {experts} experts per layer "
                                f"(0..{experts - 1})"))
    cols = [ex[:, j] for j in range(ex.shape[1])]
    size = np.zeros(len(ex), dtype=np.int8)
    for c in cols:
        size += c >= 0
    if int(size.min()) == 0:
        i = int(np.flatnonzero(size == 0)[0])
        raise InputError(file, (f"$[{ch.row[i]}].experts",
                                "a token must activate at least one expert, got an empty list"))
    if int(size.max()) > top_k:
        i = int(np.flatnonzero(size > top_k)[0])
        raise InputError(file, (f"$[{ch.row[i]}].expert",
                                f"token {int(ch.token[i])} activates {int(size[i])} experts at layer "
                                f"{int(layer[i])}, more than top-k = {top_k}"))
    if codec.mode == "bitmask":
        key = np.zeros(len(ex), dtype=np.uint64)
        one = np.uint64(1)
        for c in cols:
            bit = np.left_shift(one, c.astype(np.uint64))
            key |= np.where(c >= 0, bit, np.uint64(0)) if int(c.min()) < 0 else bit
        dup = np.bitwise_count(key) != size
        if dup.any():
            i = int(np.flatnonzero(dup)[0])
            sorted_sets(file, ex[i:i + 1], ch.token[i:i + 1], layer[i:i + 1], ch.row[i:i + 1])
        return layer, key
    srt = sorted_sets(file, ex, ch.token, layer, ch.row)
    srt = srt[:, :top_k] if srt.shape[1] > top_k else srt
    return layer, (srt if codec.mode == "rows" else codec.encode(srt))


def sorted_sets(file: str, ex: np.ndarray, token: np.ndarray, layer: np.ndarray, row: np.ndarray) -> np.ndarray:
    """Each row's ids sorted ascending with the ``-1`` padding last; a repeated id is an error."""
    big = np.iinfo(np.int64).max
    ex = np.asarray(ex).astype(np.int64, copy=False)
    srt = np.sort(np.where(ex == -1, big, ex), axis=1)
    dup = (srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] != big)
    if dup.any():
        i = int(np.flatnonzero(dup.any(axis=1))[0])
        e = int(srt[i, 1:][dup[i]][0])
        raise InputError(file, (f"$[{row[i]}].expert", f"expert {e} repeated within one token "
                                                       f"(token {int(token[i])}, layer {int(layer[i])})"))
    srt[srt == big] = -1
    return srt


# ------------------------------------------------------------------ counting
def count_chunks(chunks: Iterable[Chunk], *, user_names: Callable[[], Sequence[str]], file: str, layers: int,
                 experts: int, top_k: int, layer_base: int = 0, model: str = "the model",
                 part_of: Callable[[Chunk], np.ndarray] | None = None, parts: Sequence[str] = ("all",),
                 info: dict | None = None) -> Counts:
    """Tally every ``(part, user, layer, set)`` of a stream of chunks.

    Parameters
    ----------
    chunks : iterable of Chunk
    user_names : callable
        Returns the source's user labels once the stream is exhausted (users
        may be discovered while reading).
    file : str
        Named in error messages.
    layers, experts, top_k : int
        The architecture: MoE layers, routed experts per layer, Top-K.
    layer_base : int
        Id of the first MoE layer in the source.
    part_of : callable, optional
        ``Chunk -> int (n,)`` part index of each row (a fit/test split).
    parts : sequence of str
        Part names.

    Returns
    -------
    Counts

    Raises
    ------
    InputError
        An empty trace, a layer or expert out of range, an empty set, more than
        ``top_k`` experts or a repeated expert in one token (naming the source row).
    """
    codec = SetCodec(experts, top_k)
    P = len(parts)
    tallies: dict[int, Tally] = {}
    rows = 0
    for ch in chunks:
        if len(ch) == 0:
            continue
        layer, keys = _check_chunk(file, ch, layers, experts, top_k, layer_base, model, codec)
        group = ch.user.astype(np.int64) * (layers * P) + layer * P
        if part_of is not None:
            group += part_of(ch)
        rows += len(ch)
        _tally_chunk(tallies, codec, group, keys)
    if rows == 0:
        raise InputError(file, ("", "empty trace: no rows"))
    names = tuple(str(x) for x in user_names())
    U = len(names)
    present = sorted({(g // P) % layers for g in tallies})
    lay = np.asarray(present, dtype=np.int64)
    lpos = {int(l): i for i, l in enumerate(present)}
    Lp = len(present)
    sets_out: list = [np.zeros((0, 1), dtype=np.int64)] * (P * U * Lp)
    counts_out: list = [np.zeros(0, dtype=np.int64)] * (P * U * Lp)
    tokens = np.zeros((P, U, Lp), dtype=np.int64)
    for g in list(tallies):
        t = tallies[g].merge()
        p, rest = g % P, g // P
        u, l = rest // layers, rest % layers
        idx = (p * U + u) * Lp + lpos[l]
        s = t.keys if codec.mode == "rows" else codec.decode(t.keys)
        s, c = _canonical_order(s, t.counts)
        sets_out[idx], counts_out[idx] = s.astype(np.int16 if experts <= 32767 else np.int32), c
        tallies[g] = None                                   # free the tally as soon as it is decoded
        tokens[p, u, lpos[l]] = int(c.sum())
    return Counts(user_names=names, layers=lay, parts=tuple(parts), sets=sets_out, counts=counts_out,
                  tokens=tokens, rows=rows, info=dict(info or {}))


def _groups(group: np.ndarray, keys: np.ndarray):
    """``(group, slice of keys)`` runs; sorts by group only when the chunk is not already grouped."""
    if len(group) > 1 and (group[1:] < group[:-1]).any():
        order = np.argsort(group, kind="stable")
        group, keys = group[order], keys[order]
    bounds = np.flatnonzero(np.r_[True, group[1:] != group[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:]):
        yield int(group[a]), keys[a:b]


def _tally_chunk(tallies: dict, codec: SetCodec, group: np.ndarray, keys: np.ndarray) -> None:
    if codec.mode == "rows":
        for g, s in _groups(group, keys):
            rows, cnt = np.unique(s, axis=0, return_counts=True)
            if rows.shape[1] < codec.K:
                rows = np.pad(rows, ((0, 0), (0, codec.K - rows.shape[1])), constant_values=-1)
            tallies.setdefault(g, Tally(codec.K)).add(rows[:, :codec.K], cnt)
        return
    gmax = int(group.max())
    gbits = max(1, gmax.bit_length())
    if codec.key_bits + gbits <= 63:
        comb = (group.astype(np.uint64) << np.uint64(codec.key_bits)) | keys
        space = (gmax + 1) << codec.key_bits
        if space <= 1 << 22:
            cnt = np.bincount(comb.astype(np.int64), minlength=space)
            uniq = np.flatnonzero(cnt)
            cnt = cnt[uniq]
            uniq = uniq.astype(np.uint64)
        else:
            uniq, cnt = np.unique(comb, return_counts=True)
        ug = (uniq >> np.uint64(codec.key_bits)).astype(np.int64)
        uk = uniq & np.uint64((1 << codec.key_bits) - 1)
        bounds = np.flatnonzero(np.r_[True, ug[1:] != ug[:-1], True])
        for a, b in zip(bounds[:-1], bounds[1:]):
            tallies.setdefault(int(ug[a]), Tally()).add(uk[a:b], cnt[a:b].astype(np.int64))
        return
    for g, k in _groups(group, keys):
        uniq, cnt = np.unique(k, return_counts=True)
        tallies.setdefault(g, Tally()).add(uniq, cnt.astype(np.int64))


def _canonical_order(sets: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sets in lexicographic order of their ``-1``-padded rows (the order of ``np.unique(axis=0)``)."""
    width = int((sets >= 0).sum(axis=1).max()) if len(sets) else 1
    sets = sets[:, :max(width, 1)]
    order = np.lexsort(sets.T[::-1])
    return sets[order], counts[order]


# ------------------------------------------------------------------ degenerate distributions
def truncate(counts: Counts, *, min_count: int | None = None, top_mass: float | None = None,
             tail: str = "independent") -> tuple[Counts, dict]:
    """Keep the head of every distribution and move the tail to a documented remainder.

    A set is kept when its count is ``>= min_count`` *and* it is among the most
    frequent sets (descending count, ties in set order) whose cumulative mass
    first reaches ``top_mass``.  The tail, of mass ``tau[p,u,l]``, becomes:

    * ``"independent"``: each tail set ``S`` of count ``c`` is replaced by its
      members as singletons ``{e}``, each with count ``c / |S|`` (the tail's
      expert marginals, scaled so the mass is kept);
    * ``"drop"``: removed; the head is renormalised.

    Returns the truncated counts (float counts where singletons were split) and
    a record for the instance metadata.

    Notes
    -----
    Every per-set latency lies in ``[tmin[u,l], c[u,l]]`` with
    ``tmin = min(c[u,l], min_n t[u,n,l])``, whatever the placement.  Both
    remainders change the distribution only on mass ``tau``, so for every
    placement ``x``

    .. math:: |T_{trace}(x) - T_{trunc}(x)| \\le \\sum_u w_u \\sum_l \\tau_{u,l} (c_{u,l} - tmin_{u,l}),

    which :func:`truncation_bound` evaluates on the built instance; with
    ``"independent"`` the difference has a sign, ``T_{trunc}(x) \\le T_{trace}(x)``
    (a mean of member latencies never exceeds their maximum).
    """
    if tail not in ("independent", "drop"):
        raise InputError("--tail", ("", f"unknown tail policy {tail!r}; valid: independent, drop"))
    if min_count is not None and min_count < 1:
        raise InputError("--min-count", ("", f"must be >= 1, got {min_count}"))
    if top_mass is not None and not 0 < top_mass <= 1:
        raise InputError("--top-mass", ("", f"must be in (0, 1], got {top_mass}"))
    new_sets, new_counts, tail_mass, dropped = [], [], [], 0
    for s, c in zip(counts.sets, counts.counts):
        if len(c) == 0:
            new_sets.append(s), new_counts.append(c.astype(float)), tail_mass.append(0.0)
            continue
        keep = np.ones(len(c), dtype=bool)
        if min_count is not None:
            keep &= c >= min_count
        if top_mass is not None:
            order = np.lexsort((np.arange(len(c)), -c))
            cum = np.cumsum(c[order]) / c.sum()
            n_head = int(np.searchsorted(cum, top_mass - 1e-12) + 1)
            in_top = np.zeros(len(c), dtype=bool)
            in_top[order[:n_head]] = True
            keep &= in_top
        total = float(c.sum())
        tau = float(c[~keep].sum()) / total
        tail_mass.append(tau)
        dropped += int((~keep).sum())
        hs, hc = s[keep], c[keep].astype(float)
        if tail == "independent" and (~keep).any():
            ts, tc = s[~keep], c[~keep].astype(float)
            size = (ts >= 0).sum(axis=1)
            members = ts[ts >= 0]
            w = np.repeat(tc / size, size)
            E = int(members.max()) + 1
            single = np.bincount(members, weights=w, minlength=E)
            se = np.flatnonzero(single > 0)
            srow = np.full((len(se), s.shape[1]), -1, dtype=np.int64)
            srow[:, 0] = se
            allsets = np.concatenate([hs, srow])
            allc = np.concatenate([hc, single[se]])
            allsets, inv = np.unique(allsets, axis=0, return_inverse=True)
            hs, hc = allsets, np.bincount(inv.ravel(), weights=allc)
            hs, hc = _canonical_order(hs, hc)
        elif not keep.any():
            raise InputError("--top-mass", ("", "truncation left a distribution empty"))
        new_sets.append(hs)
        new_counts.append(hc)
    tm = np.asarray(tail_mass)
    record = {"min_count": min_count, "top_mass": top_mass, "tail": tail,
              "tail_rule": ("each tail set's members become singletons with the set's count split evenly "
                            "(tail expert marginals kept)") if tail == "independent"
              else "tail sets dropped, head renormalised",
              "sets_moved_to_tail": dropped, "tail_mass_max": float(tm.max()) if tm.size else 0.0,
              "tail_mass_mean": float(tm.mean()) if tm.size else 0.0,
              "tail_mass": tm.reshape(counts.tokens.shape).round(6).tolist()}
    out = Counts(user_names=counts.user_names, layers=counts.layers, parts=counts.parts, sets=new_sets,
                 counts=new_counts, tokens=counts.tokens, rows=counts.rows, info=dict(counts.info))
    return out, record


def iter_rows(n: int, chunk_rows: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` windows of at most ``chunk_rows`` over ``range(n)``."""
    step = max(1, int(chunk_rows))
    for a in range(0, n, step):
        yield a, min(n, a + step)
