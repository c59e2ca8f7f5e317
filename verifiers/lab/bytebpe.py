"""Byte-level BPE in pure Python: the reference the library-trained tokenizers are checked against.

A BPE (Sennrich et al. 2016, Alg. 1) over bytes (Radford et al. 2019, §2.2): text is first cut
into chunks by a pre-tokenisation pattern, and merges never cross a chunk boundary. Training keeps
pair counts incrementally (a heap with lazy deletion). Because BPE merges are sequential, the
tokenizer with V entries is exactly the first V - 256 merges of a longer run. The claims train
with the `tokenizers` library (verifiers.lab.bpe); tests show the two agree.
"""
from __future__ import annotations

import heapq
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

__all__ = ["SPLITS", "BPE", "train_bpe", "chunks", "tokens_per_byte"]

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


def _pair_index(seqs: list[list[int]], freq: list[int]):
    """Weighted count of every adjacent pair, and the chunks each pair occurs in."""
    pairs: dict[tuple[int, int], int] = defaultdict(int)
    where: dict[tuple[int, int], set[int]] = defaultdict(set)
    for i, s in enumerate(seqs):
        for p in zip(s, s[1:]):
            pairs[p] += freq[i]
            where[p].add(i)
    return pairs, where


def _apply_merge(p: tuple[int, int], new: int, seqs: list[list[int]], freq: list[int],
                 pairs: dict, where: dict) -> set[tuple[int, int]]:
    """Merge `p` into token `new` in every chunk holding it, updating the pair counts in place;
    returns the pairs the merge created."""
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
    return gained


def train_bpe(text: bytes, n_merges: int, split: str = "category") -> BPE:
    """Learn up to `n_merges` merges, most frequent pair first (ties: smallest pair)."""
    counts = chunks(text, split)
    seqs = [list(c) for c in counts]
    freq = list(counts.values())
    pairs, where = _pair_index(seqs, freq)
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
        for q in _apply_merge(p, new, seqs, freq, pairs, where):
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
