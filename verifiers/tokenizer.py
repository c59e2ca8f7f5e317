"""Byte-level BPE, trained in pure Python on the standard library's own sources.

A BPE (Sennrich et al. 2016, Alg. 1) over bytes (Radford et al. 2019, §2.2): text is first cut
into chunks by a pre-tokenisation pattern, and merges never cross a chunk boundary. Two
patterns: GPT-2's, which splits letters, digits and punctuation into separate chunks, and a
whitespace-only one, under which greedy BPE is free to glue a word to the punctuation after it.

Training keeps pair counts incrementally (a heap with lazy deletion), so a few thousand merges
on ~100 KB take about a second. Because BPE merges are sequential, the tokenizer with V entries is
exactly the first V - 256 merges of a longer run: one run gives every vocabulary size.
"""
from __future__ import annotations

import heapq
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from principia.evidence import Evidence, Figure, Measure, Series, interval_from_samples
from principia.types import Frac, PosInt, Seeds

__all__ = ["SPLITS", "BPE", "train_bpe", "chunks", "is_mixed", "is_word_variant",
           "tokens_per_byte", "bpe_compression", "bpe_category_split", "vocab_undertraining"]

# GPT-2's pre-tokenisation (Radford et al. 2019 §2.2; the pattern in openai/gpt-2 encoder.py):
# contractions, letters, digits, other symbols, whitespace. \p{L} is approximated by ASCII letters
# plus bytes >= 0x80 (UTF-8 pieces of non-ASCII letters); the stdlib sources are nearly all ASCII.
_LETTER = rb"A-Za-z\x80-\xff"
SPLITS: dict[str, re.Pattern[bytes]] = {
    "category": re.compile(
        rb"'(?:s|t|re|ve|m|ll|d)| ?[" + _LETTER + rb"]+| ?[0-9]+| ?[^\s0-9" + _LETTER + rb"]+"
        rb"|\s+(?!\S)|\s+"),
    # The same whitespace handling, but a chunk is any run of non-space bytes: `cat?` is one chunk.
    "whitespace": re.compile(rb" ?\S+|\s+(?!\S)|\s+"),
}
_ALPHA = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_SPACE = frozenset(b" \t\n\r\x0b\x0c")
_DIGIT = frozenset(b"0123456789")


def chunks(text: bytes, split: str = "category") -> Counter[bytes]:
    """Pre-tokenised chunks with their counts."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)} (got {split!r})")
    return Counter(SPLITS[split].findall(text))


@dataclass
class BPE:
    """Merges in rank order; token 256 + r is the r-th merge."""

    merges: list[tuple[int, int]]
    split: str
    vocab: list[bytes] = field(default_factory=lambda: [bytes([b]) for b in range(256)])

    def __post_init__(self) -> None:
        if len(self.vocab) == 256:
            for a, b in self.merges:
                self.vocab.append(self.vocab[a] + self.vocab[b])
        self.rank = {pair: r for r, pair in enumerate(self.merges)}

    def encode_chunk(self, chunk: bytes, n_merges: int | None = None) -> list[int]:
        """Token ids of one chunk using the first `n_merges` merges (all by default)."""
        return _apply(list(chunk), self, len(self.merges) if n_merges is None else n_merges)[0]

    def encode(self, text: bytes, n_merges: int | None = None) -> list[int]:
        memo: dict[bytes, list[int]] = {}  # chunks repeat a lot: encode each distinct one once
        out: list[int] = []
        for c in SPLITS[self.split].findall(text):
            if c not in memo:
                memo[c] = self.encode_chunk(c, n_merges)
            out += memo[c]
        return out


def _merge(seq: list[int], pair: tuple[int, int], new: int) -> tuple[list[int], int]:
    """Replace non-overlapping occurrences of `pair`, left to right; -> (sequence, count)."""
    out, i, n = [], 0, 0
    while i < len(seq):
        if i + 1 < len(seq) and seq[i] == pair[0] and seq[i + 1] == pair[1]:
            out.append(new)
            i += 2
            n += 1
        else:
            out.append(seq[i])
            i += 1
    return out, n


def _apply(seq: list[int], bpe: "BPE", limit: int):
    """Greedy encoding: merge the lowest-ranked pair present until none below `limit` is left.

    Returns the tokens and the (rank, occurrences) events in the order applied; ranks rise,
    because a token can only join merges learnt after it was created.
    """
    events = []
    while len(seq) > 1:
        r = min((bpe.rank.get(p, limit) for p in zip(seq, seq[1:])), default=limit)
        if r >= limit:
            break
        seq, n = _merge(seq, bpe.merges[r], 256 + r)
        events.append((r, n))
    return seq, events


def train_bpe(text: bytes, n_merges: int, split: str = "category") -> BPE:
    """Learn up to `n_merges` merges, most frequent pair first (ties: smallest pair)."""
    counts = chunks(text, split)
    seqs = [list(c) for c in counts]
    freq = list(counts.values())
    pairs: dict[tuple[int, int], int] = defaultdict(int)
    where: dict[tuple[int, int], set[int]] = defaultdict(set)
    for i, s in enumerate(seqs):
        for p in zip(s, s[1:]):
            pairs[p] += freq[i]
            where[p].add(i)
    heap = [(-c, p) for p, c in pairs.items()]
    heapq.heapify(heap)
    merges: list[tuple[int, int]] = []
    while heap and len(merges) < n_merges:
        negc, p = heapq.heappop(heap)
        c = pairs.get(p, 0)
        if c != -negc:  # stale entry: re-queue with the live count
            if c > 0:
                heapq.heappush(heap, (-c, p))
            continue
        if c < 2:  # a pair seen once compresses nothing beyond the chunk it came from
            break
        new = 256 + len(merges)
        merges.append(p)
        gained: set[tuple[int, int]] = set()
        for i in where.pop(p, ()):
            s, f = seqs[i], freq[i]
            merged, n = _merge(s, p, new)
            if n == 0:
                continue
            for q in zip(s, s[1:]):
                pairs[q] -= f
            for q in zip(merged, merged[1:]):
                pairs[q] += f
                where[q].add(i)
                gained.add(q)
            seqs[i] = merged
        pairs.pop(p, None)
        for q in gained:
            if pairs.get(q, 0) > 0:
                heapq.heappush(heap, (-pairs[q], q))
    return BPE(merges, split)


def tokens_per_byte(bpe: BPE, text: bytes, vocab_sizes: list[int]) -> list[float]:
    """Tokens per byte of `text` for each vocabulary size, from one greedy pass per chunk."""
    removed = np.zeros(len(bpe.merges) + 1)
    for c, f in chunks(text, bpe.split).items():
        for r, n in _apply(list(c), bpe, len(bpe.merges))[1]:
            removed[r] += f * n  # each merge event removes one token per occurrence
    cum = np.concatenate([[0.0], np.cumsum(removed)])
    return [float((len(text) - cum[min(V - 256, len(bpe.merges))]) / len(text)) for V in vocab_sizes]


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
    bpe = train_bpe(train, Vs[-1] - 256, "category")
    tpb = tokens_per_byte(bpe, test, Vs)
    gains = [a - b for a, b in zip(tpb, tpb[1:])]  # tokens per byte saved by each doubling
    ratios = [b / a for a, b in zip(gains, gains[1:]) if a > 0]
    measured = {
        "min_gain_per_doubling": Measure(min(gains), unit="tokens/byte",
                                         note="smallest drop over one doubling; > 0 means monotone"),
        "max_gain_ratio": Measure(max(ratios) if ratios else float("nan"),
                                  note="largest gain(2V→4V)/gain(V→2V); < 1 means diminishing"),
        "tokens_per_byte_at_max_V": Measure(tpb[-1], unit="tokens/byte", note=f"V = {Vs[-1]}"),
        "bytes_per_token_at_max_V": Measure(1 / tpb[-1], unit="bytes/token"),
        "merges_learned": Measure(len(bpe.merges)),
    }
    fig = Figure("Held-out compression against vocabulary size", "vocabulary size V",
                 "tokens per byte (lower is better)",
                 [Series("held-out stdlib text", Vs, tpb, style="line")], xscale="log",
                 caption=f"BPE trained on {n_train:,} bytes, measured on the next {n_test:,} bytes.")
    table = [{"V": V, "tokens_per_byte": t, "gain_from_previous": (g if i else None)}
             for i, (V, t, g) in enumerate(zip(Vs, tpb, [0.0] + gains))]
    return Evidence(measured, figures=[fig], table=table,
                    notes=[f"Gains per doubling: {', '.join(f'{g:.4f}' for g in gains)} tokens/byte."])


def bpe_category_split(n_train: PosInt, n_test: PosInt,
                       V: PosInt) -> Evidence:
    """Vocab entries mixing letters and punctuation, and held-out compression, with/without the split."""
    train, test = _corpus(n_train, n_test)
    rows = {}
    for split in ("category", "whitespace"):
        bpe = train_bpe(train, V - 256, split)
        learned = bpe.vocab[256:]
        vocab = set(bpe.vocab)
        rows[split] = {
            "mixed": sum(is_mixed(t) for t in learned),
            "variants": sum(is_word_variant(t, vocab) for t in learned),
            "learned": len(learned),
            "tpb": tokens_per_byte(bpe, test, [V])[0],
            "examples": [t.decode("latin-1") for t in learned if is_word_variant(t, vocab)][:12],
        }
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
    return Evidence(measured, figures=[fig], table=table,
                    notes=["Word variants learnt without the split: " + ", ".join(
                        repr(e) for e in ws["examples"])])


def _lm_embedding_movement(ids: np.ndarray, V: int, seeds: list[int], steps: int, device: str,
                           B: int = 16, T: int = 16) -> np.ndarray:
    """Train tiny MLP LMs (one per seed, stacked) on a token stream; |Δ input embedding| per id.

    Input and output embeddings are untied, so an entry's input row moves only when the entry
    occurs in a batch (tied rows would also be pushed by every softmax denominator).
    Returns (seeds, V).
    """
    import torch

    from verifiers.lab.stacked import StackedMLPLM, train_stacked

    model = StackedMLPLM(seeds, V, k=2, d_emb=16, d_hidden=32).to(device)
    e0 = model.emb.detach().clone()
    data = torch.as_tensor(ids, dtype=torch.int64, device=device)
    rngs = [np.random.default_rng([s, 3]) for s in seeds]
    offsets = torch.arange(T + 1, device=device)

    def batch(step: int) -> torch.Tensor:  # random windows of the stream, its own per seed
        starts = torch.as_tensor(np.stack([r.integers(0, len(ids) - T - 1, size=B) for r in rngs]),
                                 device=device)
        return data[starts[..., None] + offsets]  # (M, B, T+1)

    train_stacked(model, batch, steps, lr=3e-3)
    return (model.emb.detach() - e0).norm(dim=-1).cpu().numpy()


def vocab_undertraining(n_tok: PosInt, n_lm: PosInt,
                        vocab_sizes: list[int], k: PosInt,
                        seeds: Seeds, steps: PosInt,
                        device: str = "cpu") -> Evidence:
    """How often each vocab entry occurs in a fixed LM training text, against V; and how far
    rare entries' embeddings move when a tiny LM trains on that text."""
    Vs = sorted(vocab_sizes)
    tok_text, lm_text = _corpus(n_tok, n_lm)
    bpe = train_bpe(tok_text, Vs[-1] - 256, "category")
    seen_bytes = set(tok_text)  # byte tokens absent from the tokenizer's text are rare at every V
    rare_frac, median_occ = [], []
    counts_at: dict[int, np.ndarray] = {}
    for V in Vs:
        ids = bpe.encode(lm_text, V - 256)
        cnt = np.bincount(ids, minlength=Vs[-1])[:V]
        entries = [i for i in range(V) if i >= 256 or i in seen_bytes]
        c = cnt[entries]
        rare_frac.append(float(np.mean(c < k)))
        median_occ.append(float(np.median(c)))
        counts_at[V] = cnt
    V = Vs[-1]
    ids = np.asarray(bpe.encode(lm_text, V - 256))
    cnt = counts_at[V]
    learnt = np.array([i for i in range(V) if i >= 256 or i in seen_bytes])
    rare, frequent = learnt[cnt[learnt] < k], learnt[cnt[learnt] >= k]
    moves = _lm_embedding_movement(ids, V, list(seeds), steps, device)
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
    figs = [Figure("Rare vocabulary entries in a fixed training text", "vocabulary size V",
                   f"share of entries seen fewer than {k} times",
                   [Series("stdlib text", Vs, rare_frac)], xscale="log",
                   caption=f"Tokenizer trained on {n_tok:,} bytes; counts over the next {n_lm:,} bytes."),
            Figure("Median occurrences per entry", "vocabulary size V", "median occurrences",
                   [Series("stdlib text", Vs, median_occ)], xscale="log", yscale="log")]
    table = [{"V": v, "rare_share": r, "median_occurrences": m}
             for v, r, m in zip(Vs, rare_frac, median_occ)]
    return Evidence(measured, figures=figs, table=table, seeds=list(seeds),
                    notes=[f"V={V}: {len(rare)} rare and {len(frequent)} frequent entries; "
                           f"LM text = {len(ids):,} tokens."])
