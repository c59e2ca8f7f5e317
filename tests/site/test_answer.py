"""The site answers 'what holds, and how sure are we?': the home table, the bottom-line box,
plain-words reasons and 'what would change the verdict', read from the generated pages."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from principia.site import write_pages
from principia.site.model import load_site_data
from principia.site.plain import plain_reason
from principia.site.text import fmt_si


def _pages(root: Path) -> Path:
    return write_pages(root)


def _result(root: Path, name: str) -> tuple[Path, dict]:
    path = root / "results" / name
    return path, json.loads(path.read_text())


def _rows(md: str) -> dict[str, str]:
    return {m.group(1): m.group(0) for m in re.finditer(r'<tr [^>]*data-id="([^"]+)".*?</tr>', md)}


def test_home_lists_every_claim_with_its_verdict(kb_copy):
    """The home page has one row per claim, carrying its verdict, section and tags for the filters."""
    rows = _rows((_pages(kb_copy) / "index.md").read_text())
    assert len(rows) == 6
    assert 'data-verdict="supported"' in rows["fixture-closed"]
    assert 'data-verdict="not-verified"' in rows["fixture-unverified"]
    assert 'data-tags="scaling power-law"' in rows["fixture-run"] and 'data-section="how-scaling"' in rows["fixture-run"]


def test_home_keeps_the_hand_written_intro(kb_copy):
    """The hand-written docs/index.md text stays on the home page, with the table added."""
    md = (_pages(kb_copy) / "index.md").read_text()
    assert "executable knowledge base" in md and 'class="pp-claims"' in md


def test_home_flags_tiers_that_disagree(kb_copy):
    """When the fast and full tiers reach different verdicts, the row and the page say so."""
    path, r = _result(kb_copy, "fixture-closed.full.json")
    path.write_text(json.dumps({**r, "verdict": "refuted"}))
    docs = _pages(kb_copy)
    row = _rows((docs / "index.md").read_text())["fixture-closed"]
    assert 'data-disagree="1"' in row and "tiers disagree" in row
    assert "full: " in row and "fast: " in row
    assert "tiers disagree" in (docs / "claims" / "fixture-closed.md").read_text()


def test_dashboard_counts_link_into_the_home_table(kb_copy):
    """Each count on the dashboard opens the home table filtered to that verdict."""
    md = (_pages(kb_copy) / "dashboard.md").read_text()
    assert 'href="index.html#verdict=supported"' in md and 'href="index.html#verdict=untestable"' in md
    assert re.search(r'href="index.html#section=[\w-]+&amp;verdict=supported"|href="index.html#section=[\w-]+&verdict=supported"', md)


@pytest.mark.parametrize("cid", ["fixture-closed", "fixture-run", "fixture-open", "fixture-refuted", "fixture-unverified"])
def test_every_claim_page_opens_with_the_bottom_line(kb_copy, cid):
    """The bottom-line box comes right after the statement, before the evidence."""
    md = (_pages(kb_copy) / "claims" / f"{cid}.md").read_text()
    box = md.index("pp-bottomline")
    assert box < md.index('id="verdict"') if 'id="verdict"' in md else box > 0
    assert "In plain words" in md and "Verdict" in md


@pytest.mark.parametrize("cid", ["fixture-closed", "fixture-run", "fixture-refuted"])
def test_every_numeric_claim_says_what_would_change_the_verdict(kb_copy, cid):
    """Closed and run claims alike: how far a measured value must move to cross its boundary."""
    md = (_pages(kb_copy) / "claims" / f"{cid}.md").read_text()
    box = md[md.index("pp-bottomline"):]
    assert "What would change the verdict" in box and "would have to move by" in box


def test_reasons_are_sentences_not_rule_code(kb_copy):
    """The refuted fixture's reason names what was measured and what was expected, in words."""
    from principia.site.model import load_site_data
    v = load_site_data(kb_copy).views["fixture-refuted"]
    text = plain_reason(v)
    assert "came out at" in text and "expects" in text and not text.startswith("fails:")
    assert text.endswith(".")


def test_scale_and_replicates_come_from_the_result(kb_copy):
    """result['scale'] and result['replication'] (newer results) appear in the box and the table."""
    path, r = _result(kb_copy, "fixture-run.fast.json")
    r["scale"] = {"max_params": 12500, "max_tokens": 2_100_000, "data": ["synthetic Zipf language"]}
    r["replication"] = {"seeds": 5, "data_draws": 2, "reason": "two corpora"}
    path.write_text(json.dumps(r))
    docs = _pages(kb_copy)
    page = (docs / "claims" / "fixture-run.md").read_text()
    assert "up to 12.5k params, 2.1M tokens; data: synthetic Zipf language" in page
    assert "5 seeds, 2 data draws (two corpora)" in page
    assert "12.5k params" in _rows((docs / "index.md").read_text())["fixture-run"]


def test_old_results_without_the_new_fields_still_build(kb_copy):
    """A result without scale or replication says so rather than failing."""
    page = (_pages(kb_copy) / "claims" / "fixture-run.md").read_text()
    assert "not recorded for this result" in page


def test_stale_result_is_flagged(kb_copy):
    """A result judged under an earlier version of the claim carries a stale warning; a current
    one does not."""
    assert "Stale" not in (_pages(kb_copy) / "claims" / "fixture-closed.md").read_text()
    for tier in ("full", "fast"):
        path, r = _result(kb_copy, f"fixture-closed.{tier}.json")
        path.write_text(json.dumps({**r, "claim_hash": "0123456789abcdef"}))
    page = (_pages(kb_copy) / "claims" / "fixture-closed.md").read_text()
    assert "Stale" in page and "0123456789abcdef" in page


def test_a_current_fast_result_is_shown_before_a_stale_full_one(kb_copy):
    """The heavier tier is preferred only while it still judges the claim as it stands."""
    path, r = _result(kb_copy, "fixture-closed.full.json")
    path.write_text(json.dumps({**r, "claim_hash": "0123456789abcdef"}))
    data = load_site_data(kb_copy)
    view = data.views["fixture-closed"]
    assert view.shown_tier == "fast" and not view.stale


def test_device_is_not_in_the_verdict_line(kb_copy):
    """The verdict section opens with the verdict and its reason; the device is in provenance."""
    page = (_pages(kb_copy) / "claims" / "fixture-run.md").read_text()
    verdict = page.split('id="verdict"', 1)[1].split("</div>", 1)[0]
    device = json.loads((kb_copy / "results" / "fixture-run.fast.json").read_text())["provenance"]["device"]
    assert device not in verdict and device in page


def test_numbers_use_one_format():
    """Counts get SI suffixes with three significant figures."""
    assert [fmt_si(x) for x in (950, 12500, 2_100_000, 3.5e9, 1e12, 1e18)] == \
        ["950", "12.5k", "2.1M", "3.5B", "1T", "1e18"]


def test_dashboard_lists_tiers_that_disagree(kb_copy):
    """A claim whose fast and full verdicts differ is listed on the dashboard, flagged unexplained."""
    dash = (_pages(kb_copy) / "dashboard.md").read_text()
    assert "every claim gets the same verdict on both tiers" in dash
    path, r = _result(kb_copy, "fixture-closed.fast.json")
    path.write_text(json.dumps({**r, "verdict": "inconclusive"}))
    dash = (_pages(kb_copy) / "dashboard.md").read_text()
    listed = dash.split("## Tiers that disagree", 1)[1].split("##", 1)[0]
    assert "fixture-closed" in listed and "not explained" in listed


def test_a_ladder_shows_its_range_of_sizes(kb_copy):
    """With the ladder's smallest model recorded, the box says 'tested at <min>–<max> params'."""
    path, r = _result(kb_copy, "fixture-run.fast.json")
    r["scale"] = {"max_params": 160_000, "min_params": 1200, "max_tokens": 3_000_000,
                  "data": ["text:cpython-source", "markov:V64"]}
    path.write_text(json.dumps(r))
    page = (_pages(kb_copy) / "claims" / "fixture-run.md").read_text()
    assert "tested at 1.2k–160k params, 3M tokens; data: text:cpython-source, markov:V64" in page
