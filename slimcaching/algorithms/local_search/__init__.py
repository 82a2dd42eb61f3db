"""Our algorithms beyond the paper: local search on top of the successive decomposition.

* :func:`polish` -- first-improvement local search on any starting placement
  with *add*, *set* (a whole activated set at one node), *spread* (a set
  across nodes), *drop*, *swap*, *move*, *exchange* (two nodes trade
  elements) and *replace* (a set in place of a node's cheapest elements) steps, driven by the incremental evaluator; stops at a local
  optimum of that neighbourhood (or a limit).
* :func:`cyclic` -- cyclic re-optimisation (block-coordinate ascent over
  nodes): re-solve one node's single-node problem with every other node
  fixed, accept strict improvements, sweep the nodes until a whole pass
  improves nothing.
* :func:`best` -- ``successive``, then :func:`cyclic`, then :func:`polish`;
  the same cyclic + polish chain from the ``independent`` placement and from
  seeded random placements; the best of the chains.

None of them has an approximation guarantee of its own.  Each accepts only
moves that strictly increase ``R``, so its result is never worse than its
start: any guarantee proven for the start (for :func:`cyclic` and
:func:`best`, the one of ``successive``) carries over, and
``R(best) >= R(successive)`` on every instance.
"""
from __future__ import annotations

from .best import AUTO_RESTART_ELEMENTS, best
from .cyclic import cyclic
from .moves import MOVE_KINDS, candidate_sets, replace_candidates, spread_candidates
from .polish import polish

__all__ = ["polish", "cyclic", "best", "candidate_sets", "spread_candidates", "replace_candidates", "MOVE_KINDS",
           "AUTO_RESTART_ELEMENTS"]
