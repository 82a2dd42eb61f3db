"""Routing models: distributions over activated Top-K expert sets.

The core is Plackett-Luce (equivalently Gumbel-top-K): a token draws ``K``
distinct experts without replacement, each next one with probability
proportional to its popularity among those left.  Two ways to turn that into
the ``p[u,l,S]`` of an instance:

* :func:`plackett_luce_exact` enumerates every set of size ``K`` with its exact
  probability (sum over the ``K!`` orders), when ``C(E, K) K!`` is small;
* :func:`plackett_luce_sampled` samples tokens with the Gumbel trick and
  returns the empirical distribution (and the number of tokens it came from).

On top of it, :class:`RoutingModel` describes the benchmark routing model:

* per-user, per-layer popularity (:func:`user_popularity`): a Zipf profile
  shared by all users (the hot experts everyone uses) mixed with a Zipf profile
  of the user's *task* (users of one task share it, tasks differ), weight
  ``specialisation`` on the task part;
* Top-K sets drawn by Plackett-Luce from that popularity;
* optionally a latent-topic mixture (:func:`topic_mixture`): each token first
  draws a topic, a topic boosts a block of experts by ``exp(topic_strength)``,
  then Plackett-Luce runs on the boosted popularity.  Experts of one block are
  then activated together more often than Plackett-Luce alone allows
  (co-activation beyond independence of irrelevant alternatives).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["plackett_luce_exact", "plackett_luce_sampled", "plackett_luce_sets",
           "empirical_sets", "zipf_popularity", "RoutingModel", "user_popularity", "topic_mixture",
           "mixture_sets", "layer_routing", "inclusion_probabilities", "sample_tokens"]


def zipf_popularity(E: int, skew: float, rng: np.random.Generator) -> np.ndarray:
    """Popularity ``float64 (E,)`` summing to 1: Zipf weights ``1/r^skew`` over a random ranking."""
    w = 1.0 / np.arange(1, E + 1, dtype=float) ** skew
    w = w[rng.permutation(E)]
    return w / w.sum()


def plackett_luce_exact(pop: np.ndarray, K: int) -> tuple[np.ndarray, np.ndarray]:
    """All ``C(E, K)`` sets with their exact Plackett-Luce probabilities.

    Returns ``sets int64 (C, K)`` (sorted ids) and ``p float64 (C,)``, summing to 1.
    Cost ``O(C(E, K) K! K)``, vectorised over the sets.
    """
    pop = np.asarray(pop, dtype=float)
    E = len(pop)
    sets = np.array(list(itertools.combinations(range(E), K)), dtype=np.int64).reshape(-1, K)
    p = np.zeros(len(sets))
    for perm in itertools.permutations(range(K)):
        w = pop[sets[:, list(perm)]]                       # (C, K) in draw order
        remaining = 1.0 - np.concatenate([np.zeros((len(sets), 1)), np.cumsum(w, axis=1)[:, :-1]], axis=1)
        p += np.prod(w / np.maximum(remaining, 1e-300), axis=1)
    return sets, p / p.sum()


def empirical_sets(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct rows of ``tokens int (T, K)`` (sorted within a row) with their frequencies.

    Returns ``sets (C, K)``, ``p (C,)`` and ``counts (C,)``; vectorised (``np.unique``).
    """
    t = np.sort(np.asarray(tokens, dtype=np.int64), axis=1)
    sets, counts = np.unique(t, axis=0, return_counts=True)
    return sets, counts / counts.sum(), counts


def plackett_luce_sampled(pop: np.ndarray, K: int, tokens: int, rng: np.random.Generator
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empirical set distribution of ``tokens`` Plackett-Luce draws (Gumbel-top-K)."""
    logp = np.log(np.asarray(pop, dtype=float))
    g = logp[None, :] + rng.gumbel(size=(tokens, len(pop)))
    top = np.argpartition(-g, K - 1, axis=1)[:, :K]
    return empirical_sets(top)


def plackett_luce_sets(pop: np.ndarray, K: int, rng: np.random.Generator, *, tokens: int = 4096,
                       exact_limit: int = 200_000) -> tuple[np.ndarray, np.ndarray, int | None]:
    """Exact enumeration when ``C(E,K) K! <= exact_limit``, sampled tokens otherwise.

    Returns ``sets``, ``p`` and the number of sampled tokens (``None`` when exact).
    """
    E = len(pop)
    if math.comb(E, K) * math.factorial(K) <= exact_limit:
        s, p = plackett_luce_exact(pop, K)
        keep = p > 0
        return s[keep], p[keep] / p[keep].sum(), None
    s, p, _ = plackett_luce_sampled(pop, K, tokens, rng)
    return s, p, tokens


# ------------------------------------------------------------ benchmark model
@dataclass(frozen=True)
class RoutingModel:
    """Parameters of the benchmark routing model (see the module docstring).

    Attributes
    ----------
    skew : float
        Zipf exponent of both popularity profiles (0 = uniform).
    specialisation : float in [0, 1]
        Weight of the task profile; 0 = all users alike, 1 = only their task.
    tasks : int
        Number of task groups; user ``u`` belongs to task ``u % tasks``.
    topics : int
        Latent topics per layer; 0 or 1 = plain Plackett-Luce.
    topic_strength : float
        Log-boost of a topic's block of experts.
    tokens : int
        Tokens sampled per ``(u, l)`` when exact enumeration is too large.
    exact_limit : int
        Enumerate exactly when ``T * C(E, K) * K! <= exact_limit`` (``T`` topics, at least 1).
    """

    skew: float = 1.0
    specialisation: float = 0.5
    tasks: int = 2
    topics: int = 0
    topic_strength: float = 2.0
    tokens: int = 4096
    exact_limit: int = 200_000

    def to_dict(self) -> dict:
        return asdict(self)


def user_popularity(E: int, users: int, rng: np.random.Generator, *, skew: float = 1.0,
                    specialisation: float = 0.5, tasks: int = 2) -> np.ndarray:
    """``float64 (U, E)``: per-user popularity ``(1 - a) z_shared + a z_task(u)``, rows sum to 1.

    ``z`` are Zipf(``skew``) profiles over independent random rankings.
    """
    shared = zipf_popularity(E, skew, rng)
    task = np.stack([zipf_popularity(E, skew, rng) for _ in range(max(1, tasks))])
    a = float(specialisation)
    pop = (1.0 - a) * shared[None, :] + a * task[np.arange(users) % max(1, tasks)]
    return pop / pop.sum(axis=1, keepdims=True)


def topic_mixture(pop: np.ndarray, topics: int, strength: float, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Topic weights ``(T,)`` (Dirichlet(2)) and topic popularities ``(T, E)``.

    The experts are split at random into ``T`` blocks; topic ``z`` multiplies
    the popularity of block ``z`` by ``exp(strength)``.  ``T <= 1`` returns the
    popularity itself.
    """
    pop = np.asarray(pop, dtype=float)
    E = len(pop)
    T = min(int(topics), E)
    if T <= 1:
        return np.ones(1), pop[None, :] / pop.sum()
    block = np.empty(E, dtype=np.int64)
    block[rng.permutation(E)] = np.arange(E) % T
    boost = np.where(block[None, :] == np.arange(T)[:, None], math.exp(strength), 1.0)
    pops = pop[None, :] * boost
    return rng.dirichlet(np.full(T, 2.0)), pops / pops.sum(axis=1, keepdims=True)


def sample_tokens(pops: np.ndarray, weights: np.ndarray, K: int, tokens: int, rng: np.random.Generator
                  ) -> np.ndarray:
    """``int64 (tokens, K)``: Top-K draws of a Plackett-Luce mixture (Gumbel-top-K per token).

    ``pops (T, E)`` topic popularities, ``weights (T,)`` topic probabilities.
    """
    pops = np.atleast_2d(np.asarray(pops, dtype=float))
    z = rng.choice(len(weights), size=tokens, p=np.asarray(weights) / np.sum(weights)) if len(weights) > 1 \
        else np.zeros(tokens, dtype=np.int64)
    with np.errstate(divide="ignore"):
        logp = np.log(pops)
    g = logp[z] + rng.gumbel(size=(tokens, pops.shape[1]))
    return np.argpartition(-g, K - 1, axis=1)[:, :K].astype(np.int64)


def mixture_sets(pops: np.ndarray, weights: np.ndarray, K: int, rng: np.random.Generator, *,
                 tokens: int = 4096, exact_limit: int = 200_000) -> tuple[np.ndarray, np.ndarray, int | None]:
    """Set distribution of a Plackett-Luce mixture: exact when small, empirical otherwise.

    Returns ``sets int64 (C, K)``, ``p (C,)`` and the number of sampled tokens
    (``None`` when exact).  Exact cost ``O(T C(E,K) K! K)``.
    """
    pops = np.atleast_2d(np.asarray(pops, dtype=float))
    T, E = pops.shape
    if T * math.comb(E, K) * math.factorial(K) <= exact_limit:
        p = None
        for w, pz in zip(weights, pops):
            s, pp = plackett_luce_exact(pz, K)
            p = w * pp if p is None else p + w * pp
        keep = p > 0
        return s[keep], p[keep] / p[keep].sum(), None
    s, p, _ = empirical_sets(sample_tokens(pops, weights, K, tokens, rng))
    return s, p, int(tokens)


def layer_routing(E: int, K: int, users: int, model: RoutingModel, rng: np.random.Generator
                  ) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[int | None], np.ndarray]:
    """Set distributions of every user for one layer.

    Returns ``[(sets, p)] * U``, the sampled tokens of each (``None`` = exact)
    and the users' popularity ``(U, E)``.
    """
    pop = user_popularity(E, users, rng, skew=model.skew, specialisation=model.specialisation,
                          tasks=model.tasks)
    # all popularity draws first, so the model does not depend on whether sets are sampled
    mixtures = [topic_mixture(pop[u], model.topics, model.topic_strength, rng) for u in range(users)]
    out, ntok = [], []
    for w, pops in mixtures:
        s, p, n = mixture_sets(pops, w, K, rng, tokens=model.tokens, exact_limit=model.exact_limit)
        out.append((s, p))
        ntok.append(n)
    return out, ntok, pop


def inclusion_probabilities(sets: np.ndarray, p: np.ndarray, E: int) -> np.ndarray:
    """``float64 (E,)``: probability that expert ``e`` is activated, ``sum_{S ni e} p_S``."""
    sets = np.asarray(sets, dtype=np.int64)
    pp = np.broadcast_to(np.asarray(p, dtype=float)[:, None], sets.shape)
    ok = sets >= 0
    return np.bincount(sets[ok], weights=pp[ok], minlength=E)
