"""Slips in the seed documents that no measurement can show are listed on the errata page."""
from __future__ import annotations

from principia.site.model import load_site_data
from principia.site.pages import errata_page
from tests.conftest import ROOT


def test_errata_page_lists_the_empty_deepnet_link():
    """The principles list's empty DeepNet link appears with the source's words and the fix."""
    page = errata_page(load_site_data(ROOT))
    assert "## In the source documents" in page
    assert "[DeepNet: Scaling Transformers to 1,000 Layers]()" in page and "2203.00555" in page
