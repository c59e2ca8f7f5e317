"""Every testable claim can fail: `check` requires a falsifier and checks the part it names."""
from __future__ import annotations

from principia.check import check
from tests.conftest import claim_text, write_claim


def test_closed_claim_without_falsifier_is_rejected(kb_root):
    """A closed-form claim with no `falsify` entry is a problem naming the file and the field."""
    write_claim(kb_root, "no-falsifier", claim_text().replace('falsify: [{params: {}, why: "a fixture: never run"}]\n', ""))
    problems = [str(p) for p in check(kb_root, import_verifiers=False).problems]
    assert any("no-falsifier.yaml" in p and "falsify" in p for p in problems), problems


def test_run_claim_without_falsifier_is_rejected(kb_root):
    """A run claim (trained, not closed-form) with no `falsify` entry is rejected too."""
    text = claim_text().replace("kind: closed", "kind: run").replace(
        'falsify: [{params: {}, why: "a fixture: never run"}]\n', "")
    write_claim(kb_root, "run-no-falsifier", text)
    problems = [str(p) for p in check(kb_root, import_verifiers=False).problems]
    assert any("run-no-falsifier.yaml" in p and "falsify" in p and "'run'" in p for p in problems), problems


def test_open_claim_needs_no_falsifier(kb_root):
    """An open claim, which has no verifier to perturb, is not asked for a falsifier."""
    text = claim_text().replace("kind: closed", "kind: open").replace(
        'falsify: [{params: {}, why: "a fixture: never run"}]\n', "")
    write_claim(kb_root, "open-no-falsifier", text)
    problems = [str(p) for p in check(kb_root, import_verifiers=False).problems]
    assert not any("open-no-falsifier.yaml" in p and "falsify" in p for p in problems), problems


def test_falsifier_part_must_name_a_checks_part(kb_root):
    """A falsifier that names a part no check has is rejected."""
    text = claim_text().replace('why: "a fixture: never run"}', 'why: "a fixture", part: "nowhere"}')
    write_claim(kb_root, "stray-part", text)
    problems = [str(p) for p in check(kb_root, import_verifiers=False).problems]
    assert any("stray-part.yaml" in p and "nowhere" in p for p in problems), problems


def test_claim_with_falsifier_passes(kb_root):
    """The fixture claim, which declares a falsifier, has no problem."""
    write_claim(kb_root, "fine", claim_text())
    assert check(kb_root, import_verifiers=False).ok


def _run_without_falsifier(reason: str) -> str:
    text = claim_text().replace("kind: closed", "kind: run").replace(
        'falsify: [{params: {}, why: "a fixture: never run"}]\n', "")
    return text + f"no_falsifier: {reason!r}\n" if reason else text


def test_a_run_claim_may_explain_why_it_has_no_falsifier_yet(kb_root):
    """A run claim with a substantial 'no_falsifier' explanation passes; a token one does not."""
    long = ("Tried a source with one topic (ratio 1.0000, not above 1) and flat slopes (not "
            "available in the lab); a fixed-lag copy source is the next candidate.")
    write_claim(kb_root, "explained", _run_without_falsifier(long))
    write_claim(kb_root, "shrug", _run_without_falsifier("none found"))
    problems = [str(p) for p in check(kb_root, import_verifiers=False).problems]
    assert not any("explained.yaml" in p for p in problems), problems
    assert any("shrug.yaml" in p and "no_falsifier" in p for p in problems), problems


def test_no_falsifier_is_only_for_run_claims_without_one(kb_root):
    """A closed claim cannot excuse itself, nor can a claim that already declares falsifiers."""
    text = claim_text() + "no_falsifier: 'a closed claim can always be perturbed, so this is refused.'\n"
    write_claim(kb_root, "closed-excuse", text)
    problems = [str(p) for p in check(kb_root, import_verifiers=False).problems]
    assert any("closed-excuse.yaml" in p and "no_falsifier" in p for p in problems), problems
