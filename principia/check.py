"""`principia check`: structure, references and verifiers of every claim, without running any.

A claim's ``verifier:`` is first checked against the file tree (``registry.spec_problem``):
only a function of a regular module under ``verifiers/`` may be named, and nothing is imported
to decide that. Checking parameters against the verifier's signature needs its module imported;
that happens in a child process with a time limit (``PROBE_TIMEOUT``), so a module that hangs,
exits or crashes at import becomes a problem naming the claim's file, never a hung or silently
successful check. Claims whose verifier code and parameters are unchanged since the last clean
check are taken from a cache under ``build/`` (``--full`` ignores it).
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .loader import KnowledgeBase, Problem, load_kb
from .registry import param_problems, resolve, spec_problem
from .schema import NUMERIC_KINDS

__all__ = ["check", "param_sets", "probe_main", "report_findings", "falsifier_problems", "PROBE_TIMEOUT", "CACHE_FILE"]

PROBE_TIMEOUT = 60.0  # seconds for one child to import every verifier it is given
PROBE_MEM = 4 * 2**30  # resident bytes the importing child (and anything it starts) may hold
CACHE_FILE = Path("build") / "check-cache.json"
_BOOT = ("import importlib.util as u, sys; d = sys.argv[2]; "
         "s = u.spec_from_file_location('principia', d + '/__init__.py', submodule_search_locations=[d]); "
         "m = u.module_from_spec(s); sys.modules['principia'] = m; s.loader.exec_module(m); "
         "from principia.check import probe_main; probe_main(sys.argv[1])")


def param_sets(claim: Any) -> list[tuple[str, dict[str, Any]]]:
    """Every parameter set the verifier will be called with, with where it is written."""
    sets = [("params", claim.params)]
    sets += [(f"tiers.{t}", claim.tier_params(t)) for t in claim.tiers]
    sets += [(f"falsify.{i}.params", {**claim.tier_params(f.tier), **f.params})
             for i, f in enumerate(claim.falsify)]
    return sets


def _problems_for(root: Path, item: dict[str, Any]) -> list[list[str]]:
    """Runs in the child: import one verifier and validate its parameter sets."""
    rel, spec = item["file"], item["verifier"]
    try:
        fn = resolve(spec, root)
    except BaseException as e:  # the module's own error, SystemExit included
        return [[rel, "verifier", f"'{spec}' cannot be used: {type(e).__name__}: {e}"]]
    out, seen = [], set()
    for where, params in item["sets"]:
        for name, msg in param_problems(fn, params):
            own = where if where == "params" or name not in item["params"] else "params"
            field = "verifier" if name == "verifier" else f"{own}.{name}"
            if (name, msg) not in seen:
                seen.add((name, msg))
                out.append([rel, field, msg])
    return out


NO_FALSIFIER_MIN = 80  # characters: what was tried and why it failed, not a shrug


def falsifier_problems(kb: KnowledgeBase) -> list[Problem]:
    """A testable claim must be able to fail: every kind but 'open' declares at least one falsifier.
    A run claim may instead explain, in 'no_falsifier', what was tried (the page shows it)."""
    out = []
    for cid, c in sorted(kb.claims.items()):
        if c.kind not in NUMERIC_KINDS or c.falsify:
            continue
        if c.kind == "run" and len(c.no_falsifier.strip()) >= NO_FALSIFIER_MIN:
            continue
        extra = (f" (or, for a run claim, 'no_falsifier': at least {NO_FALSIFIER_MIN} characters on "
                 "what was tried)") if c.kind == "run" else ""
        out.append(Problem(kb.files[cid], "falsify", f"kind '{c.kind}' needs at least one 'falsify' "
                           f"entry: perturbed params under which the claim must come out refuted{extra}"))
    return out


def probe_main(root: str) -> None:
    """Child entry point: JSON items on stdin, one JSON line per event on the original stdout."""
    items = json.loads(sys.stdin.read())
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # what a module prints must not corrupt the protocol
    for item in items:
        proto.write(json.dumps({"start": item["cid"]}) + "\n")
        proto.write(json.dumps({"cid": item["cid"], "problems": _problems_for(Path(root), item)}) + "\n")
    proto.write(json.dumps({"done": True}) + "\n")
    proto.flush()
    os._exit(0)  # skip interpreter teardown: a module's atexit or thread cannot change the result


def _wait(proc: subprocess.Popen, timeout: float) -> str:
    """Wait for the probe; '' when it ended by itself, else why it was stopped."""
    from .runner import _group_rss
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if time.monotonic() > deadline:
            return f"importing it did not finish within {timeout:g} s"
        rss = _group_rss(proc.pid)
        if rss > PROBE_MEM:
            return (f"importing it held {rss / 2**30:.1f} GiB of memory, over the "
                    f"{PROBE_MEM / 2**30:.0f} GiB limit")
        time.sleep(0.05)
    return ""


def _events(raw: bytes) -> list[dict]:
    out = []
    for line in raw.decode("utf-8", "replace").splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue  # a line cut short by a kill
        if isinstance(e, dict):
            out.append(e)
    return out


def _run_child(root: Path, items: list[dict[str, Any]], timeout: float) -> tuple[list[dict], str]:
    """Run one probe; return its events and '' or why it stopped early."""
    pkg = str(Path(__file__).resolve().parent)
    env = {**os.environ, "PYTHONSAFEPATH": "1", "OPENBLAS_NUM_THREADS": "1"}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as inp:
        inp.write(json.dumps(items, default=str).encode())
        inp.seek(0)
        proc = subprocess.Popen([sys.executable, "-c", _BOOT, str(root), pkg], cwd=root, env=env,
                                stdin=inp, stdout=out, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            why = _wait(proc, timeout)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # and anything the module started
            except OSError:
                pass
            proc.wait()
        out.seek(0)
        events = _events(out.read())
    if not why and not any(e.get("done") for e in events):
        why = f"importing it ended the check process (exit code {proc.returncode})"
    return events, why


def _problems(e: dict, ids: set[str]) -> list[Problem] | None:
    """The problems a well-formed event reports for one of the claims asked about, else None."""
    probs = e.get("problems")
    if e.get("cid") not in ids or not isinstance(probs, list) or \
            not all(isinstance(p, list) and len(p) == 3 and all(isinstance(x, str) for x in p) for p in probs):
        return None
    return [Problem(*p) for p in probs]


def _probe(root: Path, items: list[dict[str, Any]], timeout: float) -> dict[str, list[Problem]]:
    """Problems per claim id; a module that hangs or kills the child is reported and skipped."""
    found: dict[str, list[Problem]] = {}
    todo = sorted(items, key=lambda i: i["verifier"])
    while todo:
        events, why = _run_child(root, todo, timeout)
        ids = {i["cid"] for i in todo}
        for e in events:
            got = _problems(e, ids)
            if got is not None:
                found[e["cid"]] = got
        if not why:
            break
        started = [e["start"] for e in events if e.get("start") in ids and e["start"] not in found]
        stuck = started[-1] if started else next(i["cid"] for i in todo if i["cid"] not in found)
        module = next(i for i in todo if i["cid"] == stuck)["verifier"].partition(":")[0]
        for i in todo:  # the module that was importing when the child stopped; progress is certain
            if i["cid"] not in found and i["verifier"].partition(":")[0] == module:
                found[i["cid"]] = [Problem(i["file"], "verifier", f"'{i['verifier']}': {why}")]
        todo = [i for i in todo if i["cid"] not in found]
    return found


def _code_key(root: Path) -> str:
    """One hash of every file an import probe can run: the verifiers and the engine beside them,
    plus the pydantic version. Reading bytes (no parsing) keeps a cached `check` fast."""
    from importlib import metadata
    h = hashlib.sha256(metadata.version("pydantic").encode())
    engine = Path(__file__).resolve().parent
    files = sorted((root / "verifiers").rglob("*.py")) + sorted(engine.glob("*.py"))
    for f in files:
        h.update(str(f.relative_to(f.parents[1])).encode() + b"\0")
        try:
            h.update(f.read_bytes())
        except OSError:
            h.update(b"unreadable")
    return h.hexdigest()


def _key(code: str, claim: Any) -> str:
    data = json.dumps([code, claim.verifier, param_sets(claim)], sort_keys=True, default=str)
    return hashlib.sha256(data.encode()).hexdigest()


def _load_cache(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)} \
        if isinstance(data, dict) else {}


def _save_cache(path: Path, data: dict[str, str]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=0, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # a cache that cannot be written only costs time


def _verifier_problems(kb: KnowledgeBase, timeout: float, use_cache: bool) -> list[Problem]:
    cache_path = kb.root / CACHE_FILE
    cache = _load_cache(cache_path) if use_cache else {}
    items, keys = [], {}
    code = _code_key(kb.root)
    for cid in sorted(kb.claims):
        c = kb.claims[cid]
        if not c.verifier or spec_problem(kb.root, c.verifier):
            continue
        keys[cid] = _key(code, c)
        if cache.get(cid) != keys[cid]:
            items.append({"cid": cid, "file": kb.files[cid], "verifier": c.verifier,
                          "params": sorted(c.params), "sets": param_sets(c)})
    found = _probe(kb.root, items, timeout) if items else {}
    out = [p for cid in sorted(found) for p in found[cid]]
    clean = {cid: k for cid, k in keys.items() if cid not in found or not found[cid]}
    if clean != cache:
        _save_cache(cache_path, clean)
    return out


def check(root: Path | str = ".", import_verifiers: bool = True, timeout: float = PROBE_TIMEOUT,
          use_cache: bool = True) -> KnowledgeBase:
    """Load the knowledge base and add verifier problems; kb.ok tells the result."""
    kb = load_kb(root)
    for cid in sorted(kb.claims):
        spec = kb.claims[cid].verifier
        why = spec_problem(kb.root, spec) if spec else None
        if why:
            kb.problems.append(Problem(kb.files[cid], "verifier", why))
    kb.problems += falsifier_problems(kb)
    if import_verifiers:
        kb.problems += _verifier_problems(kb, timeout, use_cache)
    return kb


def report_findings(kb: KnowledgeBase, strict: bool, out=None) -> int:
    """Print what the recorded results say about the claims (stale, tiers disagreeing, no
    replication); return how many make ``check --strict`` fail. Nothing is run."""
    import sys
    from .audit import findings
    out = out or sys.stderr
    found = findings(kb)
    for f in found:
        print(f"{'error' if strict and f.strict else 'warning'}: {f}", file=out)
    return sum(f.strict for f in found) if strict else 0
