"""`principia audit --backfill-history`: old history entries get the hash of the claim at their commit."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from principia.audit import claim_hash
from principia.cli import main
from principia.cli.audit_history import NOTE_DIRTY, NOTE_NO_COMMIT, NOTE_NO_FILE, NOTE_UNPARSEABLE
from principia.schema import Claim
from principia.store import ReadOnlyStore
from tests.conftest import claim_text, write_claim


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root,
                          capture_output=True, text=True, check=True, timeout=30).stdout.strip()


def _commit(root: Path, msg: str) -> str:
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", msg)
    return _git(root, "rev-parse", "HEAD")


def _entry(commit: str, when: str, **extra) -> dict:
    return {"finished_at": when, "verdict": "supported", "key": "x", "value": 1.0, "commit": commit, **extra}


@pytest.fixture
def repo(kb_root):
    """Three versions of claim 'tiny' in git (v1, v2 with other params, v3 not parseable), and a
    result whose history has entries from each, one already hashed, and one with no commit."""
    _git(kb_root, "init", "-q")
    (kb_root / "other.txt").write_text("x")
    c0 = _commit(kb_root, "before the claim")
    v1, v2 = claim_text(), claim_text(params="{a: 2}")
    write_claim(kb_root, "tiny", v1)
    c1 = _commit(kb_root, "v1")
    write_claim(kb_root, "tiny", v2)
    c2 = _commit(kb_root, "v2")
    write_claim(kb_root, "tiny", "title: [unclosed\n")
    c3 = _commit(kb_root, "broken")
    write_claim(kb_root, "tiny", v2)
    _commit(kb_root, "fixed")
    history = [_entry(c1, "2026-01-01"), _entry(c2[:7], "2026-01-02"), _entry(c3, "2026-01-03"),
               _entry("HEAD", "2026-01-04"), _entry(c0, "2026-01-05"), _entry(None, "2026-01-06"),
               _entry(c2, "2026-01-07", claim_hash="feedfacefeedface"), _entry(c2, "2026-01-08")]
    result = {"claim": "tiny", "tier": "fast", "verdict": "supported", "reason": "", "checks": [],
              "provenance": {"commit": c2, "dirty": True, "finished_at": "2026-01-08"},
              "history": history}
    (kb_root / "results").mkdir()
    (kb_root / "results" / "tiny.fast.json").write_text(json.dumps(result, indent=1))
    hashes = {v: claim_hash(Claim.model_validate(yaml.safe_load(t))) for v, t in (("v1", v1), ("v2", v2))}
    return kb_root, hashes


def _history(root: Path) -> list[dict]:
    return ReadOnlyStore(root / "results").read("tiny", "fast")["history"]


def test_fills_from_the_commit_and_nulls_what_it_cannot_know(repo, capsys):
    """Each entry gets the hash of the claim at its own commit; the rest get null and a reason."""
    root, hashes = repo
    assert main(["--root", str(root), "audit", "--backfill-history"]) == 0
    h = _history(root)
    assert [e["claim_hash"] for e in h[:2]] == [hashes["v1"], hashes["v2"]]
    assert hashes["v1"] != hashes["v2"]
    assert "claim_hash_note" not in h[0] and "claim_hash_note" not in h[1]
    assert (h[2]["claim_hash"], h[2]["claim_hash_note"]) == (None, NOTE_UNPARSEABLE)
    assert (h[3]["claim_hash"], h[3]["claim_hash_note"]) == (None, NOTE_NO_COMMIT)  # not hex
    assert (h[4]["claim_hash"], h[4]["claim_hash_note"]) == (None, NOTE_NO_FILE)
    assert (h[5]["claim_hash"], h[5]["claim_hash_note"]) == (None, NOTE_NO_COMMIT)
    assert h[6] == _entry(h[6]["commit"], "2026-01-07", claim_hash="feedfacefeedface")  # untouched
    assert (h[7]["claim_hash"], h[7]["claim_hash_note"]) == (None, NOTE_DIRTY)  # uncommitted run
    assert [e["finished_at"] for e in h] == [f"2026-01-0{i}" for i in range(1, 9)]  # order kept
    out = capsys.readouterr().out
    assert "filled 2 entries, 5 null with a reason, 1 untouched" in out


def test_second_run_changes_nothing(repo, capsys):
    """Idempotent: entries that have the field, null included, are left alone."""
    root, _ = repo
    main(["--root", str(root), "audit", "--backfill-history"])
    path = root / "results" / "tiny.fast.json"
    before = path.read_bytes()
    assert main(["--root", str(root), "audit", "--backfill-history"]) == 0
    assert path.read_bytes() == before
    assert "filled 0 entries, 0 null with a reason, 8 untouched; 0 file(s) changed" in capsys.readouterr().out


def test_dry_run_writes_nothing(repo, capsys):
    """--dry-run counts what would change and leaves the file as it was."""
    root, _ = repo
    path = root / "results" / "tiny.fast.json"
    before = path.read_bytes()
    assert main(["--root", str(root), "audit", "--backfill-history", "--dry-run"]) == 0
    assert path.read_bytes() == before
    assert "would fill 2 entries, 5 null with a reason, 1 untouched" in capsys.readouterr().out


def test_store_accepts_null_hash_with_a_note_and_refuses_a_bad_one(repo):
    """The store's validator accepts claim_hash null with a string note, not other types."""
    from principia.store import result_problems
    root, _ = repo
    main(["--root", str(root), "audit", "--backfill-history"])
    data = json.loads((root / "results" / "tiny.fast.json").read_text())
    assert result_problems(data, "tiny", "fast") == []
    data["history"][0]["claim_hash"] = 3
    assert result_problems(data, "tiny", "fast") == ["history.0.claim_hash: must be str or null"]


def test_amend_history_refuses_to_drop_or_change_entries(repo):
    """The store only lets an amendment add fields; it never loses or reorders entries."""
    from principia.store import ResultsError, ResultStore
    root, _ = repo
    store = ResultStore(root / "results")
    for bad in (lambda h, r: h[1:], lambda h, r: h[::-1], lambda h, r: [{**e, "verdict": "refuted"} for e in h]):
        with pytest.raises(ResultsError):
            store.amend_history("tiny", "fast", bad)
    assert len(_history(root)) == 8


def test_null_entries_are_not_counted_as_amendments(repo):
    """The page's "amended after N recorded runs" counts only entries with a known other hash."""
    from principia.audit import amended_after
    root, hashes = repo
    main(["--root", str(root), "audit", "--backfill-history"])
    claim = Claim.model_validate(yaml.safe_load((root / "claims" / "tiny.yaml").read_text()))
    result = ReadOnlyStore(root / "results").read("tiny", "fast")
    assert amended_after(claim, result) == 2  # v1 and the old 'feedface' entry; nulls are not counted
