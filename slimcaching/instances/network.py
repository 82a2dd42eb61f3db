"""Edge-network model: from an architecture and a network to ``t[u,n,l]`` and ``c[u,l]``.

One expert call is one token's hidden state sent to the node holding the
expert, the expert run on it, and the result sent back:

.. math::

    t_{u,n,l} = \\frac{8 h}{r^{up}_{u,n}} + \\frac{8 h}{r^{down}_{u,n}} + 2 d_{u,n}
                + \\max\\Bigl(\\frac{F_l}{\\phi_n}, \\frac{B_l}{\\beta_n}\\Bigr),

with ``h`` the hidden-state bytes (bf16), ``r`` the user's link rates to the
server (bit/s), ``d`` the one-way access delay, ``F_l = 2 P`` the expert FLOPs
per token, ``B_l`` the expert's bytes at layer ``l``'s precision, ``phi`` the
node's compute (FLOP/s) and ``beta`` its memory bandwidth (byte/s).  The
compute term is the roofline of a batch-1 decode step: reading the expert's
weights usually dominates, so the term grows with the expert's size and falls
with compute speed.  The cloud is reached through the user's best server link,
then the backhaul (rate ``r^{bh}`` both ways) and the cloud round trip:

.. math::

    c_{u,l} = \\frac{8 h}{r^{up}_u} + \\frac{8 h}{r^{down}_u} + 2 d_u + \\frac{16 h}{r^{bh}}
              + \\mathrm{RTT}_u + \\max\\Bigl(\\frac{F_l}{\\phi_c}, \\frac{B_l}{\\beta_c}\\Bigr).

A user's own device (optional) has no network hop: ``t = max(F/phi_d, B/beta_d)``,
and only its user reaches it.  The presets' ranges, and why, are in
``docs/instances.md``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError

__all__ = ["NetworkPreset", "EdgeNetwork", "PRESETS", "get_preset", "sample_network",
           "expert_call_latency", "latency_tables"]

GIB = 1 << 30


@dataclass(frozen=True)
class NetworkPreset:
    """Parameter ranges of one kind of edge deployment; each pair is ``(low, high)``,
    sampled uniformly per user, server or link.

    Units: rates in Mbit/s (user links) and Gbit/s (backhaul), delays in ms,
    compute in TFLOP/s, memory bandwidth in GB/s, storage in GiB.
    """

    name: str
    description: str
    uplink_mbps: tuple[float, float]
    downlink_mbps: tuple[float, float]
    access_delay_ms: tuple[float, float]
    reach: float
    edge_tflops: tuple[float, float]
    edge_mem_gbps: tuple[float, float]
    edge_storage_gib: tuple[float, float]
    backhaul_gbps: tuple[float, float]
    cloud_rtt_ms: tuple[float, float]
    cloud_tflops: tuple[float, float]
    cloud_mem_gbps: tuple[float, float]
    devices: bool = False
    device_tflops: tuple[float, float] = (2.0, 8.0)
    device_mem_gbps: tuple[float, float] = (50.0, 120.0)
    device_storage_gib: tuple[float, float] = (1.0, 4.0)


_CLOUD = dict(backhaul_gbps=(1.0, 10.0), cloud_rtt_ms=(20.0, 80.0), cloud_tflops=(300.0, 990.0),
              cloud_mem_gbps=(2000.0, 3350.0))

PRESETS: dict[str, NetworkPreset] = {p.name: p for p in (
    NetworkPreset("wifi-rtx", "Wi-Fi 6 access, RTX 4090-class edge servers",
                  uplink_mbps=(50.0, 300.0), downlink_mbps=(100.0, 600.0), access_delay_ms=(1.0, 3.0),
                  reach=0.8, edge_tflops=(80.0, 165.0), edge_mem_gbps=(900.0, 1008.0),
                  edge_storage_gib=(16.0, 22.0), **_CLOUD),
    NetworkPreset("5g-mec", "5G access, multi-access edge computing sites with L4/A10-class GPUs",
                  uplink_mbps=(20.0, 100.0), downlink_mbps=(100.0, 900.0), access_delay_ms=(4.0, 10.0),
                  reach=0.6, edge_tflops=(120.0, 125.0), edge_mem_gbps=(300.0, 600.0),
                  edge_storage_gib=(20.0, 44.0), **_CLOUD),
    NetworkPreset("wifi-jetson", "Wi-Fi 6 access, Jetson Orin-class edge boxes",
                  uplink_mbps=(50.0, 300.0), downlink_mbps=(100.0, 600.0), access_delay_ms=(1.0, 3.0),
                  reach=0.8, edge_tflops=(10.0, 40.0), edge_mem_gbps=(102.0, 205.0),
                  edge_storage_gib=(8.0, 28.0), **_CLOUD),
    NetworkPreset("5g-device", "5G MEC servers plus each user's own device (phone/laptop class)",
                  uplink_mbps=(20.0, 100.0), downlink_mbps=(100.0, 900.0), access_delay_ms=(4.0, 10.0),
                  reach=0.6, edge_tflops=(120.0, 125.0), edge_mem_gbps=(300.0, 600.0),
                  edge_storage_gib=(20.0, 44.0), devices=True, **_CLOUD),
)}


def get_preset(name: str) -> NetworkPreset:
    """A preset by (case-insensitive) name; :class:`InputError` naming the valid ones otherwise."""
    p = PRESETS.get(name.strip().lower())
    if p is None:
        raise InputError("--network", ("", f"unknown network preset {name!r}; valid: {', '.join(PRESETS)}"))
    return p


@dataclass(frozen=True)
class EdgeNetwork:
    """One sampled network (SI units: bit/s, s, FLOP/s, byte/s, bytes).

    Attributes
    ----------
    uplink, downlink : float64 (U, N)   user-to-server link rates.
    access_delay : float64 (U, N)       one-way delay.
    reach : bool (U, N)                 user ``u`` can reach server ``n``.
    edge_flops, edge_mem, edge_storage : float64 (N,)
    backhaul : float                    edge-to-cloud rate.
    cloud_rtt : float64 (U,)
    cloud_flops, cloud_mem : float
    device_flops, device_mem, device_storage : float64 (U,) or None (no devices)
    """

    preset: str
    uplink: np.ndarray
    downlink: np.ndarray
    access_delay: np.ndarray
    reach: np.ndarray
    edge_flops: np.ndarray
    edge_mem: np.ndarray
    edge_storage: np.ndarray
    backhaul: float
    cloud_rtt: np.ndarray
    cloud_flops: float
    cloud_mem: float
    device_flops: np.ndarray | None = None
    device_mem: np.ndarray | None = None
    device_storage: np.ndarray | None = None

    @property
    def U(self) -> int:
        return int(self.uplink.shape[0])

    @property
    def N(self) -> int:
        return int(self.uplink.shape[1])

    @property
    def has_devices(self) -> bool:
        return self.device_flops is not None

    def node_names(self, user_names: list[str]) -> list[str]:
        names = [f"edge-{n}" for n in range(self.N)]
        if self.has_devices:
            names += [f"device-{u}" for u in user_names]
        return names

    def storage_bytes(self) -> np.ndarray:
        """``float64 (N [+ U],)``: edge storage, then device storage."""
        if self.has_devices:
            return np.concatenate([self.edge_storage, self.device_storage])
        return self.edge_storage.copy()

    def summary(self) -> dict:
        """Rounded network facts for an instance's metadata."""
        def r(a):
            return np.round(np.asarray(a, dtype=float), 6).tolist()
        d = {"preset": self.preset, "uplink_mbps": r(self.uplink / 1e6), "downlink_mbps": r(self.downlink / 1e6),
             "access_delay_ms": r(self.access_delay * 1e3), "reach": self.reach.astype(int).tolist(),
             "edge_tflops": r(self.edge_flops / 1e12), "edge_mem_gbps": r(self.edge_mem / 1e9),
             "backhaul_gbps": round(self.backhaul / 1e9, 6), "cloud_rtt_ms": r(self.cloud_rtt * 1e3),
             "cloud_tflops": round(self.cloud_flops / 1e12, 6), "cloud_mem_gbps": round(self.cloud_mem / 1e9, 6)}
        if self.has_devices:
            d.update(device_tflops=r(self.device_flops / 1e12), device_mem_gbps=r(self.device_mem / 1e9))
        return d


def sample_network(preset: NetworkPreset | str, nodes: int, users: int, rng: np.random.Generator, *,
                   devices: bool | None = None) -> EdgeNetwork:
    """Draw a network of ``nodes`` servers and ``users`` users from a preset.

    Every draw is uniform on the preset's range; each user reaches each server
    with probability ``preset.reach`` and at least one server.  ``devices``
    overrides the preset's choice of per-user device nodes.
    """
    p = get_preset(preset) if isinstance(preset, str) else preset
    U, N = int(users), int(nodes)

    def uni(rng_pair, size=None):
        lo, hi = rng_pair
        return rng.uniform(lo, hi, size=size)

    up = uni(p.uplink_mbps, (U, N)) * 1e6
    down = uni(p.downlink_mbps, (U, N)) * 1e6
    delay = uni(p.access_delay_ms, (U, N)) * 1e-3
    reach = rng.random((U, N)) < p.reach
    reach[np.arange(U), rng.integers(0, N, size=U)] = True
    ef = uni(p.edge_tflops, N) * 1e12
    em = uni(p.edge_mem_gbps, N) * 1e9
    es = uni(p.edge_storage_gib, N) * GIB
    bh = float(uni(p.backhaul_gbps)) * 1e9
    rtt = uni(p.cloud_rtt_ms, U) * 1e-3
    cf = float(uni(p.cloud_tflops)) * 1e12
    cm = float(uni(p.cloud_mem_gbps)) * 1e9
    dev = p.devices if devices is None else bool(devices)
    df = dm = ds = None
    if dev:
        df = uni(p.device_tflops, U) * 1e12
        dm = uni(p.device_mem_gbps, U) * 1e9
        ds = uni(p.device_storage_gib, U) * GIB
    return EdgeNetwork(preset=p.name, uplink=up, downlink=down, access_delay=delay, reach=reach,
                       edge_flops=ef, edge_mem=em, edge_storage=es, backhaul=bh, cloud_rtt=rtt,
                       cloud_flops=cf, cloud_mem=cm, device_flops=df, device_mem=dm, device_storage=ds)


def expert_call_latency(hidden_bytes, expert_flops, expert_bytes, uplink, downlink, hop_delay,
                        flops, mem_bw):
    """Seconds for one token through one expert: transfer both ways, hops, roofline compute.

    ``8 h / up + 8 h / down + 2 d + max(F / flops, B / mem_bw)``; every argument
    broadcasts (numpy).  ``uplink = downlink = inf`` and ``hop_delay = 0``
    describe a node with no network hop (the user's own device).
    """
    bits = 8.0 * np.asarray(hidden_bytes, dtype=float)
    transfer = bits / np.asarray(uplink, dtype=float) + bits / np.asarray(downlink, dtype=float)
    compute = np.maximum(np.asarray(expert_flops, dtype=float) / np.asarray(flops, dtype=float),
                         np.asarray(expert_bytes, dtype=float) / np.asarray(mem_bw, dtype=float))
    return transfer + 2.0 * np.asarray(hop_delay, dtype=float) + compute


def latency_tables(net: EdgeNetwork, hidden_bytes: float, expert_flops: np.ndarray,
                   expert_bytes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``t float64 (U, N [+ U], L)`` (``inf`` = unreachable) and ``c float64 (U, L)``.

    ``expert_flops``, ``expert_bytes`` : float (L,), per MoE layer.  Device
    nodes, when present, follow the edge servers in user order.
    """
    F = np.asarray(expert_flops, dtype=float)[None, None, :]
    B = np.asarray(expert_bytes, dtype=float)[None, None, :]
    t = expert_call_latency(hidden_bytes, F, B, net.uplink[:, :, None], net.downlink[:, :, None],
                            net.access_delay[:, :, None], net.edge_flops[None, :, None],
                            net.edge_mem[None, :, None])
    t = np.where(net.reach[:, :, None], t, np.inf)
    # the cloud path uses the user's best reachable server link
    score = np.where(net.reach, 8.0 * hidden_bytes * (1 / net.uplink + 1 / net.downlink) + 2 * net.access_delay,
                     np.inf)
    best = np.argmin(score, axis=1)
    u = np.arange(net.U)
    c = expert_call_latency(hidden_bytes, F[0], B[0], net.uplink[u, best][:, None], net.downlink[u, best][:, None],
                            net.access_delay[u, best][:, None] + 0.5 * net.cloud_rtt[:, None]
                            + 8.0 * hidden_bytes / net.backhaul, net.cloud_flops, net.cloud_mem)
    if net.has_devices:
        d = expert_call_latency(hidden_bytes, F[0], B[0], np.inf, np.inf, 0.0,
                                net.device_flops[:, None], net.device_mem[:, None])       # (U, L)
        dev = np.full((net.U, net.U, F.shape[2]), np.inf)
        dev[u, u] = d
        t = np.concatenate([t, dev], axis=1)
    return t, c
