"""Real text with no download: the Python standard library's own source files, as bytes.

Every machine with Python has it (~13 MB of non-test ``.py`` here). Tokens are bytes (V = 256);
files are split into train and held-out by a hash of their path, so no file is in both and the
split does not depend on the file order or on which files a Python version ships. The corpus is
read once per process. Its name in ``Evidence.scale`` is ``text:cpython-source``.
"""
from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

__all__ = ["TextSource", "stdlib_files", "NAME"]

NAME = "text:cpython-source"


def stdlib_files() -> list[Path]:
    """Non-test ``.py`` files of the running interpreter's standard library, sorted."""
    root = Path(os.__file__).parent
    skip = ("site-packages", "test", "tests", "idlelib", "__pycache__")
    return sorted(p for p in root.rglob("*.py")
                  if not any(part in skip or part.startswith("test_") for part in p.relative_to(root).parts))


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
