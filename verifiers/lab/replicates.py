"""Replicated GPT runs on the lab's batched stack: members are (data draw, init seed) pairs.

The independent unit is a data draw (a fresh source); init seeds nest inside it
(``lab.tuning.nested_seed``). Each member reads its own data stream from its own draw's source and
is evaluated on its draw's held-out tokens, so members of one stack are separate runs computed
together; arms (learning rates, penalties, placements) become extra members of the same stack.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from .batched import BatchedAdamW, Trace, lr_table, train
from .feeds import soft_targets
from .gpt import GPTConfig
from .stacks import GPTStack
from .tuning import nested_seed

__all__ = ["Member", "members_of", "gpt_stack", "draw_batches", "draw_eval", "run_stack", "TracedGPT"]

Member = tuple[int, int]  # (index of the data draw, init seed inside it)


def members_of(n_draws: int, seeds: Sequence[int], repeat: int = 1) -> list[Member]:
    """Draw-major member list, repeated `repeat` times (one block per arm)."""
    return [(j, int(s)) for _ in range(repeat) for j in range(n_draws) for s in seeds]


class TracedGPT(GPTStack):
    """A GPT stack that keeps the last block's output RMS of its latest forward pass, (K,)."""

    def __call__(self, idx: torch.Tensor, trace: list | None = None) -> torch.Tensor:
        rms: list = []
        out = super().__call__(idx, rms)
        self.last_act = rms[-1]
        return out


def gpt_stack(cfg: GPTConfig, draws: Sequence[int], members: Sequence[Member], traced: bool = False) -> GPTStack:
    """Member i starts from the lab GPT's init at nested_seed(draw, seed)."""
    cls = TracedGPT if traced else GPTStack
    return cls(cfg, [nested_seed(draws[j], s) for j, s in members], "cpu")


def draw_batches(srcs: Sequence, draws: Sequence[int], members: Sequence[Member], B: int, T: int,
                 soft: bool) -> Callable[[int, list[int]], tuple[torch.Tensor, torch.Tensor]]:
    """Each member's own stream from its draw's Markov source; members with the same (draw, seed)
    in different arms read the same tokens (paired arms)."""
    keys = sorted(set(members))
    rngs = {m: np.random.default_rng(nested_seed(draws[m[0]], m[1]) + 10_000) for m in keys}

    def target(src, x):
        if soft:
            return soft_targets(src, x)
        y = x[:, 1:].clone()
        y[:, : src.order - 1] = -1
        return y

    def batch(step: int, active: list[int]):
        xs = {m: srcs[m[0]].sample(B, T + 1, rngs[m]) for m in keys}  # every stream advances
        chosen = [members[i] for i in active]
        return (torch.stack([xs[m][:, :-1] for m in chosen]),
                torch.stack([target(srcs[m[0]], xs[m]) for m in chosen]))
    return batch


@torch.no_grad()
def draw_eval(stack: GPTStack, srcs: Sequence, members: Sequence[Member], evs: Sequence[torch.Tensor]) -> np.ndarray:
    """Expected CE of each member on its own draw's held-out tokens -> (K,)."""
    logits = stack(torch.stack([evs[j] for j, _ in members]))
    return np.array([float(srcs[j].expected_ce(logits[k], evs[j])) for k, (j, _) in enumerate(members)])


def run_stack(stack: GPTStack, batch, peaks: Sequence[float], steps: int, warmup: int, schedule: str,
              aux=None, on_step=None, scale: Callable[[int], torch.Tensor] | None = None) -> Trace:
    """AdamW (0.9, 0.95), no weight decay, each member at its own peak LR; `scale(step)` -> (K,)
    multiplies each member's rate (an injected fault)."""
    K = stack.K
    base = lr_table(peaks, [steps] * K, schedule, warmup)
    lr = (lambda t: base(t) * scale(t)) if scale else base
    return train(stack, BatchedAdamW(stack, betas=(0.9, 0.95)), batch, lr, [steps] * K, [0.0] * K,
                 aux=aux, on_step=on_step)
