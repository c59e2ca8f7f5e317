"""`principia show` and `principia list`: the knowledge base in the terminal."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .audit import is_stale, stale_reason
from .loader import KnowledgeBase, load_kb
from .store import ReadOnlyStore

__all__ = ["verdict_of", "show", "list_claims", "STALE"]

STALE = "stale"  # shown instead of a verdict the claim no longer stands behind


def verdict_of(kb: KnowledgeBase, store: ReadOnlyStore, cid: str) -> tuple[str, dict[str, Any] | None]:
    """The verdict shown for a claim: the full tier's when recorded and current, else the fast
    tier's; 'stale' when every recorded result was judged by another version of the claim
    (principia.audit), so an old or forged file is never presented as the claim's verdict."""
    claim = kb.claims[cid]
    found = [r for r in (store.fetch(cid, t) for t in ("full", "fast")) if r is not None]
    for res in found:
        if not is_stale(claim, res):
            return res.get("verdict", "error"), res
    if found:
        return STALE, found[0]
    return ("untestable" if claim.kind == "open" else "not-verified"), None


def _num(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, (int, float)) and not isinstance(x, bool) else str(x)


def _safe(text: Any) -> str:
    """Text from a results file, with control characters (terminal escapes) made visible."""
    return "".join(c if c.isprintable() or c in "\n\t" else repr(c)[1:-1] for c in str(text))


def _warn(store: ReadOnlyStore) -> None:
    for p in store.problems:
        print(f"warning: {_safe(p)} (ignored)", file=sys.stderr)


def show(root: Path, cid: str, as_json: bool = False) -> int:
    kb = load_kb(root)
    if cid not in kb.claims:
        from .verify import did_you_mean
        print(f"error: no claim with id '{cid}'{did_you_mean(cid, list(kb.claims))}", file=sys.stderr)
        return 2
    c = kb.claims[cid]
    store = ReadOnlyStore(kb.root / "results")
    verdict, res = verdict_of(kb, store, cid)
    _warn(store)
    if as_json:
        print(json.dumps({"id": cid, "claim": c.model_dump(mode="json"), "verdict": verdict,
                          "result": res}, indent=1, default=str))
        return 0
    out = [f"{cid}: {c.title}", f"verdict: {verdict}" + (f" ({res['tier']} tier)" if res else ""),
           "", c.statement.strip(), ""]
    if res and verdict == STALE:
        out.append(f"recorded verdict {_safe(res.get('verdict'))} is stale: "
                   f"{stale_reason(c, res)}; run `principia verify {cid} --tier {res['tier']}`")
    if res:
        out.append(f"reason: {_safe(res.get('reason', ''))}")
        for ch in res.get("checks", []):
            iv = f" [{_num(ch.get('lo'))}, {_num(ch.get('hi'))}]" if ch.get("lo") is not None else ""
            out.append(_safe(f"  {ch.get('outcome', ''):<12} {ch.get('quantity', '')} = "
                             f"{_num(ch.get('measured'))}{iv} {ch.get('unit', '')}  rule: {ch.get('rule', '')}"))
        prov = res.get("provenance", {})
        out.append(_safe(f"provenance: {prov.get('device', '')}, commit {str(prov.get('commit', ''))[:10]}, "
                         f"{prov.get('duration_s', 0)} s, {prov.get('finished_at', '')}"))
    out.append("citations:")
    for cit in c.citations:
        ref = kb.references.get(cit.ref)
        out.append(f"  - {ref.title if ref else cit.ref} ({ref.year if ref else ''}), {cit.locator}")
    print("\n".join(out))
    return 0


def list_claims(root: Path, verdict: str | None = None, tag: str | None = None,
                section: str | None = None, kind: str | None = None, as_json: bool = False) -> int:
    kb = load_kb(root)
    store = ReadOnlyStore(kb.root / "results")
    rows = []
    for cid in sorted(kb.claims):
        c = kb.claims[cid]
        v, _ = verdict_of(kb, store, cid)
        if (verdict and v != verdict) or (tag and tag not in c.tags) or \
                (section and c.section != section) or (kind and c.kind != kind):
            continue
        rows.append({"id": cid, "verdict": v, "kind": c.kind, "section": c.section, "title": c.title})
    _warn(store)
    if as_json:
        print(json.dumps(rows, indent=1))
    else:
        for r in rows:
            print(f"{r['id']:<32} {r['verdict']:<17} {r['kind']:<7} {r['section']:<20} {r['title']}")
        print(f"{len(rows)} claim(s)", file=sys.stderr)
    return 0
