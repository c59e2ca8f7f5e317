"""i.i.d. (context, next-token) pairs from a Markov source, and exact population losses, for
sweeps of K ``NGramStack`` members (learning rates, batch sizes, schedules) on one batched stack.

Data are draws from the source's stationary law over (context, next) — the positions of a long
sample, shuffled — so a batch of B examples is B tokens with independent gradients, and the
population loss (entropy + KL) is computed exactly over all V^k contexts: no evaluation noise.
Members that share a seed share their initial weights and their data stream, so configurations
compare paired by seed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from .batched import BatchedAdamW, member_ce, train
from .data import MarkovSource
from .stacks import NGramStack

__all__ = ["PairSampler", "population_weights", "population_loss", "weighted_ce", "pair_batches",
           "SweepRun", "fit_pairs"]


def _digits(ctx_id: torch.Tensor, V: int, k: int) -> torch.Tensor:
    """Context index -> its k tokens, oldest first."""
    return torch.stack([(ctx_id // V ** (k - 1 - j)) % V for j in range(k)], dim=-1)


class PairSampler:
    """i.i.d. (context, next-token) pairs from a source, one numpy stream per seed."""

    def __init__(self, source: MarkovSource, seeds: Sequence[int]):
        self.V, self.k = source.V, source.order
        joint = (source.pi[:, None] * source.P).ravel()  # p(context, next), (V^k * V,)
        self.p = joint / joint.sum()
        self.cdf = np.cumsum(self.p)
        self.rngs = [np.random.default_rng(int(s) + 10_000) for s in seeds]

    def counts(self, B: int) -> torch.Tensor:
        """Empirical (context, next) frequencies of B draws per seed -> (S, V^k, V), rows sum to 1.
        A batch's CE is Σ_c,v (n_cv / B)(−log q(v|c)): one pass over the contexts at any B."""
        n = np.stack([r.multinomial(B, self.p) for r in self.rngs]) / B
        return torch.from_numpy(n.reshape(len(self.rngs), -1, self.V)).float()

    def draw(self, B: int) -> tuple[torch.Tensor, torch.Tensor]:
        """-> context tokens (S, B, k) and next tokens (S, B), one row per seed."""
        idx = np.stack([np.minimum(np.searchsorted(self.cdf, r.random(B)), len(self.cdf) - 1)
                        for r in self.rngs])
        ctx_id, nxt = np.divmod(idx, self.V)
        return _digits(torch.from_numpy(ctx_id), self.V, self.k), torch.from_numpy(nxt)


def all_contexts(V: int, k: int, K: int, device) -> torch.Tensor:
    """Every one of the V^k contexts, for each of K members -> (K, V^k, k)."""
    n = V ** k
    return _digits(torch.arange(n, device=device), V, k).expand(K, n, k)


def weighted_ce(logits: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Σ_c,v w[c, v](−log q(v|c)); logits (K, V^k, V), w (K or 1, V^k, V) -> (K,)."""
    return -(w * torch.log_softmax(logits, -1)).sum((1, 2))


def population_weights(source: MarkovSource, device) -> torch.Tensor:
    """p(c, v) = π(c) P(v|c) as a (1, V^k, V) tensor."""
    pi = torch.as_tensor(source.pi, dtype=torch.float32, device=device)
    P = torch.as_tensor(source.P, dtype=torch.float32, device=device)
    return (pi[:, None] * P)[None]


def population_loss(stack: NGramStack, source: MarkovSource, grad: bool) -> torch.Tensor:
    """Exact expected CE per member, Σ_c π(c) Σ_v P(v|c)(−log q(v|c)) -> (K,)."""
    dev = stack.flat.device
    with torch.set_grad_enabled(grad):
        logits = stack(all_contexts(stack.V, stack.k, stack.K, dev))
        return weighted_ce(logits, population_weights(source, dev))


def pair_batches(stack: NGramStack, sampler: PairSampler, B: int, seed_of: torch.Tensor):
    """batch(step, active) for `train`, and its loss: member m reads stream seed_of[m]. Batches of
    at least as many examples as contexts go through `counts` (the same loss in one pass)."""
    dev = stack.flat.device
    if B >= stack.V ** stack.k:
        ctx = all_contexts(stack.V, stack.k, stack.K, dev)
        return (lambda step, act: (ctx[act], sampler.counts(B)[seed_of[act]].to(dev))), weighted_ce

    def batch(step: int, act: list[int]):
        ctx, y = sampler.draw(B)
        return ctx[seed_of[act]].to(dev), y[seed_of[act]].to(dev)
    return batch, member_ce


@dataclass
class SweepRun:
    """Population loss per member at the evaluation steps."""

    eval_steps: list[int]
    loss: np.ndarray      # (n_eval, K)
    diverged: np.ndarray  # (K,) bool: non-finite, or ended above where it started

    @property
    def final(self) -> np.ndarray:
        return self.loss[-1]


def fit_pairs(stack: NGramStack, opt: BatchedAdamW, source: MarkovSource, sampler: PairSampler,
              seed_of: torch.Tensor, lr: Callable[[int], torch.Tensor], steps: int, B: int,
              eval_every: int, on_eval: Callable[[int, torch.Tensor], None] | None = None,
              stop: Callable[[np.ndarray], bool] | None = None) -> SweepRun:
    """Train all K members for `steps` steps of B pairs (no weight decay); the population loss
    at step 0, every `eval_every` steps and at the end. `stop(losses)` may end the run early."""
    evals, losses = [0], [population_loss(stack, source, False)]
    if on_eval:
        on_eval(0, losses[0])

    def on_step(step: int, _logits, _active) -> bool:
        if (step + 1) % eval_every and step != steps - 1:
            return False
        evals.append(step + 1)
        losses.append(population_loss(stack, source, False))
        if on_eval:
            on_eval(step + 1, losses[-1])
        return bool(stop and stop(losses[-1].cpu().numpy()))

    batch, loss = pair_batches(stack, sampler, B, seed_of)
    train(stack, opt, batch, lr, [steps] * stack.K, [0.0] * stack.K, on_step=on_step, loss=loss)
    arr = torch.stack(losses).nan_to_num(float("inf")).cpu().numpy()
    return SweepRun(evals, arr, ~np.isfinite(arr[-1]) | (arr[-1] > arr[0]))
