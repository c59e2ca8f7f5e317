"""Training loops and learning-rate schedules shared by the run claims.

Deterministic for a seed: the seed fixes the init (torch) and the data stream (numpy).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn as nn

from .data import MarkovSource
from .gpt import lm_loss

__all__ = ["lr_at", "MLPLM", "TrainConfig", "History", "train_lm", "grad_norm", "set_seed",
           "count_params", "evaluate"]


def set_seed(seed: int) -> np.random.Generator:
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def lr_at(step: int, total: int, peak: float, schedule: str = "cosine", warmup: int = 0,
          period: float | None = None, min_ratio: float = 0.0) -> float:
    """Learning rate at `step` (0-based).

    cosine: half-cosine from peak to min over `period` steps (default: the run length), as in
    Loshchilov & Hutter 2016 / Hoffmann et al. 2022 §D; past the period the cosine keeps going
    (it rises again), which is what a too-short period does in practice.
    noam: linear warm-up then decay ∝ 1/sqrt(step) (Vaswani et al. 2017, Eq. 3), normalised
    so that it reaches `peak` at the end of warm-up.
    """
    if warmup and step < warmup:
        return peak * (step + 1) / warmup
    if schedule == "constant":
        return peak
    if schedule == "cosine":
        span = (period or total) - warmup
        frac = (step - warmup) / max(1, span)
        return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * frac)))
    if schedule == "noam":
        return peak * math.sqrt(max(1, warmup) / max(step + 1, warmup, 1))
    if schedule == "linear":
        frac = (step - warmup) / max(1, total - warmup)
        return peak * (min_ratio + (1 - min_ratio) * max(0.0, 1 - frac))
    raise ValueError(f"unknown schedule {schedule!r}")


class MLPLM(nn.Module):
    """An MLP language model over the last `k` tokens: embed, concatenate, MLP, logits.

    For an order-k Markov source this family contains the true model, so its loss is
    entropy + approximation/estimation error, with nothing hidden by a context limit.
    """

    def __init__(self, V: int, k: int = 2, d_emb: int = 32, d_hidden: int = 128, n_layers: int = 1):
        super().__init__()
        self.k = k
        self.emb = nn.Embedding(V, d_emb)
        layers: list[nn.Module] = []
        d_in = k * d_emb
        for _ in range(n_layers):
            layers += [nn.Linear(d_in, d_hidden), nn.GELU()]
            d_in = d_hidden
        layers.append(nn.Linear(d_in, V))
        self.net = nn.Sequential(*layers)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx: (B, T) -> logits (B, T, V); positions t < k-1 see zero-padded context."""
        B, T = idx.shape
        e = self.emb(idx)  # (B, T, d)
        pad = torch.zeros(B, self.k - 1, e.shape[-1], device=e.device, dtype=e.dtype)
        e = torch.cat([pad, e], dim=1)
        ctx = torch.cat([e[:, j: j + T] for j in range(self.k)], dim=-1)  # (B, T, k*d)
        return self.net(ctx)


def grad_norm(model: nn.Module) -> float:
    sq = [p.grad.detach().pow(2).sum() for p in model.parameters() if p.grad is not None]
    return float(torch.stack(sq).sum().sqrt()) if sq else 0.0


@dataclass
class TrainConfig:
    steps: int = 200
    batch: int = 32          # sequences per step
    T: int = 32              # tokens per sequence
    lr: float = 3e-3
    schedule: str = "cosine"
    warmup: int = 0
    period: float | None = None
    min_ratio: float = 0.0
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.95)
    clip: float | None = None
    z_loss: float = 0.0
    eval_every: int = 0      # 0: evaluate only at the end
    eval_batch: int = 128
    device: str = "cpu"


@dataclass
class History:
    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    eval_loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    diverged: bool = False

    @property
    def final(self) -> float:
        return self.eval_loss[-1] if self.eval_loss else float("nan")


def train_lm(model: nn.Module, source: MarkovSource, cfg: TrainConfig, seed: int,
             eval_tokens: torch.Tensor | None = None,
             on_step: Callable[[int, nn.Module, History], None] | None = None) -> History:
    """AdamW on a stream from `source`; eval = expected CE against the true distribution."""
    rng = np.random.default_rng(seed + 10_000)  # data stream; init was seeded by the caller
    dev = torch.device(cfg.device)
    model.to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=cfg.betas,
                            weight_decay=cfg.weight_decay)
    if eval_tokens is None:
        eval_tokens = source.sample(cfg.eval_batch, cfg.T + 1, np.random.default_rng(seed + 20_000))
    eval_tokens = eval_tokens.to(dev)
    hist = History()
    for step in range(cfg.steps):
        lr = lr_at(step, cfg.steps, cfg.lr, cfg.schedule, cfg.warmup, cfg.period, cfg.min_ratio)
        for g in opt.param_groups:
            g["lr"] = lr
        x = source.sample(cfg.batch, cfg.T + 1, rng).to(dev)
        loss = lm_loss(model(x[:, :-1]), x[:, 1:], cfg.z_loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = grad_norm(model)
        if cfg.clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        hist.steps.append(step)
        hist.train_loss.append(float(loss.detach()))
        hist.grad_norm.append(gn)
        hist.lr.append(lr)
        if not math.isfinite(hist.train_loss[-1]):
            hist.diverged = True
            break
        if on_step:
            on_step(step, model, hist)
        last = step == cfg.steps - 1
        if last or (cfg.eval_every and (step + 1) % cfg.eval_every == 0):
            hist.eval_steps.append(step + 1)
            hist.eval_loss.append(evaluate(model, source, eval_tokens))
    return hist


@torch.no_grad()
def evaluate(model: nn.Module, source: MarkovSource, tokens: torch.Tensor) -> float:
    model.eval()
    out = float(source.expected_ce(model(tokens[:, :-1]), tokens[:, :-1]))
    model.train()
    return out
