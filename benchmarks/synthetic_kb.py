"""A synthetic knowledge base of n claims with results, to benchmark and test the site build.

Claims cycle through the kinds and verdicts, use earlier claims, carry a figure (log axes,
an interval band, a dashed fit), a data table and a verdict history, so every page part is
exercised. Deterministic for a given n.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

__all__ = ["make_synthetic_kb", "benchmark"]

_SECTIONS = {
    "seeds": {
        "syn-list": {"title": "A synthetic list of principles", "file": "syn.txt"},
        "syn-notes": {"title": "Synthetic notes", "file": "notes.txt", "url": "https://example.org/notes"},
    },
    "sections": {
        "syn-how-a": {"title": "Scaling", "seed": "syn-list", "group": "How", "alias": "How 1"},
        "syn-how-b": {"title": "Hyperparameters", "seed": "syn-list", "group": "How", "alias": "How 2"},
        "syn-what-a": {"title": "Dynamics", "seed": "syn-list", "group": "What", "alias": "What 1"},
        "syn-notes-a": {"title": "Memory", "seed": "syn-notes", "group": "Notes", "blurb": "Bytes."},
    },
}
_REFS = {
    "syn2020": {"title": "A Synthetic Paper", "authors": "Doe, Roe", "year": 2020, "arxiv": "2001.08361"},
    "syn2021": {"title": "Another Synthetic Paper", "authors": "Poe, et al.", "year": 2021,
                "url": "https://example.org/paper"},
}
_VERDICT_CYCLE = ("supported", "supported", "refuted", "inconclusive", "partly-supported", "error", "supported")


def _claim(i: int, n: int) -> dict[str, Any]:
    kind = ("closed", "run", "dist", "run", "closed", "open")[i % 6]
    sec = list(_SECTIONS["sections"])[i % 4]
    c: dict[str, Any] = {
        "title": f"Synthetic claim {i}: loss falls as $N^{{-\\alpha}}$",
        "statement": f"Claim {i} states that the loss $L(N) = (N_c/N)^{{\\alpha_N}}$ falls with size; "
                     "a second sentence gives more detail about the measurement.",
        "section": sec,
        "sources": [{"seed": _SECTIONS["sections"][sec]["seed"], "place": f"Item {i}", "alias": f"How 1.{i}"}],
        "citations": [{"ref": "syn2020", "locator": f"Table {i % 7 + 1}"}],
        "kind": kind,
        "tags": ["synthetic", f"t{i % 5}"],
        "assumptions": [{"name": "decimal", "text": "GB means $10^9$ bytes."}],
    }
    if i % 3 == 0:
        c["citations"].append({"ref": "syn2021", "locator": "§2"})
    uses = [j for j in (i - 1, i // 2) if 0 <= j < i and j % 6 != 5 and j != i]
    if i % 4 == 1 and uses:
        c["relations"] = {"uses": [f"syn-claim-{j:05d}" for j in sorted(set(uses))]}
    if i % 17 == 3 and i > 3:
        c.setdefault("relations", {})["contests"] = [f"syn-claim-{i - 3:05d}"]
    if kind == "open":
        c["untestable"] = "Needs a frontier-scale run."
        return c
    c.update(verifier="verifiers.synthetic:measure", params={"N": 1000 + i},
             tiers={"fast": {"steps": 10}, "full": {"steps": 1000}},
             decision={"key": "ratio", "checks": [
                 {"quantity": "ratio", "op": "approx", "value": 1.0, "rel_tol": 0.05, "part": "ratio",
                  "source_says": "the ratio is one"},
                 {"quantity": "slope", "op": "<", "value": 0.0, "part": "slope"}]},
             scope="A small analogue only." if kind == "run" else "")
    return c


def _check(q: str, rule: str, outcome: str, value: float, lo: float | None, hi: float | None,
           part: str, says: str = "") -> dict[str, Any]:
    return {"quantity": q, "rule": rule, "outcome": outcome, "measured": value, "lo": lo, "hi": hi,
            "unit": "", "part": part, "source_says": says, "reason": ""}


def _result(cid: str, i: int, tier: str) -> dict[str, Any]:
    verdict = _VERDICT_CYCLE[i % len(_VERDICT_CYCLE)]
    ratio = {"supported": 1.0, "refuted": 1.3, "inconclusive": 1.04}.get(verdict, 1.2)
    r_out = "supported" if ratio == 1.0 else ("inconclusive" if verdict == "inconclusive" else "refuted")
    s_out = "supported" if verdict != "refuted" else "refuted"
    N = [10 ** (3 + k / 10) for k in range(40)]
    L = [5.0 * (1e3 / x) ** 0.076 for x in N]
    fig = {"title": f"Loss against size ({cid})", "xlabel": "N (parameters)", "ylabel": "loss",
           "xscale": "log", "yscale": "log", "caption": "Points: measured; dashed: fit.",
           "series": [
               {"label": "measured", "x": N, "y": [v * (1 + 0.01 * math.sin(k)) for k, v in enumerate(L)],
                "style": "points", "y_lo": [v * 0.98 for v in L], "y_hi": [v * 1.02 for v in L]},
               {"label": "fit", "x": N, "y": L, "style": "dashed"}]}
    hist_v = [verdict] if i % 10 else ["supported", verdict]
    return {
        "claim": cid, "tier": tier, "verdict": verdict, "reason": f"synthetic verdict {verdict}",
        "key": "ratio",
        "checks": [_check("ratio", "ratio ≈ 1 (±5%, i.e. in [0.95, 1.05])", r_out, ratio, ratio - 0.05,
                          ratio + 0.05, "ratio", "the ratio is one"),
                   _check("slope", "slope < 0", s_out, -0.076 if s_out == "supported" else 0.1, None, None, "slope")],
        "evidence": {"measured": {"ratio": {"value": ratio, "lo": ratio - 0.05, "hi": ratio + 0.05, "unit": "",
                                            "note": "paired seeds", "n": 3, "samples": [ratio] * 3},
                                  "slope": {"value": -0.076, "lo": None, "hi": None, "unit": "", "note": "",
                                            "n": None, "samples": None},
                                  "extra": {"value": 42.0, "lo": None, "hi": None, "unit": "GB", "note": "",
                                            "n": None, "samples": None}},
                     "figures": [fig], "table": [{"N": int(x), "L": y} for x, y in zip(N[:8], L[:8])],
                     "notes": ["A synthetic note with $x^2$."], "seeds": [0, 1, 2]},
        "error": {"type": "RuntimeError", "message": "synthetic failure", "output_tail": "Traceback ..."}
        if verdict == "error" else None,
        "provenance": {"inputs_key": "k" * 64, "claim_hash": "c" * 64, "code_hash": "d" * 64, "commit": "e" * 40,
                       "dirty": False, "versions": {"python": "3.11", "torch": "2.13"},
                       "device": "cpu" if tier == "fast" else "cuda: NVIDIA H100", "duration_s": 1.5,
                       "finished_at": f"2026-01-{1 + i % 28:02d}T00:00:00+00:00", "engine": "principia 0.1.0"},
        "history": [{"finished_at": f"2025-12-{1 + k:02d}T00:00:00+00:00", "verdict": v, "key": "ratio",
                     "value": ratio, "commit": "e" * 40} for k, v in enumerate(hist_v)],
    }


def make_synthetic_kb(root: Path | str, n: int) -> Path:
    """Write claims/ (n claims, sections, references) and results/ under root; return root."""
    root = Path(root)
    (root / "claims").mkdir(parents=True, exist_ok=True)
    (root / "results").mkdir(exist_ok=True)
    (root / "claims" / "_sections.yaml").write_text(yaml.safe_dump(_SECTIONS, sort_keys=False))
    (root / "claims" / "_references.yaml").write_text(yaml.safe_dump(_REFS, sort_keys=False))
    for i in range(n):
        cid = f"syn-claim-{i:05d}"
        c = _claim(i, n)
        (root / "claims" / f"{cid}.yaml").write_text(yaml.safe_dump(c, sort_keys=False, allow_unicode=True))
        if c["kind"] == "open":
            continue
        tiers = ("fast", "full") if i % 3 else ("fast",)
        for tier in tiers:
            (root / "results" / f"{cid}.{tier}.json").write_text(json.dumps(_result(cid, i, tier)))
    return root


def benchmark(root: Path | str, n: int = 1000) -> dict[str, float]:
    """Seconds of CPU time for each step of building a synthetic knowledge base of n claims."""
    import os
    import time

    from principia.loader import load_kb
    from principia.site.build import config_file, write_pages

    os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    root = make_synthetic_kb(root, n)
    out: dict[str, float] = {}
    t = time.process_time()
    kb = load_kb(root)
    out["load_kb"] = time.process_time() - t
    t = time.process_time()
    docs = write_pages(root, kb)
    out["write_pages"] = time.process_time() - t
    t = time.process_time()
    build(load_config(str(config_file(root)), docs_dir=str(docs), site_dir=str(Path(root) / "site"), strict=True))
    out["mkdocs"] = time.process_time() - t
    return out
