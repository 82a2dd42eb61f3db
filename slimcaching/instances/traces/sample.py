"""The shipped sample trace ``instances/traces/sample-trace.csv``, written from a seeded instance."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..suites import model_instance
from .core import sample_trace, write_trace

__all__ = ["SAMPLE_TRACE", "write_sample_trace"]


#: The shipped sample trace ``instances/traces/sample-trace.csv``: Mixtral-8x7B
#: routing (first 4 MoE layers, 3 users), 300 tokens per user.
SAMPLE_TRACE = {"instance": dict(model="Mixtral-8x7B", network="wifi-rtx", nodes=2, users=3, layers=4, seed=7,
                                 topics=2, name="sample-trace-source"),
                "tokens": 300, "seed": 8}


def write_sample_trace(path: str | os.PathLike) -> Path:
    """Write the shipped sample trace (long CSV) from :data:`SAMPLE_TRACE`; returns its path."""
    inst = model_instance(**SAMPLE_TRACE["instance"])
    df = sample_trace(inst, SAMPLE_TRACE["tokens"], np.random.default_rng(SAMPLE_TRACE["seed"]))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_trace(df, path)
    return path
