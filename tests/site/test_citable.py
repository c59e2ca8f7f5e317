"""The built site is citable and findable: BibTeX per claim, versions and changelog, sitemap,
descriptions, licences; search ranks titles and tags, shows no TeX, skips boilerplate; tags link
to pages; the claim graph keeps its edges clear of nodes."""
from __future__ import annotations

import json
import math
import re

from principia import __version__
from principia.site import write_pages
from principia.site.model import load_site_data
from principia.site.graph import NODE_X, R, graph_svg
from principia.site.search import tex_plain


def _claim_pages(site):
    return sorted((site / "claims").glob("*.html"))


def test_every_claim_page_has_a_bibtex_citation(built_site):
    """Each claim page carries 'Cite this claim' with a BibTeX entry naming its id and version."""
    for page in _claim_pages(built_site):
        html = page.read_text(encoding="utf-8")
        assert f"@misc{{principia:{page.stem}," in html, page.name
        assert f"version = {{{__version__}}}" in html


def test_sitemap_lists_every_page(built_site):
    """site_url is set, so sitemap.xml names every page of the site (404 aside)."""
    locs = re.findall(r"<loc>([^<]+)</loc>", (built_site / "sitemap.xml").read_text())
    pages = [p for p in built_site.rglob("*.html") if p.name != "404.html"]
    assert len(locs) == len(pages) and any(u.endswith("claims/fixture-run.html") for u in locs)


def test_claim_pages_have_their_own_description_and_open_graph_tags(built_site):
    """The meta description of a claim page is its statement (no TeX), and OG tags are set."""
    descs = {}
    for page in _claim_pages(built_site):
        html = page.read_text(encoding="utf-8")
        descs[page.stem] = re.search(r'<meta name="description" content="([^"]*)"', html).group(1)
        assert '<meta property="og:title"' in html and '<meta property="og:url"' in html
    assert len(set(descs.values())) == len(descs)
    assert "$" not in descs["fixture-run"] and "Test loss falls as a power law" in descs["fixture-run"]


def test_licence_and_version_are_on_every_page(built_site):
    """The footer names the version and both licences; the licence page exists."""
    html = (built_site / "index.html").read_text(encoding="utf-8")
    assert f"Principia {__version__}" in html and "MIT" in html and "CC BY 4.0" in html
    assert "CC BY 4.0" in (built_site / "about" / "licence.html").read_text(encoding="utf-8")


def test_changelog_lists_verdict_changes(kb_copy):
    """A verdict change in a result's history appears in the changelog with its version."""
    path = kb_copy / "results" / "fixture-closed.full.json"
    r = json.loads(path.read_text())
    r["history"] = [{"finished_at": "2026-01-01T00:00:00+00:00", "verdict": "refuted", "commit": "a" * 40},
                    {"finished_at": "2026-02-01T00:00:00+00:00", "verdict": "supported", "commit": "b" * 40}]
    path.write_text(json.dumps(r))
    md = (write_pages(kb_copy) / "changelog.md").read_text()
    assert "fixture-closed.html" in md and "2026-02-01" in md and __version__ in md


def test_search_index_ranks_tags_and_skips_boilerplate(built_site):
    """Claim pages give their tags and id to the index; no TeX and no edit link in the text."""
    docs = json.loads((built_site / "search" / "search_index.json").read_text())["docs"]
    run = next(d for d in docs if d["location"] == "claims/fixture-run.html")
    assert {"scaling", "power-law", "fixture-run"} <= set(run.get("tags") or [])
    used = next(d for d in docs if d["location"] == "claims/fixture-refuted.html")  # fixture-closed uses it
    assert used.get("boost", 1) > run.get("boost", 1)  # among equal matches, the claim others build on first
    text = " ".join(d["text"] for d in docs)
    assert "Edit this claim" not in text
    assert not re.search(r"\$[^$]*\\[a-z]+", text) and "\\alpha" not in text


def test_tex_becomes_plain_characters():
    """Snippets and descriptions read 'L ∝ N^-α', not '$L \\propto N^{-\\alpha}$'."""
    assert tex_plain(r"Loss $L \propto N^{-\alpha_N}$ and $$C \approx 6ND$$") == "Loss L ∝ N^-α_N and C ≈ 6ND"


def test_tags_link_to_pages_listing_their_claims(built_site):
    """A claim page's tags are links; each tag page lists the claims carrying it."""
    html = (built_site / "claims" / "fixture-run.html").read_text(encoding="utf-8")
    assert 'href="../tags/scaling.html"' in html
    tag = (built_site / "tags" / "scaling.html").read_text(encoding="utf-8")
    assert "fixture-run.html" in tag and "fixture-closed.html" not in tag


def _curve_points(d: str):
    m = re.fullmatch(r"M([\d.]+) ([\d.]+)Q([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+)", d)
    x0, y0, cx, cy, x1, y1 = map(float, m.groups())
    for i in range(1, 100):
        t = i / 100
        yield ((1 - t) ** 2 * x0 + 2 * t * (1 - t) * cx + t * t * x1,
               (1 - t) ** 2 * y0 + 2 * t * (1 - t) * cy + t * t * y1)


def test_graph_edges_stay_clear_of_other_nodes(kb_copy):
    """No edge passes through a node it does not join, and the graph is narrower than a column."""
    data = load_site_data(kb_copy)
    svg = graph_svg(data.views, lambda c: f"{c}.html")
    nodes = [(float(x), float(y)) for x, y in re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)"', svg)]
    assert nodes and all(x == NODE_X for x, _ in nodes)
    for d in re.findall(r'<path d="(M[^"]+Q[^"]+)"', svg):
        ends = {float(v) for v in re.findall(r"M[\d.]+ ([\d.]+)Q[\d.]+ [\d.]+ [\d.]+ ([\d.]+)", d)[0]}
        for px, py in _curve_points(d):
            for nx, ny in nodes:
                if ny not in ends:
                    assert math.hypot(px - nx, py - ny) > R, f"edge {d} crosses the node at y={ny}"
    width = float(re.search(r'<svg[^>]*width="([\d.]+)"', svg).group(1))
    assert width <= 690
    assert "fixture-refuted" in svg and "…" not in svg  # whole ids, no truncation
