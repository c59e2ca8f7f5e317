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
    # claim_hash is null, with "claim_hash_note" saying why, where `principia audit
    # --backfill-history` could not recover the claim an old entry was judged by

Writes go to a temporary file in the same folder, are fsynced, then renamed over the old file,
so a reader (or a kill at any moment) sees either the old result or the new one, never half.
Every file is checked on read (``result_problems``): one of the wrong shape is reported with its
field and treated as absent by readers, and ``save`` refuses to replace it, so its history is
never lost silently. A per-folder lock serialises read-modify-write of the history.
"""
from __future__ import annotations

import fcntl
import json
import math
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

__all__ = ["ResultStore", "ReadOnlyStore", "ResultsError", "result_problems", "HISTORY_LEN",
           "MAX_RESULT_BYTES"]

HISTORY_LEN = 30
MAX_RESULT_BYTES = 64 * 2**20
_ID = re.compile(r"[a-z0-9][a-z0-9-]{1,63}")
_TIERS = ("fast", "full")
_VERDICTS = ("supported", "partly-supported", "inconclusive", "refuted", "untestable", "error")
# field -> the JSON types it may hold when present
_SHAPE: dict[str, tuple[type, ...]] = {
    "reason": (str,), "kind": (str,), "key": (str,), "checks": (list,), "evidence": (dict, type(None)),
    "error": (dict, type(None)), "provenance": (dict,), "history": (list,), "claim_hash": (str, type(None)),
    "replication": (dict, type(None)), "scale": (dict, type(None))}
_NUMBER = (int, float, type(None))


class ResultsError(ValueError):
    """A results file cannot be used; the message names the file and the field."""


def result_problems(data: Any, cid: str, tier: str) -> list[str]:
    """'field: what is wrong' for each way a parsed result file breaks the format above."""
    if not isinstance(data, dict):
        return [f"(top level): must be a JSON object (got {type(data).__name__})"]
    out = []
    if data.get("claim") != cid:
        out.append(f"claim: must be '{cid}', the file's name (got {data.get('claim')!r})")
    if data.get("tier") != tier:
        out.append(f"tier: must be '{tier}', the file's name (got {data.get('tier')!r})")
    if data.get("verdict") not in _VERDICTS:
        out.append(f"verdict: must be one of {', '.join(_VERDICTS)} (got {data.get('verdict')!r})")
    for key, types in _SHAPE.items():
        if key in data and not isinstance(data[key], types):
            out.append(f"{key}: must be {' or '.join(t.__name__ for t in types)} "
                       f"(got {type(data[key]).__name__})")
    for i, c in enumerate(data.get("checks") or [] if isinstance(data.get("checks"), list) else []):
        if not isinstance(c, dict):
            out.append(f"checks.{i}: must be an object")
            continue
        out += [f"checks.{i}.{k}: must be a number or null (got {c[k]!r})"
                for k in ("measured", "lo", "hi") if k in c and not _number(c[k])]
        out += [f"checks.{i}.{k}: must be a string" for k in ("quantity", "rule", "outcome")
                if not isinstance(c.get(k, ""), str)]
    for i, h in enumerate(data.get("history") or [] if isinstance(data.get("history"), list) else []):
        if not isinstance(h, dict):
            out.append(f"history.{i}: must be an object")
        elif not isinstance(h.get("claim_hash"), (str, type(None))):  # null: not known (backfilled)
            out.append(f"history.{i}.claim_hash: must be str or null")
        elif not isinstance(h.get("claim_hash_note", ""), str):
            out.append(f"history.{i}.claim_hash_note: must be str")
    return out


def _number(x: Any) -> bool:
    # non-finite values are stored as the strings 'nan', 'inf', '-inf'
    return (isinstance(x, _NUMBER) and not isinstance(x, bool)) or x in ("nan", "inf", "-inf")


class ReadOnlyStore:
    """Fetch recorded results (e.g. full-tier evidence recorded elsewhere).

    Unusable files are treated as absent and listed in ``problems`` as 'file: field: message'."""

    def __init__(self, folder: Path | str):
        self.folder = Path(folder)
        self.problems: list[str] = []

    def path(self, claim_id: str, tier: str) -> Path:
        if not _ID.fullmatch(claim_id) or tier not in _TIERS:
            raise ResultsError(f"no results file for claim {claim_id!r}, tier {tier!r}: "
                               f"not a valid id and tier")
        return self.folder / f"{claim_id}.{tier}.json"

    def read(self, claim_id: str, tier: str) -> dict[str, Any] | None:
        """The result, None when there is none; raises ResultsError when the file is unusable."""
        p = self.path(claim_id, tier)
        try:
            if not p.is_file() or p.is_symlink():
                if p.exists() or p.is_symlink():
                    raise ResultsError(f"{p}: not a regular file")
                return None
            if p.stat().st_size > MAX_RESULT_BYTES:
                raise ResultsError(f"{p}: larger than {MAX_RESULT_BYTES // 2**20} MiB")
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, RecursionError) as e:
            if isinstance(e, ResultsError):
                raise
            raise ResultsError(f"{p}: not readable JSON ({type(e).__name__}: {e})") from None
        bad = result_problems(data, claim_id, tier)
        if bad:
            raise ResultsError(f"{p}: {bad[0]}" + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""))
        return data

    def fetch(self, claim_id: str, tier: str) -> dict[str, Any] | None:
        try:
            return self.read(claim_id, tier)
        except ResultsError as e:
            if str(e) not in self.problems:
                self.problems.append(str(e))
            return None

    def all(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for p in sorted(self.folder.glob("*.*.json")):
            cid, _, tier = p.stem.rpartition(".")
            if not _ID.fullmatch(cid) or tier not in _TIERS:
                self.problems.append(f"{p}: file name is not <claim id>.<fast|full>.json")
                continue
            data = self.fetch(cid, tier)
            if data is not None:
                yield cid, tier, data


class ResultStore(ReadOnlyStore):
    """Save results atomically, carrying the verdict history forward."""

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.folder / ".lock", "a") as fh:  # git-ignored; concurrent shards queue here
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield

    def save(self, result: dict[str, Any]) -> Path:
        """Write one result; raises ResultsError (bad result, unreadable old file) or OSError."""
        cid, tier = result.get("claim"), result.get("tier")
        target = self.path(str(cid), str(tier))
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._locked():
            previous = self.read(cid, tier)  # an unusable old file is never overwritten
            history = list((previous or {}).get("history", []))
            entry = _history_entry(result)
            if not history or history[-1] != entry:
                history.append(entry)
            result = {**result, "history": history[-HISTORY_LEN:]}
            for left in self.folder.glob(f".{target.name}.*.tmp"):  # from a writer that was killed
                left.unlink(missing_ok=True)
            text = json.dumps(_clean(result), indent=1, sort_keys=True, allow_nan=False, default=str,
                              ensure_ascii=False)
            _write_atomic(target, text + "\n")
        return target

    def amend_history(self, claim_id: str, tier: str, amend: Any) -> bool:
        """Rewrite one file's history in place with ``amend(history, result) -> history`` (under the lock,
        atomically); the new history must keep every entry, in order, with every field it had
        (fields may only be added). Returns whether the file changed; raises ResultsError."""
        target = self.path(claim_id, tier)
        with self._locked():
            previous = self.read(claim_id, tier)
            if previous is None:
                return False
            old = list(previous.get("history") or [])
            new = amend([dict(h) if isinstance(h, dict) else h for h in old], previous)
            if len(new) != len(old) or any(
                    (isinstance(a, dict) != isinstance(b, dict)) or
                    (a != b if not isinstance(a, dict) else any(k not in b or b[k] != v for k, v in a.items()))
                    for a, b in zip(old, new)):
                raise ResultsError(f"{target}: an amended history must keep every entry and field, in order")
            if new == old:
                return False
            result = {**previous, "history": new}
            bad = result_problems(result, claim_id, tier)
            if bad:
                raise ResultsError(f"{target}: {bad[0]}")
            text = json.dumps(_clean(result), indent=1, sort_keys=True, allow_nan=False, default=str,
                              ensure_ascii=False)
            _write_atomic(target, text + "\n")
        return True


def _write_atomic(target: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fchmod(f.fileno(), 0o644)  # results are published files, readable by all
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
