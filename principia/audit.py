"""The audit trail: which version of a claim a result was judged by, and whether tiers agree.

A result records ``claim_hash`` (here, over everything its verdict depends on: kind, verifier,
params, tiers, decision, falsifiers). When the claim's current hash differs, the result is
*stale*: it was judged by a rule or parameters the claim no longer states. Wording, citations,
tags and notes are not hashed, so editing prose never makes a result stale.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .schema import Claim

__all__ = ["claim_hash", "is_stale", "stale_reason", "amended_after", "tiers_agree", "findings",
           "Finding", "HASH_LEN"]

HASH_LEN = 16  # hex digits kept: enough to tell versions of one claim apart, short on a page


def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def claim_hash(claim: Claim) -> str:
    """Hash of the claim's decision-relevant content (the same for every tier)."""
    return _sha({
        "kind": claim.kind, "verifier": claim.verifier, "params": claim.params,
        "tiers": claim.tiers,
        "decision": claim.decision.model_dump(mode="json") if claim.decision else None,
        "falsify": [f.model_dump(mode="json") for f in claim.falsify],
        "untestable": claim.untestable,
        **({"tables": claim.tables} if claim.tables else {}),  # published claims' inputs
    })[:HASH_LEN]


_NEW_KEYS = {"check": ("margin", "min_effect"), "decision": ("replication",)}


def _legacy_hash(claim: Claim, tier: str) -> str:
    """The per-tier hash older results kept in provenance (before ``claim_hash`` existed),
    computed without the rule fields added since, when they are unset."""
    inputs = claim.verdict_inputs(tier)
    dec = inputs.get("decision")
    if dec:
        dec = {k: v for k, v in dec.items() if not (k in _NEW_KEYS["decision"] and v is None)}
        dec["checks"] = [{k: v for k, v in c.items() if not (k in _NEW_KEYS["check"] and v is None)}
                         for c in dec["checks"]]
        inputs = {**inputs, "decision": dec}
    return _sha(inputs)[:HASH_LEN]


def stale_reason(claim: Claim, result: dict[str, Any] | None) -> str:
    """Why a recorded result no longer matches its claim; '' when it is current or absent."""
    if not isinstance(result, dict):
        return ""
    recorded = result.get("claim_hash")
    if isinstance(recorded, str) and recorded:
        if recorded == claim_hash(claim):
            return ""
        return f"judged by claim version {recorded}; the claim is now {claim_hash(claim)}"
    prov = result.get("provenance") if isinstance(result.get("provenance"), dict) else {}
    old = prov.get("claim_hash")
    tier = str(result.get("tier") or "fast")
    if isinstance(old, str) and old and old == _legacy_hash(claim, tier):
        return ""
    return "the claim's decision or parameters changed after this result was recorded"


def is_stale(claim: Claim, result: dict[str, Any] | None) -> bool:
    """True when the result was judged by inputs the claim no longer has."""
    return bool(stale_reason(claim, result))


def amended_after(claim: Claim, result: dict[str, Any] | None) -> int:
    """How many recorded runs in the result's history were judged by another version of the
    claim (the page says "amended after N recorded runs"); entries older than the hash field
    are not counted."""
    now = claim_hash(claim)
    history = result.get("history") if isinstance(result, dict) else None
    return sum(1 for h in history or [] if isinstance(h, dict)
               and isinstance(h.get("claim_hash"), str) and h["claim_hash"] != now)


def tiers_agree(fast: dict[str, Any] | None, full: dict[str, Any] | None) -> bool:
    """Whether the fast and full tiers' recorded verdicts are the same (True when one is absent)."""
    if not isinstance(fast, dict) or not isinstance(full, dict):
        return True
    return fast.get("verdict") == full.get("verdict")


@dataclass(frozen=True)
class Finding:
    """Something `principia check` reports about recorded results; `strict` ones fail --strict."""

    file: str
    what: str
    strict: bool

    def __str__(self) -> str:
        return f"{self.file}: {self.what}"


def _tier_finding(rel: str, claim: Claim, fast: dict[str, Any], full: dict[str, Any]) -> Finding | None:
    if tiers_agree(fast, full) or claim.tiers_note.strip():
        return None
    return Finding(rel, f"tiers disagree (fast: {fast.get('verdict')}, full: {full.get('verdict')}) "
                        f"and 'tiers_note' does not explain why", strict=True)


def findings(kb: Any, results: Path | str | None = None) -> list[Finding]:
    """Stale results, unexplained tier disagreements and run results without replication."""
    from .store import ReadOnlyStore
    store = ReadOnlyStore(results or Path(kb.root) / "results")
    out: list[Finding] = []
    bare: list[str] = []  # run results that report no replication
    for cid in sorted(kb.claims):
        claim, rel = kb.claims[cid], kb.files[cid]
        got = {t: store.fetch(cid, t) for t in ("fast", "full")}
        for tier, res in got.items():
            why = stale_reason(claim, res)
            if why:
                out.append(Finding(rel, f"results/{cid}.{tier}.json is stale: {why}", strict=True))
            elif claim.kind == "run" and isinstance(res, dict) and res.get("verdict") != "error" \
                    and not isinstance(res.get("replication"), dict):
                bare.append(f"{cid}.{tier}")
        if got["fast"] and got["full"] and not any(stale_reason(claim, r) for r in got.values()):
            tf = _tier_finding(rel, claim, got["fast"], got["full"])
            out += [tf] if tf else []
    if bare:
        out.append(Finding("results/", f"{len(bare)} run result(s) report no replication (data draws, "
                                       f"seeds): {', '.join(bare[:6])}{', …' if len(bare) > 6 else ''}",
                           strict=False))
    return out
