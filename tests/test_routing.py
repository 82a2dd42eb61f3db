"""Routing model: Plackett-Luce set sizes, marginals within sampling error, topic co-activation."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slimcaching.instances.routing import (RoutingModel, empirical_sets, inclusion_probabilities, layer_routing,
                                           mixture_sets, plackett_luce_exact, plackett_luce_sampled,
                                           plackett_luce_sets, sample_tokens, topic_mixture, user_popularity,
                                           zipf_popularity)
from slimcaching.instances.suites import model_instance


def _pl_loop(pop, K):
    """Plackett-Luce set probabilities from the definition: sum over orders of sequential draws."""
    out = {}
    for S in itertools.combinations(range(len(pop)), K):
        tot = 0.0
        for order in itertools.permutations(S):
            left, pr = 1.0, 1.0
            for e in order:
                pr *= pop[e] / left
                left -= pop[e]
            tot += pr
        out[S] = tot
    return out


@settings(max_examples=20, deadline=None)
@given(E=st.integers(2, 6), K=st.integers(1, 3), seed=st.integers(0, 10_000), skew=st.floats(0.0, 2.0))
def test_exact_plackett_luce_equals_the_definition(E, K, seed, skew):
    K = min(K, E)
    pop = zipf_popularity(E, skew, np.random.default_rng(seed))
    sets, p = plackett_luce_exact(pop, K)
    ref = _pl_loop(pop, K)
    assert p.sum() == pytest.approx(1.0)
    for s, q in zip(sets, p):
        assert q == pytest.approx(ref[tuple(s)], rel=1e-9)


@settings(max_examples=15, deadline=None)
@given(E=st.integers(2, 40), K=st.integers(1, 8), seed=st.integers(0, 10_000), topics=st.integers(0, 4))
def test_every_plackett_luce_set_has_exactly_top_k_distinct_experts(E, K, seed, topics):
    K = min(K, E)
    rng = np.random.default_rng(seed)
    pop = zipf_popularity(E, 1.2, rng)
    w, pops = topic_mixture(pop, topics, 2.0, rng)
    for exact_limit in (0, 10**6):
        sets, p, n = mixture_sets(pops, w, K, rng, tokens=200, exact_limit=exact_limit)
        assert sets.shape[1] == K
        assert np.all(np.sort(sets, axis=1)[:, 1:] != np.sort(sets, axis=1)[:, :-1]) if K > 1 else True
        assert np.all((sets >= 0) & (sets < E))
        assert p.sum() == pytest.approx(1.0) and np.all(p > 0)


def _within_sampling_error(p_hat, p, n, z=5.0):
    sd = np.sqrt(np.maximum(p * (1 - p), 1e-12) / n)
    return np.all(np.abs(p_hat - p) <= z * sd + 1e-12)


def test_top1_frequencies_match_popularity():
    rng = np.random.default_rng(0)
    pop = zipf_popularity(12, 1.0, rng)
    n = 40_000
    sets, p, _ = plackett_luce_sampled(pop, 1, n, rng)
    freq = inclusion_probabilities(sets, p, 12)
    assert _within_sampling_error(freq, pop, n)


@pytest.mark.parametrize("K,topics", [(2, 0), (3, 0), (2, 3)])
def test_sampled_marginals_match_the_exact_model(K, topics):
    rng = np.random.default_rng(K * 10 + topics)
    pop = user_popularity(8, 1, rng, skew=1.3)[0]
    w, pops = topic_mixture(pop, topics, 2.5, rng)
    s_ex, p_ex, _ = mixture_sets(pops, w, K, rng, exact_limit=10**7)
    n = 30_000
    s_sa, p_sa, ntok = mixture_sets(pops, w, K, rng, tokens=n, exact_limit=0)
    assert ntok == n
    assert _within_sampling_error(inclusion_probabilities(s_sa, p_sa, 8), inclusion_probabilities(s_ex, p_ex, 8), n)


def test_generated_instance_marginals_match_the_popularity_model():
    """Same seed, sampled (20k tokens) vs exactly enumerated: activation frequencies agree."""
    kw = dict(network="wifi-rtx", nodes=2, users=3, layers=3, experts=6, seed=21, skew=1.2, topics=2)
    exact = model_instance("OLMoE-1B-7B", top_k=2, **kw)
    n = 20_000
    sampled = model_instance("OLMoE-1B-7B", top_k=2, tokens=n, exact_limit=0, **kw)
    assert exact.metadata["sampled_tokens_per_distribution"] is None
    assert sampled.metadata["sampled_tokens_per_distribution"] == [[n] * 3] * 3
    for u in range(3):
        for l in range(3):
            a, b = exact.sets_of(u, l), sampled.sets_of(u, l)
            f_ex = inclusion_probabilities(exact.set_experts[a], exact.set_prob[a], 6)
            f_sa = inclusion_probabilities(sampled.set_experts[b], sampled.set_prob[b], 6)
            assert _within_sampling_error(f_sa, f_ex, n)
    assert np.all(exact.set_sizes == 2) and np.all(sampled.set_sizes == 2)


def test_topics_strengthen_coactivation_beyond_plackett_luce():
    """Pairs inside one topic block are more frequent than Plackett-Luce on the same mean popularity gives."""
    for seed in range(5):
        rng = np.random.default_rng(seed)
        pop = zipf_popularity(8, 0.5, rng)
        w, pops = topic_mixture(pop, 2, 3.0, rng)
        block = np.argmax(pops, axis=0)                       # each expert's boosted topic
        s_mix, p_mix, _ = mixture_sets(pops, w, 2, rng, exact_limit=10**7)
        s_pl, p_pl, _ = mixture_sets(w @ pops, np.ones(1), 2, rng, exact_limit=10**7)
        same_mix = p_mix[block[s_mix[:, 0]] == block[s_mix[:, 1]]].sum()
        same_pl = p_pl[block[s_pl[:, 0]] == block[s_pl[:, 1]]].sum()
        assert same_mix > same_pl + 0.05


def test_task_specialisation_users_share_hot_experts_and_differ_on_others():
    rng = np.random.default_rng(3)
    pop = user_popularity(16, 4, rng, skew=1.0, specialisation=0.5, tasks=2)
    assert np.allclose(pop.sum(axis=1), 1.0)
    assert np.allclose(pop[0], pop[2]) and np.allclose(pop[1], pop[3])     # same task, same profile
    assert not np.allclose(pop[0], pop[1])
    same = user_popularity(16, 4, np.random.default_rng(3), specialisation=0.0)
    assert np.allclose(same, same[0])


def test_layer_routing_records_sampled_tokens():
    out, ntok, pop = layer_routing(64, 6, 2, RoutingModel(tokens=128), np.random.default_rng(0))
    assert ntok == [128, 128] and pop.shape == (2, 64)
    for sets, p in out:
        assert len(sets) <= 128 and sets.shape[1] == 6


def test_lead_functions_keep_their_behaviour():
    rng = np.random.default_rng(1)
    pop = zipf_popularity(5, 1.0, rng)
    s, p, n = plackett_luce_sets(pop, 2, rng)
    assert n is None and len(s) == 10 and p.sum() == pytest.approx(1)
    s, p, n = plackett_luce_sets(pop, 2, rng, tokens=50, exact_limit=1)
    assert n == 50
    sets, probs, counts = empirical_sets(np.array([[1, 0], [0, 1], [2, 3]]))
    assert sets.tolist() == [[0, 1], [2, 3]] and counts.tolist() == [2, 1]
    toks = sample_tokens(pop[None, :], np.ones(1), 3, 10, rng)
    assert toks.shape == (10, 3)
