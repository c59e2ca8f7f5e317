"""Tokenizer claims: byte-level BPE trained on the standard library's own sources.

Tokenizers are trained with the `tokenizers` library (verifiers.lab.bpe), under two
pre-tokenisations: GPT-2's, which splits letters, digits and punctuation into separate chunks, and
a whitespace-only one, under which greedy BPE is free to glue a word to the punctuation after it.
The pure-Python BPE in verifiers.lab.bytebpe is kept as a reference; tests show the two agree.
"""
from __future__ import annotations

import re

import numpy as np

from principia.evidence import Evidence, Figure, Measure, Series, interval_from_samples
from principia.types import PosInt, Seeds
from verifiers.lab import bpe as libbpe
from verifiers.lab import bytebpe
from verifiers.lab.stacks import mlp_params
from verifiers.lab.text import NAME as TEXT
from verifiers.lab.tuning import recorded, replication, scale

__all__ = ["is_mixed", "is_word_variant", "bpe_compression", "bpe_category_split", "vocab_undertraining"]

_ALPHA = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_SPACE = frozenset(b" \t\n\r\x0b\x0c")
_DIGIT = frozenset(b"0123456789")


def _body(tok: bytes) -> bytes:
    return tok[1:] if tok[:1] == b" " else tok


def is_mixed(tok: bytes) -> bool:
    """A token holding both letters and punctuation (a leading space aside), like ` cat?`."""
    body = _body(tok)
    has_alpha = any(b in _ALPHA for b in body)
    has_punct = any(b not in _ALPHA and b not in _SPACE and b not in _DIGIT and b < 128 for b in body)
    return has_alpha and has_punct


def is_word_variant(tok: bytes, vocab: set[bytes]) -> bool:
    """A mixed token whose letters alone also form a token: ` cat?` next to ` cat`."""
    if not is_mixed(tok):
        return False
    lead = b" " if tok[:1] == b" " else b""
    runs = re.findall(rb"[A-Za-z]{2,}", _body(tok))  # a single letter is a byte token anyway
    return any(lead + w in vocab or w in vocab for w in runs)


def _slices(n_first: int, n_next: int, first: str, then: str) -> str:
    """Where the two texts come from, with their byte counts (the corpus name carries none)."""
    return (f"Corpus {TEXT}: the {first} is the first {n_first:,} bytes of the standard library's "
            f"top-level *.py files (sorted), the {then} the next {n_next:,} bytes.")


def _fixed_text(n_train: int, n_test: int) -> tuple[dict, dict]:
    """Replication and scale of a deterministic tokenizer count on one fixed text (no model)."""
    return (replication(1, 0, "deterministic: BPE trained and counted on one fixed slice of the "
                              "Python stdlib sources; no randomness, so no seeds or data draws"),
            scale(0, n_train, [TEXT]))


def _corpus(n_train: int, n_test: int) -> tuple[bytes, bytes]:
    """Tokenizer-training text and held-out text: consecutive slices of the stdlib sources."""
    from verifiers.lab.data import stdlib_text  # the text that ships with Python itself

    text = stdlib_text(n_train + n_test)
    if len(text) < n_train + n_test:
        raise ValueError(f"the stdlib holds only {len(text)} bytes of *.py (asked {n_train + n_test})")
    return text[:n_train], text[n_train:]


def bpe_compression(n_train: PosInt, n_test: PosInt,
                    vocab_sizes: list[int]) -> Evidence:
    """Held-out tokens per byte against vocabulary size; the gain of each doubling of V."""
    Vs = sorted(vocab_sizes)
    if Vs[0] < 256 or any(b != 2 * a for a, b in zip(Vs, Vs[1:])):
        raise ValueError(f"vocab_sizes must start at >= 256 and double each step (got {Vs})")
    train, test = _corpus(n_train, n_test)
    tokenizers = {V: libbpe.train(train, V, "category") for V in Vs}
    tpb = [tokenizers[V].tokens_per_byte(test) for V in Vs]
    ref = bytebpe.tokens_per_byte(bytebpe.train_bpe(train, Vs[-1] - 256, "category"), test, Vs)
    gains = [a - b for a, b in zip(tpb, tpb[1:])]  # tokens per byte saved by each doubling
    ratios = [b / a for a, b in zip(gains, gains[1:]) if a > 0]
    measured = {
        "min_gain_per_doubling": Measure(min(gains), unit="tokens/byte",
                                         note="smallest drop over one doubling; > 0 means monotone"),
        "max_gain_ratio": Measure(max(ratios) if ratios else float("nan"),
                                  note="largest gain(2V→4V)/gain(V→2V); < 1 means diminishing"),
        "tokens_per_byte_at_max_V": Measure(tpb[-1], unit="tokens/byte", note=f"V = {Vs[-1]}"),
        "bytes_per_token_at_max_V": Measure(1 / tpb[-1], unit="bytes/token"),
        "merges_learned": Measure(len(tokenizers[Vs[-1]].learnt())),
        "reference_tpb_rel_diff": Measure(max(abs(a / b - 1) for a, b in zip(tpb, ref)),
                                          note="largest |library / pure-Python reference − 1| over V"),
    }
    fig = Figure("Held-out compression against vocabulary size", "vocabulary size V",
                 "tokens per byte (lower is better)",
                 [Series("held-out stdlib text", Vs, tpb, style="line")], xscale="log",
                 caption=f"BPE trained on {n_train:,} bytes, measured on the next {n_test:,} bytes.")
    table = [{"V": V, "tokens_per_byte": t, "gain_from_previous": (g if i else None)}
             for i, (V, t, g) in enumerate(zip(Vs, tpb, [0.0] + gains))]
    return recorded(Evidence(measured, figures=[fig], table=table,
                    notes=[f"Gains per doubling: {', '.join(f'{g:.4f}' for g in gains)} tokens/byte.",
                           _slices(n_train, n_test, "tokenizer text", "held-out text")]),
                    *_fixed_text(n_train, n_test))


def _split_row(train: bytes, test: bytes, V: int, split: str) -> dict:
    """What BPE learns under one pre-tokenisation: mixed entries, word variants, compression."""
    tok = libbpe.train(train, V, split)
    learned, vocab = tok.learnt(), set(tok.vocab.values())
    return {"mixed": sum(is_mixed(t) for t in learned), "variants": sum(is_word_variant(t, vocab) for t in learned),
            "learned": len(learned), "tpb": tok.tokens_per_byte(test),
            "examples": [t.decode("latin-1") for t in learned if is_word_variant(t, vocab)][:12]}


def bpe_category_split(n_train: PosInt, n_test: PosInt,
                       V: PosInt) -> Evidence:
    """Vocab entries mixing letters and punctuation, and held-out compression, with/without the split."""
    train, test = _corpus(n_train, n_test)
    rows = {split: _split_row(train, test, V, split) for split in ("category", "whitespace")}
    cat, ws = rows["category"], rows["whitespace"]
    measured = {
        "mixed_share_split": Measure(cat["mixed"] / cat["learned"],
                                     note=f"{cat['mixed']} of {cat['learned']} learnt entries"),
        "mixed_share_nosplit": Measure(ws["mixed"] / ws["learned"],
                                       note=f"{ws['mixed']} of {ws['learned']} learnt entries"),
        "variant_share_nosplit": Measure(ws["variants"] / ws["learned"],
                                         note="mixed entries whose word is also an entry"),
        "tpb_cost_of_split": Measure(cat["tpb"] / ws["tpb"] - 1.0,
                                     note="relative increase of held-out tokens per byte"),
    }
    fig = Figure(f"What the category split changes (V = {V})", "pre-tokenisation",
                 "share of learnt vocabulary entries",
                 [Series("letters+punctuation entries", [0, 1],
                         [measured["mixed_share_split"].value, measured["mixed_share_nosplit"].value],
                         style="points"),
                  Series("word variants (`cat?` beside `cat`)", [0, 1],
                         [cat["variants"] / cat["learned"], measured["variant_share_nosplit"].value],
                         style="points")],
                 caption="x = 0: GPT-2 category split; x = 1: whitespace-only chunks.")
    table = [{"split": s, "mixed_entries": r["mixed"], "word_variants": r["variants"],
              "learned": r["learned"], "heldout_tokens_per_byte": r["tpb"]} for s, r in rows.items()]
    return recorded(Evidence(measured, figures=[fig], table=table,
                    notes=["Word variants learnt without the split: " + ", ".join(
                        repr(e) for e in ws["examples"]),
                        _slices(n_train, n_test, "tokenizer text", "held-out text")]),
                    *_fixed_text(n_train, n_test))


def _lm_embedding_movement(ids: np.ndarray, V: int, seeds: list[int], steps: int, device: str,
                           B: int = 16, T: int = 16) -> np.ndarray:
    """Train tiny MLP LMs (one per seed, stacked) on a token stream; |Δ input embedding| per id.

    Input and output embeddings are untied, so an entry's input row moves only when the entry
    occurs in a batch (tied rows would also be pushed by every softmax denominator).
    Returns (seeds, V).
    """
    import torch

    from verifiers.lab.batched import BatchedAdamW, lr_table, train
    from verifiers.lab.measure import one_thread
    from verifiers.lab.stacks import MLPStack

    K = len(seeds)
    model = MLPStack(V, 2, 16, [32] * K, 1, seeds, device)
    e0 = model.p("emb").detach().clone()
    data = torch.as_tensor(ids, dtype=torch.int64, device=device)
    rngs = [np.random.default_rng([s, 3]) for s in seeds]
    offsets = torch.arange(T + 1, device=device)

    def batch(step: int, active: list[int]):  # random windows of the stream, its own per seed
        starts = torch.as_tensor(np.stack([r.integers(0, len(ids) - T - 1, size=B) for r in rngs]),
                                 device=device)
        x = data[starts[..., None] + offsets]  # (M, B, T+1)
        return x[..., :-1], x[..., 1:]

    # AdamW with torch's default betas, no decay, cosine from 3e-3 to zero. One thread: the CPU
    # embedding backward accumulates in a thread-dependent order (numbers then differ at ~1e-8).
    with one_thread(device):
        train(model, BatchedAdamW(model, (0.9, 0.999)), batch, lr_table([3e-3] * K, [steps] * K, "cosine"),
              [steps] * K, [0.0] * K)
    return (model.p("emb").detach() - e0).norm(dim=-1).cpu().numpy()


def _occurrences(tok: libbpe.LibraryBPE, text: bytes, seen: set[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(token ids of `text`, occurrences per id, ids that count as entries): byte entries whose
    byte never occurs in the tokenizer's own text are left out, being rare at every V."""
    ids = np.asarray(tok.encode(text))
    cnt = np.bincount(ids, minlength=len(tok.vocab))
    entries = np.array([i for i, b in tok.vocab.items() if len(b) > 1 or b[0] in seen])
    return ids, cnt, entries


def vocab_undertraining(n_tok: PosInt, n_lm: PosInt, vocab_sizes: list[int], k: PosInt,
                        seeds: Seeds, steps: PosInt, device: str = "cpu") -> Evidence:
    """How often each vocab entry occurs in a fixed LM training text, against V; and how far
    rare entries' embeddings move when a tiny LM trains on that text."""
    Vs = sorted(vocab_sizes)
    tok_text, lm_text = _corpus(n_tok, n_lm)
    seen = set(tok_text)
    rare_frac, median_occ = [], []
    for V in Vs:
        ids, cnt, entries = _occurrences(libbpe.train(tok_text, V, "category"), lm_text, seen)
        rare_frac.append(float(np.mean(cnt[entries] < k)))
        median_occ.append(float(np.median(cnt[entries])))
    V = Vs[-1]  # the loop's last tokenizer: ids, cnt and entries are for the largest V
    rare, frequent = entries[cnt[entries] < k], entries[cnt[entries] >= k]
    moves = _lm_embedding_movement(ids, len(cnt), list(seeds), steps, device)
    ratios = [float(m[rare].mean() / m[frequent].mean()) for m in moves]
    measured = {
        "rare_frac_increase": Measure(rare_frac[-1] - rare_frac[0],
                                      note=f"share of entries seen < {k} times: V={Vs[-1]} minus V={Vs[0]}"),
        "min_rare_frac_step": Measure(min(b - a for a, b in zip(rare_frac, rare_frac[1:])),
                                      note="smallest change over one step of V; > 0 means monotone"),
        "rare_frac_at_max_V": Measure(rare_frac[-1], note=f"V = {Vs[-1]}"),
        "rare_move_ratio": interval_from_samples(
            ratios, note=f"mean |Δ embedding| of entries seen < {k} times / of the others, V = {V}"),
    }
    table = [{"V": v, "rare_share": r, "median_occurrences": m} for v, r, m in zip(Vs, rare_frac, median_occ)]
    return recorded(Evidence(measured, figures=_rare_figures(Vs, rare_frac, median_occ, k, n_tok, n_lm), table=table,
                    seeds=list(seeds), notes=[f"V={V}: {len(rare)} rare and {len(frequent)} frequent entries; "
                                              f"LM text = {len(ids):,} tokens.",
                                              _slices(n_tok, n_lm, "tokenizer text", "LM training text")]),
                    replication(1, len(seeds), "one fixed slice of the Python stdlib sources (the counts are "
                                "deterministic); seeds vary the LM's initialisation and its sampled windows"),
                    scale(mlp_params(len(cnt), 2, 16, 32, 1), steps * 16 * 16, [TEXT]))


def _rare_figures(Vs, rare_frac, median_occ, k: int, n_tok: int, n_lm: int) -> list[Figure]:
    return [Figure("Rare vocabulary entries in a fixed training text", "vocabulary size V",
                   f"share of entries seen fewer than {k} times",
                   [Series("stdlib text", Vs, rare_frac)], xscale="log",
                   caption=f"Tokenizer trained on {n_tok:,} bytes; counts over the next {n_lm:,} bytes."),
            Figure("Median occurrences per entry", "vocabulary size V", "median occurrences",
                   [Series("stdlib text", Vs, median_occ)], xscale="log", yscale="log")]
