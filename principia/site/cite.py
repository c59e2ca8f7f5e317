"""Making claims citable: a 'Cite this claim' block per page and a changelog of verdicts.

A citation names the claim's stable id, the site's version (the package version), the commit
and date of the result it reports, and its URL when the configuration declares ``site_url``.
The changelog is generated from the recorded result histories: every verdict change, newest
first, grouped by the engine version that recorded it when the history says so.
"""
from __future__ import annotations

import re
from typing import Any

from .. import __version__
from . import htmlparts as H
from .model import ClaimView, SiteData
from .text import badge, claim_md, front_matter, html_text, short

__all__ = ["VERSION", "claim_bibtex", "cite_block", "changelog_page", "plain_title"]

VERSION = __version__
MAX_CHANGES = 500


def plain_title(title: str) -> str:
    """A title without TeX markers: '$L \\propto N^{-\\alpha}$' -> 'L ∝ N^-α' (roughly)."""
    from .search import tex_plain  # one TeX-to-text rule for citations and search snippets
    return tex_plain(title)


def _bib(s: str) -> str:
    s = s.replace("\\", " ").replace("{", "(").replace("}", ")")
    return re.sub(r"([&%$#_])", r"\\\1", s)


def _when(v: ClaimView) -> tuple[str, str]:
    prov = (v.shown or {}).get("provenance") or {}
    date = str(prov.get("finished_at") or "")[:10]
    return date, str(prov.get("commit") or "")


def claim_bibtex(v: ClaimView, site_url: str = "") -> str:
    """One BibTeX entry for a claim at this version (its key: principia:<id>)."""
    date, commit = _when(v)
    year = date[:4] if date else ""
    note = (f"Principia claim {v.id}, version {VERSION}, verdict {v.verdict}"
            + (f" ({v.shown_tier} tier)" if v.shown_tier else "") + (f", commit {short(commit, 12)}" if commit else ""))
    fields = [("title", "{" + _bib(plain_title(v.claim.title)) + "}"), ("author", "{Principia contributors}")]
    fields += [("year", year)] if year else []
    fields += [("version", VERSION), ("note", _bib(note))]
    if date:
        fields.append(("date", date))
    if site_url:
        fields.append(("url", site_url.rstrip("/") + "/" + claim_md(v.id)[:-3] + ".html"))
    body = ",\n".join(f"  {k} = {{{x}}}" for k, x in fields)
    return f"@misc{{principia:{v.id},\n{body}\n}}\n"


def cite_block(v: ClaimView, site_url: str = "") -> list[str]:
    """'Cite this claim': a sentence and the BibTeX entry (kept out of the search index)."""
    date, commit = _when(v)
    url = site_url.rstrip("/") + "/" + claim_md(v.id)[:-3] + ".html" if site_url else ""
    line = (f"Principia contributors. “{html_text(plain_title(v.claim.title))}”. Principia claim "
            f"<code>{html_text(v.id)}</code>, version {VERSION}"
            + (f", result of {html_text(date)}" if date else "")
            + (f", commit <code>{html_text(short(commit, 12))}</code>" if commit else "")
            + (f". {H.ext(url, html_text(url))}" if url else "") + ".")
    bib = f'<pre class="pp-bibtex"><code>{html_text(claim_bibtex(v, site_url))}</code></pre>'
    return H.block(f"<p>{line}</p>{bib}", search=False, head="Cite this claim")


def _changes(v: ClaimView, version: str) -> list[dict[str, Any]]:
    out = []
    for tier, r in v.results.items():
        hist = [h for h in r.get("history") or [] if isinstance(h, dict)]
        for a, b in zip(hist, hist[1:]):
            if a.get("verdict") != b.get("verdict"):
                out.append({"claim": v, "tier": tier, "from": str(a.get("verdict")), "to": str(b.get("verdict")),
                            "when": str(b.get("finished_at") or ""), "commit": str(b.get("commit") or ""),
                            "version": str(b.get("engine") or b.get("version") or version)})
    return out


def changelog_page(data: SiteData) -> str:
    """Every recorded verdict change, newest first, grouped by version."""
    page = "changelog.md"
    found = sorted((c for v in data.views.values() for c in _changes(v, f"principia {VERSION}")),
                   key=lambda c: c["when"], reverse=True)[:MAX_CHANGES]
    lines = [front_matter("Changelog", description="Every change of a claim's verdict, by version and date."),
             "# Changelog", "",
             f"This is version **{VERSION}** of the knowledge base. Below, every change of a claim's verdict "
             "that the results' histories record, newest first.", ""]
    if not found:
        return "\n".join(lines + ["No recorded verdict has changed yet.", ""])
    for version in dict.fromkeys(c["version"] for c in found):
        rows = [[H.claim_a(page, c["claim"].id, c["claim"].claim.title), c["tier"], badge(c["from"]),
                 badge(c["to"]), html_text(c["when"][:10]), f"<code>{html_text(short(c['commit'], 8))}</code>"]
                for c in found if c["version"] == version]
        lines += [f"## {html_text(version)}", ""]
        lines += H.block(H.table(["Claim", "Tier", "From", "To", "Date", "Commit"], rows), search=False)
    return "\n".join(lines)
