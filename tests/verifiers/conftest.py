"""Fixtures for every verifier test."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors run fastest on one thread (as the engine runs verifiers)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
