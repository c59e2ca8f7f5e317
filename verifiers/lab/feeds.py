"""Data feeds for the batched stack: ``batch(step, active) -> (inputs, targets)`` functions and
member-wise evaluation against a Markov source's true next-token law."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from .data import MarkovSource

__all__ = ["markov_batches", "markov_eval", "member_eval", "presampled", "soft_targets"]

Batch = tuple[torch.Tensor, torch.Tensor]


def soft_targets(src: MarkovSource, x: torch.Tensor) -> torch.Tensor:
    """True next-token distributions for x[:, :-1] (rows before a full context are zero)."""
    P = torch.as_tensor(src.P, dtype=torch.float32)
    t = torch.zeros(x.shape[0], x.shape[1] - 1, src.V)
    t[:, src.order - 1:] = P[src.context_index(x[:, :-1])]
    return t


def _hard_targets(src: MarkovSource, x: torch.Tensor) -> torch.Tensor:
    y = x[:, 1:].clone()
    y[:, : src.order - 1] = -1  # no full context yet
    return y


def markov_batches(src: MarkovSource, seeds: Sequence[int], B: int, T: int, soft: bool,
                   device: str | torch.device) -> Callable[[int, list[int]], Batch]:
    """Batches from `src`, one data stream per member seed (numpy Generator seed + 10_000);
    soft=True targets the true next-token distribution (no label noise). Every stream advances
    every step, so a member's tokens do not depend on which others are still training."""
    rngs = [np.random.default_rng(int(s) + 10_000) for s in seeds]
    target = soft_targets if soft else _hard_targets

    def batch(step: int, active: list[int]) -> Batch:
        xs = [src.sample(B, T + 1, r) for r in rngs]
        xs = [xs[i] for i in active]
        inp = torch.stack([x[:, :-1] for x in xs])
        return inp.to(device), torch.stack([target(src, x) for x in xs]).to(device)
    return batch


def presampled(tokens: torch.Tensor) -> Callable[[int, list[int]], Batch]:
    """Next-token batches from pre-drawn tokens (steps, K, B, T+1), already on the device."""
    return lambda step, active: (tokens[step, active, :, :-1], tokens[step, active, :, 1:])


@torch.no_grad()
def markov_eval(stack, src: MarkovSource, tokens: torch.Tensor) -> np.ndarray:
    """Expected CE against the true next-token law, per member -> (K,). tokens: (n, T) shared by
    every member, so comparisons between members are paired."""
    x = tokens.to(stack.flat.device)
    logits = stack(x[None].expand(stack.K, -1, -1))
    return np.array([float(src.expected_ce(logits[k].cpu(), tokens)) for k in range(stack.K)])


@torch.no_grad()
def member_eval(stack, src: MarkovSource, tokens: torch.Tensor) -> np.ndarray:
    """Expected CE against the true law, member k on its own tokens[k] (K, n, T) -> (K,)."""
    logits = stack(tokens)
    return np.array([float(src.expected_ce(logits[k], tokens[k])) for k in range(stack.K)])
