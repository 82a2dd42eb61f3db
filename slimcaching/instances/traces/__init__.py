"""Router traces -> routing distributions -> instances.

Every source is a small adapter onto one canonical table, one row per
activated set (:class:`~.core.Trace`); one module per source format:

* :mod:`.table` -- ``long`` / ``list`` CSV or Parquet tables;
* :mod:`.vllm` -- ``npy`` routed-expert arrays ``[tokens, layers, top_k]``;
* :mod:`.jsonl` -- JSON-lines routing logs;
* :mod:`.marginals` -- marginal-only sources (Fiddler, MoE-Infinity counts),
  whose sets are synthesised;
* :mod:`.read` -- :func:`read_trace`, the one entry point for set-carrying formats;
* :mod:`.core` -- the canonical table, counting, checks, instance building, sampling;
* :mod:`.sample` -- the shipped sample trace.
"""
from __future__ import annotations

from .core import (FORMATS, Trace, check_trace, instance_from_trace, sample_trace, trace_distributions,
                   trace_from_frame, write_trace)
from .marginals import MARGINAL_FORMATS, Marginals, fit_plackett_luce, instance_from_marginals, read_marginals
from .read import read_trace
from .sample import SAMPLE_TRACE, write_sample_trace

__all__ = ["Trace", "read_trace", "trace_from_frame", "check_trace", "trace_distributions",
           "instance_from_trace", "sample_trace", "write_trace", "FORMATS", "Marginals", "read_marginals",
           "fit_plackett_luce", "instance_from_marginals", "MARGINAL_FORMATS", "SAMPLE_TRACE", "write_sample_trace"]
