"""Length extrapolation: the topic source, per-position loss and the scheme comparison."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from verifiers import positions
from verifiers.lab.gpt import GPTConfig
from verifiers.lab.stacks import GPTStack

SMALL = dict(T=6, factor=2, schemes=["learned", "rope", "alibi", "none"], V=5, topics=3, alpha=0.5, lam=0.5,
             L=1, d=8, n_head=2, lr=0.01, steps=2, B=4, data_draws=[0], seeds=[0, 1], eval_seqs=8)


def test_topic_law_is_a_distribution():
    """The exact next-token law sums to one at every position."""
    src = positions.TopicSource(V=6, K=4, alpha=0.5, lam=0.5, seed=0)
    q = src.true_next(src.sample(10, 12, np.random.default_rng(0)))
    assert torch.allclose(q.sum(-1), torch.ones(10, 11), atol=1e-5)


def test_longer_context_lowers_the_optimal_loss():
    """The more tokens seen, the surer the topic: the exact predictor's loss falls with position."""
    src = positions.TopicSource(V=16, K=16, alpha=0.5, lam=0.5, seed=0)
    f = src.optimal_loss(src.sample(2000, 40, np.random.default_rng(1))).numpy()
    assert f[30:].mean() < f[5:10].mean() < f[0]


def test_one_topic_has_a_flat_optimal_loss():
    """With a single topic there is nothing to infer, and position does not matter."""
    src = positions.TopicSource(V=6, K=1, alpha=0.5, lam=0.5, seed=0)
    q = src.true_next(src.sample(4, 10, np.random.default_rng(0)))
    assert torch.allclose(q, q[:, :1].expand_as(q), atol=1e-6)


@pytest.mark.parametrize("pos", ["rope", "alibi", "none"])
def test_relative_schemes_run_beyond_the_training_length(pos):
    """Rotary, ALiBi and no-position models accept sequences longer than any seen in training."""
    stack = GPTStack(GPTConfig(vocab_size=5, n_ctx=4, n_layer=1, d_model=8, n_head=2, pos=pos), [0], "cpu")
    assert stack(torch.randint(0, 5, (1, 2, 16))).shape == (1, 2, 16, 5)


def test_tiny_run_reports_every_scheme_and_the_optimum():
    """A tiny run reports a ratio per scheme, the paired differences and the exact predictor's ratio."""
    ev = positions.length_extrapolation(**SMALL)
    for key in ("ratio_learned", "ratio_rope", "ratio_alibi", "ratio_none", "rope_minus_alibi", "ratio_optimal"):
        assert np.isfinite(ev.measured[key].value), key


def test_unknown_scheme_is_rejected():
    """A position scheme the GPT does not have is refused with a message naming it."""
    with pytest.raises(ValueError, match="sinusoidal"):
        positions.length_extrapolation(**{**SMALL, "schemes": ["sinusoidal"]})
