"""Learned gating: a softmax gate trained on per-query validation data, and the quality of a restricted gate.

Data (``docs/moe2.md``, "Learned gating").  Category ``k`` has ``Q_k``
validation queries with features ``x_q`` (``F`` numbers) and the loss
``l_{q,i}`` of every expert ``i`` on each (or its correctness ``c_{q,i}`` in
``[0, 1]``, read as the loss ``1 - c_{q,i}``), plus the loss ``l_empty_k`` of
serving a query with no expert.

Gate.  Logits ``z_q = W x_q + b`` (``W``: ``M x F``, ``b``: ``M``); the gate
on a subset ``S`` is the softmax renormalised over ``S``::

    g^S_i(x) = exp(z_i) / sum_{j in S} exp(z_j)          (i in S; 0 outside)

It is trained once, on the full expert set, by soft-label multinomial
logistic regression (:func:`train_gate`): the targets are
``t^S_{q,i} = softmax_{i in S}(-l_{q,i} / tau)`` and the objective, convex with
a unique minimiser, is::

    J_S(W, b) = (1/Q) sum_q sum_{i in S} -t^S_{q,i} log g^S_i(x_q) + (mu/2) (|W_S|^2 + |b_S|^2)

Quality.  With ``R_q(S)`` the experts that run on query ``q`` (all of ``S``,
or with a per-query ``top_k`` the ``top_k`` experts of ``S`` of largest
logit, ties to the lower id) and the gate renormalised over them::

    L_k(S) = (1/Q_k) sum_q sum_{i in R_q(S)} g^{R_q(S)}_i(x_q) l_{q,i},   L_k(empty) = l_empty_k
    q_k(S) = l_empty_k - L_k(S)

so ``q_k(empty) = 0`` and, for correctness data, ``q_k(S)`` is the expected
accuracy.  ``q_k`` is *not* monotone in general (an expert the gate trusts
on queries it gets wrong dilutes the mixture), so DMO bounds a box by
:meth:`GatedMixtureQuality.upper`, never by ``q_k(hi)``.

The optimality-preserving property -- "``(W, b)`` trained on all experts,
restricted to ``S``, is what training on ``S`` alone gives" -- is tested by
:func:`restriction_gap`; ``docs/moe2.md`` reports where it holds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..validation import Collector, is_int, readonly
from .bits import bit_matrix
from .quality import QualityModel, _number_matrix

__all__ = ["GatedMixtureQuality", "GateFit", "train_gate", "gate_objective", "restricted_gate",
           "gated_from_dict", "retrained_quality", "restriction_gap", "BOUND_MARGIN"]

BOUND_MARGIN = 1e-11
"""Relative slack added to the box bound so that rounding never puts it below a value it covers."""

_CHUNK = 1 << 22  # float64 entries per vectorised (masks x queries x experts) block


# ------------------------------------------------------------------ training
@dataclass
class GateFit:
    """A trained gate on the experts ``experts`` (ids, ascending).

    Attributes
    ----------
    weights : float64 (n, F)    rows of ``W`` for ``experts``.
    bias : float64 (n,)
    objective : float           ``J_S`` at the solution.
    grad_norm : float           max-norm of the gradient at the solution.
    iterations : int            Newton steps.
    """

    experts: list[int]
    weights: np.ndarray
    bias: np.ndarray
    objective: float
    grad_norm: float
    iterations: int


def _log_softmax(z: np.ndarray) -> np.ndarray:
    m = z.max(axis=1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))


def soft_targets(losses: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(-losses / tau)`` row-wise: the soft label of each query over the given experts."""
    return np.exp(_log_softmax(-np.asarray(losses, dtype=np.float64) / temperature))


def gate_objective(X: np.ndarray, T: np.ndarray, W: np.ndarray, b: np.ndarray, l2: float) -> float:
    """``J`` of :mod:`slimcaching.moe2.gating` for features ``X (Q, F)``, targets ``T (Q, n)``, gate ``(W, b)``."""
    logp = _log_softmax(X @ W.T + b)
    return float(-(T * logp).sum() / len(X) + 0.5 * l2 * (np.sum(W * W) + np.sum(b * b)))


def train_gate(X: np.ndarray, losses: np.ndarray, *, temperature: float, l2: float,
               experts: list[int] | None = None, tol: float = 1e-10, max_iter: int = 100) -> GateFit:
    """The minimiser of the soft-label cross-entropy ``J_S`` (see the module) by Newton's method.

    Parameters
    ----------
    X : float64 (Q, F)            features of every training query.
    losses : float64 (Q, M)       per-query loss of every expert.
    temperature : float           ``tau > 0`` of the soft targets.
    l2 : float                    ``mu > 0``: ridge on ``W`` and ``b`` (makes the minimiser unique).
    experts : list of int, optional
        ``S``; all ``M`` experts when omitted.
    tol : float                   stop when the gradient's max-norm is below this.

    Returns
    -------
    GateFit

    Notes
    -----
    ``J_S`` is strictly convex (cross-entropy of a softmax of an affine map,
    plus a ridge), so the minimiser is unique and Newton's method with an
    Armijo line search converges to it from ``W = 0, b = 0``, quadratically
    near the end.  One step costs ``O(Q n^2 (F+1)^2)`` for the Hessian and
    ``O(n^3 (F+1)^3)`` for the solve; ``n (F+1)`` is a few hundred here.
    Deterministic: no random start, no sampling.

    References
    ----------
    .. [1] J. Nocedal, S. J. Wright, "Numerical Optimization", 2nd ed.,
       Springer, 2006, ch. 3 (line search Newton).
    """
    X = np.asarray(X, dtype=np.float64)
    S = list(range(losses.shape[1])) if experts is None else sorted(int(i) for i in experts)
    T = soft_targets(np.asarray(losses, dtype=np.float64)[:, S], temperature)
    Q, F = X.shape
    n, d = len(S), F + 1
    Xt = np.hstack([X, np.ones((Q, 1))])
    theta = np.zeros((n, d))

    def parts(th: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        logp = _log_softmax(Xt @ th.T)
        val = -(T * logp).sum() / Q + 0.5 * l2 * np.sum(th * th)
        p = np.exp(logp)
        grad = (p - T).T @ Xt / Q + l2 * th
        return float(val), grad, p

    val, grad, p = parts(theta)
    it = 0
    while it < max_iter and np.abs(grad).max() > tol:
        it += 1
        # Hessian: (1/Q) sum_q (diag(p_q) - p_q p_q^T) (x) x_q x_q^T + mu I
        diag = np.einsum("qi,qa,qb->iab", p, Xt, Xt) / Q
        Z = (p[:, :, None] * Xt[:, None, :]).reshape(Q, n * d)
        H = -(Z.T @ Z) / Q
        for i in range(n):
            H[i * d:(i + 1) * d, i * d:(i + 1) * d] += diag[i]
        H[np.diag_indices_from(H)] += l2
        step = np.linalg.solve(H, -grad.reshape(-1)).reshape(n, d)
        slope = float(np.sum(grad * step))
        t = 1.0
        while True:
            new_val, new_grad, new_p = parts(theta + t * step)
            if new_val <= val + 1e-4 * t * slope or t < 1e-10:
                break
            t *= 0.5
        if new_val > val:  # no descent left at machine precision
            break
        theta, val, grad, p = theta + t * step, new_val, new_grad, new_p
    return GateFit(experts=S, weights=theta[:, :F].copy(), bias=theta[:, F].copy(), objective=val,
                   grad_norm=float(np.abs(grad).max()), iterations=it)


def restricted_gate(W: np.ndarray, b: np.ndarray, x: np.ndarray, S: list[int]) -> np.ndarray:
    """``float64 (Q, M)``: ``g^S(x)`` for every query row of ``x``; zero outside ``S`` (the formula, no shortcuts)."""
    z = np.atleast_2d(x) @ W.T + b
    out = np.zeros_like(z)
    if S:
        zs = z[:, S]
        e = np.exp(zs - zs.max(axis=1, keepdims=True))
        out[:, S] = e / e.sum(axis=1, keepdims=True)
    return out


# ------------------------------------------------------------------ the quality model
class GatedMixtureQuality(QualityModel):
    """``q_k(S) = l_empty_k - L_k(S)``: the loss reduction of the restricted gate's mixture (see the module).

    Parameters
    ----------
    features : list of float64 (Q_k, F)   validation features per category.
    losses : list of float64 (Q_k, M)     per-query loss of every expert.
    empty_loss : float64 (C,)             ``l_empty_k``.
    weights : float64 (M, F), bias : float64 (M,)
        The gate trained on all experts (:meth:`train` computes them).
    temperature, l2 : float               training settings (recorded, used by retraining).
    top_k : int or None                   experts run per query (``None``: all of ``S``).
    target : {"loss", "correctness"}      how the file states the data (correctness ``c = 1 - l``).

    Notes
    -----
    One evaluation costs ``O(Q_k M)`` (``O(Q_k M log M)`` with ``top_k``).
    ``monotone`` is ``False``: not proven, and false on many data sets.
    """

    kind = "gated-mixture"

    def __init__(self, features: list[np.ndarray], losses: list[np.ndarray], empty_loss: np.ndarray,
                 weights: np.ndarray, bias: np.ndarray, *, temperature: float, l2: float,
                 top_k: int | None = None, target: str = "loss"):
        self.features = [readonly(x, np.float64) for x in features]
        self.losses = [readonly(x, np.float64) for x in losses]
        self.empty_loss = readonly(empty_loss, np.float64)
        self.weights = readonly(weights, np.float64)
        self.bias = readonly(bias, np.float64)
        self.temperature, self.l2 = float(temperature), float(l2)
        self.top_k = None if top_k is None else int(top_k)
        self.target = target
        self.C = len(self.features)
        self.M = self.weights.shape[0]
        self.F = self.weights.shape[1]
        if self.bias.shape != (self.M,) or self.empty_loss.shape != (self.C,) or len(self.losses) != self.C:
            raise ValueError("gated-mixture arrays do not match: weights (M, F), bias (M,), empty_loss (C,)")
        for x, l in zip(self.features, self.losses):
            if x.ndim != 2 or x.shape[1] != self.F or l.shape != (x.shape[0], self.M):
                raise ValueError(f"category data do not match: features {x.shape}, losses {l.shape}, "
                                 f"M = {self.M}, F = {self.F}")
        self.logits = [readonly(x @ self.weights.T + self.bias) for x in self.features]
        self.utility = [readonly(self.empty_loss[k] - self.losses[k]) for k in range(self.C)]

    @classmethod
    def train(cls, features: list[np.ndarray], losses: list[np.ndarray], empty_loss: np.ndarray, *,
              temperature: float, l2: float, top_k: int | None = None, target: str = "loss") -> "GatedMixtureQuality":
        """Train the gate on the validation queries of every category (all experts), then build the model."""
        fit = train_gate(np.vstack(features), np.vstack(losses), temperature=temperature, l2=l2)
        return cls(features, losses, empty_loss, fit.weights, fit.bias, temperature=temperature, l2=l2,
                   top_k=top_k, target=target)

    def with_gate(self, weights: np.ndarray, bias: np.ndarray, top_k: int | None | str = "same") -> "GatedMixtureQuality":
        """The same data with another gate (and optionally another ``top_k``)."""
        return GatedMixtureQuality(self.features, self.losses, self.empty_loss, weights, bias,
                                   temperature=self.temperature, l2=self.l2,
                                   top_k=self.top_k if top_k == "same" else top_k, target=self.target)

    @property
    def routes_per_query(self) -> bool:
        return self.top_k is not None

    # -------------------------------------------------------------- evaluation
    def _routes(self, k: int, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For masks ``bits (n, M)``: ``(weights (n, Q, M), run (n, Q, M) bool)`` of category ``k``.

        ``run`` marks ``R_q(S)``; ``weights`` is the gate renormalised over it.
        """
        z = self.logits[k]
        zm = np.where(bits[:, None, :], z[None, :, :], -np.inf)
        run = np.broadcast_to(bits[:, None, :], zm.shape)
        if self.top_k is not None and self.top_k < self.M:
            order = np.argsort(-zm, axis=2, kind="stable")  # ties: lower id first
            rank = np.empty_like(order)
            np.put_along_axis(rank, order, np.arange(self.M)[None, None, :], axis=2)
            run = run & (rank < self.top_k)
            zm = np.where(run, zm, -np.inf)
        m = zm.max(axis=2, keepdims=True)
        m = np.where(np.isfinite(m), m, 0.0)
        w = np.exp(zm - m)
        s = w.sum(axis=2, keepdims=True)
        w = np.divide(w, s, out=np.zeros_like(w), where=s > 0)
        return w, np.asarray(run)

    def _batches(self, k: int, masks: np.ndarray):
        masks = np.asarray(masks, dtype=np.int64).reshape(-1)
        step = max(1, _CHUNK // max(1, self.losses[k].size))
        for s in range(0, len(masks), step):
            yield s, masks[s:s + step], bit_matrix(masks[s:s + step], self.M)

    def values(self, k: int, masks: np.ndarray) -> np.ndarray:
        masks = np.asarray(masks, dtype=np.int64).reshape(-1)
        out = np.zeros(len(masks))
        for s, chunk, bits in self._batches(k, masks):
            w, _ = self._routes(k, bits)
            loss = (w * self.losses[k][None]).sum(axis=2).sum(axis=1) / self.losses[k].shape[0]
            out[s:s + len(chunk)] = np.where(chunk == 0, 0.0, self.empty_loss[k] - loss)
        return out

    def usage(self, k: int, masks: np.ndarray) -> np.ndarray:
        """``float64 (n, M)``: the share of category ``k``'s validation queries on which each expert runs."""
        masks = np.asarray(masks, dtype=np.int64).reshape(-1)
        if self.top_k is None:
            return super().usage(k, masks)
        out = np.zeros((len(masks), self.M))
        for s, chunk, bits in self._batches(k, masks):
            _, run = self._routes(k, bits)
            out[s:s + len(chunk)] = run.mean(axis=1)
        return out

    def runs(self, k: int, mask: int) -> np.ndarray:
        """``bool (Q_k, M)``: the experts that run on each validation query of category ``k`` (``R_q(S)``)."""
        _, run = self._routes(k, bit_matrix(np.array([mask]), self.M))
        return np.array(run[0])

    def upper(self, k: int, lo: int, hi: int) -> float:
        """A bound on ``max { q_k(T) : lo <= T <= hi }`` from the best ``T`` of each query separately.

        ``sum_q max_T r_q(T) >= max_T sum_q r_q(T)`` for the per-query value
        ``r_q(T) = l_empty - (loss of the mixture on q)`` (``r_q(empty) = 0``).
        *Dense gate* (``top_k`` is ``None`` or at least ``|hi|``): ``r_q(T)`` is the
        ``p``-weighted mean of ``u_{q,i} = l_empty - l_{q,i}`` over ``T``, with
        ``p_i = exp(z_{q,i})``; its maximum over ``lo <= T <= hi`` takes ``lo`` and
        a prefix of the free experts in decreasing ``u`` (adding ``i`` raises a
        weighted mean iff ``u_i`` exceeds it), so every prefix is tried.
        *Top-k gate*: the mixture is a weighted mean over ``R_q(T)``, a subset
        of ``hi``, so ``r_q(T) <= max_{i in hi} u_{q,i}``.  A relative slack of
        :data:`BOUND_MARGIN` covers rounding.
        """
        if hi == 0:
            return 0.0
        u = self.utility[k]
        hi_ids = np.flatnonzero(bit_matrix(np.array([hi]), self.M)[0])
        lo_ids = np.flatnonzero(bit_matrix(np.array([lo]), self.M)[0])
        if self.top_k is not None and self.top_k < len(hi_ids):
            per_q = u[:, hi_ids].max(axis=1)
            if lo == 0:
                per_q = np.maximum(per_q, 0.0)
        else:
            free = np.setdiff1d(hi_ids, lo_ids)
            z = self.logits[k][:, hi_ids]
            shift = z.max(axis=1, keepdims=True)
            p_all = np.exp(self.logits[k] - shift)
            a0 = (p_all[:, lo_ids] * u[:, lo_ids]).sum(axis=1)
            p0 = p_all[:, lo_ids].sum(axis=1)
            uf, pf = u[:, free], p_all[:, free]
            order = np.argsort(-uf, axis=1, kind="stable")
            uf, pf = np.take_along_axis(uf, order, 1), np.take_along_axis(pf, order, 1)
            A = a0[:, None] + np.cumsum(pf * uf, axis=1)
            P = p0[:, None] + np.cumsum(pf, axis=1)
            # a prefix whose weights all underflowed: its mean is at most its first (largest) u
            ratios = np.divide(A, P, out=np.repeat(uf[:, :1], A.shape[1], axis=1) if len(free) else A.copy(),
                               where=P > 0)
            if lo == 0:
                per_q = np.maximum(ratios.max(axis=1), 0.0)
            else:
                per_q = np.divide(a0, p0, out=np.full(len(a0), -np.inf), where=p0 > 0)
                if len(free):
                    per_q = np.maximum(per_q, ratios.max(axis=1))
                # lo's own weights all underflowed: fall back to the per-query maximum over hi
                per_q = np.where(p0 > 0, per_q, u[:, hi_ids].max(axis=1))
        bound = float(per_q.mean())
        return bound + BOUND_MARGIN * max(1.0, abs(bound))

    # -------------------------------------------------------------- files and hashing
    def to_dict(self) -> dict[str, Any]:
        data_key = "correct" if self.target == "correctness" else "losses"
        val = [{"features": x.tolist(), data_key: (1.0 - l if self.target == "correctness" else l).tolist()}
               for x, l in zip(self.features, self.losses)]
        return {"kind": self.kind, "target": self.target, "empty_loss": [float(x) for x in self.empty_loss],
                "gate": {"temperature": self.temperature, "l2": self.l2, "top_k": self.top_k,
                         "weights": self.weights.tolist(), "bias": self.bias.tolist()},
                "validation": val}

    def hash_parts(self) -> tuple[dict[str, Any], list[np.ndarray]]:
        head = {"kind": self.kind, "temperature": self.temperature, "l2": self.l2, "top_k": self.top_k,
                "queries": [len(x) for x in self.features], "F": self.F}
        return head, [self.empty_loss, self.weights, self.bias, *self.features, *self.losses]


# ------------------------------------------------------------------ the property: restricted vs retrained
def retrained_quality(model: GatedMixtureQuality, S: list[int]) -> tuple[GatedMixtureQuality, GateFit]:
    """The model with a gate trained on ``S`` alone (rows outside ``S`` unused), and the fit."""
    fit = train_gate(np.vstack(model.features), np.vstack(model.losses), temperature=model.temperature,
                     l2=model.l2, experts=S)
    W, b = np.array(model.weights), np.array(model.bias)
    W[S], b[S] = fit.weights, fit.bias
    return model.with_gate(W, b), fit


def restriction_gap(model: GatedMixtureQuality, S: list[int]) -> dict[str, Any]:
    """How far the full-set gate restricted to ``S`` is from the gate retrained on ``S``.

    Returns
    -------
    dict
        ``objective_gap = J_S(restricted) - J_S(retrained)`` (``>= 0`` up to the
        solver's tolerance, since the retrained gate minimises ``J_S``; ``0``
        means the property holds for ``S``), ``param_gap`` (max-norm of the
        difference of the gate parameters on ``S``), and per category the
        qualities ``q_restricted``, ``q_retrained``.
    """
    S = sorted(int(i) for i in S)
    X, L = np.vstack(model.features), np.vstack(model.losses)
    T = soft_targets(L[:, S], model.temperature)
    retrained, fit = retrained_quality(model, S)
    j_restricted = gate_objective(X, T, model.weights[S], model.bias[S], model.l2)
    mask = np.array([sum(1 << i for i in S)], dtype=np.int64)
    return {
        "experts": S,
        "objective_restricted": j_restricted, "objective_retrained": fit.objective,
        "objective_gap": j_restricted - fit.objective,
        "param_gap": float(max(np.abs(model.weights[S] - fit.weights).max(), np.abs(model.bias[S] - fit.bias).max())),
        "q_restricted": [float(model.values(k, mask)[0]) for k in range(model.C)],
        "q_retrained": [float(retrained.values(k, mask)[0]) for k in range(model.C)],
    }


# ------------------------------------------------------------------ validation of the file object
def gated_from_dict(c: Collector, d: dict, path: str, C: int, M: int) -> GatedMixtureQuality | None:
    """Validate a ``{"kind": "gated-mixture", ...}`` object (rules in ``docs/moe2.md``); train the gate if absent."""
    target = d.get("target", "loss")
    if target not in ("loss", "correctness"):
        c.add(f"{path}.target", f"must be 'loss' or 'correctness', got {target!r}")
        return None
    data_key = "correct" if target == "correctness" else "losses"
    empty = None
    if "empty_loss" in d:
        empty = _number_matrix(c, d["empty_loss"], f"{path}.empty_loss", (C,), -math.inf, math.inf, "empty_loss")
    elif target == "correctness":
        empty = np.ones(C)
    else:
        c.add(f"{path}.empty_loss", "missing required field 'empty_loss' (the loss of serving a query with no "
                                    "expert, one per category)")
    gate = c.field(d, "gate", path, dict, "an object")
    temperature = l2 = None
    top_k: int | None = None
    weights = bias = None
    F = None
    val = c.field(d, "validation", path, list, f"a list of {C} per-category objects")
    feats: list[np.ndarray] = []
    losses: list[np.ndarray] = []
    if val is not None and len(val) != C:
        c.add(f"{path}.validation", f"must hold one object per category ({C}), got {len(val)}")
        val = None
    if val is not None:
        for k, v in enumerate(val):
            p = f"{path}.validation[{k}]"
            if not isinstance(v, dict):
                c.add(p, f"must be an object, got {type(v).__name__}")
                continue
            x = c.field(v, "features", p, list, "a list of feature rows")
            y = v.get(data_key)
            other = "losses" if data_key == "correct" else "correct"
            if y is None:
                c.add(f"{p}.{data_key}", f"missing required field '{data_key}' (target {target!r})"
                      + (f"; '{other}' belongs to target {'correctness' if other == 'correct' else 'loss'!r}"
                         if other in v else ""))
                continue
            if x is None:
                continue
            if not x:
                c.add(f"{p}.features", "must list at least one query")
                continue
            F = F if F is not None else (len(x[0]) if isinstance(x[0], list) else 0)
            if F < 1:
                c.add(f"{p}.features[0]", "must be a non-empty list of numbers")
                continue
            xa = _number_matrix(c, x, f"{p}.features", (len(x), F), -math.inf, math.inf, "feature")
            lo, hi = (0.0, 1.0) if target == "correctness" else (-math.inf, math.inf)
            ya = _number_matrix(c, y, f"{p}.{data_key}", (len(x), M), lo, hi, data_key)
            if xa is not None and ya is not None:
                feats.append(xa)
                losses.append(1.0 - ya if target == "correctness" else ya)
    if gate is not None:
        gp = f"{path}.gate"
        temperature = c.number(gate, "temperature", gp, positive=True)
        l2 = c.number(gate, "l2", gp, positive=True)
        tk = gate.get("top_k")
        if tk is not None and not (is_int(tk) and 1 <= int(tk) <= M):
            c.add(f"{gp}.top_k", f"must be null or an integer in 1..{M}, got {tk!r}")
        elif tk is not None:
            top_k = int(tk)
        if ("weights" in gate) != ("bias" in gate):
            c.add(gp, "give both 'weights' and 'bias' (a trained gate) or neither (trained when read)")
        elif "weights" in gate and F is not None:
            weights = _number_matrix(c, gate["weights"], f"{gp}.weights", (M, F), -math.inf, math.inf, "weight")
            bias = _number_matrix(c, gate["bias"], f"{gp}.bias", (M,), -math.inf, math.inf, "bias")
        for key in gate:
            if key not in ("temperature", "l2", "top_k", "weights", "bias"):
                c.add(f"{gp}.{key}", "unknown field; valid: temperature, l2, top_k, weights, bias")
    if c.problems or empty is None or temperature is None or l2 is None or len(feats) != C:
        return None
    if weights is None:
        return GatedMixtureQuality.train(feats, losses, empty, temperature=temperature, l2=l2, top_k=top_k,
                                         target=target)
    return GatedMixtureQuality(feats, losses, empty, weights, bias, temperature=temperature, l2=l2, top_k=top_k,
                               target=target)

