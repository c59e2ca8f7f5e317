"""Malformed and malicious claim files are rejected with a message naming file and field;
none crashes the loader or runs code."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
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


# ---------------------------------------------------------------- verifier specs and imports

def _kb_with_module(tmp_path: Path, source: str, fn: str = "fn", name: str = "evil") -> Path:
    """A knowledge base with one claim naming verifiers.<name>:<fn>, whose module is `source`."""
    from tests.conftest import claim_text
    _kb_with(tmp_path)
    (tmp_path / "verifiers" / f"{name}.py").write_text(source)
    text = claim_text().replace("verifiers.faulty:good", f"verifiers.{name}:{fn}")
    (tmp_path / "claims" / "victim.yaml").write_text(text)
    return tmp_path


def _cli(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "principia", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_check_names_os_system_and_runs_nothing(tmp_path):
    """`principia check` on a claim naming os:system exits non-zero naming file and field."""
    shutil.copy(HOSTILE / "os-system.yaml", tmp_path)
    _kb_with(tmp_path, tmp_path / "os-system.yaml")
    res = _cli(tmp_path, "check")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "claims/os-system.yaml: verifier: 'os:system' is outside the 'verifiers' package" in res.stderr
    assert not PWNED.exists()


@pytest.mark.parametrize("source,words", [
    ("import sys\nsys.exit(0)\n", "SystemExit"),
    ("import os\nos._exit(0)\n", "ended the check process"),
    ("import time\nwhile True:\n    time.sleep(0.1)\n", "did not finish within"),
    ("raise RuntimeError('boom at import')\n", "boom at import"),
])
def test_import_time_faults_become_problems_naming_the_claim(tmp_path, source, words):
    """A module that exits, dies, hangs or raises at import is a problem in the claim's file."""
    _kb_with_module(tmp_path, source)
    kb = check(tmp_path, timeout=5)
    mine = [p for p in kb.problems if p.file == "claims/victim.yaml" and p.field == "verifier"]
    assert mine and words in mine[0].message, kb.problems


def test_verifier_import_never_runs_in_the_checking_process(tmp_path):
    """Import-time code runs in the child only; `check --no-import` runs none at all."""
    marker = tmp_path / "imported"
    _kb_with_module(tmp_path, f"open({str(marker)!r}, 'w').write('x')\ndef fn(): pass\n")
    check(tmp_path, import_verifiers=False)
    assert not marker.exists()
    check(tmp_path, timeout=20)
    assert marker.exists() and "verifiers.evil" not in sys.modules


def test_root_yaml_py_does_not_shadow_the_real_module(tmp_path):
    """A yaml.py at the repository root is never imported by `python -m principia check`."""
    _kb_with(tmp_path)
    (tmp_path / "yaml.py").write_text(f"open({str(PWNED)!r}, 'w').write('x')\n")
    res = _cli(tmp_path, "check", "--no-import")
    assert res.returncode == 0, res.stderr
    assert not PWNED.exists()


def test_symlinked_verifier_module_is_refused(tmp_path):
    """A verifier module that is a symlink (say to a file outside the repository) is refused."""
    outside = tmp_path / "outside.py"
    outside.write_text("def fn(): pass\n")
    _kb_with_module(tmp_path, "")
    (tmp_path / "verifiers" / "evil.py").unlink()
    (tmp_path / "verifiers" / "evil.py").symlink_to(outside)
    kb = check(tmp_path, timeout=20)
    assert any(p.file == "claims/victim.yaml" and p.field == "verifier" and "not a regular file"
               in p.message for p in kb.problems), kb.problems


def test_unreadable_annotation_is_reported_not_ignored(tmp_path):
    """An annotation naming something never imported is a problem, not 'no constraints'."""
    src = "from __future__ import annotations\ndef fn(x: Pos = 1.0):\n    pass\n"
    _kb_with_module(tmp_path, src)
    kb = check(tmp_path, timeout=20)
    assert any(p.field == "verifier" and "annotations cannot be read" in p.message
               and "Pos" in p.message for p in kb.problems), kb.problems


# ---------------------------------------------------------------- what the loader reads

@pytest.mark.parametrize("kind,words", [
    ("dir", "not a regular file"), ("fifo", "not a regular file"),
    ("dev-zero", "symlink"), ("outside", "symlink")])
def test_loader_reads_regular_files_only(tmp_path, kind, words):
    """A folder, FIFO, device or out-of-tree symlink named *.yaml is refused without hanging."""
    _kb_with(tmp_path)
    target = tmp_path / "claims" / "special.yaml"
    if kind == "dir":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)
    else:
        secret = tmp_path / "secret.txt"
        secret.write_text("title: secret\n")
        target.symlink_to("/dev/zero" if kind == "dev-zero" else secret)
    signal.alarm(20)  # a FIFO or /dev/zero read would block or never end
    try:
        kb = load_kb(tmp_path)
    finally:
        signal.alarm(0)
    assert any(p.file == "claims/special.yaml" and words in p.message for p in kb.problems), kb.problems


def test_import_that_hoards_memory_is_stopped(tmp_path, monkeypatch):
    """A module allocating without bound at import is stopped and reported, not left to eat RAM."""
    monkeypatch.setattr("principia.check.PROBE_MEM", 600 * 2**20)
    src = "b = bytearray(900 * 2**20)\nb[::4096] = b'x' * len(b[::4096])\nimport time\ntime.sleep(60)\n"
    _kb_with_module(tmp_path, src)
    kb = check(tmp_path, timeout=30)
    assert any(p.file == "claims/victim.yaml" and "GiB limit" in p.message for p in kb.problems), kb.problems
