"""The `principia` command line.

Subcommands with their own module live beside this one: `calculators` (`principia calc`),
`fit_runs` (`principia fit`), `audit_history` (`principia audit --backfill-history`) and
`merge_results` (`python -m principia.cli.merge_results`).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["main"]

ICON = {"supported": "✔", "partly-supported": "◐", "inconclusive": "?", "refuted": "✘",
        "untestable": "–", "error": "!"}


def _root(args: argparse.Namespace) -> Path:
    return Path(args.root).resolve()


def cmd_check(args: argparse.Namespace) -> int:
    from ..check import check
    kb = check(_root(args), import_verifiers=not args.no_import, use_cache=not args.full)
    for p in kb.problems:
        print(f"error: {p}", file=sys.stderr)
    if kb.problems:
        print(f"{len(kb.problems)} problem(s) in {len(kb.claims)} valid claim(s) + invalid files",
              file=sys.stderr)
        return 1
    from ..check import report_findings
    failing = report_findings(kb, strict=args.strict)
    if failing:
        print(f"{failing} stale result(s) or unexplained tier disagreement(s) (--strict)",
              file=sys.stderr)
        return 1
    kinds: dict[str, int] = {}
    for c in kb.claims.values():
        kinds[c.kind] = kinds.get(c.kind, 0) + 1
    print(f"ok: {len(kb.claims)} claims ({', '.join(f'{v} {k}' for k, v in sorted(kinds.items()))}), "
          f"{len(kb.references)} references")
    return 0


class _Progress:
    """One status line on a terminal, one line per claim otherwise."""

    def __init__(self, total: int, quiet: bool):
        self.total, self.done, self.quiet = total, 0, quiet
        self.tty = sys.stderr.isatty()
        self.t0 = time.monotonic()

    def __call__(self, event: str, cid: str, result: dict[str, Any] | None) -> None:
        if event == "start" or self.quiet:
            return
        self.done += 1
        verdict = (result or {}).get("verdict", "?")
        dur = (result or {}).get("provenance", {}).get("duration_s", 0.0) if event == "done" else 0.0
        tag = "cached" if event == "cached" else f"{dur:.1f}s"
        if self.tty:
            width = 30
            fill = int(width * self.done / max(1, self.total))
            sys.stderr.write(f"\r[{'#' * fill}{'.' * (width - fill)}] {self.done}/{self.total} "
                             f"{cid[:28]:<28} {ICON.get(verdict, '?')} {verdict:<16}")
            if self.done == self.total:
                sys.stderr.write("\n")
        else:
            sys.stderr.write(f"[{self.done}/{self.total}] {cid}: {verdict} ({tag})\n")
        sys.stderr.flush()


def _one_line(text: str, width: int = 300) -> str:
    """A reason fit for a terminal: one line, no control characters, bounded length."""
    flat = "".join(c if c.isprintable() else " " for c in " ".join(text.split()))
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _summary(rows: list[dict[str, Any]], wall: float) -> str:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
    lines = [f"{'claim':<32} {'verdict':<17} {'time':>7} {'memory':>9}"]
    for r in sorted(rows, key=lambda r: r["claim"]):
        t = "cached" if r["cached"] else f"{r['duration_s']:.1f}s"
        mem = f"{r['peak_rss_mib']:.0f} MiB" if r.get("peak_rss_mib") else ""
        lines.append(f"{r['claim']:<32} {ICON.get(r['verdict'], '?')} {r['verdict']:<15} {t:>7} {mem:>9}")
    for r in sorted(rows, key=lambda r: r["claim"]):
        if r["verdict"] == "error":
            lines.append(f"  {r['claim']}: {_one_line(r.get('reason') or '')}")
    lines.append("")
    lines.append(", ".join(f"{v} {k}" for k, v in sorted(counts.items())) +
                 f" — {len(rows)} claims in {wall:.1f} s")
    return "\n".join(lines)


def cmd_verify(args: argparse.Namespace) -> int:
    from ..check import check
    from ..verify import parse_shard, shard_from_env, verify
    root = _root(args)
    kb = check(root, import_verifiers=False)
    for p in kb.problems:
        print(f"error: {p}", file=sys.stderr)
    try:
        shard = parse_shard(args.shard or shard_from_env(os.environ))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    device = args.device
    if device == "auto":
        import torch
        device = "cuda" if torch.cuda.is_available() else "cpu"
    t0 = time.monotonic()
    from ..verify import select
    try:
        n = len(select(kb, args.ids or None, shard))
    except KeyError as e:
        print(f"error: no claim with id {e.args[0]}", file=sys.stderr)
        return 2
    rows = verify(root, args.ids or None, tier=args.tier, jobs=args.jobs, force=args.force,
                  device=device, shard=shard, results_dir=args.results, budget_scale=args.budget_scale,
                  on_event=_Progress(n, args.quiet), kb=kb)
    wall = time.monotonic() - t0
    if args.json:
        print(json.dumps({"wall_s": wall, "claims": rows}, indent=1))
    else:
        print(_summary(rows, wall))
    bad = [r for r in rows if r["verdict"] == "error"]
    return 1 if (bad or kb.problems) else 0


def cmd_build(args: argparse.Namespace) -> int:
    from ..site.build import SiteError, build_site
    from ..store import ReadOnlyStore
    t0 = time.monotonic()
    store = ReadOnlyStore(_root(args) / "results")
    for _ in store.all():  # the site shows none of these: say which, and why
        pass
    for p in store.problems:
        print(f"warning: {_one_line(p)} (not shown on the site)", file=sys.stderr)
    try:
        out = build_site(_root(args), strict=not args.no_strict)
    except (SiteError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"site built in {time.monotonic() - t0:.1f} s: {out}")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from ..schema import json_schema
    text = json_schema()
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from ..report import show
    return show(_root(args), args.id, as_json=args.json)


def cmd_list(args: argparse.Namespace) -> int:
    from ..report import list_claims
    return list_claims(_root(args), verdict=args.verdict, tag=args.tag, section=args.section,
                       kind=args.kind, as_json=args.json)


def cmd_new(args: argparse.Namespace) -> int:
    from ..scaffold import scaffold
    return scaffold(_root(args), args.id, topic=args.topic, section=args.section)


def _positive(text: str) -> float:
    """argparse type: a finite number > 0 (a clear usage error otherwise, not a traceback)."""
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (0 < x < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0 (got {text})")
    return x


def _new_epilog(root: Path = Path(".")) -> str:
    """The topics and sections `principia new` accepts, read from the knowledge base here."""
    from ..scaffold import sections, topics
    wrap = lambda xs: "\n".join("  " + " ".join(xs[i:i + 6]) for i in range(0, len(xs), 6)) or "  (none found)"
    return f"topics (verifiers/*.py):\n{wrap(topics(root))}\n\nsections:\n{wrap(sorted(sections(root)))}"


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="principia", description=__doc__)
    ap.add_argument("--root", default=".", help="the knowledge base's folder (default: .)")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check", help="validate every claim without running any verifier (modules are imported in a time-limited child process)")
    p.add_argument("--no-import", action="store_true",
                   help="skip checking parameters against the verifiers' signatures")
    p.add_argument("--strict", action="store_true",
                   help="fail on stale results and on tier disagreements 'tiers_note' does not explain")
    p.add_argument("--full", action="store_true",
                   help="check every claim's parameters, ignoring the cache of unchanged ones")
    p.set_defaults(fn=cmd_check)

    p = sub.add_parser("verify", help="run verifiers and record results")
    p.add_argument("ids", nargs="*", help="claim ids (default: all)")
    p.add_argument("--tier", choices=["fast", "full"], default="fast")
    p.add_argument("--jobs", type=int, default=2, help="verifiers run at once (default 2)")
    p.add_argument("--force", action="store_true", help="re-run even when inputs are unchanged")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--budget-scale", type=_positive, default=1.0, metavar="X",
                   help="multiply every claim's FLOP budget by X (a bigger machine trains bigger "
                        "ladders; recorded with the result; default 1)")
    p.add_argument("--shard", help="i/n: run every n-th claim starting at the i-th (default: from "
                   "SLURM_ARRAY_TASK_ID/_COUNT inside an sbatch --array job)")
    p.add_argument("--results", help="results folder (default: results/)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(fn=cmd_verify)

    p = sub.add_parser("build", help="render the site (Markdown, then mkdocs)")
    p.add_argument("--no-strict", action="store_true")
    p.set_defaults(fn=cmd_build)

    p = sub.add_parser("schema", help="print the claim JSON Schema")
    p.add_argument("-o", "--output")
    p.set_defaults(fn=cmd_schema)

    p = sub.add_parser("show", help="print one claim with its verdict")
    p.add_argument("id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_show)

    p = sub.add_parser("list", help="list claims, filtered")
    p.add_argument("--verdict")
    p.add_argument("--tag")
    p.add_argument("--section")
    p.add_argument("--kind")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_list)

    p = sub.add_parser("new", help="scaffold a claim, a verifier stub and its test",
                       description="Write claims/ID.yaml, a stub ID() in verifiers/TOPIC.py and its test "
                                   "in tests/verifiers/test_TOPIC.py. `check` fails until every 'TODO:' "
                                   "in the claim is filled in.",
                       epilog=_new_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("id", help="the claim id: lower-case words joined by '-'")
    p.add_argument("--topic", required=True, help="an existing verifier module (listed below)")
    p.add_argument("--section", required=True, help="a section of claims/_sections.yaml (listed below)")
    p.set_defaults(fn=cmd_new)

    for name, mod in (("calc", "cli.calculators"), ("fit", "cli.fit_runs"), ("audit", "cli.audit_history")):
        _add_module_parser(sub, name, mod)
    return ap


def _add_module_parser(sub: Any, name: str, mod: str) -> None:
    """A subcommand defined in its own module; one that fails to import is listed with the
    reason, and using it reports that reason instead of vanishing from the CLI."""
    import importlib
    try:
        importlib.import_module(f"principia.{mod}").add_parser(sub)
    except Exception as e:  # ImportError, or the module's own error
        why = f"'principia {name}' is unavailable: principia.{mod} failed to import: {type(e).__name__}: {e}"
        p = sub.add_parser(name, help=f"(unavailable: {type(e).__name__})", add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(fn=lambda _args: (print(f"error: {why}", file=sys.stderr), 1)[1])


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
    args = _parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
