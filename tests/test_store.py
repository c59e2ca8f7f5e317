"""Recorded results survive kills and concurrent writers; history carries forward."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from principia.store import ResultStore
from tests.conftest import ROOT, claim_text, write_claim


def _result(cid: str, verdict: str = "supported", value: float = 1.0) -> dict:
    return {"claim": cid, "tier": "fast", "verdict": verdict, "key": "x",
            "checks": [{"quantity": "x", "measured": value}], "provenance": {"commit": "abc"}}


def test_save_then_fetch_round_trips(tmp_path):
    """A saved result is read back unchanged, with one history entry."""
    store = ResultStore(tmp_path)
    store.save(_result("aa"))
    got = store.fetch("aa", "fast")
    assert got["verdict"] == "supported" and len(got["history"]) == 1


def test_history_grows_when_the_verdict_changes(tmp_path):
    """A changed verdict or value appends to the history; a repeat does not."""
    store = ResultStore(tmp_path)
    store.save(_result("aa"))
    store.save(_result("aa"))
    store.save(_result("aa", "refuted", 2.0))
    hist = store.fetch("aa", "fast")["history"]
    assert [h["verdict"] for h in hist] == ["supported", "refuted"]
    assert hist[-1]["value"] == 2.0


def test_nan_is_stored_as_valid_json(tmp_path):
    """Non-finite numbers do not make the file invalid JSON."""
    store = ResultStore(tmp_path)
    path = store.save(_result("aa", "error", float("nan")))
    assert json.loads(path.read_text())["checks"][0]["measured"] == "nan"


def _cli(root: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "principia", "--root", str(root), *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_sigkill_mid_run_keeps_every_recorded_result(kb_root):
    """Killing `principia verify` with SIGKILL leaves earlier results intact and readable."""
    for i in range(3):
        write_claim(kb_root, f"quick-{i}", claim_text("good"))
    assert _cli(kb_root, "verify", "--jobs", "2").wait(timeout=120) == 0
    before = {p.name: p.read_bytes() for p in (kb_root / "results").glob("*.json")}
    write_claim(kb_root, "slow-one", claim_text("sleeps", params="{seconds: 30}", timeout=60))
    proc = _cli(kb_root, "verify", "--force", "--jobs", "2")
    deadline = time.time() + 60
    while time.time() < deadline:  # wait until the run is rewriting results, then kill it
        if any(p.stat().st_mtime_ns and p.read_bytes() != before.get(p.name)
               for p in (kb_root / "results").glob("quick-*.json")):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    for name in before:
        data = json.loads((kb_root / "results" / name).read_text())
        assert data["verdict"] == "supported", name


def test_two_shards_writing_at_once_do_not_corrupt(kb_root):
    """Two shards run concurrently into one folder; every result is complete."""
    for i in range(6):
        write_claim(kb_root, f"shard-{i}", claim_text("good"))
    procs = [_cli(kb_root, "verify", "--shard", f"{i}/2", "--jobs", "1") for i in (1, 2)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    files = sorted((kb_root / "results").glob("shard-*.fast.json"))
    assert len(files) == 6
    assert all(json.loads(f.read_text())["verdict"] == "supported" for f in files)
