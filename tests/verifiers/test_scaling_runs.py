"""Helpers of the scaling-law run claims (verifiers.scaling_runs) and the long-range source."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from verifiers import compute_optimal as co
from verifiers import scaling_runs as sr
from verifiers.lab.grid import Run
from verifiers.lab.longrange import LagCopySource, LSTMLM, lstm_width_for

fast = settings(max_examples=30, deadline=None)


@fast
@given(C=st.floats(1e8, 1e10), h=st.integers(1, 64))
def test_steps_spend_the_budget(C, h):
    """6·N·D of the chosen step count is the budget up to the rounding of one step."""
    lab = sr.Lab()
    D = co._steps_for(lab, C, h) * lab.tokens_per_step
    one_step = 6 * lab.N(h) * lab.tokens_per_step  # < C/5 over this range, so rounding decides
    assert abs(6 * lab.N(h) * D - C) <= one_step / 2 * (1 + 1e-9)


@fast
@given(v=st.floats(2, 10), c=st.floats(0.01, 1))
def test_parabola_vertex_is_recovered(v, c):
    """For an exact parabola in log N the vertex comes back."""
    x = np.linspace(v - 2, v + 2.5, 6)
    assert co._parabola_min(x, c * (x - v) ** 2 + 1.0) == pytest.approx(v, abs=1e-6)


def test_isoflop_exponents_recover_a_known_allocation():
    """Valleys centred on N* = 0.1·C^0.5 give a = b = 0.5."""
    logC = np.log([1e8, 4e8, 1.6e9])
    nstar = math.log(0.1) + 0.5 * logC
    logN = np.stack([n + np.linspace(-2, 2, 5) for n in nstar])
    L = 0.3 * (logN - nstar[:, None]) ** 2 + 2.0
    a, b, got = co._isoflop_exponents(logC, logN, L)
    assert (a, b) == pytest.approx((0.5, 0.5), abs=1e-9)
    assert got == pytest.approx(nstar)


def test_tokens_to_reach_interpolates_log_linearly():
    """Half-way in loss between two evaluations is the geometric mean of their steps."""
    r = Run(4, 0, 40, 1, 1, eval_steps=[10, 20, 40], eval_loss=[3.0, 2.0, 1.0])
    assert sr.tokens_to_reach(r, 1.5, tokens_per_step=1) == pytest.approx(math.sqrt(20 * 40))
    assert math.isnan(sr.tokens_to_reach(r, 0.5, tokens_per_step=1))


def test_crossing_finds_the_sign_change():
    """The zero of a line through (log 1e8, −1) and (log 1e9, +1) is at √(1e8·1e9)."""
    x = np.log([1e7, 1e8, 1e9])
    assert co._crossing(x, np.array([-2.0, -1.0, 1.0])) == pytest.approx(math.sqrt(1e17))
    assert co._crossing(x, np.array([-2.0, -1.0, -0.5])) is None


def test_gap_law_recovers_kappa_and_gamma():
    """acc* − acc = κ(L − E)^γ is recovered from exact points."""
    L = np.array([1.5, 2.0, 3.0, 4.0])
    acc = 0.6 - 0.2 * (L - 1.0) ** 0.7
    logk, gamma = co._gap_law(L, acc, 1.0, 0.6)
    assert (math.exp(logk), gamma) == pytest.approx((0.2, 0.7))


def test_lag_copy_truth_is_markov_before_the_lag_and_mixed_after():
    """Rows sum to one; before the lag they are the Markov rows, after it half the mass copies."""
    src = LagCopySource(V=8, lag=3, p=0.5)
    x = src.sample(64, 10, np.random.default_rng(0))
    q = src.true_next(x)
    assert torch.allclose(q.sum(-1), torch.ones(64, 9))
    assert torch.allclose(q[:, 0], torch.tensor(src.P, dtype=torch.float32)[x[:, 0]])
    copied = q[torch.arange(64), 4, x[:, 2]]  # predicting position 5 copies position 2
    assert torch.all(copied >= 0.5)


def test_lag_copy_samples_repeat_the_lagged_token_at_rate_p():
    """About p of the tokens from the lag on equal the token `lag` steps back (plus chance)."""
    src = LagCopySource(V=16, lag=4, p=0.5)
    x = src.sample(4000, 12, np.random.default_rng(1)).numpy()
    same = (x[:, 4:] == x[:, :-4]).mean()
    chance = float((src.P ** 2).sum(1).mean())  # a rough floor from the Markov part alone
    assert 0.5 < same < 0.5 + 0.5 * chance + 0.1


def test_lstm_width_matches_the_parameter_count():
    """The chosen LSTM width gives the non-embedding count closest to the target."""
    h = lstm_width_for(12_768, 32)
    n = LSTMLM(16, 32, h).non_embedding_params()
    for other in (h - 1, h + 1):
        assert abs(n - 12_768) <= abs(LSTMLM(16, 32, other).non_embedding_params() - 12_768)


def test_nearly_unshifted_source_gives_slope_one():
    """When the shifted language is almost the training one, L_shifted tracks L_train with slope ≈ 1."""
    ev = sr.transfer_offset(widths=[2, 8], steps=20, sigma=0.0, topic_mix=1e-6, seeds=[0],
                            device="cpu")
    assert ev.measured["slope_topic"].value == pytest.approx(1.0, abs=1e-3)
    assert ev.figures and ev.seeds == [0]
