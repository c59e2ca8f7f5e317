"""Model sizes and token counts from a FLOP budget, so a claim runs bigger on a bigger machine.

A claim's tier declares a training budget in FLOPs (``flops``) instead of a list of sizes; the
ladder is the largest one that fits. Cost is C = 6·N·D (Kaplan et al. 2020 §2.1: forward plus
backward ≈ 6 FLOPs per weight per token), with N counting every weight that takes part in a
matmul (a tied output head included, token and position lookups not), because at these sizes the
head is a large share of the work. The engine may scale every budget (``budget_scale``, from
``principia verify --budget-scale``) and records the scale with the result.

- ``gpt_family(...)``: the candidate GPT shapes of one depth, widths in steps of the head count.
- ``fit_ladder(flops, family, n_sizes, span, ...)``: ``n_sizes`` shapes spaced evenly in log N
  over ``span`` decades below the largest that fits; each rung trains ``tokens_per_param`` × N
  tokens (a data-scaled ladder) or a fixed ``tokens`` (a step-count ladder), ``runs`` times.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from .gpt import GPT, GPTConfig

__all__ = ["Shape", "Rung", "gpt_family", "fit_ladder", "ladder_cost", "scaled"]


@dataclass(frozen=True)
class Shape:
    """One candidate model: its config, N (Kaplan's non-embedding count) and N_matmul (cost)."""

    cfg: GPTConfig
    N: int
    N_matmul: int


@dataclass(frozen=True)
class Rung:
    """One size of a ladder and the tokens each of its runs trains on."""

    shape: Shape
    tokens: int

    @property
    def flops(self) -> float:
        return 6.0 * self.shape.N_matmul * self.tokens


def scaled(flops: float, budget_scale: float) -> float:
    """The tier's budget times the engine's scale (1 on the machine the budgets were set on)."""
    if not (budget_scale > 0 and math.isfinite(budget_scale)):
        raise ValueError(f"budget_scale must be a positive number (got {budget_scale!r})")
    return float(flops) * float(budget_scale)


def _gpt_counts(cfg: GPTConfig) -> tuple[int, int]:
    """(non-embedding N, matmul weights) of the lab GPT, counted on a weightless (meta) build."""
    with torch.device("meta"):
        net = GPT(cfg)
    mats = sum(p.numel() for n, p in net.named_parameters() if p.dim() == 2 and n.startswith("blocks."))
    return net.non_embedding_params(), mats + cfg.d_model * cfg.vocab_size


def gpt_family(vocab_size: int, n_ctx: int, n_layer: int, n_head: int, d_max: int,
               **switches) -> list[Shape]:
    """GPT shapes of depth ``n_layer`` and width d = n_head·j (j = 1, 2, …, up to ``d_max``)."""
    cfg = lambda d: GPTConfig(vocab_size=vocab_size, n_ctx=n_ctx, n_layer=n_layer, d_model=d,
                              n_head=n_head, **switches)
    widths = range(n_head, d_max + 1, n_head)
    counts = _quadratic_counts(len(widths), lambda j: _gpt_counts(cfg(n_head * j)))
    return [Shape(cfg(d), *c) for d, c in zip(widths, counts)]


def _quadratic_counts(n: int, count) -> list[tuple[int, ...]]:
    """count(j) for j = 1 … n. Every weight of the GPT is d×d, d×4d, d, V×d or T×d, so each
    count is a quadratic in j: three meta builds fix it and a fourth, at j = n, checks it; should
    the check fail, every width is built (a meta build costs ~10 ms; families run to 64 widths)."""
    if n <= 4:
        return [count(j) for j in range(1, n + 1)]
    y1, y2, y3 = (count(j) for j in (1, 2, 3))
    # Newton's form through j = 1, 2, 3 (exact in integers: (j - 1)(j - 2) is always even)
    poly = lambda j: tuple(a + (b - a) * (j - 1) + (c - 2 * b + a) * (j - 1) * (j - 2) // 2
                           for a, b, c in zip(y1, y2, y3))
    if poly(n) != count(n):
        return [count(j) for j in range(1, n + 1)]
    return [poly(j) for j in range(1, n + 1)]


def ladder_cost(rungs: Sequence[Rung], runs: int) -> float:
    return runs * sum(r.flops for r in rungs)


def _pick(family: Sequence[Shape], top: int, n_sizes: int, span: float) -> list[Shape]:
    """n_sizes shapes nearest (in log N) to an even log spacing from N_top/10^span to N_top."""
    hi = math.log10(family[top].N)
    want = [hi - span + span * i / max(1, n_sizes - 1) for i in range(n_sizes)]
    chosen = [min(family[:top + 1], key=lambda s: abs(math.log10(s.N) - w)) for w in want]
    return list(dict.fromkeys(chosen))


def fit_ladder(flops: float, family: Sequence[Shape], n_sizes: int, span: float, runs: int = 1,
               tokens_per_param: float | None = None, tokens: int | None = None) -> list[Rung]:
    """The largest ladder whose runs fit in ``flops`` -> rungs, smallest first.

    Exactly one of ``tokens_per_param`` (each rung trains r·N tokens) and ``tokens`` (every rung
    the same count) is given. Raises ValueError when not even the smallest ladder fits, or when
    the family cannot give ``n_sizes`` distinct sizes over ``span`` decades.
    """
    if (tokens_per_param is None) == (tokens is None):
        raise ValueError("give exactly one of tokens_per_param and tokens")
    family = sorted(family, key=lambda s: s.N)
    for top in range(len(family) - 1, -1, -1):
        if family[top].N < family[0].N * 10 ** span * 0.999:
            break
        shapes = _pick(family, top, n_sizes, span)
        rungs = [Rung(s, int(tokens if tokens is not None else round(tokens_per_param * s.N)))
                 for s in shapes]
        if len(rungs) == n_sizes and ladder_cost(rungs, runs) <= flops:
            return rungs
    raise ValueError(f"a budget of {flops:.3g} FLOPs cannot hold {n_sizes} sizes over {span} "
                     f"decades × {runs} runs in this family (raise flops or lower span/n_sizes)")
