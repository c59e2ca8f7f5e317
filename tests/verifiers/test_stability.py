"""Stability verifiers: the normalisation table, the warm-up arms, the cliff RNN and clipping."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from verifiers import stability
from verifiers.lab.data import MarkovSource


def test_norm_table_differs_from_the_seed_only_for_pythia():
    """Against the models' own papers, the seed's table is wrong only about Pythia."""
    wrong = [m for m, seed, paper, _ in stability.NORM_TABLE if seed != paper]
    assert wrong == ["Pythia"]


def test_norm_table_counts_four_pre_norm_models():
    """By their papers, four of the seed's five models normalise before each sub-layer."""
    assert sum(p == "pre" for _, _, p, _ in stability.NORM_TABLE) == 4


def test_rnn_loss_follows_the_recurrence():
    """The cliff network's loss is (x_T − target)² for x_t = w·tanh(x_(t−1)) + b."""
    x = 0.5
    for _ in range(3):
        x = 1.5 * math.tanh(x) - 0.2
    got = stability._rnn_loss(torch.tensor([1.5]), torch.tensor([-0.2]), 0.5, 3, 0.7)
    assert float(got) == pytest.approx((x - 0.7) ** 2)


def test_clipped_steps_never_exceed_eta_times_threshold():
    """With clipping, no gradient-descent step is longer than η·threshold."""
    w = torch.linspace(0.0, 4.0, 50, dtype=torch.float64)
    b = torch.zeros(50, dtype=torch.float64)
    jump, _, _ = stability._descend(w, b, True, 0.5, 0.1, 20, 50, 0.5, 0.7)
    assert float(jump.max()) <= 0.05 + 1e-12


def test_unclipped_descent_catapults_on_the_cliff():
    """Without clipping some starts take a step longer than a quarter of the box."""
    ev = stability.grad_clipping(threshold_rel=1.0, eta=0.1, gd_steps=20, n_inits=200, T=50, x0=0.5, target=0.7,
                                 w_range=[0.0, 4.0], b_range=[-2.0, 2.0], catapult=1.0, solved=1e-3, seeds=[0, 1])
    assert ev.measured["catapult_rate_unclipped"].value > 0
    assert ev.measured["catapult_rate_clipped"].value == 0


def test_unigram_entropy_of_an_order_one_source():
    """The context-free baseline of an order-1 chain is the entropy of its stationary law."""
    src = MarkovSource(V=6, order=1, alpha=0.5, seed=2)
    p = src.pi
    assert stability.unigram_entropy(src) == pytest.approx(float(-(p * np.log(p)).sum()))


def test_xavier_init_gives_unit_norm_embeddings():
    """The Xiong-style init draws token vectors with entries of variance 1/d."""
    stack = stability._stack("post", "xavier", 2, 64, 4, 50, 8, [0], [(0, 0)])
    norms = stack.p("wte.weight")[0].detach().norm(dim=1)
    assert float(norms.mean()) == pytest.approx(1.0, rel=0.1)


TINY_NORM = dict(L=2, d=8, n_head=2, init="xavier", lr=0.03, warmup=2, steps=6, B=4, B_init=8, T=6, V=5, order=1,
                 alpha=0.5, data_draws=[0, 1], seeds=[0, 1], eval_seqs=8)


def test_pre_norm_reports_the_warm_up_arms():
    """A tiny run measures warm-up's gain for both placements, paired over draws and seeds."""
    ev = stability.pre_norm(**TINY_NORM, norms=["pre", "post"])
    for key in ("warmup_gain_post", "warmup_gain_pre", "warmup_need_post_minus_pre", "grad_growth_post"):
        assert ev.measured[key].finite() and ev.measured[key].n == 4, key
    assert ev.replication["data_draws"] == 2


def test_one_placement_in_both_arms_leaves_no_gap():
    """Both arms post-LN (the falsifier): same init and data, so every paired difference is zero."""
    m = stability.pre_norm(**TINY_NORM, norms=["post", "post"]).measured
    for key in ("final_loss_gap_post_minus_pre", "warmup_need_post_minus_pre"):
        assert (m[key].value, m[key].lo, m[key].hi) == (0.0, 0.0, 0.0), key
    assert m["last_layer_grad_post_over_pre"].value == 1.0


def test_grad_clipping_reports_seeds_on_one_fixed_surface():
    """No data: one fixed loss surface, the seeds draw the starting points of a 2-parameter model."""
    from tests.verifiers.claims import params
    ev = stability.grad_clipping(**params("grad-clipping", n_inits=8, gd_steps=3, T=5, seeds=[0, 1]))
    assert (ev.replication["data_draws"], ev.replication["seeds"]) == (1, 2) and ev.replication["reason"]
    assert ev.scale == {"max_params": 2, "max_tokens": 0, "data": ["none:one-unit-rnn"]}


def test_a_threshold_no_gradient_reaches_leaves_steps_unclipped():
    """Clipping at 10^40 × the median norm (the falsifier) never rescales: both arms step alike."""
    from tests.verifiers.claims import params
    m = stability.grad_clipping(**params("grad-clipping", n_inits=64, gd_steps=20, seeds=[0, 1],
                                         threshold_rel=1.0e40)).measured
    assert m["catapult_rate_clipped"].value == m["catapult_rate_unclipped"].value
    assert m["setback_rate_reduction"].value == 0.0
