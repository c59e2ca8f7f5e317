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
from verifiers.lab import ladder as tr
from verifiers.lab import text
from verifiers.lab.lm import heldout
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
    assert sr.tokens_to_reach([10, 20, 40], [3.0, 2.0, 1.0], 1.5, tokens_per_step=1) == pytest.approx(math.sqrt(20 * 40))
    assert math.isnan(sr.tokens_to_reach([10, 20, 40], [3.0, 2.0, 1.0], 0.5, tokens_per_step=1))


def test_an_exact_power_law_is_forecast_and_beats_a_line():
    """On L = 1 + 5·N^-0.3 the E-free law forecasts the largest size exactly, a line in log N does not."""
    N = np.geomspace(1e3, 1e5, 5)
    L = np.stack([1.0 + 5.0 * N ** -0.3] * 2)
    _, err, err_line = sr._forecast_errors(N, L)
    assert np.allclose(err, 0, atol=1e-3) and all(abs(e) > 0.1 for e in err_line)


def test_never_reached_targets_count_all_tokens():
    """A size that never reaches the smallest model's final loss is censored at the full budget."""
    L = np.array([[2.0, 1.5, 2.5]])
    curve = np.array([[[3.0, 2.0], [2.5, 1.5], [2.9, 2.5]]])
    tok = sr._tokens_needed(L, curve, (10, 20), tps=1)
    assert tok[0, 0] == 20 and tok[0, 1] < 20 and tok[0, 2] == 20


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


def test_window_floor_is_the_windowed_entropy():
    """On many windows the Bayes loss is (H(x1|x0) + (T−1)·E)/T: one target per window has only one
    token of context, the rest the full order-2 context."""
    src = tr.zipf_source(1.5)
    T = 16
    w = heldout(src, 4000, T, seed=3)
    pi = src.pi.reshape(src.V, src.V)
    cond = pi / np.where(pi.sum(1, keepdims=True) > 0, pi.sum(1, keepdims=True), 1)
    h1 = -np.nansum(pi * np.log(np.where(cond > 0, cond, 1)))
    assert tr.window_floor(src, w) == pytest.approx((h1 + (T - 1) * src.entropy) / T, abs=0.01)


def test_code_and_prose_are_disjoint_held_out_text():
    """The prose is the help texts (no Python 'def' lines); the code holds no help text."""
    code, prose = text.code_and_prose(3_000_000, tr.HELD_OUT)
    c, p = code.data.tobytes(), prose.data.tobytes()
    assert b"Assert statements are a convenient way" in p and b"\ndef " not in p
    assert b"Assert statements are a convenient way" not in c and b"\ndef " in c


def test_unigram_text_has_no_context():
    """Neighbouring bytes of the counterfactual source are independent: a byte repeats its
    predecessor at the chance rate Σ p², not at the corpus's rate."""
    src = text.UnigramText("train", tr.HELD_OUT, 300_000)
    x = src.sample(2000, 32, np.random.default_rng(0)).numpy()
    p = np.bincount(src.data, minlength=256) / len(src.data)
    assert (x[:, 1:] == x[:, :-1]).mean() == pytest.approx((p ** 2).sum(), abs=0.01)


def test_a_ladder_member_is_scored_on_its_own_draws_windows():
    """Two draws of one rung: each member's loss is its loss on its own draw's windows, and the
    chosen rate is one of the grid."""
    src = tr.zipf_source(1.5)
    lad = tr.Ladder(1e12, 2, 0.3, 2048, 1, 2, 16, 8, (1e-2, 3e-2), 4, 8, 2)
    rungs = tr.ladder(lad, 1.0, 1)
    out = tr.run_ladder(rungs, lad, src, {"m": src}, "cpu", eval_at=(4,))
    assert out["loss"]["m"].shape == (2, len(rungs)) and np.isfinite(out["curve"]).all()
    assert set(out["lr"].ravel()) <= {1e-2, 3e-2}
    assert not np.allclose(out["windows"]["m"][0], out["windows"]["m"][1])


def test_the_known_entropy_ladder_is_added_only_when_asked():
    """loss-power-law on text alone, then with the Markov ladder: the second adds the Markov
    measures, figure and source name and leaves the text ones unchanged."""
    args = dict(flops=3e10, n_sizes=4, span=0.6, tokens=4096, n_layer=1, n_head=2, n_ctx=16, d_max=24,
                lr_grid=[1e-2], batch=4, eval_seqs=8, draws=2, zipf=1.5, text_bytes=200_000,
                text_unigram=False, regime_band=0.5)
    text = sr.loss_power_law(markov_ladder=False, **args)
    both = sr.loss_power_law(markov_ladder=True, **args)
    assert not any(k.startswith("markov") for k in text.measured)
    assert {"markov_alpha_first", "markov_entropy"} <= set(both.measured)
    assert len(both.figures) == len(text.figures) + 1
    assert any(d.startswith("markov:") for d in both.scale["data"])
    assert both.measured["text_gain"].value == text.measured["text_gain"].value
