"""Print the engine's figures on this machine, each next to its goal.

    .venv/bin/python benchmarks/bench_engine.py [--skip-verify] [--per-claim]

Each step runs in its own process so its wall time and peak memory are its own: the whole fast
tier from scratch, a no-op re-verify (everything cached), `principia build` of the real knowledge
base, and of 1,000 synthetic claims. Peak memory is the largest resident set of the step's
process and of any verifier process it ran (each verifier records its own peak).
With --per-claim, the from-scratch run's wall time and peak memory of every claim follow.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

STEP = r"""
import json, resource, sys, time, os
sys.path.insert(0, {root!r})
os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
rows = []
t0 = time.perf_counter()
{body}
wall = time.perf_counter() - t0
peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
           resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
peak = max([peak] + [r.get("peak_rss_mib") or 0 for r in rows])
print(json.dumps({{"wall_s": wall, "peak_mib": peak, "rows": rows}}))
"""

BODIES = {
    "verify (fast tier, from scratch)":
        "from principia.verify import verify\n"
        "rows = verify({root!r}, tier='fast', jobs=2, force=True, results_dir={tmp!r} + '/results')",
    "re-verify, nothing changed":
        "from principia.verify import verify\n"
        "rows = verify({root!r}, tier='fast', jobs=2, results_dir={tmp!r} + '/results')",
    "build, real knowledge base":
        "from principia.site.build import build_site\nbuild_site({root!r})",
    "build, 1,000 synthetic claims":
        "from benchmarks.synthetic_kb import make_synthetic_kb\n"
        "from principia.site.build import build_site\n"
        "kb = make_synthetic_kb(__import__('pathlib').Path({tmp!r}) / 'synth', 1000)\n"
        "t0 = time.perf_counter()\nbuild_site(kb)",
}
GOALS = {"verify (fast tier, from scratch)": 180, "re-verify, nothing changed": 3,
         "build, real knowledge base": None, "build, 1,000 synthetic claims": 10}


def run_step(name: str, tmp: str) -> dict:
    body = BODIES[name].format(root=str(ROOT), tmp=tmp)
    code = STEP.format(root=str(ROOT), body=body)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-verify", action="store_true")
    ap.add_argument("--per-claim", action="store_true", help="list every claim of the fast tier")
    args = ap.parse_args()
    names = [n for n in BODIES if not (args.skip_verify and n.startswith(("verify", "re-verify")))]
    print(f"{'step':<36} {'wall':>9} {'goal':>8} {'peak memory':>12}")
    per_claim: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            r = run_step(name, tmp)
            if name.startswith("verify"):
                per_claim = r.get("rows", [])
            goal = GOALS[name]
            if "error" in r:
                print(f"{name:<36} error: {r['error']}")
                continue
            mark = "" if goal is None else ("ok" if r["wall_s"] <= goal else "SLOW")
            goal_s = "-" if goal is None else f"≤{goal} s"
            print(f"{name:<36} {r['wall_s']:>8.1f}s {goal_s:>8} {r['peak_mib']:>9.0f} MiB {mark}")
    if args.per_claim and per_claim:
        print(f"\n{'claim (fast tier, 2 at once)':<36} {'wall':>9} {'peak memory':>17}")
        for row in sorted(per_claim, key=lambda r: -r["duration_s"]):
            print(f"{row['claim']:<36} {row['duration_s']:>8.1f}s {row.get('peak_rss_mib') or 0:>13.0f} MiB")
        print(f"{'sum of claim times':<36} {sum(r['duration_s'] for r in per_claim):>8.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
