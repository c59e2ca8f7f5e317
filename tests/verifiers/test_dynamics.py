"""Hastie et al.'s ridgeless risk, min-norm fits, grokking timing and the modularity measures."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verifiers import dynamics as dy
from verifiers import modularity as mo

fast = settings(max_examples=50, deadline=None)


def test_hastie_risk_reproduces_theorem_1_values():
    """Hastie et al. Thm. 1 at r² = 1, σ² = 0.25: 0.0625 at γ = 0.2, 1.2 at γ = 1.25, 0.8625 at γ = 5."""
    assert dy.hastie_isotropic_risk(0.2, 1.0, 0.25) == pytest.approx(0.0625)
    assert dy.hastie_isotropic_risk(1.25, 1.0, 0.25) == pytest.approx(1.2)
    assert dy.hastie_isotropic_risk(5.0, 1.0, 0.25) == pytest.approx(0.8625)
    assert math.isinf(dy.hastie_isotropic_risk(1.0, 1.0, 0.25))


@fast
@given(g=st.floats(1.01, 50), r2=st.floats(0.1, 10), s2=st.floats(0.0, 5))
def test_overparameterised_risk_tends_to_the_null_risk(g, r2, s2):
    """For γ > 1 the risk lies between the bias r²(1 − 1/γ) and bias plus σ²/(γ − 1)."""
    R = dy.hastie_isotropic_risk(g, r2, s2)
    assert r2 * (1 - 1 / g) - 1e-12 <= R <= r2 * (1 - 1 / g) + s2 / (g - 1) + 1e-9


@fast
@given(n=st.integers(2, 12), p=st.integers(1, 12), seed=st.integers(0, 1000))
def test_min_norm_fit_is_the_pseudoinverse_solution(n, p, seed):
    """The Gram-system solution equals pinv(X)·y in both regimes."""
    rng = np.random.default_rng(seed)
    X, y = rng.standard_normal((n, p)), rng.standard_normal(n)
    assert np.allclose(dy.min_norm_fit(X, y), np.linalg.pinv(X) @ y, atol=1e-6)


def test_conditional_risk_matches_explicit_fits():
    """The risk averaged over noise and β in closed form agrees with fitting noisy data explicitly."""
    rng = np.random.default_rng(0)
    n, p, r2, s2 = 40, 80, 1.0, 0.25
    fits = []
    for _ in range(400):
        X = rng.standard_normal((n, p))
        beta = rng.standard_normal(p)
        beta *= math.sqrt(r2) / np.linalg.norm(beta)
        y = X @ beta + math.sqrt(s2) * rng.standard_normal(n)
        fits.append(np.sum((dy.min_norm_fit(X, y) - beta) ** 2))
    closed = dy._iso_risk(n, p / n, r2, s2, 400, np.random.default_rng(1))
    assert np.mean(fits) == pytest.approx(closed, rel=0.05)


def test_random_features_peak_at_the_interpolation_threshold():
    """Test error at N = n is far above the errors well below and well above it."""
    curve = dy._random_features_curve(60, 10, [0.3, 1.0, 10.0], 0.1, np.random.default_rng(0))
    assert curve[1] > 5 * curve[0] and curve[1] > 5 * curve[2]


def test_grokking_counts_a_seed_that_never_generalises_at_the_budget():
    """Without enough steps to generalise, the delay is censored at the budget and flagged."""
    ev = dy.grokking(p=11, train_frac=0.5, lr=1e-2, weight_decay=1.0, d=8, h=16, max_steps=60,
                     eval_every=10, level=0.99, seeds=[0], device="cpu")
    assert ev.measured["frac_seeds_generalised"].value == 0
    assert ev.measured["steps_to_generalise"].value == 60


def test_predictivity_is_one_for_a_neuron_that_is_the_concept():
    """A neuron equal to a concept's indicator has predictivity 1 for it."""
    Y = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], dtype=float)
    H = np.column_stack([Y[:, 0], np.arange(4.0)])
    assert mo.predictivity(H, Y)[0, 0] == pytest.approx(1.0)


def test_kmeans_separates_two_obvious_groups():
    """Neurons with two clearly different weight directions fall into two clusters."""
    rng = np.random.default_rng(0)
    W = np.vstack([[5, 0] + 0.1 * rng.standard_normal((6, 2)), [0, 5] + 0.1 * rng.standard_normal((6, 2))])
    lab = mo.kmeans_partition(W, 2, rng)
    assert len(set(lab[:6])) == 1 and len(set(lab[6:])) == 1 and lab[0] != lab[6]


def test_adjacent_spearman_is_one_for_identical_checkpoints():
    """Predictivities that never change have consecutive-checkpoint correlation 1."""
    P = np.random.default_rng(0).standard_normal((10, 3))
    assert np.allclose(mo._adjacent_spearman([P, P, P]), 1.0)


def test_expert_scores_average_each_module_in_order_of_its_first_neuron():
    """An expert scores the mean of its neurons; experts come in the order of their first neuron."""
    P = np.arange(8.0).reshape(4, 2)
    assert np.array_equal(mo._expert_scores(P, np.array([3, 1, 3, 1])), [[2.0, 3.0], [4.0, 5.0]])


def test_modules_of_one_neuron_settle_exactly_as_neurons_do():
    """With one neuron per module (the falsifier), experts and random partitions give gaps of exactly 0."""
    rng = np.random.default_rng(0)
    A, Y = rng.standard_normal((5, 1, 40, 6)), (rng.random((40, 4)) < 0.5).astype(float)
    gap_neuron, gap_random, _ = mo._stability_gaps(A, Y, rng.standard_normal((1, 3, 6)), 6, 3, [0])
    assert gap_neuron == [0.0] and gap_random == [0.0]
