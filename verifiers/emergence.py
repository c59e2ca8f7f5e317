"""Emergent abilities: delta tuning vs width (the metric effect is a run in emergence_run.py,
the published emergence scales are re-analysed in published.py).

- methods_need_scale (run): LoRA-style low-rank tuning vs full fine-tuning of tiny pretrained
  MLP LMs of growing width: does the gap close as the model widens (Lester et al. 2021, Fig. 1)?
"""
from __future__ import annotations

import math

import numpy as np

from principia.evidence import Evidence, Figure, Series, interval_from_samples
from principia.types import Pos, PosInt, Seeds

__all__ = ["tilted_source", "methods_need_scale"]


# ---------------------------------------------------------------- delta tuning vs width

class _LoRA:
    """Low-rank deltas on every weight matrix of a frozen StackedMLPLM (Hu et al. 2021, §4.1):
    W + (α/r)·A·B with A Gaussian, B zero, so tuning starts from the pretrained function."""

    def __init__(self, base, r: int, seed: int):
        import torch

        self.base, self.r = base, r
        g = torch.Generator().manual_seed(seed)
        dev = base.emb.device
        self.A = [(torch.randn(W.shape[0], W.shape[1], r, generator=g) / math.sqrt(W.shape[1]))
                  .to(dev).requires_grad_() for W in base.W]
        self.B = [torch.zeros(W.shape[0], r, W.shape[2], device=dev, requires_grad=True) for W in base.W]

    def params(self) -> list:
        return self.A + self.B

    def __call__(self, idx):
        import torch
        import torch.nn.functional as F

        m = self.base
        M, Bsz, T = idx.shape
        e = m.emb[torch.arange(M, device=idx.device)[:, None, None], idx]
        e = F.pad(e, (0, 0, m.k - 1, 0))
        h = torch.cat([e[:, :, j: j + T] for j in range(m.k)], dim=-1).reshape(M, Bsz * T, -1)
        n = len(m.W)
        for i, (W, b, A, Bm) in enumerate(zip(m.W, m.b, self.A, self.B)):
            h = torch.baddbmm(b, h, W + A @ Bm)  # α = r: the update is A·B unscaled
            if i < n - 1:
                h = F.gelu(h)
        return h.reshape(M, Bsz, T, -1)


def tilted_source(src, beta: float, seed: int):
    """A downstream task of low intrinsic rank: P_B(y|c) ∝ P_A(y|c)·exp(β·s(c)·v(y)), with a
    random sign s(c) per context and a random ±1 direction v over tokens — a rank-1 change of
    the log-probabilities that a linear read-out of good context features can express."""
    from verifiers.lab.stacked import with_rows

    rng = np.random.default_rng(seed)
    s_c = rng.choice([-1.0, 1.0], size=src.P.shape[0])
    v = rng.choice([-1.0, 1.0], size=src.P.shape[1])
    return with_rows(src, src.P * np.exp(beta * s_c[:, None] * v[None, :]))


def methods_need_scale(widths: list[int] | None = None, V: PosInt = 32, order: PosInt = 1,
                       support: PosInt = 8, alpha: Pos = 0.5, beta: Pos = 1.0, rank: PosInt = 1,
                       pre_steps: PosInt = 200, ft_steps: PosInt = 100, B: PosInt = 32,
                       T: PosInt = 32, lr: Pos = 1e-2, seeds: Seeds | None = None,
                       device: str = "cpu") -> Evidence:
    """Share of full fine-tuning's gain that rank-r tuning misses, against hidden width."""
    import torch

    from verifiers.lab.data import MarkovSource
    from verifiers.lab.stacked import StackedMLPLM, expected_ce_stacked, train_stacked

    widths = sorted(widths or [16, 64, 256])
    seeds = seeds or [0, 1, 2]
    M = len(seeds)
    src_a = MarkovSource(V=V, order=order, alpha=alpha, seed=2001, support=support)  # pretraining
    src_b = tilted_source(src_a, beta, seed=2002)  # the downstream task

    def stream(src, tag, steps):
        return torch.stack([src.sample(steps * B, T + 1, np.random.default_rng([s, tag])).view(steps, B, -1)
                            for s in seeds]).to(device)

    pre, ft = stream(src_a, 1, pre_steps), stream(src_b, 2, ft_steps)
    ev = torch.stack([src_b.sample(128, T, np.random.default_rng([s, 3])) for s in seeds]).to(device)
    gaps, rows = [], []
    for w in widths:
        base = StackedMLPLM(seeds, V, k=2, d_emb=16, d_hidden=w).to(device)
        train_stacked(base, lambda i: pre[:, i], pre_steps, lr=lr)
        state = {k_: v.detach().clone() for k_, v in base.state_dict().items()}
        L0 = expected_ce_stacked(base, ev, [src_b] * M)
        train_stacked(base, lambda i: ft[:, i], ft_steps, lr=lr)  # full fine-tuning
        L_full = expected_ce_stacked(base, ev, [src_b] * M)
        base.load_state_dict(state)
        for p in base.parameters():
            p.requires_grad_(False)
        lora = _LoRA(base, rank, seed=w)
        train_stacked(lora, lambda i: ft[:, i], ft_steps, lr=lr, params=lora.params())
        L_lora = expected_ce_stacked(lora, ev, [src_b] * M)
        g = (L_lora - L_full) / (L0 - L_full)
        gaps.append(g)
        n_delta = sum(a.numel() + b_.numel() for a, b_ in zip(lora.A, lora.B)) // M
        n_full = sum(p.numel() for p in base.parameters()) // M
        rows.append({"width": w, "params_full": n_full, "params_delta": n_delta,
                     "loss_pretrained": float(L0.mean()), "loss_full_ft": float(L_full.mean()),
                     "loss_lora": float(L_lora.mean()), "gap_share": float(g.mean())})
    G = np.array(gaps)  # (widths, seeds)
    measured = {
        "gap_change": interval_from_samples(
            (G[-1] - G[0]).tolist(),
            note=f"share of full fine-tuning's gain that rank-{rank} tuning misses: width "
                 f"{widths[-1]} minus width {widths[0]}"),
        "gap_at_widest": interval_from_samples(G[-1].tolist(), note=f"width {widths[-1]}"),
        "gap_at_narrowest": interval_from_samples(G[0].tolist(), note=f"width {widths[0]}"),
    }
    fig = Figure("What low-rank tuning misses, against width", "hidden width", "share of full FT's gain missed",
                 [Series("mean over seeds", widths, G.mean(1), y_lo=G.min(1), y_hi=G.max(1))],
                 xscale="log", caption=f"Rank-{rank} deltas on both weight matrices; embeddings frozen.")
    return Evidence(measured, figures=[fig], table=rows, seeds=list(seeds))
