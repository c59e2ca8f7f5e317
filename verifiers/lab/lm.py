"""GPT language models of one shape trained together on a token source, scored on held-out text.

The one path by which the run claims train GPT members on real text or on a known-entropy source
(the ladder of sizes comes from ``verifiers.lab.budget``). A source is anything with ``V`` and
``sample(n, T, rng) -> (n, T) int64``: ``TextSource`` (the standard library's source, split by
file) or a ``MarkovSource``. Members differ in init seed, data stream and peak learning rate;
each reads its own stream (numpy Generator ``stream_seed``), so members are independent runs.

- ``LMSetting``: what every run shares (batch, context, optimiser, schedule, evaluation size).
- ``train_lm(cfg, train, setting, steps, lrs, seeds, streams, device, heldout)`` -> ``LMRun``:
  held-out loss per member at the end (and at ``eval_at`` steps), training trace, N, tokens.
- ``heldout(src, n, T, seed)``: fixed evaluation windows, shared by every member and size, so
  comparisons between members are paired.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from .batched import BatchedAdamW, Trace, lr_table, member_ce, train
from .gpt import GPTConfig
from .stacks import GPTStack

__all__ = ["LMSetting", "LMRun", "train_lm", "heldout", "heldout_loss", "member_feed"]


@dataclass(frozen=True)
class LMSetting:
    """What every run of a claim shares; each field comes from the claim's YAML."""

    batch: int                    # sequences per step
    T: int                        # tokens per sequence (the model's context)
    betas: tuple[float, float]
    weight_decay: float
    schedule: str = "cosine"      # lr_at's schedules: cosine (to min_ratio·peak), constant, …
    warmup: int = 0
    min_ratio: float = 0.0
    eval_seqs: int = 64           # held-out windows per evaluation

    @property
    def tokens_per_step(self) -> int:
        return self.batch * self.T


@dataclass
class LMRun:
    """K members' results: held-out loss at the end and at the evaluation steps."""

    N: int                                    # non-embedding parameters per member
    tokens: list[int]                         # tokens each member trained on
    loss: np.ndarray                          # (K,) held-out loss at each member's end
    curve: dict[int, np.ndarray] = field(default_factory=dict)  # step -> (K,) held-out loss
    trace: Trace | None = None


def heldout(src, n: int, T: int, seed: int) -> torch.Tensor:
    """n fixed windows of T+1 tokens from `src` (the same for every member that is scored)."""
    return src.sample(n, T + 1, np.random.default_rng(seed))


@torch.no_grad()
def heldout_loss(stack: GPTStack, windows: torch.Tensor, chunk: int = 32) -> torch.Tensor:
    """Mean next-token loss of every member -> (K,): on the same windows (n, T+1), or member k
    on its own windows[k] when they are (K, n, T+1)."""
    w_all = windows if windows.dim() == 3 else windows[None].expand(stack.K, -1, -1)
    n, total = w_all.shape[1], torch.zeros(stack.K)
    for a in range(0, n, chunk):
        w = w_all[:, a:a + chunk].to(stack.flat.device)
        total += member_ce(stack(w[:, :, :-1]), w[:, :, 1:]).cpu() * w.shape[1]
    return total / n


def member_feed(train_src, streams: Sequence[int], B: int, T: int, device):
    """batch(step, active): B fresh windows per member from its own stream each step."""
    rngs = [np.random.default_rng(int(s)) for s in streams]

    def batch(step: int, active: list[int]):
        x = torch.stack([train_src.sample(B, T + 1, rngs[i]) for i in active]).to(device)
        return x[:, :, :-1], x[:, :, 1:]
    return batch


def train_lm(cfg: GPTConfig, train_src, setting: LMSetting, steps: Sequence[int],
             lrs: Sequence[float], seeds: Sequence[int], streams: Sequence[int], device: str,
             windows: torch.Tensor, eval_at: Sequence[int] = (),
             rates: Callable[[int], torch.Tensor] | None = None) -> LMRun:
    """Train len(seeds) members of shape `cfg`; member i: init seed seeds[i], data stream
    streams[i], peak rate lrs[i], steps[i] steps. Scored on `windows` (see ``heldout``).
    `rates(step) -> (K,)` replaces the setting's named schedule (for schedules ``lr_at`` cannot
    write, e.g. a cosine cycle that holds its minimum); `lrs` then only label the members."""
    K = len(seeds)
    if not (len(steps) == len(lrs) == len(streams) == K):
        raise ValueError("steps, lrs, seeds and streams need one entry per member")
    stack = GPTStack(cfg, seeds, device)
    end = np.full(K, np.nan)
    curve: dict[int, np.ndarray] = {s: np.full(K, np.nan) for s in eval_at}

    def on_step(step: int, _logits, active: list[int]) -> None:
        if step + 1 in curve:
            curve[step + 1][active] = heldout_loss(stack, windows).numpy()

    def on_done(done: list[int], active: list[int]) -> None:
        loss = heldout_loss(stack, windows).numpy()
        for j in done:
            end[active[j]] = loss[j]

    trace = train(stack, BatchedAdamW(stack, setting.betas), member_feed(train_src, streams, setting.batch,
                                                                   setting.T, device),
                  rates or lr_table(lrs, steps, setting.schedule, setting.warmup, setting.min_ratio),
                  steps, [setting.weight_decay] * K, on_step=on_step, on_done=on_done)
    return LMRun(stack.non_embedding_params(), [s * setting.tokens_per_step for s in steps], end,
                 curve, trace)
