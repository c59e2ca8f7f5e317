"""Escaping and number formatting shared by every page writer.

Claim text is data, never markup: anything a claim says is shown as text. In Markdown context
the characters that could start markup are written as numeric character references, which
Markdown passes through untouched and the browser shows literally. ``$`` stays, so the math
hook still finds ``$...$`` (it unescapes the references inside the math before converting).
"""
from __future__ import annotations

import html
import json
import math
import re
from typing import Any

__all__ = ["md_text", "md_cell", "md_plain", "rel_path", "html_text", "html_math", "fmt", "fmt_si", "fmt_measure", "safe_url", "short",
           "page_url", "VERDICT_LABELS", "badge", "slug", "claim_md", "section_md", "front_matter"]

# Characters that start inline markup, links, HTML, tables or code in Python-Markdown.
_MD_SPECIAL = {c: f"&#{ord(c)};" for c in "&<>[]\\`*_|{}#!~^"}
_MD_RE = re.compile("[" + re.escape("".join(_MD_SPECIAL)) + "]")
# A line that would start a list, quote, heading or rule keeps its first character as text.
_LINE_START = re.compile(r"^(\s*)([-+*=]+|\d+[.)])(?=\s|$)")

VERDICT_LABELS = {
    "supported": "supported", "partly-supported": "partly supported",
    "inconclusive": "inconclusive", "refuted": "refuted", "untestable": "untestable",
    "error": "error", "not-verified": "not yet verified",
}


def md_text(s: Any) -> str:
    """Claim text as literal Markdown: one paragraph, markup characters escaped."""
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", str(s))]
    out = []
    for p in paragraphs:
        if not p:
            continue
        p = _MD_RE.sub(lambda m: _MD_SPECIAL[m.group()], p)
        p = _LINE_START.sub(lambda m: m.group(1) + "".join(f"&#{ord(c)};" for c in m.group(2)), p)
        out.append(p)
    return "\n\n".join(out)


def md_cell(s: Any) -> str:
    """Claim text inside a Markdown table cell (one line, '|' escaped)."""
    return md_text(s).replace("\n\n", " ")


def html_text(s: Any) -> str:
    """Text for raw HTML/SVG; '$' is escaped too so the math hook never touches it."""
    return html.escape(str(s), quote=True).replace("$", "&#36;").replace("\r", "").replace("\n", "&#10;")


def html_math(s: Any) -> str:
    """Claim prose for raw HTML: escaped, but '$...$' is kept for the math hook."""
    return html.escape(" ".join(str(s).split()), quote=True)


def fmt(x: Any, digits: int = 4) -> str:
    """A number with `digits` significant digits; NaN/inf and non-numbers as text."""
    if x is None:
        return "—"
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, str):
        try:
            x = float(x)
        except ValueError:
            return x
    if isinstance(x, int):
        return f"{x:,}" if abs(x) >= 10_000 else str(x)
    if not isinstance(x, float):
        return str(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if x.is_integer() and abs(x) < 1e15:
        return fmt(int(x))
    return f"{x:.{digits}g}".replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")


_SI = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k"))


def fmt_si(x: Any, digits: int = 3) -> str:
    """A count with an SI-style suffix ('1.2M', '35B', '950'): for parameters, tokens, FLOPs."""
    if not isinstance(x, (int, float)) or isinstance(x, bool) or not math.isfinite(x):
        return fmt(x, digits)
    if abs(x) >= 1e15:  # beyond T, powers of ten read better than thousands of T
        return f"{x:.{digits}g}".replace("e+0", "e").replace("e+", "e")
    for size, suffix in _SI:
        if abs(x) >= size:
            return f"{x / size:.{digits}g}{suffix}"
    return fmt(x, digits)


def fmt_measure(value: Any, lo: Any = None, hi: Any = None, unit: str = "") -> str:
    """'4.01 [3.9, 4.1] GB' (interval only when known)."""
    s = fmt(value)
    if lo is not None and hi is not None:
        s += f" [{fmt(lo)}, {fmt(hi)}]"
    return f"{s} {unit}".strip()


def safe_url(url: Any) -> str:
    """The URL when it is http(s), else '' (no javascript:, data:, relative tricks)."""
    u = str(url or "").strip()
    return u if re.fullmatch(r"https?://[^\s<>\"'`]+", u) else ""


def short(h: Any, n: int = 10) -> str:
    return str(h)[:n] if h else "—"


def rel_path(from_page: str, to_page: str) -> str:
    """Relative path between two files of the docs folder ('claims/a.md', 'sections/b.md')."""
    src = from_page.split("/")[:-1]
    dst = to_page.split("/")
    i = 0
    while i < len(src) and i < len(dst) - 1 and src[i] == dst[i]:
        i += 1
    return "/".join([".."] * (len(src) - i) + dst[i:])


def page_url(from_page: str, to_page: str) -> str:
    """Relative .html URL between two .md pages, for raw HTML (use_directory_urls: false)."""
    return rel_path(from_page, to_page)[:-3] + ".html"


def md_plain(s: Any) -> str:
    """Text that is never math (units, rules, locators): '$' escaped as well."""
    return md_cell(s).replace("$", "&#36;")


def slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-") or "group"


def badge(verdict: str) -> str:
    """A verdict badge as raw inline HTML (a fixed vocabulary; unknown words are escaped)."""
    v = verdict if verdict in VERDICT_LABELS else "error"
    label = VERDICT_LABELS.get(verdict, html_text(verdict))
    return f'<span class="pp-badge pp-{v}">{label}</span>'


def claim_md(cid: str) -> str:
    return f"claims/{cid}.md"


def section_md(sid: str) -> str:
    """Section ids are keys of _sections.yaml: kept to safe file-name characters."""
    return "sections/" + (re.sub(r"[^a-z0-9-]", "-", sid.lower()).strip("-") or "section") + ".md"


def front_matter(title: str, edit_url: str = "", description: str = "", extra: dict[str, Any] | None = None) -> str:
    """YAML front matter (JSON values); the title is HTML-escaped because themes print it
    unescaped. `description` feeds the page's meta description and Open Graph tags."""
    t = html_text(title.replace("$", ""))
    lines = [f"title: {json.dumps(t, ensure_ascii=False)}", f"edit_url: {json.dumps(edit_url)}"]
    if description:
        d = " ".join(description.split())
        d = d if len(d) <= 200 else d[:199].rsplit(" ", 1)[0] + "…"
        lines.append(f"description: {json.dumps(d, ensure_ascii=False)}")
    for k, x in (extra or {}).items():
        lines.append(f"{k}: {json.dumps(x, ensure_ascii=False)}")
    return "---\n" + "\n".join(lines) + "\n---\n"
