"""Small-batch generalisation: the learning-rate rule and replication over teacher tasks."""
from __future__ import annotations

import pytest

from verifiers import sharpness

SMALL = dict(n_train=32, n_test=64, d=4, classes=3, label_noise=0.1, width=8, B_small=4, B_large=16, lr=0.01,
             loss_stop=0.5, max_epochs=2, hessian_iters=2, data_draws=[1, 2], seeds=[0])


def test_unknown_lr_rule_is_rejected():
    """A learning-rate rule other than same, sqrt or linear is refused with a message naming it."""
    with pytest.raises(ValueError, match="cubic"):
        sharpness.small_batch_generalises(**{**SMALL, "lr_rule": "cubic"})


def test_sqrt_rule_scales_the_large_batch_rate():
    """Under the square-root rule the large batch trains at lr·√(B_large/B_small)."""
    ev = sharpness.small_batch_generalises(**{**SMALL, "lr_rule": "sqrt"})
    rates = {row["B"]: row["lr"] for row in ev.table}
    assert rates[16] == pytest.approx(0.01 * 2)


def test_every_draw_and_seed_is_a_run():
    """Two teacher tasks with one seed each give two paired runs per batch size."""
    ev = sharpness.small_batch_generalises(**{**SMALL, "lr_rule": "same"})
    assert ev.measured["test_acc_gap"].n == 2 and ev.replication["data_draws"] == 2
