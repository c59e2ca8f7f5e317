"""Verify claims: pick, skip what is cached, run the rest, decide, store.

The verdict is computed here from the claim's declared decision and the verifier's evidence;
results are written one by one as they finish, atomically, so an interrupted run keeps
everything recorded before it.
"""
from __future__ import annotations

import difflib
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from .audit import claim_hash as audit_hash
from .decide import decide, replication_problem
from .evidence import Figure, Measure, Series
from .loader import KnowledgeBase, load_kb
from .provenance import claim_hash, code_hash, git_commit, inputs_key, versions
from .runner import DEFAULT_MEM_LIMIT, Task, TaskResult, run_tasks
from .schema import Claim
from .store import ResultsError, ResultStore

__all__ = ["Plan", "plan", "verify", "decide_result", "select", "parse_shard", "shard_from_env", "task_tables", "ENGINE_FILES"]

ENGINE = "principia 0.1.0"
# Engine code that shapes a verdict: a change re-verifies everything.
ENGINE_FILES = ("principia/decide.py", "principia/wording.py", "principia/evidence.py",
                "principia/registry.py")


@dataclass
class Plan:
    claim_id: str
    claim: Claim
    key: str
    claim_h: str
    code_h: str
    cached: bool
    # seconds the recorded result took, or a tenth of the tier's timeout when none is recorded
    # (a fresh results folder): runs are scheduled longest first, so the last ones are short
    last_s: float = 0.0


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """'i/n' with 1 <= i <= n."""
    if not text:
        return None
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like 2/4 (got {text!r})") from None
    if not 1 <= i <= n:
        raise ValueError(f"--shard {text}: need 1 <= i <= n")
    return i, n


def shard_from_env(env: Mapping[str, str]) -> str | None:
    """'i/n' from a SLURM job array (``sbatch --array``), or None outside one: task i of n counts
    from SLURM_ARRAY_TASK_MIN (default 0), so --array=0-3 and --array=1-4 both give 1/4 … 4/4."""
    if "SLURM_ARRAY_TASK_ID" not in env or "SLURM_ARRAY_TASK_COUNT" not in env:
        return None
    try:
        i = int(env["SLURM_ARRAY_TASK_ID"]) - int(env.get("SLURM_ARRAY_TASK_MIN", "0")) + 1
        n = int(env["SLURM_ARRAY_TASK_COUNT"])
    except ValueError:
        raise ValueError("SLURM_ARRAY_TASK_ID / _MIN / _COUNT must be integers (got "
                         f"{env.get('SLURM_ARRAY_TASK_ID')!r}, {env.get('SLURM_ARRAY_TASK_MIN')!r}, "
                         f"{env.get('SLURM_ARRAY_TASK_COUNT')!r})") from None
    return f"{i}/{n}"


def did_you_mean(name: str, known: list[str]) -> str:
    """' (did you mean 'x'?)' for the closest known name, or ''."""
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def select(kb: KnowledgeBase, ids: list[str] | None, shard: tuple[int, int] | None) -> list[str]:
    chosen = sorted(kb.claims) if not ids else list(dict.fromkeys(ids))
    unknown = [i for i in chosen if i not in kb.claims]
    if unknown:
        raise KeyError(", ".join(f"'{i}'{did_you_mean(i, list(kb.claims))}" for i in unknown))
    if shard:
        i, n = shard
        chosen = [c for k, c in enumerate(chosen) if k % n == i - 1]
    return chosen


def _engine_hash(root: Path) -> str:
    import hashlib
    h = hashlib.sha256()
    for rel in ENGINE_FILES:
        p = root / rel
        if p.exists():
            h.update(p.read_bytes())
    return h.hexdigest()


def plan(kb: KnowledgeBase, ids: list[str], tier: str, device: str, force: bool,
         store: ResultStore) -> list[Plan]:
    out = []
    eng = _engine_hash(kb.root)
    for cid in ids:
        c = kb.claims[cid]
        ch = claim_hash(c.verdict_inputs(tier))
        cod = code_hash(kb.root, c.verifier) + eng if c.verifier else eng
        cod += _tables_hash(kb.root, c)
        key = inputs_key(ch, cod, tier, device)
        old = store.fetch(cid, tier)
        cached = (not force and old is not None and old.get("verdict") != "error"
                  and old.get("provenance", {}).get("inputs_key") == key)
        out.append(Plan(cid, c, key, ch, cod, cached, _duration(old) or c.timeout(tier) / 10))
    return out


def _run_on(device: str, budget_scale: float) -> str:
    """What the inputs key records of where a claim ran: the device, and a budget scale unless 1
    (so results recorded before budgets existed keep their keys)."""
    return device if budget_scale == 1 else f"{device}|budget×{budget_scale:g}"


def _duration(old: dict[str, Any] | None) -> float:
    """Seconds a recorded result took (0 when there is none)."""
    d = ((old or {}).get("provenance") or {}).get("duration_s")
    return float(d) if isinstance(d, (int, float)) else 0.0


def _tables_hash(root: Path, claim: Claim) -> str:
    """A published claim's transcribed tables are inputs: editing one re-verifies the claim."""
    if not claim.tables:
        return ""
    from .tables import tables_digest
    return tables_digest(root, claim.tables)[:16]


def task_tables(root: Path, claim: Claim) -> dict[str, list[dict[str, Any]]] | None:
    """The parsed rows the engine hands a published claim's verifier (None for other kinds)."""
    if not claim.tables:
        return None
    from .tables import load_tables
    return load_tables(root, claim.tables)


def _measures(evidence: dict[str, Any]) -> dict[str, Measure]:
    out = {}
    for k, v in (evidence.get("measured") or {}).items():
        try:
            out[k] = Measure(**v)
        except (TypeError, ValueError):
            out[k] = Measure(float("nan"), note=f"unreadable measurement {v!r}")
    return out


def decide_result(claim: Claim, evidence: dict[str, Any] | None, error: dict[str, Any] | None,
                  tier: str = "fast") -> dict[str, Any]:
    """Verdict, reason and check outcomes from evidence (or the error that replaced it)."""
    if claim.kind == "open":
        return {"verdict": "untestable", "reason": claim.untestable.strip(), "checks": []}
    if error is not None:
        return {"verdict": "error", "reason": f"{error.get('type')}: {error.get('message')}", "checks": []}
    measured = _measures(evidence or {})
    verdict, reason, outcomes = decide(claim.decision, measured)
    short = replication_problem(claim.decision, tier, (evidence or {}).get("replication"))
    if short:  # too few independent draws: the interval is not the one the rule was declared for
        verdict, reason = "error", f"replication: {short}"
    missing = [c.quantity for c in claim.decision.checks if c.quantity not in measured]
    if missing:  # a misspelt quantity: say which measured name was probably meant
        reason = "; ".join(f"'{q}' is not measured{did_you_mean(q, list(measured)) or f' (measured: {sorted(measured)})'}"
                           for q in missing)
    return {"verdict": verdict, "reason": reason, "checks": [o.to_json() for o in outcomes]}


def _provenance(root: Path, p: Plan, tier: str, device: str, res: TaskResult | None) -> dict[str, Any]:
    commit, dirty = git_commit(root)
    return {
        "inputs_key": p.key, "claim_hash": p.claim_h[:16], "code_hash": p.code_h[:16],
        "commit": commit, "dirty": dirty, "versions": versions(), "engine": ENGINE,
        "tier": tier, "device": (res.device_desc if res and res.device_desc else device),
        "budget_scale": res.task.budget_scale if res else 1.0,
        "duration_s": round(res.duration_s, 3) if res else 0.0,
        "peak_rss_mib": round(res.peak_rss / 2**20, 1) if res else 0.0,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _result(root: Path, p: Plan, tier: str, device: str, res: TaskResult | None) -> dict[str, Any]:
    evidence = res.evidence if res else None
    error = res.error if res else None
    decided = decide_result(p.claim, evidence, error, tier)
    key = p.claim.decision.key or p.claim.decision.checks[0].quantity if p.claim.decision else ""
    return {"claim": p.claim_id, "tier": tier, "kind": p.claim.kind, "key": key, **decided,
            "claim_hash": audit_hash(p.claim), **_reported(evidence),
            "evidence": evidence, "error": error,
            "provenance": _provenance(root, p, tier, device, res)}


def _reported(evidence: dict[str, Any] | None) -> dict[str, Any]:
    """Replication and scale, lifted from the evidence to the result's top level."""
    ev = evidence or {}
    return {k: ev[k] for k in ("replication", "scale") if isinstance(ev.get(k), dict)}


def verify(root: Path | str = ".", ids: list[str] | None = None, tier: str = "fast", jobs: int = 1,
           force: bool = False, device: str = "cpu", shard: tuple[int, int] | None = None,
           results_dir: Path | str | None = None, mem_limit: int = DEFAULT_MEM_LIMIT,
           timeout_scale: float = 1.0, budget_scale: float = 1.0,
           on_event: Callable[[str, str, dict[str, Any] | None], None] | None = None,
           kb: KnowledgeBase | None = None) -> list[dict[str, Any]]:
    """Verify the chosen claims; return one summary row per claim (`kb`: already loaded).

    budget_scale multiplies the FLOP budget of every claim whose verifier takes one (a bigger
    machine trains bigger ladders); it is part of the inputs key and of the provenance."""
    if not (0 < budget_scale < float("inf")):
        raise ValueError(f"budget_scale must be a positive number (got {budget_scale})")
    root = Path(root).resolve()
    kb = kb if kb is not None and kb.root == root else load_kb(root)
    store = ResultStore(results_dir or root / "results")
    chosen = select(kb, ids, shard)
    plans = plan(kb, chosen, tier, _run_on(device, budget_scale), force, store)
    emit = on_event or (lambda *a: None)
    rows: list[dict[str, Any]] = []

    def record(p: Plan, res: TaskResult | None) -> None:
        result = _result(root, p, tier, device, res)
        try:
            store.save(result)
        except (ResultsError, OSError) as e:  # one unwritable file must not lose the others
            why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            result = {**result, "verdict": "error",
                      "reason": f"result not recorded in {store.path(p.claim_id, tier)}: {why}"}
        rows.append({"claim": p.claim_id, "verdict": result["verdict"], "cached": False,
                     "duration_s": result["provenance"]["duration_s"],
                     "peak_rss_mib": result["provenance"]["peak_rss_mib"], "reason": result["reason"]})
        emit("done", p.claim_id, result)

    tasks, by_id = [], {}
    for p in plans:
        if p.cached:
            old = store.fetch(p.claim_id, tier) or {}
            rows.append({"claim": p.claim_id, "verdict": old.get("verdict"), "cached": True,
                         "duration_s": 0.0, "reason": old.get("reason", "")})
            emit("cached", p.claim_id, old)
        elif p.claim.kind == "open":
            record(p, None)
        else:
            threads = max(1, (os.cpu_count() or 1) // max(1, jobs))
            task = Task(p.claim_id, p.claim.verifier, p.claim.tier_params(tier),
                        p.claim.timeout(tier) * timeout_scale, tier, device, budget_scale, threads,
                        mem_limit, str(root))
            try:
                task.tables = task_tables(root, p.claim)
            except ValueError as e:  # a malformed transcription: an error result, not a traceback
                record(p, TaskResult(task, False, error={"type": "tables", "message": str(e)}))
                continue
            tasks.append(task)
            by_id[p.claim_id] = p
    tasks.sort(key=lambda t: -by_id[t.claim_id].last_s)  # longest first: less idle at the end
    for res in run_tasks(tasks, jobs, on_start=lambda t: emit("start", t.claim_id, None)):
        record(by_id[res.task.claim_id], res)
    return rows
