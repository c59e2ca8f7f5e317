"""What the site shows about each claim: its recorded results, displayed verdict and risk.

Read-only: claims come from ``principia.loader``, results from ``principia.store.ReadOnlyStore``.
The displayed verdict is the full tier's when recorded and current (the heavier evidence), else
the fast tier's (a stale result is shown, flagged, only when no current one exists); an ``open`` claim without a result is ``untestable`` with its stated reason; any other
claim without a result is ``not-verified``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..audit import is_stale, tiers_agree
from ..loader import KnowledgeBase, load_kb
from ..schema import Claim
from ..store import ReadOnlyStore

__all__ = ["ClaimView", "SiteData", "load_site_data", "NOT_VERIFIED", "BAD"]

NOT_VERIFIED = "not-verified"
BAD = ("refuted", "error")  # a claim that uses one of these is at risk
TIER_ORDER = ("full", "fast")


@dataclass
class ClaimView:
    id: str
    claim: Claim
    file: str
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # tier -> result
    at_risk: list[tuple[str, str]] = field(default_factory=list)  # (used id, why)
    used_by: list[str] = field(default_factory=list)
    contested_by: list[str] = field(default_factory=list)

    @property
    def shown_tier(self) -> str | None:
        """The full tier unless it is stale and the fast tier is current; a stale result is shown
        only when no current one exists (and is then flagged)."""
        have = [t for t in TIER_ORDER if t in self.results]
        current = [t for t in have if not is_stale(self.claim, self.results[t])]
        return (current or have or [None])[0]

    @property
    def shown(self) -> dict[str, Any] | None:
        t = self.shown_tier
        return self.results[t] if t else None

    @property
    def verdict(self) -> str:
        r = self.shown
        if r:
            return str(r.get("verdict") or "error")
        return "untestable" if self.claim.kind == "open" else NOT_VERIFIED

    @property
    def reason(self) -> str:
        r = self.shown
        if r:
            return str(r.get("reason") or "")
        if self.claim.kind == "open":
            return self.claim.untestable
        return "no result has been recorded yet"

    def key_value(self, tier: str | None = None) -> tuple[str, Any, dict[str, Any] | None]:
        """(key quantity, measured value, its check) from a tier's result (default: shown)."""
        r = self.results.get(tier) if tier else self.shown
        d = self.claim.decision
        key = (r or {}).get("key") or (d.key if d else "") or ""
        for c in (r or {}).get("checks") or []:
            if isinstance(c, dict) and c.get("quantity") == key:
                return key, c.get("measured"), c
        return key, None, None

    def tier_verdict(self, tier: str) -> str | None:
        r = self.results.get(tier)
        return str(r.get("verdict") or "error") if r else None

    @property
    def tiers_disagree(self) -> bool:
        return not tiers_agree(self.results.get("fast"), self.results.get("full"))

    @property
    def stale(self) -> bool:
        """The shown result was judged by a version of the claim that has since changed."""
        return bool(self.shown) and is_stale(self.claim, self.shown)

    def extra(self, name: str) -> dict[str, Any]:
        """An optional top-level result field (``scale``, ``replication``) as a dict, else {}."""
        for t in TIER_ORDER:
            x = (self.results.get(t) or {}).get(name)
            if isinstance(x, dict) and x:
                return x
        return {}

    @property
    def waiting_full(self) -> bool:
        """Testable, declares a full tier, and no full-tier result is recorded."""
        return self.claim.kind != "open" and "full" in self.claim.tiers and "full" not in self.results


@dataclass
class SiteData:
    kb: KnowledgeBase
    views: dict[str, ClaimView]


def _risks(views: dict[str, ClaimView]) -> None:
    """Flag claims that use (directly or through a chain) a refuted or failing claim."""
    memo: dict[str, list[tuple[str, str]]] = {}

    def visit(cid: str, stack: frozenset[str]) -> list[tuple[str, str]]:
        if cid in memo:
            return memo[cid]
        found: list[tuple[str, str]] = []
        for u in views[cid].claim.relations.uses:
            if u not in views or u in stack:
                continue
            if views[u].verdict in BAD:
                found.append((u, views[u].verdict))
            elif visit(u, stack | {cid}):
                found.append((u, "at risk"))
        memo[cid] = found
        return found

    for cid in views:
        views[cid].at_risk = visit(cid, frozenset())


def load_site_data(root: Path, kb: KnowledgeBase | None = None) -> SiteData:
    """Claims, their results from ``root/results`` and the relations between them."""
    kb = kb or load_kb(root)
    store = ReadOnlyStore(Path(root) / "results")
    views: dict[str, ClaimView] = {}
    for cid in sorted(kb.claims):
        results = {}
        for tier in ("fast", "full"):
            r = store.fetch(cid, tier)
            if isinstance(r, dict):
                results[tier] = r
        views[cid] = ClaimView(cid, kb.claims[cid], kb.files.get(cid, f"claims/{cid}.yaml"), results)
    for cid, v in views.items():
        for u in v.claim.relations.uses:
            if u in views:
                views[u].used_by.append(cid)
        for u in v.claim.relations.contests:
            if u in views:
                views[u].contested_by.append(cid)
    _risks(views)
    return SiteData(kb, views)
