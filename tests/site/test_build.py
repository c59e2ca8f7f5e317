"""The full MkDocs build of a small fixture knowledge base: pages, math, links, offline."""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from principia.site import SiteError, build_site


class _Refs(HTMLParser):
    """Every (tag, attribute, value) of script src, link href, a href and element ids."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        if tag == "link" and dict(attrs).get("rel") == "canonical":  # names the page's address, loads nothing
            return
        for name, value in attrs:
            if name == "id" and value:
                self.ids.add(value)
            if (tag, name) in {("script", "src"), ("link", "href"), ("a", "href"), ("img", "src")} and value:
                self.refs.append((tag, name, value))


def _parse(path: Path) -> _Refs:
    p = _Refs()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def test_claim_page_shows_verdict_and_math(built_site):
    """A claim page exists as HTML, shows its verdict badge and has MathML."""
    html = (built_site / "claims" / "fixture-closed.html").read_text(encoding="utf-8")
    assert 'class="pp-badge pp-supported"' in html
    assert "<math" in html and "<msup>" in html
    assert "ppblock-" not in html and "<!--ppb:" not in html


def test_no_script_or_stylesheet_comes_from_another_host(built_site):
    """No page loads a script or stylesheet (or any <link>) from an http(s) URL: the site is offline."""
    remote = [(p.name, tag, v) for p in built_site.rglob("*.html") for tag, attr, v in _parse(p).refs
              if tag in ("script", "link", "img") and re.match(r"(?i)(https?:)?//", v)]
    assert remote == []


def test_every_internal_link_resolves(built_site):
    """Each relative link (raw HTML ones too) points at a file of the site, and its anchor exists."""
    broken, ids = [], {}
    for page in built_site.rglob("*.html"):
        if page.name == "404.html":  # absolute links, by design of the theme
            continue
        for tag, _, href in _parse(page).refs:
            u = urlsplit(href)
            if tag != "a" or u.scheme or href.startswith("//") or not (u.path or u.fragment):
                continue
            if "=" in u.fragment:  # a filter of the home table (index.html#verdict=refuted), not an anchor
                u = u._replace(fragment="")
            target = (page.parent / unquote(u.path)).resolve() if u.path else page
            if not target.is_file():
                broken.append((page.name, href))
            elif u.fragment and target.suffix == ".html" and \
                    u.fragment not in ids.setdefault(target, _parse(target).ids):
                broken.append((page.name, href))
    assert broken == []


def test_no_edit_link_without_a_declared_repository(built_site):
    """The project declares no repository, so no page links to one to edit it."""
    for page in built_site.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert 'rel="edit"' not in html and "Edit this claim" not in html, page.name


def test_edit_link_opens_the_yaml_when_the_repository_is_declared(kb_copy):
    """With repo_url and edit_uri declared in the configuration, a claim page edits its YAML."""
    from principia.site import write_pages
    (kb_copy / "mkdocs.yml").write_text("repo_url: https://example.org/kb\nedit_uri: edit/main/docs/\n")
    md = (write_pages(kb_copy) / "claims" / "fixture-run.md").read_text(encoding="utf-8")
    assert 'edit_url: "https://example.org/kb/edit/main/claims/fixture-run.yaml"' in md


def test_uses_of_a_refuted_claim_is_flagged_at_risk(built_site):
    """A claim that uses a refuted claim shows the 'At risk' warning."""
    html = (built_site / "claims" / "fixture-closed.html").read_text(encoding="utf-8")
    assert "At risk" in html and "fixture-refuted.html" in html


def test_errata_list_the_refuted_source_statement(built_site):
    """The errata page quotes the source's refuted statement next to the measurement."""
    html = (built_site / "errata.html").read_text(encoding="utf-8")
    assert "Adam takes 12 bytes per parameter" in html and "fixture-refuted.html" in html


def test_claims_json_exports_every_claim_with_its_verdict(built_site):
    """claims.json lists every claim by id with its shown verdict and tier."""
    data = json.loads((built_site / "claims.json").read_text(encoding="utf-8"))
    got = {c["id"]: (c["verdict"], c["verdict_tier"]) for c in data["claims"]}
    assert got["fixture-closed"] == ("supported", "full")
    assert got["fixture-open"] == ("untestable", None)
    assert got["fixture-unverified"] == ("not-verified", None)
    assert data["count"] == len(got) == 6


def test_bibtex_holds_each_cited_work(built_site):
    """references.bib has one entry per cited reference key."""
    bib = (built_site / "references.bib").read_text(encoding="utf-8")
    assert sorted(re.findall(r"^@\w+\{([^,]+),", bib, re.M)) == ["ieee754", "kaplan2020"]


def test_dashboard_counts_claims_by_verdict(built_site):
    """The dashboard shows the total and lists a claim waiting for its full tier."""
    html = (built_site / "dashboard.html").read_text(encoding="utf-8")
    assert "6 claims." in html
    waiting = html.split('id="waiting-for-a-full-tier-run"', 1)[1].split("</ul>", 1)[0]
    assert "fixture-run.html" in waiting and "fixture-closed.html" not in waiting


def test_graph_page_draws_the_relations(built_site):
    """The graph page holds an SVG with a node linking to each related claim."""
    html = (built_site / "graph.html").read_text(encoding="utf-8")
    svg = re.search(r"<svg[^>]*pp-graph.*?</svg>", html, re.S).group(0)
    assert {"claims/fixture-run.html", "claims/fixture-open.html", "claims/fixture-refuted.html"} <= \
        set(re.findall(r'href="([^"]+)"', svg))


def test_claim_pages_stay_out_of_the_navigation(built_site):
    """Section pages are in the navigation; claim pages are not (they are linked from sections)."""
    html = (built_site / "sections" / "how-scaling.html").read_text(encoding="utf-8")
    nav = html.split('class="md-nav md-nav--primary"', 1)[1].split('class="md-nav md-nav--secondary"', 1)[0]
    assert 'href="how-scaling.html"' in nav and "claims/" not in nav


def test_search_index_holds_claim_text_but_no_figures(built_site):
    """The local search index has the claim statements and none of the SVG markup."""
    index = (built_site / "search" / "search_index.json").read_text(encoding="utf-8")
    assert "Stored in 32-bit floating point" in index
    assert "<svg" not in index and "stroke-width" not in index


def test_strict_build_refuses_a_knowledge_base_with_problems(kb_copy):
    """A claim that does not validate stops a strict build with a message naming its file."""
    (kb_copy / "claims" / "broken-claim.yaml").write_text("title: no\n")
    with pytest.raises(SiteError, match="broken-claim.yaml"):
        build_site(kb_copy)


def test_home_page_lists_every_claim_and_loads_its_local_filter_script(built_site):
    """site/index.html has a row per claim with its verdict, and the table script is a local file."""
    html = (built_site / "index.html").read_text(encoding="utf-8")
    rows = re.findall(r'<tr [^>]*data-verdict="([\w-]+)"[^>]*data-id="([\w-]+)"', html)
    assert len(rows) == 6 and ("supported", "fixture-closed") in rows
    assert re.search(r'<script src="javascripts/claims\.js', html) and (built_site / "javascripts" / "claims.js").is_file()
