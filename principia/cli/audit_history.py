"""`principia audit --backfill-history`: give old history entries the claim hash they lack.

History entries recorded before the audit trail have no ``claim_hash``. For each, the claim is
read as it stood at the entry's commit (``git cat-file blob <commit>:claims/<id>.yaml``), parsed
under today's schema, and hashed with ``principia.audit.claim_hash``. Where the commit is unknown,
the file was not there, the old YAML no longer parses, or the entry is the file's latest run and
its provenance says the checkout had uncommitted changes, ``claim_hash`` is set to null with a
``claim_hash_note`` saying why; nothing is guessed. Entries that have the field (null included)
are left alone, so a second run changes nothing. Files are rewritten through the store.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

__all__ = ["add_parser", "backfill", "NOTE_UNPARSEABLE", "NOTE_NO_COMMIT", "NOTE_NO_FILE",
           "NOTE_DIRTY"]

_COMMIT = re.compile(r"[0-9a-f]{7,40}")
GIT_TIMEOUT_S = 30
_PREFIX = "recorded before the audit trail; "
NOTE_UNPARSEABLE = _PREFIX + "the claim as it stood then cannot be parsed"
NOTE_NO_COMMIT = _PREFIX + "the commit it was recorded at is unknown"
NOTE_NO_FILE = _PREFIX + "the claim file is not in the commit it was recorded at"
NOTE_DIRTY = _PREFIX + "it was recorded from uncommitted changes, so its commit may not hold the claim judged"


def _git_blob(root: Path, commit: str, rel: str) -> bytes | None:
    """The file at that commit, or None when git cannot give it (no such commit or file)."""
    try:
        run = subprocess.run(["git", "cat-file", "blob", f"{commit}:{rel}"], cwd=root,
                             capture_output=True, timeout=GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return run.stdout if run.returncode == 0 else None


def _commit_known(root: Path, commit: str) -> bool:
    try:
        run = subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=root,
                             capture_output=True, timeout=GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return run.returncode == 0


def _hash_at(root: Path, cid: str, commit: Any) -> tuple[str | None, str]:
    """(claim hash, '') of the claim at that commit, or (None, why not)."""
    from ..audit import claim_hash
    from ..loader import parse_claim
    if not isinstance(commit, str) or not _COMMIT.fullmatch(commit) or not _commit_known(root, commit):
        return None, NOTE_NO_COMMIT
    rel = f"claims/{cid}.yaml"
    raw = _git_blob(root, commit, rel)
    if raw is None:
        return None, NOTE_NO_FILE
    claim, problems = parse_claim(raw, rel)
    if claim is None or problems:
        return None, NOTE_UNPARSEABLE
    return claim_hash(claim), ""


def backfill(root: Path, results: Path, dry_run: bool = False,
             hash_at: Callable[[Path, str, Any], tuple[str | None, str]] = _hash_at) -> dict[str, Any]:
    """Fill missing history claim hashes; returns counts {filled, null, untouched, files, problems}."""
    from ..store import ResultsError, ResultStore
    store = ResultStore(results)
    counts: dict[str, Any] = {"filled": 0, "null": 0, "untouched": 0, "files": 0, "reasons": {},
                              "problems": []}
    cache: dict[tuple[str, Any], tuple[str | None, str]] = {}
    for cid, tier, _ in list(store.all()):
        local = {"filled": 0, "null": 0, "untouched": 0, "reasons": {}}

        def amend(history: list[Any], result: dict[str, Any]) -> list[Any]:
            prov = result.get("provenance") if isinstance(result.get("provenance"), dict) else {}
            out = []
            for h in history:
                if not isinstance(h, dict) or "claim_hash" in h:
                    local["untouched"] += 1
                    out.append(h)
                    continue
                key = (cid, h.get("commit"))
                if prov.get("dirty") is True and h.get("finished_at") == prov.get("finished_at") \
                        and h.get("commit") == prov.get("commit"):  # the run the provenance describes
                    got, why = None, NOTE_DIRTY
                else:
                    if key not in cache:
                        cache[key] = hash_at(root, cid, h.get("commit"))
                    got, why = cache[key]
                if got:
                    local["filled"] += 1
                    out.append({**h, "claim_hash": got})
                else:
                    local["null"] += 1
                    local["reasons"][why] = local["reasons"].get(why, 0) + 1
                    out.append({**h, "claim_hash": None, "claim_hash_note": why})
            return out

        try:
            if dry_run:
                now = store.read(cid, tier) or {}
                amend(list(now.get("history") or []), now)
                changed = bool(local["filled"] or local["null"])
            else:
                changed = store.amend_history(cid, tier, amend)
        except (ResultsError, OSError) as e:
            counts["problems"].append(str(e))
            continue
        counts["files"] += int(changed)
        for k in ("filled", "null", "untouched"):
            counts[k] += local[k]
        for why, n in local["reasons"].items():
            counts["reasons"][why] = counts["reasons"].get(why, 0) + n
    counts["problems"] += store.problems
    return counts


def cmd_audit(args: argparse.Namespace) -> int:
    if not args.backfill_history:
        print("error: say what to do: --backfill-history", file=sys.stderr)
        return 2
    root = Path(args.root).resolve()
    results = Path(args.results).resolve() if args.results else root / "results"
    c = backfill(root, results, dry_run=args.dry_run)
    for p in c["problems"]:
        print(f"warning: {p} (left as it is)", file=sys.stderr)
    verb = "would fill" if args.dry_run else "filled"
    print(f"{verb} {c['filled']} entries, {c['null']} null with a reason, {c['untouched']} untouched; "
          f"{c['files']} file(s) {'would change' if args.dry_run else 'changed'}")
    for why, n in sorted(c["reasons"].items()):
        print(f"  null ({n}): {why}")
    return 1 if c["problems"] else 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser("audit", help="maintain the audit trail of recorded results",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backfill-history", action="store_true",
                   help="give history entries without claim_hash the hash of the claim at their commit")
    p.add_argument("--dry-run", action="store_true", help="count what would change; write nothing")
    p.add_argument("--results", help="results folder (default: <root>/results)")
    p.set_defaults(fn=cmd_audit)
