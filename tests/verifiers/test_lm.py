"""GPT members on a token source: they learn, stay independent, and are scored on shared windows."""
from __future__ import annotations

import numpy as np

from verifiers.lab.budget import gpt_family
from verifiers.lab.data import MarkovSource
from verifiers.lab.lm import LMSetting, heldout, train_lm
from verifiers.lab.text import TextSource

SETTING = LMSetting(batch=8, T=32, betas=(0.9, 0.95), weight_decay=0.0, eval_seqs=16)


def test_members_learn_text_and_a_zero_rate_does_not():
    """On the standard library's bytes the loss falls well below uniform (ln 256 = 5.55) at a
    working rate, and a member with peak rate 0 stays at its initial loss."""
    cfg = gpt_family(256, 32, 1, 4, 32)[-1].cfg
    src = TextSource("train", 0.1, 300_000)
    win = heldout(TextSource("val", 0.1, 100_000), 16, 32, seed=0)
    run = train_lm(cfg, src, SETTING, [60, 60], [3e-3, 0.0], [0, 0], [1, 1], "cpu", win, eval_at=[30])
    assert run.loss[0] < 3.6 < run.loss[1]
    assert run.curve[30][0] > run.loss[0]
    assert run.tokens == [60 * 8 * 32] * 2


def test_a_member_does_not_depend_on_its_neighbours():
    """Member 0's result is the same whether trained alone or beside another member."""
    src = MarkovSource(V=16, order=1, alpha=0.5, seed=3)
    cfg = gpt_family(16, 32, 1, 4, 16)[-1].cfg
    win = heldout(src, 16, 32, seed=9)
    alone = train_lm(cfg, src, SETTING, [20], [1e-2], [5], [7], "cpu", win)
    pair = train_lm(cfg, src, SETTING, [20, 10], [1e-2, 3e-2], [5, 6], [7, 8], "cpu", win)
    np.testing.assert_allclose(alone.loss[0], pair.loss[0], rtol=1e-4)


def test_each_member_can_be_scored_on_its_own_windows():
    """Windows (K, n, T+1) score member k on windows[k] alone: the same loss as scoring every
    member on those windows and keeping member k's."""
    import torch
    from verifiers.lab.lm import heldout_loss
    from verifiers.lab.stacks import GPTStack
    src = MarkovSource(V=16, order=1, alpha=0.5, seed=3)
    stack = GPTStack(gpt_family(16, 32, 1, 4, 16)[-1].cfg, [1, 2, 3], "cpu")
    wins = [heldout(src, 40, 32, seed=s) for s in (10, 11, 12)]
    own = heldout_loss(stack, torch.stack(wins))
    shared = [heldout_loss(stack, w)[k] for k, w in enumerate(wins)]
    np.testing.assert_allclose(own.numpy(), np.array(shared), rtol=1e-6)
    assert len(set(own.tolist())) == 3
