"""Benchmark instances: real architectures on sampled edge networks, and the named suites.

:func:`model_instance` is the one generator behind ``slimcaching generate
--model`` and every suite: an :class:`~.catalog.Architecture` (possibly
truncated), a network preset (:mod:`.network`), a routing model
(:mod:`.routing`) and a precision give sizes, latencies and routing
statistics; everything random derives from one seed, and the instance's
``metadata`` records every parameter so the file can be regenerated.

Suites (:data:`SUITES`) are lists of such parameter sets drawn from a recorded
suite seed; :func:`generate_suite` writes them (and an ``index.csv``) under a
folder.  Regenerating a suite reproduces the committed files byte for byte.
"""
from __future__ import annotations

import csv
import io
import math
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import InputError
from .catalog import PRECISION_BITS, Architecture, get_architecture, size_in_units
from .generators import assemble
from ..fileio import write_text
from .io import write_instance
from .model import Instance
from .network import EdgeNetwork, get_preset, latency_tables, sample_network
from .routing import RoutingModel, layer_routing

__all__ = ["model_instance", "physical_model", "Physical", "mixed_precision_bits", "parse_capacity", "SUITES",
           "SuiteEntry", "suite_specs", "generate_suite", "suite_names", "placements_bound", "build_entry"]

GENERATOR = "slimcaching.instances.suites.model_instance"


# ------------------------------------------------------------- precision
def mixed_precision_bits(L: int, rng: np.random.Generator) -> tuple[list[int], list[float], list[float]]:
    """Per-layer bit widths of a mixed-precision quantisation.

    Base widths ``b_l`` come from ``{2, 3, 4, 8}`` (first and last MoE layer at
    8 bits, the most sensitive ones); a fraction ``rho_l ~ U(0.1 %, 1 %)`` of
    each layer's weights is kept as 16-bit outliers with a 32-bit index, and
    group-wise fp16 scales cost 16 bits per 128 weights.  Returns the base
    widths, the outlier fractions and the bits per weight
    ``b + 16/128 + rho (48 - b)``.  (The caller rounds sizes up to whole KiB and,
    if the sizes still share a divisor, grows the last layer's size by the
    fewest KiB that make their gcd 1, recorded as ``last_layer_header_kib``.)
    """
    base = rng.choice(np.array([2, 3, 4, 8]), size=L, p=[0.15, 0.35, 0.35, 0.15])
    base[0] = 8
    base[-1] = 8
    rho = np.round(rng.uniform(0.001, 0.01, size=L), 6)
    bpw = base + 16.0 / 128.0 + rho * (48.0 - base)
    return [int(b) for b in base], [float(r) for r in rho], [float(x) for x in bpw]


def _sizes(arch: Architecture, precision: str, L: int, rng: np.random.Generator
           ) -> tuple[str, np.ndarray, np.ndarray, dict]:
    """``(size_unit, sizes int (L,), bytes float (L,), record)`` for a precision name."""
    if precision == "mixed":
        base, rho, bpw = mixed_precision_bits(L, rng)
        nbytes = arch.expert_params * np.asarray(bpw) / 8.0
        sizes = np.array([size_in_units(b, "KiB") for b in nbytes], dtype=np.int64)
        header = 0
        while L >= 2 and math.gcd(*sizes.tolist()) > 1:
            sizes[-1] += 1          # a header of a few KiB keeps the instance in the gcd = 1 regime
            header += 1
        rec = {"precision": "mixed", "base_bits": base, "outlier_fraction": rho,
               "bits_per_weight": [round(b, 6) for b in bpw], "last_layer_header_kib": header}
        return "KiB", sizes, nbytes, rec
    if precision not in PRECISION_BITS:
        raise InputError("--precision", ("", f"unknown precision {precision!r}; valid: "
                                              f"{', '.join([*PRECISION_BITS, 'mixed'])}"))
    nbytes = np.full(L, arch.expert_bytes(PRECISION_BITS[precision]))
    sizes = np.array([size_in_units(b, "MiB") for b in nbytes], dtype=np.int64)
    return "MiB", sizes, nbytes, {"precision": precision, "bits": PRECISION_BITS[precision]}


# -------------------------------------------------------------- capacity
_BYTES = {"b": 1, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "kb": 1e3, "mb": 1e6, "gb": 1e9}


def parse_capacity(value: Any) -> Any:
    """Normalise a ``--capacity`` value.

    * ``None``: the preset's storage;
    * a fraction in ``(0, 1]`` (``"0.25"`` or ``"25%"``): that share of the whole
      model's expert storage, per edge server;
    * a whole number (``"1008"``): size units;
    * bytes with a unit (``"24GiB"``, ``"512MiB"``);
    * a list of whole numbers: size units per node (servers, then devices).
    """
    if value is None or isinstance(value, (list, tuple)):
        return None if value is None else [int(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = repr(value)
    s = str(value).strip().lower()
    bad = InputError("--capacity", ("", f"expected a fraction in (0, 1] such as 0.25 or 25%, a whole number "
                                        f"of size units, or bytes such as 24GiB; got {value!r}"))
    m = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*(%|b|kib|mib|gib|kb|mb|gb)?", s)
    if not m:
        raise bad
    num, unit = float(m.group(1)), m.group(2)
    if unit == "%":
        num /= 100.0
        unit = None
        s = "."
    if unit:
        if num <= 0:
            raise bad
        return {"bytes": num * _BYTES[unit]}
    if "." in s:
        if not 0 < num <= 1:
            raise bad
        return {"fraction": num}
    if num < 0:
        raise bad
    return {"units": int(num)}


def _capacities(cap: Any, *, N: int, n_total: int, unit: str, sizes: np.ndarray, E: int,
                storage_bytes: np.ndarray, device_cap: Any = None) -> np.ndarray:
    div = {"MiB": 1 << 20, "KiB": 1 << 10}[unit]
    out = np.floor(storage_bytes / div + 1e-9).astype(np.int64)
    if isinstance(cap, list):
        if len(cap) != n_total:
            raise InputError("--capacity", ("", f"a capacity list needs one value per node ({n_total}), "
                                                f"got {len(cap)}"))
        return np.asarray(cap, dtype=np.int64)
    for c, part in ((cap, slice(0, N)), (device_cap, slice(N, n_total))):
        if c is None:
            continue
        if isinstance(c, list):
            raise InputError("--device-capacity", ("", "expected one value for every device, not a list"))
        if "fraction" in c:
            out[part] = int(c["fraction"] * int(sizes.sum()) * E)
        elif "units" in c:
            out[part] = c["units"]
        else:
            out[part] = int(c["bytes"] // div)
    return out


# ------------------------------------------------------------- generator
@dataclass(frozen=True)
class Physical:
    """Everything of an instance that is not routing: sizes, nodes, capacities, latencies."""

    size_unit: str
    sizes: np.ndarray
    expert_bytes: np.ndarray
    precision: dict
    network: EdgeNetwork
    node_names: list
    capacity: np.ndarray
    latency: np.ndarray
    cloud_latency: np.ndarray


def physical_model(arch: Architecture, *, network: str, nodes: int, user_names: Sequence[str], capacity: Any,
                   precision: str, devices: bool | None, rng: np.random.Generator,
                   device_capacity: Any = None) -> Physical:
    """Sample the network and precision and compute sizes, capacities and ``t``, ``c``.

    Draws from ``rng`` in a fixed order: network, then precision.
    """
    preset = get_preset(network)
    cap = parse_capacity(capacity)
    users = len(user_names)
    if nodes < 1 or users < 1:
        raise InputError("--nodes", ("", f"nodes and users must be >= 1, got nodes={nodes}, users={users}"))
    L = arch.moe_layers
    net = sample_network(preset, nodes, users, rng, devices=devices)
    unit, sizes, nbytes, prec = _sizes(arch, precision, L, rng)
    t, c = latency_tables(net, arch.hidden_bytes, np.full(L, float(arch.expert_flops)), nbytes)
    node_names = net.node_names(list(user_names))
    capv = _capacities(cap, N=nodes, n_total=len(node_names), unit=unit, sizes=sizes, E=arch.routed_experts,
                       storage_bytes=net.storage_bytes(), device_cap=parse_capacity(device_capacity))
    return Physical(unit, sizes, nbytes, prec, net, node_names, capv, t, c)


def model_instance(model: str | Architecture, *, network: str = "wifi-rtx", nodes: int = 4, users: int = 4,
                   capacity: Any = None, device_capacity: Any = None, seed: int = 0, precision: str = "bf16",
                   layers: int | None = None,
                   experts: int | None = None, top_k: int | None = None, devices: bool | None = None,
                   skew: float = 1.0, specialisation: float = 0.5, tasks: int = 2, topics: int = 0,
                   topic_strength: float = 2.0, tokens: int = 4096, exact_limit: int = 200_000,
                   name: str | None = None) -> Instance:
    """An instance shaped like a real MoE model served over a sampled edge network.

    Parameters
    ----------
    model : str or Architecture
        Catalog name (case-insensitive, see :func:`.catalog.get_architecture`).
    network : str
        Network preset (:data:`.network.PRESETS`).
    nodes, users : int
        Edge servers ``N`` and users ``U``; a preset (or ``devices=True``) with
        devices adds one device node per user.
    capacity
        Edge-server storage, see :func:`parse_capacity` (a list gives every
        node, devices included).
    device_capacity
        Device storage, same forms (no list); default the preset's.
    seed : int
        Every random choice (network, precision, routing, weights) derives from it.
    precision : {"bf16", "fp16", "int8", "int4", "mixed"}
        Uniform precisions give sizes in MiB (rounded up); ``"mixed"`` draws
        per-layer widths (:func:`mixed_precision_bits`), sizes in KiB.
    layers, experts, top_k : int, optional
        Keep only the first ``layers`` MoE layers / ``experts`` experts, or
        lower Top-K (small benchmarks with real expert shapes).
    skew, specialisation, tasks, topics, topic_strength, tokens, exact_limit
        The routing model (:class:`.routing.RoutingModel`).
    name : str, optional
        Instance name; a descriptive one by default.

    Returns
    -------
    Instance
        With ``metadata`` holding the generator, every parameter, the
        architecture's source, the sampled network, the precision record and
        the number of sampled tokens per ``(u, l)`` distribution (``None`` when
        enumerated exactly).
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError("--seed", ("", f"seed must be a non-negative integer, got {seed!r}"))
    arch = get_architecture(model) if isinstance(model, str) else model
    arch_full = arch
    arch = arch.truncated(layers, experts, top_k)
    rng = np.random.default_rng(seed)
    L, E, K = arch.moe_layers, arch.routed_experts, arch.top_k
    user_names = [f"user-{u}" for u in range(users)]
    phys = physical_model(arch, network=network, nodes=nodes, user_names=user_names, capacity=capacity,
                          precision=precision, devices=devices, rng=rng, device_capacity=device_capacity)
    weight = rng.dirichlet(np.full(users, 2.0)) if users > 1 else np.ones(1)
    rmodel = RoutingModel(skew=skew, specialisation=specialisation, tasks=tasks, topics=topics,
                          topic_strength=topic_strength, tokens=tokens, exact_limit=exact_limit)
    routing: list[list] = [[None] * L for _ in range(users)]
    ntok: list[list] = [[None] * L for _ in range(users)]
    for l in range(L):
        # one stream per layer: the popularity model of a layer does not depend on other layers' draws
        dists, n_l, _ = layer_routing(E, K, users, rmodel, np.random.default_rng([seed, 1, l]))
        for u in range(users):
            routing[u][l] = dists[u]
            ntok[u][l] = n_l[u]
    params = {"model": arch_full.name, "network": phys.network.preset, "nodes": nodes, "users": users,
              "capacity": capacity if not isinstance(capacity, np.ndarray) else capacity.tolist(),
              "device_capacity": device_capacity, "seed": seed, "precision": precision, "layers": layers,
              "experts": experts, "top_k": top_k,
              "devices": devices, **rmodel.to_dict()}
    all_exact = all(n is None for row in ntok for n in row)
    meta = {
        "generator": GENERATOR,
        "params": params,
        "architecture": {"name": arch.name, "source": arch_full.hf_config, "moe_layers": L, "experts": E,
                         "top_k": K, "d_model": arch.d_model, "expert_intermediate": arch.expert_intermediate,
                         "gated": arch.gated, "expert_params": arch.expert_params},
        "precision": phys.precision,
        "network": phys.network.summary(),
        "routing_model": "plackett-luce" + (f" + {topics}-topic mixture" if topics > 1 else ""),
        "coactivation": "synthesised (routing model)",
        "sampled_tokens_per_distribution": None if all_exact else ntok,
    }
    if name is None:
        name = (f"{arch.name}-{phys.network.preset}-{precision}-N{nodes}-U{users}-s{seed}").lower().replace("[", "-") \
            .replace("]", "").replace(",", "-").replace("=", "")
    return assemble(name=name, experts=np.full(L, E), expert_size=phys.sizes, top_k=np.full(L, K),
                    node_names=phys.node_names, capacity=phys.capacity, user_names=user_names, weight=weight,
                    latency=phys.latency, cloud_latency=phys.cloud_latency, routing=routing,
                    size_unit=phys.size_unit, metadata=meta)


# ----------------------------------------------------------------- suites
@dataclass(frozen=True)
class SuiteEntry:
    """One file of a suite: its name, the :func:`model_instance` keywords, gzip or not."""

    name: str
    params: dict
    gzip: bool = False

    @property
    def filename(self) -> str:
        return self.name + (".json.gz" if self.gzip else ".json")


def placements_bound(n_elements: int, per_node_items: Sequence[int]) -> int:
    """Upper bound on brute-force work: ``prod_n sum_{k <= q_n} C(M, k)``."""
    out = 1
    for q in per_node_items:
        out *= sum(math.comb(n_elements, k) for k in range(min(q, n_elements) + 1))
    return out


_TINY_MODELS = ["Mixtral-8x7B", "Phi-3.5-MoE", "Switch-Base-8", "OLMoE-1B-7B", "DeepSeek-V2-Lite",
                "Qwen1.5-MoE-A2.7B", "Llama-4-Scout", "Qwen3-30B-A3B"]
_NETWORKS = ["wifi-rtx", "5g-mec", "wifi-jetson", "5g-device"]


def _tiny() -> list[SuiteEntry]:
    """40 brute-force-size instances: 4 <= L*E <= 12, at most 3 nodes, at most 30k placement combinations."""
    rng = np.random.default_rng(20250701)
    out: list[SuiteEntry] = []
    while len(out) < 40:
        i = len(out)
        model = _TINY_MODELS[i % len(_TINY_MODELS)]
        arch = get_architecture(model)
        L = int(rng.integers(1, 4))
        E = int(rng.integers(2, 6))
        if not 4 <= L * E <= 12 or E > arch.routed_experts:
            continue
        K = min(int(rng.integers(1, 3)), E, arch.top_k)
        net = _NETWORKS[i % len(_NETWORKS)]
        devices = net == "5g-device"
        U = int(rng.integers(1, 4))
        N = int(rng.integers(1, 4))
        if devices:
            U = min(U, 2)
            N = max(1, min(N, 3 - U))
        n_total = N + (U if devices else 0)
        precision = "mixed" if (i % 5 == 4 and L >= 2) else "bf16"
        items = [int(rng.integers(1, 4)) for _ in range(n_total)]
        if placements_bound(L * E, items) > 30_000:
            continue
        topics = 2 if (i % 3 == 2 and E >= 4) else 0
        params = dict(model=model, network=net, nodes=N, users=U, layers=L, experts=E, top_k=K,
                      capacity={"items": items}, precision=precision, seed=1000 + i, topics=topics,
                      skew=1.0, specialisation=0.5)
        out.append(SuiteEntry(f"tiny-{i:03d}", params))
    return out


def _small() -> list[SuiteEntry]:
    """51 instances for exact solvers: K in {1, 2, 4}, N in 2..6 (2..4 for K = 4), U in 2..4.

    ``N * L * E`` (the binaries of the MILP) is at most 120, 64, 40 for K = 1, 2, 4.
    """
    rng = np.random.default_rng(20250702)
    models = ["Mixtral-8x7B", "Phi-3.5-MoE", "OLMoE-1B-7B", "DeepSeek-V2-Lite", "Qwen1.5-MoE-A2.7B",
              "Qwen3-30B-A3B", "DeepSeek-V3", "Qwen2-57B-A14B"]
    out: list[SuiteEntry] = []
    Ks = [1, 2, 4]
    for i in range(51):
        K = Ks[i % 3]
        model = models[i % len(models)] if K <= 2 else models[2 + (i // 3) % 6]   # K = 4 needs top_k >= 4
        N = 2 + (i // 3) % 5
        L, E = {1: (int(rng.integers(2, 7)), int(rng.integers(4, 9))),
                2: (int(rng.integers(2, 5)), int(rng.integers(4, 7))),
                4: (int(rng.integers(2, 4)), int(rng.integers(4, 7)))}[K]
        # keep the exact MILP provable within 60 s: fewer binaries N*L*E as co-activation grows
        if K == 4:
            N = 2 + (i // 3) % 3
        budget = {1: 120, 2: 64, 4: 40}[K]
        while N * L * E > budget and L > 2:
            L -= 1
        while N * L * E > budget and E > max(4, K + 1):
            E -= 1
        U = int(rng.integers(2, 5))
        net = _NETWORKS[(i // 2) % 3]           # servers only: N counts every node
        precision = "mixed" if i % 7 == 6 else "bf16"
        frac = float(rng.uniform(0.08, 0.25))
        items = [max(1, int(round(frac * L * E * rng.uniform(0.7, 1.3)))) for _ in range(N)]
        topics = 2 if i % 4 == 3 else 0
        params = dict(model=model, network=net, nodes=N, users=U, layers=L, experts=E, top_k=K,
                      capacity={"items": items}, precision=precision, seed=2000 + i, topics=topics,
                      skew=float(rng.choice([0.6, 1.0, 1.4])), specialisation=0.5)
        out.append(SuiteEntry(f"small-{i:03d}", params))
    return out


def _paper() -> list[SuiteEntry]:
    """Real-architecture scale (full MoE layer and expert counts) on realistic networks."""
    rows = [
        ("Mixtral-8x7B", "wifi-rtx", "bf16", 4, 4, None, 0),
        ("Mixtral-8x7B", "5g-device", "bf16", 4, 4, None, 0),
        ("Mixtral-8x7B", "wifi-jetson", "int4", 4, 4, "30%", 2),
        ("DeepSeek-V2-Lite", "wifi-rtx", "bf16", 4, 4, "15%", 0),
        ("DeepSeek-V2-Lite", "5g-mec", "int8", 4, 4, "15%", 4),
        ("Qwen1.5-MoE-A2.7B", "wifi-jetson", "bf16", 4, 4, "15%", 0),
        ("Qwen1.5-MoE-A2.7B", "5g-device", "bf16", 4, 4, "15%", 4),
        ("OLMoE-1B-7B", "wifi-rtx", "bf16", 4, 4, "20%", 0),
        ("OLMoE-1B-7B", "5g-mec", "bf16", 4, 4, "20%", 4),
        ("Switch-Base-8", "wifi-jetson", "bf16", 3, 4, "25%", 0),
        ("Switch-Base-8", "5g-device", "bf16", 3, 4, "25%", 0),
        ("DeepSeek-V3", "5g-mec", "bf16", 8, 4, None, 0),
    ]
    out = []
    for i, (model, net, prec, N, U, cap, topics) in enumerate(rows):
        params = dict(model=model, network=net, nodes=N, users=U, capacity=cap, precision=prec,
                      seed=3000 + i, topics=topics, tokens=512)
        if net == "5g-device" and cap is not None:
            params["device_capacity"] = "5%"          # a phone holds a slice of the model, not all of it
        arch = get_architecture(model)
        big = arch.routed_experts > 16
        nm = f"paper-{arch.name.lower()}-{net}-{prec}"
        out.append(SuiteEntry(nm, params, gzip=big))
    return out


def _mixed() -> list[SuiteEntry]:
    """Per-layer bit widths (sizes in KiB, gcd 1): where max-convolution acceleration matters."""
    rows = [
        ("Mixtral-8x7B", "wifi-rtx", 4, 3, "25%", 8, None),
        ("Mixtral-8x7B", "wifi-jetson", 4, 3, "20%", None, None),
        ("Mixtral-8x7B", "5g-mec", 4, 3, "30%", None, None),
        ("Phi-3.5-MoE", "wifi-rtx", 4, 3, "20%", 8, None),
        ("Phi-3.5-MoE", "5g-device", 3, 3, "20%", None, None),
        ("OLMoE-1B-7B", "wifi-rtx", 3, 3, "20%", None, None),
        ("DeepSeek-V2-Lite", "5g-mec", 3, 3, "15%", 8, None),
        ("Qwen1.5-MoE-A2.7B", "wifi-jetson", 3, 3, "15%", None, None),
        ("Switch-Base-8", "wifi-rtx", 3, 3, "25%", None, None),
        ("Llama-4-Scout", "wifi-jetson", 4, 3, "20%", 12, None),
    ]
    out = []
    for i, (model, net, N, U, cap, L, E) in enumerate(rows):
        params = dict(model=model, network=net, nodes=N, users=U, capacity=cap, precision="mixed",
                      seed=4000 + i, layers=L, experts=E, tokens=512)
        if net == "5g-device":
            params["device_capacity"] = "4%"
        arch = get_architecture(model)
        big = arch.routed_experts > 16
        nm = f"mixed-{arch.name.lower()}-{net}" + (f"-L{L}" if L else "")
        out.append(SuiteEntry(nm, params, gzip=big))
    return out


SUITES: dict[str, tuple[str, Callable[[], list[SuiteEntry]]]] = {
    "tiny": ("brute-force size (about 40 instances)", _tiny),
    "small": ("exact MILP proves optimality within 60 s (about 50 instances, K = 1, 2, 4, N = 2..6)", _small),
    "paper": ("real-architecture scale on realistic networks", _paper),
    "mixed-precision": ("per-layer bit widths, sizes in KiB with gcd 1", _mixed),
}


def suite_names() -> list[str]:
    return list(SUITES)


def suite_specs(name: str) -> list[SuiteEntry]:
    """The entries of a suite, or :class:`InputError` naming the valid suites."""
    if name not in SUITES:
        raise InputError("suite", ("", f"unknown suite {name!r}; valid: {', '.join(SUITES)}"))
    return SUITES[name][1]()


def _build(entry: SuiteEntry) -> Instance:
    """Generate one entry; ``metadata.params`` are then exactly :func:`model_instance`'s keywords."""
    params = dict(entry.params)
    extra: dict = {"suite_entry": entry.name}
    cap = params.get("capacity")
    if isinstance(cap, dict) and "items" in cap:
        # capacity as a number of (largest) experts per node, in the instance's size unit
        probe = model_instance(**{**params, "capacity": None, "name": entry.name})
        smax = int(probe.expert_size.max())
        params["capacity"] = [int(q) * smax for q in cap["items"]]
        extra["capacity_in_largest_experts"] = list(cap["items"])
    inst = model_instance(**{**params, "name": entry.name})
    return replace(inst, metadata={**inst.metadata, **extra})


def build_entry(suite: str, name: str) -> Instance:
    """One instance of a suite by its entry name (without writing it)."""
    for e in suite_specs(suite):
        if e.name == name:
            return _build(e)
    raise InputError("suite", ("", f"suite {suite!r} has no entry {name!r}"))


def generate_suite(name: str, out: str | os.PathLike, *, only: Sequence[str] | None = None) -> list[Path]:
    """Write every instance of suite ``name`` into ``out`` plus ``index.csv``; returns the paths.

    ``only`` restricts to those entry names (the index is then not rewritten).
    """
    specs = suite_specs(name)                  # an unknown name fails before anything is written
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written, index = [], []
    for e in specs:
        if only is not None and e.name not in only:
            continue
        inst = _build(e)
        path = out / e.filename
        write_instance(inst, path)
        written.append(path)
        index.append({"file": e.filename, "name": inst.name, "model": inst.metadata["params"]["model"],
                      "network": inst.metadata["params"]["network"],
                      "precision": inst.metadata["params"]["precision"], "L": inst.L,
                      "E": inst.max_experts, "K": inst.max_top_k, "N": inst.N, "U": inst.U,
                      "sets": inst.n_sets, "size_unit": inst.size_unit,
                      "seed": inst.metadata["params"]["seed"]})
    if only is None:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(index[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(index)
        write_text(buf.getvalue(), out / "index.csv")
        written.append(out / "index.csv")
    return written
