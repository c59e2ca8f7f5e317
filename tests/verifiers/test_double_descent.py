"""Trained-network double descent: the masked width sweep and its peak measures."""
from __future__ import annotations

import numpy as np
import torch

from verifiers import double_descent as dd


def test_parameter_count_of_a_two_layer_mlp():
    """Width h on d inputs has d·h + h weights and biases in, h + 1 out."""
    assert dd.mlp_params(20, 5) == 20 * 5 + 5 + 5 + 1


def test_masked_member_equals_its_own_width():
    """A member of the stacked sweep starts as an MLP of exactly its width: masked units add nothing."""
    (W1, b1, W2, b2), mask = dd._init([2, 5], [0], d=3)
    x = torch.randn(4, 3)
    hid = torch.relu(x @ W1[0, :, :2] + b1[0, :, :2])
    want = hid @ W2[0, :2] + b2[0]
    got = (torch.relu(x[None] @ W1 + b1) * mask[:, None]) @ W2 + b2
    assert torch.allclose(got[0], want, atol=1e-6)


def test_teacher_test_targets_are_noiseless():
    """Label noise touches the training and validation labels, not the test targets."""
    X, y, Xv, yv, Xt, yt = dd.teacher_data(200, 200, 4, 0.5, draw=0)
    assert float(yt.abs().max()) <= 1.0 < float(y.abs().max())
    assert Xt.shape == (200, 4) and yv.shape == (200,)


def test_width_sweep_returns_one_error_per_seed_and_width():
    """The sweep reports end-of-training and early-stopped test errors per (seed, width)."""
    data = dd.teacher_data(20, 40, 3, 0.1, draw=1)
    end, stop = dd.train_width_sweep(data, [1, 4, 40], [0, 1], lr=0.01, steps=20, eval_every=5)
    assert end.shape == stop.shape == (2, 3) and np.isfinite(end).all()


def test_ridge_fit_solves_the_penalised_normal_equations():
    """Both forms (p > n and p ≤ n) give (ΦᵀΦ + nλI)⁻¹Φᵀy; λ = 0 gives the min-norm interpolant."""
    rng = np.random.default_rng(0)
    for p in (5, 30):
        Phi, y = rng.standard_normal((12, p)), rng.standard_normal(12)
        want = np.linalg.solve(Phi.T @ Phi + 12 * 0.1 * np.eye(p), Phi.T @ y)
        assert np.allclose(dd.ridge_fit(Phi, y, 0.1), want)
    assert np.allclose(Phi @ dd.ridge_fit(Phi, y, 0.0), y)  # p = 30 > n: it interpolates


def test_ridge_removes_the_random_feature_peak():
    """On the claim's task the ridgeless sweep peaks at N = n far above the ridge-0.01 sweep there."""
    ratios = [0.5, 1.0, 5.0]
    ridgeless = dd.random_feature_curves(100, 20, ratios, 0.1, 0.0, [0, 1])
    ridge = dd.random_feature_curves(100, 20, ratios, 0.1, 0.01, [0, 1])
    assert (ridgeless[:, 1] > 2 * ridgeless[:, 0]).all()  # the peak at N = n
    assert (ridge[:, 1] < 1.5 * ridge[:, 0]).all()  # gone with the ridge
