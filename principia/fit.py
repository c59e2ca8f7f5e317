"""Fitting scaling laws: one-variable power laws and the Chinchilla parametric loss.

- ``fit_power_law``: y = E + A·x^-α by least squares in log space (Kaplan et al. 2020 Eq. 1.1
  form; with E free it is the Henighan et al. 2020 / GPT-4 §3.1 form L(C) = a·C^b + c).
- ``fit_chinchilla``: L(N, D) = E + A/N^α + B/D^β as in Hoffmann et al. 2022, App. D.2 (Eq. 11):
  a Huber loss (δ = 1e-3) between LSE(a − α·log N, b − β·log D, e) and log L, minimised with
  L-BFGS from a grid of initialisations, then A, B, E = exp(a), exp(b), exp(e). Besiroglu et al.
  2024 §2 refit the same way and added bootstrap intervals over the data rows; we do too.

Intervals are percentile bootstrap intervals over data points (rows), ``level`` wide.
"""
from __future__ import annotations

import ctypes
import itertools
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
from scipy.optimize import least_squares, minimize
from scipy.special import logsumexp

from .formulas import ChinchillaFit

__all__ = ["PowerLawFit", "fit_power_law", "ChinchillaFitResult", "fit_chinchilla",
           "huber", "HOFFMANN_GRID", "FitInputError"]


class FitInputError(ValueError):
    """The data cannot be fitted (too few points, non-positive or non-finite values)."""


def _positive(name: str, v: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(v)):
        raise FitInputError(f"'{name}' must be finite (got {v[~np.isfinite(v)][:3].tolist()})")
    if np.any(v <= 0):
        raise FitInputError(f"'{name}' must be positive (got {v[v <= 0][:3].tolist()})")
    return v


def _percentiles(samples: np.ndarray, level: float) -> tuple[float, float]:
    q = 100 * (1 - level) / 2
    lo, hi = np.percentile(samples, [q, 100 - q])
    return float(lo), float(hi)


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Run scipy's L-BFGS-B with one OpenBLAS thread.

    L-BFGS-B calls BLAS on 5-vectors; with OpenBLAS's default thread pool each call wakes the
    pool, which on a busy 2-core machine made one fit 50× slower (12 s instead of 0.25 s).
    Linux only (it finds the loaded OpenBLAS through /proc/self/maps); elsewhere a no-op.
    """
    undo = []
    try:
        with open("/proc/self/maps") as fh:
            paths = {ln.split()[-1] for ln in fh if "openblas" in ln.lower() and ".so" in ln}
    except OSError:
        paths = set()
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_openblas", ""), ("scipy_openblas", "64_"), ("openblas", "")):
            get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            put = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            if get and put:
                undo.append((put, get()))
                put(1)
                break
    try:
        yield
    finally:
        for put, n in undo:
            put(n)


# ---------------------------------------------------------------- one-variable power law

@dataclass
class PowerLawFit:
    """y = E + A·x^-α. ``r2``: R² of log(y − E) against log x (how straight the log-log line is)."""

    E: float
    A: float
    alpha: float
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    r2: float = float("nan")
    n: int = 0

    def predict(self, x) -> np.ndarray:
        return self.E + self.A * np.asarray(x, dtype=float) ** -self.alpha


def _loglinear(lx: np.ndarray, z: np.ndarray) -> tuple[float, float, float]:
    """Least squares z = c − α·lx; returns (log A, α, R²)."""
    slope, c = np.polyfit(lx, z, 1)
    res = z - (c + slope * lx)
    tot = np.sum((z - z.mean()) ** 2)
    r2 = 1 - np.sum(res ** 2) / tot if tot > 0 else 1.0
    return float(c), float(-slope), float(r2)


def _fit_known_E(lx: np.ndarray, y: np.ndarray, E: float) -> tuple[float, float, float, float]:
    if np.any(y <= E):
        raise FitInputError(f"every y must exceed the known E = {E:g} (min y = {y.min():g})")
    c, alpha, r2 = _loglinear(lx, np.log(y - E))
    return E, c, alpha, r2


def _fit_free_E(lx: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    """Minimise Σ (log y − log(E + A·x^-α))² over 0 ≤ E < min y, seeded by a profile over E."""
    ly, top = np.log(y), float(y.min())
    best = None
    for E0 in top * np.array([0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.99]):
        c, alpha, _ = _loglinear(lx, np.log(y - E0))
        sse = np.sum((ly - np.log(E0 + np.exp(c - alpha * lx))) ** 2)
        if best is None or sse < best[0]:
            best = (sse, E0, c, alpha)
    _, E0, c0, a0 = best

    def resid(p: np.ndarray) -> np.ndarray:
        E, c, alpha = p
        return np.logaddexp(np.log(max(E, 1e-300)), c - alpha * lx) - ly

    hi_E = top * (1 - 1e-9)
    sol = least_squares(resid, [min(E0, hi_E * 0.999), c0, a0],
                        bounds=([0.0, -np.inf, -10.0], [hi_E, np.inf, 10.0]))
    E, c, alpha = (float(v) for v in sol.x)
    _, _, r2 = _loglinear(lx, np.log(y - E)) if np.all(y > E) else (0, 0, float("nan"))
    return E, c, alpha, r2


def fit_power_law(x, y, E: float | None = None, n_boot: int = 200, seed: int = 0,
                  level: float = 0.95) -> PowerLawFit:
    """Fit y = E + A·x^-α (E given, or fitted when None) with bootstrap intervals over points."""
    x = _positive("x", np.asarray(x, dtype=float).ravel())
    y = _positive("y", np.asarray(y, dtype=float).ravel())
    if x.shape != y.shape:
        raise FitInputError(f"x and y must have the same length (got {x.size} and {y.size})")
    need = 2 if E is not None else 3
    if np.unique(x).size < need:
        raise FitInputError(f"need at least {need} distinct x values (got {np.unique(x).size})")
    lx = np.log(x)

    def one(idx: np.ndarray) -> tuple[float, float, float, float]:
        return _fit_known_E(lx[idx], y[idx], E) if E is not None else _fit_free_E(lx[idx], y[idx])

    rng = np.random.default_rng(seed)
    draws = []
    with _one_blas_thread():
        E_hat, c, alpha, r2 = one(np.arange(x.size))
        for _ in range(n_boot):
            idx = rng.integers(0, x.size, x.size)
            if np.unique(x[idx]).size >= need:
                e, cc, a, _ = one(idx)
                draws.append((e, math.exp(cc), a))
    intervals: dict[str, tuple[float, float]] = {}
    if draws:
            d = np.array(draws)
            intervals = {"A": _percentiles(d[:, 1], level), "alpha": _percentiles(d[:, 2], level)}
            if E is None:
                intervals["E"] = _percentiles(d[:, 0], level)
    return PowerLawFit(E_hat, math.exp(c), alpha, intervals, r2, int(x.size))


# ---------------------------------------------------------------- Chinchilla parametric fit

# Hoffmann et al. 2022, App. D.2: α, β ∈ {0, 0.5, …, 2}, e ∈ {−1, −0.5, …, 1}, a, b ∈ {0, 5, …, 25}.
HOFFMANN_GRID = {
    "a": np.arange(0, 26, 5.0), "b": np.arange(0, 26, 5.0), "e": np.arange(-1, 1.01, 0.5),
    "alpha": np.arange(0, 2.01, 0.5), "beta": np.arange(0, 2.01, 0.5),
}
DELTA = 1e-3  # Hoffmann et al. 2022, App. D.2 (and §3.3): Huber δ = 10^-3


def huber(r: np.ndarray, delta: float = DELTA) -> np.ndarray:
    """Quadratic within ±δ, linear outside (Huber 1964)."""
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r ** 2, delta * (a - 0.5 * delta))


def _terms(theta: np.ndarray, lN: np.ndarray, lD: np.ndarray) -> np.ndarray:
    """(…, n, 3) stack of a − α·log N, b − β·log D, e for parameter rows θ = (a, b, e, α, β)."""
    a, b, e, al, be = (theta[..., i, None] for i in range(5))
    return np.stack([a - al * lN, b - be * lD, np.broadcast_to(e, (a - al * lN).shape)], -1)


def _objective(theta: np.ndarray, lN, lD, lL, delta: float) -> tuple[float, np.ndarray]:
    """Σ Huber(LSE − log L) and its gradient (Hoffmann et al. 2022, Eq. 11)."""
    a, b, e, al, be = theta
    t1, t2 = a - al * lN, b - be * lD
    m = np.maximum(np.maximum(t1, t2), e)
    x1, x2, x3 = np.exp(t1 - m), np.exp(t2 - m), np.exp(e - m)
    s = x1 + x2 + x3
    r = m + np.log(s) - lL
    g = np.clip(r, -delta, delta) / s  # Huber'(r) times the softmax denominator
    h1, h2 = g * x1, g * x2
    grad = np.array([h1.sum(), h2.sum(), (g * x3).sum(), -(h1 * lN).sum(), -(h2 * lD).sum()])
    return float(huber(r, delta).sum()), grad


def _grid(grid: dict[str, np.ndarray]) -> np.ndarray:
    return np.array(list(itertools.product(grid["a"], grid["b"], grid["e"], grid["alpha"],
                                           grid["beta"])), dtype=float)


def _lbfgs(starts: np.ndarray, lN, lD, lL, delta: float) -> np.ndarray:
    """Best local minimum over the starts (L-BFGS-B with the analytic gradient)."""
    best_x, best_f = None, np.inf
    for x0 in starts:
        res = minimize(_objective, x0, args=(lN, lD, lL, delta), jac=True, method="L-BFGS-B",
                       options={"maxiter": 1000, "ftol": 1e-13, "gtol": 1e-10})
        if res.fun < best_f:
            best_x, best_f = res.x, res.fun
    return best_x


GRID_ROWS = 2000  # rows used to rank the initialisation grid (the fit itself uses every row)
CHUNK = 2**20  # grid points × rows scored at once: memory stays ~100 MB whatever the data size


def _grid_scores(G: np.ndarray, lN, lD, lL, delta: float) -> np.ndarray:
    """Σ Huber of every grid point, on at most GRID_ROWS evenly spaced rows, in chunks of the
    grid, so memory grows with neither grid × rows nor the number of runs."""
    if lN.size > GRID_ROWS:
        pick = np.linspace(0, lN.size - 1, GRID_ROWS).astype(int)
        lN, lD, lL = lN[pick], lD[pick], lL[pick]
    step = max(1, CHUNK // lN.size)
    out = np.empty(len(G))
    for i in range(0, len(G), step):
        T = _terms(G[i:i + step], lN, lD)  # (chunk, n, 3)
        out[i:i + step] = huber(logsumexp(T, axis=-1) - lL, delta).sum(axis=1)
    return out


@dataclass
class ChinchillaFitResult:
    """L(N, D) = E + A/N^α + B/D^β with bootstrap intervals over rows."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    objective: float = float("nan")  # Σ Huber at the optimum
    n: int = 0
    n_boot: int = 0

    def loss(self, N, D) -> np.ndarray:
        N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
        return self.E + self.A / N ** self.alpha + self.B / D ** self.beta

    def as_formula(self, name: str = "fitted") -> ChinchillaFit:
        """The fit as ``principia.formulas.ChinchillaFit`` (for ``chinchilla_optimum``)."""
        return ChinchillaFit(name, self.E, self.A, self.B, self.alpha, self.beta,
                             f"principia.fit.fit_chinchilla on {self.n} rows")


def fit_chinchilla(N, D, L, n_boot: int = 20, seed: int = 0, delta: float = DELTA,
                   grid: dict[str, np.ndarray] | None = None, n_starts: int | None = 8,
                   level: float = 0.95) -> ChinchillaFitResult:
    """Fit the Chinchilla loss (Hoffmann et al. 2022 App. D.2) with bootstrap intervals.

    The whole initialisation grid (4,500 points) is scored at once; L-BFGS then starts from
    the ``n_starts`` best of them (None: from all, as in the paper — slower, same optimum on
    well-behaved data). Bootstrap refits start from the full-data optimum and the best grid points.
    """
    N = _positive("N", np.asarray(N, dtype=float).ravel())
    D = _positive("D", np.asarray(D, dtype=float).ravel())
    L = _positive("L", np.asarray(L, dtype=float).ravel())
    if not N.size == D.size == L.size:
        raise FitInputError(f"N, D, L must have equal lengths (got {N.size}, {D.size}, {L.size})")
    if N.size < 5:
        raise FitInputError(f"need at least 5 rows to fit 5 parameters (got {N.size})")
    lN, lD, lL = np.log(N), np.log(D), np.log(L)
    G = _grid(grid or HOFFMANN_GRID)

    def starts(lN, lD, lL, k):
        return G if k is None else G[np.argsort(_grid_scores(G, lN, lD, lL, delta))[:k]]

    with _one_blas_thread():
        theta = _lbfgs(starts(lN, lD, lL, n_starts), lN, lD, lL, delta)
        draws = []
        rng = np.random.default_rng(seed)
        for _ in range(n_boot):
            i = rng.integers(0, N.size, N.size)
            # many rows: a resample's optimum sits next to the full-data one; few: look wider
            s = theta[None] if N.size > GRID_ROWS else np.vstack([theta, starts(lN[i], lD[i], lL[i], 2)])
            draws.append(_lbfgs(s, lN[i], lD[i], lL[i], delta))
    f_opt, _ = _objective(theta, lN, lD, lL, delta)
    intervals: dict[str, tuple[float, float]] = {}
    if draws:
        d = np.array(draws)
        intervals = {"A": _percentiles(np.exp(d[:, 0]), level),
                     "B": _percentiles(np.exp(d[:, 1]), level),
                     "E": _percentiles(np.exp(d[:, 2]), level),
                     "alpha": _percentiles(d[:, 3], level), "beta": _percentiles(d[:, 4], level)}
    a, b, e, alpha, beta = (float(v) for v in theta)
    return ChinchillaFitResult(math.exp(e), math.exp(a), math.exp(b), alpha, beta, intervals,
                               f_opt, int(N.size), n_boot)
