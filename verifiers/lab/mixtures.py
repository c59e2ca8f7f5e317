"""Mixtures of known-entropy domains, trained as one batched stack of MLP LMs.

Shared by the data-mixture claims (diversity, domain pre-training, DoReMi-style weights): fixed
pools of sequences per (draw, domain), mixture streams with exact domain shares, and the expected
cross-entropy of each member against its own source.
"""
from __future__ import annotations

import numpy as np
import torch

from .batched import BatchedAdamW, lr_table, member_ce, train
from .data import MarkovSource
from .stacks import MLPStack

__all__ = ["Pools", "mixture_stream", "mlp_stack", "train_tokens", "expected_ce", "eval_tokens"]


class Pools:
    """Fresh sequences per (seed, domain), read in order (no repeats within a stream).

    Rows come in blocks of `block`, block b drawn from its own generator, so the first n rows of
    a domain are the same whoever asks for them and however many they ask for.
    """

    def __init__(self, T: int, block: int = 1024):
        self.T, self.block = T, block
        self._blocks: dict[tuple[int, int], list[torch.Tensor]] = {}

    def get(self, seed: int, d: int, src: MarkovSource, n: int) -> torch.Tensor:
        blocks = self._blocks.setdefault((seed, d), [])
        while len(blocks) * self.block < n:
            rng = np.random.default_rng([seed, d, len(blocks), 7])
            blocks.append(src.sample(self.block, self.T + 1, rng))
        return torch.cat(blocks)[:n]


def mixture_stream(pools: Pools, seed: int, sources: list[MarkovSource], w: np.ndarray,
                   steps: int, B: int) -> torch.Tensor:
    """(steps, B, T+1) sequences with domain shares w (counts rounded, then shuffled)."""
    total = steps * B
    w = np.asarray(w, dtype=float) / np.sum(w)
    n = np.floor(w * total).astype(int)
    n[np.argsort(-(w * total - n))[: total - n.sum()]] += 1  # largest remainders
    rows = [pools.get(seed, d, s, int(k)) for d, (s, k) in enumerate(zip(sources, n)) if k > 0]
    allrows = torch.cat(rows)
    perm = torch.from_numpy(np.random.default_rng([seed, 11]).permutation(total))
    return allrows[perm].reshape(steps, B, -1)


def mlp_stack(members: list[int], V: int, d_emb: int, d_hidden: int) -> MLPStack:
    """One MLP LM over the last two tokens per member, initialised as MLPLM under its seed."""
    return MLPStack(V, 2, d_emb, [d_hidden] * len(members), 1, members, "cpu")


def train_tokens(stack: MLPStack, data: torch.Tensor, steps: int, lr: float, loss=member_ce, on_step=None):
    """AdamW (torch's defaults, no weight decay) with a cosine decay to zero over `steps`, every
    member on its own pre-drawn tokens data (M, steps, B, T+1)."""
    K = stack.K
    batch = lambda step, active: (data[active, step, :, :-1], data[active, step, :, 1:])
    return train(stack, BatchedAdamW(stack, betas=(0.9, 0.999)), batch,
                 lr_table([lr] * K, [steps] * K, "cosine"), [steps] * K, [0.0] * K, loss=loss, on_step=on_step)


@torch.no_grad()
def expected_ce(stack: MLPStack, tokens: torch.Tensor, sources: list[MarkovSource]) -> np.ndarray:
    """Expected CE of member m against sources[m] on tokens[m] (M, B, T) -> (M,)."""
    logits = stack(tokens)
    return np.array([float(s.expected_ce(logits[m], tokens[m])) for m, s in enumerate(sources)])


def eval_tokens(src: MarkovSource, seed: int, d: int, n: int, T: int) -> torch.Tensor:
    return src.sample(n, T, np.random.default_rng([seed, d, 99]))
