"""GPT ladders for the scaling-law run claims, on real text and on a source of known entropy.

Sizes come from a FLOP budget (``verifiers.lab.budget.fit_ladder`` over one ``gpt_family``);
every rung trains with ``verifiers.lab.lm.train_lm`` on two sources, named in ``Evidence.scale``:

- real text: the standard library's source as bytes (``verifiers.lab.text.TextSource``, V = 256,
  train and held-out split by file). Its entropy is unknown.
- ``ZipfBlockSource``: a Zipfian Markov language whose entropy is exact. The loss it is judged
  against is the Bayes loss on the very held-out windows (``window_floor``), so L − E is the
  model's excess loss with the windows' sampling noise cancelled.

A data draw is one independent replicate: its own stream of training windows, its own held-out
windows and its own init seed (``tuning.nested_seed``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from .batched import BatchedAdamW, lr_table, train
from .budget import Rung, fit_ladder, gpt_family, scaled
from .lm import LMSetting, heldout, heldout_loss, member_feed as _feed
from .stacks import GPTStack
from .tuning import Layout, nested_seed
from .zipfsource import ZipfBlockSource

__all__ = ["HELD_OUT", "Ladder", "ladder", "run_ladder", "window_floor", "zipf_source",
           "markov_name", "train_scored"]

HELD_OUT = 0.1  # share of files held out (by path hash)


@dataclass(frozen=True)
class Ladder:
    """What a claim's tier declares about its GPT ladder and training (one YAML source)."""

    flops: float
    n_sizes: int
    span: float
    tokens: int
    n_layer: int
    n_head: int
    n_ctx: int
    d_max: int
    lr_grid: tuple[float, ...]
    batch: int
    eval_seqs: int
    draws: int

    def setting(self) -> LMSetting:
        # AdamW β = (0.9, 0.95), no weight decay, cosine to zero over each run.
        return LMSetting(batch=self.batch, T=self.n_ctx, betas=(0.9, 0.95), weight_decay=0.0,
                         eval_seqs=self.eval_seqs)

    def steps(self, rung: Rung) -> int:
        return max(1, rung.tokens // self.setting().tokens_per_step)

    def layout(self) -> Layout:
        """Members of one rung: draws × learning rates (one arm: the rung's shape)."""
        return Layout(1, self.draws, tuple(self.lr_grid))


def ladder(lad: Ladder, budget_scale: float, sources: int) -> list[Rung]:
    """The rungs (text family, V = 256: the dearer head) that fit every member on `sources`."""
    fam = gpt_family(256, lad.n_ctx, lad.n_layer, lad.n_head, lad.d_max)
    return fit_ladder(scaled(lad.flops, budget_scale), fam, lad.n_sizes, lad.span,
                      runs=sources * lad.layout().K, tokens=lad.tokens)


def zipf_source(zipf: float) -> ZipfBlockSource:
    """The known-entropy source of the run claims (V = 64, 16 topics, order 2, Dirichlet(0.5))."""
    return ZipfBlockSource(V=64, order=2, alpha=0.5, seed=0, blocks=16, zipf=zipf)


def markov_name(src: ZipfBlockSource) -> str:
    return f"markov:zipf{src.zipf:g}-V{src.V}-topics{src.blocks}"


def run_ladder(rungs: list[Rung], lad: Ladder, train_src, evals: dict, device: str,
               eval_at: tuple[int, ...] = ()) -> dict:
    """Train every rung at every rate of the grid once per draw on `train_src`; per (rung, draw)
    keep the rate with the lowest loss on separate selection windows (first source in `evals`).

    Draw d: init seed nested_seed(d, 0), its own training stream and its own held-out windows.
    -> {"loss": {name: (draws, sizes)}, "curve": (draws, sizes, len(eval_at)) on the first
    source, "windows": {name: [per draw]}, "lr": (draws, sizes) chosen rates}."""
    lay, D = lad.layout(), range(lad.draws)
    first = next(iter(evals))
    wins = {k: [heldout(s, lad.eval_seqs, lad.n_ctx, seed=nested_seed(d, 500)) for d in D]
            for k, s in {"select": evals[first], **evals}.items()}
    mem = lay.members()
    loss = {k: np.empty((lad.draws, len(rungs))) for k in evals}
    curve = np.full((lad.draws, len(rungs), len(eval_at)), np.nan)
    lr = np.empty((lad.draws, len(rungs)))
    for i, r in enumerate(rungs):
        end, cur = train_scored(replace(r.shape.cfg, vocab_size=train_src.V), train_src, lad.setting(),
                                lad.steps(r), [g for _, _, g in mem], [nested_seed(d, 0) for _, d, _ in mem],
                                [nested_seed(d, 700) for _, d, _ in mem], device, wins,
                                [d for _, d, _ in mem], first, eval_at)
        pick = lay.choose(end["select"])[0]
        for k in evals:
            loss[k][:, i] = end[k][pick]
        curve[:, i], lr[:, i] = cur[pick], np.array([g for _, _, g in mem])[pick]
    return {"loss": loss, "curve": curve, "windows": wins, "lr": lr}


def _own(stack: GPTStack, per_draw: list[torch.Tensor], draw: list[int]) -> np.ndarray:
    """Held-out loss of every member on its own draw's windows -> (K,)."""
    return heldout_loss(stack, torch.stack([per_draw[d] for d in draw])).numpy()


def train_scored(cfg, train_src, setting: LMSetting, steps: int, lrs: list[float], seeds: list[int],
                 streams: list[int], device: str, windows: dict, draw: list[int], curve_on: str,
                 eval_at: tuple[int, ...]):
    """``lm.train_lm`` for members that share a shape and a step count, member j scored on the
    held-out windows of its draw, windows[name][draw[j]], from several sources (train_lm scores
    one window set). -> ({name: (K,) loss at the end}, (K, len(eval_at)) on `curve_on`)."""
    K = len(seeds)
    stack, end = GPTStack(cfg, seeds, device), {}
    curve = np.full((K, len(eval_at)), np.nan)

    def on_step(step: int, _logits, _active) -> None:
        if step + 1 in eval_at:
            curve[:, eval_at.index(step + 1)] = _own(stack, windows[curve_on], draw)

    def on_done(_done, _active) -> None:
        end.update({k: _own(stack, w, draw) for k, w in windows.items()})

    train(stack, BatchedAdamW(stack, setting.betas), _feed(train_src, streams, setting.batch, setting.T, device),
          lr_table(lrs, [steps] * K, setting.schedule, setting.warmup, setting.min_ratio),
          [steps] * K, [setting.weight_decay] * K, on_step=on_step, on_done=on_done)
    return end, curve


def window_floor(src: ZipfBlockSource, windows: torch.Tensor) -> float:
    """Bayes loss on `windows`: mean −log p(x_t | x_<t) under the source, t = 1..T (the targets
    ``heldout_loss`` scores). Before a full context, p comes from the stationary law."""
    V, k, w = src.V, src.order, windows.numpy()
    pi = src.pi.reshape((V,) * k)
    nll = []
    for t in range(1, k):
        joint = pi.sum(axis=tuple(range(t + 1, k))) if t + 1 < k else pi
        cond = joint / joint.sum(-1, keepdims=True)
        nll.append(-np.log(cond[tuple(w[:, j] for j in range(t + 1))])[:, None])
    ctx = src.context_index(windows)[:, :-1].numpy()
    nll.append(-np.log(src.P[ctx, w[:, k:]]))
    return float(np.concatenate(nll, axis=1).mean())
