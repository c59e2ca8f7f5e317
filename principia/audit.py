"""The audit trail: which version of a claim a result was judged by, and whether tiers agree.

A result records ``claim_hash`` (here, over everything its verdict depends on: kind, verifier,
params, tiers, decision, falsifiers). When the claim's current hash differs, the result is
*stale*: it was judged by a rule or parameters the claim no longer states. Wording, citations,
tags and notes are not hashed, so editing prose never makes a result stale.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from .schema import Claim

__all__ = ["claim_hash", "is_stale", "stale_reason", "tiers_agree", "HASH_LEN"]

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
    })[:HASH_LEN]


def _legacy_hash(claim: Claim, tier: str) -> str:
    """The per-tier hash older results kept in provenance (before ``claim_hash`` existed)."""
    return _sha(claim.verdict_inputs(tier))[:HASH_LEN]


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


def tiers_agree(fast: dict[str, Any] | None, full: dict[str, Any] | None) -> bool:
    """Whether the fast and full tiers' recorded verdicts are the same (True when one is absent)."""
    if not isinstance(fast, dict) or not isinstance(full, dict):
        return True
    return fast.get("verdict") == full.get("verdict")
