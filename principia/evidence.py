"""What a verifier returns: measured quantities, figures and notes — never a verdict.

The engine applies the claim's declared decision rule to ``Evidence.measured``; a verifier
only measures. Everything here is plain data so results serialise to JSON unchanged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, asdict
from typing import Any, Mapping, Sequence

__all__ = ["Measure", "Series", "Figure", "Evidence", "interval_from_samples", "interval_over_draws"]


def _num(x: Any) -> float | None:
    """Cast numpy/torch scalars to float; keep None."""
    if x is None:
        return None
    return float(x)


@dataclass
class Measure:
    """One measured quantity, optionally with an interval (e.g. a 95% CI over seeds)."""

    value: float
    lo: float | None = None
    hi: float | None = None
    unit: str = ""
    note: str = ""
    n: int | None = None  # samples behind the interval (seeds, bootstrap draws, ...)
    samples: list[float] | None = None  # per-seed values, when there are few
    # Why this device cannot test the quantity (say, a timing of bf16 units on a CPU without
    # them); non-empty makes its check inconclusive whatever the value, and the reason says why.
    untestable: str = ""

    def __post_init__(self) -> None:
        self.value = _num(self.value)
        self.lo, self.hi = _num(self.lo), _num(self.hi)
        if self.samples is not None:
            self.samples = [float(s) for s in self.samples]

    def finite(self) -> bool:
        vals = [self.value] + [v for v in (self.lo, self.hi) if v is not None]
        return all(isinstance(v, float) and math.isfinite(v) for v in vals)


@dataclass
class Series:
    """One line or scatter on a figure."""

    label: str
    x: Sequence[float]
    y: Sequence[float]
    style: str = "line"  # line | points | dashed
    y_lo: Sequence[float] | None = None  # optional band
    y_hi: Sequence[float] | None = None

    def __post_init__(self) -> None:
        self.x = [float(v) for v in self.x]
        self.y = [float(v) for v in self.y]
        if self.y_lo is not None:
            self.y_lo = [float(v) for v in self.y_lo]
        if self.y_hi is not None:
            self.y_hi = [float(v) for v in self.y_hi]


@dataclass
class Figure:
    """A plot as data; the site renders it to SVG (verifiers never draw)."""

    title: str
    xlabel: str
    ylabel: str
    series: list[Series]
    xscale: str = "linear"  # linear | log
    yscale: str = "linear"
    caption: str = ""


@dataclass
class Evidence:
    """Everything a verifier found."""

    measured: dict[str, Measure]
    figures: list[Figure] = field(default_factory=list)
    table: list[dict[str, Any]] = field(default_factory=list)  # extra rows worth showing
    notes: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    # The unit of replication: {"data_draws": int, "seeds": int, "reason": str}. Data draws (the
    # synthetic source's seed, a corpus sample or split) are the independent unit; init seeds nest
    # inside them. "reason" says why data draws cannot apply (closed forms, one fixed table).
    replication: dict[str, Any] | None = None
    # The largest setting the run reached: {"max_params": int, "max_tokens": int, "data": [str]}.
    scale: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        # Accept bare numbers for convenience: {"ratio": 20.1}.
        self.measured = {
            k: v if isinstance(v, Measure) else Measure(v) for k, v in self.measured.items()
        }

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def interval_from_samples(samples: Sequence[float], level: float = 0.95, unit: str = "",
                          note: str = "") -> Measure:
    """Mean with a Student-t interval over independent samples (e.g. paired seed differences)."""
    xs = [float(s) for s in samples]
    n = len(xs)
    mean = sum(xs) / n
    if n < 2:
        return Measure(mean, unit=unit, note=note, n=n, samples=xs)
    var = sum((x - mean) ** 2 for x in xs) / (n - 1)
    from scipy.stats import t  # local: scipy is only needed by run claims

    half = float(t.ppf(0.5 + level / 2, n - 1)) * math.sqrt(var / n)
    return Measure(mean, mean - half, mean + half, unit=unit, note=note, n=n,
                   samples=xs if n <= 32 else None)


def interval_over_draws(by_draw: Mapping[Any, Sequence[float]], level: float = 0.95, unit: str = "",
                        note: str = "") -> Measure:
    """Mean with a Student-t interval whose unit is the data draw: the init seeds nested in a
    draw are averaged first, so n is the number of draws (seeds on one draw are not independent
    evidence about the data)."""
    means = [sum(map(float, v)) / len(v) for v in by_draw.values() if len(v)]
    if not means:
        raise ValueError("interval_over_draws needs at least one draw with a value")
    return interval_from_samples(means, level, unit, note)
