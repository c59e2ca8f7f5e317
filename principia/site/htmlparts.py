"""Small HTML builders for generated pages (their arguments are already-escaped HTML).

A page section written as one raw HTML block (``block``) skips Python-Markdown, which spends
most of a large site's build on inline markup, tables and lists (see blocks.py).
"""
from __future__ import annotations

import re
from typing import Iterable

from .text import claim_md, html_math, html_text, page_url, safe_url

__all__ = ["table", "ul", "paras", "a", "claim_a", "ext", "h2", "block"]


def table(head: Iterable[str], rows: Iterable[Iterable[str]], cls: str = "") -> str:
    c = f' class="{cls}"' if cls else ""
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{d}</td>" for d in r) + "</tr>" for r in rows)
    # The wrapper scrolls a wide table sideways instead of widening the page (390 px phones).
    return f'<div class="pp-table-wrap"><table{c}><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>'


def ul(items: Iterable[str]) -> str:
    return "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def paras(text: str) -> str:
    return "".join(f"<p>{html_math(p)}</p>" for p in re.split(r"\n\s*\n", text) if p.strip())


def a(href: str, text: str) -> str:
    return f'<a href="{html_text(href)}">{text}</a>'


def claim_a(page: str, cid: str, title: str) -> str:
    """A link from `page` to a claim's page, its title's '$...$' kept for the math hook."""
    return a(page_url(page, claim_md(cid)), html_math(title))


def ext(url: str, text: str) -> str:
    u = safe_url(url)
    return f'<a href="{html_text(u)}">{text}</a>' if u else text


def h2(title: str) -> str:
    """A section heading as the toc extension writes it (the hook adds it to the page's toc)."""
    hid = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return (f'<h2 id="{hid}">{html_text(title)}<a class="headerlink" href="#{hid}" '
            f'title="Permanent link">&para;</a></h2>')


def block(*parts: str, head: str = "", search: bool = True) -> list[str]:
    """One raw HTML block on a single line, then a blank line (see blocks.py for why)."""
    html = "".join(p for p in parts if p).replace("\n", " ")
    if not (html or head):
        return []
    cls = "pp-block" if search else "pp-block pp-nosearch"
    return [f'<div class="{cls}">{h2(head) if head else ""}{html}</div>', ""]
