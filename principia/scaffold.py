"""`principia new ID`: a claim, a verifier stub and its test that together pass `check`."""
from __future__ import annotations

import re
import sys
from pathlib import Path

from .schema import ID_RE

__all__ = ["scaffold"]

CLAIM = """\
# yaml-language-server: $schema=../docs/claim.schema.json
title: "TODO: the principle in a short line"
statement: >-
  TODO: the principle in our own words. Inline math like $L(N) = (N_c/N)^{{\\alpha_N}}$ renders.
section: {section}
sources:
  - seed: {seed}
    place: "TODO: where the source states it"
citations:
  - ref: {ref}  # TODO: the work this comes from (a key of claims/_references*.yaml)
    locator: "TODO: table, figure, equation or section"
kind: closed
verifier: verifiers.{topic}:{fn}
params:
  x: 1.0
tiers:
  fast: {{}}
  full: {{}}
assumptions:
  - name: todo
    text: "TODO: every hidden assumption, named"
decision:
  key: x
  checks:
    - quantity: x
      op: approx
      value: 1.0
      rel_tol: 0.05
      why: "TODO: where the expected value and tolerance come from"
falsify:
  - params: {{x: 2.0}}
    why: "TODO: a perturbation under which the claim must fail"
tags: [todo]
"""

VERIFIER = '''

def {fn}(x: Pos = 1.0) -> Evidence:
    """TODO: measure what the claim '{cid}' is about (paper notation, constants with their place)."""
    return Evidence(measured={{"x": Measure(x)}}, notes=["TODO: replace this stub"])
'''

HEADER = '''"""Verifiers for {topic}."""
from __future__ import annotations

from principia.evidence import Evidence, Measure
from principia.types import Pos
'''

TEST = '''"""Tests for the verifier of '{cid}'."""
from verifiers.{topic} import {fn}


def test_{fn}_measures_x():
    """The stub reports the value it was given (replace with a real property of the verifier)."""
    assert {fn}(x=2.0).measured["x"].value == 2.0
'''


def scaffold(root: Path, cid: str, topic: str | None = None, section: str | None = None) -> int:
    if not re.fullmatch(ID_RE, cid):
        print(f"error: '{cid}' is not a valid id ({ID_RE})", file=sys.stderr)
        return 2
    claim_path = root / "claims" / f"{cid}.yaml"
    if claim_path.exists():
        print(f"error: {claim_path.relative_to(root)} already exists", file=sys.stderr)
        return 2
    topic = topic or cid.replace("-", "_")
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,63}", topic):
        print(f"error: --topic must be a module name such as 'scaling' (letters, digits, '_'; "
              f"got {topic!r})", file=sys.stderr)
        return 2
    fn = "verify_" + cid.replace("-", "_")
    from .loader import load_kb
    kb = load_kb(root)
    sections = kb.catalogue.sections if kb.catalogue else {}
    if section is not None and section not in sections:
        print(f"error: --section must be one of {', '.join(sorted(sections))} (got {section!r})",
              file=sys.stderr)
        return 2
    section = section or next(iter(sections), "TODO-section")
    seed = sections[section].seed if section in sections else "TODO-seed"
    mod = root / "verifiers" / f"{topic}.py"
    if not mod.exists():
        mod.write_text(HEADER.format(topic=topic), encoding="utf-8")
    with mod.open("a", encoding="utf-8") as f:
        f.write(VERIFIER.format(fn=fn, cid=cid))
    test = root / "tests" / "verifiers" / f"test_{topic}_{fn}.py"
    test.parent.mkdir(parents=True, exist_ok=True)
    test.write_text(TEST.format(cid=cid, topic=topic, fn=fn), encoding="utf-8")
    ref = next(iter(kb.references), 'TODO')
    claim_path.write_text(CLAIM.format(section=section, seed=seed, topic=topic, fn=fn, ref=ref), encoding="utf-8")
    for p in (claim_path, mod, test):
        print(f"wrote {p.relative_to(root)}")
    print("next: fill in the TODOs, "
          f"then `principia check` and `principia verify {cid}`")
    return 0
