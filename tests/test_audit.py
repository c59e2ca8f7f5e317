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


def _check_cli(root, *args: str):
    import subprocess, sys
    from tests.conftest import ROOT
    return subprocess.run([sys.executable, "-m", "principia", "--root", str(root), "check", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_strict_check_fails_naming_a_claim_edited_after_its_result(kb_root):
    """Editing a decision without re-recording makes `check --strict` exit non-zero, naming it;
    plain `check` only warns."""
    write_claim(kb_root, "tiny", claim_text())
    verify(kb_root, ["tiny"])
    assert _check_cli(kb_root, "--strict").returncode == 0
    write_claim(kb_root, "tiny", claim_text().replace("rel_tol: 0.1", "rel_tol: 0.2"))
    loose, strict = _check_cli(kb_root), _check_cli(kb_root, "--strict")
    assert loose.returncode == 0 and "tiny.fast.json is stale" in loose.stderr
    assert strict.returncode == 1 and "claims/tiny.yaml" in strict.stderr


def test_unexplained_tier_disagreement_fails_strict_check(kb_root):
    """Fast and full verdicts that differ need a 'tiers_note'; with one, strict check passes."""
    from principia.check import report_findings
    from principia.loader import load_kb
    import io, json
    write_claim(kb_root, "tiny", claim_text())
    verify(kb_root, ["tiny"])
    res = kb_root / "results" / "tiny.fast.json"
    full = {**json.loads(res.read_text()), "tier": "full", "verdict": "refuted"}
    (kb_root / "results" / "tiny.full.json").write_text(json.dumps(full))
    assert report_findings(load_kb(kb_root), strict=True, out=io.StringIO()) == 1
    write_claim(kb_root, "tiny", claim_text() + "tiers_note: \"The full tier reaches the regime.\"\n")
    assert report_findings(load_kb(kb_root), strict=True, out=io.StringIO()) == 0


def test_result_carries_replication_and_scale_and_short_replication_is_an_error():
    """Replication and scale are lifted to the result; too few draws for the declared rule errs."""
    from principia.verify import decide_result, _reported
    ev = {"measured": {"x": {"value": 1.0}}, "replication": {"data_draws": 1, "seeds": 3, "reason": ""},
          "scale": {"max_params": 10, "max_tokens": 100, "data": ["markov"]}}
    assert _reported(ev) == {"replication": ev["replication"], "scale": ev["scale"]}
    data = yaml.safe_load(claim_text())
    data["decision"]["replication"] = {"min_data_draws": {"fast": 2}}
    got = decide_result(Claim.model_validate(data), ev, None, "fast")
    assert got["verdict"] == "error" and "at least 2" in got["reason"]


def test_amended_after_counts_runs_judged_by_another_version():
    """History entries with another claim hash are counted; unhashed old entries are not."""
    from principia.audit import amended_after
    c = _claim()
    hist = [{"verdict": "supported"}, {"claim_hash": "a" * 16}, {"claim_hash": "b" * 16},
            {"claim_hash": claim_hash(c)}]
    assert amended_after(c, {"history": hist}) == 2
    assert amended_after(c, None) == 0
