"""Physics of the edge-network model: the per-call formula, its monotonicity, reachability."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slimcaching.errors import InputError
from slimcaching.instances.catalog import get_architecture
from slimcaching.instances.network import (PRESETS, expert_call_latency, get_preset, latency_tables,
                                           sample_network)
from slimcaching.instances.suites import model_instance

pos = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False, allow_infinity=False)


def _reference(h, F, B, up, down, d, phi, beta):
    """The formula of the module docstring, written out for one call."""
    return 8 * h / up + 8 * h / down + 2 * d + max(F / phi, B / beta)


@settings(max_examples=60, deadline=None)
@given(h=pos, F=pos, B=pos, up=pos, down=pos, d=pos, phi=pos, beta=pos, k=st.floats(1.01, 10.0))
def test_latency_follows_the_formula_and_is_monotone(h, F, B, up, down, d, phi, beta, k):
    t = float(expert_call_latency(h, F, B, up, down, d, phi, beta))
    assert t == pytest.approx(_reference(h, F, B, up, down, d, phi, beta), rel=1e-12)
    # grows with expert size (bytes, FLOPs) and hidden size; falls with rates and compute
    assert expert_call_latency(h, F, B * k, up, down, d, phi, beta) >= t
    assert expert_call_latency(h, F * k, B, up, down, d, phi, beta) >= t
    assert expert_call_latency(h * k, F, B, up, down, d, phi, beta) > t
    assert expert_call_latency(h, F, B, up * k, down, d, phi, beta) < t
    assert expert_call_latency(h, F, B, up, down * k, d, phi, beta) < t
    assert expert_call_latency(h, F, B, up, down, d, phi * k, beta * k) < t
    assert expert_call_latency(h, F, B, up, down, d * k, phi, beta) > t


def test_memory_bound_compute_grows_strictly_with_expert_bytes():
    # a batch-1 decode on an RTX-class node: reading the weights dominates
    a = get_architecture("Mixtral-8x7B")
    t16, t8, t4 = (float(expert_call_latency(a.hidden_bytes, a.expert_flops, a.expert_bytes(b), 1e8, 1e8, 1e-3,
                                             1.6e14, 1e12)) for b in (16, 8, 4))
    assert t16 > t8 > t4


@pytest.mark.parametrize("preset", list(PRESETS))
def test_tables_match_the_formula_elementwise(preset):
    rng = np.random.default_rng(5)
    net = sample_network(preset, 3, 4, rng)
    a = get_architecture("OLMoE-1B-7B")
    B = np.array([a.expert_bytes(16), a.expert_bytes(4)])
    F = np.full(2, float(a.expert_flops))
    t, c = latency_tables(net, a.hidden_bytes, F, B)
    U, N = net.U, net.N
    assert t.shape == (U, N + (U if net.has_devices else 0), 2) and c.shape == (U, 2)
    for u in range(U):
        for n in range(N):
            for l in range(2):
                if not net.reach[u, n]:
                    assert t[u, n, l] == np.inf
                    continue
                ref = _reference(a.hidden_bytes, F[l], B[l], net.uplink[u, n], net.downlink[u, n],
                                 net.access_delay[u, n], net.edge_flops[n], net.edge_mem[n])
                assert t[u, n, l] == pytest.approx(ref, rel=1e-12)
        # the cloud: best reachable server link, backhaul both ways, round trip, cloud compute
        reach = np.flatnonzero(net.reach[u])
        acc = [8 * a.hidden_bytes * (1 / net.uplink[u, n] + 1 / net.downlink[u, n]) + 2 * net.access_delay[u, n]
               for n in reach]
        for l in range(2):
            ref = (min(acc) + 16 * a.hidden_bytes / net.backhaul + net.cloud_rtt[u]
                   + max(F[l] / net.cloud_flops, B[l] / net.cloud_mem))
            assert c[u, l] == pytest.approx(ref, rel=1e-12)
    assert np.all(net.reach.any(axis=1)), "every user reaches at least one server"
    assert np.all(np.isfinite(c)) and np.all(c > 0)


def test_device_nodes_are_reachable_only_by_their_user():
    inst = model_instance("Phi-3.5-MoE", network="5g-device", nodes=2, users=3, layers=2, seed=4)
    assert inst.node_names[2:] == ("device-user-0", "device-user-1", "device-user-2")
    reach = inst.reachable()
    assert np.array_equal(reach[:, 2:], np.eye(3, dtype=bool))
    # no network hop: the device's time is its roofline compute only
    net = sample_network("5g-device", 2, 3, np.random.default_rng(4))
    a = get_architecture("Phi-3.5-MoE")
    t, _ = latency_tables(net, a.hidden_bytes, [a.expert_flops], [a.expert_bytes(16)])
    for u in range(3):
        assert t[u, 2 + u, 0] == pytest.approx(max(a.expert_flops / net.device_flops[u],
                                                   a.expert_bytes(16) / net.device_mem[u]))


def test_devices_can_be_switched_on_and_off():
    on = model_instance("Mixtral-8x7B", network="wifi-rtx", nodes=2, users=2, layers=1, seed=1, devices=True)
    off = model_instance("Mixtral-8x7B", network="5g-device", nodes=2, users=2, layers=1, seed=1, devices=False)
    assert on.N == 4 and off.N == 2


def test_bigger_experts_and_slower_networks_cost_more_in_generated_instances():
    kw = dict(nodes=3, users=2, layers=2, seed=11)
    big = model_instance("Mixtral-8x7B", network="wifi-jetson", **kw)
    small = model_instance("Mixtral-8x7B", network="wifi-jetson", precision="int4", **kw)
    fin = np.isfinite(big.latency)
    assert np.all(big.latency[fin] > small.latency[fin])
    assert np.all(big.cloud_latency > small.cloud_latency)


def test_unknown_preset_is_an_input_error():
    with pytest.raises(InputError, match=r"--network: unknown network preset 'lte'; valid: wifi-rtx, 5g-mec"):
        get_preset("lte")
    assert get_preset("WiFi-RTX").name == "wifi-rtx"
