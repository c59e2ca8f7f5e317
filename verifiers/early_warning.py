"""Early-warning signals: do gradient and activation norms flag a fault before the loss does?

Each signal is compared at an equal false-alarm rate. A signal's alarm statistic at step t is
its z-score against the trailing window, z_t = (x_t − mean) / std. On fault-free runs (the
same seeds and data, so each is the faulted run's exact twin up to the fault) the threshold of
every signal is set to the (1 − far) quantile of its largest z-score after the fault step: each
signal then fires spuriously in the same share of healthy runs. A fixed k-sigma rule for all
signals is not fair, because the gradient norm is noisier than the loss and fires more often.
"""
from __future__ import annotations

import numpy as np
import torch

from principia.evidence import Evidence, Figure, Measure, Series, interval_from_samples
from principia.types import Pos, PosInt, Seeds

from .lab.data import MarkovSource
from .lab.gpt import GPTConfig
from .lab.replicates import draw_batches, gpt_stack, members_of, run_stack

__all__ = ["grad_norm_early_warning", "zscores", "calibrate", "first_alarm", "SIGNALS"]

SIGNALS = ("loss", "grad_norm", "act_norm")


def zscores(x: np.ndarray, window: int) -> np.ndarray:
    """z-score of x[t] against x[t-window:t], per run -> same shape (steps, runs); nan before
    the first full window; +inf where x[t] is not finite (a blown-up run alarms at once)."""
    z = np.full(x.shape, np.nan)
    for t in range(window, x.shape[0]):
        past = x[t - window:t]
        z[t] = (x[t] - past.mean(0)) / np.maximum(past.std(0), 1e-12)
    return np.where(np.isfinite(x), z, np.inf)


def calibrate(z_free: np.ndarray, start: int, far: float) -> float:
    """Threshold at which a fault-free run alarms at or after `start` with probability `far`."""
    peak = np.nanmax(z_free[start:], axis=0)  # (runs,)
    return float(np.quantile(peak, 1.0 - far))


def first_alarm(z: np.ndarray, start: int, threshold: float) -> np.ndarray:
    """First step >= start with z > threshold, per run; len(z) if none (censored) -> (runs,)."""
    hit = np.nan_to_num(z[start:], nan=-np.inf) > threshold
    return np.where(hit.any(0), start + hit.argmax(0), len(z))


def _signals(draws, seeds, faults, corrupt, fault_step, L, d, n_head, lr, steps, B, T, V, order, alpha):
    """One stack: arms (fault-free twin, then each fault) × draws × seeds, paired by (draw, seed).
    -> arm name -> signal -> (steps, draws·seeds)."""
    arms = {"free": lambda t: 1.0, **faults}
    members = members_of(len(draws), seeds, repeat=len(arms))
    n = len(draws) * len(seeds)
    srcs = [MarkovSource(V=V, order=order, alpha=alpha, seed=int(s)) for s in draws]
    stack = gpt_stack(GPTConfig(vocab_size=V, n_ctx=T, n_layer=L, d_model=d, n_head=n_head), draws, members, traced=True)
    clean = draw_batches(srcs, draws, members, B, T, soft=False)
    gen = torch.Generator().manual_seed(int(seeds[0]) + 31)
    faulty = torch.tensor([i >= n for i in range(len(members))])  # every arm but the twin

    def batch(step: int, active: list[int]):
        inp, tgt = clean(step, active)
        if corrupt and step >= fault_step:  # a data fault: targets become uniform noise
            noise = torch.randint(0, V, tgt.shape, generator=gen)
            tgt = torch.where(faulty[active].view(-1, 1, 1), noise, tgt)
        return inp, tgt
    mult = lambda t: torch.tensor([f(t) for f in arms.values()]).repeat_interleave(n)
    act: list = []

    def on_step(step: int, logits: torch.Tensor, active: list[int]) -> None:
        act.append(stack.last_act.numpy())
    tr = run_stack(stack, batch, [lr] * len(members), steps, 0, "constant", scale=mult, on_step=on_step)
    sig = {"loss": tr.array("loss"), "grad_norm": tr.array("grad_norm"), "act_norm": np.stack(act)}
    return {a: {k: v[:, i * n:(i + 1) * n] for k, v in sig.items()} for i, a in enumerate(arms)}


def grad_norm_early_warning(fault_step: PosInt, lr_spike: Pos, lr_growth: Pos, corrupt_labels: bool,
                            far: Pos, window: PosInt, L: PosInt, d: PosInt, n_head: PosInt, lr: Pos,
                            steps: PosInt, B: PosInt, T: PosInt, V: PosInt, order: PosInt, alpha: Pos,
                            data_draws: Seeds, seeds: Seeds) -> Evidence:
    """Detection delay of each signal after a learning-rate fault, every signal calibrated to the
    same false-alarm rate `far` on fault-free twins. Lead = loss delay − signal delay, per run."""
    faults = {"spike": lambda t: lr_spike if t >= fault_step else 1.0,
              "ramp": lambda t: lr_growth ** max(0, t - fault_step + 1)}
    sig = _signals(data_draws, seeds, faults, corrupt_labels, fault_step, L, d, n_head, lr, steps,
                   B, T, V, order, alpha)
    z = {f: {n: zscores(v, window) for n, v in s.items()} for f, s in sig.items()}
    thr = {n: calibrate(z["free"][n], fault_step, far) for n in SIGNALS}
    measured, table = {}, []
    for f in faults:
        delay = {n: first_alarm(z[f][n], fault_step, thr[n]) - fault_step for n in SIGNALS}
        for n in ("grad_norm", "act_norm"):
            measured[f"lead_{n}_{f}"] = interval_from_samples(
                delay["loss"] - delay[n], unit="steps", note=f"{f}: loss alarm delay minus {n} alarm delay")
        for n in SIGNALS:
            measured[f"delay_{n}_{f}"] = interval_from_samples(delay[n], unit="steps")
        table += [{"fault": f, **{f"median_delay_{n}": float(np.median(delay[n])) for n in SIGNALS}}]
    for n in SIGNALS:
        fired = first_alarm(z["free"][n], fault_step, thr[n]) < steps
        measured[f"false_alarm_rate_{n}"] = Measure(float(fired.mean()), n=len(fired),
                                                    note=f"fault-free runs alarming after step {fault_step}")
        measured[f"threshold_{n}"] = Measure(thr[n], note="calibrated z-score threshold")
    runs = len(data_draws) * len(seeds)
    return Evidence(measured=measured, figures=_figures(sig, fault_step, window), table=table, seeds=list(seeds),
                    replication={"data_draws": len(data_draws), "seeds": len(seeds),
                                 "reason": f"{runs} paired runs (draws × seeds) per fault, seeds nested in draws"},
                    scale={"max_params": _params(L, d, V), "max_tokens": steps * B * T,
                           "data": [f"order-{order} Markov, V={V}"]},
                    notes=[f"Thresholds set on {runs} fault-free twins to a false-alarm rate of {far:g} after "
                           f"step {fault_step}; an alarm that never fires counts at step {steps} (a censored delay).",
                           *(["Targets are random tokens from the fault step on (a data fault)."] if corrupt_labels else [])])


def _params(L: int, d: int, V: int) -> int:
    return L * 12 * d * d + V * d


def _figures(sig: dict, fault_step: int, window: int) -> list[Figure]:
    lo = max(0, fault_step - 2 * window)
    figs = []
    for f in ("spike", "ramp"):
        s = sig[f]
        figs.append(Figure(f"Signals around the {f} fault (first run), over their pre-fault mean", "step",
                           "signal / pre-fault mean",
                           [Series(n, range(lo, len(v)), np.nan_to_num(v[lo:, 0] / v[lo:fault_step, 0].mean(), nan=1e6))
                            for n, v in s.items()], yscale="log"))
    return figs
