"""The 'published data' block of a claim page: the transcribed tables a claim re-analyses.

A claim of kind 'published' is judged from numbers others measured; its page says so, shows each
table with its locators and confirmation status, and offers the CSV as a download (a data: link,
so the site stays one folder of pages that works offline and needs no extra build step).
"""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

from ..tables import Table, load_table
from . import htmlparts as H
from .bib import ref_anchor
from .text import html_text, page_url

__all__ = ["tables_block"]

MAX_ROWS_SHOWN = 200


def _cell(x: Any) -> str:
    if isinstance(x, bool):
        return "yes" if x else "<strong>not confirmed</strong>"
    if isinstance(x, float):
        return html_text(f"{x:.4g}")
    return html_text(str(x))


def _one(table: Table, page: str) -> str:
    m = table.meta
    cols = list(m.columns) + ["locator", "confirmed"]
    head = [html_text(c + (f" ({m.columns[c].unit})" if c in m.columns and m.columns[c].unit != "none" else ""))
            for c in cols]
    rows = [[_cell(r[c]) for c in cols] for r in table.rows[:MAX_ROWS_SHOWN]]
    read = "printed values" if m.method == "printed" else f"read off a plot ({html_text(m.precision)})"
    ref = H.a(f"{page_url(page, 'bibliography.md')}#{ref_anchor(m.reference)}", html_text(m.reference))
    name = table.key.replace("/", "-") + ".csv"
    csv = (f'<a download="{html_text(name)}" href="data:text/csv;charset=utf-8,{quote(table.csv_text)}">'
           f"{html_text(name)}</a>")
    status = (f"{table.unconfirmed} of {len(table.rows)} rows not confirmed against the paper's text"
              if table.unconfirmed else f"all {len(table.rows)} rows confirmed against the paper's text")
    return (f"<h3>{html_text(m.title)}</h3><p>From {ref}, {html_text(m.locator)}; {read}; {status}. "
            f"Download: {csv} (<code>data/{html_text(table.key)}.csv</code>).</p>"
            + (f"<p>{html_text(m.notes)}</p>" if m.notes else "") + H.table(head, rows))


def tables_block(v: Any, data: Any, page: str) -> list[str]:
    """Page lines for a published claim's tables; nothing for other claims or unreadable tables."""
    keys = getattr(v.claim, "tables", None) or []
    if not keys:
        return []
    parts = ['<div class="admonition info"><p class="admonition-title">Re-analysis of published data</p>'
             "<p>This verdict comes from numbers printed in the cited papers, transcribed below, not "
             "from a measurement of ours.</p></div>"]
    for key in keys:
        table, _ = load_table(data.kb.root, key)
        parts.append(_one(table, page) if table else f"<p>Table {html_text(key)} could not be read.</p>")
    return H.block(*parts, head="Published data", search=False)
