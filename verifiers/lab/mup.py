"""The maximal-update parametrisation (μP) for Adam on the MLP n-gram stack (Yang et al. 2022,
Tensor Programs V, Table 3, in the form of their ``mup`` package: MuReadout and MuAdam).

With width multiplier m = width / base_width:
- input weights, biases and the embedding: standard init, learning rate η (vector-like);
- hidden weights (width × width): standard init (variance 1/fan_in), learning rate η/m;
- output (readout) weights: init scaled by √m and the readout multiplied by 1/m, learning rate η,
  so the effective readout has init variance ∝ 1/fan_in² and updates ∝ η/m (Table 3's output row).
At m = 1 the model and the optimiser are the standard ones.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from .batched import BatchedAdamW
from .pairs import PairSampler
from .stacks import NGramStack

__all__ = ["MuNGramStack", "MuAdam", "mu_ensemble"]


class MuNGramStack(NGramStack):
    """NGramStack of one width in μP relative to `base_width`."""

    def __init__(self, V: int, k: int, d_emb: int, width: int, K: int, n_layers: int,
                 seeds: Sequence[int], base_width: int, device: str | torch.device):
        super().__init__(V, k, d_emb, [width] * K, n_layers, seeds, device)
        self.m = width / base_width
        with torch.no_grad():
            self.p(f"W{n_layers}").mul_(math.sqrt(self.m))  # mup's MuReadout rescaling

    def __call__(self, ctx: torch.Tensor) -> torch.Tensor:
        K, B, k = ctx.shape
        x = self.p("emb")[torch.arange(K, device=ctx.device)[:, None, None], ctx].reshape(K, B, -1)
        for j in range(self.n_layers):
            x = torch.nn.functional.gelu(torch.baddbmm(self.p(f"b{j}"), x, self.p(f"W{j}")))
        j = self.n_layers
        return torch.baddbmm(self.p(f"b{j}"), x, self.p(f"W{j}"), alpha=1.0 / self.m)  # readout / m

    def lr_scale(self) -> torch.Tensor:
        """(n,) per-coordinate learning-rate factor: 1/m on hidden (width × width) weights."""
        scale = torch.ones(self.flat.shape[1], device=self.flat.device)
        for j in range(1, self.n_layers):
            a, n = self.offsets[f"W{j}"], math.prod(self.shapes[f"W{j}"])
            scale[a:a + n] = 1.0 / self.m
        return scale


class MuAdam(BatchedAdamW):
    """BatchedAdamW (no weight decay) whose step is scaled per coordinate (mup's MuAdam)."""

    def __init__(self, stack: MuNGramStack, betas: tuple[float, float]):
        super().__init__(stack, betas)
        self.scale = stack.lr_scale()

    @torch.no_grad()
    def step(self, lr: torch.Tensor, weight_decay: torch.Tensor) -> None:
        p, g, b1, b2 = self.stack.flat, self.stack.grad, *self.betas
        r = lr.to(p).view(-1, 1) * self.scale[None, :]
        self.t += 1
        self.m.lerp_(g, 1 - b1)
        self.v.mul_(b2).addcmul_(g, g, value=1 - b2)
        denom = (self.v.sqrt() / math.sqrt(1 - b2 ** self.t)).add_(self.eps)
        p.sub_((r / (1 - b1 ** self.t)) * self.m / denom)


def mu_ensemble(src, seeds: Sequence[int], n_cfg: int, width: int, n_layers: int, base_width: int,
                device: str):
    """``sweeps.ensemble`` in μP: n_cfg configurations × len(seeds) members, configuration-major."""
    model = MuNGramStack(src.V, src.order, 16, width, n_cfg * len(seeds), n_layers,
                         [s for _ in range(n_cfg) for s in seeds], base_width, device)
    return model, PairSampler(src, seeds), torch.arange(len(seeds)).repeat(n_cfg)
