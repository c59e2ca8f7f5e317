"""K small MLPs trained at once: next-token models of a Markov source, or classifiers.

Sweeps over learning rates, seeds and schedules need dozens of tiny runs; stacking their weights
along a leading model axis K and using batched matmuls runs them in one loop, several times faster
than K separate runs on a CPU (see the lab's timing notes). Models are independent: the loss is
the sum of per-model losses, so each model's gradient is its own.

Data for the language-model case are i.i.d. (context, next token) draws from the source's
stationary distribution -- the positions of a long sample, shuffled -- so a batch of B examples is
B tokens with independent gradients, and the population loss (entropy + KL) is computed exactly
over all V^k contexts: no evaluation noise.

Determinism: a model's initial weights depend only on its seed (models that share a seed share
their init), and each seed has its own data stream, so configurations compare paired by seed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .data import MarkovSource

__all__ = ["StackedMLP", "NGramMLP", "Optimiser", "PairSampler", "population_loss",
           "per_model_loss", "weighted_loss", "population_weights", "batch_loss", "block_sq_norm",
           "train_ensemble", "EnsembleRun", "constant_lr"]


def _uniform(gen: torch.Generator, shape: tuple[int, ...], bound: float) -> torch.Tensor:
    return (torch.rand(shape, generator=gen) * 2 - 1) * bound


class StackedMLP:
    """K MLPs with the same shape; weights (K, d_in, d_out), GELU hidden layers.

    Initialised as torch's nn.Linear (U(±1/sqrt(fan_in)) for weights and biases): the standard
    parametrisation, in which the best Adam learning rate depends on width.
    """

    def __init__(self, seeds: Sequence[int], dims: Sequence[int], device: str = "cpu"):
        self.K, self.dims = len(seeds), list(dims)
        Ws, bs = [], []
        for s in seeds:
            g = torch.Generator().manual_seed(int(s))
            Ws.append([_uniform(g, (a, b), a ** -0.5) for a, b in zip(dims[:-1], dims[1:])])
            bs.append([_uniform(g, (1, b), a ** -0.5) for a, b in zip(dims[:-1], dims[1:])])
        self.W = [torch.stack([w[i] for w in Ws]).to(device).requires_grad_()
                  for i in range(len(dims) - 1)]
        self.b = [torch.stack([b[i] for b in bs]).to(device).requires_grad_()
                  for i in range(len(dims) - 1)]

    def params(self) -> list[torch.Tensor]:
        return [*self.W, *self.b]

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """h: (K, B, d_in) -> (K, B, d_out)."""
        for i, (W, b) in enumerate(zip(self.W, self.b)):
            h = torch.baddbmm(b, h, W)
            if i < len(self.W) - 1:
                h = F.gelu(h)
        return h


class NGramMLP(StackedMLP):
    """K MLP language models over the last k tokens (the lab's MLPLM, stacked).

    Embedding N(0, 1) as nn.Embedding; the k context embeddings are concatenated.
    """

    def __init__(self, seeds: Sequence[int], V: int, k: int = 2, d_emb: int = 16,
                 d_hidden: int = 64, n_layers: int = 1, device: str = "cpu"):
        super().__init__(seeds, [k * d_emb] + [d_hidden] * n_layers + [V], device)
        self.V, self.k, self.d_emb = V, k, d_emb
        embs = [torch.randn(V, d_emb, generator=torch.Generator().manual_seed(int(s) + 7919))
                for s in seeds]
        self.E = torch.stack(embs).to(device).requires_grad_()

    def params(self) -> list[torch.Tensor]:
        return [self.E, *super().params()]

    def logits(self, ctx: torch.Tensor) -> torch.Tensor:
        """ctx: (K, B, k) token ids -> logits (K, B, V)."""
        K, B, k = ctx.shape
        rows = torch.arange(K, device=ctx.device)[:, None, None]
        e = self.E[rows, ctx]  # (K, B, k, d_emb)
        return self.forward(e.reshape(K, B, k * self.d_emb))


def block_sq_norm(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-model squared norm of stacked tensors (K, ...) -> (K,)."""
    return sum(t.detach().pow(2).flatten(1).sum(1) for t in tensors)


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

        The cross-entropy of a batch equals Σ_c,v (n_cv / B)(−log q(v|c)), so a batch of any size
        costs one pass over the V^k contexts: large batches at a fixed price.
        """
        n = np.stack([r.multinomial(B, self.p) for r in self.rngs]) / B
        return torch.from_numpy(n.reshape(len(self.rngs), -1, self.V)).float()

    def draw(self, B: int) -> tuple[torch.Tensor, torch.Tensor]:
        """-> context tokens (S, B, k) and next tokens (S, B), one row per seed."""
        idx = np.stack([np.minimum(np.searchsorted(self.cdf, r.random(B)), len(self.cdf) - 1)
                        for r in self.rngs])
        ctx_id, nxt = np.divmod(idx, self.V)
        return _digits(torch.from_numpy(ctx_id), self.V, self.k), torch.from_numpy(nxt)


def _digits(ctx_id: torch.Tensor, V: int, k: int) -> torch.Tensor:
    """Context index -> its k tokens, oldest first."""
    return torch.stack([(ctx_id // V ** (k - 1 - j)) % V for j in range(k)], dim=-1)


def per_model_loss(model: NGramMLP, ctx: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy per model: ctx (K, B, k), y (K, B) -> (K,)."""
    z = model.logits(ctx)
    K, B, V = z.shape
    return F.cross_entropy(z.reshape(K * B, V), y.reshape(K * B), reduction="none").view(K, B).mean(1)


def weighted_loss(model: NGramMLP, w: torch.Tensor) -> torch.Tensor:
    """Σ_c,v w[c, v](−log q(v|c)) over all V^k contexts; w: (K or 1, V^k, V) -> (K,)."""
    n_ctx = model.V ** model.k
    ctx = _digits(torch.arange(n_ctx, device=w.device), model.V, model.k)
    logq = torch.log_softmax(model.logits(ctx.expand(model.K, n_ctx, model.k)), -1)
    return -(w * logq).sum((1, 2))


def population_weights(source: MarkovSource, device: str = "cpu") -> torch.Tensor:
    """p(c, v) = π(c) P(v|c) as a (1, V^k, V) tensor."""
    pi = torch.as_tensor(source.pi, dtype=torch.float32, device=device)
    P = torch.as_tensor(source.P, dtype=torch.float32, device=device)
    return (pi[:, None] * P)[None]


def population_loss(model: NGramMLP, source: MarkovSource, grad: bool = False) -> torch.Tensor:
    """Exact expected cross-entropy per model, Σ_c π(c) Σ_v P(v|c)(−log q(v|c)) -> (K,)."""
    with torch.set_grad_enabled(grad):
        return weighted_loss(model, population_weights(source, model.E.device))


@dataclass
class Optimiser:
    """Adam (Kingma & Ba 2014, Alg. 1) or SGD with momentum, with one learning rate per model."""

    params: list[torch.Tensor]
    kind: str = "adam"  # adam | sgd
    betas: tuple[float, float] = (0.9, 0.95)
    momentum: float = 0.0
    eps: float = 1e-8
    t: int = 0
    state: list[list[torch.Tensor]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.kind not in ("adam", "sgd"):
            raise ValueError(f"optimiser must be 'adam' or 'sgd' (got {self.kind!r})")
        self.state = [[torch.zeros_like(p), torch.zeros_like(p)] for p in self.params]

    @torch.no_grad()
    def step(self, lr: torch.Tensor) -> None:
        """lr: (K,) learning rates."""
        self.t += 1
        b1, b2 = self.betas
        for p, (m, v) in zip(self.params, self.state):
            g, eta = p.grad, lr.to(p.device).view(-1, *([1] * (p.dim() - 1)))
            if self.kind == "sgd":
                m.mul_(self.momentum).add_(g)
                p.sub_(eta * m)
                continue
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            mhat, vhat = m / (1 - b1 ** self.t), v / (1 - b2 ** self.t)
            p.sub_(eta * mhat / (vhat.sqrt() + self.eps))


@dataclass
class EnsembleRun:
    """Population loss per model at the evaluation steps."""

    eval_steps: list[int]
    loss: np.ndarray  # (n_eval, K)
    diverged: np.ndarray  # (K,) bool

    @property
    def final(self) -> np.ndarray:
        return self.loss[-1]


def batch_loss(model: NGramMLP, sampler: PairSampler, B: int, seed_of: torch.Tensor) -> torch.Tensor:
    """Per-model mean cross-entropy of a fresh batch of B examples (model m reads stream seed_of[m]).

    Batches of at least as many examples as there are contexts go through `counts` (the same
    loss in one pass over the contexts).
    """
    dev = model.E.device
    if B >= model.V ** model.k:
        return weighted_loss(model, sampler.counts(B)[seed_of].to(dev))
    ctx, y = sampler.draw(B)
    return per_model_loss(model, ctx[seed_of].to(dev), y[seed_of].to(dev))


def train_ensemble(model: NGramMLP, source: MarkovSource, sampler: PairSampler,
                   seed_of: torch.Tensor, lr_fn: Callable[[int], torch.Tensor], steps: int, B: int,
                   opt: Optimiser, eval_every: int = 10,
                   on_eval: Callable[[int, torch.Tensor], None] | None = None,
                   stop: Callable[[np.ndarray], bool] | None = None) -> EnsembleRun:
    """Train all K models for `steps` steps of B examples; population loss every `eval_every`.

    `stop(losses)` sees the latest (K,) population losses and may end the run early.
    """
    evals, losses = [0], [population_loss(model, source)]
    if on_eval:
        on_eval(0, losses[0])
    for step in range(steps):
        loss = batch_loss(model, sampler, B, seed_of)
        for p in model.params():
            p.grad = None
        loss.nan_to_num(1e4).sum().backward()
        opt.step(lr_fn(step))
        if (step + 1) % eval_every == 0 or step == steps - 1:
            evals.append(step + 1)
            losses.append(population_loss(model, source))
            if on_eval:
                on_eval(step + 1, losses[-1])
            if stop and stop(losses[-1].detach().cpu().numpy()):
                break
    arr = torch.stack(losses).nan_to_num(float("inf")).cpu().numpy()
    return EnsembleRun(evals, arr, ~np.isfinite(arr[-1]) | (arr[-1] > arr[0]))


def constant_lr(lrs: Sequence[float]) -> Callable[[int], torch.Tensor]:
    """The same learning rate at every step, one per model."""
    t = torch.tensor(list(lrs), dtype=torch.float32)
    return lambda step: t
