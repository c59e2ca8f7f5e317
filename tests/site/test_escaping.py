"""Hostile text in claim and result fields is shown as text: no tag, handler or script survives."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import markdown

from principia.site.mathml import convert_math
from principia.site.text import html_text, md_text, safe_url


class _Active(HTMLParser):
    """Collects what could run: event-handler attributes, javascript: URLs, script bodies."""

    def __init__(self) -> None:
        super().__init__()
        self.handlers: list[str] = []
        self.js_urls: list[str] = []
        self.scripts: list[str] = []
        self.tags: set[str] = set()
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self._in_script = tag == "script"
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append(f"{tag}.{name}")
            if value and re.sub(r"\s", "", value).lower().startswith("javascript:"):
                self.js_urls.append(value)

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)


def _active(html: str) -> _Active:
    p = _Active()
    p.feed(html)
    return p


def test_hostile_claim_page_runs_nothing(built_site):
    """The hostile fixture's page has no event handler, javascript: URL or injected script."""
    html = (built_site / "claims" / "fixture-hostile.html").read_text(encoding="utf-8")
    found = _active(html)
    assert found.handlers == [] and found.js_urls == []
    assert not [s for s in found.scripts if "alert(" in s]
    assert not {"iframe", "b", "u", "i"} & found.tags
    # The only images are the figures the site drew (files named by their content hash).
    assert all(re.fullmatch(r'<img src="\.\./figures/[0-9a-f]{16}\.svg" alt="[^"<>]*"', i)
               for i in re.findall(r'<img [^>]*?alt="[^"]*"', html))


def test_hostile_title_is_shown_as_text(built_site):
    """A <script> tag in the title appears, escaped, in the heading and the window title."""
    html = (built_site / "claims" / "fixture-hostile.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    title = re.search(r"<title>(.*?)</title>", html, re.S).group(1)
    assert "<" not in title and "&lt;/title&gt;" in title


def test_no_site_page_carries_hostile_markup(built_site):
    """Index pages that list the hostile claim (sections, dashboard, bibliography) stay inert too."""
    for page in built_site.rglob("*.html"):
        found = _active(page.read_text(encoding="utf-8"))
        assert found.handlers == [] and found.js_urls == [], page.name
        assert not [s for s in found.scripts if "alert(" in s], page.name


def test_math_in_hostile_text_is_still_math(built_site):
    """'$x < y$' in an escaped statement still becomes MathML with a less-than sign."""
    html = (built_site / "claims" / "fixture-hostile.html").read_text(encoding="utf-8")
    assert re.search(r"<math[^>]*>.*?<mo>&lt;</mo>.*?</math>", html)


def test_markdown_text_cannot_make_links_or_attributes():
    """md_text output converted by Markdown yields no link, attribute list or raw tag."""
    out = markdown.Markdown(extensions=["attr_list", "md_in_html"]).convert(
        md_text('x [a](javascript:alert(1)) <b onclick="y">z</b>\n{: onclick="alert(2)" }'))
    found = _active(out)
    assert found.tags == {"p"} and found.handlers == [] and found.js_urls == []


def test_markdown_text_keeps_list_markers_literal():
    """A claim line starting with '- ' or '1. ' is not turned into a list."""
    out = markdown.markdown(md_text("- one\n\n1. two"))
    assert "<li>" not in out and "<ul>" not in out and "<ol>" not in out


def test_html_text_escapes_dollars_and_newlines():
    """Raw-HTML text escapes markup, '$' (no math) and newlines (blocks stay one line)."""
    assert html_text('<a href="x">$5</a>\n') == "&lt;a href=&quot;x&quot;&gt;&#36;5&lt;/a&gt;&#10;"
    assert convert_math(html_text("$x$ and $y$")) == html_text("$x$ and $y$")


def test_safe_url_accepts_only_http_and_https():
    """Only http(s) URLs without quotes or spaces pass; javascript:, data: and relative ones do not."""
    assert safe_url("https://arxiv.org/abs/2001.08361") == "https://arxiv.org/abs/2001.08361"
    for bad in ("javascript:alert(1)", "data:text/html,x", "//evil.example", "/local", 'https://x"onmouseover=1'):
        assert safe_url(bad) == ""
