"""Data sources whose statistics are known exactly.

``MarkovSource``: an order-k Markov chain over V tokens with Dirichlet-distributed rows. Its
entropy rate is computed exactly from the stationary distribution, so a model's loss splits into
the irreducible entropy E plus a KL term that training can shrink — the E of a scaling fit is
known, and evaluating the expected cross-entropy against the true next-token distribution removes
sampling noise from the measurement.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

__all__ = ["MarkovSource", "with_rows", "blend_sources", "mixture_batch", "modular_addition",
           "stdlib_text"]


@dataclass
class MarkovSource:
    V: int = 64          # vocabulary size
    order: int = 2       # context length k
    alpha: float = 0.1   # Dirichlet concentration: small alpha -> peaked rows, lower entropy
    seed: int = 0
    support: int | None = None  # if set, each row puts mass on only this many tokens (sparse)
    P: np.ndarray = field(init=False, repr=False)        # (V**k, V) next-token probabilities
    pi: np.ndarray = field(init=False, repr=False)       # stationary distribution over contexts
    entropy: float = field(init=False)                   # exact entropy rate, nats/token

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        n_ctx = self.V ** self.order
        P = rng.dirichlet(np.full(self.V, self.alpha), size=n_ctx)
        if self.support:
            keep = np.argsort(rng.random((n_ctx, self.V)), axis=1)[:, : self.support]
            mask = np.zeros_like(P, dtype=bool)
            np.put_along_axis(mask, keep, True, axis=1)
            P = np.where(mask, P + 1e-12, 0.0)
        self.P = P / P.sum(axis=1, keepdims=True)
        self.pi = self._stationary()
        with np.errstate(divide="ignore", invalid="ignore"):
            h_rows = -np.nansum(np.where(self.P > 0, self.P * np.log(self.P), 0.0), axis=1)
        self.entropy = float(self.pi @ h_rows)

    def _stationary(self, iters: int = 500) -> np.ndarray:
        """Power iteration on the context chain (a_1..a_k) -> (a_2..a_k, c)."""
        V, k = self.V, self.order
        pi = np.full(V ** k, 1.0 / V ** k)
        for _ in range(iters):
            flow = (pi[:, None] * self.P).reshape(V, V ** (k - 1) * V)  # drop the oldest token
            new = flow.sum(axis=0)
            if np.abs(new - pi).sum() < 1e-12:
                return new
            pi = new
        return pi

    def context_index(self, tokens: torch.Tensor) -> torch.Tensor:
        """Index of the last k tokens at every position t >= k-1. tokens: (B, T) -> (B, T-k+1)."""
        idx = torch.zeros_like(tokens[:, self.order - 1:])
        for j in range(self.order):
            idx = idx * self.V + tokens[:, j: tokens.shape[1] - self.order + 1 + j]
        return idx

    def _cdf(self) -> np.ndarray:
        cache = getattr(self, "_cdf_cache", None)  # sampling is called every step
        if cache is None or cache[0] is not self.P:  # recompute if P was replaced
            cache = self._cdf_cache = (self.P, np.cumsum(self.P, axis=1))
        return cache[1]

    def sample(self, n: int, T: int, rng: np.random.Generator) -> torch.Tensor:
        """n sequences of T tokens, started from the stationary distribution. -> (n, T) int64."""
        V, k = self.V, self.order
        start = rng.choice(V ** k, size=n, p=self.pi)
        out = np.empty((n, T), dtype=np.int64)
        for j in range(k):
            out[:, j] = (start // V ** (k - 1 - j)) % V
        cdf = self._cdf()
        ctx = start
        for t in range(k, T):
            u = rng.random(n)[:, None]
            nxt = np.minimum((u > cdf[ctx]).sum(axis=1), V - 1)
            out[:, t] = nxt
            ctx = (ctx * V + nxt) % V ** k
        return torch.from_numpy(out)

    def expected_ce(self, logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of the model's next-token distribution against the true one.

        logits: (B, T, V) predictions for positions 0..T-1; only positions with a full context
        (t >= k-1) count. Equals entropy + KL(true || model) in expectation over contexts.
        """
        k = self.order
        ctx = self.context_index(tokens)                       # (B, T-k+1)
        true = torch.as_tensor(self.P, dtype=logits.dtype, device=logits.device)[ctx]
        logq = torch.log_softmax(logits[:, k - 1:], dim=-1)
        return -(true * logq).sum(-1).mean()


def with_rows(src: MarkovSource, P: np.ndarray) -> MarkovSource:
    """A copy of `src` with transition rows P; stationary law and entropy recomputed."""
    new = MarkovSource.__new__(MarkovSource)
    new.__dict__.update(src.__dict__)
    new.__dict__.pop("_cdf_cache", None)
    new.P = P / P.sum(axis=1, keepdims=True)
    new.pi = new._stationary(iters=2000)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(new.P > 0, new.P * np.log(new.P), 0.0).sum(axis=1)
    new.entropy = float(new.pi @ h)
    return new


def blend_sources(base: MarkovSource, other: MarkovSource, lam: float) -> MarkovSource:
    """Rows (1-λ)·base + λ·other: a domain sharing part of its structure with `base`."""
    if base.P.shape != other.P.shape:
        raise ValueError(f"sources must share V and order (got {base.P.shape} and {other.P.shape})")
    return with_rows(base, (1 - lam) * base.P + lam * other.P)


def mixture_batch(sources: list[MarkovSource], weights: np.ndarray, n: int, T: int,
                  rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n sequences drawn from domains chosen with probabilities `weights`. -> (tokens, domain ids)."""
    w = np.asarray(weights, dtype=float)
    dom = rng.choice(len(sources), size=n, p=w / w.sum())
    out = torch.empty((n, T), dtype=torch.int64)
    for d in np.unique(dom):
        rows = np.flatnonzero(dom == d)
        out[rows] = sources[d].sample(len(rows), T, rng)
    return out, torch.from_numpy(dom)


def modular_addition(p: int = 97, train_frac: float = 0.3, seed: int = 0):
    """All (a, b, (a+b) mod p); train/test split by unordered pair so (a,b) and (b,a) stay together."""
    pairs = [(a, b) for a in range(p) for b in range(a, p)]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pairs))
    n_train = int(round(train_frac * len(pairs)))
    def expand(ix):
        rows = []
        for i in ix:
            a, b = pairs[i]
            rows.append((a, b))
            if a != b:
                rows.append((b, a))
        x = torch.tensor(rows, dtype=torch.int64)
        return x, (x[:, 0] + x[:, 1]) % p
    return expand(order[:n_train]), expand(order[n_train:])


def stdlib_text(n_bytes: int = 200_000, pattern: str = "*.py") -> bytes:
    """Real text that ships with Python itself: the standard library's sources, in a fixed order."""
    root = Path(os.__file__).parent
    out = bytearray()
    for path in sorted(root.glob(pattern)):
        out += path.read_bytes()
        if len(out) >= n_bytes:
            break
    return bytes(out[:n_bytes])
