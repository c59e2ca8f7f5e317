"""The two data sources of the GPT run claims, one data draw at a time.

The standard library's bytes (``text:cpython-source``, V = 256, held-out files apart) and a
Markov source whose entropy is known exactly. A claim's YAML gives both sources' settings as
``data: {text: {held_out_frac, train_bytes, val_bytes}, markov: {V, order, alpha, support}}``.
A data draw d is one independent replicate: on text a fresh sample of training windows (each
member's own stream) and of held-out windows; on the Markov source a fresh transition table
(seed d) with its own streams and windows. Init seeds nest inside a draw.

Model sizes come from the tier's FLOP budget (``budget.fit_ladder``), counted on the byte
vocabulary, the costlier of the two.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Sequence

import torch

from principia.evidence import Measure, interval_over_draws

from .budget import Rung, fit_ladder, gpt_family, scaled
from .data import MarkovSource
from .gpt import GPTConfig
from .lm import LMSetting, heldout
from .text import NAME as TEXT_NAME, TextSource

__all__ = ["Corpus", "corpus", "corpus_name", "gpt_ladder", "on_source", "lm_setting", "ladder_rows",
           "exp_over_draws", "DRAWS"]

DRAWS = ("a data draw is a fresh Markov source (its transition table redrawn) with fresh token "
         "streams, or, on the one text corpus, a fresh sample of training windows (the members' "
         "streams) and of held-out windows; init seeds nest inside a draw")


@dataclass(frozen=True)
class Corpus:
    """One data draw of one source: training windows, fixed held-out windows, entropy floor."""

    kind: str                 # "text" | "markov"
    name: str                 # its name in Evidence.scale
    src: object               # sample(n, T, rng) -> (n, T) int64
    windows: torch.Tensor     # held-out windows (lm.heldout), shared by every member of the draw
    V: int
    entropy: float            # nats per token; NaN on text (unknown)


def corpus(kind: str, draw: int, data: dict, T: int, eval_seqs: int,
           windows_seed: int | None = None) -> Corpus:
    """Draw `draw` of source `kind` ("text" or "markov"), settings from the claim's `data`. The
    held-out windows' seed is `windows_seed`, by default `draw` on text, 10,000 + `draw` on the
    Markov source (a claim's recorded windows depend on it: keep a claim's choice)."""
    if kind == "text":
        d = data["text"]
        val = TextSource("val", d["held_out_frac"], d["val_bytes"])
        return Corpus(kind, TEXT_NAME, TextSource("train", d["held_out_frac"], d["train_bytes"]),
                      heldout(val, eval_seqs, T, seed=draw if windows_seed is None else windows_seed),
                      TextSource.V, math.nan)
    if kind != "markov":
        raise ValueError(f"data source must be 'text' or 'markov' (got {kind!r})")
    m = data["markov"]
    src = MarkovSource(V=m["V"], order=m["order"], alpha=m["alpha"], seed=draw,
                       support=m["support"] or None)
    seed = 10_000 + draw if windows_seed is None else windows_seed
    return Corpus(kind, corpus_name(kind, data), src, heldout(src, eval_seqs, T, seed=seed), m["V"],
                  src.entropy)


def corpus_name(kind: str, data: dict) -> str:
    """The source's name in Evidence.scale (a real corpus's begins with ``text:``)."""
    m = data["markov"]
    return TEXT_NAME if kind == "text" else f"markov:V{m['V']}-order{m['order']}"


def gpt_ladder(gpt: dict, flops: float, budget_scale: float, n_sizes: int, span: float,
           tokens: int) -> list[Rung]:
    """The sizes the budget affords (``budget.fit_ladder`` with a fixed token plan per size),
    counted on the byte vocabulary (the costlier of the two sources)."""
    fam = gpt_family(TextSource.V, gpt["T"], gpt["n_layer"], gpt["n_head"], gpt["d_max"])
    return fit_ladder(scaled(flops, budget_scale), fam, n_sizes, span, tokens=int(tokens))


def on_source(cfg: GPTConfig, c: Corpus) -> GPTConfig:
    """The rung's shape with the source's vocabulary (N, the non-embedding count, is unchanged)."""
    return dataclasses.replace(cfg, vocab_size=c.V)


def lm_setting(gpt: dict, batch: int) -> LMSetting:
    """Adam at a constant rate (no warm-up, no decay, no weight decay), batch of `batch` windows."""
    return LMSetting(batch=int(batch), T=gpt["T"], betas=tuple(gpt["betas"]),
                     weight_decay=gpt["weight_decay"], schedule="constant",
                     eval_seqs=gpt["eval_seqs"])


def ladder_rows(rungs: Sequence[Rung]) -> list[dict]:
    """The chosen ladder for the evidence table."""
    return [{"d_model": r.shape.cfg.d_model, "n_layer": r.shape.cfg.n_layer, "N": r.shape.N,
             "tokens_planned": r.tokens, "flops": r.flops} for r in rungs]


def exp_over_draws(by_draw: dict, note: str) -> Measure:
    """A ratio through its log, the draw as the unit: geometric mean and interval mapped back."""
    m = interval_over_draws(by_draw)
    ex = lambda v: math.exp(v) if v is not None and math.isfinite(v) else None
    return Measure(ex(m.value) or math.nan, ex(m.lo), ex(m.hi), note=note, n=m.n)
