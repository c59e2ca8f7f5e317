"""The bibliography page and a BibTeX file of every cited work."""
from __future__ import annotations

import re

from ..schema import Reference
from . import htmlparts as H
from .model import SiteData
from .text import badge, front_matter, html_text, md_cell, md_plain, safe_url

__all__ = ["cited", "bibliography_page", "bibtex", "bibtex_entry", "ref_link", "ref_label", "ref_anchor"]


def cited(data: SiteData) -> dict[str, list[tuple[str, str]]]:
    """Reference key -> [(claim id, locator)] over all claims, in key order."""
    out: dict[str, list[tuple[str, str]]] = {}
    for cid, v in data.views.items():
        for c in v.claim.citations:
            out.setdefault(c.ref, []).append((cid, c.locator))
    return dict(sorted(out.items()))


def ref_anchor(key: str) -> str:
    """The bibliography page's anchor of a reference key."""
    return "ref-" + re.sub(r"[^A-Za-z0-9_-]", "-", key)


def ref_label(ref: Reference) -> str:
    """'arXiv:2001.08361', or the host name of the reference's URL."""
    return f"arXiv:{ref.arxiv}" if ref.arxiv else re.sub(r"^https?://(www\.)?", "", ref.link()).split("/")[0]


def ref_link(ref: Reference) -> str:
    """'[arXiv:2001.08361](https://arxiv.org/abs/2001.08361)' or the URL; '' when unsafe."""
    url = safe_url(ref.link())
    return f"[{md_cell(ref_label(ref))}](<{url}>)" if url else ""


def _sort_key(item: tuple[str, Reference | None]) -> tuple[str, int, str]:
    key, ref = item
    return ((ref.authors if ref else key).lower(), ref.year if ref else 0, key)


def bibliography_page(data: SiteData, page: str = "bibliography.md") -> str:
    """Markdown: each cited work, then the claims that cite it with their locators (one raw
    HTML list per work: Python-Markdown is slow on long lists)."""
    refs = data.kb.references
    uses = cited(data)
    lines = [front_matter("Bibliography", description="Every work the claims cite, with the claims that cite it."), "# Bibliography", "",
             f"{len(uses)} works are cited by the claims. Download them all as "
             "[BibTeX](references.bib).", ""]
    for key, ref in sorted(((k, refs.get(k)) for k in uses), key=_sort_key):
        lines.append(f"## {md_plain(key)} {{ #{ref_anchor(key)} }}")
        lines.append("")
        if ref is None:
            lines += ["*Not found in the references files.*", ""]
        else:
            venue = f" *{md_cell(ref.venue)}*." if ref.venue else ""
            link = ref_link(ref)
            lines += [f"{md_cell(ref.authors)} ({ref.year}). **{md_cell(ref.title)}**.{venue} {link}".rstrip(), ""]
        items = [f"{H.claim_a(page, cid, data.views[cid].claim.title)} "
                 f"{badge(data.views[cid].verdict)} — {html_text(loc)}" for cid, loc in uses[key]]
        lines += H.block(H.ul(items), search=False)
    return "\n".join(lines)


def _bib_escape(s: str) -> str:
    """BibTeX field text: braces balanced away, specials escaped."""
    s = s.replace("\\", " ").replace("{", "(").replace("}", ")")
    return re.sub(r"([&%$#_])", r"\\\1", s)


def bibtex_entry(key: str, ref: Reference) -> str:
    authors = " and ".join(a.strip() for a in ref.authors.split(",") if a.strip() and a.strip() != "et al.")
    if "et al" in ref.authors:
        authors += " and others"
    fields = [("title", "{" + _bib_escape(ref.title) + "}"), ("author", _bib_escape(authors)),
              ("year", str(ref.year))]
    if ref.venue:
        fields.append(("journal", _bib_escape(ref.venue)))
    if ref.arxiv:
        fields += [("eprint", ref.arxiv), ("archivePrefix", "arXiv")]
    url = safe_url(ref.link())
    if url:
        fields.append(("url", url))
    kind = "article" if ref.venue else "misc"
    body = ",\n".join(f"  {name} = {{{val}}}" for name, val in fields)
    return f"@{kind}{{{key},\n{body}\n}}\n"


def bibtex(data: SiteData) -> str:
    """Every cited work that is in the references files, as BibTeX."""
    refs = data.kb.references
    return "\n".join(bibtex_entry(k, refs[k]) for k in cited(data) if k in refs)
