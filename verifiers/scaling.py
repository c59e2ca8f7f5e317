"""Scaling laws in closed form: Kaplan et al. 2020's power laws and Chinchilla's frontier.

Each verifier evaluates published formulas with published constants and measures how well the
source's own numbers agree with each other. Nothing here trains; every function runs in
milliseconds. Constants default to the values printed in the papers (see principia.formulas).
"""
from __future__ import annotations

import numpy as np

from principia.evidence import Evidence, Figure, Measure, Series
from principia.formulas import (
    FITS, HOFFMANN_TABLE3, chinchilla_exponents, chinchilla_optimum, kaplan_allocation_exponents,
    kaplan_alpha_C_min, kaplan_loss_C, kaplan_loss_D, kaplan_loss_N,
)
from principia.types import Pos, PosInt

__all__ = [
    "kaplan_loss_laws", "kaplan_data_vs_params", "kaplan_compute_allocation",
    "compute_optimal_tokens", "no_convergence_at_optimum", "PARAMETRIC_FITS",
]

# The three parametric fits compared throughout (keys of principia.formulas.FITS).
PARAMETRIC_FITS = ("hoffmann", "hoffmann-unrounded", "epoch")


def _geom(lo: float, hi: float, n: int) -> np.ndarray:
    return np.geomspace(lo, hi, max(n, 2))


# --- Kaplan et al. 2020 -----------------------------------------------------------------------

def _single_vs_joint(N: np.ndarray, D: np.ndarray, alpha_N: float, N_c: float, alpha_D: float,
                     D_c: float, joint: dict[str, float]) -> dict[str, np.ndarray]:
    """Eqs. 1.1-1.2 and the limits D → ∞, N → ∞ of Eq. 1.5 (Table 2), over the given ranges."""
    return {"L_N": kaplan_loss_N(N, alpha_N, N_c), "L_N_joint": (joint["N_c"] / N) ** joint["alpha_N"],
            "L_D": kaplan_loss_D(D, alpha_D, D_c), "L_D_joint": (joint["D_c"] / D) ** joint["alpha_D"]}


def _compute_frontier(C: np.ndarray, alpha_N: float, N_c: float, alpha_C_min: float, C_c_min: float,
                      N_e: float, p_N: float) -> np.ndarray:
    """L(C_min) over L(N_opt(C_min)): the frontier's loss against the converged loss of the size it
    prescribes (N_opt = N_e·C_min^p_N, Kaplan Table 6). Below 1 the two laws contradict each other."""
    return kaplan_loss_C(C, alpha_C_min, C_c_min) / kaplan_loss_N(N_e * C ** p_N, alpha_N, N_c)


def kaplan_loss_laws(alpha_N: Pos, N_c: Pos, alpha_D: Pos, D_c: Pos, alpha_C_min: Pos, C_c_min: Pos,
                     N_e: Pos, p_N: Pos, joint_alpha_N: Pos, joint_alpha_D: Pos, joint_N_c: Pos,
                     joint_D_c: Pos, N_min: Pos, N_max: Pos, D_min: Pos, D_max: Pos, C_min_lo: Pos,
                     C_min_hi: Pos, points: PosInt) -> Evidence:
    """The single-variable laws (Eqs. 1.1-1.3) against each other and the joint L(N, D) fit (Table 2)."""
    N, D, C = _geom(N_min, N_max, points), _geom(D_min, D_max, points), _geom(C_min_lo, C_min_hi, points)
    joint = {"alpha_N": joint_alpha_N, "alpha_D": joint_alpha_D, "N_c": joint_N_c, "D_c": joint_D_c}
    L = _single_vs_joint(N, D, alpha_N, N_c, alpha_D, D_c, joint)
    frontier = _compute_frontier(C, alpha_N, N_c, alpha_C_min, C_c_min, N_e, p_N)
    gap_N = float(np.max(np.abs(L["L_N"] / L["L_N_joint"] - 1)))
    gap_D = float(np.max(np.abs(L["L_D"] / L["L_D_joint"] - 1)))
    measured = {
        "loss_ratio_double_N": Measure(2.0 ** -alpha_N, note="L(2N)/L(N) = 2^-α_N"),
        "loss_ratio_double_C": Measure(2.0 ** -alpha_C_min, note="L(2C)/L(C) = 2^-α_C^min"),
        "frontier_over_converged_min": Measure(float(frontier.min()),
                                               note="min over C of L(C_min) / L(N_opt(C_min))"),
        "alpha_N_gap": Measure(abs(alpha_N - joint_alpha_N), note="Eq. 1.1 vs Table 2 (both print 0.076)"),
        "alpha_D_gap": Measure(abs(alpha_D - joint_alpha_D), note="Eq. 1.2 vs Table 2"),
        "L_N_gap_max": Measure(gap_N, note="max |L(N)/L(N,∞) - 1| over the N range"),
        "L_D_gap_max": Measure(gap_D, note="max |L(D)/L(∞,D) - 1| over the D range"),
        "loss_at_N_max": Measure(float(kaplan_loss_N(N_max, alpha_N, N_c)), unit="nats"),
    }
    return Evidence(measured=measured, figures=_loss_law_figures(N, D, C, L, frontier), notes=[
        f"Doubling N multiplies L(N) by 2^-{alpha_N:g} = {2 ** -alpha_N:.4f}; doubling C_min "
        f"multiplies L(C_min) by {2 ** -alpha_C_min:.4f}.",
        f"The two L(N) curves differ by a constant {gap_N:.1%}; the two L(D) curves by up to "
        f"{gap_D:.1%} (exponents {alpha_D:g} vs {joint_alpha_D:g}).",
        f"Along the compute frontier L(C_min) lies {frontier.min() - 1:.1%} to {frontier.max() - 1:.1%} "
        "above the converged loss of the model size Table 6 prescribes."])


def _loss_law_figures(N, D, C, L: dict[str, np.ndarray], frontier: np.ndarray) -> list[Figure]:
    return [
        Figure("L(N): single-variable law vs joint fit", "non-embedding parameters N", "loss (nats)",
               [Series("Eq. 1.1", N, L["L_N"]),
                Series("Eq. 1.5, D → ∞ (Table 2)", N, L["L_N_joint"], style="dashed")],
               xscale="log", yscale="log"),
        Figure("L(D): single-variable law vs joint fit", "tokens D", "loss (nats)",
               [Series("Eq. 1.2", D, L["L_D"]),
                Series("Eq. 1.5, N → ∞ (Table 2)", D, L["L_D_joint"], style="dashed")],
               xscale="log", yscale="log"),
        Figure("L(C_min) over the converged loss of N_opt(C_min)", "C_min (PF-days)", "ratio",
               [Series("Eq. 1.3 / Eq. 1.1 at N_opt", C, frontier),
                Series("equal", [C[0], C[-1]], [1, 1], style="dashed")], xscale="log"),
    ]


def kaplan_data_vs_params(alpha_N: Pos, alpha_D: Pos, joint_alpha_N: Pos, joint_alpha_D: Pos,
                          model_factor: Pos) -> Evidence:
    """D ∝ N^(α_N/α_D): the exponent from the joint fit and from the single-variable laws."""
    e_joint = joint_alpha_N / joint_alpha_D  # Kaplan §4.2, Eq. 4.4: N^0.74
    e_single = alpha_N / alpha_D             # the notes' derivation from Eqs. 1.1-1.2
    k = np.geomspace(1, 1000, 31)
    measured = {
        "exponent_joint": Measure(e_joint, note="Table 2: α_N/α_D = 0.076/0.103"),
        "exponent_single": Measure(e_single, note="Eqs. 1.1-1.2: α_N/α_D = 0.076/0.095"),
        "data_factor_joint": Measure(model_factor ** e_joint, unit="x",
                                     note=f"data growth for a {model_factor:g}x model (joint fit)"),
        "data_factor_single": Measure(model_factor ** e_single, unit="x",
                                      note=f"data growth for a {model_factor:g}x model (Eqs. 1.1-1.2)"),
    }
    fig = Figure("Data needed as the model grows", "model growth factor", "data growth factor",
                 [Series(f"N^{e_joint:.3f} (Table 2)", k, k ** e_joint),
                  Series(f"N^{e_single:.3f} (Eqs. 1.1-1.2)", k, k ** e_single, style="dashed"),
                  Series("8x model", [model_factor], [model_factor ** e_joint], style="points")],
                 xscale="log", yscale="log")
    return Evidence(measured=measured, figures=[fig], notes=[
        f"An {model_factor:g}x larger model needs {model_factor ** e_joint:.2f}x the data with the "
        f"joint-fit exponent and {model_factor ** e_single:.2f}x with the single-variable one."])


def kaplan_compute_allocation(alpha_N: Pos, alpha_B: Pos, alpha_S: Pos) -> Evidence:
    """Eq. 1.7-1.8: exponents of N, B, S in C_min implied by α_N, α_B, α_S."""
    alpha_C = kaplan_alpha_C_min(alpha_S, alpha_B, alpha_N)
    e = kaplan_allocation_exponents(alpha_C, alpha_N, alpha_B, alpha_S)
    measured = {
        "alpha_C_eq18": Measure(alpha_C, note="1/(1/α_S + 1/α_B + 1/α_N)"),
        "N_exponent": Measure(e["N"], note="α_C^min/α_N"),
        "B_exponent": Measure(e["B"], note="α_C^min/α_B"),
        "S_exponent": Measure(e["S"], note="α_C^min/α_S"),
        "D_exponent": Measure(e["D"], note="B·S"),
        "exponent_sum": Measure(e["N"] + e["D"], note="must be 1 since C = 6·N·B·S"),
    }
    # The paper prints α_C^min three ways (Eq. 1.3, App. B, §6.2); each gives other exponents.
    variants = (("Eq. 1.8 from α_S, α_B, α_N", alpha_C), ("Eq. 1.3 (fitted)", 0.050),
                ("App. B", 0.052), ("§6.2", 0.054))
    table = [{"alpha_C_min": f"{a:.4f}", "source": where,
              **{k: round(v, 3) for k, v in kaplan_allocation_exponents(a, alpha_N, alpha_B,
                                                                         alpha_S).items()}}
             for where, a in variants]
    table.append({"alpha_C_min": "-", "source": "empirical (§1.2; §6.1, Fig. 14)",
                  "N": 0.73, "B": 0.24, "S": 0.03, "D": 0.27})
    a = np.linspace(0.045, 0.060, 16)
    fig = Figure("Eq. 1.7 exponents as α_C^min varies, against the empirical fits",
                 "α_C^min", "exponent of C_min",
                 [Series("N: α_C/α_N", a, a / alpha_N), Series("S: α_C/α_S", a, a / alpha_S),
                  Series("N empirical 0.73", [a[0], a[-1]], [0.73, 0.73], style="dashed"),
                  Series("S empirical 0.03", [a[0], a[-1]], [0.03, 0.03], style="dashed"),
                  Series("printed α_C^min (0.050, 0.052, 0.054)", [0.050, 0.052, 0.054],
                         [0.050 / alpha_N, 0.052 / alpha_N, 0.054 / alpha_N], style="points")])
    return Evidence(measured=measured, figures=[fig], table=table, notes=[
        f"Eq. 1.8 gives α_C^min = {alpha_C:.4f}; Eq. 1.7 then gives N ∝ C^{e['N']:.3f}, "
        f"B ∝ C^{e['B']:.3f}, S ∝ C^{e['S']:.3f} against the empirical 0.73, 0.24, 0.03."])


# --- Chinchilla (Hoffmann et al. 2022) and its replication -----------------------------------

def _frontier_ratios(C: np.ndarray, rule: float) -> dict[str, np.ndarray]:
    return {f: np.array([chinchilla_optimum(c, f)["tokens_per_param"] for c in C]) / rule
            for f in PARAMETRIC_FITS}


def _fit_measures(C: np.ndarray, rule: float, C_gopher: float) -> dict[str, Measure]:
    """(D/N)/rule range over the budgets, and the optimum at Gopher's budget, for each fit."""
    measured: dict[str, Measure] = {}
    for f, r in _frontier_ratios(C, rule).items():
        key, opt = f.replace("-", "_"), chinchilla_optimum(C_gopher, f)
        measured[f"ratio_min_{key}"] = Measure(float(r.min()), note=FITS[f].source)
        measured[f"ratio_max_{key}"] = Measure(float(r.max()), note=FITS[f].source)
        measured[f"params_at_gopher_{key}"] = Measure(opt["params"], unit="parameters",
                                                      note=f"N_opt at C = {C_gopher:.3g} FLOPs")
        measured[f"tokens_per_param_at_gopher_{key}"] = Measure(opt["tokens_per_param"])
    return measured


def _table_a3_measures(table_a3: list[list[float]]) -> dict[str, Measure]:
    """Each printed row's FLOPs over 6·N·D: the table was made with C = 6ND, so every row is ~1."""
    r = np.array([c / (6 * n * d) for n, c, d in table_a3])
    worst = int(np.argmin(r))
    return {"table_a3_flops_over_6ND_min": Measure(float(r.min()), note=(
                f"row N = {table_a3[worst][0]:.3g}: printed {table_a3[worst][1]:.3g} FLOPs, "
                f"6·N·D = {6 * table_a3[worst][0] * table_a3[worst][2]:.3g}")),
            "table_a3_flops_over_6ND_max": Measure(float(r.max()), note="largest over the rows")}


def compute_optimal_tokens(rule: Pos, C_min: Pos, C_max: Pos, points: PosInt, C_gopher: Pos,
                           table_a3: list[list[Pos]]) -> Evidence:
    """Compute-optimal D/N over budgets C_min..C_max, relative to the stated rule (D ≈ 20 N).

    Approach 1 is read straight from Hoffmann Table 3; the parametric fits (Eq. 10 as printed,
    the unrounded TeX values, and Besiroglu et al.'s refit) are solved in closed form (Eq. 4).
    """
    C = _geom(C_min, C_max, points)
    ratios = _frontier_ratios(C, rule)
    t3 = np.array([d / n for n, _, d in HOFFMANN_TABLE3]) / rule
    measured = {"ratio_min_approach1": Measure(float(t3.min()), note="Table 3 rows, (D/N)/rule"),
                "ratio_max_approach1": Measure(float(t3.max()), note="Table 3 rows, (D/N)/rule"),
                **_fit_measures(C, rule, C_gopher), **_table_a3_measures(table_a3)}
    table = [{"fit": f, "a": round(chinchilla_exponents(f)[0], 4), "b": round(chinchilla_exponents(f)[1], 4),
              **{f"D/N at {c:.0e}": round(float(r * rule), 1) for c, r in zip(C, ratios[f])}}
             for f in PARAMETRIC_FITS]
    series = [Series(f, C, ratios[f] * rule) for f in PARAMETRIC_FITS]
    series.append(Series("Hoffmann Table 3 (Approach 1)", [c for _, c, _ in HOFFMANN_TABLE3],
                         t3 * rule, style="points"))
    series.append(Series(f"{rule:g} tokens/parameter", [C_min, C_max], [rule, rule], style="dashed"))
    fig = Figure("Compute-optimal tokens per parameter", "training FLOPs C", "D_opt / N_opt",
                 series, xscale="log", yscale="log",
                 caption="Only the unrounded fit reproduces Hoffmann's '40B at Gopher's budget'.")
    notes = [f"At {C_gopher:.3g} FLOPs: " + "; ".join(
        f"{f} N_opt = {chinchilla_optimum(C_gopher, f)['params'] / 1e9:.1f}B, "
        f"D/N = {chinchilla_optimum(C_gopher, f)['tokens_per_param']:.1f}" for f in PARAMETRIC_FITS)]
    return Evidence(measured=measured, figures=[fig], table=table, notes=notes)


def no_convergence_at_optimum(rule: Pos, N_7B: Pos, N_13B: Pos, D_llama: Pos, seed_7B: Pos,
                              seed_13B: Pos) -> Evidence:
    """The source's '140B and 260B' against rule·N for LLaMA-7B/13B, and LLaMA's actual tokens.

    N and D are LLaMA's published values (Touvron et al. 2023, Table 2: 6.7B and 13.0B
    parameters, both trained on 1.0T tokens).
    """
    C_7B = 6.0 * N_7B * D_llama
    measured = {
        "seed_7B_over_rule_N": Measure(seed_7B / (rule * N_7B), note="140B / (20 · 6.7B)"),
        "seed_13B_over_rule_N": Measure(seed_13B / (rule * N_13B), note="260B / (20 · 13.0B)"),
        "seed_7B_as_params_over_N": Measure(seed_7B / N_7B,
                                            note="if '140B' were parameters: ratio to LLaMA-7B's N"),
        "llama_7B_tokens_over_rule_N": Measure(D_llama / (rule * N_7B), unit="x"),
        "llama_13B_tokens_over_rule_N": Measure(D_llama / (rule * N_13B), unit="x"),
    }
    table = [{"fit": f, "N_opt at LLaMA-7B budget (B)": round(chinchilla_optimum(C_7B, f)["params"] / 1e9, 1),
              "D_opt (B tokens)": round(chinchilla_optimum(C_7B, f)["tokens"] / 1e9, 0)}
             for f in PARAMETRIC_FITS]
    tokens = np.linspace(0, D_llama, 11)
    fig = Figure("LLaMA-7B/13B: tokens trained vs 20 tokens per parameter", "tokens trained",
                 "tokens / (20 · N)",
                 [Series("LLaMA-7B", tokens, tokens / (rule * N_7B)),
                  Series("LLaMA-13B", tokens, tokens / (rule * N_13B)),
                  Series("compute-optimal point", [0, D_llama], [1, 1], style="dashed")])
    return Evidence(measured=measured, figures=[fig], table=table, notes=[
        f"{rule:g}·N is {rule * N_7B / 1e9:.0f}B tokens for LLaMA-7B and {rule * N_13B / 1e9:.0f}B "
        f"for LLaMA-13B: token counts. Both models saw {D_llama / 1e12:g}T tokens, "
        f"{D_llama / (rule * N_7B):.1f}x and {D_llama / (rule * N_13B):.1f}x past those points."])
