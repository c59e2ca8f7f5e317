"""z-loss over a learning-rate sweep: what counts as unstable, LR sensitivity, the null arm."""
from __future__ import annotations

import numpy as np
import pytest

from verifiers import zloss


def test_a_run_above_the_ceiling_is_unstable():
    """A run that ends above the context-free loss counts as unstable even without a spike."""
    curve = np.linspace(3.0, 2.0, 20)[:, None].repeat(2, axis=1)
    bad = zloss.unstable(np.array([1.5, 2.5]), curve, ceiling=2.0, spike_nats=1.0, warmup=2)
    assert bad.tolist() == [False, True]


def test_a_loss_spike_after_warm_up_is_unstable():
    """A rise of more than spike_nats above the best loss so far marks the run."""
    curve = np.r_[np.linspace(3.0, 1.0, 10), 2.5, 1.0][:, None]
    assert zloss.unstable(np.array([1.0]), curve, ceiling=2.0, spike_nats=1.0, warmup=2).tolist() == [True]


def test_nan_runs_are_unstable():
    """A run whose loss is not finite is unstable."""
    curve = np.r_[np.linspace(3.0, 1.0, 5), np.nan][:, None]
    assert zloss.unstable(np.array([np.nan]), curve, ceiling=2.0, spike_nats=1.0, warmup=0).tolist() == [True]


def test_lr_sensitivity_is_zero_for_a_flat_sweep():
    """When every learning rate reaches the same loss, nothing is lost to the sweep."""
    assert zloss.lr_sensitivity(np.full((4, 3), 1.2), init_loss=3.0).tolist() == [0.0] * 3


def test_lr_sensitivity_caps_at_the_initial_loss():
    """A diverged rate costs at most the initial loss minus the best (Wortsman et al. §2)."""
    got = zloss.lr_sensitivity(np.array([[1.0], [np.inf]]), init_loss=3.0)
    assert got[0] == pytest.approx(1.0)


def test_zero_coefficients_change_nothing():
    """With both coefficients zero the arms are the same runs: no reduction and no cost."""
    ev = zloss.z_loss(z_coef=0.0, max_z_coef=0.0, lrs=[0.01, 0.3], spike_nats=1.0, L=1, d=8, n_head=2, steps=4,
                      warmup=1, B=4, T=6, V=8, order=1, alpha=0.5, eval_seqs=8, data_draws=[0], seeds=[0, 1])
    for key in ("unstable_reduction_zloss", "lr_sensitivity_reduction_maxz", "ce_cost_zloss_rel"):
        assert ev.measured[key].value == 0.0, key
