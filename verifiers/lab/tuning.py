"""Tuned arms and replication: the member layout of one batched stack, and what it records.

A claim that compares arms (sizes, depths, schedules) at their own best setting of a
hyperparameter declares a grid for it. Every (arm, replicate) is trained at every grid value as
extra members of the same stack; per (arm, replicate) the value with the lowest selection loss is
chosen, and the arms are compared at their chosen members. Grid and choices go into the evidence.

Replication: the independent unit is a data draw (a fresh source or token stream); init seeds are
nested inside a draw. ``replication(...)`` is the evidence field the engine copies to the result.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ["Layout", "replication", "scale", "recorded", "nested_seed"]


def nested_seed(draw: int, seed: int) -> int:
    """The init seed of replicate `seed` inside data draw `draw` (distinct across draws)."""
    return 1000 * int(draw) + int(seed)


@dataclass(frozen=True)
class Layout:
    """Members = arms × replicates × grid values, in that order (grid fastest)."""

    n_arms: int
    n_reps: int
    grid: tuple[float, ...]

    @property
    def K(self) -> int:
        return self.n_arms * self.n_reps * len(self.grid)

    def members(self) -> list[tuple[int, int, float]]:
        """(arm, replicate, grid value) of every member, member index order."""
        return [(a, r, g) for a, r, g in itertools.product(range(self.n_arms), range(self.n_reps),
                                                           self.grid)]

    def choose(self, loss: np.ndarray) -> np.ndarray:
        """Member index of the best grid value per (arm, replicate) -> (n_arms, n_reps).

        loss: (K,) selection loss; a non-finite loss (a diverged member) is never chosen unless
        every value diverged, and then the first value stands (its loss is reported as it is).
        """
        L = np.where(np.isfinite(loss), loss, np.inf).reshape(self.n_arms, self.n_reps, -1)
        base = np.arange(self.n_arms * self.n_reps).reshape(self.n_arms, self.n_reps) * len(self.grid)
        return base + L.argmin(-1)

    def evidence(self, name: str, chosen: np.ndarray, arm_names: Sequence[str]) -> dict:
        """The grid and the chosen value per arm and replicate, for the page."""
        g = np.asarray(self.grid)
        return {"hyperparameter": name, "grid": list(self.grid),
                "chosen": {str(a): g[chosen[i] % len(self.grid)].tolist()
                           for i, a in enumerate(arm_names)}}


def replication(data_draws: int, seeds: int, reason: str) -> dict:
    """Evidence.replication: independent data draws, init seeds nested in each, and why so many."""
    return {"data_draws": int(data_draws), "seeds": int(seeds), "reason": reason}


def scale(max_params: int, max_tokens: int, data: Sequence[str], min_params: int | None = None) -> dict:
    """Evidence.scale: the largest model and token count trained, the data sources' names, and
    (for a ladder) the smallest model, so the page can say 'tested at 1.2k–160k params'."""
    out = {"max_params": int(max_params), "max_tokens": int(max_tokens), "data": list(data)}
    return out if min_params is None else {**out, "min_params": int(min_params)}


def recorded(ev, replication: dict, scale: dict):
    """`ev` with its replication and scale set (the engine copies both to the result)."""
    ev.replication, ev.scale = replication, scale
    return ev
