"""Seeded MoE² instances: heterogeneous edge LLMs on Jetson-AGX-Orin-class and RTX-4090-class servers."""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from .instance import MAX_EXPERTS, Moe2Instance, within

__all__ = ["generate_moe2", "SERVER_PROFILES"]


# Server classes.  ``bw``: memory bandwidth (GB/s), which bounds LLM decoding;
# ``tflops``: *achieved* dense fp16 throughput in prefill (well below the peak
# on the data sheet); ``power``: board draw under LLM load (W).  Reasons in docs/moe2.md.
SERVER_PROFILES: dict[str, dict[str, tuple[float, float] | float]] = {
    "jetson-agx-orin": {"bw": 204.8, "tflops": (5.0, 15.0), "power": (30.0, 60.0), "memory_gb": 64.0},
    "rtx-4090": {"bw": 1008.0, "tflops": (40.0, 80.0), "power": (300.0, 450.0), "memory_gb": 24.0},
}


def generate_moe2(seed: int, experts: int = 8, categories: int = 3, *, orin_fraction: float = 0.5,
                  experts_per_server: int = 2, params_b: tuple[float, float] = (1.0, 13.0),
                  prompt_tokens: int = 256, output_tokens: int = 128,
                  aggregation_delay: tuple[float, float] = (0.02, 0.08),
                  budget_quantile: tuple[float, float] = (0.4, 1.0), energy_fraction: float = 0.3,
                  name: str | None = None) -> Moe2Instance:
    """A seeded instance of heterogeneous edge LLMs on Jetson-AGX-Orin-class and RTX-4090-class servers.

    Parameters
    ----------
    seed : int
    experts, categories : int          ``M`` (1..16) and ``C``.
    orin_fraction : float              share of servers of the Jetson AGX Orin class.
    experts_per_server : int           experts hosted by one server.
    params_b : (float, float)          model size range, billions of parameters (log-uniform).
    prompt_tokens, output_tokens : int tokens per request (prefill, decode).
    aggregation_delay : (float, float) range of ``a`` in seconds.
    budget_quantile : (float, float)   ``D_k - a`` is this quantile range of the expert latencies.
    energy_fraction : float            ``E`` as a fraction of ``sum_k lambda_k sum_{i fits k} e_i``.
    name : str, optional               default ``moe2-s{seed}-m{M}-c{C}``.

    Returns
    -------
    Moe2Instance
        Quality ``q_k(S) = c_k (1 - prod_{i in S} (1 - a_{k,i}))``: the chance
        that at least one selected expert answers well, monotone with
        diminishing returns; ``a_{k,i}`` is the expert's general strength (grows
        with log model size, lower for 4-bit) times a category affinity.
    """
    if not 1 <= experts <= MAX_EXPERTS:
        raise InputError("--experts", ("", f"must be in 1..{MAX_EXPERTS}, got {experts}"))
    if categories < 1:
        raise InputError("--categories", ("", f"must be >= 1, got {categories}"))
    if not (np.isfinite(energy_fraction) and energy_fraction > 0):
        raise InputError("--energy-fraction", ("", f"must be > 0 and finite, got {energy_fraction!r}"))
    if not (0 <= orin_fraction <= 1):
        raise InputError("--orin-fraction", ("", f"must be in [0, 1], got {orin_fraction!r}"))
    rng = np.random.default_rng(seed)
    M, C = int(experts), int(categories)
    n_servers = max(1, -(-M // max(1, experts_per_server)))
    kinds = np.where(rng.random(n_servers) < orin_fraction, "jetson-agx-orin", "rtx-4090")
    if n_servers >= 2 and len(set(kinds)) == 1:  # keep the fleet heterogeneous
        kinds[-1] = "rtx-4090" if kinds[0] == "jetson-agx-orin" else "jetson-agx-orin"
    power = np.array([rng.uniform(*SERVER_PROFILES[k]["power"]) for k in kinds])
    tflops = np.array([rng.uniform(*SERVER_PROFILES[k]["tflops"]) for k in kinds])
    host = np.arange(M) % n_servers
    rng.shuffle(host)
    lo, hi = np.log(params_b[0]), np.log(params_b[1])
    params = np.exp(rng.uniform(lo, hi, M))                       # billions
    bits = np.where(rng.random(M) < 0.7, 4, 8)
    model_gb = params * (bits + 0.5) / 8                          # quantised weights + scales
    eta = rng.uniform(0.5, 0.8, M)                                # achieved fraction of memory bandwidth
    bw = np.array([SERVER_PROFILES[kinds[s]]["bw"] for s in host])
    decode_s = output_tokens * model_gb / (eta * bw)
    prefill_s = prompt_tokens * 2 * params * 1e9 / (tflops[host] * 1e12)
    network_s = rng.uniform(0.005, 0.03, M)                       # edge RTT + request upload
    latency = prefill_s + decode_s + network_s
    energy = power[host] * (prefill_s + decode_s)
    agg = float(rng.uniform(*aggregation_delay))
    weight = rng.dirichlet(np.full(C, 2.0))
    weight = np.maximum(weight, 1e-3)
    weight /= weight.sum()
    budgets = agg + np.quantile(latency, rng.uniform(*budget_quantile, C))
    budgets = np.maximum(budgets, agg + latency.min())
    strength = 0.25 + 0.4 * (np.log(params) - lo) / max(hi - lo, 1e-9) - 0.03 * (bits == 4)
    affinity = rng.uniform(0.5, 1.3, (C, M))
    a = np.clip(strength[None, :] * affinity, 0.02, 0.95)
    ceiling = rng.uniform(0.85, 1.0, C)
    miss = np.ones((C, 1 << M))
    for i in range(M):
        miss[:, 1 << i: 2 << i] = miss[:, : 1 << i] * (1 - a[:, i: i + 1])
    quality = ceiling[:, None] * (1 - miss)
    fits = np.array([within(latency + agg, float(b)) for b in budgets], dtype=float)  # (C, M)
    energy_budget = energy_fraction * float(np.dot(weight, fits @ energy))
    if not np.isfinite(energy_budget):
        raise InputError("--energy-fraction", ("", f"{energy_fraction!r} gives an infinite energy budget"))
    server_names = [f"{'orin' if k == 'jetson-agx-orin' else 'rtx4090'}-{s}" for s, k in enumerate(kinds)]
    expert_names = [f"llm{i}-{params[i]:.1f}b-q{bits[i]}" for i in range(M)]
    cat_names = [f"cat{k}" for k in range(C)]
    meta = {"generator": "generate_moe2", "seed": int(seed), "experts": M, "categories": C,
            "orin_fraction": orin_fraction, "experts_per_server": experts_per_server,
            "params_b": list(params_b), "prompt_tokens": prompt_tokens, "output_tokens": output_tokens,
            "energy_fraction": energy_fraction, "budget_quantile": list(budget_quantile)}
    return Moe2Instance(
        name=name or f"moe2-s{seed}-m{M}-c{C}", server_names=server_names, server_kinds=[str(k) for k in kinds],
        server_power=power, expert_names=expert_names, expert_server=host, energy=energy, latency=latency,
        category_names=cat_names, weight=weight, latency_budget=budgets, quality=quality,
        energy_budget=energy_budget, aggregation_delay=agg, metadata=meta)
