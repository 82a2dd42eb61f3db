"""Catalog of real Mixture-of-Experts architectures.

The facts come from each model's public ``config.json`` (the ``hf_config``
column of ``data/moe_architectures.csv`` names the file they were read from):
MoE layers, routed experts per layer, Top-K, hidden size, expert intermediate
size, whether the expert FFN is gated (SwiGLU: three matrices) or not (two).
Only MoE layers become instance layers: models that keep their first layers
dense (DeepSeek ``first_k_dense_replace``) or interleave sparse layers
(Switch Transformers) contribute ``moe_layers`` layers, as noted per row.

Derived quantities, used by :mod:`.network` and :mod:`.suites`:

* expert parameters ``P = (3 if gated else 2) * d_model * d_ff``;
* expert bytes at ``b`` bits per weight ``P * b / 8``;
* expert FLOPs per token ``2 P`` (one multiply-add per weight);
* hidden-state bytes per token ``d_model * 2`` (bf16 activations).
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources

from ..errors import InputError

__all__ = ["Architecture", "load_catalog", "get_architecture", "model_names", "catalog_table",
           "PRECISION_BITS"]

#: Bits per weight of the uniform precisions accepted by the generators.
PRECISION_BITS = {"bf16": 16, "fp16": 16, "int8": 8, "int4": 4}

MIB = 1 << 20
KIB = 1 << 10


@dataclass(frozen=True)
class Architecture:
    """Public configuration facts of one MoE model (one catalog row).

    Attributes
    ----------
    name, hf_config : str
        Model name and the config file the numbers were read from.
    layers, moe_layers : int
        Transformer layers, and those with routed experts (the instance's ``L``).
    dense_layers_note : str
        How the non-MoE layers are arranged (as written in the source).
    routed_experts, shared_experts, top_k : int
        ``E``, always-on shared experts (never cached: not routed), ``K``.
    d_model, expert_intermediate : int
        Hidden size and expert FFN intermediate size.
    gated : bool
        SwiGLU-style expert (gate, up, down matrices) or plain two-matrix FFN.
    catalog_expert_params, catalog_expert_mib_bf16 : float
        The parameter count and bf16 MiB as recorded in the catalog file; the
        tests check that they agree with the dimensions.
    """

    name: str
    hf_config: str
    layers: int
    moe_layers: int
    dense_layers_note: str
    routed_experts: int
    shared_experts: int
    top_k: int
    d_model: int
    expert_intermediate: int
    gated: bool
    catalog_expert_params: int
    catalog_expert_mib_bf16: float

    @property
    def expert_params(self) -> int:
        """Weights of one routed expert, from the dimensions."""
        return (3 if self.gated else 2) * self.d_model * self.expert_intermediate

    def expert_bytes(self, bits: float = 16) -> float:
        """Bytes of one expert's weights at ``bits`` per weight."""
        return self.expert_params * bits / 8

    def expert_mib(self, bits: float = 16) -> float:
        return self.expert_bytes(bits) / MIB

    @property
    def expert_flops(self) -> int:
        """FLOPs to run one token through one expert (``2 P``)."""
        return 2 * self.expert_params

    @property
    def hidden_bytes(self) -> int:
        """Bytes of one token's hidden state sent to / from an expert (bf16)."""
        return 2 * self.d_model

    def truncated(self, layers: int | None = None, experts: int | None = None,
                  top_k: int | None = None) -> "Architecture":
        """The same expert shapes with fewer MoE layers / experts (for small benchmarks).

        The result's name records what was kept, e.g. ``Mixtral-8x7B[L=2,E=4,K=2]``.

        Raises
        ------
        InputError
            More layers or experts than the model has, or a larger Top-K.
        """
        L = self.moe_layers if layers is None else int(layers)
        E = self.routed_experts if experts is None else int(experts)
        K = min(self.top_k, E) if top_k is None else int(top_k)
        if not (1 <= L <= self.moe_layers and 1 <= E <= self.routed_experts and 1 <= K <= min(self.top_k, E)):
            raise InputError("--model", ("", f"cannot truncate {self.name} to L={L}, E={E}, K={K}: it has "
                                             f"{self.moe_layers} MoE layers of {self.routed_experts} experts, "
                                             f"top-{self.top_k}, and K can only be lowered (K <= E)"))
        if (L, E, K) == (self.moe_layers, self.routed_experts, self.top_k):
            return self
        return replace(self, name=f"{self.name}[L={L},E={E},K={K}]", moe_layers=L,
                       routed_experts=E, top_k=K)

    def row(self) -> dict:
        return {
            "model": self.name, "moe_layers": self.moe_layers, "experts": self.routed_experts,
            "top_k": self.top_k, "d_model": self.d_model, "d_ff": self.expert_intermediate,
            "gated": "yes" if self.gated else "no",
            "MiB_bf16": round(self.expert_mib(16), 3), "MiB_int8": round(self.expert_mib(8), 3),
            "MiB_int4": round(self.expert_mib(4), 3), "source": self.hf_config,
        }


@lru_cache(maxsize=1)
def load_catalog() -> tuple[Architecture, ...]:
    """Every architecture of ``data/moe_architectures.csv``, in file order."""
    text = resources.files("slimcaching.instances").joinpath("data/moe_architectures.csv").read_text("utf-8")
    out = []
    for r in csv.DictReader(text.splitlines()):
        out.append(Architecture(
            name=r["model"], hf_config=r["hf_config"], layers=int(r["layers"]),
            moe_layers=int(r["moe_layers"]), dense_layers_note=r["dense_layers_note"],
            routed_experts=int(r["routed_experts"]), shared_experts=int(r["shared_experts"]),
            top_k=int(r["top_k"]), d_model=int(r["d_model"]),
            expert_intermediate=int(r["expert_intermediate"]), gated=r["gated"].strip() == "yes",
            catalog_expert_params=int(r["expert_params"]),
            catalog_expert_mib_bf16=float(r["expert_mib_bf16"]),
        ))
    return tuple(out)


def model_names() -> list[str]:
    return [a.name for a in load_catalog()]


def get_architecture(name: str) -> Architecture:
    """Look a model up by name, case-insensitively; a unique prefix also works.

    Raises
    ------
    InputError
        Unknown or ambiguous name (the message lists the valid names).
    """
    key = name.strip().lower()
    cat = load_catalog()
    exact = [a for a in cat if a.name.lower() == key]
    if exact:
        return exact[0]
    pref = [a for a in cat if a.name.lower().startswith(key)]
    if len(pref) == 1:
        return pref[0]
    what = "ambiguous" if pref else "unknown"
    valid = [a.name for a in (pref or cat)]
    raise InputError("--model", ("", f"{what} model {name!r}; valid: {', '.join(valid)}"))


def catalog_table() -> str:
    """The catalog as a markdown table (what ``slimcaching models`` prints)."""
    rows = [a.row() for a in load_catalog()]
    cols = list(rows[0])
    fmt = [max(len(c), *(len(str(r[c])) for r in rows)) for c in cols]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(cols, fmt)) + " |",
             "|" + "|".join("-" * (w + 2) for w in fmt) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(r[c]).ljust(w) for c, w in zip(cols, fmt)) + " |")
    return "\n".join(lines)


def size_in_units(nbytes: float, unit: str) -> int:
    """``ceil(nbytes / unit)`` for ``unit`` in ``MiB`` / ``KiB`` (at least 1)."""
    div = {"MiB": MIB, "KiB": KIB, "GiB": 1 << 30, "B": 1}[unit]
    return max(1, math.ceil(nbytes / div - 1e-9))
