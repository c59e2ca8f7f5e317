"""Real text with no download: the Python standard library's own source files, as bytes.

Every machine with Python has it (~13 MB of non-test ``.py`` here). Tokens are bytes (V = 256);
files are split into train and held-out by a hash of their path, so no file is in both and the
split does not depend on the file order or on which files a Python version ships. The corpus is
read once per process. Its name in ``Evidence.scale`` is ``text:cpython-source``.

Two variants serve the text claims: ``UnigramText`` (the corpus's byte frequencies with no
context, a counterfactual) and ``code_and_prose`` (held-out code, and the prose help texts of
``pydoc_data/topics.py``, for a shift of domain).
"""
from __future__ import annotations

import ast
import hashlib
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

__all__ = ["TextSource", "UnigramText", "code_and_prose", "stdlib_files", "NAME"]

NAME = "text:cpython-source"


@lru_cache(maxsize=1)
def stdlib_files() -> list[Path]:
    """Non-test ``.py`` files of the running interpreter's standard library, sorted."""
    root = Path(os.__file__).parent
    skipped = lambda name: name in ("site-packages", "test", "tests", "idlelib", "__pycache__") \
        or name.startswith("test_")
    out = []
    for folder, dirs, files in os.walk(root):  # pruned as it goes: site-packages may be huge
        dirs[:] = [d for d in dirs if not skipped(d)]
        out += [Path(folder, f) for f in files if f.endswith(".py") and not skipped(f)]
    return sorted(out)


def _held_out(path: Path, frac: float) -> bool:
    """Deterministic split by the path's hash (relative to the library root)."""
    rel = str(path.relative_to(Path(os.__file__).parent)).encode()
    return int.from_bytes(hashlib.sha256(rel).digest()[:4], "big") / 2 ** 32 < frac


@lru_cache(maxsize=4)
def _corpus(split: str, held_out_frac: float, max_bytes: int) -> np.ndarray:
    """The split's files concatenated, as uint8 (capped at max_bytes, in sorted file order)."""
    out, n = [], 0
    for p in stdlib_files():
        if _held_out(p, held_out_frac) != (split == "val"):
            continue
        b = p.read_bytes()
        out.append(np.frombuffer(b, dtype=np.uint8))
        n += len(b)
        if n >= max_bytes:
            break
    return np.concatenate(out)[:max_bytes]


class TextSource:
    """Windows of T bytes from the train or held-out split of the standard library's source."""

    V = 256

    def __init__(self, split: str, held_out_frac: float, max_bytes: int):
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val' (got {split!r})")
        self.split, self.name = split, NAME
        self.data = _corpus(split, held_out_frac, max_bytes)
        if len(self.data) < 1024:
            raise ValueError(f"the standard library gave only {len(self.data)} bytes for '{split}'")

    def sample(self, n: int, T: int, rng: np.random.Generator) -> torch.Tensor:
        """n windows of T consecutive bytes at uniform random offsets -> (n, T) int64."""
        start = rng.integers(0, len(self.data) - T, size=n)
        return torch.from_numpy(self.data[start[:, None] + np.arange(T)].astype(np.int64))


class _Bytes(TextSource):
    """TextSource's window sampling over other bytes (a slice of the same corpus)."""

    def __init__(self, data: np.ndarray, name: str):
        self.split, self.name, self.data = "val", name, data


def code_and_prose(max_bytes: int, held_out_frac: float) -> tuple[TextSource, TextSource]:
    """Held-out code (held-out files other than pydoc_data) and prose (the help texts of
    ``pydoc_data/topics.py``, a held-out file, its string values only), as byte sources."""
    root = Path(os.__file__).parent
    topics = root / "pydoc_data" / "topics.py"
    tree = ast.parse(topics.read_text(encoding="utf-8"))
    prose = "\n\n".join(n.value for n in ast.walk(tree)
                        if isinstance(n, ast.Constant) and isinstance(n.value, str) and len(n.value) > 200)
    val = _corpus("val", held_out_frac, 10 ** 9)
    code = val[~_mask_of(val, topics.read_bytes())][:max_bytes]
    p = np.frombuffer(prose.encode("utf-8"), dtype=np.uint8)[:max_bytes]
    return _Bytes(code, NAME), _Bytes(p, NAME + "/pydoc-topics-prose")


def _mask_of(data: np.ndarray, part: bytes) -> np.ndarray:
    """True over the bytes of `part` inside `data` (a whole file of the concatenation)."""
    at = data.tobytes().find(part)
    mask = np.zeros(len(data), bool)
    if at >= 0:
        mask[at:at + len(part)] = True
    return mask


class UnigramText(TextSource):
    """Counterfactual text: bytes drawn independently with the corpus's byte frequencies, so no
    context helps and every model that learns the frequencies sits at the entropy."""

    def sample(self, n: int, T: int, rng: np.random.Generator) -> torch.Tensor:
        return torch.from_numpy(self.data[rng.integers(0, len(self.data), size=(n, T))].astype(np.int64))
