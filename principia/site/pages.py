"""Index pages: groups and sections, dashboard, errata, graph, and the claims.json export.

Their headings and short texts are Markdown; every list or table that grows with the number of
claims is one raw HTML block (``htmlparts.block``), kept out of the search index: a claim is
found through its own page, and Python-Markdown would spend seconds on a 1,000-row table.
"""
from __future__ import annotations

import json
from collections import Counter
from typing import Any

from ..decide import VERDICTS
from .graph import VERDICT_COLORS, graph_svg, related_ids
from . import htmlparts as H
from .model import NOT_VERIFIED, ClaimView, SiteData
from .plain import plain_reason
from .text import (VERDICT_LABELS, badge, claim_md, fmt, front_matter, html_math, html_text, md_cell, md_plain,
                   page_url, rel_path, section_md, slug)

__all__ = ["ALL_VERDICTS", "groups", "group_md", "group_page", "groups_index", "section_page",
           "dashboard_page", "errata_page", "verdict_link", "graph_page", "claims_json", "nav", "sections_of"]

ALL_VERDICTS = (*VERDICTS, NOT_VERIFIED)
UNSORTED = "unsorted"


def group_md(group: str) -> str:
    return f"groups/{slug(group)}/index.md"


def groups(data: SiteData) -> dict[str, list[str]]:
    """Group name -> section ids, in the order of _sections.yaml (the source list's order)."""
    out: dict[str, list[str]] = {}
    cat = data.kb.catalogue
    for sid, sec in (cat.sections.items() if cat else []):
        out.setdefault(sec.group, []).append(sid)
    known = {s for ss in out.values() for s in ss}
    if any(v.claim.section not in known for v in data.views.values()):
        out.setdefault("Unsorted", []).append(UNSORTED)
    return out


def sections_of(data: SiteData) -> dict[str, list[ClaimView]]:
    cat = data.kb.catalogue
    known = set(cat.sections) if cat else set()
    out: dict[str, list[ClaimView]] = {}
    for v in data.views.values():
        out.setdefault(v.claim.section if v.claim.section in known else UNSORTED, []).append(v)
    return out


def _section_title(data: SiteData, sid: str) -> tuple[str, str]:
    sec = data.kb.catalogue.sections.get(sid) if data.kb.catalogue else None
    if sec is None:
        return "Claims in unknown sections", ""
    return sec.title, sec.alias


def verdict_link(page: str, verdict: str, n: int, section: str = "") -> str:
    """A count that opens the home table filtered to one verdict (and section)."""
    where = f"section={section}&" if section else ""
    return H.a(page_url(page, "index.md") + f"#{where}verdict={verdict}", f"{badge(verdict)} {n}")


def _counts_line(views: list[ClaimView]) -> str:
    c = Counter(v.verdict for v in views)
    return " ".join(f"{badge(k)} {c[k]}" for k in ALL_VERDICTS if c[k]) or "no claims yet"


def _listing(items: list[str], empty: str) -> list[str]:
    """A list of claims as one raw HTML block (or a line of Markdown when there is none)."""
    return H.block(H.ul(items), search=False) if items else [empty, ""]


def section_page(data: SiteData, sid: str, claims: list[ClaimView]) -> str:
    title, alias = _section_title(data, sid)
    sec = data.kb.catalogue.sections.get(sid) if data.kb.catalogue else None
    page = section_md(sid)
    lines = [front_matter(title, description=f"{len(claims)} claims from {title}, each with its verdict."), f"# {md_cell(title)}", ""]
    if sec:
        seed = data.kb.catalogue.seeds.get(sec.seed)
        src = md_cell(seed.title) if seed else md_plain(sec.seed)
        where = f"{md_plain(alias)} in " if alias else ""
        lines += [f"{where}*{src}* · [{md_cell(sec.group)}]({rel_path(page, group_md(sec.group))})", ""]
        if sec.blurb:
            lines += [md_cell(sec.blurb), ""]
    lines += [_counts_line(claims), ""]
    if not claims:
        return "\n".join(lines + ["No claims in this section yet.", ""])
    rows = [[H.claim_a(page, v.id, v.claim.title), badge(v.verdict) + (" ⚠ at risk" if v.at_risk else ""), v.claim.kind,
             html_text(", ".join(s.alias for s in v.claim.sources if s.alias))]
            for v in sorted(claims, key=lambda v: v.id)]
    lines += H.block(H.table(["Claim", "Verdict", "Kind", "Source"], rows, "pp-list"), search=False)
    return "\n".join(lines)


def group_page(data: SiteData, group: str, sids: list[str]) -> str:
    page = group_md(group)
    by = sections_of(data)
    lines = [front_matter(group, description=f"The sections of {group} and the verdicts of their claims."), f"# {md_cell(group)}", ""]
    seeds = {data.kb.catalogue.sections[s].seed for s in sids if data.kb.catalogue and s in data.kb.catalogue.sections}
    for seed in sorted(seeds):
        doc = data.kb.catalogue.seeds.get(seed)
        if doc:
            lines += [f"From *{md_cell(doc.title)}*.", ""]
    lines += ["| Section | Claims | Verdicts |", "|---|---|---|"]
    for sid in sids:
        title, alias = _section_title(data, sid)
        name = f"{md_plain(alias)} · {md_cell(title)}" if alias else md_cell(title)
        claims = by.get(sid, [])
        lines.append(f"| [{name}]({rel_path(page, section_md(sid))}) | {len(claims)} | {_counts_line(claims)} |")
    return "\n".join(lines) + "\n"


def groups_index(data: SiteData) -> str:
    page = "groups/index.md"
    lines = [front_matter("Claims by section", description="Every section of the source documents with its claims and verdicts."), "# Claims by section", "",
             "The sections follow the source documents the claims were read from. "
             "Each claim has a stable id; the source's own numbering is kept as an alias.", ""]
    by = sections_of(data)
    for group, sids in groups(data).items():
        lines += [f"## [{md_cell(group)}]({rel_path(page, group_md(group))})", ""]
        for sid in sids:
            title, alias = _section_title(data, sid)
            name = f"{md_plain(alias)} · {md_cell(title)}" if alias else md_cell(title)
            lines.append(f"- [{name}]({rel_path(page, section_md(sid))}) — {len(by.get(sid, []))} claims "
                         f"{_counts_line(by.get(sid, []))}")
        lines.append("")
    return "\n".join(lines)


def _changes(v: ClaimView) -> list[tuple[str, str, str, str]]:
    """(tier, from, to, when) for each verdict change in the recorded history."""
    out = []
    for tier, r in v.results.items():
        hist = [h for h in r.get("history") or [] if isinstance(h, dict)]
        for a, b in zip(hist, hist[1:]):
            if a.get("verdict") != b.get("verdict"):
                out.append((tier, str(a.get("verdict")), str(b.get("verdict")), str(b.get("finished_at") or "")))
    return out


def _by_section(data: SiteData, page: str, cols: list[str]) -> list[str]:
    rows = []
    by = sections_of(data)
    for group, sids in groups(data).items():
        for sid in sids:
            c = Counter(v.verdict for v in by.get(sid, []))
            title, alias = _section_title(data, sid)
            name = html_math(f"{group} · {alias + ' ' if alias else ''}{title}")
            home = page_url(page, "index.md")
            rows.append([H.a(page_url(page, section_md(sid)), name),
                         *(H.a(f"{home}#section={sid}&verdict={k}", str(c[k])) if c[k] else "" for k in cols),
                         H.a(f"{home}#section={sid}", str(sum(c.values())))])
    return H.block(H.table(["Section", *(badge(k) for k in cols), "Total"], rows), search=False)


def _verdict_changes(views: list[ClaimView], page: str) -> list[str]:
    changed = sorted(((v, ch) for v in views for ch in _changes(v)), key=lambda x: x[1][3], reverse=True)
    if not changed:
        return ["No recorded verdict has changed.", ""]
    rows = [[H.claim_a(page, v.id, v.claim.title), t, badge(a), badge(b), html_text(w)] for v, (t, a, b, w) in changed]
    return H.block(H.table(["Claim", "Tier", "From", "To", "When"], rows), search=False)


def _at_risk(views: list[ClaimView], page: str) -> list[str]:
    risky = [f"{H.claim_a(page, v.id, v.claim.title)} uses " + ", ".join(
        f"{H.a(page_url(page, claim_md(u)), html_text(u))} ({VERDICT_LABELS.get(w, w)})" for u, w in v.at_risk)
        for v in views if v.at_risk]
    return _listing(risky, "None.")


def dashboard_page(data: SiteData) -> str:
    """Counts by verdict and section, claims waiting for the full tier, changes, risks, problems."""
    page = "dashboard.md"
    views = list(data.views.values())
    total = Counter(v.verdict for v in views)
    cols = [k for k in ALL_VERDICTS if total[k]] or ["not-verified"]
    lines = [front_matter("Dashboard", description="How many claims hold, fail or wait for a run, by verdict and section."), "# Dashboard", "",
             f"**{len(views)} claims.** Downloads: [claims.json](claims.json) (every claim with its verdicts) · "
             "[references.bib](references.bib) (every cited work).", "",
             "## By verdict", "", "| Verdict | Claims |", "|---|---|"]
    lines += [f"| {badge(k)} | {H.a(f'index.html#verdict={k}', str(total[k]))} |" for k in ALL_VERDICTS
              if total[k]] + [f"| **Total** | {H.a('index.html', str(len(views)))} |", ""]
    lines += ["## By section", ""] + _by_section(data, page, cols)
    waiting = [f"{H.claim_a(page, v.id, v.claim.title)} — fast tier: {badge(v.verdict)}" for v in views if v.waiting_full]
    lines += ["## Waiting for a full-tier run", ""] + _listing(waiting, "None.")
    split = [f"{H.claim_a(page, v.id, v.claim.title)} — fast: {badge(v.tier_verdict('fast') or NOT_VERIFIED)}, "
             f"full: {badge(v.tier_verdict('full') or NOT_VERIFIED)}"
             + (f" — {html_text(v.claim.tiers_note.strip())}" if v.claim.tiers_note.strip() else " — not explained")
             for v in views if v.tiers_disagree]
    lines += ["## Tiers that disagree", ""] + _listing(split, "None: every claim gets the same verdict on both tiers.")
    lines += ["## Verdict changes", ""] + _verdict_changes(views, page)
    lines += ["## At risk", ""] + _at_risk(views, page)
    if data.kb.problems:
        lines += ["## Problems in the knowledge base", "",
                  f"{len(data.kb.problems)} problems; claims with a problem are left out of the site.", ""]
        lines += _listing([html_text(str(p)) for p in data.kb.problems[:200]], "")
    return "\n".join(lines)


def _source_errata(data: SiteData) -> list[str]:
    """Slips in the seed documents that no measurement shows (claims/_sections.yaml, 'errata')."""
    seeds = data.kb.catalogue.seeds if data.kb.catalogue else {}
    rows = [[html_text(doc.title), html_text(e.place), html_text(e.says), html_text(e.finding)]
            for doc in seeds.values() for e in doc.errata]
    if not rows:
        return []
    return (["## In the source documents", ""] +
            H.block(H.table(["Source", "Where", "The source says", "Finding"], rows), search=False))


def errata_page(data: SiteData) -> str:
    """Refuted checks where the source states a value, then every refuted claim."""
    page = "errata.md"
    lines = [front_matter("Errata", description="Statements in the sources that our measurements contradict."), "# Errata", "",
             "Where a source states something that our measurement contradicts. A check lands here when "
             "its outcome is *refuted* and the claim records what the source says.", "",
             "## Statements that do not hold", ""]
    rows = []
    for v in data.views.values():
        r = v.shown or {}
        for c in r.get("checks") or []:
            if isinstance(c, dict) and c.get("source_says") and c.get("outcome") == "refuted":
                measured = f"{fmt(c.get('measured'))} {c.get('unit') or ''}".strip()
                rows.append([H.claim_a(page, v.id, v.claim.title), html_text(c["source_says"]), html_text(measured),
                             html_text(c.get("rule", "")), html_text(v.shown_tier)])
    if rows:
        lines += H.block(H.table(["Claim", "The source says", "Measured", "Rule", "Tier"], rows), search=False)
    else:
        lines += ["None so far.", ""]
    lines += _source_errata(data)
    lines += ["## Refuted claims", ""]
    refuted = [f"{H.claim_a(page, v.id, v.claim.title)} — {html_math(plain_reason(v))}"
               for v in data.views.values() if v.verdict == "refuted"]
    return "\n".join(lines + _listing(refuted, "None so far."))


def graph_page(data: SiteData) -> str:
    page = "graph.md"
    ids = related_ids(data.views)
    legend = " ".join(
        f'<span class="pp-dot" style="background:{VERDICT_COLORS[k]}"></span> {html_text(VERDICT_LABELS[k])}'
        for k in ALL_VERDICTS)
    lines = [front_matter("Claim graph", description="Which claims build on or contest others, coloured by verdict."), "# Claim graph", "",
             "Claims are grouped by section. Grey arrows point from a claim to the claims it **uses**; "
             "dashed red curves join claims that **contest** each other. Hover over a node for the "
             f"claim's title; click it to open the claim. {len(ids)} of {len(data.views)} claims have a relation.", "",
             f'<p class="pp-legend">{legend}</p>', ""]
    titles = {sid: _section_title(data, sid)[0] for sids in groups(data).values() for sid in sids}
    svg = graph_svg(data.views, lambda c: page_url(page, claim_md(c)), titles)
    # A pp-block line: the hook keeps it away from Markdown and the search index (blocks.py).
    lines += [f'<div class="pp-block pp-nosearch"><div class="pp-graph-wrap">{svg}</div></div>' if svg
              else "No claim has a relation yet.", ""]
    return "\n".join(lines)


def _result_summary(r: dict[str, Any], v: ClaimView, tier: str) -> dict[str, Any]:
    key, value, _ = v.key_value(tier)
    prov = r.get("provenance") or {}
    return {"verdict": r.get("verdict"), "reason": r.get("reason"), "key": key, "value": value,
            "checks": r.get("checks") or [], "device": prov.get("device"), "commit": prov.get("commit"),
            "finished_at": prov.get("finished_at")}


def claims_json(data: SiteData) -> str:
    """Every claim with its stable id, its fields and its verdicts, as JSON."""
    out = []
    for cid, v in data.views.items():
        out.append({"id": cid, "file": v.file, "page": claim_md(cid)[:-3] + ".html",
                    **v.claim.model_dump(mode="json"),
                    "verdict": v.verdict, "verdict_tier": v.shown_tier, "verdict_reason": v.reason,
                    "tiers_agree": not v.tiers_disagree, "stale": v.stale, "scale": v.extra("scale") or None,
                    "replication": v.extra("replication") or None,
                    "at_risk": [u for u, _ in v.at_risk],
                    "results": {t: _result_summary(r, v, t) for t, r in sorted(v.results.items())}})
    # Compact: with indent, json falls back from its C encoder to pure Python (seconds at 1,000 claims).
    return json.dumps({"format": "principia-claims/1", "count": len(out), "claims": out},
                      separators=(",", ":"), sort_keys=True, ensure_ascii=False, default=str)


def nav(data: SiteData, about: list[str], others: list[str]) -> list[Any]:
    """The site navigation; claim pages stay out of it (index pages link them). `about` and
    `others` are hand-written pages, listed under 'About'."""
    claims: list[Any] = ["groups/index.md"]
    for group, sids in groups(data).items():
        entries: list[Any] = [group_md(group)]
        for sid in sids:
            title, alias = _section_title(data, sid)
            entries.append({html_text(f"{alias} · {title}" if alias else title): section_md(sid)})
        claims.append({html_text(group): entries})
    out: list[Any] = [{"Home": "index.md"}, {"Dashboard": "dashboard.md"}, {"Claims": claims},
                      {"Graph": "graph.md"}, {"Errata": "errata.md"}, {"Tags": "tags/index.md"},
                      {"Bibliography": "bibliography.md"}, {"Changelog": "changelog.md"}]
    if about or others:
        out.append({"About": [*about, *others]})
    return out
