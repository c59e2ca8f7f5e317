"""The grid of MLP runs on the batched stack (verifiers.lab.grid) and the Zipfian source."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from verifiers.lab.grid import GridSetting, buckets, run_grid
from verifiers.lab.stacks import MLPStack, mlp_params
from verifiers.lab.train import MLPLM
from verifiers.lab.zipfsource import ZipfBlockSource, exact_metrics, live_contexts

SRC = ZipfBlockSource(V=16, order=2, alpha=0.5, seed=0, blocks=4, zipf=1.5)
G = GridSetting(k=2, d_emb=8, lr=1e-2, betas=(0.9, 0.95), batch=4, T=8)


def test_grid_runs_match_runs_trained_alone():
    """A run's exact final loss does not depend on which other runs share its stack."""
    both = run_grid(SRC, G, [(8, 10, 0), (4, 6, 1)], 0, {}, "cpu")
    alone = run_grid(SRC, G, [(4, 6, 1)], 0, {}, "cpu")
    assert both[1].loss["train"] == pytest.approx(alone[0].loss["train"], abs=1e-5)
    assert both[0].eval_steps == [10] and both[1].eval_steps == [6]


def test_a_spec_may_carry_its_own_peak_learning_rate():
    """(h, steps, seed, lr) trains at lr; the grid's own lr when the spec gives the same value."""
    tuned = run_grid(SRC, G, [(4, 6, 0, G.lr), (4, 6, 0, 3 * G.lr)], 0, {}, "cpu")
    (plain,) = run_grid(SRC, G, [(4, 6, 0)], 0, {}, "cpu")
    assert tuned[0].loss["train"] == pytest.approx(plain.loss["train"], abs=1e-5)
    assert tuned[1].loss["train"] != pytest.approx(plain.loss["train"], abs=1e-5)


def test_grid_records_the_curve_every_eval_every_steps():
    """eval_every = 3 over 7 steps records steps 3, 6 and the end, 7."""
    (r,) = run_grid(SRC, G, [(4, 7, 0)], 3, {"same": SRC}, "cpu")
    assert r.eval_steps == [3, 6, 7] and r.loss["same"] == pytest.approx(r.loss["train"])


def test_buckets_pad_no_member_more_than_twofold():
    """Every width shares a bucket only with widths at most twice its own."""
    for g in buckets([1, 2, 3, 4, 8, 16, 40, 64]):
        assert max(g) <= 2 * min(g)


def test_non_embedding_params_match_the_unbatched_model():
    """N per member equals the MLPLM's parameter count minus its token embedding."""
    stack = MLPStack(16, 2, 8, [3, 7], 2, [0, 0], "cpu")
    for h, n in zip((3, 7), stack.non_embedding_params()):
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
        run_grid(SRC, GridSetting(1, 8, 1e-2, (0.9, 0.95), 4, 8), [(4, 1, 0)], 0, {}, "cpu")
