"""Regularisation: L2 in the gradient against decoupled weight decay, under SGD and Adam.

The two rules are compared on a small real GPT in float64 from the same init and batches
(Loshchilov & Hutter 2017).
"""
from __future__ import annotations

from functools import partial
from typing import Callable

import torch

from principia.evidence import Evidence, Figure, Measure, Series
from principia.types import NonNeg, Pos, PosInt
from verifiers.lab.gpt import lm_loss
from verifiers.lab.measure import small_gpt

__all__ = ["weight_decay_vs_l2"]


def _trajectory(make: Callable, decoupled: float, steps: int, seed: int, **cfg) -> torch.Tensor:
    """Flat parameters after `steps` float64 steps on fixed random batches.

    `decoupled` > 0 shrinks θ by that factor before each step (θ ← (1 − ηλ)θ − η·g)."""
    model = small_gpt(seed, **cfg).double()
    opt = make(model.parameters())
    g = torch.Generator().manual_seed(seed + 1)
    for _ in range(steps):
        x = torch.randint(0, model.cfg.vocab_size, (8, model.cfg.n_ctx + 1), generator=g)
        opt.zero_grad(set_to_none=True)
        lm_loss(model(x[:, :-1]), x[:, 1:]).backward()
        if decoupled:
            with torch.no_grad():
                for p in model.parameters():
                    p.mul_(1 - decoupled)
        opt.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _compare(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """(‖a − b‖ / ‖b‖, cosine(a, b)) of two decay effects."""
    rel = float((a - b).norm() / b.norm())
    cos = float(a @ b / (a.norm() * b.norm()))
    return rel, cos


def _decay_effects(lam: float, lr: float, betas: tuple[float, float], sgd_momentum: float, steps: int,
                   seed: int, cfg: dict) -> dict[str, torch.Tensor]:
    """θ_k(λ) − θ_k(0) under SGD with L2, SGD with decoupled decay, Adam with L2, and AdamW."""
    def run(opt: Callable, wd: float, decoupled: float = 0.0) -> torch.Tensor:
        make = partial(opt, lr=lr, momentum=sgd_momentum, weight_decay=wd) if opt is torch.optim.SGD \
            else partial(opt, lr=lr, betas=betas, weight_decay=wd)
        return _trajectory(make, decoupled, steps, seed, **cfg)

    SGD, Adam, AdamW = torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW
    sgd0, adam0, adamw0 = run(SGD, 0.0), run(Adam, 0.0), run(AdamW, 0.0)
    return {"sgd_l2": run(SGD, lam) - sgd0, "sgd_dec": run(SGD, 0.0, decoupled=lr * lam) - sgd0,
            "adam_l2": run(Adam, lam) - adam0, "adamw": run(AdamW, lam) - adamw0}


def _decay_figure(d: dict[str, torch.Tensor], steps: int, seed: int, caption: str) -> Figure:
    k = min(400, d["adamw"].numel())
    idx = torch.randperm(d["adamw"].numel(), generator=torch.Generator().manual_seed(seed))[:k]
    return Figure(title=f"What λ does to each weight after {steps} steps",
                  xlabel="decoupled decay effect (AdamW)", ylabel="L2 decay effect (Adam)",
                  series=[Series("Adam vs AdamW", d["adamw"][idx].tolist(), d["adam_l2"][idx].tolist(),
                                 style="points"),
                          Series("SGD: L2 vs decoupled", d["sgd_dec"][idx].tolist(),
                                 d["sgd_l2"][idx].tolist(), style="points")],
                  caption=f"{k} random coordinates; {caption}")


def weight_decay_vs_l2(lam: Pos, lr: Pos, beta1: Pos, beta2: Pos, steps: PosInt, n_layer: PosInt,
                       d_model: PosInt, seed: int, sgd_momentum: NonNeg) -> Evidence:
    """Effect of λ on the weights under L2-in-the-gradient and decoupled decay, SGD and Adam.

    The decay effect is θ_k(λ) − θ_k(0) from the same init and batches. Under plain SGD the
    two rules are one map (Loshchilov & Hutter 2017, Prop. 1); under Adam the L2 term is divided
    by √v per coordinate, so its effect points elsewhere (Prop. 2, Alg. 2). With momentum, SGD's
    L2 term is accumulated in the momentum buffer and the two part too."""
    cfg = dict(vocab_size=64, n_ctx=16, n_layer=n_layer, d_model=d_model, n_head=4)
    d = _decay_effects(lam, lr, (beta1, beta2), sgd_momentum, steps, seed, cfg)
    sgd_rel, sgd_cos = _compare(d["sgd_l2"], d["sgd_dec"])
    adam_rel, adam_cos = _compare(d["adam_l2"], d["adamw"])
    ratio = float(d["adam_l2"].norm() / d["adamw"].norm())
    m = {
        "sgd_decay_rel_diff": Measure(sgd_rel, note="‖Δ_L2 − Δ_decoupled‖ / ‖Δ_decoupled‖, float64"),
        "sgd_decay_cosine": Measure(sgd_cos),
        "adam_decay_rel_diff": Measure(adam_rel, note="Adam(weight_decay) vs AdamW, same λ"),
        "adam_decay_cosine": Measure(adam_cos, note="direction of the decay effect; a rescaled λ "
                                                    "cannot change it"),
        "adam_l2_over_adamw_norm": Measure(ratio),
    }
    caption = f"λ = {lam}, η = {lr}, β = ({beta1}, {beta2}), SGD momentum {sgd_momentum}."
    return Evidence(
        measured=m, figures=[_decay_figure(d, steps, seed, caption)], seeds=[seed],
        notes=[f"SGD: L2 and decoupled decay differ by {sgd_rel:.1e}. Adam: the effect of "
               f"L2 points in a different direction from AdamW's (cosine {adam_cos:.3f}) and has "
               f"{ratio:.2f}× its size; no choice of λ for the L2 term turns one into the other."],
    )
