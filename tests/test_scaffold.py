"""`principia new` writes a claim, a stub and a test that fail `check` until filled in, then pass."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from principia.check import check
from principia.scaffold import scaffold
from principia.verify import verify
from tests.conftest import ROOT

TOPIC = '"""Widgets: a topic module that imports none of the names a stub uses."""\nimport math\n'


@pytest.fixture
def root(tmp_path, monkeypatch):
    """A knowledge base with the real catalogue, one topic module and no claims."""
    (tmp_path / "claims").mkdir()
    (tmp_path / "verifiers").mkdir()
    (tmp_path / "verifiers" / "__init__.py").write_text("")
    (tmp_path / "verifiers" / "widgets.py").write_text(TOPIC)
    for name in ("_sections.yaml", "_references.yaml"):
        shutil.copy(ROOT / "claims" / name, tmp_path / "claims" / name)
    monkeypatch.syspath_prepend(str(tmp_path))
    for mod in [m for m in sys.modules if m == "verifiers" or m.startswith("verifiers.")]:
        monkeypatch.delitem(sys.modules, mod)
    return tmp_path


def _fill_in(path) -> None:
    """What an author does: replace each TODO with text, and name a real reference."""
    text = path.read_text().replace('"TODO: a key of claims/_references*.yaml"', "kaplan2020")
    path.write_text(re.sub(r"TODO: ", "", text))


def test_a_stub_fails_check_until_its_todos_are_filled(root):
    """The generated claim is rejected for its TODOs, and accepted once they are filled in."""
    assert scaffold(root, "widget-size", "widgets", "how-scaling") == 0
    kb = check(root)
    assert any("still a stub" in str(p) and "title" in str(p) for p in kb.problems), kb.problems
    _fill_in(root / "claims" / "widget-size.yaml")
    kb = check(root)
    assert kb.ok, "\n".join(map(str, kb.problems))


def test_filled_stub_verifies_builds_and_its_test_passes(root):
    """After filling in the TODOs the claim verifies as supported, the site builds strictly with its
    page, and the generated test passes: no generated file needs fixing by hand."""
    from principia.site import build_site
    assert scaffold(root, "widget-size", "widgets", "how-scaling") == 0
    _fill_in(root / "claims" / "widget-size.yaml")
    (row,) = verify(root, ["widget-size"])
    assert row["verdict"] == "supported", row
    assert (build_site(root) / "claims" / "widget-size.html").exists()
    test = root / "tests" / "verifiers" / "test_widgets.py"
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)],
                         cwd=root, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


def test_stub_is_named_after_the_claim_and_imports_what_it_uses(root):
    """The function is the id with underscores, and the module gains the imports the stub needs."""
    scaffold(root, "widget-size", "widgets", "how-scaling")
    src = (root / "verifiers" / "widgets.py").read_text()
    assert "def widget_size(x: Pos) -> Evidence:" in src
    assert "from principia.evidence import Evidence, Measure" in src and "from principia.types import Pos" in src
    scaffold(root, "widget-mass", "widgets", "how-scaling")  # a second stub adds no second import
    assert (root / "verifiers" / "widgets.py").read_text().count("from principia.types import Pos") == 1


@pytest.mark.parametrize("args,message", [
    (("Bad_Id", "widgets", "how-scaling"), "not a valid id"),
    (("widget-size", "gadgets", "how-scaling"), "choose one of ['widgets']"),
    (("widget-size", "widgets", "nowhere"), "not in claims/_sections.yaml"),
])
def test_bad_arguments_are_refused_with_the_choices(root, capsys, args, message):
    """An invalid id, an unknown topic or an unknown section exits 2 and names what is allowed."""
    assert scaffold(root, *args) == 2
    assert message in capsys.readouterr().err


def test_new_refuses_an_existing_id(root):
    """Scaffolding over an existing claim is refused."""
    (root / "claims" / "taken.yaml").write_text("x: 1\n")
    assert scaffold(root, "taken", "widgets", "how-scaling") == 2


def test_help_lists_topics_and_sections():
    """`principia new --help` lists the existing topic modules and the sections."""
    out = subprocess.run([sys.executable, "-m", "principia", "new", "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60).stdout
    assert "memory" in out and "scaling" in out and "how-scaling" in out
