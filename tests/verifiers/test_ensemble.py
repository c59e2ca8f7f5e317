"""The batched ensemble trainer (verifiers.lab.ensemble) and the Zipfian source it is used with."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from verifiers.lab.data import MarkovSource
from verifiers.lab.ensemble import BatchedAdamW, BatchedMLPLM, Member, train_ensemble
from verifiers.lab.train import MLPLM, TrainConfig, train_lm
from verifiers.lab.zipfsource import ZipfBlockSource, exact_metrics, live_contexts


SRC = MarkovSource(V=16, order=2, alpha=0.5, seed=0, support=4)
CFG = TrainConfig(steps=30, batch=8, T=12, lr=3e-3, eval_every=10, weight_decay=0.1, clip=1.0,
                  eval_batch=16)


def test_batched_training_matches_training_each_model_alone():
    """Members that differ in seed, width, learning rate and length train exactly as train_lm alone."""
    members = [Member(0, 16), Member(1, 8, lr=1e-2), Member(2, 4, steps=20)]
    hists, final = train_ensemble(members, SRC, CFG, k=2, d_emb=8)
    for m, h in zip(members, hists):
        torch.manual_seed(m.seed)
        cfg = dataclasses.replace(CFG, lr=m.lr or CFG.lr, steps=m.steps or CFG.steps)
        alone = train_lm(MLPLM(16, 2, 8, m.d_hidden), SRC, cfg, m.seed)
        assert h.train_loss == pytest.approx(alone.train_loss, abs=1e-5)
        assert h.eval_steps == alone.eval_steps
        assert h.eval_loss == pytest.approx(alone.eval_loss, abs=1e-5)
        assert h.grad_norm == pytest.approx(alone.grad_norm, rel=1e-4)
    assert final["train"]["loss"][2] == pytest.approx(hists[2].eval_loss[-1], abs=1e-6)


def test_members_leave_the_batch_when_their_run_ends():
    """A one-step member stops after one step while the others go on."""
    hists, final = train_ensemble([Member(0, 8, steps=1), Member(1, 2)], SRC,
                                  dataclasses.replace(CFG, steps=5), k=2, d_emb=8)
    assert hists[0].steps == [0] and hists[1].steps == [0, 1, 2, 3, 4]
    assert all(np.isfinite(final["train"]["loss"]))


def test_padded_units_of_narrow_members_stay_zero():
    """A width-2 member padded to width 8 keeps exactly zero weights in its padding under AdamW."""
    model = BatchedMLPLM.from_members(16, 2, 8, 2, [Member(0, 8), Member(1, 2)])
    opt = BatchedAdamW(list(model.parameters()), weight_decay=0.1)
    start = model.W[0][1][:, :2].clone()
    for step in range(3):
        x = SRC.sample(8, 13, np.random.default_rng(step))
        loss = model(torch.stack([x, x])[..., :-1]).logsumexp(-1).mean()
        for p in model.parameters():
            p.grad = None
        loss.backward()
        opt.step(torch.tensor([1e-2, 1e-2]))
    W0, W1, Wout = model.W[0][1], model.W[1][1], model.W[2][1]
    assert torch.all(W0[:, 2:] == 0) and torch.all(W1[2:, :] == 0) and torch.all(W1[:, 2:] == 0)
    assert torch.all(Wout[2:, :] == 0) and torch.all(model.b[0][1][2:] == 0)
    assert torch.all(W0[:, :2] != start)  # while its real units did train


def test_non_embedding_params_match_the_unbatched_model():
    """N per member equals the MLPLM's parameter count minus its token embedding."""
    model = BatchedMLPLM.from_members(16, 2, 8, 2, [Member(0, 3), Member(0, 7)])
    for h, n in zip((3, 7), model.non_embedding_params()):
        m = MLPLM(16, 2, 8, h, 2)
        assert n == sum(p.numel() for p in m.parameters()) - m.emb.weight.numel()


def test_zipf_source_gives_topics_their_zipf_weights():
    """The stationary mass of topic z is ∝ z^-s, and each context's row stays in its topic."""
    src = ZipfBlockSource(V=32, order=2, alpha=0.5, seed=0, blocks=8, zipf=1.5)
    v = 4
    ctx_block = np.arange(32 ** 2) % 32 // v  # block of each context's last token
    mass = np.array([src.pi[ctx_block == z].sum() for z in range(8)])
    w = np.arange(1, 9) ** -1.5
    assert mass == pytest.approx(w / w.sum(), rel=1e-9)
    live = src.pi > 0
    assert np.all(src.P[live].reshape(-1, 8, v).sum(-1)[np.arange(live.sum()), ctx_block[live]] > 1 - 1e-9)


def test_exact_metrics_of_the_true_distribution_are_entropy_and_bayes_accuracy():
    """Predicting with the true probabilities gives loss = entropy and accuracy = E[max p]."""
    src = ZipfBlockSource(V=32, order=2, alpha=0.5, seed=1, blocks=8, zipf=1.0)
    _, pi, P = live_contexts(src)
    out = exact_metrics(torch.log(P.clamp_min(1e-30))[None], pi, P)
    assert float(out["loss"][0]) == pytest.approx(src.entropy, rel=1e-5)
    assert float(out["acc"][0]) == pytest.approx(float(pi @ P.max(1).values), rel=1e-6)


def test_unshifted_source_is_the_source():
    """A shift with no noise and no topic mixing leaves rows, weights and entropy unchanged."""
    src = ZipfBlockSource(V=32, order=2, alpha=0.5, seed=0, blocks=8, zipf=1.5)
    same = src.shifted(sigma=0.0, topic_mix=0.0)
    assert np.allclose(same.P, src.P) and np.allclose(same.pi, src.pi)
    assert same.entropy == pytest.approx(src.entropy)


def test_topic_shift_moves_mass_to_rare_topics():
    """Mixing the topic weights towards uniform raises the rarest topic's share."""
    src = ZipfBlockSource(V=32, order=2, alpha=0.5, seed=0, blocks=8, zipf=1.5)
    assert src.shifted(0.0, 0.5).block_weights[-1] > 2 * src.block_weights[-1]


def test_exact_evaluation_needs_a_matching_window():
    """Exact evaluation over contexts refuses a model that sees fewer tokens than the source's order."""
    with pytest.raises(ValueError, match="window"):
        train_ensemble([Member(0, 4)], SRC, dataclasses.replace(CFG, steps=1), k=1, exact=True)
