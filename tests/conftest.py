"""Shared fixtures: a minimal knowledge base in a temporary folder."""
from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CLAIM = textwrap.dedent("""\
    title: "A tiny claim for tests"
    statement: "The measured value x is about one, as the fixture says."
    section: how-scaling
    sources: [{seed: bm-principles, place: "How 1.1"}]
    citations: [{ref: kaplan2020, locator: "Eq. 1.1"}]
    kind: closed
    verifier: "verifiers.faulty:@FN@"
    params: @PARAMS@
    tiers: {fast: {}}
    timeout_s: {fast: @TIMEOUT@}
    decision:
      checks:
        - {quantity: x, op: approx, value: 1, rel_tol: 0.1}
    falsify: [{params: {}, why: "a fixture: never run"}]
    """)


def claim_text(fn: str = "good", params: str = "{}", timeout: float = 20) -> str:
    return CLAIM.replace("@FN@", fn).replace("@PARAMS@", params).replace("@TIMEOUT@", str(timeout))


@pytest.fixture
def kb_root(tmp_path: Path) -> Path:
    """A knowledge base with the real catalogue and references and no claims yet."""
    (tmp_path / "claims").mkdir()
    for name in ("_sections.yaml", "_references.yaml"):
        shutil.copy(ROOT / "claims" / name, tmp_path / "claims" / name)
    add_fixture_verifiers(tmp_path)
    return tmp_path


def add_fixture_verifiers(root: Path) -> None:
    """Copy the misbehaving fixture verifiers to root/verifiers/faulty.py: a claim may only name
    a function of a regular module in its knowledge base's own verifiers/ folder."""
    (root / "verifiers").mkdir(exist_ok=True)
    (root / "verifiers" / "__init__.py").write_text('"""Fixture verifiers."""\n')
    shutil.copy(ROOT / "tests" / "fixtures" / "faulty.py", root / "verifiers" / "faulty.py")


def write_claim(root: Path, cid: str, text: str) -> Path:
    path = root / "claims" / f"{cid}.yaml"
    path.write_text(text, encoding="utf-8")
    return path
