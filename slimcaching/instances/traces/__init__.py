"""Router traces -> routing distributions -> instances.

Every source is a small adapter onto one canonical table, one row per
activated set (:class:`~.core.Trace`), read as a stream of bounded chunks
(:mod:`.stream`); one module per source format:

* :mod:`.vllm` -- ``npy`` vLLM routed-expert arrays ``[tokens, layers, top_k]``
  (``.npy``, ``.npz``), ``exflow`` top-1 arrays ``[tokens, layers]``;
* :mod:`.megatron` -- Megatron-core router traces (JSON lines);
* :mod:`.flame` -- FLAME-MoE per-layer Parquet folders;
* :mod:`.llamacpp` -- llama-server ``layer_id,expert_ids`` logs;
* :mod:`.jsonl` -- JSON-lines routing logs;
* :mod:`.sglang` -- SGLang expert-distribution dumps (:mod:`.torchfile` reads them);
* :mod:`.table` -- ``long`` / ``list`` CSV or Parquet tables;
* :mod:`.marginals` -- marginal-only sources (Fiddler, MoE-Infinity counts,
  SGLang stat dumps), whose sets are synthesised;
* :mod:`.read` -- detection, :func:`open_source`, :func:`count_trace`, :func:`read_trace`;
* :mod:`.stream` -- set keys, streaming tallies, :class:`Counts`, truncation;
* :mod:`.split` -- fit/test splits;
* :mod:`.core` -- the canonical table, checks, instance building, sampling;
* :mod:`.sample` -- the shipped sample trace.
"""
from __future__ import annotations

from .core import (FORMATS, Trace, check_trace, counts_from_trace, instance_from_trace, instances_from_counts,
                   sample_trace, trace_distributions, trace_from_frame, write_trace)
from .marginals import MARGINAL_FORMATS, Marginals, fit_plackett_luce, instance_from_marginals, read_marginals
from .read import ALL_FORMATS, count_trace, detect_format, open_source, read_trace
from .sample import SAMPLE_TRACE, write_sample_trace
from .split import Split, parse_split
from .stream import Counts, truncate

__all__ = ["Trace", "read_trace", "trace_from_frame", "check_trace", "trace_distributions",
           "instance_from_trace", "instances_from_counts", "counts_from_trace", "sample_trace", "write_trace",
           "FORMATS", "ALL_FORMATS", "Marginals", "read_marginals", "fit_plackett_luce", "instance_from_marginals",
           "MARGINAL_FORMATS", "SAMPLE_TRACE", "write_sample_trace", "open_source", "count_trace", "detect_format",
           "Counts", "truncate", "Split", "parse_split"]
