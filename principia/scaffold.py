"""`principia new ID --topic T --section S`: a claim, a verifier stub in topic T and its test.

The generated files are valid Python and YAML, but the claim carries `TODO:` markers that
`principia check` rejects, so a stub cannot be recorded until its author has filled it in.
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import yaml

from .schema import ID_RE, TODO

__all__ = ["scaffold", "topics", "sections", "function_name"]

CLAIM = """\
# yaml-language-server: $schema=../docs/claim.schema.json
title: "{todo} the principle in a short line"
statement: >-
  {todo} the principle in our own words. Inline math like $L(N) = (N_c/N)^{{\\alpha_N}}$ renders.
section: {section}
sources:
  - seed: {seed}
    place: "{todo} where the source states it"
citations:
  - ref: "{todo} a key of claims/_references*.yaml"
    locator: "{todo} table, figure, equation or section"
kind: closed
verifier: verifiers.{topic}:{fn}
params:
  x: 1.0   # {todo} each setting, with the paper's value and its place quoted beside it
tiers:
  fast: {{}}
  full: {{}}
assumptions:
  - name: todo
    text: "{todo} every hidden assumption, named"
decision:
  key: x
  checks:
    - quantity: x
      op: approx
      value: 1.0
      rel_tol: 0.05
      why: "{todo} where the expected value and tolerance come from"
falsify:
  - params: {{x: 2.0}}
    why: "{todo} a perturbation under which the claim must fail"
tags: [todo]
"""

VERIFIER = '''

def {fn}(x: Pos) -> Evidence:
    """TODO: measure what the claim '{cid}' is about (paper notation, constants with their place)."""
    return Evidence(measured={{"x": Measure(x)}}, notes=["TODO: replace this stub"])
'''

TEST = '''

def test_{fn}_reports_x():
    """TODO: a property of the verifier of '{cid}' (the stub reports the value it was given)."""
    from verifiers.{topic} import {fn}
    assert {fn}(x=2.0).measured["x"].value == 2.0
'''

# Names the stub uses, and where they come from.
NEEDS = {"Evidence": "principia.evidence", "Measure": "principia.evidence", "Pos": "principia.types"}


def topics(root: Path) -> list[str]:
    """The verifier modules a claim can join (one module per topic)."""
    return sorted(p.stem for p in (root / "verifiers").glob("*.py") if not p.stem.startswith("_"))


def sections(root: Path) -> dict[str, str]:
    """Section id -> its seed, read from claims/_sections.yaml ({} when unreadable)."""
    try:
        data = yaml.safe_load((root / "claims" / "_sections.yaml").read_text(encoding="utf-8"))
        return {k: v["seed"] for k, v in data["sections"].items()}
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return {}


def function_name(cid: str) -> str:
    """The verifier is named after the claim: 'kv-cache-size' -> kv_cache_size."""
    return cid.replace("-", "_")


def _missing_imports(source: str) -> dict[str, list[str]]:
    """module -> names the stub needs that the topic module does not bind at top level."""
    bound = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {a.asname or a.name.split(".")[0] for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Assign)):
            bound |= {getattr(node, "name", None)} | {getattr(t, "id", None) for t in getattr(node, "targets", [])}
    out: dict[str, list[str]] = {}
    for name, mod in NEEDS.items():
        if name not in bound:
            out.setdefault(mod, []).append(name)
    return out


def _with_imports(source: str) -> str:
    """The module with `from M import names` lines added after its last top-level import."""
    lines = [f"from {m} import {', '.join(n)}\n" for m, n in _missing_imports(source).items()]
    if not lines:
        return source
    body = ast.parse(source).body
    last = max((n.end_lineno for n in body if isinstance(n, (ast.Import, ast.ImportFrom))), default=0)
    text = source.splitlines(keepends=True)
    return "".join(text[:last] + lines + text[last:])


def _problem(root: Path, cid: str, topic: str, section: str) -> str:
    if not re.fullmatch(ID_RE, cid):
        return f"'{cid}' is not a valid id (lower-case words joined by '-': {ID_RE})"
    if (root / "claims" / f"{cid}.yaml").exists():
        return f"claims/{cid}.yaml already exists"
    if topic not in topics(root):
        return f"--topic '{topic}' is not a verifier module; choose one of {topics(root)}"
    if section not in sections(root):
        return f"--section '{section}' is not in claims/_sections.yaml; choose one of {sorted(sections(root))}"
    fn = function_name(cid)
    if re.search(rf"^def {fn}\(", (root / "verifiers" / f"{topic}.py").read_text(encoding="utf-8"), re.M):
        return f"verifiers/{topic}.py already defines {fn}()"
    return ""


def scaffold(root: Path, cid: str, topic: str, section: str) -> int:
    """Write claims/ID.yaml, append a stub to verifiers/TOPIC.py and a test to its test file."""
    problem = _problem(root, cid, topic, section)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    fn = function_name(cid)
    claim = root / "claims" / f"{cid}.yaml"
    claim.write_text(CLAIM.format(todo=TODO, section=section, seed=sections(root)[section],
                                  topic=topic, fn=fn), encoding="utf-8")
    mod = root / "verifiers" / f"{topic}.py"
    mod.write_text(_with_imports(mod.read_text(encoding="utf-8")) + VERIFIER.format(fn=fn, cid=cid),
                   encoding="utf-8")
    test = root / "tests" / "verifiers" / f"test_{topic}.py"
    test.parent.mkdir(parents=True, exist_ok=True)
    head = "" if test.exists() else f'"""Tests for the verifiers in verifiers/{topic}.py."""\n'
    with test.open("a", encoding="utf-8") as f:
        f.write(head + TEST.format(cid=cid, topic=topic, fn=fn))
    for p in (claim, mod, test):
        print(f"wrote {p.relative_to(root)}")
    print(f"next: replace every '{TODO}' in {claim.relative_to(root)} (check fails until then), "
          f"write {fn}() and its test, then `principia check` and `principia verify {cid}`")
    return 0
