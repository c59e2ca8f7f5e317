"""Recorded results are evidence: every claim's fast tier must reproduce its recorded verdict,
and every verifier must be able to fail."""
from __future__ import annotations

import pytest

from principia.decide import decide, invert
from principia.loader import load_kb
from principia.runner import Task, run_tasks
from principia.store import ReadOnlyStore
from principia.verify import _measures, task_tables, verify
from tests.conftest import ROOT

KB = load_kb(ROOT)
RECORDED = ReadOnlyStore(ROOT / "results")
TESTABLE = sorted(c for c, cl in KB.claims.items() if cl.kind != "open")
FALSIFIERS = [(cid, i) for cid in TESTABLE for i in range(len(KB.claims[cid].falsify))]


def test_knowledge_base_is_valid():
    """The real claims load without a single problem."""
    assert KB.ok, "\n".join(map(str, KB.problems))


def _selected(session: pytest.Session) -> list[str]:
    """Claim ids of the collected tests that need a fresh run (so `-k ID` runs one claim)."""
    ids = {item.callspec.params["cid"] for item in session.items
           if "fresh" in getattr(item, "fixturenames", ()) and hasattr(item, "callspec")}
    return sorted(ids & set(KB.claims))


@pytest.fixture(scope="session")
def fresh(request, tmp_path_factory):
    """The selected claims' fast tier, re-run from scratch into a scratch results folder."""
    out = tmp_path_factory.mktemp("results")
    ids = _selected(request.session)
    rows = verify(ROOT, ids, tier="fast", jobs=2, force=True, results_dir=out) if ids else []
    return {r["claim"]: r for r in rows}, ReadOnlyStore(out)


def _numbers(result: dict) -> str:
    return "; ".join(f"{c['quantity']}={c['measured']!r} ({c['rule']}: {c['outcome']})"
                     for c in result.get("checks", [])) or result.get("reason", "")


@pytest.mark.parametrize("cid", sorted(KB.claims))
def test_recorded_fast_verdict_reproduces(fresh, cid):
    """Re-running the fast tier gives the verdict recorded in results/."""
    rows, store = fresh
    recorded = RECORDED.fetch(cid, "fast")
    assert recorded is not None, f"{cid}: no recorded fast-tier result in results/"
    now = store.fetch(cid, "fast")
    volatile = set(KB.claims[cid].decision.device_dependent) if KB.claims[cid].decision else set()
    if volatile:  # timings: only the hardware-independent checks must repeat
        steady = lambda r: {c["quantity"]: c["outcome"] for c in r["checks"] if c["quantity"] not in volatile}
        assert now["verdict"] != "error", f"{cid}: {now['reason']}"
        assert steady(now) == steady(recorded), f"{cid}: recorded {_numbers(recorded)} but now {_numbers(now)}"
        return
    assert now["verdict"] == recorded["verdict"], (
        f"{cid}: recorded {recorded['verdict']} ({_numbers(recorded)}) but now "
        f"{now['verdict']} ({_numbers(now)})")


@pytest.mark.parametrize("cid", TESTABLE)
def test_inverted_expectation_is_refuted(fresh, cid):
    """The same measurements judged by the opposite rule refute the claim (unless inconclusive)."""
    _, store = fresh
    result = store.fetch(cid, "fast")
    if result["verdict"] in ("error",):
        pytest.fail(f"{cid}: verifier error: {result['reason']}")
    measured = _measures(result["evidence"])
    verdict, _, outcomes = decide(invert(KB.claims[cid].decision), measured)
    original = {c["quantity"]: c["outcome"] for c in result["checks"]}
    for o in outcomes:  # each check flips: supported <-> refuted; inconclusive stays
        want = {"supported": "refuted", "refuted": "supported"}.get(original[o.quantity], "inconclusive")
        assert o.outcome == want, f"{cid}: inverted {o.rule} gave {o.outcome}"
    if result["verdict"] == "supported":
        assert verdict == "refuted", f"{cid}: inverted claim came out {verdict}"


@pytest.mark.parametrize("cid,i", FALSIFIERS)
def test_perturbed_parameters_refute(cid, i):
    """Each declared falsifier (a perturbed parameter set) makes the verifier refute the claim."""
    claim = KB.claims[cid]
    f = claim.falsify[i]
    params = {**claim.tier_params(f.tier), **f.params}
    (res,) = list(run_tasks([Task(cid, claim.verifier, params, claim.timeout(f.tier), f.tier,
                                   tables=task_tables(ROOT, claim))]))
    assert res.ok, f"{cid}: falsifier run failed: {res.error}"
    verdict, reason, outcomes = decide(claim.decision, _measures(res.evidence))
    if f.part:  # one part of a many-part statement must fail, as the verdict counts parts
        named = {o.quantity: o.outcome for o in outcomes if o.part == f.part}
        assert "refuted" in named.values(), f"{cid}: with {f.params} ({f.why}) the part gives {named}"
        return
    assert verdict == "refuted", f"{cid}: with {f.params} ({f.why}) the verdict is {verdict}: {reason}"
