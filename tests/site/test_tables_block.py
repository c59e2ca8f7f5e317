"""The published-data block of a claim page."""
from __future__ import annotations

from types import SimpleNamespace
from urllib.parse import unquote

from principia.site.tables_block import tables_block
from tests.conftest import ROOT


def _view(tables: list[str]):
    return SimpleNamespace(claim=SimpleNamespace(tables=tables)), SimpleNamespace(kb=SimpleNamespace(root=ROOT))


def test_claims_without_tables_get_no_block():
    """A measured claim's page has no published-data block."""
    v, data = _view([])
    assert tables_block(v, data, "claims/x.md") == []


def test_block_marks_reanalysis_and_offers_the_csv():
    """The block says it is a re-analysis, shows the locator and offers the exact CSV."""
    v, data = _view(["wei2022emergent/table1"])
    html = "".join(tables_block(v, data, "claims/emergence-scale.md"))
    assert "Re-analysis of published data" in html and "Table 1" in html
    href = html.split('href="data:text/csv;charset=utf-8,', 1)[1].split('"', 1)[0]
    assert unquote(href) == (ROOT / "data/wei2022emergent/table1.csv").read_text(encoding="utf-8")


def test_unconfirmed_values_are_flagged():
    """Rows not confirmed against the paper say so in the shown table."""
    v, data = _view(["longpre2023/toxicity_filters"])
    html = "".join(tables_block(v, data, "claims/inverse-toxicity-filter.md"))
    assert "not confirmed" in html and "34 of 34 rows not confirmed" in html


def test_unreadable_table_is_named_not_raised():
    """A table that cannot be loaded is named on the page instead of breaking the build."""
    v, data = _view(["wei2022emergent/absent"])
    assert "could not be read" in "".join(tables_block(v, data, "claims/x.md"))
