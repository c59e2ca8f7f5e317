"""Early-warning signals at an equal false-alarm rate: z-scores, calibration, first alarms."""
from __future__ import annotations

import numpy as np

from verifiers import early_warning as ew


def test_zscore_flags_a_spike():
    """A jump far above a steady window has a large z-score; a blown-up value is +inf."""
    x = np.r_[np.random.default_rng(0).normal(1.0, 0.01, 30), 5.0, np.nan][:, None]
    z = ew.zscores(x, window=20)
    assert z[30, 0] > 100 and z[31, 0] == np.inf


def test_calibration_sets_the_false_alarm_rate():
    """At the calibrated threshold, the given share of fault-free runs alarms after the start."""
    z = np.random.default_rng(1).normal(0, 1, (60, 200))
    thr = ew.calibrate(z, start=20, far=0.1)
    fired = ew.first_alarm(z, 20, thr) < 60
    assert abs(fired.mean() - 0.1) <= 0.01


def test_first_alarm_is_censored_when_nothing_fires():
    """A run that never crosses the threshold reports the run length."""
    z = np.zeros((40, 3))
    assert ew.first_alarm(z, 10, 1.0).tolist() == [40, 40, 40]


def test_tiny_run_reports_both_faults():
    """A tiny run reports leads for the sudden and the developing fault and equal false-alarm rates."""
    ev = ew.grad_norm_early_warning(fault_step=12, lr_spike=30.0, lr_growth=1.1, corrupt_labels=False, far=0.5,
                                    window=5, L=1, d=8, n_head=2, lr=3e-3, steps=20, B=4, T=6, V=8, order=1,
                                    alpha=0.5, data_draws=[0], seeds=[0, 1, 2, 3])
    for key in ("lead_grad_norm_spike", "lead_act_norm_spike", "lead_grad_norm_ramp", "lead_act_norm_ramp"):
        assert np.isfinite(ev.measured[key].value), key
    assert ev.replication["seeds"] == 4
