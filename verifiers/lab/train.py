"""The learning-rate schedules and the single-model MLP language model behind the batched stack.

(Training itself is ``verifiers.lab.batched.train``: one loop for every run claim.)
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

__all__ = ["lr_at", "MLPLM"]


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
