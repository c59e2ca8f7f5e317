"""Shared set-up of the optimisation sweeps: configurations × seeds of NGramStack members on a
Markov source, per-configuration learning rates, and small result helpers."""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch

from principia.evidence import Measure, interval_from_samples

from .batched import BatchedAdamW
from .data import MarkovSource
from .pairs import PairSampler
from .stacks import NGramStack

__all__ = ["source", "ensemble", "per_config_lr", "constant_lr", "adam", "grid", "target",
           "diverged_as", "ci_exp", "STREAMS"]

# What the replication of these sweeps is: the evidence's replication.reason.
STREAMS = ("one fixed Markov source of known entropy; each seed draws its own token stream and "
           "initialisation (the source itself is not redrawn)")


def source(V: int, order: int, alpha: float, support: int, source_seed: int) -> MarkovSource:
    return MarkovSource(V=V, order=order, alpha=alpha, seed=source_seed, support=support or None)


def ensemble(src: MarkovSource, seeds: Sequence[int], n_cfg: int, d_hidden: int,
              n_layers: int = 1, d_emb: int = 16, device: str = "cpu"
              ) -> tuple[NGramStack, PairSampler, torch.Tensor]:
    """n_cfg configurations × len(seeds) models, configuration-major (model c·S + s has seed s);
    models with the same seed share their initial weights and their data stream."""
    K = n_cfg * len(seeds)
    model = NGramStack(src.V, src.order, d_emb, [d_hidden] * K, n_layers,
                       [s for _ in range(n_cfg) for s in seeds], device)
    sampler = PairSampler(src, seeds)
    return model, sampler, torch.arange(len(seeds)).repeat(n_cfg)


def per_config_lr(fns: Sequence[Callable[[int], float]], S: int) -> Callable[[int], torch.Tensor]:
    """One schedule per configuration, repeated over the S seeds."""
    return lambda step: torch.tensor([f(step) for f in fns for _ in range(S)], dtype=torch.float32)


def constant_lr(lrs: Sequence[float]) -> Callable[[int], torch.Tensor]:
    """The same learning rate at every step, one per member."""
    t = torch.tensor(list(lrs), dtype=torch.float32)
    return lambda step: t


def adam(model: NGramStack) -> BatchedAdamW:
    """Adam, β = (0.9, 0.95), no weight decay: every sweep here."""
    return BatchedAdamW(model, (0.9, 0.95))


def grid(x: np.ndarray, S: int) -> np.ndarray:
    """(K,) or (T, K) per-model values -> (..., n_cfg, S)."""
    return x.reshape(*x.shape[:-1], -1, S)


def target(src: MarkovSource, frac: float) -> float:
    """Loss that closes all but `frac` of the gap between the uniform guess and the entropy."""
    return src.entropy + frac * (math.log(src.V) - src.entropy)


def diverged_as(x: np.ndarray, fill: float) -> np.ndarray:
    """Losses with diverged (non-finite) runs replaced by `fill`, for plotting."""
    return np.where(np.isfinite(x), x, fill)


def ci_exp(logs: Sequence[float], unit: str = "", note: str = "") -> Measure:
    """A ratio reported through its log: geometric mean with the t-interval mapped back."""
    m = interval_from_samples(logs)
    return Measure(math.exp(m.value), math.exp(m.lo) if m.lo is not None else None,
                   math.exp(m.hi) if m.hi is not None else None, unit=unit, note=note, n=m.n,
                   samples=[math.exp(v) for v in logs])


