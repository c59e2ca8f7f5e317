"""The two sources of the GPT run claims: draws are independent, names say what was trained on."""
from __future__ import annotations

import math

import torch

from verifiers.lab.sources import corpus, corpus_name

DATA = {"text": {"held_out_frac": 0.1, "train_bytes": 200_000, "val_bytes": 50_000},
        "markov": {"V": 16, "order": 2, "alpha": 0.5, "support": 4}}


def test_each_draw_has_its_own_markov_source_and_windows():
    """Two Markov draws differ in transition table and held-out windows; the same draw repeats."""
    a, b, a2 = (corpus("markov", d, DATA, 16, 8) for d in (0, 1, 0))
    assert not torch.equal(a.windows, b.windows) and torch.equal(a.windows, a2.windows)
    assert a.entropy != b.entropy and math.isfinite(a.entropy)
    assert a.name == corpus_name("markov", DATA) == "markov:V16-order2"


def test_text_draws_share_the_corpus_and_redraw_the_windows():
    """On text a draw is a fresh sample of windows from the one corpus (whose entropy is unknown);
    a claim may choose the windows' seed."""
    a, b = corpus("text", 0, DATA, 16, 8), corpus("text", 1, DATA, 16, 8)
    assert a.name.startswith("text:") and math.isnan(a.entropy) and a.V == 256
    assert not torch.equal(a.windows, b.windows)
    assert torch.equal(corpus("text", 5, DATA, 16, 8, windows_seed=0).windows, a.windows)
