"""The built site in a real browser (headless Chromium via Playwright): pages render, math and
figures are drawn, search finds a claim, hostile text stays text, and no request leaves the site."""
from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.conftest import ROOT, add_fixture_verifiers, claim_text, write_claim

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
if CHROMIUM is None:
    pytest.skip("headless Chromium is not installed (apt-get install chromium); "
                ".ci/run installs it", allow_module_level=True)

XSS_TITLE = "<script>window.pwned=1</script> Hostile <b>title</b>"
XSS_STATEMENT = ('An <img src=x onerror="window.pwned=2"> statement with math $L = E + A/N^\\alpha$ '
                 'and a [link](javascript:window.pwned=3).')
SHOTS = ROOT / "build" / "screenshots"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A small knowledge base (one hostile claim, one normal one), verified and built."""
    from principia.site.build import build_site
    from principia.verify import verify
    root = tmp_path_factory.mktemp("kb")
    (root / "claims").mkdir()
    for name in ("_sections.yaml", "_references.yaml"):
        shutil.copy(ROOT / "claims" / name, root / "claims" / name)
    shutil.copy(ROOT / "mkdocs.yml", root / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", root / "docs")
    (root / "principia").symlink_to(ROOT / "principia")
    add_fixture_verifiers(root)  # a claim may name only its own knowledge base's verifiers
    text = claim_text("good").replace('"A tiny claim for tests"', repr(XSS_TITLE).replace("'", '"'))
    text = text.replace('"The measured value x is about one, as the fixture says."',
                        "'" + XSS_STATEMENT.replace("'", "''") + "'")
    write_claim(root, "hostile-text", text)
    write_claim(root, "plain-claim", claim_text("good"))
    verify(root)
    # A stale result (judged under another version of the claim) adds a warning line to the page.
    path = root / "results" / "hostile-text.fast.json"
    path.write_text(path.read_text().replace('"claim_hash": "', '"claim_hash": "0ld', 1))
    return build_site(root)


@pytest.fixture(scope="module")
def server(site):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    pg = browser.new_page()
    pg.requests = []  # type: ignore[attr-defined]
    pg.dialogs = []  # type: ignore[attr-defined]
    pg.on("request", lambda r: pg.requests.append(r.url))
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    yield pg
    pg.close()


def _claim_url(server: str, site: Path, cid: str) -> str:
    (found,) = [p for p in site.rglob(f"{cid}.html")]
    return f"{server}/{found.relative_to(site).as_posix()}"


def test_claim_page_renders_math_and_verdict(page, server, site):
    """A claim page shows its verdict and draws its math as MathML."""
    page.goto(_claim_url(server, site, "plain-claim"))
    assert "supported" in page.inner_text("article").lower()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(_claim_url(server, site, "hostile-text"))
    maths = page.locator("article math")
    assert maths.count() >= 1
    box = maths.first.bounding_box()
    assert box and box["width"] > 5 and box["height"] > 5, "MathML is not drawn"
    page.screenshot(path=str(SHOTS / "claim.png"), full_page=True)


def test_hostile_text_is_shown_not_executed(page, server, site):
    """HTML and scripts written in claim fields appear as text and never run."""
    page.goto(_claim_url(server, site, "hostile-text"))
    page.wait_for_load_state("networkidle")
    assert "<script>window.pwned=1</script>" in page.inner_text("body")
    assert page.evaluate("window.pwned") is None
    assert not page.dialogs
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
    assert not [h for h in hrefs if h.strip().lower().startswith("javascript:")]


def test_search_finds_a_claim(page, server):
    """The built-in local search finds a claim by a word of its title."""
    page.goto(f"{server}/index.html")
    page.wait_for_load_state("networkidle")
    page.keyboard.press("/")  # Material's shortcut opens and focuses the search box
    page.keyboard.type("Hostile", delay=50)
    page.wait_for_selector(".md-search-result__item", timeout=20000)
    assert "hostile" in page.inner_text(".md-search-result").lower()


def test_no_request_leaves_the_site(page, server, site):
    """Loading pages (with search and fonts) makes no request to another host."""
    for url in (f"{server}/index.html", _claim_url(server, site, "hostile-text")):
        page.goto(url)
        page.wait_for_load_state("networkidle")
    hosts = {urlparse(u).hostname for u in page.requests if urlparse(u).scheme in ("http", "https")}
    assert hosts <= {"127.0.0.1"}, hosts


def _shoot(page, name: str, width: int) -> None:
    """A full-page screenshot under build/screenshots (kept by CI as an artifact)."""
    page.set_viewport_size({"width": width, "height": 900})
    page.wait_for_load_state("networkidle")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)


@pytest.mark.parametrize("width", [1280, 390])
def test_screenshots_of_home_run_claim_and_graph(page, server, site, width):
    """The home page, a run claim's page and the graph, at desktop and phone widths."""
    page.goto(f"{server}/index.html")
    _shoot(page, "home", width)
    page.goto(_claim_url(server, site, "plain-claim"))
    _shoot(page, "run-claim", width)
    page.goto(f"{server}/graph.html")
    _shoot(page, "graph", width)
    assert (SHOTS / f"graph-{width}.png").is_file()


def test_no_claim_page_scrolls_sideways_on_a_phone(page, server, site):
    """At 390 px no claim page is wider than the screen (wide tables scroll inside themselves)."""
    page.set_viewport_size({"width": 390, "height": 800})
    wide = []
    for path in sorted((site / "claims").glob("*.html")):
        page.goto(f"{server}/claims/{path.name}")
        over = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        if over > 1:
            wide.append((path.name, over))
        # An identifier in a table stays on one line (the table scrolls instead of breaking it).
        broken = page.eval_on_selector_all(".pp-table-wrap code", "cs => cs.filter(c => c.getClientRects().length > 1"
                                           " || c.getBoundingClientRect().height > 2 * parseFloat(getComputedStyle(c).fontSize))"
                                           ".map(c => c.textContent)")
        wide += [(path.name, b) for b in broken]
    assert wide == []


def test_home_table_lists_every_claim_and_filters(page, server, site):
    """Every claim is a row of the home table; choosing a verdict hides the other rows."""
    page.goto(f"{server}/index.html")
    rows = page.locator("table.pp-claims tbody tr")
    n = len(list((site / "claims").glob("*.html")))
    assert rows.count() == n
    page.select_option('select[data-filter="verdict"]', "refuted")
    shown = page.locator("table.pp-claims tbody tr:not([hidden])")
    assert all(v == "refuted" for v in shown.evaluate_all("rs => rs.map(r => r.dataset.verdict)"))
    assert "of %d claims shown" % n in page.inner_text(".pp-shown")


def test_dashboard_count_opens_the_filtered_home_table(page, server):
    """Clicking a verdict count on the dashboard shows only that verdict's claims on the home page."""
    page.goto(f"{server}/dashboard.html")
    link = page.locator('a[href^="index.html#verdict="]').first
    verdict = link.get_attribute("href").split("verdict=")[1]
    link.click()
    page.wait_for_load_state("load")
    assert page.locator('select[data-filter="verdict"]').input_value() == verdict
    verdicts = page.locator("table.pp-claims tbody tr:not([hidden])").evaluate_all("rs => rs.map(r => r.dataset.verdict)")
    assert verdicts and set(verdicts) == {verdict}


def test_home_filter_works_from_the_file_system(page, site):
    """Opened as a file (no server at all), the table still filters: it needs no network."""
    page.goto((site / "index.html").as_uri() + "#verdict=supported")
    verdicts = page.locator("table.pp-claims tbody tr:not([hidden])").evaluate_all("rs => rs.map(r => r.dataset.verdict)")
    assert verdicts and set(verdicts) == {"supported"}
