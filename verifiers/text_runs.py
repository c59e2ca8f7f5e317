"""The same size sweeps on real text: byte-level MLP language models on the standard library's
source (``verifiers.lab.text``), scored by cross-entropy on held-out files.

Real text has no known entropy, so L(N) = E + A·N^-α is fitted with E free; the held-out files
make the loss an estimate of generalisation, not of memorisation.
"""
from __future__ import annotations

import numpy as np
import torch

from principia.evidence import Figure, Measure, Series, interval_from_samples
from principia.fit import fit_power_law

from .lab.batched import BatchedAdamW, lr_table, member_ce, train
from .lab.grid import buckets
from .lab.stacks import MLPStack, mlp_params
from .lab.text import TextSource

__all__ = ["text_losses", "text_power_law_measures"]

HELD_OUT = 0.1  # share of files held out (by path hash)


def _train_group(members: list[tuple[int, int]], train_src: TextSource, val: torch.Tensor,
                 steps: int, k: int, d_emb: int, lr: float, B: int, T: int, device: str) -> list[float]:
    """Train (seed, width) members together; held-out CE (nats per byte) of each."""
    stack = MLPStack(256, k, d_emb, [h for _, h in members], 1, [s for s, _ in members], device)
    streams = {s: train_src.sample(steps * B, T + 1, np.random.default_rng(s + 10_000)).view(steps, B, -1)
               for s, _ in members}
    data = torch.stack([streams[s] for s, _ in members], dim=1).to(device)  # (steps, K, B, T+1)
    K = len(members)
    train(stack, BatchedAdamW(stack, (0.9, 0.95)),
          lambda i, act: (data[i, act, :, :-1], data[i, act, :, 1:]),
          lr_table([lr] * K, [steps] * K, "cosine"), [steps] * K, [0.0] * K)
    x = val.to(device)[None].expand(K, -1, -1)
    tgt = x[..., 1:].clone()
    tgt[..., : k - 1] = -1  # positions without a full context do not count
    with torch.no_grad():
        return member_ce(stack(x[..., :-1]), tgt).tolist()


def text_losses(widths: list[int], steps: int, seeds: list[int], k: int, d_emb: int, lr: float,
                B: int, T: int, max_bytes: int, device: str) -> np.ndarray:
    """Held-out CE (nats per byte) of every (seed, width) -> (seeds, widths). Widths within 2× of
    each other train together; AdamW β = (0.9, 0.95), no decay, cosine to zero; each seed has its
    own window stream (the same for every width)."""
    train_src = TextSource("train", HELD_OUT, max_bytes)
    val = TextSource("val", HELD_OUT, max_bytes).sample(256, T + 1, np.random.default_rng(12_345))
    out = {}
    for group in buckets(widths):
        members = [(s, h) for s in seeds for h in group]
        out.update(zip(members, _train_group(members, train_src, val, steps, k, d_emb, lr, B, T, device)))
    return np.array([[out[(s, h)] for h in widths] for s in seeds])


def text_power_law_measures(widths: list[int], L: np.ndarray, k: int, d_emb: int,
                            tokens: int) -> tuple[dict[str, Measure], Figure]:
    """E-free power-law fits per seed on all but the largest width, and its forecast error."""
    N = np.array([mlp_params(256, k, d_emb, h, 1) for h in widths], dtype=float)
    fits = [fit_power_law(N[:-1], row[:-1], n_boot=0) for row in L]
    err = [(f.predict(N[-1]) - row[-1]) / (row[-1] - f.E) for f, row in zip(fits, L)]
    measured = {
        "text_alpha": interval_from_samples([f.alpha for f in fits],
                                            note="α of L = E + A·N^-α on held-out stdlib bytes, E free"),
        "text_r2": interval_from_samples([f.r2 for f in fits]),
        "text_holdout_error": interval_from_samples(
            err, note=f"(L_pred − L_obs)/(L_obs − E_fit) at N = {N[-1]:.0f}, text"),
        "text_loss_largest": interval_from_samples(L[:, -1], unit="nats/byte"),
    }
    mean = L.mean(0)
    pooled = fit_power_law(N[:-1], mean[:-1], n_boot=0)
    xs = np.geomspace(N[0] / 1.5, N[-1] * 1.5, 40)
    fig = Figure("Real text: held-out loss against model size", "non-embedding parameters N",
                 "held-out loss (nats/byte)",
                 [Series("runs (mean over seeds)", N[:-1], mean[:-1], "points"),
                  Series("held-out larger model", N[-1:], mean[-1:], "points"),
                  Series(f"fit, E free: α = {pooled.alpha:.2f}, E = {pooled.E:.2f}", xs, pooled.predict(xs))],
                 xscale="log", caption=f"Byte-level MLP LMs over the last {k} bytes of the standard "
                 f"library's source; {tokens:,} training bytes for every size; held-out files.")
    return measured, fig
