"""Results storage: one JSON file per claim and tier, written atomically.

A result file (``results/<id>.<tier>.json``) holds::

    {"claim": id, "tier": "fast"|"full", "verdict": ..., "reason": str,
     "checks": [Outcome...],                       # principia.decide.Outcome.to_json()
     "evidence": Evidence.to_json() | null,        # measured, figures, table, notes, seeds
     "error": {"type", "message", "output_tail"} | null,
     "provenance": {"inputs_key", "claim_hash", "code_hash", "commit", "dirty", "versions",
                    "device", "duration_s", "peak_rss_mib", "finished_at", "engine"},
     "claim_hash": str,                            # principia.audit.claim_hash of the claim judged
     "replication": {...}, "scale": {...},         # copied from the evidence when reported
     "history": [{"finished_at", "verdict", "key", "value", "commit", "claim_hash"}]}  # newest last

Writes go to a temporary file in the same folder, are fsynced, then renamed over the old file,
so a reader (or a kill at any moment) sees either the old result or the new one, never half.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

__all__ = ["ResultStore", "ReadOnlyStore", "HISTORY_LEN"]

HISTORY_LEN = 30


class ReadOnlyStore:
    """Fetch recorded results (e.g. full-tier evidence recorded elsewhere)."""

    def __init__(self, folder: Path | str):
        self.folder = Path(folder)

    def path(self, claim_id: str, tier: str) -> Path:
        return self.folder / f"{claim_id}.{tier}.json"

    def fetch(self, claim_id: str, tier: str) -> dict[str, Any] | None:
        p = self.path(claim_id, tier)
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None  # unreadable files are treated as absent, never overwritten blindly

    def all(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for p in sorted(self.folder.glob("*.*.json")):
            cid, _, tier = p.stem.rpartition(".")
            data = self.fetch(cid, tier)
            if data is not None:
                yield cid, tier, data


class ResultStore(ReadOnlyStore):
    """Save results atomically, carrying the verdict history forward."""

    def save(self, result: dict[str, Any]) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        cid, tier = result["claim"], result["tier"]
        previous = self.fetch(cid, tier)
        history = list((previous or {}).get("history", []))
        entry = _history_entry(result)
        if not history or history[-1] != entry:
            history.append(entry)
        result = {**result, "history": history[-HISTORY_LEN:]}
        target = self.path(cid, tier)
        text = json.dumps(_clean(result), indent=1, sort_keys=True, allow_nan=False, default=str, ensure_ascii=False)
        fd, tmp = tempfile.mkstemp(prefix=f".{cid}.{tier}.", suffix=".tmp", dir=self.folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target


def _clean(x: Any) -> Any:
    """JSON has no NaN/inf: store them as strings so the file stays valid JSON."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def _history_entry(result: dict[str, Any]) -> dict[str, Any]:
    prov = result.get("provenance", {})
    key = result.get("key") or ""
    value = None
    for c in result.get("checks", []):
        if c.get("quantity") == key:
            value = c.get("measured")
    return {"finished_at": prov.get("finished_at"), "verdict": result.get("verdict"),
            "key": key, "value": value, "commit": prov.get("commit"),
            "claim_hash": result.get("claim_hash")}
