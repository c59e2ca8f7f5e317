"""Lower parts of a claim page: sources and citations, relations, provenance and history."""
from __future__ import annotations

from typing import Any

from . import htmlparts as H
from .bib import ref_anchor, ref_label
from .graph import neighbourhood_svg
from .model import ClaimView, SiteData
from .text import badge, claim_md, fmt, html_math, html_text, page_url, short

__all__ = ["sources", "relations", "provenance", "history"]

MAX_HISTORY = 15


def _link(page: str, cid: str, views: dict[str, ClaimView]) -> str:
    other = views[cid]
    return f"{H.claim_a(page, cid, other.claim.title)} {badge(other.verdict)}"


def sources(v: ClaimView, data: SiteData) -> list[str]:
    cat = data.kb.catalogue
    page = claim_md(v.id)
    items = []
    for s in v.claim.sources:
        seed = cat.seeds.get(s.seed) if cat else None
        name = H.ext(seed.url, html_text(seed.title)) if seed else html_text(s.seed)
        alias = f" ({html_text(s.alias)})" if s.alias else ""
        items.append(f"{name} — {html_text(s.place)}{alias}")
    cites = []
    for cit in v.claim.citations:
        ref = data.kb.references.get(cit.ref)
        note = f" {html_math(cit.note)}" if cit.note else ""
        if ref is None:
            cites.append(f"{html_text(cit.ref)} — <strong>{html_text(cit.locator)}</strong>{note}")
            continue
        bib = H.a(f"{page_url(page, 'bibliography.md')}#{ref_anchor(cit.ref)}",
                 f"{html_text(ref.authors)} ({ref.year})")
        cites.append(f"{bib}, <em>{html_text(ref.title)}</em> — <strong>{html_text(cit.locator)}</strong> "
                     f"{H.ext(ref.link(), html_text(ref_label(ref)))}{note}")
    return H.block(H.ul(items), head="Sources") + H.block(H.ul(cites), head="Citations")


def relations(v: ClaimView, data: SiteData) -> list[str]:
    rel = v.claim.relations
    page = claim_md(v.id)
    groups = [("Uses", [u for u in rel.uses if u in data.views]), ("Used by", sorted(v.used_by)),
              ("Contests", [u for u in rel.contests if u in data.views]), ("Contested by", sorted(v.contested_by))]
    body = "".join(f"<p>{name}:</p>" + H.ul(_link(page, u, data.views) for u in ids) for name, ids in groups if ids)
    if not body:
        return []
    svg = neighbourhood_svg(v, data.views, lambda c: page_url(page, claim_md(c)))
    if svg:
        body += f'<div class="pp-figure pp-scroll">{svg}</div>'
    return H.block(body, search=False, head="Relations")


def _versions(p: dict[str, Any]) -> str:
    ver = p.get("versions") or {}
    return ", ".join(f"{k} {x}" for k, x in sorted(ver.items())) if isinstance(ver, dict) else str(ver)


_PROVENANCE = (
    ("Device", lambda p: p.get("device") or "—"),
    ("Commit", lambda p: short(p.get("commit")) + (" (dirty)" if p.get("dirty") else "")),
    ("Claim hash", lambda p: short(p.get("claim_hash"))),
    ("Code hash", lambda p: short(p.get("code_hash"))),
    ("Versions", _versions),
    ("Duration", lambda p: f"{fmt(p.get('duration_s'), 3)} s" if p.get("duration_s") is not None else "—"),
    ("Peak memory", lambda p: f"{fmt(p.get('peak_rss_mib'), 3)} MiB" if p.get("peak_rss_mib") else "—"),
    ("Finished", lambda p: p.get("finished_at") or "—"),
    ("Engine", lambda p: p.get("engine") or "—"),
)


def provenance(v: ClaimView) -> list[str]:
    tiers = [t for t in ("fast", "full") if t in v.results]
    if not tiers:
        return []
    provs = {t: v.results[t].get("provenance") or {} for t in tiers}
    rows = [[name] + [html_text(get(provs[t])) for t in tiers] for name, get in _PROVENANCE]
    return H.block(H.table([""] + [f"{t} tier" for t in tiers], rows), search=False, head="Provenance")


def history(v: ClaimView) -> list[str]:
    entries = [(str(h.get("finished_at") or ""), tier, h) for tier, r in v.results.items()
               for h in r.get("history") or [] if isinstance(h, dict)]
    if not entries:
        return []
    entries.sort(key=lambda e: (e[0], e[1]), reverse=True)
    rows = []
    for when, tier, h in entries[:MAX_HISTORY]:
        kv = f"{h.get('key')} = {fmt(h.get('value'))}" if h.get("key") else fmt(h.get("value"))
        rows.append([html_text(when or "—"), tier, badge(str(h.get("verdict") or "error")), html_text(kv),
                     html_text(short(h.get("commit")))])
    body = H.table(["Finished", "Tier", "Verdict", "Key value", "Commit"], rows)
    if len(entries) > MAX_HISTORY:
        body += f"<p><em>{len(entries) - MAX_HISTORY} older entries are in the result files.</em></p>"
    return H.block(body, search=False, head="History")
