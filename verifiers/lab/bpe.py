"""Byte-level BPE trained with the `tokenizers` library, the one GPT-2-style tokenizers are built with.

The pre-tokenisation is a regex split followed by the byte-to-unicode map of GPT-2 (Radford et
al. 2019 §2.2), so merges never cross a chunk boundary: "category" is GPT-2's own pattern (letters,
digits and other symbols in separate chunks), "whitespace" cuts only at spaces. Vocabulary entries
come back as raw bytes, so the claims can inspect what was learnt.
"""
from __future__ import annotations

from functools import lru_cache

from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

__all__ = ["PATTERNS", "LibraryBPE", "train"]

# GPT-2's pattern (openai/gpt-2, src/encoder.py), and the same whitespace rules with any run of
# non-space characters as one chunk, so `cat?` stays whole.
PATTERNS = {
    "category": r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
    "whitespace": r""" ?\S+|\s+(?!\S)|\s+""",
}


@lru_cache(maxsize=1)
def _unicode_to_byte() -> dict[str, int]:
    """Inverse of GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to 256+."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[chr(b)] = b
        else:
            chars[chr(256 + extra)] = b
            extra += 1
    return chars


def _text(raw: bytes) -> str:
    """The library takes str and byte-maps its UTF-8; a slice may cut a character at either end."""
    return raw.decode("utf-8", errors="replace")


class LibraryBPE:
    """A trained tokenizer: encode text to ids, and each id's vocabulary entry as bytes."""

    def __init__(self, tok: Tokenizer):
        self.tok = tok
        back = _unicode_to_byte()
        self.vocab = {i: bytes(back[c] for c in s) for s, i in tok.get_vocab().items()}

    def encode(self, text: bytes) -> list[int]:
        return self.tok.encode(_text(text)).ids

    def tokens_per_byte(self, text: bytes) -> float:
        return len(self.encode(text)) / len(text)

    def learnt(self) -> list[bytes]:
        """Entries longer than one byte: what the merges made."""
        return [b for b in self.vocab.values() if len(b) > 1]


def train(text: bytes, vocab_size: int, split: str) -> LibraryBPE:
    """BPE over bytes with `vocab_size` entries (256 bytes + merges), pairs seen at least twice."""
    if split not in PATTERNS:
        raise ValueError(f"split must be one of {sorted(PATTERNS)} (got {split!r})")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PATTERNS[split]), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([_text(text)], trainer)
    return LibraryBPE(tok)
