"""The standard-library text source (verifiers.lab.text): real bytes, split by file."""
from __future__ import annotations

import numpy as np
import pytest

from verifiers.lab.text import TextSource, _held_out, stdlib_files


def test_the_standard_library_is_megabytes_of_non_test_python():
    """There are hundreds of non-test source files, none under a test folder."""
    files = stdlib_files()
    assert len(files) > 300 and not any("test" in p.parts for p in files)


def test_no_file_is_in_both_splits():
    """The split is a function of the file, so train and held-out share no file."""
    files = stdlib_files()
    val = {p for p in files if _held_out(p, 0.1)}
    assert 0.03 * len(files) < len(val) < 0.2 * len(files)


def test_windows_are_consecutive_bytes_of_the_corpus():
    """A sampled window is a slice of the split's bytes, with tokens in 0..255."""
    src = TextSource("val", 0.1, 200_000)
    x = src.sample(4, 16, np.random.default_rng(0))
    assert x.shape == (4, 16) and int(x.max()) < 256
    row = bytes(x[0].numpy().astype(np.uint8))
    assert row in src.data.tobytes()


def test_an_unknown_split_is_a_clear_error():
    """Only 'train' and 'val' exist."""
    with pytest.raises(ValueError, match="split"):
        TextSource("test", 0.1, 1000)

