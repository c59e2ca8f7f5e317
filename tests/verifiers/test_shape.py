"""The GPT adapter of the batched stack and the shape verifiers (depth/width sweeps, deep-narrow transfer)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from verifiers import shape
from verifiers.lab.data import MarkovSource
from verifiers.lab.gpt import GPT, GPTConfig
from verifiers.lab.batched import BatchedAdamW, lr_table, train
from verifiers.lab.feeds import markov_batches
from verifiers.lab.stacks import GPTStack

fast = settings(max_examples=40, deadline=None)

SWITCHES = [{}, {"norm": "post"}, {"pos": "rope"}, {"pos": "alibi"}, {"pos": "none"},
            {"parallel": True}, {"n_kv_head": 1}, {"tie_embeddings": False}]


@pytest.mark.parametrize("kw", SWITCHES)
def test_stacked_copies_equal_the_lab_gpt(kw):
    """Each stacked copy computes exactly the logits of the lab GPT built with its seed."""
    cfg = GPTConfig(vocab_size=11, n_ctx=9, n_layer=2, d_model=16, n_head=4, **kw)
    net = GPTStack(cfg, [3, 8], "cpu")
    x = torch.randint(0, 11, (2, 3, 9))
    with torch.no_grad():
        out = net(x)
        for k, s in enumerate([3, 8]):
            torch.manual_seed(s)
            assert torch.allclose(out[k], GPT(cfg)(x[k]), atol=1e-5)


def _losses(cfg, src, seeds):
    net = GPTStack(cfg, seeds, "cpu")
    K = len(seeds)
    return train(net, BatchedAdamW(net, (0.9, 0.95)), markov_batches(src, seeds, 4, 6, True, "cpu"),
                 lr_table([1e-2] * K, [5] * K, "cosine"), [5] * K, [0.0] * K).array("loss")


def test_stacked_training_equals_separate_runs():
    """Training two seeds stacked gives each the losses it has when trained alone."""
    src = MarkovSource(V=8, order=1, alpha=0.3, seed=0)
    cfg = GPTConfig(vocab_size=8, n_ctx=6, n_layer=1, d_model=8, n_head=2)
    assert np.allclose(_losses(cfg, src, [1, 2])[:, 1], _losses(cfg, src, [2])[:, 0], atol=1e-5)


def test_soft_targets_are_the_true_next_token_rows():
    """Soft targets are the source's transition rows at positions with a full context."""
    src = MarkovSource(V=5, order=2, alpha=0.5, seed=1)
    inp, tgt = markov_batches(src, [0], 3, 7, True, "cpu")(0, [0])
    assert torch.all(tgt[0, :, 0] == 0)  # position 0 lacks a full order-2 context
    assert torch.allclose(tgt[0, :, 1:].sum(-1), torch.ones(3, 6))


@fast
@given(L=st.integers(1, 12), d_ref=st.integers(8, 64), L_ref=st.integers(1, 4))
def test_width_for_depth_keeps_the_parameter_budget(L, d_ref, L_ref):
    """The width chosen for a depth keeps 12·L·d² within rounding of the reference budget."""
    n_head = 2
    d = shape.width_for_depth(L, d_ref, L_ref, n_head)
    exact = d_ref * math.sqrt(L_ref / L)
    assert d % n_head == 0 and abs(d - exact) <= n_head / 2 + 1e-9 or d == n_head


@fast
@given(N=st.floats(1e4, 1e12))
def test_levine_threshold_solves_its_equation(N):
    """The threshold depth satisfies L = log₃ d with d = sqrt(N / 12L)."""
    L = shape.levine_depth_threshold(N)
    assert L == pytest.approx(math.log(math.sqrt(N / (12 * L)), 3), rel=1e-6)


def test_vertex_of_an_exact_parabola():
    """The optimum finder returns the vertex of a parabola that opens upward inside the sweep."""
    x = np.log2([1.0, 2, 4, 8])
    assert shape._vertex(x, (x - 1.3) ** 2 + 2) == pytest.approx(1.3)


def test_vertex_falls_back_to_the_grid_for_a_monotone_curve():
    """A loss that only rises with depth puts the optimum at the shallowest depth."""
    x = np.log2([1.0, 2, 4])
    assert shape._vertex(x, np.array([1.0, 1.5, 2.5])) == 0.0


def test_perturbed_source_with_no_resampling_is_the_source():
    """Redrawing no rows leaves the transition matrix and entropy unchanged."""
    src = MarkovSource(V=6, order=2, alpha=0.2, seed=3)
    same = shape._perturbed(src, 0.0, 9)
    assert np.allclose(same.P, src.P) and same.entropy == pytest.approx(src.entropy)


def test_shape_sweep_measures_every_quantity():
    """A tiny sweep reports finite spread, optimum and size-gain measures."""
    ev = shape.shape_sweep(depths=[1, 2], d_ref=8, L_ref=2, n_head=2, size_factor=4.0, min_layers=2,
                           V=8, order=2, alpha=0.1, source_seed=0, data_draws=[0, 1], steps=3, B=4, T=8,
                           lr_grid=[1e-2, 2e-2], seeds=[0, 1], eval_seqs=8, device="cpu")
    for key in ("spread_ratio", "worst_shape_ratio", "size_gain", "optimal_depth",
                "optimum_edge_octaves", "one_layer_excess", "optimum_vs_levine_octaves"):
        assert ev.measured[key].finite(), key
    assert ev.seeds == [0, 1] and ev.figures


def test_a_draw_measures_the_same_whichever_draws_train_beside_it():
    """Draws train in one stack, yet each draw's losses are those it has when swept alone."""
    kw = dict(depths=[1, 2], d_ref=8, L_ref=2, n_head=2, size_factor=4.0, min_layers=2, V=8, order=2,
              alpha=0.1, source_seed=0, steps=3, B=4, T=8, lr_grid=[1e-2, 2e-2], seeds=[0, 1],
              eval_seqs=8, device="cpu")
    rows = lambda ev: {(r["n_layer"], r["d_model"]): r["loss_mean"] for r in ev.table if r["draw"] == 1}
    both, alone = shape.shape_sweep(data_draws=[0, 1], **kw), shape.shape_sweep(data_draws=[1], **kw)
    assert rows(both) == pytest.approx(rows(alone), abs=1e-6)
