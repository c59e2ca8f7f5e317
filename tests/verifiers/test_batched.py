"""The batched stack (verifiers.lab.batched, verifiers.lab.stacks): K members train as K runs alone."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from verifiers.lab.batched import BatchedAdamW, lr_table, member_ce, train, z_loss
from verifiers.lab.data import MarkovSource
from verifiers.lab.gpt import GPT, GPTConfig, lm_loss
from verifiers.lab.stacks import AdderStack, GPTStack, MLPStack
from verifiers.lab.train import MLPLM, lr_at

SRC = MarkovSource(V=16, order=2, alpha=0.5, seed=0, support=4)


def _data(n_steps: int, seed: int, B: int = 4, T: int = 12) -> list[torch.Tensor]:
    rng = np.random.default_rng(seed)
    return [SRC.sample(B, T + 1, rng) for _ in range(n_steps)]


def _alone(model, data, peak, steps, wd, clip=None, zl=0.0):
    """The reference: torch.optim.AdamW on one model, cosine to zero over its own run."""
    opt = torch.optim.AdamW(model.parameters(), lr=peak, betas=(0.9, 0.95), weight_decay=wd)
    losses = []
    for s in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(s, steps, peak, "cosine")
        x = data[s]
        logits = model(x[:, :-1])
        loss = lm_loss(logits, x[:, 1:], zl)
        opt.zero_grad()
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        losses.append(float(lm_loss(logits.detach(), x[:, 1:])))
    return losses


def _batch(datas):
    return lambda step, active: (torch.stack([datas[i][step][:, :-1] for i in active]),
                                 torch.stack([datas[i][step][:, 1:] for i in active]))


def test_mlp_members_of_mixed_width_lr_decay_and_length_train_as_alone():
    """Members differing in seed, width, lr, weight decay and steps match torch's AdamW alone."""
    seeds, widths, peaks, wds, steps = [0, 1, 2], [16, 8, 4], [3e-3, 1e-2, 3e-3], [0.0, 0.1, 0.5], [6, 6, 3]
    datas = [_data(6, s) for s in seeds]
    stack = MLPStack(16, 2, 8, widths, 1, seeds, "cpu")
    tr = train(stack, BatchedAdamW(stack, (0.9, 0.95)), _batch(datas),
               lr_table(peaks, steps, "cosine"), steps, wds, clip=1.0)
    loss = tr.array("loss")
    for i in range(3):
        torch.manual_seed(seeds[i])
        ref = _alone(MLPLM(16, 2, 8, widths[i], 1), datas[i], peaks[i], steps[i], wds[i], clip=1.0)
        assert loss[: steps[i], i] == pytest.approx(ref, abs=1e-5)
    assert np.isnan(loss[3:, 2]).all() and stack.K == 2


@pytest.mark.parametrize("kw", [dict(norm="pre"), dict(norm="post", pos="rope"),
                                dict(parallel=True, pos="alibi", n_kv_head=1)])
def test_gpt_members_train_as_the_lab_gpt_alone(kw):
    """GPT members (pre/post-LN, RoPE/ALiBi, MQA, parallel) with z-loss match the lab GPT alone."""
    cfg = GPTConfig(vocab_size=16, n_ctx=12, n_layer=2, d_model=16, n_head=4, **kw)
    datas = [_data(4, s) for s in (0, 1)]
    stack = GPTStack(cfg, [0, 1], "cpu")
    tr = train(stack, BatchedAdamW(stack, (0.9, 0.95)), _batch(datas),
               lr_table([1e-2, 3e-3], [4, 4], "cosine"), [4, 4], [0.1, 0.0], aux=z_loss(1e-2))
    for i, (peak, wd) in enumerate([(1e-2, 0.1), (3e-3, 0.0)]):
        torch.manual_seed(i)
        ref = _alone(GPT(cfg), datas[i], peak, 4, wd, zl=1e-2)
        assert tr.array("loss")[:, i] == pytest.approx(ref, abs=1e-4)


def test_padding_of_narrow_members_stays_zero():
    """A width-2 member padded to width 8 keeps zero weights in its padding under AdamW."""
    stack = MLPStack(16, 2, 8, [8, 2], 1, [0, 1], "cpu")
    datas = [_data(3, 0), _data(3, 1)]
    train(stack, BatchedAdamW(stack, (0.9, 0.95)), _batch(datas), lr_table([1e-2] * 2, [3, 3], "constant"),
          [3, 3], [0.1, 0.1])
    assert stack.p("W0")[1, :, 2:].abs().max() == 0 and stack.p("W1")[1, 2:].abs().max() == 0


def test_a_diverging_member_is_frozen_and_marked():
    """A member with an absurd learning rate that blows up does not disturb the others."""
    stack = MLPStack(16, 2, 8, [8, 8], 1, [0, 0], "cpu")
    data = _data(20, 0)
    tr = train(stack, BatchedAdamW(stack, (0.9, 0.95)), _batch([data, data]),
               lr_table([1e-2, 1e6], [20, 20], "constant"), [20, 20], [0.0, 0.0],
               aux=lambda z: z.abs().amax(-1).pow(8).flatten(1).mean(1))
    assert np.isfinite(tr.array("loss")[:, 0]).all()
    assert list(tr.diverged) == [False, True]


def test_sgd_moves_each_member_by_its_own_rate():
    """SGD with lr 0 leaves a member unchanged while a positive rate moves the other."""
    stack = AdderStack(7, 4, 8, [0, 1], "cpu")
    before = stack.flat.clone()
    X = torch.randint(0, 7, (2, 10, 2))
    Y = (X.sum(-1) % 7)
    train(stack, BatchedAdamW(stack, (0.9, 0.0), kind="sgd"), lambda s, a: (X[a], Y[a]),
          lambda s: torch.tensor([0.0, 0.1]), [2, 2], [0.0, 0.0])
    assert torch.equal(stack.flat[0], before[0]) and not torch.equal(stack.flat[1], before[1])


def test_member_ce_ignores_marked_positions_and_zero_rows():
    """-1 targets and all-zero target rows do not count toward a member's mean."""
    logits = torch.zeros(2, 1, 3, 4)
    ids = torch.tensor([[[0, -1, -1]], [[1, 2, 3]]])
    assert member_ce(logits, ids) == pytest.approx(torch.full((2,), np.log(4)))
    soft = torch.zeros(2, 1, 3, 4)
    soft[:, :, 0, 0] = 1.0
    assert member_ce(logits, soft) == pytest.approx(torch.full((2,), np.log(4)))


def test_layout_chooses_the_best_finite_grid_value_per_arm_and_replicate():
    """Each (arm, replicate) keeps its own lowest finite loss; all-diverged falls back to the first."""
    from verifiers.lab.tuning import Layout
    lay = Layout(n_arms=2, n_reps=2, grid=(1e-3, 1e-2, 1e-1))
    loss = np.array([3, 2, 1, 1, 2, 3, np.nan, 5, 9, np.inf, np.nan, np.inf], dtype=float)
    chosen = lay.choose(loss)
    assert chosen.tolist() == [[2, 3], [7, 9]]
    ev = lay.evidence("lr", chosen, ["small", "large"])
    assert ev["chosen"] == {"small": [0.1, 1e-3], "large": [1e-2, 1e-3]}


def test_module_stack_trains_a_tied_gpt_as_torch_adamw_does():
    """A module wrapped as a one-member stack keeps its tied head and follows torch's AdamW."""
    from verifiers.lab.stacks import ModuleStack
    cfg = GPTConfig(vocab_size=16, n_ctx=12, n_layer=1, d_model=16, n_head=4)
    data = _data(4, 0)
    torch.manual_seed(0)
    stack = ModuleStack(GPT(cfg), "cpu")
    assert stack.module.head.weight is stack.module.wte.weight
    tr = train(stack, BatchedAdamW(stack, (0.9, 0.95)), _batch([data]), lr_table([1e-2], [4], "cosine"),
               [4], [0.1])
    torch.manual_seed(0)
    assert tr.array("loss")[:, 0] == pytest.approx(_alone(GPT(cfg), data, 1e-2, 4, 0.1), abs=1e-5)


def test_trace_records_each_member_only_while_it_trains():
    """Rows of loss, grad norm and lr hold a member's values for its own steps and NaN after it
    left; an lr callable that refills one buffer each step is recorded step by step."""
    steps, buf = [5, 2, 4], torch.zeros(3)

    def lr(s):
        return buf.fill_(1e-3 * (s + 1))
    stack = MLPStack(16, 2, 8, [8] * 3, 1, [0, 1, 2], "cpu")
    tr = train(stack, BatchedAdamW(stack, (0.9, 0.95)), _batch([_data(5, s) for s in range(3)]),
               lr, steps, [0.0] * 3)
    for i, n in enumerate(steps):
        assert tr.array("lr")[:n, i] == pytest.approx([1e-3 * (s + 1) for s in range(n)], rel=1e-6)
        for name in ("loss", "grad_norm", "lr"):
            assert np.isfinite(tr.array(name)[:n, i]).all() and np.isnan(tr.array(name)[n:, i]).all()
    assert tr.array("loss").shape == (5, 3) and not tr.diverged.any()
