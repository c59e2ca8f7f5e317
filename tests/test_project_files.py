"""Project files that tools read: the editor schema, the CI workflow, the merge of shards."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import yaml

from principia.cli.merge_results import merge
from principia.schema import json_schema
from principia.store import ResultStore
from tests.conftest import ROOT


def test_exported_schema_is_current():
    """docs/claim.schema.json matches the schema model (run `principia schema -o ...`)."""
    assert json.loads((ROOT / "docs" / "claim.schema.json").read_text()) == json.loads(json_schema())


def test_workflow_validates_against_the_github_schema():
    """The shipped GitHub Actions workflow passes the official workflow JSON Schema."""
    exe = shutil.which("check-jsonschema") or str(ROOT / ".venv" / "bin" / "check-jsonschema")
    if not shutil.os.path.exists(exe):
        pytest.skip("check-jsonschema is not installed")
    out = subprocess.run([exe, "--builtin-schema", "vendor.github-workflows",
                          str(ROOT / ".github" / "workflows" / "principia.yml")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_workflow_verifies_in_shards_and_merges():
    """The verify job is a matrix over shards and the site job merges their results."""
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "principia.yml").read_text())
    verify = wf["jobs"]["verify"]
    n = len(verify["strategy"]["matrix"]["shard"])
    runs = " ".join(s.get("run", "") for s in verify["steps"])
    assert n >= 2 and f"--shard ${{{{ matrix.shard }}}}/{n}" in runs
    assert any("principia.cli.merge_results" in s.get("run", "") for s in wf["jobs"]["site"]["steps"])


def test_merge_copies_results_and_reports_changes(tmp_path):
    """Merging shard folders keeps all results and names each changed verdict."""
    src, dest = ResultStore(tmp_path / "a"), ResultStore(tmp_path / "b")
    dest.save({"claim": "xx", "tier": "fast", "verdict": "supported"})
    src.save({"claim": "xx", "tier": "fast", "verdict": "refuted"})
    src.save({"claim": "yy", "tier": "fast", "verdict": "supported"})
    changed, problems = merge(tmp_path / "a", tmp_path / "b")
    assert ("xx", "fast", "supported", "refuted") in changed and not problems
    assert dest.fetch("yy", "fast")["verdict"] == "supported"
    assert [h["verdict"] for h in dest.fetch("xx", "fast")["history"]] == ["supported", "refuted"]
