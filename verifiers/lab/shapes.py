"""Tiny GPTs of a given shape trained on a Markov source, optionally at their own best peak rate.

A shape's members are (seed × grid value): every seed trains at every peak learning rate of the
grid in one GPTStack (members with one seed share init and data stream), and per seed the peak
with the lowest expected CE on the shared evaluation tokens is kept (``tuning.Layout``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from .batched import BatchedAdamW, lr_table, train
from .data import MarkovSource
from .feeds import markov_batches, markov_eval
from .gpt import GPTConfig
from .stacks import GPTStack
from .tuning import Layout

__all__ = ["ShapeRun", "width_for_depth", "fit_gpt", "train_shape", "train_tuned"]


@dataclass
class ShapeRun:
    L: int
    d: int
    N: int
    loss: np.ndarray    # final expected CE per seed
    curve: np.ndarray   # mean training CE over seeds, per step
    lr: list[float] = field(default_factory=list)  # the chosen peak per seed (tuned runs)


def width_for_depth(L: int, d_ref: int, L_ref: int, n_head: int) -> int:
    """d_model that keeps 12·L·d² ≈ 12·L_ref·d_ref² (Kaplan §2.1), rounded to whole heads."""
    return n_head * max(1, round(d_ref * math.sqrt(L_ref / L) / n_head))


def fit_gpt(net: GPTStack, src: MarkovSource, streams: list[int], steps: int, B: int, T: int,
            lrs: list[float], device: str) -> np.ndarray:
    """AdamW (β = 0.9, 0.95; no decay) with a cosine to zero from each member's peak `lrs[i]`
    on soft targets, member i reading data stream `streams[i]`; training CE -> (steps, K)."""
    K = net.K
    tr = train(net, BatchedAdamW(net, (0.9, 0.95)), markov_batches(src, streams, B, T, True, device),
               lr_table(list(lrs), [steps] * K, "cosine"), [steps] * K, [0.0] * K)
    return tr.array("loss")


def train_shape(L: int, d: int, n_head: int, src: MarkovSource, seeds: list[int], steps: int,
                B: int, T: int, lr: float, eval_tokens: torch.Tensor,
                device: str) -> tuple[ShapeRun, GPTStack]:
    """One shape at one peak rate for every seed."""
    cfg = GPTConfig(vocab_size=src.V, n_ctx=T, n_layer=L, d_model=d, n_head=n_head)
    net = GPTStack(cfg, seeds, device)
    curve = fit_gpt(net, src, seeds, steps, B, T, [lr] * len(seeds), device).mean(axis=1)
    return ShapeRun(L, d, net.non_embedding_params(), markov_eval(net, src, eval_tokens), curve), net


def train_tuned(L: int, d: int, n_head: int, src: MarkovSource, seeds: list[int],
                streams: list[int], steps: int, B: int, T: int, lr_grid: list[float],
                eval_tokens: torch.Tensor, device: str) -> ShapeRun:
    """One shape at every peak of `lr_grid` per replicate (init seed `seeds[r]`, data stream
    `streams[r]`); per replicate the best peak is kept."""
    lay = Layout(1, len(seeds), tuple(lr_grid))
    members = lay.members()
    cfg = GPTConfig(vocab_size=src.V, n_ctx=T, n_layer=L, d_model=d, n_head=n_head)
    net = GPTStack(cfg, [seeds[r] for _, r, _ in members], device)
    curves = fit_gpt(net, src, [streams[r] for _, r, _ in members], steps, B, T,
                     [g for _, _, g in members], device)
    loss = markov_eval(net, src, eval_tokens)
    pick = lay.choose(loss)[0]  # (seeds,) member indices
    N = net.non_embedding_params()
    return ShapeRun(L, d, N, loss[pick], curves[:, pick].mean(axis=1),
                    [float(members[i][2]) for i in pick])
