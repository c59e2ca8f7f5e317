"""The same claim, code and seed give identical numbers on CPU."""
from __future__ import annotations

import pytest

from principia.loader import load_kb
from principia.runner import Task, run_tasks
from principia.store import ReadOnlyStore
from tests.conftest import ROOT

KB = load_kb(ROOT)
STORE = ReadOnlyStore(ROOT / "results")


def _fastest(kind: str, n: int) -> list[str]:
    """The n claims of a kind whose recorded fast tier ran quickest; claims that measure
    timings (device-dependent quantities) cannot repeat their numbers and are left out."""
    timed = []
    for cid, c in KB.claims.items():
        res = STORE.fetch(cid, "fast")
        timing = bool(c.decision and c.decision.device_dependent)
        if c.kind == kind and res and res.get("verdict") != "error" and not timing:
            timed.append((res["provenance"].get("duration_s", 1e9), cid))
    return [cid for _, cid in sorted(timed)[:n]]


# Six run claims: the quickest are numpy-only (BPE, least squares); the next ones train torch models.
@pytest.mark.parametrize("cid", _fastest("run", 6) + _fastest("closed", 1))
def test_two_runs_give_identical_measurements(cid):
    """Running a verifier twice with the same parameters reproduces every number exactly."""
    c = KB.claims[cid]
    task = Task(cid, c.verifier, c.tier_params("fast"), c.timeout("fast"), "fast", root=str(ROOT))
    a, b = list(run_tasks([task, task], jobs=2))
    assert a.ok and b.ok, (a.error, b.error)
    assert a.evidence["measured"] == b.evidence["measured"]
