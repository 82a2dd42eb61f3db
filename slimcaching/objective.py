"""The one evaluator of the objective ``T(x)`` (``docs/model.md`` section 1).

.. math::

    \\tau_{u,l,e}(x) = \\min\\bigl(c_{u,l},\\ \\min\\{t_{u,n,l} : x_{n,l,e} = 1\\}\\bigr),\\qquad
    T(x) = \\sum_u w_u \\sum_l \\sum_S p_{u,l,S} \\max_{e \\in S} \\tau_{u,l,e}(x),

and ``R(x) = T(empty) - T(x)``.  Unreachable nodes carry ``t = inf`` so they
never win the minimum.

Layout.  A full evaluation is one gather of ``tau`` per set member and a
maximum per routing row.  The member index is kept transposed, ``(Kmax, S)``
(:func:`member_index_ks`): the maximum is then ``Kmax - 1`` element-wise
``np.maximum`` calls over contiguous length-``S`` vectors (column-wise
maxima), instead of a row-wise reduction over the short ``Kmax`` axis; the
gathers go through ``np.take`` into preallocated buffers.  The weighted sum
``sum_S w_u p_S max`` is ``np.einsum`` (no BLAS: a single dot product is not
worth a thread pool, and ``einsum`` gives the same bits on every machine).
With numba installed (``pip install slimcaching[fast]``), ``kernel="numba"``
makes ``tau`` and the set maxima compiled passes; the set latencies are the
same bits either way (maxima and minima are exact) and the sum is the same
``einsum``, so ``T`` is identical with and without it.  ``kernel="auto"`` (the
default) reads ``SLIMCACHING_KERNEL`` and otherwise compiles only for
instances of at least :data:`AUTO_COMPILED_MEMBERS` set members: the first
call in a fresh environment compiles for seconds, which small instances and
short time limits cannot absorb (:func:`resolve_kernel`).

:func:`evaluate` is the full evaluation; :class:`IncrementalEvaluator` keeps
``tau``, the per-set latency *and the second largest member latency of every
set*, so the gain of adding or removing one element is a sum over the routing
rows containing it with no gather of the other members (see
:meth:`IncrementalEvaluator.gain`).  Every algorithm reports latencies
computed here.
"""
from __future__ import annotations

import importlib.util
import os
import threading
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from .instances.model import Instance, Placement

__all__ = ["Evaluation", "evaluate", "latency", "empty_latency", "tau", "set_latency", "activation_marginals",
           "member_index", "member_index_ks", "weighted_sum", "IncrementalEvaluator", "KERNELS",
           "available_kernels", "resolve_kernel", "LAYOUTS"]

#: Implementations of the full pass over the set members (:func:`set_latency`).
KERNELS = ("numpy", "numba")
#: Layouts of the member index: ``"ks"`` ``(Kmax, S)``, column-wise maxima (numpy's default);
#: ``"sk"`` the routing table's own ``(S, Kmax)``, row-wise maxima (the compiled kernel's default:
#: a row's members are then adjacent and its maximum stays in a register).
LAYOUTS = ("ks", "sk")
_BLOCK = 16384  # rows per block of the numpy pass: its buffers stay in the L2 cache
#: Set members per chunk of a batched gain or loss query (about 10 arrays of this many
#: 8-byte values are alive at once: 40 MiB).
_ENTRY_CHUNK = 1 << 19


# ----------------------------------------------------------------- helpers
def _cached(instance: Instance, key: str, build):
    v = instance.__dict__.get(key)
    if v is None:
        v = build()
        object.__setattr__(instance, key, v)
    return v


def member_index(instance: Instance) -> np.ndarray:
    """``int64 (S, Kmax)``: index of each set member in ``tau.ravel()``; padding
    points at one sentinel slot past the end (holding 0, latencies are > 0)."""
    def build():
        L, E = instance.L, instance.max_experts
        se = instance.set_experts
        flat = (instance.set_user[:, None] * L + instance.set_layer[:, None]) * E + se
        sentinel = instance.U * L * E
        flat = np.where(se >= 0, flat, sentinel).astype(np.int64)
        flat.setflags(write=False)
        return flat
    return _cached(instance, "_member_index", build)


def member_index_ks(instance: Instance) -> np.ndarray:
    """``int64 (Kmax, S)``, C-contiguous: :func:`member_index` transposed, so that
    member ``k`` of every set is one contiguous vector."""
    def build():
        v = np.ascontiguousarray(member_index(instance).T)
        v.setflags(write=False)
        return v
    return _cached(instance, "_member_index_ks", build)


def _compact(instance: Instance, layout: str) -> np.ndarray:
    """The member index of ``layout`` as ``int32`` when every slot fits (half the bytes to
    read; the compiled kernels index with it directly), else ``int64``."""
    def build():
        v = member_index(instance) if layout == "sk" else member_index_ks(instance)
        if instance.U * instance.L * instance.max_experts < np.iinfo(np.int32).max:
            v = v.astype(np.int32)
            v.setflags(write=False)
        return v
    return _cached(instance, f"_member_index_{layout}_compact", build)


def activation_marginals(instance: Instance) -> np.ndarray:
    """``float64 (U, L, Emax)``: ``q[u,l,e] = sum_{S containing e} p[u,l,S]``."""
    q = np.zeros(instance.U * instance.L * instance.max_experts + 1)  # last slot: padding sentinel
    flat = member_index(instance)
    np.add.at(q, flat.ravel(), np.repeat(instance.set_prob, flat.shape[1]))
    return q[:-1].reshape(instance.U, instance.L, instance.max_experts)


@dataclass(frozen=True)
class _Entries:
    """Every set member as one CSR entry, grouped by key ``l*Emax + e`` (all users).

    ``rows``/``cols``: routing row and column of the member; ``users``: the
    row's user; ``coef``: the row's ``w_u p_S``; ``slot``: the member's index
    in ``tau.ravel()``; ``ptr``: entries of key ``k`` are ``ptr[k]:ptr[k+1]``,
    in routing-row order.  ``by_key[k]`` holds the views ``(rows, users, coef,
    slot)`` of key ``k`` (``None`` for a key in no row), so the hot path of a
    gain query slices nothing.
    """

    ptr: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    users: np.ndarray
    coef: np.ndarray
    slot: np.ndarray
    by_key: list



def _entries(instance: Instance) -> _Entries:
    def build():
        E = instance.max_experts
        se = instance.set_experts
        rows, cols = np.nonzero(se >= 0)
        keys = instance.set_layer[rows] * E + se[rows, cols]
        order = np.argsort(keys, kind="stable")
        ptr = np.zeros(instance.L * E + 1, dtype=np.int64)
        np.add.at(ptr, keys + 1, 1)
        rows = rows[order].astype(np.int64)
        ptr = np.cumsum(ptr)
        users = instance.set_user[rows].astype(np.int64)
        coef = np.ascontiguousarray(instance.coef[rows])
        slot = (users * instance.L + keys[order] // E) * E + keys[order] % E
        bounds = ptr.tolist()
        by_key = [(rows[a:b], users[a:b], coef[a:b], slot[a:b]) if b > a else None
                  for a, b in zip(bounds[:-1], bounds[1:])]
        return _Entries(ptr=ptr, rows=rows, cols=cols[order].astype(np.int64), users=users, coef=coef,
                        slot=slot, by_key=by_key)
    return _cached(instance, "_entries", build)


#: Below this length :func:`weighted_sum` calls ``np.dot`` (BLAS runs short dot products on one
#: thread; OpenBLAS starts threads above 10,000 elements), above it ``np.einsum`` (no BLAS).
_SHORT_DOT = 4096


def weighted_sum(coef: np.ndarray, values: np.ndarray) -> float:
    """``sum_i coef[i] * values[i]`` on one thread.

    Long vectors go through ``np.einsum`` (no BLAS: the same bits whatever the
    thread count), short ones through ``np.dot`` (a quarter of ``einsum``'s
    call overhead, single-threaded below :data:`_SHORT_DOT` elements).
    """
    if len(values) <= _SHORT_DOT:
        return float(np.dot(coef, values))
    return float(np.einsum("i,i->", coef, values))


# ----------------------------------------------------------------- kernels
_NUMBA: dict[str, object] = {}
_NUMBA_LOCK = threading.Lock()


def _numba_kernels():
    """The compiled passes, or ``None`` when numba is not installed."""
    if "kernels" in _NUMBA:
        return _NUMBA["kernels"]
    with _NUMBA_LOCK:
        if "kernels" not in _NUMBA:
            try:
                import numba
            except ImportError:
                _NUMBA["kernels"] = None
            else:
                _NUMBA["kernels"] = _compile(numba)
    return _NUMBA["kernels"]


def _compile(numba):
    jit = numba.njit(cache=True, nogil=True, boundscheck=False)

    @jit
    def top2_sk(tau_ext, idx, m1, m2):  # pragma: no cover - compiled
        S, K = idx.shape
        for s in range(S):
            a = tau_ext[idx[s, 0]]
            b = 0.0
            for k in range(1, K):
                v = tau_ext[idx[s, k]]
                b = max(b, min(a, v))
                a = max(a, v)
            m1[s] = a
            m2[s] = b

    @jit
    def max_ks(tau_ext, idx, out):  # pragma: no cover - compiled
        K, S = idx.shape
        for s in range(S):
            out[s] = tau_ext[idx[0, s]]
        for k in range(1, K):
            row = idx[k]
            for s in range(S):
                out[s] = max(out[s], tau_ext[row[s]])

    @jit
    def max_sk(tau_ext, idx, out):  # pragma: no cover - compiled
        S, K = idx.shape
        for s in range(S):
            m = tau_ext[idx[s, 0]]
            for k in range(1, K):
                m = max(m, tau_ext[idx[s, k]])
            out[s] = m

    @jit
    def tau_fill(x, lat, out):  # pragma: no cover - compiled
        N, L, E = x.shape
        U = out.shape[0]
        for n in range(N):
            for l in range(L):
                for e in range(E):
                    if x[n, l, e]:
                        for u in range(U):
                            out[u, l, e] = min(out[u, l, e], lat[u, n, l])

    return {"top2_sk": top2_sk, "max_ks": max_ks, "max_sk": max_sk, "tau_fill": tau_fill}


def available_kernels() -> tuple[str, ...]:
    """The kernels usable here: ``("numpy",)``, plus ``"numba"`` when it is installed."""
    return KERNELS if _numba_kernels() is not None else KERNELS[:1]


#: ``kernel="auto"`` without ``SLIMCACHING_KERNEL`` compiles (numba, when installed) for
#: instances with at least this many set members: there the numpy passes cost minutes
#: (``successive`` on the DeepSeek-V3 paper instance, 950,272 members: 141 CPU-s against
#: 34), far above the one-off compilation; below it, numpy (no numba import at all).
AUTO_COMPILED_MEMBERS = 100_000


def set_members(instance: Instance) -> int:
    """Number of set members ``sum_S |S|`` of the routing table (cached)."""
    return _cached(instance, "_set_members", lambda: int(np.count_nonzero(instance.set_experts >= 0)))


def resolve_kernel(kernel: str, members: int | None = None) -> str:
    """``"numpy"`` or ``"numba"``.

    ``"auto"``: ``SLIMCACHING_KERNEL`` when set; otherwise ``"numba"`` if
    ``members`` (set members of the instance at hand) is at least
    :data:`AUTO_COMPILED_MEMBERS` and numba is installed and works, else
    ``"numpy"``.  Every kernel gives the same bits (tested), so the choice
    changes only the time.

    Raises ``ValueError`` for an unknown name or ``"numba"`` without numba installed.
    """
    if kernel == "auto":
        kernel = os.environ.get("SLIMCACHING_KERNEL", "")
        if not kernel:
            large = members is not None and members >= AUTO_COMPILED_MEMBERS
            kernel = "numba" if large and importlib.util.find_spec("numba") and _numba_kernels() else "numpy"
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be 'auto' or one of {', '.join(KERNELS)}, got {kernel!r}")
    if kernel == "numba" and _numba_kernels() is None:
        raise ValueError("kernel 'numba' needs numba (pip install 'slimcaching[fast]')")
    return kernel


def _max_ks_numpy(tau_ext: np.ndarray, idx: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> None:
    """``out[s] = max_k tau_ext[idx[k, s]]``: per block of rows, ``Kmax`` gathers and maxima in place."""
    K, S = idx.shape
    for a in range(0, S, _BLOCK):
        b = min(S, a + _BLOCK)
        o, t = out[a:b], tmp[: b - a]
        np.take(tau_ext, idx[0, a:b], out=o, mode="clip")
        for k in range(1, K):
            np.take(tau_ext, idx[k, a:b], out=t, mode="clip")
            np.maximum(o, t, out=o)


def _top2_ks_numpy(tau_ext: np.ndarray, idx: np.ndarray, m1: np.ndarray, m2: np.ndarray,
                   tmp: np.ndarray) -> None:
    """Largest and second largest member latency per row (with multiplicity; 0 for one member)."""
    K, S = idx.shape
    for a in range(0, S, _BLOCK):
        b = min(S, a + _BLOCK)
        o1, o2, t, lo = m1[a:b], m2[a:b], tmp[: b - a], np.empty(b - a)
        np.take(tau_ext, idx[0, a:b], out=o1, mode="clip")
        o2[:] = 0.0
        for k in range(1, K):
            np.take(tau_ext, idx[k, a:b], out=t, mode="clip")
            np.minimum(o1, t, out=lo)          # second max: max(m2, min(m1, v))
            np.maximum(o2, lo, out=o2)
            np.maximum(o1, t, out=o1)          # first max: max(m1, v)


def _set_max(instance: Instance, tau_ext: np.ndarray, out: np.ndarray, kernel: str, layout: str) -> None:
    if kernel == "numba":
        _numba_kernels()[f"max_{layout}"](tau_ext, _compact(instance, layout), out)
    elif layout == "sk":
        np.max(tau_ext[member_index(instance)], axis=1, out=out)
    else:
        _max_ks_numpy(tau_ext, member_index_ks(instance), out, _buffers(instance)[0])


def _buffers(instance: Instance) -> tuple[np.ndarray, np.ndarray]:
    """Two preallocated ``float64`` work vectors of one thread: ``(min(S, block),)`` and ``(S,)``."""
    local = _cached(instance, "_eval_buffers", threading.local)
    buf = getattr(local, "v", None)
    if buf is None:
        buf = (np.empty(min(instance.n_sets, _BLOCK)), np.empty(instance.n_sets))
        local.v = buf
    return buf


# ----------------------------------------------------------------- full evaluation
def tau(instance: Instance, x: np.ndarray, *, kernel: str = "numpy") -> np.ndarray:
    """``float64 (U, L, Emax)``: latency serving each ``(u, l, e)`` under ``x (N, L, Emax)``.

    Touches only the cached elements: ``O(U L Emax + U |x|)``.  ``kernel`` as
    in :func:`set_latency` (a minimum is exact: the same bits either way).
    """
    U, L, E = instance.U, instance.L, instance.max_experts
    out = np.repeat(instance.cloud_latency.reshape(-1), E).reshape(U, L * E)
    if resolve_kernel(kernel, set_members(instance)) == "numba":
        _numba_kernels()["tau_fill"](np.asarray(x, dtype=bool), instance.latency, out.reshape(U, L, E))
        return out.reshape(U, L, E)
    xs = np.asarray(x, dtype=bool).reshape(instance.N, L * E)
    for n in range(instance.N):
        c = np.flatnonzero(xs[n])
        if len(c):
            out[:, c] = np.minimum(out[:, c], instance.latency[:, n, c // E])
    return out.reshape(U, L, E)


def set_latency(instance: Instance, tau_arr: np.ndarray, *, kernel: str = "auto", layout: str = "auto",
                out: np.ndarray | None = None) -> np.ndarray:
    """``float64 (S,)``: ``max_{e in S} tau[u,l,e]`` for each routing row.

    Parameters
    ----------
    instance : Instance
    tau_arr : float64 (U, L, Emax)
    kernel : {"auto", "numpy", "numba"}
        ``auto``: the ``SLIMCACHING_KERNEL`` environment variable, else
        numpy.  Every kernel returns the same bits.
    layout : {"auto", "ks", "sk"}
        Member index ``(Kmax, S)`` with column-wise maxima, or the routing
        table's ``(S, Kmax)`` with row-wise maxima; ``auto``: ``ks`` for
        numpy, ``sk`` for numba (the faster of each).
    out : float64 (S,), optional
        Written in place and returned.
    """
    if layout not in LAYOUTS + ("auto",):
        raise ValueError(f"layout must be 'auto' or one of {', '.join(LAYOUTS)}, got {layout!r}")
    kernel = resolve_kernel(kernel, set_members(instance))
    if layout == "auto":
        layout = "sk" if kernel == "numba" else "ks"
    out = np.empty(instance.n_sets) if out is None else out
    if instance.n_sets == 0:
        return out
    tau_ext = np.empty(tau_arr.size + 1)
    tau_ext[:-1] = tau_arr.ravel()
    tau_ext[-1] = 0.0
    _set_max(instance, tau_ext, out, kernel, layout)
    return out


def empty_latency(instance: Instance) -> float:
    """``T(empty)``: the cloud-only latency."""
    return _cached(instance, "_empty_latency", lambda: latency(instance, instance.empty_placement()))


def latency(instance: Instance, placement: Placement | np.ndarray, *, kernel: str = "auto",
            layout: str = "auto") -> float:
    """``T(x)`` in seconds per token (``kernel`` and ``layout`` as in :func:`set_latency`)."""
    x = placement.x if isinstance(placement, Placement) else np.asarray(placement, dtype=bool)
    kernel = resolve_kernel(kernel, set_members(instance))
    out = _buffers(instance)[1]
    set_latency(instance, tau(instance, x, kernel=kernel), kernel=kernel, layout=layout, out=out)
    return weighted_sum(instance.coef, out)


@dataclass
class Evaluation:
    """What :func:`evaluate` reports about a placement."""

    latency: float
    empty_latency: float
    reduction: float
    feasible: bool
    storage_used: np.ndarray
    capacity: np.ndarray
    over_capacity: list[str] = field(default_factory=list)

    def to_dict(self, instance: Instance) -> dict:
        return {
            "latency": self.latency,
            "reduction": self.reduction,
            "empty_latency": self.empty_latency,
            "feasible": self.feasible,
            "storage_used": {n: int(v) for n, v in zip(instance.node_names, self.storage_used)},
            "capacity": {n: int(v) for n, v in zip(instance.node_names, self.capacity)},
            "over_capacity": self.over_capacity,
            "instance_hash": instance.content_hash(),
        }


def evaluate(instance: Instance, placement: Placement | np.ndarray) -> Evaluation:
    """Full evaluation: ``T(x)``, ``T(empty)``, ``R(x)``, storage use, feasibility."""
    p = placement if isinstance(placement, Placement) else Placement(placement)
    t = latency(instance, p)
    t0 = empty_latency(instance)
    used = p.storage_used(instance)
    over = [instance.node_names[n] for n in p.over_capacity(instance)]
    return Evaluation(latency=t, empty_latency=t0, reduction=t0 - t, feasible=not over,
                      storage_used=used, capacity=instance.capacity.copy(), over_capacity=over)


# ------------------------------------------------------------ incremental
def _unique_runs(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(key, return_inverse=True)`` for keys made of a few sorted runs (CSR rows of a
    few keys per move): a stable argsort (timsort) merges the runs instead of sorting afresh."""
    order = np.argsort(key, kind="stable")
    sk = key[order]
    flag = np.empty(len(sk), dtype=bool)
    flag[:1] = True
    np.not_equal(sk[1:], sk[:-1], out=flag[1:])
    inv = np.empty(len(sk), dtype=np.int64)
    inv[order] = np.cumsum(flag) - 1
    return sk[flag], inv


class IncrementalEvaluator:
    """A current placement with ``tau`` and per-set latencies kept up to date.

    Gains are reductions of ``T`` (positive is better).  Besides the latency
    ``m1[S] = max_{e in S} tau`` of every routing row it keeps the second
    largest member latency ``m2[S]`` (with multiplicity: ``m2 = m1`` when the
    maximum is attained twice; 0 for a single member).  Changing the latency
    of one member ``e`` of ``S`` from ``tau_e`` to ``v`` then gives the new
    set latency without looking at the other members:

    .. math::

        \\max_{f \\in S \\setminus e} \\tau_f = (m2 \\text{ if } \\tau_e = m1 \\text{ else } m1),\\qquad
        \\text{new} = \\max(\\max_{f \\ne e} \\tau_f,\\ v),

    and for a removal (``v >= tau_e``) simply ``max(m1, v)``.  A gain query
    for an expert in ``r`` routing rows is ``O(r)``, independent of ``Kmax``;
    an applied change recomputes ``m1``, ``m2`` of the rows it touches
    (``O(r Kmax)``).

    Parameters
    ----------
    instance : Instance
    placement : Placement, optional
        Starting placement (copied); empty by default.
    kernel : {"auto", "numpy", "numba"}
        Kernel of the initial full pass (:func:`set_latency`); the same bits either way.

    Attributes
    ----------
    x : bool (N, L, Emax)      current placement (do not modify directly).
    tau : float64 (U, L, Emax) current serving latencies (a view of ``tau_flat``).
    setlat : float64 (S,)      current per-set latency ``m1``.
    setlat2 : float64 (S,)     second largest member latency ``m2``.
    used : int64 (N,)          storage used per node.
    """

    def __init__(self, instance: Instance, placement: Placement | None = None, *, kernel: str = "auto"):
        self.instance = instance
        self.kernel = resolve_kernel(kernel, set_members(instance))
        self.x = (placement.x.copy() if placement is not None
                  else np.zeros((instance.N, instance.L, instance.max_experts), dtype=bool))
        self._flat = member_index(instance)
        ent = _entries(instance)
        self._ptr, self._rows, self._cols, self._users, self._ecoef = ent.ptr, ent.rows, ent.cols, ent.users, ent.coef
        self._by_key = ent.by_key
        self._coef = instance.coef
        self._lat = instance.latency
        self._latT = np.ascontiguousarray(np.transpose(instance.latency, (1, 2, 0)))  # (N, L, U)
        self._cloud = instance.cloud_latency
        self._E = instance.max_experts
        self._K = self._flat.shape[1] if instance.n_sets else 0
        self._zeros = np.zeros(int(np.diff(self._ptr).max()) if len(self._ptr) > 1 else 0)
        self._rows_by_layer: dict[int, np.ndarray] = {}  # layer -> its routing rows, filled on demand
        self.tau_flat = np.append(tau(instance, self.x, kernel=self.kernel).ravel(), 0.0)
        self.tau = self.tau_flat[:-1].reshape(instance.U, instance.L, instance.max_experts)
        S = instance.n_sets
        self.setlat, self.setlat2 = np.empty(S), np.empty(S)
        if S:
            if self.kernel == "numba":
                _numba_kernels()["top2_sk"](self.tau_flat, _compact(instance, "sk"), self.setlat, self.setlat2)
            else:
                _top2_ks_numpy(self.tau_flat, member_index_ks(instance), self.setlat, self.setlat2,
                               _buffers(instance)[0])
        self.used = Placement(self.x).storage_used(instance)
        self.empty_latency = empty_latency(instance)

    # -- state
    @property
    def latency(self) -> float:
        return weighted_sum(self._coef, self.setlat)

    @property
    def reduction(self) -> float:
        return self.empty_latency - self.latency

    def placement(self) -> Placement:
        return Placement(self.x.copy())

    def fits(self, n: int, l: int, free: int = 0) -> bool:
        """Whether one more layer-``l`` expert fits on node ``n`` (after freeing ``free`` units)."""
        inst = self.instance
        return bool(self.used[n] - free + inst.expert_size[l] <= inst.capacity[n])

    def rows_of(self, l: int, e: int) -> tuple[np.ndarray, np.ndarray]:
        """Routing rows containing expert ``e`` of layer ``l`` and its column in each."""
        k = l * self._E + e
        a, b = self._ptr[k], self._ptr[k + 1]
        return self._rows[a:b], self._cols[a:b]

    def _entries_of(self, el: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For elements ``el (k, 3)``: every CSR entry of each element's ``(l, e)`` as flat
        arrays ``owner`` (index into ``el``) and ``entry`` (index into the CSR arrays)."""
        keys = el[:, 1] * self._E + el[:, 2]
        starts = self._ptr[keys]
        counts = self._ptr[keys + 1] - starts
        owner = np.repeat(np.arange(len(el)), counts)
        entry = np.arange(len(owner)) + np.repeat(starts - (np.cumsum(counts) - counts), counts)
        return owner, entry

    def _top2(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``m1``, ``m2`` of ``rows`` recomputed from ``tau``."""
        memb = self.tau_flat[self._flat[rows]]
        if self._K == 1:
            return memb[:, 0].copy(), np.zeros(len(rows))
        part = np.partition(memb, self._K - 2, axis=1)
        return part[:, -1].copy(), part[:, self._K - 2].copy()

    # -- single-element gain (hot path)
    def gain(self, n: int, l: int, e: int) -> float:
        """Increase of ``R`` from adding ``(n, l, e)`` (0 if already cached).

        ``O(r)`` for an expert in ``r`` routing rows, with no look at the other
        members of a row: a row gains only if ``e`` is its slowest member, and
        then down to the second slowest, so per row (user ``u``)

        .. math:: w_u p_S \\max\\bigl(0,\\ \\tau_e - \\max(m_2, t_{u,n,l})\\bigr)

        (if ``tau_e < m1`` then ``tau_e <= m2`` and the term is 0; if
        ``t[u,n,l] >= tau_e`` it is 0 too).
        """
        if self.x[n, l, e]:
            return 0.0
        views = self._by_key[l * self._E + e]
        if views is None:
            return 0.0
        rows, users, coef, slot = views
        te = self.tau_flat[slot]
        m2 = self.setlat2[rows]
        np.maximum(m2, self._latT[n, l][users], out=m2)
        np.subtract(te, m2, out=te)
        np.maximum(te, self._zeros[: len(te)], out=te)
        return float(np.dot(coef, te)) if len(te) <= _SHORT_DOT else weighted_sum(coef, te)

    def _chunked(self, elements: np.ndarray, one) -> np.ndarray:
        """``one(el)`` over consecutive chunks of ``elements`` holding at most
        :data:`_ENTRY_CHUNK` set members each, concatenated: bounded memory at any size."""
        el = np.asarray(elements, dtype=np.int64).reshape(-1, 3)
        keys = el[:, 1] * self._E + el[:, 2]
        csum = np.cumsum(self._ptr[keys + 1] - self._ptr[keys])
        if len(el) == 0 or csum[-1] <= _ENTRY_CHUNK:
            return one(el)
        cuts = np.searchsorted(csum, np.arange(_ENTRY_CHUNK, int(csum[-1]), _ENTRY_CHUNK), side="right")
        bounds = np.unique(np.concatenate([[0], np.maximum(cuts, 1), [len(el)]]))
        return np.concatenate([one(el[a:b]) for a, b in zip(bounds[:-1], bounds[1:])])

    def gains(self, elements: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`gain` for ``elements int (k, 3)`` of ``(n, l, e)``; ``float64 (k,)``.

        Memory ``O(min(total members, chunk))``: elements are taken in chunks
        of at most :data:`_ENTRY_CHUNK` set members.
        """
        return self._chunked(elements, self._gains)

    def _gains(self, el: np.ndarray) -> np.ndarray:
        k = len(el)
        owner, entry = self._entries_of(el)
        if len(entry) == 0:
            return np.zeros(k)
        users = self._users[entry]
        n, l, e = el[owner, 0], el[owner, 1], el[owner, 2]
        d = self.tau[users, l, e]
        d -= np.maximum(self.setlat2[self._rows[entry]], self._lat[users, n, l])
        np.maximum(d, 0.0, out=d)
        d *= self._ecoef[entry]
        out = np.bincount(owner, weights=d, minlength=k)
        out[self.x[el[:, 0], el[:, 1], el[:, 2]]] = 0.0
        return out

    def losses(self, elements: np.ndarray) -> np.ndarray:
        """Decrease of ``R`` from evicting each ``(n, l, e)`` of ``elements int (k, 3)`` on its
        own; ``float64 (k,)``, ``>= 0`` (0 for elements not cached).  Chunked as :meth:`gains`."""
        return self._chunked(elements, self._losses)

    def _losses(self, el: np.ndarray) -> np.ndarray:
        k = len(el)
        owner, entry = self._entries_of(el)
        if len(entry) == 0:
            return np.zeros(k)
        # per element: tau[:, l, e] without node n, one (U,) column each
        xs = self.x[:, el[:, 1], el[:, 2]].T.copy()                # (k, N)
        xs[np.arange(k), el[:, 0]] = False
        lat = np.transpose(self._lat[:, :, el[:, 1]], (2, 0, 1))    # (k, U, N)
        via = np.where(xs[:, None, :], lat, np.inf).min(axis=2)     # (k, U)
        newcol = np.minimum(self._cloud[:, el[:, 1]].T, via)        # (k, U)
        rows = self._rows[entry]
        m1 = self.setlat[rows]
        diff = self._ecoef[entry] * (np.maximum(m1, newcol[owner, self._users[entry]]) - m1)
        out = np.bincount(owner, weights=diff, minlength=k)
        out[~self.x[el[:, 0], el[:, 1], el[:, 2]]] = 0.0
        return out

    # -- general moves
    def _changed(self, add: Iterable[Sequence[int]], remove: Iterable[Sequence[int]]):
        """A batch of additions / removals as arrays: the touched keys ``(ls, es) (k,)``,
        their new node indicators ``(k, N)``, new ``tau`` columns ``(k, U)`` and slots in
        ``tau_flat`` ``(k, U)``, the removed and added elements, and the affected rows.

        Vectorised over the keys (one ``np.where``/``min`` over ``(N, k, U)``), so a move of
        many elements costs a few numpy calls, not a few per element.
        """
        rem = np.asarray(list(remove), dtype=np.int64).reshape(-1, 3)
        add = np.asarray(list(add), dtype=np.int64).reshape(-1, 3)
        both = np.concatenate([rem, add])
        E = self._E
        keys, inv = np.unique(both[:, 1] * E + both[:, 2], return_inverse=True)
        ls, es = keys // E, keys % E
        cols = self.x[:, ls, es].T.copy()                                     # (k, N)
        cols[inv[: len(rem)], rem[:, 0]] = False                              # removals first,
        cols[inv[len(rem):], add[:, 0]] = True                                # then additions
        via = np.where(cols.T[:, :, None], self._latT[:, ls, :], np.inf).min(axis=0, initial=np.inf)
        newcol = np.minimum(self._cloud[:, ls].T, via)                        # (k, U)
        U = self.tau.shape[0]
        slots = np.arange(U)[None, :] * (self.tau.shape[1] * E) + keys[:, None]
        starts = self._ptr[keys]
        counts = self._ptr[keys + 1] - starts
        if len(keys) == 1:
            rows = self._rows[starts[0]:starts[0] + counts[0]]
        else:
            idx = np.arange(int(counts.sum())) + np.repeat(starts - (np.cumsum(counts) - counts), counts)
            rows = np.sort(self._rows[idx])                                   # sorted and deduplicated:
            if len(rows):                                                     # cheaper than np.unique here
                rows = rows[np.concatenate(([True], rows[1:] != rows[:-1]))]
        return ls, es, cols, newcol, slots, rem, add, rows

    def gain_of(self, add: Iterable[Sequence[int]] = (), remove: Iterable[Sequence[int]] = ()) -> float:
        """Increase of ``R`` (may be negative) if ``add`` and ``remove`` were applied together."""
        _, _, _, newcol, slots, _, _, rows = self._changed(add, remove)
        if len(rows) == 0:
            return 0.0
        old = self.tau_flat[slots]
        self.tau_flat[slots] = newcol
        newlat = self.tau_flat[self._flat[rows]].max(axis=1)
        self.tau_flat[slots] = old
        return weighted_sum(self._coef[rows], self.setlat[rows] - newlat)

    def gains_of_many(self, move: np.ndarray, elements: np.ndarray, added: np.ndarray) -> np.ndarray:
        """:meth:`gain_of` of many independent moves at once, each from the current placement.

        Parameters
        ----------
        move : int (c,)
            Move index of each change, non-decreasing, in ``0..k-1``.
        elements : int (c, 3)
            The changed elements ``(n, l, e)``.
        added : bool (c,)
            True for an addition, False for a removal (a move's removals are
            applied before its additions, as in :meth:`gain_of`).

        Returns
        -------
        float64 (k,)
            The increase of ``R`` of each move, equal to :meth:`gain_of` up to the
            order of floating-point summation.

        Notes
        -----
        Per move, the new ``tau`` column of each touched key is computed from
        its node indicators, and every routing row holding a touched key is
        re-maximised with those columns in place: the work is the moves' rows
        times ``Kmax``, in chunks of about :data:`_ENTRY_CHUNK` set members.
        """
        move = np.asarray(move, dtype=np.int64).ravel()
        el = np.asarray(elements, dtype=np.int64).reshape(-1, 3)
        added = np.asarray(added, dtype=bool).ravel()
        k = int(move[-1]) + 1 if len(move) else 0
        out = np.zeros(k)
        if k == 0:
            return out
        if np.any(np.diff(move) < 0):
            raise ValueError("gains_of_many: move indices must be non-decreasing")
        keys = el[:, 1] * self._E + el[:, 2]
        per_move = np.bincount(move, weights=self._ptr[keys + 1] - self._ptr[keys], minlength=k)
        csum = np.cumsum(per_move * max(self._K, 1))
        cuts = np.searchsorted(csum, np.arange(_ENTRY_CHUNK, csum[-1], _ENTRY_CHUNK), side="right")
        bounds = np.unique(np.concatenate([[0], np.maximum(cuts, 1), [k]]))
        starts = np.searchsorted(move, bounds)
        for a, b in zip(starts[:-1], starts[1:]):
            if b > a:
                m0 = int(move[a])
                out[m0:int(move[b - 1]) + 1] = self._gains_of_many(move[a:b] - m0, el[a:b], added[a:b])
        return out

    def _gains_of_many(self, move: np.ndarray, el: np.ndarray, added: np.ndarray) -> np.ndarray:
        k = int(move[-1]) + 1
        E = self._E
        keys = el[:, 1] * E + el[:, 2]
        mk, pinv = np.unique(move * (self.instance.L * E) + keys, return_inverse=True)   # (move, key) pairs
        pinv = pinv.ravel()
        pmove, pkey = mk // (self.instance.L * E), mk % (self.instance.L * E)
        pl, pe = pkey // E, pkey % E
        cols = self.x[:, pl, pe].T.copy()                                             # (P, N)
        rem = ~added
        cols[pinv[rem], el[rem, 0]] = False
        cols[pinv[added], el[added, 0]] = True
        via = np.where(cols.T[:, :, None], self._latT[:, pl, :], np.inf).min(axis=0, initial=np.inf)
        newcol = np.minimum(self._cloud[:, pl].T, via)                                # (P, U)
        # every CSR entry of every pair: (pair, row, column in row, user)
        starts = self._ptr[pkey]
        counts = self._ptr[pkey + 1] - starts
        owner = np.repeat(np.arange(len(mk)), counts)
        entry = np.arange(len(owner)) + np.repeat(starts - (np.cumsum(counts) - counts), counts)
        if len(entry) == 0:
            return np.zeros(k)
        S = max(self.instance.n_sets, 1)
        mr, rinv = _unique_runs(pmove[owner] * S + self._rows[entry])                  # (move, row) pairs
        rmove, rrow = mr // S, mr % S
        memb = self.tau_flat[member_index_ks(self.instance)[:, rrow]]                 # (Kmax, R)
        memb[self._cols[entry], rinv] = newcol[owner, self._users[entry]]
        diff = self._coef[rrow] * (self.setlat[rrow] - memb.max(axis=0))              # column-wise maxima
        return np.bincount(rmove, weights=diff, minlength=k)

    def _layer_rows(self, l: int) -> np.ndarray:
        """Routing rows of layer ``l`` (all users), cached per evaluator."""
        if l not in self._rows_by_layer:
            self._rows_by_layer[l] = np.nonzero(self.instance.set_layer == l)[0]
        return self._rows_by_layer[l]

    def key_columns(self, l: int, cols: np.ndarray) -> np.ndarray:
        """``tau[:, l, e]`` for node indicators ``cols bool (P, N)`` of a layer-``l`` expert: ``(P, U)``."""
        cols = np.asarray(cols, dtype=bool).reshape(-1, self.instance.N)
        via = np.where(cols[:, :, None], self._latT[:, l, :][None], np.inf).min(axis=1, initial=np.inf)
        return np.minimum(self._cloud[:, l][None], via)

    def key_gains(self, l: int, e: np.ndarray, new: np.ndarray) -> np.ndarray:
        """Increase of ``R`` when the serving latencies ``tau[:, l, e[p]]`` become ``new[p]``
        (``float (P, U)``, e.g. :meth:`key_columns` of a new node set), the rest unchanged;
        one value per ``p``.

        A change of one key alters ``tau[u, l, e]`` only.  On a row ``S`` holding
        ``e`` the other members' maximum is ``m2[S]`` if ``tau_e = m1[S]`` and
        ``m1[S]`` otherwise (the top-two bookkeeping of this class), so the new
        set latency is ``max(that, tau'_e)`` without reading the row: ``O(r)``
        per change for ``r`` rows holding ``e``, where :meth:`gains_of_many`
        re-maximises every row.  Equal to :meth:`gain_of` of the same change up
        to the order of floating-point summation.
        """
        e = np.asarray(e, dtype=np.int64).ravel()
        P = len(e)
        if P == 0:
            return np.zeros(0)
        keys = l * self._E + e
        starts = self._ptr[keys]
        counts = self._ptr[keys + 1] - starts
        owner = np.repeat(np.arange(P), counts)
        entry = np.arange(len(owner)) + np.repeat(starts - (np.cumsum(counts) - counts), counts)
        if len(entry) == 0:
            return np.zeros(P)
        rows, users = self._rows[entry], self._users[entry]
        m1 = self.setlat[rows]
        rest = np.where(self.tau[users, l, e[owner]] >= m1, self.setlat2[rows], m1)
        diff = self._ecoef[entry] * (m1 - np.maximum(rest, new[owner, users]))
        return np.bincount(owner, weights=diff, minlength=P)

    def pair_interactions(self, l: int, ea: np.ndarray, ta: np.ndarray, eb: np.ndarray,
                          tb: np.ndarray) -> np.ndarray:
        """Non-additive part of two single-key changes in one layer, for many pairs at once.

        Pair ``p`` sets the serving latencies of expert ``ea[p]`` of layer ``l``
        to ``ta[p]`` and those of expert ``eb[p] != ea[p]`` to ``tb[p]``
        (``float (P, U)`` each, e.g. :meth:`key_columns` of new node sets).  Let ``g_a``, ``g_b`` be the increases of ``R``
        of each change alone and ``g_ab`` of both together, all from the
        current placement.  Returns ``g_ab - g_a - g_b`` per pair.

        Proof.  A change of key ``(l, e)`` alters ``tau[:, l, e]`` only, hence
        only the set latencies of the routing rows holding ``e``.  On a row
        holding ``ea`` but not ``eb`` the joint change equals the change of
        ``ea`` alone, and symmetrically; rows holding neither do not change.
        So ``g_ab - g_a - g_b`` is the sum over the rows holding both of
        ``w p (m1 - M_ab) - w p (m1 - M_a) - w p (m1 - M_b)
        = w p (M_a + M_b - m1 - M_ab)``, with ``M`` the row's new maximum under
        each change.  Only those rows are read: found per row of layer ``l``
        from its ``K (K - 1) / 2`` member pairs, ``O(rows_l K^2)`` plus
        ``O(K)`` per (pair, shared row).

        Returns
        -------
        float64 (P,)
            Equal to ``gain_of(both) - gain_of(a) - gain_of(b)`` up to the
            order of floating-point summation.
        """
        inst, E = self.instance, self._E
        ea = np.asarray(ea, dtype=np.int64).ravel()
        eb = np.asarray(eb, dtype=np.int64).ravel()
        P = len(ea)
        out = np.zeros(P)
        if P == 0 or self._K < 2:
            return out
        rows_l = self._layer_rows(l)
        se = inst.set_experts[rows_l]                                          # (R, K)
        gkey = np.minimum(ea, eb) * E + np.maximum(ea, eb)                     # unordered expert pair
        ukeys, ginv = np.unique(gkey, return_inverse=True)
        gid = np.full(E * E, -1, dtype=np.int64)
        gid[ukeys] = np.arange(len(ukeys))
        ci, cj = np.triu_indices(se.shape[1], 1)
        A, B = se[:, ci], se[:, cj]
        ok = (A >= 0) & (B >= 0)
        g = np.where(ok, gid[np.where(ok, np.minimum(A, B) * E + np.maximum(A, B), 0)], -1)
        r_idx, c_idx = np.nonzero(g >= 0)
        if len(r_idx) == 0:
            return out
        grp = g[r_idx, c_idx]
        order = np.argsort(ginv, kind="stable")                                # pairs grouped by expert pair
        gcount = np.bincount(ginv, minlength=len(ukeys))
        gstart = np.cumsum(gcount) - gcount
        cnt = gcount[grp]
        first = np.repeat(gstart[grp], cnt)
        within = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        pair = order[first + within]                                           # (I,) incidences (pair, row)
        row = np.repeat(rows_l[r_idx], cnt)
        users = inst.set_user[row]
        memb = self.tau_flat[self._flat[row]]                                  # (I, K)
        members = inst.set_experts[row]
        is_a = members == ea[pair][:, None]
        is_b = members == eb[pair][:, None]
        rest = np.where(is_a | is_b, 0.0, memb).max(axis=1)                   # the other members (latencies > 0)
        old_a, old_b = self.tau[users, l, ea[pair]], self.tau[users, l, eb[pair]]
        va, vb = ta[pair, users], tb[pair, users]
        m_a = np.maximum(rest, np.maximum(va, old_b))
        m_b = np.maximum(rest, np.maximum(old_a, vb))
        m_ab = np.maximum(rest, np.maximum(va, vb))
        w = self._coef[row] * ((m_a - self.setlat[row]) + (m_b - m_ab))  # exact 0 where they do not interact
        return np.bincount(pair, weights=w, minlength=P)

    def apply(self, add: Iterable[Sequence[int]] = (), remove: Iterable[Sequence[int]] = ()) -> float:
        """Apply the move; returns its gain in ``R``."""
        ls, es, cols, newcol, slots, rem, add, rows = self._changed(add, remove)
        self.tau_flat[slots] = newcol
        self.x[:, ls, es] = cols.T
        size = self.instance.expert_size
        np.subtract.at(self.used, rem[:, 0], size[rem[:, 1]])
        np.add.at(self.used, add[:, 0], size[add[:, 1]])
        if len(rows) == 0:
            return 0.0
        m1, m2 = self._top2(rows)
        g = weighted_sum(self._coef[rows], self.setlat[rows] - m1)
        self.setlat[rows] = m1
        self.setlat2[rows] = m2
        return g

    def add(self, n: int, l: int, e: int) -> float:
        """Cache ``(n, l, e)``; returns the gain in ``R``."""
        if self.x[n, l, e]:
            return 0.0
        return self.apply(add=[(n, l, e)])

    def remove(self, n: int, l: int, e: int) -> float:
        """Evict ``(n, l, e)``; returns the (non-positive) change in ``R``."""
        if not self.x[n, l, e]:
            return 0.0
        return self.apply(remove=[(n, l, e)])
