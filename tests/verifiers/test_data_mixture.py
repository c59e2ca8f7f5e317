"""Synthetic domains, mixture streams, the batched MLP LM and the DoReMi weight update."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from verifiers import data_mixture as dm
from verifiers import doremi
from verifiers.lab.data import MarkovSource
from verifiers.lab.data import blend_sources, with_rows
from verifiers.lab.stacks import MLPStack
from verifiers.lab.train import MLPLM

fast = settings(max_examples=40, deadline=None)


def test_stacked_members_equal_separately_built_models():
    """Each member of a stacked model computes exactly what MLPLM computes under its seed."""
    stacked = MLPStack(16, 2, 8, [12, 12], 1, [3, 7], "cpu")
    x = torch.randint(0, 16, (2, 4, 9))
    for m, seed in enumerate([3, 7]):
        torch.manual_seed(seed)
        assert torch.allclose(MLPLM(16, 2, 8, 12)(x[m]), stacked(x)[m], atol=1e-6)


def test_blend_keeps_rows_normalised_and_entropy_exact():
    """A blended domain has stochastic rows, and its entropy is recomputed from them."""
    a = MarkovSource(V=8, order=2, alpha=0.5, seed=1, support=3)
    b = MarkovSource(V=8, order=2, alpha=0.5, seed=2, support=3)
    c = blend_sources(a, b, 0.5)
    assert np.allclose(c.P.sum(1), 1)
    assert c.entropy == pytest.approx(with_rows(a, 0.5 * a.P + 0.5 * b.P).entropy)


@fast
@given(w=st.lists(st.floats(0.01, 1.0), min_size=2, max_size=4), steps=st.integers(1, 6))
def test_mixture_stream_has_the_requested_shares(w, steps):
    """A stream holds steps × B sequences, with each domain's count within one of its share."""
    srcs = [MarkovSource(V=16, order=1, alpha=1.0, seed=d) for d in range(len(w))]
    pools = dm.Pools(T=8, block=64)
    B = 8
    out = dm.mixture_stream(pools, 0, srcs, np.array(w), steps, B)
    assert out.shape == (steps, B, 9)
    rows = [tuple(r.tolist()) for r in out.reshape(-1, 9)]
    share = np.array(w) / sum(w) * steps * B
    for d, s in enumerate(srcs):
        pool = {tuple(r.tolist()) for r in pools.get(0, d, s, steps * B)}
        assert abs(sum(r in pool for r in rows) - share[d]) <= 1


def test_pools_give_the_same_prefix_however_many_are_asked():
    """Asking a pool for more rows never changes the rows it handed out before."""
    src = MarkovSource(V=6, order=1, alpha=1.0, seed=0)
    pools = dm.Pools(T=5, block=16)
    first = pools.get(1, 0, src, 10).clone()
    assert torch.equal(pools.get(1, 0, src, 40)[:10], first)


@fast
@given(excess=st.lists(st.floats(0, 5), min_size=2, max_size=6))
def test_doremi_step_upweights_larger_excess_and_stays_on_the_simplex(excess):
    """One Group-DRO step keeps weights summing to 1, above c/k, ordered like the excess losses."""
    k = len(excess)
    a = doremi.doremi_weights(np.array(excess), np.full(k, 1 / k), eta=1.0, c=1e-3)
    assert a.sum() == pytest.approx(1)
    assert (a >= 1e-3 / k - 1e-12).all()
    order = np.argsort(excess)
    assert all(a[i] <= a[j] + 1e-12 for i, j in zip(order, order[1:]))


def test_single_domain_mixture_equals_the_single_source():
    """With K = 1 the two models see the same data from the same start, so the gain is exactly 0."""
    ev = dm.data_diversity(V=32, K=1, alpha=0.5, support=8, lam=0.5, steps=5, B=4, T=8, lr=0.01, d_hidden=8,
                           d_emb=4, seeds=[0, 1])
    assert ev.measured["heldout_gain"].value == 0


def test_vanishing_dro_step_keeps_doremi_at_the_baseline():
    """With η → 0 the weights stay uniform, so DoReMi's main model is the reference: no gain."""
    ev = doremi.data_mixture_weights(V=8, supports=[2, 4], alpha=0.5, lam=0.5, steps=4, B=4, T=6, lr=0.01,
                                     d_hidden=8, d_emb=4, eta=1e-9, c=1e-3, eval_every=2, data_draws=[0, 1],
                                     seeds=[0])
    assert abs(ev.measured["avg_loss_gain"].value) < 1e-6
    assert ev.replication["data_draws"] == 2


def test_rare_vocabulary_is_rare_in_general_text_and_common_in_the_domain():
    """The domain's tokens carry under 1% of general text and at least λ of the domain's."""
    gen, dom = dm._rare_vocab_pair(16, 4, 0.3, 0.5, 0.02, seed=0)
    rare = lambda s: float(s.pi @ s.P[:, 16:].sum(1))
    assert rare(gen) < 0.01
    assert rare(dom) >= 0.5 - 1e-9


@pytest.mark.parametrize("cid, fn", [("data-diversity", dm.data_diversity),
                                     ("domain-pretraining", dm.domain_pretraining)])
def test_mixture_runs_report_one_data_draw_per_seed(cid, fn):
    """Each seed redraws its sources and streams: as many data draws as seeds, one init in each."""
    from tests.verifiers.claims import params
    ev = fn(**params(cid, steps=2, B=2, T=4, d_hidden=8, d_emb=4, seeds=[0, 1]))
    assert (ev.replication["data_draws"], ev.replication["seeds"]) == (2, 1) and ev.replication["reason"]
    assert ev.scale["max_params"] > 0 and ev.scale["max_tokens"] == 2 * 2 * 4 and ev.scale["data"]
