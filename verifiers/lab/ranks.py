"""The model and data that data-parallel verifiers train on every rank, and a note on the backend."""
from __future__ import annotations

from verifiers.lab.dist import backend_for

__all__ = ["square_mlp", "rank_batch", "backend_note"]


def square_mlp(d: int, L: int, seed: int):
    """L blocks of Linear(d, d, bias=False) + tanh: equal-sized parameters shard evenly."""
    import torch
    import torch.nn as nn

    torch.manual_seed(seed)
    return nn.Sequential(*[nn.Sequential(nn.Linear(d, d, bias=False), nn.Tanh()) for _ in range(L)])


def rank_batch(d: int, B: int, seed: int, rank: int, device: str):
    """This rank's own slice of the data (data parallelism): a fixed random regression task."""
    import torch

    g = torch.Generator().manual_seed(1000 * seed + rank)
    x = torch.randn(B, d, generator=g)
    return x.to(device), torch.tanh(x.roll(1, dims=1)).to(device)


def backend_note(device: str, K: int) -> str:
    backend, kind = backend_for(device, K)
    return f"Ran {K} ranks with the {backend} backend on {kind} tensors (device asked: {device})."
