"""Routing models: distributions over activated Top-K expert sets.

The core is Plackett-Luce (equivalently Gumbel-top-K): a token draws ``K``
distinct experts without replacement, each next one with probability
proportional to its popularity among those left.  Two ways to turn that into
the ``p[u,l,S]`` of an instance:

* :func:`plackett_luce_exact` enumerates every set of size ``K`` with its exact
  probability (sum over the ``K!`` orders), when ``C(E, K) K!`` is small;
* :func:`plackett_luce_sampled` samples tokens with the Gumbel trick and
  returns the empirical distribution (and the number of tokens it came from).
"""
from __future__ import annotations

import itertools
import math

import numpy as np

__all__ = ["plackett_luce_exact", "plackett_luce_sampled", "plackett_luce_sets",
           "empirical_sets", "zipf_popularity"]


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
