"""Loss along the context: a tiny GPT against an LSTM of equal size on a lag-copy source
(Kaplan et al. 2020 §3.2.1, Fig. 7)."""
from __future__ import annotations

import numpy as np
import torch

from principia.evidence import Evidence, Figure, Measure, Series, interval_from_samples
from principia.types import Frac, Pos, PosInt, Seeds
from verifiers.lab.batched import BatchedAdamW, lr_table, train
from verifiers.lab.gpt import GPT, GPTConfig
from verifiers.lab.longrange import LagCopySource, LSTMLM, lstm_width_for
from verifiers.lab.stacks import ModuleStack
from verifiers.lab.tuning import recorded, replication, scale

__all__ = ["lstm_vs_transformer"]


def _train_seq_model(model, source: LagCopySource, T: int, steps: int, lr: float, batch: int,
                     seed: int, device: str) -> None:
    """AdamW (0.9, 0.95), no decay, cosine to zero, on fresh samples (stream fixed by the seed)."""
    rng = np.random.default_rng(seed + 10_000)
    stack = ModuleStack(model.train(), device)

    def batch_at(step: int, active: list[int]):
        x = source.sample(batch, T + 1, rng).to(device)[None]
        return x[..., :-1], x[..., 1:]
    train(stack, BatchedAdamW(stack, (0.9, 0.95)), batch_at, lr_table([lr], [steps], "cosine"),
          [steps], [0.0])


@torch.no_grad()
def _per_position_loss(model, source: LagCopySource, x: torch.Tensor) -> np.ndarray:
    """Expected CE against the true next-token distribution at every position. -> (T,)."""
    model.eval()
    logq = torch.log_softmax(model(x[:, :-1]), dim=-1)
    q = source.true_next(x).to(logq.device)
    return (-(q * logq).sum(-1).mean(0)).cpu().numpy()


def _lstm_sweep(src, x_eval, cfg, lag, T, d_model, steps, lr, seeds, device):
    """Train GPT then LSTM per seed; early/late per-position advantage of the GPT."""
    early, late, curves = [], [], {"GPT": [], "LSTM": []}
    N = {}
    for s in seeds:
        for name in ("GPT", "LSTM"):
            torch.manual_seed(s)
            if name == "GPT":
                m = GPT(cfg)
                N[name] = m.non_embedding_params()
            else:
                m = LSTMLM(16, d_model, lstm_width_for(N["GPT"], d_model))
                N[name] = m.non_embedding_params()
            _train_seq_model(m, src, T, steps, lr, 32, s, device)
            curves[name].append(_per_position_loss(m, src, x_eval.to(device)))
        adv = curves["LSTM"][-1] - curves["GPT"][-1]
        cut = lag - 1  # position index of the first prediction that can copy
        early.append(float(adv[:cut].mean()))
        late.append(float(adv[cut:].mean()))
    return early, late, curves, N


def _lstm_measured(early, late, N):
    growth = [b - a for a, b in zip(early, late)]
    return {
        "advantage_growth": interval_from_samples(growth, unit="nats",
                                                  note="(L_LSTM − L_GPT) late minus early in the context"),
        "advantage_late": interval_from_samples(late, unit="nats", note="L_LSTM − L_GPT, positions ≥ lag"),
        "advantage_early": interval_from_samples(early, unit="nats", note="L_LSTM − L_GPT, positions < lag"),
        "params_gpt": Measure(N["GPT"]), "params_lstm": Measure(N["LSTM"]),
    }


def lstm_vs_transformer(lag: PosInt, p_copy: Frac, T: PosInt, d_model: PosInt, n_layer: PosInt,
                        steps: PosInt, lr: Pos, seeds: Seeds, device: str) -> Evidence:
    """Per-position loss of a tiny GPT and an LSTM with equal non-embedding parameters.

    The source copies the token `lag` steps back with probability p_copy from position `lag` on
    (Kaplan et al. 2020 §3.2.1 / Fig. 7 compare per-token loss along the context). advantage(t)
    = L_LSTM(t) − L_GPT(t), paired by seed (same data); early = positions before `lag`
    (nothing to copy yet), late = positions from `lag` on.
    """
    src = LagCopySource(V=16, lag=lag, p=p_copy)
    x_eval = src.sample(512, T + 1, np.random.default_rng(12_345))
    cfg = GPTConfig(vocab_size=16, n_ctx=T, n_layer=n_layer, d_model=d_model, n_head=4, pos="rope")
    early, late, curves, N = _lstm_sweep(src, x_eval, cfg, lag, T, d_model, steps, lr, seeds, device)
    measured = _lstm_measured(early, late, N)
    pos = list(range(1, T + 1))
    opt = src.optimal_loss(x_eval).numpy()
    fig = Figure("Loss by position in the context", "token position", "expected loss (nats)",
                 [Series(f"GPT ({N['GPT']:,} params)", pos, np.mean(curves["GPT"], 0)),
                  Series(f"LSTM ({N['LSTM']:,} params)", pos, np.mean(curves["LSTM"], 0)),
                  Series("true distribution (entropy)", pos, opt, "dashed")],
                 caption=f"From position {lag} on, a token repeats the one {lag} back with "
                         f"probability {p_copy}; means over seeds.")
    ev = Evidence(measured=measured, figures=[fig], seeds=list(seeds),
                    table=[{"position": t, "gpt": float(a), "lstm": float(b), "optimal": float(c)}
                           for t, a, b, c in zip(pos, np.mean(curves["GPT"], 0),
                                                 np.mean(curves["LSTM"], 0), opt)])
    return recorded(ev, replication(len(seeds), 1, 'one fixed lag-copy source; each seed draws its own token stream and initialisation'),
                    scale(max(N.values()), steps * 32 * T, [f'markov:lag-copy-{lag}']))
