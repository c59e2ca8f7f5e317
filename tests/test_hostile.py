"""Malformed and malicious claim files are rejected with a message naming file and field;
none crashes the loader or runs code."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from principia.check import check
from principia.loader import MAX_BYTES, load_kb
from tests.conftest import ROOT, add_fixture_verifiers

HOSTILE = Path(__file__).parent / "hostile"
EXPECTED = yaml.safe_load((HOSTILE / "expected.yaml").read_text())
PWNED = Path("/tmp/principia-pwned")


def _kb_with(tmp_path: Path, *files: Path):
    (tmp_path / "claims").mkdir(exist_ok=True)
    for name in ("_sections.yaml", "_references.yaml"):
        shutil.copy(ROOT / "claims" / name, tmp_path / "claims" / name)
    add_fixture_verifiers(tmp_path)
    for f in files:
        shutil.copy(f, tmp_path / "claims" / f.name)
    return check(tmp_path, timeout=20)


def test_corpus_is_large_enough():
    """The hostile corpus holds at least 25 files, each with an expectation."""
    files = [p.name for p in HOSTILE.iterdir() if p.name != "expected.yaml"]
    assert len(files) >= 25
    assert set(files) - {"cycle-b.yaml"} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hostile_claim_is_rejected_naming_file_and_field(tmp_path, name):
    """The loader reports the problem in this file, at the expected field, with a clear message."""
    extra = [HOSTILE / "cycle-b.yaml"] if name == "cycle-a.yaml" else []
    kb = _kb_with(tmp_path, HOSTILE / name, *extra)
    field, words = EXPECTED[name]
    mine = [p for p in kb.problems if p.file == f"claims/{name}"]
    assert mine, f"no problem reported for {name}: {kb.problems}"
    assert any(p.field.startswith(field) and words.lower() in p.message.lower() for p in mine), \
        "\n".join(map(str, mine))
    assert not PWNED.exists(), "a YAML tag executed code"


def test_huge_file_is_rejected_without_parsing(tmp_path):
    """A file over the size limit is refused by its size."""
    big = tmp_path / "huge.yaml"
    big.write_text("notes: '" + "x" * (MAX_BYTES + 10) + "'\n")
    kb = _kb_with(tmp_path / "kb", big) if (tmp_path / "kb").mkdir() is None else None
    assert any(p.file == "claims/huge.yaml" and "limit" in p.message for p in kb.problems)


def test_reference_with_script_url_is_rejected(tmp_path):
    """A reference may link only to http(s) (or an arXiv id)."""
    (tmp_path / "claims").mkdir()
    shutil.copy(ROOT / "claims" / "_sections.yaml", tmp_path / "claims")
    (tmp_path / "claims" / "_references.yaml").write_text(
        'evil: {title: "x", authors: "y", year: 2020, url: "javascript:alert(1)"}\n')
    kb = load_kb(tmp_path)
    assert any(p.field.startswith("evil.url") for p in kb.problems)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2000) | st.text(max_size=2000).map(str.encode))
def test_loader_never_crashes_on_arbitrary_bytes(tmp_path, data):
    """Whatever bytes a claim file holds, loading returns problems instead of raising."""
    root = tmp_path / "fuzz"
    (root / "claims").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "claims" / "_sections.yaml", root / "claims")
    shutil.copy(ROOT / "claims" / "_references.yaml", root / "claims")
    (root / "claims" / "fuzzed.yaml").write_bytes(data)
    kb = load_kb(root)
    assert "fuzzed" in kb.claims or any(p.file == "claims/fuzzed.yaml" for p in kb.problems)


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids, max_size=4),
    max_leaves=20)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["title", "statement", "kind", "decision", "citations",
                                        "params", "tiers", "relations", "oops"]), yaml_values))
def test_loader_never_crashes_on_structured_garbage(tmp_path, doc):
    """Well-formed YAML of the wrong shape yields problems, never an exception."""
    root = tmp_path / "fuzz2"
    (root / "claims").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "claims" / "_sections.yaml", root / "claims")
    shutil.copy(ROOT / "claims" / "_references.yaml", root / "claims")
    (root / "claims" / "garbage.yaml").write_text(yaml.safe_dump(doc))
    kb = load_kb(root)
    assert "garbage" in kb.claims or any(p.file == "claims/garbage.yaml" for p in kb.problems)
