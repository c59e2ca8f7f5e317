"""Re-analyses of published tables (claims of kind 'published').

The engine hands each verifier the rows of the claim's transcribed tables
(``data/<reference-key>/<name>.csv``) as ``tables``; every row carries its locator and whether
the number was confirmed against the paper. Verifiers compute shares, medians, ratios and
intervals over the published points; a ``perturb`` parameter rewrites chosen published values so
that a falsifier can ask "had the paper printed this instead, would the claim still hold?".
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from principia.evidence import Evidence, Figure, Measure, Series
from principia.types import Frac, Pos, PosInt

__all__ = ["perturbed", "wilson", "bootstrap_median", "emergence_scales", "u_shaped_counts",
           "curation_yields", "ring_bytes_per_gpu", "fsdp_scaling"]

Rows = list[dict[str, Any]]
# Nothing is re-sampled here: the published points are the data, so intervals are over them.
FIXED = {"data_draws": 1, "seeds": 0, "reason": "one fixed published table; intervals, where any, are over its points"}


def perturbed(rows: Rows, perturb: list[dict[str, Any]]) -> Rows:
    """Rows with each ``{where: {col: value}, set: {col: value}}`` applied to the rows it matches;
    a rule that matches nothing is an error, so a falsifier cannot silently do nothing."""
    out = [dict(r) for r in rows]
    for i, rule in enumerate(perturb):
        where, new = rule.get("where") or {}, rule.get("set") or {}
        hits = [r for r in out if all(r.get(k) == v for k, v in where.items())]
        if not hits or not new:
            raise ValueError(f"perturb[{i}] matches no row or sets nothing: {rule!r}")
        for r in hits:
            r.update(new)
    return out


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion k/n (sound at small n and at 0 or n)."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_median(x: np.ndarray, draws: int, seed: int) -> tuple[float, float]:
    """Percentile bootstrap 95% interval of the median over the published points."""
    rng = np.random.default_rng(seed)
    meds = np.median(rng.choice(x, size=(draws, len(x)), replace=True), axis=1)
    return float(np.percentile(meds, 2.5)), float(np.percentile(meds, 97.5))


def _table(tables: dict[str, Rows], key: str) -> Rows:
    if key not in tables:
        raise ValueError(f"the claim lists no table '{key}' (it lists {sorted(tables)})")
    return tables[key]


def _provenance_note(rows: Rows) -> str:
    n_no = sum(not r["confirmed"] for r in rows)
    return f"{len(rows)} published points, {n_no} not confirmed against the paper's text"


# ---------------------------------------------------------------- emergence scales (Wei et al. 2022)

def emergence_scales(tables: dict[str, Rows], table: str, threshold: Pos, near: Pos,
                     draws: PosInt, seed: int, perturb: list[dict[str, Any]]) -> Evidence:
    """Where in model size the abilities of Wei et al.'s Table 1 emerge, against '~threshold or more'.

    `near` is the factor that '~' allows: an ability counts against the statement only when it
    emerges below threshold / near."""
    rows = perturbed(_table(tables, table), perturb)
    N = np.array([r["params"] for r in rows], dtype=float)
    below = int(np.sum(N < threshold / near))
    lo, hi = wilson(below, len(N))
    med_lo, med_hi = bootstrap_median(np.log10(N), draws, seed)
    measured = {
        "share_far_below": Measure(below / len(N), lo, hi, n=len(N),
                                   note=f"abilities emerging below {threshold / near:.3g} parameters "
                                        f"(Wilson 95% interval over the {len(N)} listed)"),
        "median_scale_ratio": Measure(10 ** np.median(np.log10(N)) / threshold,
                                      10 ** med_lo / threshold, 10 ** med_hi / threshold, n=draws,
                                      note="median emergence scale / the threshold (bootstrap 95%)"),
        "smallest_scale": Measure(float(N.min()), unit="parameters"),
    }
    order = np.argsort(N)
    fig = Figure("Where each listed ability emerged", "rank of the ability (by scale)", "parameters",
                 [Series("emergence scale (Table 1)", np.arange(1, len(N) + 1), N[order], style="points"),
                  Series(f"threshold {threshold:.3g}", [1, len(N)], [threshold] * 2, style="dashed")],
                 yscale="log", caption=_provenance_note(rows))
    table_rows = [{"ability": rows[i]["ability"], "params": rows[i]["params"], "model": rows[i]["model"],
                   "locator": rows[i]["locator"]} for i in order]
    return Evidence(measured, figures=[fig], table=table_rows, notes=[_provenance_note(rows)],
                    replication=FIXED)


# ---------------------------------------------------------------- U-shaped scaling (Wei et al. 2022b)

def u_shaped_counts(tables: dict[str, Rows], table: str, version: str,
                    perturb: list[dict[str, Any]]) -> Evidence:
    """How many of the inverse-scaling tasks turn U-shaped once larger models are evaluated."""
    rows = [r for r in perturbed(_table(tables, table), perturb) if r["version"] == version]
    if not rows:
        raise ValueError(f"no rows of version '{version}' in table '{table}'")
    by = {r["pattern"]: int(r["tasks"]) for r in rows}
    n = sum(by.values())
    u = by.get("u-shaped", 0)
    turned = u + by.get("positive", 0)
    lo, hi = wilson(turned, n)
    measured = {
        "u_shaped_tasks": Measure(u, n=n, note=f"of {n} tasks the Inverse Scaling Prize found inverse"),
        "turned_share": Measure(turned / n, lo, hi, n=n,
                                note="share no longer inverse at the largest size (Wilson 95%)"),
        "still_inverse_tasks": Measure(by.get("inverse", 0), n=n),
    }
    return Evidence(measured, table=[dict(r) for r in rows], notes=[_provenance_note(rows)],
                    replication=FIXED)


# ---------------------------------------------------------------- curation yield

def curation_yields(tables: dict[str, Rows], low: Frac, high: Frac,
                    perturb: list[dict[str, Any]]) -> Evidence:
    """Surviving share of raw web text for each published pipeline (one row per pipeline, over
    every table the claim lists), against the claimed band."""
    rows = perturbed([r for key in sorted(tables) for r in tables[key]], perturb)
    measured, out = {}, []
    for r in rows:
        y = r["kept"] / r["raw"]
        measured[f"yield_{r['pipeline']}"] = Measure(y, note=f"{r['kept']:.3g} / {r['raw']:.3g} "
                                                             f"{r['unit_counted']} ({r['locator']})")
        out.append({"pipeline": r["pipeline"], "yield": y, "in_band": low <= y <= high,
                    "counted_in": r["unit_counted"], "confirmed": r["confirmed"]})
    inside = sum(o["in_band"] for o in out)
    measured["share_of_pipelines_in_band"] = Measure(inside / len(out), *wilson(inside, len(out)), n=len(out))
    fig = Figure("Share of raw web text each pipeline keeps", "pipeline (index)", "kept / raw",
                 [Series("published yield", range(1, len(out) + 1), [o["yield"] for o in out], style="points"),
                  Series(f"claimed band {low:g}–{high:g}", [1, len(out)], [low, low], style="dashed"),
                  Series("", [1, len(out)], [high, high], style="dashed")], yscale="log",
                 caption=_provenance_note(rows))
    return Evidence(measured, figures=[fig], table=out, notes=[_provenance_note(rows)],
                    replication=FIXED)


# ---------------------------------------------------------------- FSDP scaling (Zhao et al. 2023)

def ring_bytes_per_gpu(P: int, S: float) -> float:
    """Bytes each of P ranks sends in one ring all-gather plus one reduce-scatter of S bytes:
    2·(P−1)/P·S (Patarasuk & Yuan 2009; FSDP issues both per step)."""
    return 2 * (P - 1) / P * S


def fsdp_scaling(tables: dict[str, Rows], table: str, P_small: PosInt, P_large: PosInt,
                 perturb: list[dict[str, Any]]) -> Evidence:
    """Per-GPU throughput at P_large relative to P_small as published, and the ring-collective
    volume per GPU over the same range (the bandwidth term; latency and topology are not in it)."""
    rows = perturbed(_table(tables, table), perturb)
    tf = {int(r["gpus"]): r["tflops_per_gpu"] for r in rows}
    for P in (P_small, P_large):
        if P not in tf:
            raise ValueError(f"table '{table}' has no row for {P} GPUs (has {sorted(tf)})")
    drop = 1 - tf[P_large] / tf[P_small]
    Ps = sorted(tf)
    vol = [ring_bytes_per_gpu(P, 1.0) for P in Ps]
    growth = ring_bytes_per_gpu(P_large, 1.0) / ring_bytes_per_gpu(P_small, 1.0)
    measured = {
        "per_gpu_drop": Measure(drop, note=f"1 − TFLOPS/GPU at {P_large} ÷ at {P_small}"),
        "ring_volume_growth": Measure(growth, note=f"per-GPU bytes of all-gather + reduce-scatter, "
                                                   f"{P_large} vs {P_small} ranks: (1−1/{P_large})/(1−1/{P_small})"),
        "ring_volume_limit_ratio": Measure(2 / ring_bytes_per_gpu(P_small, 1.0),
                                           note=f"the P→∞ volume over the volume at {P_small}: the most it can grow"),
    }
    figs = [Figure("Per-GPU throughput and per-GPU ring volume", "GPUs", "relative to the smallest",
                   [Series("TFLOPS per GPU (published)", Ps, [tf[P] / tf[Ps[0]] for P in Ps], style="points"),
                    Series("ring bytes per GPU (closed form)", Ps, [v / vol[0] for v in vol], style="dashed")],
                   xscale="log", caption=_provenance_note(rows))]
    return Evidence(measured, figures=figs, table=[dict(r) for r in rows], notes=[_provenance_note(rows)],
                    replication=FIXED)


# ---------------------------------------------------------------- code in pre-training (ablations)

def code_ablation_gains(tables: dict[str, Rows], table: str, perturb: list[dict[str, Any]]) -> Evidence:
    """Relative gains from adding code to a text-only pre-training mix, per task family, and the
    share of the with-code reasoning score that the code accounts for: g / (1 + g)."""
    rows = perturbed(_table(tables, table), perturb)
    g = {r["family"]: r["relative_gain"] for r in rows}
    for need in ("nl-reasoning", "world-knowledge"):
        if need not in g:
            raise ValueError(f"table '{table}' has no '{need}' row (has {sorted(g)})")
    measured = {
        "reasoning_gain": Measure(g["nl-reasoning"], note="relative gain over text-only pre-training"),
        "reasoning_over_knowledge": Measure(g["nl-reasoning"] / g["world-knowledge"],
                                            note="is the gain specific to reasoning?"),
        "code_share_of_reasoning": Measure(g["nl-reasoning"] / (1 + g["nl-reasoning"]),
                                           note="share of the with-code reasoning score that disappears without code"),
    }
    return Evidence(measured, table=[dict(r) for r in rows], notes=[_provenance_note(rows)],
                    replication=FIXED)


# ---------------------------------------------------------------- toxicity filters (Longpre et al. 2023)

def toxicity_filter_gains(tables: dict[str, Rows], table: str, comparator: Pos, draws: PosInt,
                          seed: int, perturb: list[dict[str, Any]]) -> Evidence:
    """Inverse toxicity filter against the standard filter at threshold `comparator`, paired over
    QA domains (percentile bootstrap of the mean difference), and the spread of the filters'
    average effects."""
    rows = perturbed(_table(tables, table), perturb)
    dom = lambda f, t: {r["domain"]: r["qa_change"] for r in rows
                        if r["filter"] == f and (t is None or r["threshold"] == t) and r["domain"] != "Average"}
    inv, std = dom("inverse", None), dom("standard", comparator)
    shared = sorted(set(inv) & set(std))
    if len(shared) < 3:
        raise ValueError(f"need per-domain rows for the inverse filter and T={comparator:g} (shared: {shared})")
    d = np.array([inv[k] - std[k] for k in shared])
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(draws, len(d)))].mean(axis=1)
    avgs = {(r["filter"], r["threshold"]): r["qa_change"] for r in rows if r["domain"] == "Average"}
    best_std = max(v for (f, _), v in avgs.items() if f == "standard")
    inv_avg = [v for (f, _), v in avgs.items() if f == "inverse"]
    measured = {
        "inverse_minus_standard": Measure(d.mean(), *np.percentile(means, [2.5, 97.5]), n=len(d),
                                          unit="QA points", note=f"mean over {len(d)} domains of inverse − "
                                                                 f"T={comparator:g} (paired bootstrap 95%)"),
        "inverse_minus_best_standard_average": Measure(max(inv_avg) - best_std, unit="QA points",
                                                       note="Average column: inverse vs the best standard filter"),
        "effect_range": Measure(max(avgs.values()) - min(avgs.values()), unit="QA points",
                                note="spread of the Average column over all toxicity filters"),
    }
    fig = Figure("QA change by domain: inverse vs standard toxicity filter", "domain (index)", "QA points",
                 [Series("inverse T=0.06", range(len(shared)), [inv[k] for k in shared], style="points"),
                  Series(f"standard T={comparator:g}", range(len(shared)), [std[k] for k in shared], style="points")],
                 caption=", ".join(f"{i}: {k}" for i, k in enumerate(shared)) + ". " + _provenance_note(rows))
    return Evidence(measured, figures=[fig], table=[{"domain": k, "inverse": inv[k], "standard": std[k]}
                                                    for k in shared], notes=[_provenance_note(rows)], replication=FIXED)


# ---------------------------------------------------------------- benchmarks vs human preference

def rank_agreement(tables: dict[str, Rows], table: str, benchmark: str, human: str, draws: PosInt,
                   seed: int, perturb: list[dict[str, Any]]) -> Evidence:
    """Spearman rank correlation between a benchmark and a human-preference rating over the
    published models (percentile bootstrap over models), and the share of model pairs they order
    differently (Kendall's discordant pairs)."""
    from scipy.stats import kendalltau, rankdata, spearmanr

    rows = perturbed(_table(tables, table), perturb)
    x = np.array([r[benchmark] for r in rows], dtype=float)
    y = np.array([r[human] for r in rows], dtype=float)
    i = np.random.default_rng(seed).integers(0, len(x), size=(draws, len(x)))
    rx, ry = rankdata(x[i], axis=1), rankdata(y[i], axis=1)  # Spearman = Pearson of the ranks
    rx, ry = rx - rx.mean(1, keepdims=True), ry - ry.mean(1, keepdims=True)
    den = np.sqrt((rx ** 2).sum(1) * (ry ** 2).sum(1))
    boot = (rx * ry).sum(1)[den > 0] / den[den > 0]  # a draw of one repeated model has no ranking
    rho = float(spearmanr(x, y).statistic)
    tau = float(kendalltau(x, y).statistic)
    measured = {
        "spearman": Measure(rho, *np.percentile(boot, [2.5, 97.5]), n=len(x),
                            note=f"{benchmark} vs {human} over {len(x)} models (bootstrap over models, 95%)"),
        "discordant_share": Measure((1 - tau) / 2, note="share of model pairs the two order differently"),
    }
    fig = Figure(f"{benchmark} against {human}", benchmark, human,
                 [Series("published models", x, y, style="points")], caption=_provenance_note(rows))
    return Evidence(measured, figures=[fig], notes=[_provenance_note(rows)], replication=FIXED)
