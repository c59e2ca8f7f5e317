"""Verifiers that crash, hang or misbehave end as `error` verdicts; the rest still run."""
from __future__ import annotations

import pytest

from principia.verify import verify
from tests.conftest import add_fixture_verifiers, claim_text, write_claim

FAULTS = {
    "raises": "RuntimeError: deliberate failure",
    "hangs": "timeout",
    "aborts": "SIGABRT",
    "returns-nan": "NaN",
    "wrong-type": "expected principia.evidence.Evidence",
    "floods": "output",
    "allocates": "memory",
    "exits": "SystemExit",
}


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory):
    """One run over a good claim and every kind of faulty verifier."""
    import shutil
    from tests.conftest import ROOT
    root = tmp_path_factory.mktemp("kb")
    (root / "claims").mkdir()
    for name in ("_sections.yaml", "_references.yaml"):
        shutil.copy(ROOT / "claims" / name, root / "claims" / name)
    add_fixture_verifiers(root)
    write_claim(root, "good-one", claim_text("good"))
    for cid in FAULTS:
        write_claim(root, cid, claim_text(cid.replace("-", "_"), timeout=3 if cid == "hangs" else 60))
    rows = verify(root, jobs=2, mem_limit=400 * 2**20)
    return {r["claim"]: r for r in rows}


@pytest.mark.parametrize("cid", sorted(FAULTS))
def test_faulty_verifier_gets_error_verdict_with_reason(faulty_run, cid):
    """Each misbehaving verifier is reported as an error naming what went wrong."""
    row = faulty_run[cid]
    assert row["verdict"] == "error"
    assert FAULTS[cid].lower() in row["reason"].lower(), row["reason"]


def test_good_claim_still_runs_beside_faulty_ones(faulty_run):
    """A healthy claim in the same run is verified normally."""
    assert faulty_run["good-one"]["verdict"] == "supported"


def test_bad_parameter_is_an_error_naming_it(kb_root):
    """A parameter the verifier rejects gives an error naming the parameter."""
    write_claim(kb_root, "bad-param", claim_text("good", params="{x: abc}"))
    (row,) = verify(kb_root)
    assert row["verdict"] == "error" and "x" in row["reason"]


def test_peak_memory_of_each_verifier_is_recorded(kb_root):
    """A verifier that briefly holds 300 MiB reports a peak at least 250 MiB above one that holds none."""
    from principia.runner import Task, run_tasks
    small, big = (Task(f"m{m}", "verifiers.faulty:holds", {"mib": m}, 60, root=str(kb_root))
                  for m in (0, 300))
    res = {r.task.claim_id: r for r in run_tasks([small, big], jobs=1)}
    assert res["m0"].ok and res["m300"].ok
    assert res["m300"].peak_rss - res["m0"].peak_rss >= 250 * 2**20


def test_one_task_twice_at_once_gives_two_results(kb_root):
    """Two runs of the same claim started together each report from their own process (CI once
    saw them share one reply file and one of them fail)."""
    from principia.runner import Task, run_tasks
    task = Task("twin", "verifiers.faulty:whoami", {"pause": 0.3}, 60, root=str(kb_root))
    for _ in range(3):
        res = list(run_tasks([task, task], jobs=2))
        assert all(r.ok for r in res), [r.error for r in res]
        assert len({r.evidence["measured"]["pid"]["value"] for r in res}) == 2


def test_longest_runs_start_first(kb_root):
    """With nothing recorded, a larger timeout starts first; once recorded, the longer run does."""
    for cid, t in (("short", 5), ("long", 50), ("mid", 20)):
        write_claim(kb_root, cid, claim_text("good", timeout=t))
    order = lambda: [c for ev, c, _ in _events(kb_root) if ev == "start"]
    assert order() == ["long", "mid", "short"]
    import json
    for cid, s in (("short", 9.0), ("long", 1.0), ("mid", 3.0)):
        path = kb_root / "results" / f"{cid}.fast.json"
        res = json.loads(path.read_text())
        res["provenance"]["duration_s"] = s
        path.write_text(json.dumps(res))
    assert order() == ["short", "mid", "long"]


def _events(root):
    seen = []
    verify(root, force=True, on_event=lambda *ev: seen.append(ev))
    return seen
