"""Held-out evaluation: split a trace into a *fit* and a *test* part.

``--split fit:test`` (``80:20`` or ``0.8:0.2``) with ``--split-by``:

* ``user`` (request): the trace's users (the values of the user column, e.g.
  request ids) are shuffled with ``--seed`` and the first ``round(f U)`` fit
  (at least one user on each side); every token of a user goes to its part.
* ``time``: within each user, a token whose id is below
  ``lo + f (hi - lo + 1)`` fits, the rest tests (``lo``, ``hi``: the user's
  smallest and largest token id; ids are in time order in every adapter).

Every ``(user, token)`` lands in exactly one part.  A pre-pass finds the users
and token ranges (free for array sources, one read of the stream otherwise).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ...errors import InputError
from .stream import Chunk

__all__ = ["Split", "parse_split"]


def parse_split(text: str, by: str = "time", seed: int = 0) -> "Split":
    """``"80:20"`` or ``"0.8:0.2"`` -> :class:`Split`."""
    try:
        a, b = (float(x) for x in str(text).split(":"))
    except ValueError:
        raise InputError("--split", ("", f"expected FIT:TEST such as 80:20, got {text!r}")) from None
    if not (a > 0 and b > 0 and np.isfinite(a + b)):
        raise InputError("--split", ("", f"both parts must be > 0, got {text!r}"))
    if by not in ("user", "time"):
        raise InputError("--split-by", ("", f"must be user or time, got {by!r}"))
    return Split(by=by, fit=a / (a + b), seed=int(seed))


@dataclass(frozen=True)
class Split:
    by: str
    fit: float
    seed: int = 0

    def record(self) -> dict:
        rule = ("users shuffled with the seed; the first round(f U) fit" if self.by == "user" else
                "per user, token id < lo + f (hi - lo + 1) fits (token ids in time order)")
        return {"by": self.by, "fit_fraction": round(self.fit, 6), "seed": self.seed, "rule": rule}

    def assigner(self, source, chunk_rows: int) -> Callable[[Chunk], np.ndarray]:
        """``Chunk -> int (n,)``: 0 for fit, 1 for test."""
        ranges = source.token_ranges(chunk_rows)
        if self.by == "user":
            names = source.user_names()
            codes = sorted(ranges)
            if len(codes) < 2:
                raise InputError(source.path, ("", f"--split-by user needs at least 2 users, the trace has "
                                                   f"{len(codes)}"))
            order = np.random.default_rng(self.seed).permutation(sorted(codes, key=lambda k: names[k]))
            n_fit = min(len(codes) - 1, max(1, int(round(self.fit * len(codes)))))
            part = np.ones(max(codes) + 1, dtype=np.int64)
            part[order[:n_fit]] = 0
            return lambda ch: part[ch.user]
        lo = np.zeros(max(ranges) + 1, dtype=np.float64)
        span = np.ones(max(ranges) + 1, dtype=np.float64)
        for k, (a, b) in ranges.items():
            lo[k], span[k] = a, b - a + 1
        cut = lo + self.fit * span
        return lambda ch: (ch.token >= cut[ch.user]).astype(np.int64)
