"""Published formulas shared by verifiers and by ``principia calc``.

Notation (one for all claims): N parameters, D training tokens, C training FLOPs, K workers,
B batch size in tokens. Each constant carries the place it comes from.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "PF_DAY", "training_flops", "pf_days", "ChinchillaFit", "FITS", "chinchilla_optimum",
    "chinchilla_loss", "zero_bytes_per_gpu", "ZERO_STAGES", "training_memory", "PRECISIONS",
    "OPTIMIZERS", "KAPLAN", "chinchilla_exponents", "chinchilla_compute_for_params",
    "HOFFMANN_TABLE3", "approach1_optimum", "kaplan_loss_N", "kaplan_loss_D", "kaplan_loss_C",
    "kaplan_loss_ND", "kaplan_critical_batch", "kaplan_alpha_C_min", "kaplan_allocation_exponents",
    "kaplan_params", "gpt_params",
]

PF_DAY = 1e15 * 24 * 3600  # 8.64e19 FLOPs; Kaplan et al. 2020 §1.3, Brown et al. 2020 App. D


def training_flops(N: float, D: float, flops_per_param_token: float = 6.0) -> float:
    """C ≈ 6·N·D (Kaplan et al. 2020 §2.1; Hoffmann et al. 2022 §3.3 uses the same)."""
    if N <= 0 or D <= 0 or flops_per_param_token <= 0:
        raise ValueError("N, D and FLOPs per parameter-token must be positive")
    return flops_per_param_token * N * D


def pf_days(flops: float) -> float:
    return flops / PF_DAY


def kaplan_params(n_layer: int, d_model: int) -> float:
    """N ≈ 2·d_model·n_layer·(2·d_attn + d_ff) = 12·n_layer·d_model² with d_attn = d_ff/4 = d_model
    (Kaplan et al. 2020, §2.1 and Table 1; biases and LayerNorms omitted)."""
    return 12.0 * n_layer * d_model ** 2


def gpt_params(n_layer: int, d_model: int, vocab: int = 0, n_ctx: int = 0) -> dict[str, int]:
    """Exact parameters of a GPT-2-style decoder (Radford et al. 2019; d_ff = 4·d_model, biases on
    every linear layer, LayerNorm gain and bias, output tied to the token embedding).

    Per layer: 12·d² matrix weights (Q, K, V, output 4·d²; MLP 8·d²) and 13·d biases and LayerNorm
    parameters; the final LayerNorm adds 2·d. Embeddings: (vocab + n_ctx)·d."""
    if min(n_layer, d_model) < 1 or min(vocab, n_ctx) < 0:
        raise ValueError(f"need n_layer, d_model >= 1 and vocab, n_ctx >= 0 "
                         f"(got {n_layer}, {d_model}, {vocab}, {n_ctx})")
    non_embedding = 12 * n_layer * d_model ** 2 + 13 * n_layer * d_model + 2 * d_model
    embedding = (vocab + n_ctx) * d_model
    return {"params": non_embedding + embedding, "non_embedding": non_embedding,
            "embedding": embedding, "kaplan_approx": int(kaplan_params(n_layer, d_model))}


@dataclass(frozen=True)
class ChinchillaFit:
    """L(N, D) = E + A/N^alpha + B/D^beta."""

    name: str
    E: float
    A: float
    B: float
    alpha: float
    beta: float
    source: str

    def loss(self, N: float, D: float) -> float:
        return self.E + self.A / N ** self.alpha + self.B / D ** self.beta


FITS: dict[str, ChinchillaFit] = {
    # Hoffmann et al. 2022, §3.3 / App. D.2 (Eq. 10), values as printed (rounded).
    "hoffmann": ChinchillaFit("hoffmann", 1.69, 406.4, 410.7, 0.34, 0.28,
                              "Hoffmann et al. 2022, Eq. 10 (rounded as printed)"),
    # The same fit unrounded, from the paper's TeX source as used by Besiroglu et al. 2024.
    "hoffmann-unrounded": ChinchillaFit(
        "hoffmann-unrounded", math.exp(0.5267228), math.exp(6.0073404), math.exp(6.0179186),
        0.33917084, 0.2849083, "Hoffmann et al. 2022 TeX source, via Besiroglu et al. 2024"),
    # Besiroglu, Erdil, Barnett, You 2024, Table 1 (refit on 240 points of Hoffmann's Fig. 4).
    "epoch": ChinchillaFit("epoch", 1.8172, 482.01, 2085.43, 0.3478, 0.3658,
                           "Besiroglu et al. 2024, Table 1"),
}


def chinchilla_optimum(C: float, fit: ChinchillaFit | str = "hoffmann") -> dict[str, float]:
    """Compute-optimal N and D for budget C (Hoffmann et al. 2022, Eq. 4, with C = 6·N·D)."""
    f = FITS[fit] if isinstance(fit, str) else fit
    if C <= 0:
        raise ValueError("compute C must be positive")
    G = (f.alpha * f.A / (f.beta * f.B)) ** (1.0 / (f.alpha + f.beta))
    a = f.beta / (f.alpha + f.beta)
    b = f.alpha / (f.alpha + f.beta)
    N = G * (C / 6.0) ** a
    D = (C / 6.0) ** b / G
    return {"params": N, "tokens": D, "tokens_per_param": D / N, "loss": f.loss(N, D)}


def chinchilla_loss(N: float, D: float, fit: str = "hoffmann") -> float:
    return FITS[fit].loss(N, D)


ZERO_STAGES = (0, 1, 2, 3)


def zero_bytes_per_gpu(N: float, K: int, stage: int, k: float = 12.0,
                       param_bytes: float = 2.0, grad_bytes: float = 2.0) -> float:
    """Model-state bytes per GPU under ZeRO (Rajbhandari et al. 2019, §5 and Fig. 1).

    Mixed-precision Adam: fp16 parameters (2N) and gradients (2N) plus k·N bytes of optimizer
    state (k = 12: fp32 master weights, momentum and variance). Stage 1 shards the optimizer
    state (P_os), stage 2 also the gradients (P_os+g), stage 3 also the parameters (P_os+g+p).
    """
    if stage not in ZERO_STAGES:
        raise ValueError(f"stage must be one of {ZERO_STAGES} (got {stage})")
    if N <= 0 or K < 1 or k < 0:
        raise ValueError("N must be positive, K at least 1 and k non-negative")
    p, g, o = param_bytes * N, grad_bytes * N, k * N
    if stage >= 1:
        o /= K
    if stage >= 2:
        g /= K
    if stage >= 3:
        p /= K
    return p + g + o


PRECISIONS = ("fp32", "bf16-mixed")
OPTIMIZERS = ("adam", "sgd", "adafactor")


def training_memory(N: float, precision: str = "fp32", optimizer: str = "adam") -> dict[str, float]:
    """Bytes of weights, gradients and optimizer state (activations excluded).

    fp32: 4-byte weights and gradients. bf16-mixed: 2-byte weights and gradients plus a 4-byte
    fp32 master copy counted with the optimizer state (Micikevicius et al. 2017 §3.1; ZeRO §3.1).
    Adam keeps two fp32 moments (8 bytes); SGD with momentum one (4); Adafactor's factored second
    moment is O(rows + cols) per matrix, counted here as ~0 bytes per parameter (Shazeer & Stern
    2018 §3) — its exact bytes depend on matrix shapes, which ``verifiers`` count on real tensors.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS} (got {precision!r})")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS} (got {optimizer!r})")
    if N <= 0:
        raise ValueError("N must be positive")
    w = 4.0 if precision == "fp32" else 2.0
    master = 0.0 if precision == "fp32" else 4.0
    states = {"adam": 8.0, "sgd": 4.0, "adafactor": 0.0}[optimizer]
    per = {"weights": w, "grads": w, "optimizer": states + master}
    per["total"] = sum(per.values())
    return {"bytes_per_param": per, **{k: v * N for k, v in per.items()}}


# Kaplan et al. 2020 constants. Note that the single-variable laws (Eqs. 1.1-1.2) and the joint
# L(N, D) fit (Table 2, Eq. 1.5) use different constants; alpha_C^min is printed as 0.050
# (Eq. 1.3), 0.052 (App. B) and 0.054 (§6.2). Claims name which they use.
KAPLAN = {
    "alpha_N": 0.076, "N_c": 8.8e13,          # Eq. 1.1, non-embedding parameters
    "alpha_D": 0.095, "D_c": 5.4e13,          # Eq. 1.2, tokens
    "alpha_C_min": 0.050, "C_c_min": 3.1e8,   # Eq. 1.3, PF-days
    "alpha_B": 0.21, "B_star": 2e8,           # Eq. 1.4, tokens
    "alpha_S": 0.76, "S_c": 2.1e3,            # Eq. 1.6
    "joint_alpha_N": 0.076, "joint_alpha_D": 0.103,  # Table 2, L(N, D) fit
    "joint_N_c": 6.4e13, "joint_D_c": 1.8e13,
}


# --- Chinchilla frontier helpers -------------------------------------------------------------

def _fit(fit: ChinchillaFit | str) -> ChinchillaFit:
    if isinstance(fit, ChinchillaFit):
        return fit
    if fit not in FITS:
        raise ValueError(f"fit must be one of {sorted(FITS)} (got {fit!r})")
    return FITS[fit]


def chinchilla_exponents(fit: ChinchillaFit | str = "hoffmann") -> tuple[float, float]:
    """(a, b) with N_opt ∝ C^a and D_opt ∝ C^b: a = β/(α+β), b = α/(α+β) (Hoffmann Eq. 4)."""
    f = _fit(fit)
    return f.beta / (f.alpha + f.beta), f.alpha / (f.alpha + f.beta)


def chinchilla_compute_for_params(N: float, fit: ChinchillaFit | str = "hoffmann") -> float:
    """The budget C whose compute-optimal size is N (Eq. 4 inverted; cf. Hoffmann Table A3)."""
    if N <= 0:
        raise ValueError("N must be positive")
    f = _fit(fit)
    G = (f.alpha * f.A / (f.beta * f.B)) ** (1.0 / (f.alpha + f.beta))
    a, _ = chinchilla_exponents(f)
    return 6.0 * (N / G) ** (1.0 / a)


# Hoffmann et al. 2022, Table 3 (Approach 1): (parameters, FLOPs, tokens) on the frontier.
HOFFMANN_TABLE3: tuple[tuple[float, float, float], ...] = (
    (400e6, 1.92e19, 8.0e9), (1e9, 1.21e20, 20.2e9), (10e9, 1.23e22, 205.1e9),
    (67e9, 5.76e23, 1.5e12), (175e9, 3.85e24, 3.7e12), (280e9, 9.9e24, 5.9e12),
    (520e9, 3.43e25, 11.0e12), (1e12, 1.27e26, 21.2e12), (10e12, 1.3e28, 216.2e12),
)


def approach1_optimum(C: float) -> dict[str, float]:
    """Compute-optimal N, D at budget C from a log-log line through Hoffmann Table 3."""
    if C <= 0:
        raise ValueError("compute C must be positive")
    xs = [math.log(c) for _, c, _ in HOFFMANN_TABLE3]
    ys = [math.log(n) for n, _, _ in HOFFMANN_TABLE3]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    a = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    N = math.exp(my + a * (math.log(C) - mx))
    D = C / (6.0 * N)
    return {"params": N, "tokens": D, "tokens_per_param": D / N, "exponent_a": a}


# --- Kaplan et al. 2020 laws (constants default to KAPLAN; claims name which they use) --------

def kaplan_loss_N(N: float, alpha_N: float = KAPLAN["alpha_N"], N_c: float = KAPLAN["N_c"]) -> float:
    """L(N) = (N_c/N)^α_N, converged in data (Kaplan Eq. 1.1)."""
    return (N_c / N) ** alpha_N


def kaplan_loss_D(D: float, alpha_D: float = KAPLAN["alpha_D"], D_c: float = KAPLAN["D_c"]) -> float:
    """L(D) = (D_c/D)^α_D, large model with early stopping (Kaplan Eq. 1.2)."""
    return (D_c / D) ** alpha_D


def kaplan_loss_C(C_pf_days: float, alpha_C: float = KAPLAN["alpha_C_min"],
                  C_c: float = KAPLAN["C_c_min"]) -> float:
    """L(C_min) = (C_c^min/C_min)^α_C^min, C in PF-days (Kaplan Eq. 1.3)."""
    return (C_c / C_pf_days) ** alpha_C


def kaplan_loss_ND(N: float, D: float, alpha_N: float = KAPLAN["joint_alpha_N"],
                   alpha_D: float = KAPLAN["joint_alpha_D"], N_c: float = KAPLAN["joint_N_c"],
                   D_c: float = KAPLAN["joint_D_c"]) -> float:
    """L(N, D) = [(N_c/N)^(α_N/α_D) + D_c/D]^α_D (Kaplan Eq. 1.5, Table 2 constants)."""
    return ((N_c / N) ** (alpha_N / alpha_D) + D_c / D) ** alpha_D


def kaplan_critical_batch(L: float, B_star: float = KAPLAN["B_star"],
                          alpha_B: float = KAPLAN["alpha_B"]) -> float:
    """B_crit(L) = B_*/L^(1/α_B) tokens (Kaplan Eq. 1.4)."""
    return B_star / L ** (1.0 / alpha_B)


def kaplan_alpha_C_min(alpha_S: float = KAPLAN["alpha_S"], alpha_B: float = KAPLAN["alpha_B"],
                       alpha_N: float = KAPLAN["alpha_N"]) -> float:
    """α_C^min = 1/(1/α_S + 1/α_B + 1/α_N) (Kaplan Eq. 1.8)."""
    return 1.0 / (1.0 / alpha_S + 1.0 / alpha_B + 1.0 / alpha_N)


def kaplan_allocation_exponents(alpha_C: float, alpha_N: float = KAPLAN["alpha_N"],
                                alpha_B: float = KAPLAN["alpha_B"],
                                alpha_S: float = KAPLAN["alpha_S"]) -> dict[str, float]:
    """Exponents of N, B, S and D = B·S in C_min (Kaplan Eq. 1.7)."""
    e = {"N": alpha_C / alpha_N, "B": alpha_C / alpha_B, "S": alpha_C / alpha_S}
    e["D"] = e["B"] + e["S"]
    return e
