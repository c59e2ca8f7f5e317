"""Training past the compute-optimal point: horizons in steps and the paired loss drops."""
from __future__ import annotations

import pytest

from verifiers import overtraining as ot

SMALL = dict(L=1, d=8, n_head=2, V=6, order=1, alpha=0.5, lr=0.01, warmup_frac=0.1, B=4, T=8, eval_seqs=8,
             data_draws=[0], seeds=[0, 1])


def test_steps_feed_the_requested_tokens():
    """20 tokens per parameter for 1,000 parameters at 100 tokens per step is 200 steps."""
    assert ot.steps_for(20, 1000, 10, 10) == 200


def test_horizons_must_include_the_optimum():
    """The comparison point has to be one of the trained horizons."""
    with pytest.raises(ValueError, match="optimum_tpp"):
        ot.past_optimum(optimum_tpp=20, horizons=[1, 2], **SMALL)


def test_tiny_run_reports_the_drops_and_each_horizon():
    """A tiny run reports the drop past the optimum, the last doubling and one loss per horizon."""
    ev = ot.past_optimum(optimum_tpp=0.5, horizons=[0.5, 1], **SMALL)
    for key in ("loss_drop_past_optimum", "last_doubling_drop", "loss_at_0.5_tpp", "loss_at_1_tpp"):
        assert ev.measured[key].finite(), key
