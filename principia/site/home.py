"""The home page (every claim with its verdict per tier, filterable) and one page per tag.

The table is plain HTML that reads well without JavaScript; ``docs/javascripts/claims.js`` adds
sorting and the verdict / section / tag filters (offline, no library). A filter can be set from
the URL (``index.html#verdict=refuted``), which is how the dashboard's counts link into it.
"""
from __future__ import annotations

import re
from collections import Counter

from . import htmlparts as H
from .bottomline import scale_text, tier_badges
from .model import ClaimView, SiteData
from .pages import ALL_VERDICTS, _section_title, groups, sections_of, verdict_link
from .plain import plain_reason
from .search import tex_plain
from .text import VERDICT_LABELS, badge, front_matter, html_math, html_text, page_url, section_md

__all__ = ["home_page", "claims_table", "tag_md", "tag_pages", "tags_index", "tag_links", "verdict_link", "MARKER"]

MARKER = "<!-- claims-table -->"  # where docs/index.md wants the table; else it goes at the top


def tag_md(tag: str) -> str:
    return "tags/" + (re.sub(r"[^a-z0-9-]", "-", tag.lower()) or "tag") + ".md"


def _options(name: str, label: str, items: list[tuple[str, str]]) -> str:
    opts = "".join(f'<option value="{html_text(k)}">{html_text(t)}</option>' for k, t in items)
    return (f'<label>{label} <select data-filter="{name}"><option value="">all</option>{opts}</select></label>')


def _controls(data: SiteData) -> str:
    verdicts = [(k, VERDICT_LABELS[k]) for k in ALL_VERDICTS] + [("disagree", "tiers disagree")]
    secs = [(sid, _section_title(data, sid)[0]) for sids in groups(data).values() for sid in sids]
    tags = sorted({t for v in data.views.values() for t in v.claim.tags})
    return (f'<div class="pp-filters" role="search">{_options("verdict", "Verdict", verdicts)} '
            f'{_options("section", "Section", secs)} {_options("tag", "Tag", [(t, t) for t in tags])} '
            f'<label>Text <input type="search" data-filter="text" placeholder="words in title or id"></label> '
            f'<output class="pp-shown"></output></div>')


def _row(v: ClaimView, sid: str, sec_title: str, page: str) -> str:
    verdicts = " ".join(f"{t}:{v.tier_verdict(t)}" for t in ("fast", "full") if t in v.results)
    tags = " ".join(v.claim.tags)
    attrs = (f'data-verdict="{html_text(v.verdict)}" data-tiers="{html_text(verdicts)}" '
             f'data-section="{html_text(sid)}" data-tags="{html_text(tags)}" '
             f'data-disagree="{1 if v.tiers_disagree else 0}" data-id="{html_text(v.id)}"')
    title = f'{H.claim_a(page, v.id, v.claim.title)}<br><code class="pp-id">{html_text(v.id)}</code>'
    order = ALL_VERDICTS.index(v.verdict) if v.verdict in ALL_VERDICTS else len(ALL_VERDICTS)
    cells = [(title, tex_plain(v.claim.title).lower()), (tier_badges(v, "<br>"), str(order)),
             (html_math(plain_reason(v)), ""), (html_text(scale_text(v)) or "—", ""),
             (H.a(page_url(page, section_md(sid)), html_text(sec_title)), sec_title.lower())]
    tds = "".join(f'<td data-sort="{html_text(k)}">{c}</td>' if k else f"<td>{c}</td>" for c, k in cells)
    return f"<tr {attrs}>{tds}</tr>"


def claims_table(data: SiteData, page: str) -> str:
    rows = [_row(v, sid, _section_title(data, sid)[0], page)
            for sid, views in sections_of(data).items() for v in sorted(views, key=lambda v: v.id)]
    head = "".join(f'<th data-col="{i}"><button type="button">{h}</button></th>'
                   for i, h in enumerate(["Claim", "Verdict (per tier)", "Why, in plain words", "Scale tested", "Section"]))
    return (f'<div class="pp-table-wrap"><table class="pp-claims"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def home_page(data: SiteData, intro: str) -> str:
    """The hand-written intro with the claims table at its marker (or right after its title)."""
    page = "index.md"
    total = Counter(v.verdict for v in data.views.values())
    disagree = sum(v.tiers_disagree for v in data.views.values())
    counts = " ".join(verdict_link(page, k, total[k]) for k in ALL_VERDICTS if total[k])
    if disagree:
        counts += f' {H.a("#verdict=disagree", f"⚠ tiers disagree {disagree}")}'
    block = "\n".join(H.block(f'<p class="pp-counts"><strong>{len(data.views)} claims:</strong> {counts}</p>',
                              _controls(data), claims_table(data, page), search=False))
    if MARKER in intro:
        body = intro.replace(MARKER, block, 1)
    else:
        head, _, rest = intro.partition("\n\n")
        body = f"{head}\n\n{block}\n{rest}" if head.startswith("# ") else f"# Principia\n\n{block}\n{intro}"
    desc = "Every claim about training large language models that Principia checks, with its verdict."
    return front_matter("Principia", description=desc) + body


def tag_pages(data: SiteData) -> dict[str, str]:
    """tags/<tag>.md -> a page listing the tag's claims with their verdicts."""
    by: dict[str, list[ClaimView]] = {}
    for v in data.views.values():
        for t in v.claim.tags:
            by.setdefault(t, []).append(v)
    out = {}
    for tag, views in sorted(by.items()):
        page = tag_md(tag)
        items = [f"{H.claim_a(page, v.id, v.claim.title)} {badge(v.verdict)}" for v in views]
        out[page] = "\n".join([front_matter(f"Tag: {tag}", description=f"Claims tagged '{tag}' and their verdicts."),
                               f"# Tag: {html_text(tag)}", "", f"{len(views)} claims.", "",
                               *H.block(H.ul(items), search=False),
                               f"[All tags]({'index.md'})", ""])
    return out


def tags_index(data: SiteData) -> str:
    counts = Counter(t for v in data.views.values() for t in v.claim.tags)
    items = [H.a(page_url("tags/index.md", tag_md(t)), html_text(t)) + f" ({n})" for t, n in sorted(counts.items())]
    return "\n".join([front_matter("Tags", description="Every tag with the number of claims it marks."),
                      "# Tags", "", *H.block(H.ul(items), search=False)])


def tag_links(page: str, tags: list[str]) -> str:
    return " ".join(H.a(page_url(page, tag_md(t)), html_text(t)) for t in tags)
