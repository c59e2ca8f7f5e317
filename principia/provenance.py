"""Where a result came from, and the key that decides whether it must be recomputed.

The inputs key hashes the claim's verdict inputs (``Claim.verdict_inputs``), the source of the
verifier and of every project module it imports (found by reading import statements, not by
importing), the package versions, the tier and the device.
Nothing here imports torch, so deciding "nothing changed" stays cheap.
"""
from __future__ import annotations

import ast
import hashlib
import json
import platform
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["claim_hash", "code_hash", "module_closure", "versions", "git_commit", "inputs_key"]

PROJECT_PACKAGES = ("principia", "verifiers")
# Packages whose version can change a verifier's numbers (pydantic only validates claim files).
VERSIONED = ("torch", "numpy", "scipy")
# Engine modules whose code cannot change a verdict's numbers (presentation, CLI, storage).
_NOT_INPUTS = ("principia.site", "principia.cli", "principia.store", "principia.runner",
               "principia.verify", "principia.provenance", "principia.loader", "principia.scaffold")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def claim_hash(claim_json: dict[str, Any]) -> str:
    return _sha(json.dumps(claim_json, sort_keys=True, default=str).encode())


def _module_file(root: Path, name: str) -> Path | None:
    base = root.joinpath(*name.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def _imports(path: Path, name: str) -> frozenset[str]:
    st = path.stat()
    return _parsed_imports(str(path), name, st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=None)
def _parsed_imports(path_s: str, name: str, _mtime_ns: int, _size: int) -> frozenset[str]:
    """Project modules a file imports. Parsed once per file version: sixty claims share a
    few dozen modules, and re-parsing them per claim made a no-op re-verify take seconds."""
    path = Path(path_s)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = pkg.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            found.add(mod)
            found |= {f"{mod}.{a.name}" for a in node.names}  # `from pkg import module`
    return frozenset(m for m in found if m.split(".")[0] in PROJECT_PACKAGES)


def module_closure(root: Path, module: str) -> dict[str, Path]:
    """Project modules reachable from `module` through import statements."""
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_file(root, name)
        if path is None:
            continue
        seen[name] = path
        parent = name.rpartition(".")[0]
        if parent:
            todo.append(parent)  # a package's __init__ runs on import
        todo.extend(_imports(path, name))
    return {k: v for k, v in seen.items() if not k.startswith(_NOT_INPUTS)}


def code_hash(root: Path, verifier: str) -> str:
    module = verifier.partition(":")[0]
    files = module_closure(root, module)
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + files[name].read_bytes() + b"\0")
    return h.hexdigest()


@lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in VERSIONED:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "absent"
    return out


@lru_cache(maxsize=4)
def git_commit(root: Path) -> tuple[str, bool]:
    """(commit, dirty) of the checkout, or ('unknown', False) outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=5).stdout.strip() or "unknown"
        # Recorded results are outputs, not inputs: a run that rewrites them stays clean.
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                     ".", ":(exclude)results"],
                                    cwd=root, capture_output=True, text=True, timeout=5).stdout.strip())
        return commit, dirty
    except (OSError, subprocess.SubprocessError):
        return "unknown", False


def inputs_key(claim_h: str, code_h: str, tier: str, device: str) -> str:
    v = json.dumps(versions(), sort_keys=True)
    return _sha(f"{claim_h}|{code_h}|{tier}|{device}|{v}".encode())
