"""A grid of MLP language-model runs (width, steps, seed) on one Markov source, trained together.

Members are bucketed by width (no member padded past 2× its width), each bucket one batched stack.
Each member follows its own cosine schedule over its own length and leaves the batch when it
ends; runs with the same seed share their data stream (drawn in one call per stream). Metrics are
exact: expected CE (entropy + KL) and top-1 accuracy over the source's live contexts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from .batched import BatchedAdamW, lr_table, train
from .data import MarkovSource
from .stacks import MLPStack, mlp_params
from .zipfsource import exact_metrics, live_contexts

__all__ = ["GridSetting", "Run", "run_grid", "buckets", "stream"]


@dataclass(frozen=True)
class GridSetting:
    """What every run of a grid shares: model family, optimiser and batch shape."""

    k: int          # context window of the MLP LM (= the source's order: exact evaluation)
    d_emb: int
    lr: float       # peak of each run's cosine to zero
    betas: tuple[float, float]
    batch: int      # sequences per step
    T: int          # tokens per sequence

    @property
    def tokens_per_step(self) -> int:
        return self.batch * self.T


@dataclass
class Run:
    """One trained model: width, seed, steps, N, D and exact final metrics per evaluation source."""

    h: int
    seed: int
    steps: int
    N: int
    D: int
    loss: dict[str, float] = field(default_factory=dict)
    acc: dict[str, float] = field(default_factory=dict)
    eval_steps: list[int] = field(default_factory=list)  # the training source's loss curve
    eval_loss: list[float] = field(default_factory=list)

    @property
    def C(self) -> float:
        return 6.0 * self.N * self.D


def buckets(widths: Sequence[int], ratio: float = 2.0) -> list[list[int]]:
    """Group widths so no group pads a member to more than `ratio` × its width (less waste)."""
    groups: list[list[int]] = []
    for w in sorted(set(widths), reverse=True):
        if groups and groups[-1][0] <= ratio * w:
            groups[-1].append(w)
        else:
            groups.append([w])
    return groups


def stream(src: MarkovSource, n: int, T: int, seed: int, chunk: int = 256) -> torch.Tensor:
    """n sequences of T tokens from data stream `seed`, drawn `chunk` at a time so that a longer
    run's tokens begin with exactly a shorter run's (one draw per step would be far slower)."""
    rng = np.random.default_rng(seed + 10_000)
    parts = [src.sample(chunk, T, rng) for _ in range(-(-n // chunk))]
    return torch.cat(parts)[:n]


def _evaluators(sources: dict[str, MarkovSource], device: str):
    """name -> f(stack) -> {"loss": (K,), "acc": (K,)}, exact over each source's live contexts."""
    out = {}
    for name, src in sources.items():
        toks, pi, P = (t.to(device) for t in live_contexts(src))
        out[name] = (lambda toks, pi, P: lambda st: exact_metrics(
            st(toks.expand(st.K, -1, -1))[:, :, -1], pi, P))(toks, pi, P)
    return out


def _train_bucket(src: MarkovSource, g: GridSetting, todo: list[tuple],
                  eval_every: int, sources: dict[str, MarkovSource], runs: list[Run],
                  device: str) -> None:
    """Train one bucket of (h, steps, seed[, peak lr]) runs; fill in their metrics."""
    hs, steps, seeds = ([t[i] for t in todo] for i in range(3))
    peaks = [t[3] if len(t) > 3 else g.lr for t in todo]  # a tuned grid's own peak, else g.lr
    stack = MLPStack(src.V, g.k, g.d_emb, hs, 1, seeds, device)
    longest = {s: max(st for st, sd in zip(steps, seeds) if sd == s) for s in dict.fromkeys(seeds)}
    streams = {s: stream(src, n * g.batch, g.T + 1, s) for s, n in longest.items()}
    n_max = max(steps) * g.batch
    streams = {s: torch.cat([x, x.new_zeros(n_max - len(x), x.shape[1])]) for s, x in streams.items()}
    pool = torch.stack([streams[s] for s in seeds]).to(device)  # (K, steps·B, T+1)
    evals = _evaluators(sources, device)
    B = g.batch

    def on_step(step: int, _logits, active: list[int]) -> None:
        due = [j for j, i in enumerate(active) if eval_every and (step + 1) % eval_every == 0
               and step + 1 < steps[i]]
        if due:
            loss = evals["train"](stack)["loss"].tolist()
            for j in due:
                runs[active[j]].eval_steps.append(step + 1)
                runs[active[j]].eval_loss.append(loss[j])

    def on_done(done: list[int], active: list[int]) -> None:
        for name, ev in evals.items():
            out = {m: v.tolist() for m, v in ev(stack).items()}
            for j in done:
                r = runs[active[j]]
                r.loss[name], r.acc[name] = out["loss"][j], out["acc"][j]
                if name == "train":
                    r.eval_steps.append(r.steps)
                    r.eval_loss.append(r.loss[name])

    train(stack, BatchedAdamW(stack, g.betas),
          lambda step, act: (pool[act, step * B:(step + 1) * B, :-1], pool[act, step * B:(step + 1) * B, 1:]),
          lr_table(peaks, steps, "cosine"), steps, [0.0] * len(hs),
          on_step=on_step, on_done=on_done)


def run_grid(src: MarkovSource, g: GridSetting, specs: Sequence[tuple],
             eval_every: int, eval_sources: dict[str, MarkovSource], device: str) -> list[Run]:
    """Train every (h, steps, seed) or (h, steps, seed, peak lr) in `specs` (peak: g.lr when
    absent; a tuned grid's values are extra members); -> one Run per spec, in order. Metrics on the
    training source ("train") and on every eval source, at each run's end; the training source's
    loss also every `eval_every` steps (0: only at the end)."""
    if g.k != src.order:
        raise ValueError(f"exact evaluation needs the model's window k ({g.k}) to equal the "
                         f"source's order ({src.order})")
    sources = {"train": src, **eval_sources}
    out: dict[tuple, Run] = {}
    for group in buckets([s[0] for s in specs]):
        todo = list(dict.fromkeys(s for s in specs if s[0] in group))
        runs = [Run(h, sd, st, mlp_params(src.V, g.k, g.d_emb, h, 1), st * g.tokens_per_step)
                for h, st, sd, *_ in todo]
        _train_bucket(src, g, todo, eval_every, sources, runs, device)
        out.update(zip(todo, runs))
    return [out[s] for s in specs]
