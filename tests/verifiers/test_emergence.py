"""The addition run behind the metric-effect claim and the LoRA wrapper used for the delta-tuning claim."""
from __future__ import annotations

import numpy as np
import torch

from verifiers import emergence as em
from verifiers import emergence_run as er
from verifiers.lab.stacks import MLPStack


def test_addition_batch_targets_are_the_sum_digits():
    """Targets are the digits of a + b, least significant first, with the carry digit last."""
    x, y = er.addition_batch(np.random.default_rng(0), 50, 3)
    num = lambda d: (d * 10 ** np.arange(d.shape[1])).sum(axis=1)
    assert np.array_equal(num(y), num(x[:, :3]) + num(x[:, 3:]))


def test_one_digit_exact_match_is_per_digit_accuracy():
    """With k = 1 the answer's two digits (sum and carry) are the whole answer, so a trained
    width-64 adder gets exact match and per-digit accuracy near one together."""
    ev = er.exact_match_run([64], k=1, steps=300, batch=64, lr=3e-3, n_eval=500, floor=0.05, seeds=[0])
    row = ev.table[0]
    assert row["exact_match"] <= row["per_digit"] and row["per_digit"] > 0.9


def test_lora_starts_from_the_pretrained_function():
    """With B = 0 at the start the adapted model computes exactly the frozen base model."""
    base = MLPStack(8, 1, 4, [6, 6], 1, [0, 1], "cpu")
    lora = em._lora_stack(base, r=2, seed=0)
    x = torch.randint(0, 8, (2, 3, 5))
    assert torch.allclose(lora(x), base(x))
    assert lora.flat.shape[1] == 2 * (4 + 6) + 2 * (6 + 8)  # A and B of both weight matrices


def test_tilted_task_is_a_rank_one_change_of_log_probabilities():
    """log P_B − log P_A restricted to the support is s(c)·v(y) plus a per-row constant."""
    from verifiers.lab.data import MarkovSource

    a = MarkovSource(V=6, order=1, alpha=1.0, seed=0)
    b = em.tilted_source(a, beta=1.0, seed=1)
    D = np.log(b.P) - np.log(a.P)
    D -= D.mean(1, keepdims=True)
    assert np.linalg.matrix_rank(D, tol=1e-8) == 1
