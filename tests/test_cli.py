"""The command line: exit codes, messages naming file and field, and the read-only commands."""
from __future__ import annotations

import json

from principia.cli import main
from tests.conftest import ROOT, claim_text, write_claim


def test_check_passes_on_the_real_knowledge_base(capsys):
    """`principia check` accepts every claim in the repository."""
    assert main(["--root", str(ROOT), "check"]) == 0
    assert "ok:" in capsys.readouterr().out


def test_check_fails_naming_file_and_field(kb_root, capsys):
    """A bad claim makes `check` exit non-zero with the file and field in the message."""
    write_claim(kb_root, "broken", claim_text("good").replace("kind: closed", "kind: closd"))
    assert main(["--root", str(kb_root), "check"]) == 1
    err = capsys.readouterr().err
    assert "claims/broken.yaml: kind:" in err


def test_verify_prints_a_summary_and_records(kb_root, capsys):
    """`verify --json` reports each claim's verdict and writes its result file."""
    write_claim(kb_root, "one", claim_text("good"))
    assert main(["--root", str(kb_root), "verify", "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["claims"][0]["verdict"] == "supported"
    assert (kb_root / "results" / "one.fast.json").exists()


def _cached_after_edit(kb_root, capsys, edited: str) -> bool:
    """Verify the fixture claim, rewrite its file as `edited`, verify again: was it cached?"""
    write_claim(kb_root, "one", claim_text("good"))
    main(["--root", str(kb_root), "verify", "--quiet"])
    write_claim(kb_root, "one", edited)
    capsys.readouterr()
    main(["--root", str(kb_root), "verify", "--json", "--quiet"])
    return json.loads(capsys.readouterr().out)["claims"][0]["cached"]


def test_verify_skips_unchanged_claims(kb_root, capsys):
    """A second run finds every input unchanged and re-runs nothing."""
    assert _cached_after_edit(kb_root, capsys, claim_text("good")) is True


def test_editing_a_claim_invalidates_its_cache(kb_root, capsys):
    """Changing the claim's decision re-runs it."""
    edited = claim_text("good").replace("rel_tol: 0.1", "rel_tol: 0.2")
    assert _cached_after_edit(kb_root, capsys, edited) is False


def test_editing_wording_keeps_the_cache(kb_root, capsys):
    """A new title or citation changes no verdict input: the recorded result stays current."""
    edited = claim_text("good").replace("A tiny claim for tests", "A tiny claim, reworded") \
                               .replace('locator: "Eq. 1.1"', 'locator: "Eq. 1.2"')
    assert _cached_after_edit(kb_root, capsys, edited) is True


def test_editing_one_tier_keeps_the_other_cached(kb_root, capsys):
    """Adding a full tier leaves the fast tier's recorded result current."""
    edited = claim_text("good").replace("tiers: {fast: {}}", "tiers: {fast: {}, full: {x: 2}}")
    assert _cached_after_edit(kb_root, capsys, edited) is True


def test_unknown_id_is_a_clear_error(kb_root, capsys):
    """Asking for a claim that does not exist names it."""
    assert main(["--root", str(kb_root), "verify", "nope"]) == 2
    assert "nope" in capsys.readouterr().err


def test_show_and_list(kb_root, capsys):
    """`show` prints one claim with its verdict; `list` filters by verdict."""
    write_claim(kb_root, "one", claim_text("good"))
    write_claim(kb_root, "two", claim_text("good", params="{x: 5}"))
    main(["--root", str(kb_root), "verify", "--quiet"])
    capsys.readouterr()
    assert main(["--root", str(kb_root), "show", "one"]) == 0
    assert "verdict: supported" in capsys.readouterr().out
    main(["--root", str(kb_root), "list", "--verdict", "refuted", "--json"])
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == ["two"]


def test_shard_argument_is_validated(kb_root, capsys):
    """A malformed --shard is refused with a message."""
    assert main(["--root", str(kb_root), "verify", "--shard", "3/2"]) == 2
    assert "shard" in capsys.readouterr().err

