"""Seeded MoE² instances: heterogeneous edge LLMs on Jetson-AGX-Orin-class and RTX-4090-class servers."""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from .gating import GatedMixtureQuality
from .instance import MAX_EXPERTS, MAX_MODEL_EXPERTS, Moe2Instance, within
from .quality import NoisyOrQuality

__all__ = ["generate_moe2", "generate_moe2_gated", "SERVER_PROFILES"]


# Server classes.  ``bw``: memory bandwidth (GB/s), which bounds LLM decoding;
# ``tflops``: *achieved* dense fp16 throughput in prefill (well below the peak
# on the data sheet); ``power``: board draw under LLM load (W).  Reasons in docs/moe2.md.
SERVER_PROFILES: dict[str, dict[str, tuple[float, float] | float]] = {
    "jetson-agx-orin": {"bw": 204.8, "tflops": (5.0, 15.0), "power": (30.0, 60.0), "memory_gb": 64.0},
    "rtx-4090": {"bw": 1008.0, "tflops": (40.0, 80.0), "power": (300.0, 450.0), "memory_gb": 24.0},
}


def _check_sizes(experts: int, categories: int, energy_fraction: float, orin_fraction: float, limit: int) -> None:
    """One-line ``InputError`` for generator options out of range."""
    if not 1 <= experts <= limit:
        raise InputError("--experts", ("", f"must be in 1..{limit}, got {experts}"))
    if categories < 1:
        raise InputError("--categories", ("", f"must be >= 1, got {categories}"))
    if not (np.isfinite(energy_fraction) and energy_fraction > 0):
        raise InputError("--energy-fraction", ("", f"must be > 0 and finite, got {energy_fraction!r}"))
    if not (0 <= orin_fraction <= 1):
        raise InputError("--orin-fraction", ("", f"must be in [0, 1], got {orin_fraction!r}"))


def _fleet(rng: np.random.Generator, M: int, C: int, *, orin_fraction: float, experts_per_server: int,
           params_b: tuple[float, float], prompt_tokens: int, output_tokens: int,
           aggregation_delay: tuple[float, float], budget_quantile: tuple[float, float]) -> dict:
    """The servers, experts (energy, latency), weights and latency budgets; the draws of ``docs/moe2.md``."""
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
    return {"M": M, "C": C, "kinds": kinds, "power": power, "host": host, "params": params, "bits": bits,
            "latency": latency, "energy": energy, "agg": agg, "weight": weight, "budgets": budgets}


def _assemble(fl: dict, quality, energy_fraction: float, name: str, meta: dict,
              energy_accounting: str = "pool") -> Moe2Instance:
    """The instance of fleet ``fl`` with ``quality``; ``E`` is ``energy_fraction`` of all admissible energy."""
    M, C, kinds = fl["M"], fl["C"], fl["kinds"]
    fits = np.array([within(fl["latency"] + fl["agg"], float(b)) for b in fl["budgets"]], dtype=float)  # (C, M)
    energy_budget = energy_fraction * float(np.dot(fl["weight"], fits @ fl["energy"]))
    if not np.isfinite(energy_budget):
        raise InputError("--energy-fraction", ("", f"{energy_fraction!r} gives an infinite energy budget"))
    server_names = [f"{'orin' if k == 'jetson-agx-orin' else 'rtx4090'}-{s}" for s, k in enumerate(kinds)]
    expert_names = [f"llm{i}-{fl['params'][i]:.1f}b-q{fl['bits'][i]}" for i in range(M)]
    return Moe2Instance(
        name=name, server_names=server_names, server_kinds=[str(k) for k in kinds],
        server_power=fl["power"], expert_names=expert_names, expert_server=fl["host"], energy=fl["energy"],
        latency=fl["latency"], category_names=[f"cat{k}" for k in range(C)], weight=fl["weight"],
        latency_budget=fl["budgets"], quality=quality, energy_budget=energy_budget,
        aggregation_delay=fl["agg"], metadata=meta, energy_accounting=energy_accounting)


def generate_moe2(seed: int, experts: int = 8, categories: int = 3, *, orin_fraction: float = 0.5,
                  experts_per_server: int = 2, params_b: tuple[float, float] = (1.0, 13.0),
                  prompt_tokens: int = 256, output_tokens: int = 128,
                  aggregation_delay: tuple[float, float] = (0.02, 0.08),
                  budget_quantile: tuple[float, float] = (0.4, 1.0), energy_fraction: float = 0.3,
                  name: str | None = None, model: bool = False) -> Moe2Instance:
    """A seeded instance of heterogeneous edge LLMs on Jetson-AGX-Orin-class and RTX-4090-class servers.

    Parameters
    ----------
    seed : int
    experts, categories : int          ``M`` (1..16, or up to 62 with ``model``) and ``C``.
    orin_fraction : float              share of servers of the Jetson AGX Orin class.
    experts_per_server : int           experts hosted by one server.
    params_b : (float, float)          model size range, billions of parameters (log-uniform).
    prompt_tokens, output_tokens : int tokens per request (prefill, decode).
    aggregation_delay : (float, float) range of ``a`` in seconds.
    budget_quantile : (float, float)   ``D_k - a`` is this quantile range of the expert latencies.
    energy_fraction : float            ``E`` as a fraction of ``sum_k lambda_k sum_{i fits k} e_i``.
    name : str, optional               default ``moe2-s{seed}-m{M}-c{C}``.
    model : bool                       keep the noisy-OR parameters as a
                                       :class:`~slimcaching.moe2.quality.NoisyOrQuality`
                                       oracle instead of tabulating ``2**M`` values
                                       (same numbers, bit for bit; any ``M``).

    Returns
    -------
    Moe2Instance
        Quality ``q_k(S) = c_k (1 - prod_{i in S} (1 - a_{k,i}))``: the chance
        that at least one selected expert answers well, monotone with
        diminishing returns; ``a_{k,i}`` is the expert's general strength (grows
        with log model size, lower for 4-bit) times a category affinity.
    """
    _check_sizes(experts, categories, energy_fraction, orin_fraction, MAX_MODEL_EXPERTS if model else MAX_EXPERTS)
    rng = np.random.default_rng(seed)
    M, C = int(experts), int(categories)
    fl = _fleet(rng, M, C, orin_fraction=orin_fraction, experts_per_server=experts_per_server, params_b=params_b,
                prompt_tokens=prompt_tokens, output_tokens=output_tokens, aggregation_delay=aggregation_delay,
                budget_quantile=budget_quantile)
    params, bits = fl["params"], fl["bits"]
    lo, hi = np.log(params_b[0]), np.log(params_b[1])
    strength = 0.25 + 0.4 * (np.log(params) - lo) / max(hi - lo, 1e-9) - 0.03 * (bits == 4)
    affinity = rng.uniform(0.5, 1.3, (C, M))
    a = np.clip(strength[None, :] * affinity, 0.02, 0.95)
    ceiling = rng.uniform(0.85, 1.0, C)
    if model:
        quality = NoisyOrQuality(ceiling, a)
    else:
        miss = np.ones((C, 1 << M))
        for i in range(M):
            miss[:, 1 << i: 2 << i] = miss[:, : 1 << i] * (1 - a[:, i: i + 1])
        quality = ceiling[:, None] * (1 - miss)
    meta = {"generator": "generate_moe2", "seed": int(seed), "experts": M, "categories": C,
            "orin_fraction": orin_fraction, "experts_per_server": experts_per_server,
            "params_b": list(params_b), "prompt_tokens": prompt_tokens, "output_tokens": output_tokens,
            "energy_fraction": energy_fraction, "budget_quantile": list(budget_quantile)}
    if model:
        meta["quality"] = "noisy-or-model"
    return _assemble(fl, quality, energy_fraction, name or f"moe2-s{seed}-m{M}-c{C}", meta)


def generate_moe2_gated(seed: int, experts: int = 8, categories: int = 3, *, queries: int = 48,
                        features: int = 4, skills: int | None = None, specialist_gain: float = 0.5,
                        temperature: float = 0.1, l2: float = 1e-2, top_k: int | None = None,
                        energy_accounting: str = "pool", energy_fraction: float = 0.3,
                        budget_quantile: tuple[float, float] = (0.4, 1.0), name: str | None = None,
                        **fleet) -> Moe2Instance:
    """A seeded instance whose qualities come from a learned gate over synthetic, complementary experts.

    The fleet (servers, energies, latencies, weights, latency budgets) is
    drawn as in :func:`generate_moe2`.  Then, per category, ``queries``
    validation queries, each of one of ``G = skills`` hidden skills (default
    ``max(2, M // 2)``); a category draws its skill mix from Dirichlet(1).
    Features: the skill's centre (a standard normal vector of ``features``
    numbers, times 2) plus standard normal noise, so the gate can learn to
    route.  Expert ``i`` is a specialist of skill ``i mod G`` (after a seeded
    shuffle): it answers a query correctly with probability
    ``clip(0.5 s_i + specialist_gain [skill matches], 0.02, 0.98)`` with ``s_i``
    the size-driven strength of :func:`generate_moe2`; correctness is a
    Bernoulli draw (0 or 1), as on a real validation set.  The gate is then
    trained on all experts (:meth:`GatedMixtureQuality.train`).

    Parameters
    ----------
    queries, features, skills : int     validation queries per category, feature length, hidden skills.
    specialist_gain : float             how much better a specialist is on its own skill.
    temperature, l2 : float             the gate's training settings.
    top_k : int or None                 per-query top-k routing (``None``: dense, every pool member runs).
    energy_accounting : {"pool", "per-query"}
    other parameters                    as for :func:`generate_moe2`.

    Returns
    -------
    Moe2Instance
        With a :class:`~slimcaching.moe2.gating.GatedMixtureQuality`.  Such
        qualities are complementary (two specialists of different skills
        together beat both alone by more than either adds to a generalist),
        hence not submodular, and diluting a specialist with a weak expert can
        lower the mixture's quality, hence not monotone in general: these
        instances do not flatter greedy.
    """
    _check_sizes(experts, categories, energy_fraction, fleet.get("orin_fraction", 0.5), MAX_MODEL_EXPERTS)
    if queries < 1 or features < 1:
        raise InputError("--queries", ("", f"queries and features must be >= 1, got {queries}, {features}"))
    if top_k is not None and not 1 <= top_k <= experts:
        raise InputError("--top-k", ("", f"must be in 1..{experts}, got {top_k}"))
    rng = np.random.default_rng(seed)
    M, C = int(experts), int(categories)
    opts = {"orin_fraction": 0.5, "experts_per_server": 2, "params_b": (1.0, 13.0), "prompt_tokens": 256,
            "output_tokens": 128, "aggregation_delay": (0.02, 0.08)}
    opts.update(fleet)
    fl = _fleet(rng, M, C, budget_quantile=budget_quantile, **opts)
    lo, hi = np.log(opts["params_b"][0]), np.log(opts["params_b"][1])
    strength = 0.25 + 0.4 * (np.log(fl["params"]) - lo) / max(hi - lo, 1e-9) - 0.03 * (fl["bits"] == 4)
    G = int(skills) if skills is not None else max(2, M // 2)
    centres = 2.0 * rng.standard_normal((G, features))
    special = rng.permutation(M) % G
    feats, losses = [], []
    for _ in range(C):
        mix = rng.dirichlet(np.ones(G))
        t = rng.choice(G, size=queries, p=mix)
        feats.append(centres[t] + rng.standard_normal((queries, features)))
        p = np.clip(0.5 * strength[None, :] + specialist_gain * (special[None, :] == t[:, None]), 0.02, 0.98)
        losses.append(1.0 - (rng.random((queries, M)) < p).astype(np.float64))
    quality = GatedMixtureQuality.train(feats, losses, np.ones(C), temperature=temperature, l2=l2, top_k=top_k,
                                        target="correctness")
    meta = {"generator": "generate_moe2_gated", "seed": int(seed), "experts": M, "categories": C,
            "queries": queries, "features": features, "skills": G, "specialist_gain": specialist_gain,
            "temperature": temperature, "l2": l2, "top_k": top_k, "energy_fraction": energy_fraction,
            "budget_quantile": list(budget_quantile), **{k: list(v) if isinstance(v, tuple) else v
                                                         for k, v in opts.items()}}
    return _assemble(fl, quality, energy_fraction, name or f"moe2g-s{seed}-m{M}-c{C}", meta,
                     energy_accounting=energy_accounting)
