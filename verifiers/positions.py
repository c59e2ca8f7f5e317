"""Length extrapolation: train at length T, evaluate at factor·T, for several position schemes.

The source must reward long context, or extrapolation cannot be told from ignoring position.
Here each sequence is written in one of K 'topics' (distributions over the same tokens), drawn
at random per sequence and never shown: the longer the context, the surer the topic, so
the optimal loss keeps falling with position (as real text's does). A scheme extrapolates when
its mean loss on positions past T is no higher than on the last half of the positions it was
trained on; a scheme that breaks past T loses the topic, and its loss rises. Losses are
expected cross-entropies against the true next-token distribution (no sampling noise).

Learned absolute positions cannot index past the table they were trained with: the table is
sized for the longest evaluation length and its rows past T are never trained, so they keep
their initial N(0, 0.02) values (the alternative, clamping to the last trained row, is not used).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from principia.evidence import Evidence, Figure, Series, interval_from_samples
from principia.types import Pos, PosInt, Seeds

from .lab.gpt import GPTConfig
from .lab.stacks import GPTStack
from .lab.tuning import nested_seed
from .lab.replicates import gpt_stack, members_of, run_stack

__all__ = ["length_extrapolation", "per_position_ce", "topic_batches", "TopicSource", "SCHEMES"]

SCHEMES = ("learned", "rope", "alibi", "none")


class TopicSource:
    """Sequences of tokens drawn independently from one of K 'topic' distributions over V tokens,
    the topic chosen uniformly per sequence and never shown. The exact next-token law mixes the
    topics by their posterior given the prefix, so the optimal loss falls with position."""

    def __init__(self, V: int, K: int, alpha: float, lam: float, seed: int):
        self.V, self.K = V, K
        rng = np.random.default_rng(seed)
        shared, own = rng.dirichlet(np.full(V, alpha)), rng.dirichlet(np.full(V, alpha), size=K)
        # each topic is lam of its own law and 1 - lam of a shared one: small lam, slow to tell apart
        self.P = torch.as_tensor((1 - lam) * shared + lam * own, dtype=torch.float32)  # (K, V)

    def sample(self, n: int, T: int, rng: np.random.Generator) -> torch.Tensor:
        """n sequences of T tokens -> (n, T) int64."""
        topic = rng.integers(0, self.K, n)
        cdf = np.cumsum(self.P.numpy(), axis=-1)[topic]  # (n, V)
        u = rng.random((n, T))[:, :, None]
        return torch.from_numpy(np.minimum((u > cdf[:, None]).sum(-1), self.V - 1).astype(np.int64))

    def true_next(self, x: torch.Tensor) -> torch.Tensor:
        """Law of x[:, t+1] given x[:, :t+1], t = 0..T-2 -> (n, T-1, V)."""
        loglik = torch.log(self.P[:, x[:, :-1]]).cumsum(-1)  # (K, n, T-1): log P(x_0..x_t | k)
        post = torch.softmax(loglik, dim=0)
        return torch.einsum("knt,kv->ntv", post, self.P)

    def optimal_loss(self, x: torch.Tensor) -> torch.Tensor:
        """Entropy of the true next-token law per predicted position, averaged over sequences."""
        q = self.true_next(x)
        return -(q * torch.log(q.clamp_min(1e-30))).sum(-1).mean(0)


@torch.no_grad()
def per_position_ce(stack: GPTStack, src: TopicSource, tokens: torch.Tensor) -> np.ndarray:
    """Expected cross-entropy against the true next-token distribution, per member and predicted
    position t = 1..T-1 -> (K, T-1). tokens: (n, T), shared by all members."""
    logits = stack(tokens[:, :-1][None].expand(stack.K, -1, -1))  # (K, n, T-1, V)
    true = src.true_next(tokens)  # (n, T-1, V)
    return -(true[None] * torch.log_softmax(logits, -1)).sum(-1).mean(1).numpy()


def topic_batches(src: TopicSource, seeds: list[int], B: int, T: int):
    """Batches with soft targets (the true next-token law), one data stream per member seed."""
    rngs = [np.random.default_rng(int(s) + 10_000) for s in seeds]

    def batch(step: int, active: list[int]):
        xs = [src.sample(B, T + 1, r) for r in rngs]
        xs = [xs[i] for i in active]
        return torch.stack([x[:, :-1] for x in xs]), torch.stack([src.true_next(x) for x in xs])
    return batch


def _train_eval(src, draw, pos, seeds, T, Tlong, L, d, n_head, lr, steps, B, ev) -> np.ndarray:
    """Per-position loss of each seed's model of one scheme, one draw -> (seeds, Tlong-1)."""
    cfg = GPTConfig(vocab_size=src.V, n_ctx=Tlong, n_layer=L, d_model=d, n_head=n_head, pos=pos)
    members = members_of(1, seeds)
    stack = gpt_stack(cfg, [draw], members)
    run_stack(stack, topic_batches(src, [nested_seed(draw, s) for _, s in members], B, T),
              [lr] * len(members), steps, 0, "cosine")
    return per_position_ce(stack, src, ev)


def _ratios(ce: np.ndarray, T: int) -> np.ndarray:
    """Mean loss predicting positions past T over positions T/2..T; column j predicts position j+1."""
    return ce[:, T:].mean(1) / ce[:, T // 2 - 1:T].mean(1)


def length_extrapolation(T: PosInt, factor: PosInt, schemes: list[str], V: PosInt, topics: PosInt, alpha: Pos, lam: Pos,
                         L: PosInt, d: PosInt, n_head: PosInt, lr: Pos, steps: PosInt, B: PosInt,
                         data_draws: Seeds, seeds: Seeds, eval_seqs: PosInt) -> Evidence:
    """Loss ratio past T over the trained positions T/2..T per position scheme, paired by run."""
    bad = [p for p in schemes if p not in SCHEMES]
    if bad:
        raise ValueError(f"schemes must be among {SCHEMES} (got {bad})")
    Tlong = factor * T
    ce, floor = {p: [] for p in schemes}, []
    for draw in data_draws:
        src = TopicSource(V=V, K=topics, alpha=alpha, lam=lam, seed=int(draw))
        ev = src.sample(eval_seqs, Tlong, np.random.default_rng(int(draw) + 7))
        floor.append(src.optimal_loss(ev).numpy())
        for pos in schemes:
            ce[pos].append(_train_eval(src, draw, pos, seeds, T, Tlong, L, d, n_head, lr, steps, B, ev))
    ce = {p: np.concatenate(v) for p, v in ce.items()}  # (runs, Tlong-1)
    ratios = {p: _ratios(c, T) for p, c in ce.items()}
    measured = {f"ratio_{p}": interval_from_samples(r, note=f"loss past {T} / loss at {T // 2}..{T}, {p}")
                for p, r in ratios.items()}
    for a, b in (("rope", "alibi"), ("rope", "none"), ("none", "alibi")):
        if a in ratios and b in ratios:
            measured[f"{a}_minus_{b}"] = interval_from_samples(ratios[a] - ratios[b], note="ratio difference, paired by run")
    measured["ratio_optimal"] = interval_from_samples(_ratios(np.stack(floor), T),
                                                      note="the same ratio for the exact predictor: what long context offers")
    runs = len(data_draws) * len(seeds)
    return Evidence(measured=measured, figures=[_figure(ce, np.mean(floor, 0), T, V)], seeds=list(seeds),
                    table=[{"scheme": p, "L_trained_half": float(c[:, T // 2 - 1:T].mean()),
                            "L_beyond_T": float(c[:, T:].mean()), "ratio": float(ratios[p].mean())} for p, c in ce.items()],
                    replication={"data_draws": len(data_draws), "seeds": len(seeds),
                                 "reason": f"{runs} runs per scheme, seeds nested in topic-source draws"},
                    scale={"max_params": 12 * L * d * d + (V + Tlong) * d, "max_tokens": steps * B * T,
                           "data": [f"{topics} hidden order-1 Markov topics, V={V}"]},
                    notes=[f"Trained at T = {T}, evaluated at {Tlong}; each sequence follows one of {topics} hidden "
                           "Markov chains, so the exact predictor's loss keeps falling with position.",
                           "Learned positions: rows past the training length stay at their random init."])


def _figure(ce: dict, floor: np.ndarray, T: int, V: int) -> Figure:
    x = list(range(1, len(floor) + 1))
    return Figure(f"Loss per position, trained at T = {T}", "position predicted", "expected CE (nats)",
                  [Series(p, x, c.mean(0), y_lo=c.min(0), y_hi=c.max(0)) for p, c in ce.items()]
                  + [Series("optimal", x, floor, style="dashed"),
                     Series("training length", [T, T], [0.0, math.log(V)], style="dashed")],
                  caption="Press et al. 2021, Fig. 1 compares schemes the same way, by loss beyond the training length.")
