"""Small batches find flatter minima that generalise better (Keskar et al. 2017), on a small
teacher-labelled classification task: Adam at two batch sizes until the training loss is low,
then the top Hessian eigenvalue and the test accuracy."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from principia.evidence import Evidence, Figure, Series, interval_from_samples
from principia.types import Frac, Pos, PosInt, Seeds

from .lab.batched import BatchedAdamW
from .lab.noise import top_eigenvalue
from .lab.stacks import ClassifierStack
from .lab.sweeps import ci_exp
from .lab.tuning import nested_seed, recorded, replication, scale

__all__ = ["small_batch_generalises"]


# ---------------------------------------------------------------- sharp minima

def _teacher_task(n_train: int, n_test: int, d: int, classes: int, label_noise: float,
                  seed: int) -> tuple[torch.Tensor, ...]:
    """Gaussian inputs labelled by a fixed random tanh network, a fraction of labels resampled."""
    g = torch.Generator().manual_seed(seed)
    W1 = torch.randn(d, 32, generator=g) / d ** 0.5
    W2 = torch.randn(32, classes, generator=g) * 3 / 32 ** 0.5
    X = torch.randn(n_train + n_test, d, generator=g)
    Y = (torch.tanh(X @ W1) @ W2).argmax(1)
    flip = torch.rand(len(Y), generator=g) < label_noise
    Y[flip] = torch.randint(0, classes, (int(flip.sum()),), generator=g)
    return X[:n_train], Y[:n_train], X[n_train:], Y[n_train:]


def _ce_acc(model: ClassifierStack, X: torch.Tensor, Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-model mean cross-entropy and accuracy on a whole set."""
    z = model(X.expand(model.K, -1, -1))
    K, n, C = z.shape
    ce = F.cross_entropy(z.reshape(K * n, C), Y.repeat(K), reduction="none").view(K, n).mean(1)
    return ce, (z.argmax(-1) == Y).float().mean(1)


def _fit_until(model: ClassifierStack, X: torch.Tensor, Y: torch.Tensor, B: int, lr: float,
               loss_stop: float, max_epochs: int, seeds: Sequence[int],
               check_examples: int = 32) -> torch.Tensor:
    """Adam on shuffled batches; each model stops once its full training loss is ≤ loss_stop,
    checked every `check_examples` examples whatever the batch size (so both batch sizes stop
    at the same resolution). Returns the epoch (fractional) at which each model stopped."""
    K, n = model.K, len(X)
    opt = BatchedAdamW(model, (0.9, 0.999))  # Adam's defaults, as Keskar et al. used
    no_decay = torch.zeros(K)
    rngs = [np.random.default_rng(s + 50_000) for s in seeds]
    done, epoch = torch.zeros(K, dtype=torch.bool), torch.full((K,), float(max_epochs))
    every, step = max(1, check_examples // B), 0
    for ep in range(max_epochs):
        perm = torch.from_numpy(np.stack([r.permutation(n) for r in rngs]))
        for i in range(0, n - B + 1, B):
            idx = perm[:, i: i + B]
            z = model(X[idx])
            loss = F.cross_entropy(z.reshape(-1, z.shape[-1]), Y[idx].reshape(-1),
                                   reduction="none").view(K, -1).mean(1)
            model.grad.zero_()
            loss.sum().backward()
            opt.step(torch.full((K,), lr) * ~done, no_decay)
            step += 1
            if step % every == 0:
                with torch.no_grad():
                    new = (_ce_acc(model, X, Y)[0] <= loss_stop) & ~done
                epoch[new], done = ep + (i + B) / n, done | new
                if done.all():
                    return epoch
    return epoch


LR_RULES = {"same": 0.0, "sqrt": 0.5, "linear": 1.0}  # exponent of B_large / B_small


def _arm(task, B: int, lr: float, d, width, classes, loss_stop, max_epochs, hessian_iters, seeds) -> dict:
    """Train one batch size to the stopping loss; sharpness and train/test loss and accuracy per seed."""
    Xtr, Ytr, Xte, Yte = task
    model = ClassifierStack([d, width, width, classes], seeds, "cpu")
    ep = _fit_until(model, Xtr, Ytr, B, lr, loss_stop, max_epochs, seeds)
    lam = top_eigenvalue(lambda: _ce_acc(model, Xtr, Ytr)[0], list(model.views.values()), hessian_iters)
    with torch.no_grad():
        (trl, tra), (tel, tea) = _ce_acc(model, Xtr, Ytr), _ce_acc(model, Xte, Yte)
    return {"epochs": ep, "lam": lam, "train_loss": trl, "train_acc": tra, "test_loss": tel, "test_acc": tea}


def small_batch_generalises(n_train: PosInt, n_test: PosInt, d: PosInt, classes: PosInt,
                            label_noise: Frac, width: PosInt, B_small: PosInt, B_large: PosInt,
                            lr: Pos, lr_rule: str, loss_stop: Pos, max_epochs: PosInt, hessian_iters: PosInt,
                            data_draws: Seeds, seeds: Seeds) -> Evidence:
    """Small- vs large-batch Adam to the same training loss: top Hessian eigenvalue and test gap,
    over teacher tasks (data draws) × init seeds. `lr` is the small batch's rate; the large batch
    uses lr·(B_large/B_small)^p, p from `lr_rule` (same 0, sqrt 0.5, linear 1)."""
    if lr_rule not in LR_RULES:
        raise ValueError(f"lr_rule must be one of {sorted(LR_RULES)} (got {lr_rule!r})")
    rates = {B_small: lr, B_large: lr * (B_large / B_small) ** LR_RULES[lr_rule]}
    runs = {B: [] for B in rates}
    for draw in data_draws:
        task = _teacher_task(n_train, n_test, d, classes, label_noise, int(draw))
        nested = [nested_seed(draw, s) for s in seeds]  # init and batch order, distinct per draw
        for B, r in rates.items():
            runs[B].append(_arm(task, B, r, d, width, classes, loss_stop, max_epochs, hessian_iters, nested))
    out = {B: {k: torch.cat([a[k] for a in arms]) for k in arms[0]} for B, arms in runs.items()}
    return _evidence(out, B_small, B_large, rates, lr_rule, n_train, label_noise, loss_stop, d, width, classes,
                     max_epochs, data_draws, seeds)


def _evidence(out, B_small, B_large, rates, lr_rule, n_train, label_noise, loss_stop, d, width, classes,
              max_epochs, data_draws, seeds) -> Evidence:
    sb, lb = out[B_small], out[B_large]
    log_ratio = torch.log(lb["lam"] / sb["lam"]).tolist()
    acc_gap = (sb["test_acc"] - lb["test_acc"]).tolist()
    loss_gap = (lb["test_loss"] - sb["test_loss"]).tolist()
    figs = [Figure("Sharpness and test accuracy per seed", "top Hessian eigenvalue λ_max",
                   "test accuracy",
                   [Series(f"B = {B}", out[B]["lam"].tolist(), out[B]["test_acc"].tolist(),
                           "points") for B in (B_small, B_large)], xscale="log")]
    ev = Evidence(
        measured={
            "sharpness_ratio": ci_exp(log_ratio, note=f"λ_max at B = {B_large} over B = {B_small}"),
            "test_acc_gap": interval_from_samples(acc_gap, note="small-batch minus large-batch "
                                                                "test accuracy"),
            "test_loss_gap": interval_from_samples(loss_gap, unit="nats",
                                                   note="large-batch minus small-batch test loss"),
            "train_loss_small": interval_from_samples(sb["train_loss"].tolist(), unit="nats"),
            "train_loss_large": interval_from_samples(lb["train_loss"].tolist(), unit="nats"),
        },
        figures=figs,
        table=[{"B": B, "lr": rates[B], "run": i, **{k: float(v[i]) for k, v in out[B].items()}}
               for B in (B_small, B_large) for i in range(len(out[B]["lam"]))],
        notes=[f"{n_train} training points, {label_noise:.0%} of labels resampled; Adam until the full training "
               f"loss is ≤ {loss_stop}, at lr {rates[B_small]:g} (B = {B_small}) and {rates[B_large]:g} "
               f"(B = {B_large}, the '{lr_rule}' rule)."],
        seeds=list(seeds),
    )
    return recorded(ev, replication(len(data_draws), len(seeds), 'teacher tasks and training sets (data draws); seeds vary the initialisation and batch order'),
                    scale(d * width + width * width + width * classes + 2 * width + classes, n_train * max_epochs, ['teacher:tanh-mlp']))


