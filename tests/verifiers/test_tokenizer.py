"""Byte-level BPE: training, encoding, compression counts and the mixed-entry rules."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verifiers import tokenizer as tk
from verifiers.lab import bpe as libbpe
from verifiers.lab import bytebpe
from tests.verifiers.claims import params

fast = settings(max_examples=30, deadline=None)
TEXT = b"the cat sat. the cat? the cat! a cat ran; the dog sat, the dog ran.\n" * 20


def test_training_merges_the_most_frequent_pair_first():
    """The first merge joins the most frequent adjacent byte pair (Sennrich et al. Alg. 1)."""
    bpe = bytebpe.train_bpe(b"ab ab ab cd", 1, "category")
    assert bpe.merges == [(ord("a"), ord("b"))]
    assert bpe.vocab[256] == b"ab"


@fast
@given(st.binary(min_size=1, max_size=200), st.integers(0, 40))
def test_encoding_round_trips_any_bytes(text, n):
    """Decoding the token ids of any byte string gives the bytes back, at any vocabulary size."""
    bpe = bytebpe.train_bpe(TEXT, 60, "category")
    ids = bpe.encode(text, n)
    assert b"".join(bpe.vocab[i] for i in ids) == text


def test_tokens_per_byte_matches_a_direct_encoding():
    """The one-pass compression curve equals encoding with each prefix of the merges."""
    bpe = bytebpe.train_bpe(TEXT, 80, "whitespace")
    held = b"the cat sat on the dog. a dog ran!\n" * 3
    Vs = [256, 276, 296, 336]
    curve = bytebpe.tokens_per_byte(bpe, held, Vs)
    assert curve == [pytest.approx(len(bpe.encode(held, V - 256)) / len(held)) for V in Vs]


def test_category_split_never_mixes_letters_and_punctuation():
    """With GPT-2's split no learnt entry joins a word to punctuation; without it ` cat.` appears."""
    with_split = bytebpe.train_bpe(TEXT, 150, "category")
    without = bytebpe.train_bpe(TEXT, 150, "whitespace")
    assert not any(tk.is_mixed(t) for t in with_split.vocab[256:])
    assert any(tk.is_word_variant(t, set(without.vocab)) for t in without.vocab[256:])


def test_mixed_and_variant_rules():
    """` cat?` is mixed and a variant of ` cat`; ` cat` and `?!` are not mixed."""
    vocab = {b" cat", b" cat?"}
    assert tk.is_mixed(b" cat?") and tk.is_word_variant(b" cat?", vocab)
    assert not tk.is_mixed(b" cat") and not tk.is_mixed(b"?!")
    assert not tk.is_word_variant(b"s.", vocab | {b"s"})  # one letter is a byte token anyway


def test_compression_improves_with_diminishing_gains_on_stdlib_text():
    """On held-out stdlib text every doubling of V lowers tokens per byte, by less each time."""
    ev = tk.bpe_compression(**params("bpe-compression", n_train=30_000, n_test=10_000, vocab_sizes=[256, 512, 1024]))
    assert ev.measured["min_gain_per_doubling"].value > 0
    assert ev.measured["max_gain_ratio"].value < 1
    assert (ev.replication["data_draws"], ev.replication["seeds"]) == (1, 0)
    assert "deterministic" in ev.replication["reason"]
    assert ev.scale["max_params"] == 0 and ev.scale["max_tokens"] == 30_000 and ev.scale["data"]


def test_vocab_sizes_must_double():
    """A sweep that does not double at each step is rejected with a message."""
    with pytest.raises(ValueError, match="double"):
        tk.bpe_compression(**params("bpe-compression", n_train=5000, n_test=1000, vocab_sizes=[256, 300]))


# --- the library against the pure-Python reference ---------------------------------------------

@pytest.mark.parametrize("split", ["category", "whitespace"])
def test_library_and_reference_bpe_agree_on_stdlib_text(split):
    """The `tokenizers` BPE and the pure-Python one learn nearly the same entries and compress alike."""
    from verifiers.lab.data import stdlib_text
    text = stdlib_text(40_000)
    train, held = text[:30_000], text[30_000:]
    lib, ref = libbpe.train(train, 512, split), bytebpe.train_bpe(train, 512 - 256, split)
    shared = set(lib.learnt()) & set(ref.vocab[256:])
    assert len(shared) / len(ref.vocab[256:]) > 0.95
    assert lib.tokens_per_byte(held) == pytest.approx(bytebpe.tokens_per_byte(ref, held, [512])[0], rel=0.01)


def test_library_entries_decode_to_the_text():
    """Joining the byte entries of the library's ids gives back the text."""
    tok = libbpe.train(TEXT, 300, "category")
    held = b"the cat sat on the dog. a dog ran!\n"
    assert b"".join(tok.vocab[i] for i in tok.encode(held)) == held


def test_category_split_and_undertraining_report_replication_and_scale():
    """Both count one fixed text: one data draw; the undertraining LM adds its init seeds."""
    ev = tk.bpe_category_split(**params("bpe-category-split", n_train=5000, n_test=2000, V=300))
    assert (ev.replication["data_draws"], ev.replication["seeds"]) == (1, 0)
    assert ev.scale["max_tokens"] == 5000
    ev = tk.vocab_undertraining(**params("vocab-undertraining", n_tok=5000, n_lm=5000, vocab_sizes=[256, 300],
                                         steps=2, seeds=[0, 1]))
    assert (ev.replication["data_draws"], ev.replication["seeds"]) == (1, 2) and ev.replication["reason"]
    assert ev.scale["max_params"] > 300 * 32 and ev.scale["max_tokens"] == 2 * 16 * 16


def test_tokenizer_claims_name_the_real_corpus_and_give_its_byte_counts():
    """The data is recorded as the real corpus (`text:`), the slices' byte counts in the notes."""
    ev = tk.bpe_category_split(**params("bpe-category-split", n_train=5000, n_test=2000, V=300))
    assert ev.scale["data"] == ["text:cpython-source"]
    assert any("5,000 bytes" in n and "2,000 bytes" in n for n in ev.notes), ev.notes
