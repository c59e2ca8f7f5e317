"""Attacks and faults after `check`: verifier replies, process isolation, results files, merge,
the site build and the command line. Each fails with a clear message naming the file or field,
without a traceback, a hang or a write outside the folder."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from principia.runner import Task, run_tasks
from principia.store import ReadOnlyStore, ResultStore
from tests.conftest import ROOT, claim_text, write_claim

PWNED = Path("/tmp/principia-pwned")


def _run(root: Path, fn: str, params: dict | None = None, mem: int = 2**30, timeout: float = 60):
    task = Task("t", f"verifiers.faulty:{fn}", params or {}, timeout, mem_limit=mem, root=str(root))
    (res,) = run_tasks([task])
    return res


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# ---------------------------------------------------------------- replies are plain data

def test_object_in_evidence_is_refused_in_the_child_by_field(kb_root):
    """An object that pickle would execute is named by its field; the parent never unpickles."""
    res = _run(kb_root, "object_evidence")
    assert not res.ok and "evidence.table.0.obj" in res.error["message"]
    assert not PWNED.exists()


def test_tensor_in_evidence_names_the_field_not_a_silent_exit(kb_root):
    """A torch tensor in the evidence is reported as such, not 'exited with code 0'."""
    res = _run(kb_root, "tensor_evidence")
    assert not res.ok and "evidence.table.0.t" in res.error["message"]
    assert "torch" in res.error["message"] and "without a result" not in res.error["message"]


def test_oversized_reply_is_refused(kb_root, monkeypatch):
    """A reply over the size cap is an error, not read into the parent's memory."""
    monkeypatch.setattr("principia.runner.REPLY_LIMIT", 2**20)
    res = _run(kb_root, "huge_evidence", {"rows": 3000})
    assert not res.ok and "limit" in res.error["message"]


# ---------------------------------------------------------------- process isolation

def test_grandchild_memory_counts_against_the_limit(kb_root):
    """A verifier whose child holds 600 MiB is stopped under a 400 MiB limit."""
    res = _run(kb_root, "child_allocates", {"mib": 600}, mem=400 * 2**20)
    assert not res.ok and res.error["type"] == "memory"


@pytest.mark.parametrize("fn", ["spawns_sleeper", "spawns_detached"])
def test_grandchildren_do_not_outlive_their_verifier(kb_root, fn):
    """A process a verifier leaves behind, in its group or detached in a session of its own,
    is killed when the verifier ends."""
    res = _run(kb_root, fn)
    assert res.ok
    pid = int(res.evidence["measured"]["x"]["value"])
    deadline = time.time() + 5
    while _alive(pid) and time.time() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)


def test_files_a_verifier_writes_are_not_output(kb_root, tmp_path):
    """Writing a data file larger than the output cap is legitimate."""
    res = _run(kb_root, "writes_file", {"path": str(tmp_path / "data.bin"), "mib": 12})
    assert res.ok, res.error


def test_killing_verify_ends_its_verifiers(kb_root, tmp_path):
    """SIGKILL on `principia verify` leaves no verifier running."""
    pidfile = tmp_path / "pid"
    write_claim(kb_root, "hangs-here", claim_text("pid_then_hang", params=f"{{path: '{pidfile}'}}"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "principia", "--root", str(kb_root), "verify"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not (pidfile.exists() and pidfile.read_text()) and time.time() < deadline:
        time.sleep(0.05)
    pid = int(pidfile.read_text())
    proc.kill()
    proc.wait()
    deadline = time.time() + 10
    while _alive(pid) and time.time() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)


# ---------------------------------------------------------------- results files

def _good_result(cid: str = "good-one") -> dict:
    return {"claim": cid, "tier": "fast", "verdict": "supported", "reason": "", "checks": [],
            "provenance": {"commit": "abc", "claim_hash": "0" * 16}}


@pytest.mark.parametrize("content,words", [
    ('{"claim": "good-one", "tier": "fast", "verdict": "supported", "checks": 5}', "checks"),
    ('[1, 2, 3]', "JSON object"),
    ('{"claim": "other", "tier": "fast", "verdict": "supported"}', "claim"),
    ('{"claim": "good-one", "tier": "fast", "verdict": "supported", '
     '"checks": [{"measured": "x", "lo": {}}]}', "checks.0.measured"),
    ('{not json', "not readable JSON"),
])
def test_wrong_shape_results_are_reported_and_never_overwritten(kb_root, capsys, content, words):
    """show, list and verify name the file and field of a bad results file and keep it."""
    from principia.cli import main
    write_claim(kb_root, "good-one", claim_text("good"))
    path = kb_root / "results" / "good-one.fast.json"
    path.parent.mkdir()
    path.write_text(content)
    for args in (["show", "good-one"], ["list"], ["verify", "good-one"]):
        main(["--root", str(kb_root), *args])
        err = "".join(capsys.readouterr())
        assert str(path) in err and words in err and "Traceback" not in err, (args, err)
    assert path.read_text() == content


def test_one_unwritable_result_does_not_lose_the_others(kb_root):
    """A results path that is a folder fails that claim only; the others are recorded."""
    from principia.verify import verify
    for cid in ("aa-one", "bb-two"):
        write_claim(kb_root, cid, claim_text("good"))
    (kb_root / "results" / "aa-one.fast.json").mkdir(parents=True)
    rows = {r["claim"]: r for r in verify(kb_root)}
    assert rows["aa-one"]["verdict"] == "error" and "aa-one.fast.json" in rows["aa-one"]["reason"]
    assert ReadOnlyStore(kb_root / "results").fetch("bb-two", "fast")["verdict"] == "supported"


def test_results_are_world_readable_and_leftovers_are_cleaned(tmp_path):
    """Saved files are 0644; a killed writer's temporary file is removed by the next save."""
    store = ResultStore(tmp_path)
    (tmp_path / ".good-one.fast.json.abc.tmp").write_text("")
    path = store.save(_good_result())
    assert path.stat().st_mode & 0o777 == 0o644
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))
    ignored = (ROOT / ".gitignore").read_text()
    assert "/results/.*.tmp" in ignored and "/results/.lock" in ignored


def test_concurrent_writers_lose_no_history(tmp_path):
    """Two writers appending to one history keep every entry (the folder is locked)."""
    def writer(offset: int) -> None:
        store = ResultStore(tmp_path)
        for i in range(10):
            r = _good_result()
            r["key"], r["checks"] = "x", [{"quantity": "x", "measured": float(offset + i)}]
            store.save(r)
    threads = [threading.Thread(target=writer, args=(k * 100,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ResultStore(tmp_path).fetch("good-one", "fast")["history"]) == 20


# ---------------------------------------------------------------- merge

@pytest.mark.parametrize("name,claim", [("evil.fast.json", "../../evil"),
                                        ("evil.fast.json", "other"), ("..%2Fx.fast.json", "x")])
def test_merge_refuses_names_and_contents_that_disagree(tmp_path, name, claim):
    """A shard file whose contents name another claim or a path writes nothing."""
    from principia.cli.merge_results import merge
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / name).write_text(json.dumps({"claim": claim, "tier": "fast", "verdict": "supported"}))
    changed, problems = merge(tmp_path / "src", tmp_path / "dest" / "a" / "b")
    assert not changed and problems and name in problems[0]
    written = [p for p in tmp_path.rglob("*") if p.is_file() and "src" not in p.parts]
    assert [p.name for p in written] in ([], [".lock"])


# ---------------------------------------------------------------- site build

def _site_kb(tmp_path: Path) -> Path:
    from tests.site.conftest import copy_kb
    return copy_kb(tmp_path / "kb")


@pytest.mark.parametrize("target", ["/proc/self/environ", ".git/config"])
def test_docs_symlink_is_refused_by_name(tmp_path, target):
    """A symlink in docs/ is never copied into the site or its search index."""
    from principia.site import SiteError, write_pages
    root = _site_kb(tmp_path)
    (root / "docs").mkdir()
    (root / "docs" / "about.md").write_text("# About\n")
    (root / "docs" / "leak.md").symlink_to(target)
    with pytest.raises(SiteError, match="docs/leak.md' is a symlink"):
        write_pages(root)
    assert not list((root / "build").rglob("leak.md"))


def test_concurrent_page_writes_leave_a_usable_folder(tmp_path):
    """Two builds writing at once never leave build/docs in a state that refuses the next one."""
    from principia.site import write_pages
    root = _site_kb(tmp_path)
    errors: list[BaseException] = []

    def build() -> None:
        try:
            write_pages(root)
        except BaseException as e:  # collected: a thread's exception would otherwise vanish
            errors.append(e)
    threads = [threading.Thread(target=build) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    docs = write_pages(root)
    assert (docs / ".principia-generated").exists() and (docs / "dashboard.md").exists()
    assert not [p for p in (root / "build").iterdir() if p.name.startswith(".docs")]  # no staging left


def test_build_error_is_a_message_not_a_traceback(kb_root, capsys):
    """`principia build` on an invalid knowledge base prints the problems and exits 1."""
    from principia.cli import main
    (kb_root / "claims" / "broken.yaml").write_text("title: [")
    assert main(["--root", str(kb_root), "build"]) == 1
    err = capsys.readouterr().err
    assert "claims/broken.yaml" in err and "Traceback" not in err


# ---------------------------------------------------------------- principia new, show, CLI

@pytest.mark.parametrize("args,words", [
    (["--topic", "../../x", "--section", "how-scaling"], "--topic"),
    (["--topic", "a/b", "--section", "how-scaling"], "--topic"),
    (["--topic", "faulty", "--section", "how-scaling\ninjected: true"], "--section")])
def test_new_refuses_paths_and_yaml_injection(kb_root, capsys, args, words):
    """`principia new` validates --topic and --section before writing anything."""
    from principia.cli import main
    before = sorted(p for p in kb_root.parent.rglob("*") if not p.is_symlink())
    assert main(["--root", str(kb_root), "new", "fresh-claim", *args]) == 2
    assert words in capsys.readouterr().err
    assert sorted(p for p in kb_root.parent.rglob("*") if not p.is_symlink()) == before


def test_show_prints_terminal_escapes_from_results_harmlessly(kb_root, capsys):
    """A reason carrying ANSI escapes is shown with the escapes made visible."""
    from principia.cli import main
    write_claim(kb_root, "good-one", claim_text("good"))
    r = _good_result()
    r["reason"] = "\x1b[2J\x1b[31mcleared\x00"
    ResultStore(kb_root / "results").save(r)
    assert main(["--root", str(kb_root), "show", "good-one"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x00" not in out and "cleared" in out


def test_verify_summary_prints_each_error_reason(kb_root, capsys):
    """The summary names why each errored claim failed."""
    from principia.cli import main
    write_claim(kb_root, "raises-one", claim_text("raises"))
    assert main(["--root", str(kb_root), "verify"]) == 1
    assert "raises-one: RuntimeError: deliberate failure" in capsys.readouterr().out


def test_a_subcommand_that_fails_to_import_is_reported(monkeypatch, capsys):
    """A broken subcommand module is listed and explains itself; it never silently vanishes."""
    import importlib
    from principia import cli
    real = importlib.import_module

    def broken(name, *a):
        if name == "principia.cli.fit_runs":
            raise ImportError("no module named 'scipy'")
        return real(name, *a)
    monkeypatch.setattr(importlib, "import_module", broken)
    assert cli.main(["fit", "runs.csv"]) == 1
    assert "principia.cli.fit_runs failed to import" in capsys.readouterr().err


def test_check_no_import_loads_neither_torch_nor_scipy():
    """`principia check --no-import` stays light: no verifier, torch or scipy import."""
    code = ("import sys; from principia.cli import main; main(['--root', sys.argv[1], 'check', "
            "'--no-import']); print(sorted(m for m in ('torch', 'scipy', 'verifiers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(ROOT)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120).stdout
    assert out.strip().endswith("[]"), out


# ---------------------------------------------------------------- stale and forged results

def _forged(kb_root: Path) -> Path:
    """A results file claiming 'supported' for a claim whose current version it never judged."""
    write_claim(kb_root, "good-one", claim_text("good"))
    r = _good_result()
    r["claim_hash"] = "f" * 16
    return ResultStore(kb_root / "results").save(r)


def test_list_and_show_never_present_a_stale_result_as_current(kb_root, capsys):
    """A result judged by another claim version is shown as 'stale', not as its verdict."""
    from principia.cli import main
    _forged(kb_root)
    main(["--root", str(kb_root), "list", "--json"])
    assert json.loads(capsys.readouterr().out)[0]["verdict"] == "stale"
    main(["--root", str(kb_root), "show", "good-one"])
    out = capsys.readouterr().out
    assert "verdict: stale" in out and "recorded verdict supported is stale" in out


def test_merge_with_root_refuses_stale_results(kb_root, tmp_path):
    """`merge --root` does not copy a result whose claim hash differs from the claim's."""
    from principia.cli.merge_results import main as merge_main
    path = _forged(kb_root)
    dest = tmp_path / "dest"
    assert merge_main([str(path.parent), str(dest), "--root", str(kb_root)]) == 1
    assert not (dest / path.name).exists()


def test_verify_refuses_a_callable_outside_verifiers_even_without_check(kb_root):
    """`verify` alone (no `check` first) never calls os:system: the claim errors, naming why."""
    from principia.verify import verify
    text = claim_text().replace("verifiers.faulty:good", "os:system")
    write_claim(kb_root, "os-call", text.replace("params: {}", 'params: {command: "touch /tmp/principia-pwned"}'))
    (row,) = verify(kb_root)
    assert row["verdict"] == "error" and "outside the 'verifiers' package" in row["reason"]
    assert not PWNED.exists()


def test_build_names_a_wrong_shape_results_file(tmp_path, capsys):
    """`principia build` reports a results file it cannot use, and still builds."""
    from principia.cli import main
    root = _site_kb(tmp_path)
    bad = root / "results" / "fixture-closed.fast.json"
    bad.write_text('{"claim": "fixture-closed", "tier": "fast", "verdict": 3}')
    assert main(["--root", str(root), "build"]) == 0
    err = capsys.readouterr().err
    assert str(bad) in err and "verdict" in err and "Traceback" not in err


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
        st.sampled_from(["claim", "tier", "verdict", "checks", "history", "provenance", "measured",
                         "lo", "x"]), kids, max_size=5),
    max_leaves=25)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_any_json_in_a_results_file_is_read_or_refused_never_raised(data):
    """Whatever JSON a results file holds, validation returns problems instead of raising."""
    from principia.store import result_problems
    assert isinstance(result_problems(data, "good-one", "fast"), list)
