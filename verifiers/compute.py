"""Training compute of published models: PF-days, 6·N·D and the 20-tokens-per-parameter rule.

Published figures are kept here as data with their exact place; the verifiers recompute what
the sources state and measure the gaps. Closed form; milliseconds.
"""
from __future__ import annotations

import numpy as np

from principia.evidence import Evidence, Figure, Measure, Series
from principia.formulas import (
    PF_DAY, approach1_optimum, chinchilla_optimum, pf_days, training_flops,
)
from principia.types import Pos

__all__ = [
    "training_compute", "petaflop_day", "under_trained_models", "bloomberggpt_budget",
    "TABLE_D1", "MODELS", "SEED_TABLE",
]

# Brown et al. 2020, App. D, Table D.1: (model, params, tokens, PF-days, FLOPs). T5 rows count
# 3 FLOPs per parameter per token (half the encoder-decoder's parameters act per token).
TABLE_D1: tuple[tuple[str, float, float, float, float], ...] = (
    ("T5-Small", 60e6, 1000e9, 2.08, 1.80e20), ("T5-Base", 220e6, 1000e9, 7.64, 6.60e20),
    ("T5-Large", 770e6, 1000e9, 26.7, 2.31e21), ("T5-3B", 3000e6, 1000e9, 104, 9.00e21),
    ("T5-11B", 11000e6, 1000e9, 382, 3.30e22), ("BERT-Base", 109e6, 250e9, 1.89, 1.64e20),
    ("BERT-Large", 355e6, 250e9, 6.16, 5.33e20), ("RoBERTa-Base", 125e6, 2000e9, 17.4, 1.50e21),
    ("RoBERTa-Large", 355e6, 2000e9, 49.3, 4.26e21), ("GPT-3 Small", 125e6, 300e9, 2.60, 2.25e20),
    ("GPT-3 Medium", 356e6, 300e9, 7.42, 6.41e20), ("GPT-3 Large", 760e6, 300e9, 15.8, 1.37e21),
    ("GPT-3 XL", 1320e6, 300e9, 27.5, 2.38e21), ("GPT-3 2.7B", 2650e6, 300e9, 55.2, 4.77e21),
    ("GPT-3 6.7B", 6660e6, 300e9, 139, 1.20e22), ("GPT-3 13B", 12850e6, 300e9, 268, 2.31e22),
    ("GPT-3 175B", 174600e6, 300e9, 3640, 3.14e23),
)

# Parameters and training tokens as published: (params, tokens, where).
MODELS: dict[str, tuple[float, float, str]] = {
    "GPT-3": (175e9, 300e9, "Hoffmann et al. 2022 Table 1; Brown et al. 2020 Table D.1"),
    "Jurassic-1": (178e9, 300e9, "Hoffmann et al. 2022 Table 1"),
    "Gopher": (280e9, 300e9, "Hoffmann et al. 2022 Table 1"),
    "MT-NLG 530B": (530e9, 270e9, "Hoffmann et al. 2022 Table 1"),
    # LaMDA: 168B trained tokens per Hoffmann Table 1; its own §10 FLOPs (3.55e23) imply
    # 3.55e23 / (6 · 137e9) ≈ 432B. The larger figure is used (it favours the source).
    "LaMDA": (137e9, 3.55e23 / (6 * 137e9), "Thoppilan et al. 2022 §10 (FLOPs); Hoffmann Table 1: 168B"),
    # OPT-175B: a ~180B-token corpus (§2.3), LR decayed over 300B tokens (§2.2); larger used.
    "OPT-175B": (175e9, 300e9, "Zhang et al. 2022 §2.2-2.3"),
    "PaLM": (540e9, 780e9, "Chowdhery et al. 2022 §1, §3"),
    "Chinchilla": (70e9, 1.4e12, "Hoffmann et al. 2022 Table 1"),
    "LLaMA-65B": (65.2e9, 1.4e12, "Touvron et al. 2023 Table 2"),
}
LARGE_2020_22 = ("GPT-3", "Jurassic-1", "Gopher", "MT-NLG 530B", "LaMDA", "OPT-175B", "PaLM")
LAMDA_TOKENS_HOFFMANN = 168e9  # Hoffmann et al. 2022, Table 1

# The pretraining notes' model table (seed 'pretraining-notes', "Model Architecture"): tokens.
SEED_TABLE: dict[str, tuple[float, float | None]] = {
    "GPT-3": (175e9, 300e9), "OPT-175B": (175e9, 300e9), "PaLM": (540e9, 780e9),
    "Gopher": (280e9, 300e9), "Chinchilla": (70e9, 1400e9), "Jurassic-1": (178e9, None),
    "MT-NLG 530B": (530e9, 270e9), "LaMDA": (137e9, 2810e9),
}

# Peak dense throughput, TFLOP/s: NVIDIA V100 whitepaper (Tensor Cores 125, fp32 15.7) and
# A100 whitepaper (bf16/fp16 Tensor Core 312, 624 with 2:4 sparsity; TF32 156; fp32 19.5).
PEAK_TFLOPS = {"V100 tensor fp16": 125.0, "V100 fp32": 15.7, "A100 tensor bf16": 312.0,
               "A100 tensor bf16 sparse": 624.0, "A100 tf32": 156.0, "A100 fp32": 19.5}


def _k(name: str, k_decoder: float, k_t5: float) -> float:
    return k_t5 if name.startswith("T5") else k_decoder


def training_compute(k_decoder: Pos, k_t5: Pos, gpt3_N: Pos,
                     gpt3_D: Pos, t5_N: Pos, t5_D: Pos) -> Evidence:
    """C = k·N·D in PF-days against Brown et al. 2020 Table D.1 and the notes' round figures."""
    rows, errs = [], []
    for name, N, D, pfd, flops in TABLE_D1:
        ours = pf_days(training_flops(N, D, _k(name, k_decoder, k_t5)))
        errs.append(abs(ours / pfd - 1))
        rows.append({"model": name, "N": N, "D": D, "PF-days (Table D.1)": pfd,
                     "PF-days (k·N·D)": round(ours, 3), "rel. error": round(errs[-1], 4)})
    gpt3 = pf_days(training_flops(gpt3_N, gpt3_D, k_decoder))
    t5 = pf_days(training_flops(t5_N, t5_D, k_t5))
    measured = {
        "gpt3_175b_pf_days": Measure(gpt3, unit="PF-days", note=f"{k_decoder:g}·N·D / 8.64e19"),
        "t5_3b_pf_days": Measure(t5, unit="PF-days", note=f"{k_t5:g}·N·D / 8.64e19"),
        "table_d1_max_rel_err": Measure(max(errs), note="17 rows of Table D.1"),
        "gpt3_175b_flops": Measure(gpt3 * PF_DAY, unit="FLOPs"),
    }
    fig = Figure("Training compute: k·N·D against Brown et al. Table D.1", "model (row)",
                 "PF-days", [Series("Table D.1", range(len(rows)), [r["PF-days (Table D.1)"] for r in rows],
                                    style="points"),
                             Series("k·N·D", range(len(rows)), [r["PF-days (k·N·D)"] for r in rows],
                                    style="dashed")], yscale="log",
                 caption=", ".join(f"{i}: {r['model']}" for i, r in enumerate(rows)))
    return Evidence(measured=measured, figures=[fig], table=rows, notes=[
        f"GPT-3 175B: {gpt3:,.0f} PF-days; T5-3B: {t5:,.1f} PF-days."])


def petaflop_day(flops_per_s: Pos, seconds: Pos, v100_tflops: Pos,
                 a100_tflops: Pos, n_v100: Pos, n_a100: Pos) -> Evidence:
    """A PF-day in FLOPs, and the peak throughput of 8 V100s and of 2 A100s."""
    v = n_v100 * v100_tflops * 1e12
    a = n_a100 * a100_tflops * 1e12
    measured = {
        "pf_day_flops": Measure(flops_per_s * seconds, unit="FLOPs"),
        "v100_group_pflops": Measure(v / 1e15, unit="PFLOP/s", note=f"{n_v100:g} x {v100_tflops:g} TFLOP/s"),
        "a100_group_over_v100_group": Measure(a / v, note=f"{n_a100:g} A100 / {n_v100:g} V100, peak"),
    }
    table = [{"A100 mode": am, "V100 mode": vm,
              f"{n_a100:g} A100 / {n_v100:g} V100": round(n_a100 * PEAK_TFLOPS[am] / (n_v100 * PEAK_TFLOPS[vm]), 3)}
             for am, vm in (("A100 tensor bf16", "V100 tensor fp16"),
                            ("A100 tensor bf16 sparse", "V100 tensor fp16"),
                            ("A100 tf32", "V100 fp32"), ("A100 fp32", "V100 fp32"))]
    n = np.arange(1, 17)
    fig = Figure("Peak PFLOP/s by number of GPUs", "GPUs", "peak PFLOP/s",
                 [Series(f"V100 ({v100_tflops:g} TFLOP/s)", n, n * v100_tflops / 1e3),
                  Series(f"A100 ({a100_tflops:g} TFLOP/s)", n, n * a100_tflops / 1e3),
                  Series("1 PFLOP/s", [1, 16], [1, 1], style="dashed")])
    return Evidence(measured=measured, figures=[fig], table=table, notes=[
        f"{n_a100:g} A100s give {a / 1e15:.3f} PFLOP/s peak against {v / 1e15:.3f} for {n_v100:g} V100s."])


def under_trained_models(rule: Pos) -> Evidence:
    """Tokens per parameter of published models against the rule D ≈ rule·N."""
    ratio = {m: D / N / rule for m, (N, D, _) in MODELS.items()}
    large = [ratio[m] for m in LARGE_2020_22]
    lamda_pub = max(MODELS["LaMDA"][1], LAMDA_TOKENS_HOFFMANN)
    measured = {
        "max_ratio_large": Measure(max(large), note="max (D/N)/rule over " + ", ".join(LARGE_2020_22)),
        "n_under_large": Measure(sum(r < 1 for r in large), note=f"of {len(large)} models"),
        "chinchilla_ratio": Measure(ratio["Chinchilla"]),
        "llama65_ratio": Measure(ratio["LLaMA-65B"]),
        "seed_lamda_over_published": Measure(SEED_TABLE["LaMDA"][1] / lamda_pub,
                                             note="notes' 2810B vs the largest published estimate"),
    }
    table = [{"model": m, "N": N, "D": D, "D/N": round(D / N, 2),
              "D in the notes": SEED_TABLE.get(m, (None, None))[1], "source": where}
             for m, (N, D, where) in MODELS.items()]
    names = list(MODELS)
    fig = Figure("Tokens per parameter of published models", "model (index)", "D/N",
                 [Series("published", range(len(names)), [MODELS[m][1] / MODELS[m][0] for m in names],
                         style="points"),
                  Series(f"{rule:g} tokens/parameter", [0, len(names) - 1], [rule, rule], style="dashed")],
                 yscale="log", caption=", ".join(f"{i}: {m}" for i, m in enumerate(names)))
    return Evidence(measured=measured, figures=[fig], table=table, notes=[
        "The notes' LaMDA row (2810B) is the size of LaMDA's tokenised pre-training set "
        "(Thoppilan et al. §3: 2.81T SentencePiece tokens), not the tokens it was trained on."])


def _fit_optimum(C: float, fit: str) -> dict[str, float]:
    return approach1_optimum(C) if fit == "approach1" else chinchilla_optimum(C, fit)


def bloomberggpt_budget(N: Pos, D: Pos, C: Pos) -> Evidence:
    """BloombergGPT's size and tokens against the compute-optimal ones at its budget C.

    Wu et al. 2023: 50.6B parameters, 569B training tokens, ~2.36e23 FLOPs. The frontier is
    taken three ways: Approach 1 (a log-log line through Hoffmann Table 3), Hoffmann's
    parametric fit with unrounded constants, and Besiroglu et al.'s refit.
    """
    fits = ("approach1", "hoffmann-unrounded", "epoch")
    measured: dict[str, Measure] = {"C_over_6ND": Measure(C / (6 * N * D),
                                                          note="reported budget / 6·N·D")}
    table = []
    for f in fits:
        opt = _fit_optimum(C, f)
        key = f.replace("-", "_")
        measured[f"size_ratio_{key}"] = Measure(N / opt["params"], note="N / N_opt(C)")
        measured[f"data_ratio_{key}"] = Measure(D / opt["tokens"], note="D / D_opt(C)")
        table.append({"frontier": f, "N_opt (B)": round(opt["params"] / 1e9, 1),
                      "D_opt (B tokens)": round(opt["tokens"] / 1e9, 0),
                      "N/N_opt": round(N / opt["params"], 3), "D/D_opt": round(D / opt["tokens"], 3)})
    Cs = np.geomspace(1e21, 1e25, 21)
    fig = Figure("Compute-optimal size and BloombergGPT", "training FLOPs C", "parameters",
                 [Series(f, Cs, [_fit_optimum(c, f)["params"] for c in Cs]) for f in fits]
                 + [Series("BloombergGPT", [C], [N], style="points")], xscale="log", yscale="log")
    return Evidence(measured=measured, figures=[fig], table=table, notes=[
        f"6·N·D = {6 * N * D:.3g} FLOPs; the reported {C:.3g} is {C / (6 * N * D):.2f}x that. "
        f"8·N·D = {8 * N * D:.3g}, the count when activation checkpointing recomputes the "
        "forward pass, is close to the reported figure."])
