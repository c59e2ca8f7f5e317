"""What the site shows per claim: which tier's verdict, open and unverified claims, risk."""
from __future__ import annotations

import json

from principia.site.model import load_site_data
from benchmarks.synthetic_kb import make_synthetic_kb


def test_full_tier_verdict_is_shown_when_recorded(kb_copy):
    """With fast and full results, the full tier's verdict is the one shown."""
    path = kb_copy / "results" / "fixture-closed.full.json"
    r = json.loads(path.read_text())
    path.write_text(json.dumps({**r, "verdict": "inconclusive"}))
    v = load_site_data(kb_copy).views["fixture-closed"]
    assert (v.shown_tier, v.verdict) == ("full", "inconclusive")
    assert v.results["fast"]["verdict"] == "supported"


def test_open_claim_without_result_is_untestable_with_its_reason(kb_copy):
    """An open claim with no result file reads 'untestable' with the claim's own reason."""
    v = load_site_data(kb_copy).views["fixture-open"]
    assert v.verdict == "untestable" and "far larger" in v.reason


def test_claim_without_result_is_not_verified(kb_copy):
    """A testable claim with no result file reads 'not-verified'."""
    assert load_site_data(kb_copy).views["fixture-unverified"].verdict == "not-verified"


def test_risk_passes_along_uses_chains(kb_copy):
    """A claim is at risk when it uses a refuted claim directly or through another claim."""
    text = (kb_copy / "claims" / "fixture-unverified.yaml").read_text()
    (kb_copy / "claims" / "fixture-unverified.yaml").write_text(text + "relations: {uses: [fixture-closed]}\n")
    views = load_site_data(kb_copy).views
    assert views["fixture-closed"].at_risk == [("fixture-refuted", "refuted")]
    assert views["fixture-unverified"].at_risk == [("fixture-closed", "at risk")]
    assert views["fixture-run"].at_risk == []


def test_synthetic_kb_loads_cleanly(tmp_path):
    """The benchmark generator writes claims that validate, with results for the testable ones."""
    data = load_site_data(make_synthetic_kb(tmp_path, 24))
    assert not data.kb.problems and len(data.views) == 24
    verdicts = {v.verdict for v in data.views.values()}
    assert {"supported", "refuted", "untestable", "error", "partly-supported", "inconclusive"} <= verdicts
