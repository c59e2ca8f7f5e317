"""Keep a claim page's raw HTML blocks away from Markdown and the search indexer.

A generated page writes each section as one line ``<div class="pp-block">…</div>``. Python-
Markdown, MkDocs' anchor scan and Material's search indexer would each parse that HTML tag by
tag, which was most of a 1,000-claim build. So the hook:

1. before Markdown, swaps each run of consecutive blocks for a one-word placeholder paragraph;
2. after Markdown (before the search plugin reads the page), puts in a light copy of each block:
   its heading and its plain text (formulas as plain characters); blocks marked ``pp-nosearch``
   (figures, data, parameters, provenance, history, relations) are left out of the index;
3. in the finished page, replaces each light copy with the full blocks, formulas as MathML.
"""
from __future__ import annotations

import re

from .mathml import convert_math
from .search import tex_plain

__all__ = ["BLOCK_RE", "NOSEARCH", "stash", "light", "restore", "headings"]

BLOCK_RE = re.compile(r'^<div class="pp-block(?: pp-nosearch)?">.*</div>$', re.M)
_RUN_RE = re.compile(r'^<div class="pp-block(?: pp-nosearch)?">.*</div>(?:\n+<div class="pp-block'
                     r'(?: pp-nosearch)?">.*</div>)*$', re.M)
NOSEARCH = '<div class="pp-block pp-nosearch">'
_TOKEN_RE = re.compile(r"<p>ppblock-(\d+)</p>")
_MARK_RE = re.compile(r"<!--ppb:(\d+)-->.*?<!--/ppb:\1-->", re.S)
_H2_RE = re.compile(r'<h2 id="([^"]+)">(.*?)<a class="headerlink"[^>]*>[^<]*</a></h2>')
_TAG_RE = re.compile(r"<[^>]*>")


def stash(markdown: str) -> tuple[str, list[list[str]]]:
    """Markdown with each run of blocks replaced by a placeholder paragraph, and the runs."""
    runs: list[list[str]] = []

    def keep(m: re.Match[str]) -> str:
        runs.append(BLOCK_RE.findall(m.group(0)))
        return f"ppblock-{len(runs) - 1}"

    return _RUN_RE.sub(keep, markdown), runs


def _light_block(block: str) -> str:
    """A block's heading and plain text: all the search index needs, in three tags."""
    if block.startswith(NOSEARCH):
        return ""
    head = _H2_RE.search(block)
    body = _H2_RE.sub(" ", block)
    text = tex_plain(" ".join(_TAG_RE.sub(" ", body).split()))  # snippets show text, not TeX
    h2 = f'<h2 id="{head.group(1)}">{head.group(2)}</h2>' if head else ""
    return f"{h2}<p>{text}</p>" if text else h2


def light(html: str, runs: list[list[str]]) -> str:
    """Page HTML with placeholders replaced by marked light copies (for the search index)."""
    if not runs:
        return html

    def put(m: re.Match[str]) -> str:
        i = int(m.group(1))
        if i >= len(runs):
            return m.group(0)
        return f"<!--ppb:{i}-->{''.join(_light_block(b) for b in runs[i])}<!--/ppb:{i}-->"

    return _TOKEN_RE.sub(put, html)


def restore(output: str, runs: list[list[str]]) -> str:
    """The finished page with every marked copy replaced by its full blocks, math as MathML."""
    if not runs:
        return output
    return _MARK_RE.sub(lambda m: "\n".join(convert_math(b) for b in runs[int(m.group(1))]), output)


def headings(runs: list[list[str]]) -> list[tuple[str, str]]:
    """(id, title HTML) of each section heading the blocks hold, for the page's toc."""
    return [(m.group(1), m.group(2)) for run in runs for b in run for m in _H2_RE.finditer(b)]
