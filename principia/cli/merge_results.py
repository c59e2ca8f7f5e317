"""Merge results written by shards into one results folder, reporting verdict changes.

`python -m principia.cli.merge_results SRC DEST [--strict]`: copies every result in SRC over DEST (atomically,
carrying history), prints the claims whose verdict changed, and with --strict exits 1 on a change.
A shard's file is trusted for nothing: its name must be `<claim id>.<fast|full>.json` and its
contents must say the same claim and tier (``store.result_problems``), so `"claim": "../../x"`
cannot write outside DEST; with a knowledge base (``--root``), a result whose claim hash differs
from the claim's current one is refused as stale.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..store import ReadOnlyStore, ResultsError, ResultStore

__all__ = ["merge", "main"]


def _stale(root: Path | None, cid: str, result: dict) -> str:
    """Why a result does not describe the claim as it is now ('' when it does)."""
    if root is None:
        return ""
    from ..audit import is_stale
    from ..loader import load_kb
    kb = _kb_cache.setdefault(root, load_kb(root))
    if cid not in kb.claims:
        return f"no claim '{cid}' in {root}/claims"
    return "stale: its claim hash differs from the claim's current one" if is_stale(kb.claims[cid], result) else ""


_kb_cache: dict[Path, object] = {}


def merge(src: Path, dest: Path, root: Path | None = None) -> tuple[list[tuple[str, str, str | None, str]], list[str]]:
    """Copy results; return (changes as (claim, tier, old verdict, new verdict), problems)."""
    source, target = ReadOnlyStore(src), ResultStore(dest)
    changed, problems = [], []
    for cid, tier, result in source.all():
        why = _stale(root, cid, result)
        if why:
            problems.append(f"{source.path(cid, tier)}: {why}")
            continue
        try:
            old = target.read(cid, tier)
            target.save({**result, "history": (old or {}).get("history", [])})
        except (ResultsError, OSError) as e:
            problems.append(f"{target.path(cid, tier)}: not replaced: {e}")
            continue
        if old is None or old.get("verdict") != result.get("verdict"):
            changed.append((cid, tier, (old or {}).get("verdict"), result.get("verdict")))
    return changed, source.problems + problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m principia.cli.merge_results")
    ap.add_argument("src")
    ap.add_argument("dest")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a verdict changed")
    ap.add_argument("--root", help="knowledge base whose claims the results must match (refuses stale ones)")
    a = ap.parse_args(argv)
    changed, problems = merge(Path(a.src), Path(a.dest), Path(a.root).resolve() if a.root else None)
    for cid, tier, old, new in changed:
        print(f"{cid} ({tier}): {old} -> {new}")
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    print(f"{len(changed)} verdict change(s), {len(problems)} file(s) refused")
    return 1 if (problems or (a.strict and changed)) else 0


if __name__ == "__main__":
    sys.exit(main())
