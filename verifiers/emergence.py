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

def _lora_stack(base, r: int, seed: int):
    """Low-rank deltas on every weight matrix of a frozen MLPStack (Hu et al. 2021, §4.1):
    W + A·B with A Gaussian (/√fan_in), B zero, so tuning starts from the pretrained function.
    α = r: the update is A·B unscaled. -> a stack whose members are the deltas."""
    import torch

    from verifiers.lab.batched import Stack
    from verifiers.lab.stacks import MLPStack

    g = torch.Generator().manual_seed(seed)
    Ws = [base.p(f"W{j}").detach() for j in range(base.n_layers + 1)]
    A = [torch.randn(W.shape[0], W.shape[1], r, generator=g) / math.sqrt(W.shape[1]) for W in Ws]
    members = [{**{f"A{j}": a[m] for j, a in enumerate(A)},
                **{f"B{j}": torch.zeros(r, W.shape[2]) for j, W in enumerate(Ws)}}
               for m in range(base.K)]

    class LoRAStack(Stack):
        def __call__(self, idx):
            frozen = {n: v.detach() for n, v in base.views.items()}
            for j in range(base.n_layers + 1):
                frozen[f"W{j}"] = frozen[f"W{j}"] + self.p(f"A{j}") @ self.p(f"B{j}")
            return MLPStack.__call__(_Weights(base, frozen), idx)
    return LoRAStack(members, base.flat.device)


class _Weights:
    """An MLPStack's shape with other weights: what MLPStack.__call__ reads through ``p``."""

    def __init__(self, base, weights: dict):
        self.k, self.n_layers, self.weights = base.k, base.n_layers, weights

    def p(self, name: str):
        return self.weights[name]

    def hidden(self, idx):
        from verifiers.lab.stacks import MLPStack
        return MLPStack.hidden(self, idx)


def tilted_source(src, beta: float, seed: int):
    """A downstream task of low intrinsic rank: P_B(y|c) ∝ P_A(y|c)·exp(β·s(c)·v(y)), with a
    random sign s(c) per context and a random ±1 direction v over tokens — a rank-1 change of
    the log-probabilities that a linear read-out of good context features can express."""
    from verifiers.lab.data import with_rows

    rng = np.random.default_rng(seed)
    s_c = rng.choice([-1.0, 1.0], size=src.P.shape[0])
    v = rng.choice([-1.0, 1.0], size=src.P.shape[1])
    return with_rows(src, src.P * np.exp(beta * s_c[:, None] * v[None, :]))


def _fit(stack, tokens, steps: int, lr: float) -> None:
    """AdamW with torch's default betas, no decay, cosine to zero; tokens (K, steps, B, T+1)."""
    from verifiers.lab.batched import BatchedAdamW, lr_table, train

    K = stack.K
    train(stack, BatchedAdamW(stack, (0.9, 0.999)),
          lambda i, act: (tokens[act, i, :, :-1], tokens[act, i, :, 1:]),
          lr_table([lr] * K, [steps] * K, "cosine"), [steps] * K, [0.0] * K)


def _width_gap(w: int, V: int, rank: int, pre, ft, ev, src_b, pre_steps: int, ft_steps: int,
               lr: float, seeds: list[int], device: str):
    """Pretrain width-w models, then fine-tune fully and with rank-r deltas; -> gap share, row."""
    from verifiers.lab.feeds import member_eval
    from verifiers.lab.stacks import MLPStack

    base = MLPStack(V, 2, 16, [w] * len(seeds), 1, seeds, device)
    _fit(base, pre, pre_steps, lr)
    state = base.flat.clone()
    L0 = member_eval(base, src_b, ev)
    _fit(base, ft, ft_steps, lr)  # full fine-tuning
    L_full = member_eval(base, src_b, ev)
    base.load(state)
    lora = _lora_stack(base, rank, seed=w)
    _fit(lora, ft, ft_steps, lr)
    L_lora = member_eval(lora, src_b, ev)
    g = (L_lora - L_full) / (L0 - L_full)
    row = {"width": w, "params_full": base.flat.shape[1], "params_delta": lora.flat.shape[1],
           "loss_pretrained": float(L0.mean()), "loss_full_ft": float(L_full.mean()),
           "loss_lora": float(L_lora.mean()), "gap_share": float(g.mean())}
    return g, row


def _mns_streams(V, order, support, alpha, beta, pre_steps, ft_steps, B, T, seeds, device):
    """Pretraining and downstream sources, and every seed's token streams."""
    import torch

    from verifiers.lab.data import MarkovSource

    src_a = MarkovSource(V=V, order=order, alpha=alpha, seed=2001, support=support)  # pretraining
    src_b = tilted_source(src_a, beta, seed=2002)  # the downstream task

    def stream(src, tag, steps):
        return torch.stack([src.sample(steps * B, T + 1, np.random.default_rng([s, tag])).view(steps, B, -1)
                            for s in seeds]).to(device)

    pre, ft = stream(src_a, 1, pre_steps), stream(src_b, 2, ft_steps)
    ev = torch.stack([src_b.sample(128, T, np.random.default_rng([s, 3])) for s in seeds]).to(device)
    return src_b, pre, ft, ev


def _mns_measured(G, widths, rank):
    return {
        "gap_change": interval_from_samples(
            (G[-1] - G[0]).tolist(),
            note=f"share of full fine-tuning's gain that rank-{rank} tuning misses: width "
                 f"{widths[-1]} minus width {widths[0]}"),
        "gap_at_widest": interval_from_samples(G[-1].tolist(), note=f"width {widths[-1]}"),
        "gap_at_narrowest": interval_from_samples(G[0].tolist(), note=f"width {widths[0]}"),
    }


def methods_need_scale(widths: list[int], V: PosInt, order: PosInt, support: PosInt, alpha: Pos,
                       beta: Pos, rank: PosInt, pre_steps: PosInt, ft_steps: PosInt, B: PosInt,
                       T: PosInt, lr: Pos, seeds: Seeds, device: str) -> Evidence:
    """Share of full fine-tuning's gain that rank-r tuning misses, against hidden width."""
    widths = sorted(widths)
    src_b, pre, ft, ev = _mns_streams(V, order, support, alpha, beta, pre_steps, ft_steps, B, T,
                                      seeds, device)
    gaps, rows = [], []
    for w in widths:
        g, row = _width_gap(w, V, rank, pre, ft, ev, src_b, pre_steps, ft_steps, lr, seeds, device)
        gaps.append(g)
        rows.append(row)
    G = np.array(gaps)  # (widths, seeds)
    measured = _mns_measured(G, widths, rank)
    fig = Figure("What low-rank tuning misses, against width", "hidden width", "share of full FT's gain missed",
                 [Series("mean over seeds", widths, G.mean(1), y_lo=G.min(1), y_hi=G.max(1))],
                 xscale="log", caption=f"Rank-{rank} deltas on both weight matrices; embeddings frozen.")
    from verifiers.lab.stacks import mlp_params
    from verifiers.lab.tuning import recorded, replication, scale

    return recorded(Evidence(measured, figures=[fig], table=rows, seeds=list(seeds)),
                    replication(len(seeds), 1, "fixed pretraining and downstream sources; each "
                                               "seed draws its own token streams and initialisation"),
                    scale(mlp_params(V, 2, 16, widths[-1], 1), (pre_steps + ft_steps) * B * T,
                          [f"markov:V{V}-order{order}", "markov:tilted"]))
