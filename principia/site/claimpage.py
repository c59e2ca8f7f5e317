"""The Markdown of one claim page.

Headings are Markdown (they feed the table of contents); each section's body is one raw HTML
block written here. A site of 1,000 claims must build in seconds, and Python-Markdown spends
most of its time on inline markup and tables, which raw HTML skips. Every claim field passes
through ``html_text`` (or ``html_math``, which keeps ``$...$`` for the math hook), so a claim can
never inject markup; links go only to pages of the site, to http(s) URLs checked by
``safe_url`` and to arXiv.
"""
from __future__ import annotations

import json
from typing import Any

from ..decide import describe
from .bottomline import bottom_line
from .plain import plain_reason
from .cite import cite_block
from .claimparts import history, provenance, relations, sources
from .home import tag_links
from .search import search_meta, tex_plain
from . import htmlparts as H
from .model import ClaimView, SiteData
from .plots import FigureStore
from .tables_block import tables_block
from .text import (VERDICT_LABELS, badge, claim_md, fmt, fmt_measure, front_matter, html_math, html_text,
                   md_text, page_url, rel_path, safe_url, section_md)

__all__ = ["claim_page", "claim_md", "section_md", "front_matter"]

MAX_TABLE_ROWS = 200


# --- parts of the page ----------------------------------------------------------------------

def _checks_table(result: dict[str, Any]) -> str:
    checks = [c for c in result.get("checks") or [] if isinstance(c, dict)]
    if not checks:
        return ""
    measured = ((result.get("evidence") or {}).get("measured")) or {}
    says = any(c.get("source_says") for c in checks)
    rows = []
    for c in checks:
        q = str(c.get("quantity", ""))
        m = measured.get(q) if isinstance(measured.get(q), dict) else {}
        extra = ([f"n = {m['n']}"] if m.get("n") else []) + ([str(m["note"])] if m.get("note") else [])
        cell = html_text(fmt_measure(c.get("measured"), c.get("lo"), c.get("hi"), c.get("unit") or ""))
        if extra:
            cell += f" <small>({html_text('; '.join(extra))})</small>"
        part = f" <small>part: {html_text(c['part'])}</small>" if c.get("part") else ""
        outcome = badge(str(c.get("outcome", "error")))
        frac, n = c.get("seed_fraction"), len(m.get("samples") or [])
        if isinstance(frac, (int, float)) and n:
            outcome += f" <small>holds on {round(frac * n)} of {n} seeds</small>"
        if c.get("reason"):
            outcome += f" {html_text(c['reason'])}"
        row = [f"<code>{html_text(q)}</code>{part}", cell, html_text(c.get("rule", "")), outcome]
        rows.append(row + ([html_text(c.get("source_says", ""))] if says else []))
    head = ["Quantity", "Measured", "Expected", "Outcome"] + (["Source says"] if says else [])
    return H.table(head, rows, "pp-checks")


def _other_measures(result: dict[str, Any]) -> str:
    ev = result.get("evidence") or {}
    checked = {c.get("quantity") for c in result.get("checks") or [] if isinstance(c, dict)}
    rest = {k: m for k, m in (ev.get("measured") or {}).items() if k not in checked and isinstance(m, dict)}
    if not rest:
        return ""
    rows = [[f"<code>{html_text(k)}</code>",
             html_text(fmt_measure(m.get("value"), m.get("lo"), m.get("hi"), m.get("unit") or "")),
             html_text(m.get("note") or "")] for k, m in sorted(rest.items())]
    return "<p>Other measurements:</p>" + H.table(["Quantity", "Measured", "Note"], rows)


def _figures(result: dict[str, Any], page: str, store: FigureStore) -> str:
    """Each figure as an SVG file (matplotlib) with its data as CSV beside it."""
    figs = [f for f in ((result.get("evidence") or {}).get("figures") or []) if isinstance(f, dict)]
    out = []
    for f in figs:
        cap = html_text(f.get("caption") or "")
        base = rel_path(page, f"figures/{store.files(f)}")
        title = html_text(f.get("title") or "figure")
        out.append(f'<figure class="pp-figure"><img src="{base}.svg" alt="{title}" loading="lazy" width="480" '
                   f'height="374"><figcaption>{cap} <a href="{base}.csv" download>Data (CSV)</a></figcaption></figure>')
    return "".join(out)


def _rows_table(rows: list[Any]) -> str:
    rows = [r for r in rows if isinstance(r, dict)]
    if not rows:
        return ""
    cols: list[str] = []
    for r in rows:
        cols += [str(k) for k in r if str(k) not in cols]
    body = [[html_text(fmt(r.get(c, ""))) for c in cols] for r in rows[:MAX_TABLE_ROWS]]
    more = (f"<p><em>{len(rows) - MAX_TABLE_ROWS} more rows are in the result file.</em></p>"
            if len(rows) > MAX_TABLE_ROWS else "")
    return "<p>Data:</p>" + H.table([html_text(c) for c in cols], body) + more


def _notes(ev: dict[str, Any]) -> str:
    """The verifier's notes and seeds."""
    out = ""
    notes = [n for n in ev.get("notes") or [] if n]
    if notes:
        out += "<p>Notes from the verifier:</p>" + H.ul(html_math(n) for n in notes)
    if ev.get("seeds"):
        out += f"<p>Seeds: {html_text(', '.join(str(s) for s in ev['seeds']))}.</p>"
    return out


def _error(result: dict[str, Any]) -> str:
    err = result.get("error")
    if not (isinstance(err, dict) and any(err.values())):
        return ""
    out = (f"<p><strong>Error</strong> ({html_text(err.get('type') or 'error')}): "
           f"{html_text(err.get('message') or '')}</p>")
    if err.get("output_tail"):
        out += f'<pre class="pp-output"><code>{html_text(err["output_tail"])}</code></pre>'
    return out


def _falsified(result: dict[str, Any]) -> str:
    items = []
    for f in result.get("falsified") or []:
        if isinstance(f, dict):
            params = ", ".join(f"{k}={fmt(x)}" for k, x in (f.get("params") or {}).items())
            items.append(f"with {html_text(params)}: {badge(str(f.get('verdict', 'error')))}")
    return "<p>Falsification runs (each must come out refuted):</p>" + H.ul(items) if items else ""


def _tier_line(v: ClaimView, tier: str, result: dict[str, Any]) -> str:
    """Verdict and its reason in words; the device is in the provenance table."""
    return (f"{badge(str(result.get('verdict') or 'error'))} on the <strong>{html_text(tier)}</strong> tier — "
            f"{html_math(plain_reason(v, result))}")


def _verdict_section(v: ClaimView) -> list[str]:
    shown = v.shown
    if shown is None:
        if v.claim.kind == "open":
            body = f"<p>{badge('untestable')} No run here can settle this claim: {html_math(v.claim.untestable)}</p>"
        else:
            body = f"<p>{badge('not-verified')} No result has been recorded for this claim yet.</p>"
        return H.block(body, head="Verdict")
    body = f"<p>{_tier_line(v, v.shown_tier or '', shown)}</p>"
    for tier in ("fast", "full"):
        if tier != v.shown_tier and tier in v.results:
            body += f"<p>Also: {_tier_line(v, tier, v.results[tier])}</p>"
    if v.waiting_full:
        body += "<p><em>The full tier has not been run yet; the fast tier's verdict is shown.</em></p>"
    body += f"<p><small>Rule as the engine states it: {html_text(shown.get('reason') or '')}</small></p>"
    return H.block(body, head="Verdict")


def _evidence_section(v: ClaimView, store: FigureStore) -> list[str]:
    """Checks (indexed for search), then figures and data (not indexed), then notes and errors."""
    r = v.shown
    if r is None:
        return []
    ev = r.get("evidence") or {}
    rest = _notes(ev) + _error(r) + _falsified(r)
    for tier in ("fast", "full"):
        if tier != v.shown_tier and tier in v.results:
            other = v.results[tier]
            rest += (f'<details class="note"><summary>Evidence of the {tier} tier</summary>'
                     f"{_checks_table(other)}{_other_measures(other)}{_error(other)}</details>")
    return (H.block(_checks_table(r), _other_measures(r), head=f"Evidence ({v.shown_tier} tier)")
            + H.block(_figures(r, claim_md(v.id), store), _rows_table(ev.get("table") or []), search=False) + H.block(rest))


def _decision(v: ClaimView) -> list[str]:
    d = v.claim.decision
    if d is None:
        return []
    key = d.key or d.checks[0].quantity
    items = []
    for c in d.checks:
        tags = ([f"part: {html_text(c.part)}"] if c.part else []) + (["key quantity"] if c.quantity == key else [])
        line = html_text(describe(c)) + (f" ({'; '.join(tags)})" if tags else "") + "."
        if c.why:
            line += f" {html_math(c.why)}"
        if c.source_says:
            line += f" The source says: “{html_text(c.source_says)}”."
        items.append(line)
    body = "<p>Declared in the claim before anything ran:</p>" + H.ul(items)
    if v.claim.falsify:
        falsify = [f"{html_text(', '.join(f'{k}={fmt(x)}' for k, x in f.params.items()))} "
                   f"({f.tier} tier): {html_math(f.why)}" for f in v.claim.falsify]
        body += "<p>Falsification: with these parameters the verifier must come out refuted.</p>" + H.ul(falsify)
    elif v.claim.no_falsifier:
        body += ("<p><strong>No falsifier yet</strong> — this run has not been shown able to refute "
                 f"the claim: {html_math(v.claim.no_falsifier)}</p>")
    return H.block(body, head="Decision rule")


def _param(x: Any) -> str:
    if isinstance(x, (dict, list)):
        return html_text(json.dumps(x, sort_keys=True)[:120])
    return html_text(fmt(x)) if x != "" else ""


def _parameters(v: ClaimView) -> list[str]:
    c = v.claim
    names = list(dict.fromkeys([*c.params, *(k for t in c.tiers.values() for k in t)]))
    if not names:
        return []
    tiers = [t for t in ("fast", "full") if t in c.tiers]
    rows = [[f"<code>{html_text(n)}</code>", _param(c.params.get(n, ""))] +
            [_param(c.tiers[t].get(n, "")) for t in tiers] for n in names]
    body = H.table(["Parameter", "Claim value"] + [f"{t} tier" for t in tiers], rows)
    if c.verifier:
        body += f"<p>Verifier: <code>{html_text(c.verifier)}</code></p>"
    return H.block(body, search=False, head="Parameters")


def _context(v: ClaimView) -> list[str]:
    c = v.claim
    out: list[str] = []
    if c.assumptions:
        items = [f"<strong>{html_text(a.name)}</strong> — {html_math(a.text)}" for a in c.assumptions]
        out += H.block(H.ul(items), head="Assumptions")
    if c.scope.strip():
        out += H.block(H.paras(c.scope), head="Scope")
    if c.notes.strip():
        out += H.block(H.paras(c.notes), head="Notes")
    return out


def _risk(v: ClaimView, data: SiteData) -> str:
    if not v.at_risk:
        return ""
    page = claim_md(v.id)
    why = "; ".join(f"{H.claim_a(page, u, data.views[u].claim.title)} is "
                    f"{'itself at risk' if w == 'at risk' else VERDICT_LABELS.get(w, w)}" for u, w in v.at_risk)
    return (f'<div class="admonition danger"><p class="admonition-title">At risk</p>'
            f"<p>This claim uses a claim that does not hold: {why}.</p></div>")


def claim_page(v: ClaimView, data: SiteData, store: FigureStore, edit_base: str = "", site_url: str = "") -> str:
    """The whole Markdown page of one claim: the bottom line first, then the evidence."""
    c = v.claim
    page = claim_md(v.id)
    sec = data.kb.catalogue.sections.get(c.section) if data.kb.catalogue else None
    sec_link = H.a(page_url(page, section_md(c.section)), html_text(sec.title)) if sec else html_text(c.section)
    edit = f"{edit_base}{v.file}" if edit_base and safe_url(f"{edit_base}{v.file}") else ""
    meta = f"<code>{html_text(v.id)}</code> · {c.kind} claim · {sec_link}"
    if c.tags:
        meta += f' · <span class="pp-tags">tags: {tag_links(page, c.tags)}</span>'
    if edit:
        meta += f" · {H.ext(edit, 'Edit this claim')}"
    extra = search_meta(c.tags, v.id, len(v.used_by))
    lines = [front_matter(tex_plain(c.title), edit, tex_plain(c.statement), extra), f"# {md_text(c.title)}", ""]
    # The meta line (ids, tags, edit link) is navigation, not content: kept out of the index.
    lines += H.block(f'<p class="pp-meta">{meta}</p>', search=False)
    lines += H.block(f'<div class="pp-statement">{H.paras(c.statement)}</div>', bottom_line(v), _risk(v, data))
    lines += _verdict_section(v) + tables_block(v, data, page) + _evidence_section(v, store) + _decision(v) + _parameters(v)
    lines += _context(v) + sources(v, data) + relations(v, data) + cite_block(v, site_url)
    lines += provenance(v) + history(v)
    return "\n".join(lines).rstrip() + "\n"

