"""Noise scale, critical batch, best-rate and sharpness tools; the stacked-model harness; the
schedules and published tables behind the batch-size and learning-rate claims."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from verifiers import optimisation as opt
from verifiers import schedules as sched
from verifiers.lab.data import MarkovSource
from verifiers.lab.batched import BatchedAdamW, member_ce
from verifiers.lab.budget import gpt_family
from verifiers.lab.lm import LMSetting, heldout, train_lm
from verifiers.lab.pairs import PairSampler, all_contexts, population_loss, weighted_ce
from verifiers.lab.stacks import ClassifierStack, NGramStack
from verifiers.lab.noise import (best_lr, best_value, fit_critical_batch, noise_scale,
                                 scaling_efficiency, steps_to_target, top_eigenvalue)
from verifiers.lab.train import lr_at

fast = settings(max_examples=40, deadline=None)
pos = st.floats(min_value=1e-3, max_value=1e3)


@fast
@given(g2=pos, tr=pos, b=st.integers(1, 64), k=st.integers(2, 64))
def test_noise_scale_inverts_the_batch_norm_identity(g2, tr, b, k):
    """Fed exact E|G_B|² = |G|² + tr(Σ)/B at two batch sizes, the estimator returns |G|² and tr(Σ)."""
    G2, T, Bs = noise_scale(torch.tensor(g2 + tr / b, dtype=torch.float64),
                         torch.tensor(g2 + tr / (b * k), dtype=torch.float64), b, b * k)
    assert float(G2) == pytest.approx(g2, rel=1e-4, abs=1e-6)
    assert float(T) == pytest.approx(tr, rel=1e-4)
    assert float(Bs) == pytest.approx(tr / g2, rel=1e-3)


def test_noise_scale_matches_sampled_gradients():
    """On Gaussian per-example gradients with known mean and covariance, B_simple comes out near tr(Σ)/|G|²."""
    g = torch.Generator().manual_seed(0)
    G, sd, b, n = torch.full((50,), 0.1), 0.5, 8, 4000  # |G|² = 0.5, tr Σ = 12.5, B_simple = 25
    per_example = G + sd * torch.randn(n, b, 50, generator=g)
    small = per_example.mean(1)  # n batches of b
    _, _, Bs = noise_scale(small.pow(2).sum(1).mean(), small.mean(0).pow(2).sum(), b, b * n)
    assert float(Bs) == pytest.approx(25, rel=0.1)


@fast
@given(s_min=st.floats(1, 1e4), b_crit=st.floats(1, 1e5))
def test_critical_batch_fit_recovers_the_hyperbola(s_min, b_crit):
    """Steps from S = S_min(1 + B_crit/B) give back S_min and B_crit = E_min/S_min (McCandlish Eq. 2.11)."""
    B = np.geomspace(1, 1e6, 9)
    fit = fit_critical_batch(B, s_min * (1 + b_crit / B))
    assert fit["S_min"] == pytest.approx(s_min, rel=1e-6)
    assert fit["B_crit"] == pytest.approx(b_crit, rel=1e-6)


def test_steps_and_examples_obey_the_tradeoff_on_the_fit():
    """On the fitted curve (S/S_min − 1)(E/E_min − 1) = 1 at every batch size."""
    fit = fit_critical_batch([10, 100, 1000], [1100.0, 200.0, 110.0])
    for B in (3.0, 30.0, 3e4):
        S = fit["S_min"] + fit["E_min"] / B
        assert (S / fit["S_min"] - 1) * (B * S / fit["E_min"] - 1) == pytest.approx(1)


def test_scaling_efficiency_spans_perfect_to_none():
    """Quartering the steps for four times the batch scores 1; no saving scores 0."""
    assert scaling_efficiency(16, 400, 64, 100) == pytest.approx(1)
    assert scaling_efficiency(16, 400, 64, 400) == 0


def test_steps_to_target_interpolates_and_reports_never():
    """A linear loss curve crosses the target where the line does; a curve above it never does."""
    assert steps_to_target([0, 10, 20], [3.0, 2.0, 1.0], 1.5) == pytest.approx(15)
    assert steps_to_target([0, 10], [3.0, 2.0], 1.0) == math.inf


@fast
@given(x_star=st.floats(-5, 5), curv=st.floats(0.1, 10))
def test_best_lr_finds_the_vertex_of_a_log_parabola(x_star, curv):
    """For loss = c(log η − log η*)² + 1 on a grid that brackets η*, the refined best rate is η*."""
    grid = np.exp(np.arange(-7.0, 7.5, 1.0))
    loss = curv * (np.log(grid) - x_star) ** 2 + 1
    assert math.log(best_lr(grid, loss)) == pytest.approx(x_star, abs=1e-6)
    assert best_value(grid, loss) == pytest.approx(1, abs=1e-6)


def test_best_lr_treats_divergence_as_worst():
    """A diverged (infinite) run does not become the best rate."""
    assert best_lr([0.1, 1, 10], [2.0, 1.0, math.inf]) == pytest.approx(1, rel=0.5)


def test_top_eigenvalue_of_stacked_quadratics():
    """Power iteration returns each model's largest Hessian eigenvalue for ½ Σ h_i w_i²."""
    h = torch.tensor([[1.0, 5.0, 2.0], [0.5, 0.2, 3.0]])  # two models
    w = torch.randn(2, 3, requires_grad=True)
    lam = top_eigenvalue(lambda: 0.5 * (h * w ** 2).sum(1), [w], iters=60)
    assert lam.tolist() == pytest.approx([5.0, 3.0], rel=1e-3)


def _one(p0: torch.Tensor) -> ClassifierStack:
    """A one-member stack whose only parameter starts at p0 (1, ...)."""
    st = ClassifierStack([1, 1], [0], "cpu")
    st.shapes, st.offsets = {"w": tuple(p0.shape[1:])}, {"w": 0}
    st._bind(p0.reshape(1, -1).clone())
    return st


def test_adam_matches_torch():
    """The batched AdamW with no decay gives torch.optim.Adam's weights after a few steps."""
    p0 = torch.randn(1, 4, 3)
    st, ref = _one(p0), p0.clone().requires_grad_()
    ours, theirs = BatchedAdamW(st, (0.9, 0.95)), torch.optim.Adam([ref], 0.01, (0.9, 0.95))
    for t in range(4):
        g = torch.randn(1, 4, 3, generator=torch.Generator().manual_seed(t))
        st.grad.copy_(g.reshape(1, -1))
        ref.grad = g.clone()
        ours.step(torch.tensor([0.01]), torch.zeros(1))
        theirs.step()
    assert torch.allclose(st.p("w"), ref, atol=1e-6)


def test_sgd_momentum_matches_torch():
    """The batched SGD with momentum gives torch.optim.SGD's weights."""
    p0 = torch.randn(1, 5)
    st, ref = _one(p0), p0.clone().requires_grad_()
    ours = BatchedAdamW(st, (0.9, 0.0), kind="sgd")
    theirs = torch.optim.SGD([ref], lr=0.1, momentum=0.9)
    for t in range(4):
        g = torch.randn(1, 5, generator=torch.Generator().manual_seed(t))
        st.grad.copy_(g)
        ref.grad = g.clone()
        ours.step(torch.tensor([0.1]), torch.zeros(1))
        theirs.step()
    assert torch.allclose(st.p("w"), ref, atol=1e-6)


def test_stacked_models_are_independent():
    """A loss on one model leaves the other models' gradients at zero."""
    m = ClassifierStack([3, 8, 2], [0, 1], "cpu")
    m(torch.randn(2, 5, 3))[1].sum().backward()
    assert float(m.grad[0].abs().sum()) == 0 and float(m.grad[1].abs().sum()) > 0


def test_same_seed_same_initial_weights():
    """Models built from the same seed start identical, whatever their position in the stack."""
    m = NGramStack(8, 2, 4, [8] * 3, 1, [3, 4, 3], "cpu")
    assert torch.equal(m.flat[0], m.flat[2]) and not torch.equal(m.flat[0], m.flat[1])


def test_count_weighted_loss_equals_the_sampled_batch_loss():
    """Cross-entropy weighted by a batch's (context, token) counts equals the batch's mean cross-entropy."""
    src = MarkovSource(V=8, order=2, alpha=0.5, seed=0, support=3)
    m = NGramStack(8, 2, 4, [8], 1, [0], "cpu")
    ctx, y = PairSampler(src, [0]).draw(50)
    cid = ctx[0, :, 0] * 8 + ctx[0, :, 1]
    w = torch.zeros(1, 64, 8)
    w[0].index_put_((cid, y[0]), torch.ones(50), accumulate=True)
    with torch.no_grad():
        full = weighted_ce(m(all_contexts(8, 2, 1, "cpu")), w / 50)
        assert float(full) == pytest.approx(float(member_ce(m(ctx), y)), rel=1e-5)


def test_population_loss_is_at_least_the_entropy():
    """The exact population loss of any model is entropy plus a non-negative KL."""
    src = MarkovSource(V=8, order=2, alpha=0.5, seed=1, support=3)
    L = population_loss(NGramStack(8, 2, 4, [8, 8], 1, [0, 1], "cpu"), src, False)
    assert (L >= src.entropy - 1e-6).all()


def test_sampler_counts_are_frequencies():
    """Count-weighted batches are frequencies that sum to one and approach p(c, v) for a big batch."""
    src = MarkovSource(V=8, order=2, alpha=0.5, seed=0, support=3)
    w = PairSampler(src, [0, 1]).counts(200_000)
    assert w.sum((1, 2)).tolist() == pytest.approx([1, 1])
    assert float((w[0] - torch.as_tensor(src.pi[:, None] * src.P).float()).abs().sum()) < 0.03


@fast
@given(L=st.floats(1.0, 10.0))
def test_kaplan_bcrit_doubles_per_alpha_b_drop(L):
    """Under Eq. 5.3, lowering the loss by the factor 2^(−α_B) doubles B_crit."""
    a = 0.21
    assert opt.kaplan_bcrit(L * 2 ** -a) == pytest.approx(2 * opt.kaplan_bcrit(L), rel=1e-9)


def test_kaplan_bcrit_published_values():
    """B* = 2e8 and α_B = 0.21 give about 1.1 million tokens at a loss of 3 nats."""
    assert opt.kaplan_bcrit(3.0) == pytest.approx(1.07e6, rel=0.01)


def test_gpt3_table_learning_rates_fall_with_size():
    """Table 2.1 of Brown et al. 2020: eight sizes, peak rates from 6.0e-4 down to 0.6e-4, never rising."""
    lrs = [r[2] for r in sched.GPT3_TABLE]
    assert len(lrs) == 8 and lrs[0] == 6.0e-4 and lrs[-1] == 0.6e-4
    assert all(b <= a for a, b in zip(lrs, lrs[1:]))


def test_short_cosine_cycle_holds_its_minimum():
    """A cycle half the run reaches the minimum mid-run and stays there; 1× is the lab's cosine."""
    T, peak = 100, 1.0
    assert sched._cosine_hold(80, T, peak, 0.5, 5, 0.1) == pytest.approx(0.1)
    assert sched._cosine_hold(49, T, peak, 0.5, 5, 0.1) > 0.1
    assert sched._cosine_hold(30, T, peak, 1.0, 5, 0.1) == lr_at(30, T, peak, "cosine", 5, min_ratio=0.1)


GPT_KW = dict(sources=["text", "markov"], warmup_frac=0.1, text_bytes=200_000, held_out_frac=0.1,
              V=8, order=1, alpha=0.5, support=3, n_layer=1, n_head=2, d_max=16, T=8, batch=4,
              betas=[0.9, 0.95], steps=6, eval_seqs=8, data_draws=[0, 1], seeds=[0], device="cpu")


def test_schedule_verifier_is_deterministic_and_paired():
    """A tiny cosine-vs-Noam run on both sources repeats exactly, one tuned gap per draw."""
    kw = dict(GPT_KW, peak_grid=[0.003, 0.01, 0.03], cosine_min_ratio=0.0, flops=2e8)
    a, b = sched.cosine_vs_noam(**kw), sched.cosine_vs_noam(**kw)
    for k in ("text", "markov"):
        m = a.measured[f"tuned_noam_minus_tuned_cosine_{k}"]
        assert m.n == 2 and m.finite()
        assert m.samples == b.measured[f"tuned_noam_minus_tuned_cosine_{k}"].samples
    assert a.replication["data_draws"] == 2 and a.scale["max_tokens"] == 6 * 4 * 8
    assert a.scale["data"] == ["text:cpython-source", "markov:V8-order1"]


def test_schedule_model_grows_with_the_budget():
    """The same tier on a 20× budget trains a larger GPT (sizes come from the budget)."""
    kw = dict(GPT_KW, peak_grid=[0.01, 0.03, 0.1], cosine_min_ratio=0.0, flops=2e7, d_max=64,
              sources=["markov"])
    small = sched.cosine_vs_noam(**kw).scale["max_params"]
    big = sched.cosine_vs_noam(**kw, budget_scale=20.0).scale["max_params"]
    assert big > 4 * small


def test_a_matched_cycle_of_rates_is_the_lab_cosine():
    """Training at the per-step rates of a 1× cycle gives train_lm's cosine result exactly, and a
    cycle that holds a zero minimum from the start leaves the loss where it began."""
    src = MarkovSource(V=8, order=1, alpha=0.5, seed=1)
    cfg = gpt_family(8, 8, 1, 2, 8)[-1].cfg
    setting = LMSetting(4, 8, (0.9, 0.95), 0.0, "cosine", 2, 0.1, 8)
    win = heldout(src, 8, 8, seed=3)
    ref = train_lm(cfg, src, setting, [10, 10], [0.01, 0.03], [4, 5], [6, 7], "cpu", win).loss
    rates = sched._period_rates([1.0], [0.01, 0.03], 1, 10, 2, 0.1)
    np.testing.assert_allclose(sched._train_at_rates(cfg, src, setting, rates, [4, 5], [6, 7], "cpu",
                                                     win), ref, rtol=1e-5)
    still = sched._train_at_rates(cfg, src, setting, torch.zeros(10, 1), [4], [6], "cpu", win)
    np.testing.assert_allclose(still, train_lm(cfg, src, setting, [10], [0.0], [4], [6], "cpu",
                                               win).loss, rtol=1e-6)


def test_cosine_period_reports_both_sources():
    """The best cycle and the paired gaps are measured per source over draws."""
    ev = sched.cosine_period(**dict(GPT_KW, multipliers=[0.5, 1.0, 1.5, 2.0], min_ratio=0.1,
                                    peak_grid=[0.01, 0.03, 0.1], flops=4e8))
    for k in ("text", "markov"):
        assert ev.measured[f"best_multiplier_{k}"].n == 2
        assert ev.measured[f"longer_minus_matched_{k}"].finite()


def test_gpt_noise_scale_is_recorded_along_the_run_on_both_sources():
    """batch-size-vs-loss on GPT members: the held-out loss falls, B_simple is measured at every
    checkpoint, and the slope is measured per source with the draw as the unit."""
    data = {"markov": {"V": 6, "order": 2, "alpha": 0.5, "support": 3},
            "text": {"held_out_frac": 0.1, "train_bytes": 60000, "val_bytes": 20000}}
    gpt = {"T": 8, "n_layer": 1, "n_head": 2, "d_max": 8, "betas": [0.9, 0.95],
           "weight_decay": 0.0, "eval_seqs": 8}
    ev = opt.batch_size_vs_loss(alpha_B=0.21, B_star=2e8, data=data, sources=["text", "markov"],
                                gpt=gpt, flops=2e8, B=4, lr_grid=[0.01, 0.03], steps=20,
                                n_checks=2, b_small=2, n_micro=4, data_draws=[0, 1], seeds=[0],
                                device="cpu")
    rows = [r for r in ev.table if r.get("source") == "text" and r["draw"] == 0]
    assert [r["step"] for r in rows] == [0, 10, 20]
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert ev.measured["slope_bsimple_vs_loss_markov"].n == 2
    assert ev.scale["data"] == ["text:cpython-source", "markov:V6-order2"]
    assert ev.measured["loss_drop_per_doubling"].value == pytest.approx(1 - 2 ** -0.21)
