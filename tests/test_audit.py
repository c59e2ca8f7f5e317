"""The audit trail: results name the claim version that judged them; edits make them stale."""
from __future__ import annotations

import yaml

from principia.audit import claim_hash, is_stale, stale_reason, tiers_agree
from principia.schema import Claim
from principia.store import ResultStore
from principia.verify import verify
from tests.conftest import claim_text, write_claim


def _claim(text: str | None = None) -> Claim:
    return Claim.model_validate(yaml.safe_load(text or claim_text()))


def test_prose_edits_keep_the_hash():
    """Wording, tags and notes are not verdict inputs, so they do not change the hash."""
    data = yaml.safe_load(claim_text())
    before = claim_hash(Claim.model_validate(data))
    data.update(statement="The same rule, said again in other words here.", notes="typo fixed")
    assert claim_hash(Claim.model_validate(data)) == before


def test_decision_and_param_edits_change_the_hash():
    """Editing the rule, a parameter or a tier gives a new hash."""
    data = yaml.safe_load(claim_text())
    before = claim_hash(Claim.model_validate(data))
    data["decision"]["checks"][0]["rel_tol"] = 0.2
    assert claim_hash(Claim.model_validate(data)) != before
    data = yaml.safe_load(claim_text())
    data["tiers"]["full"] = {"n": 3}
    assert claim_hash(Claim.model_validate(data)) != before


def test_result_is_stale_when_its_hash_differs():
    """A result carrying another claim version's hash is stale; the current one is not."""
    c = _claim()
    assert not is_stale(c, {"claim_hash": claim_hash(c), "tier": "fast"})
    assert is_stale(c, {"claim_hash": "0" * 16, "tier": "fast"})
    assert "0000" in stale_reason(c, {"claim_hash": "0" * 16})


def test_absent_result_is_not_stale():
    """No result means nothing to be stale (check reports missing results elsewhere)."""
    assert not is_stale(_claim(), None)


def test_tiers_agree_compares_verdicts():
    """Tiers agree when their verdicts match or one of them is missing."""
    assert tiers_agree({"verdict": "supported"}, {"verdict": "supported"})
    assert not tiers_agree({"verdict": "supported"}, {"verdict": "refuted"})
    assert tiers_agree({"verdict": "supported"}, None)


def test_verify_records_the_hash_in_result_and_history(kb_root):
    """A verified result and its newest history entry carry the claim's hash, and are current."""
    write_claim(kb_root, "tiny", claim_text())
    verify(kb_root, ["tiny"])
    got = ResultStore(kb_root / "results").fetch("tiny", "fast")
    c = _claim()
    assert got["claim_hash"] == claim_hash(c) == got["history"][-1]["claim_hash"]
    assert not is_stale(c, got)
