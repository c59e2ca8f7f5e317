"""Find a claim's verifier and check its parameters against the function's signature.

A claim is data: its ``verifier:`` may only name a public function defined in a module of the
knowledge base's own ``verifiers`` package (regular ``.py`` files under ``verifiers/``, no
symlinks). ``spec_problem`` decides that from the file tree alone, before anything is imported,
so ``os:system`` or ``builtins:eval`` never reach ``importlib``.

The ``verifiers`` package is loaded from its folder by path (``use_package``), never by putting
the repository root first on ``sys.path``, where a stray ``yaml.py`` or ``json.py`` would shadow
the real module.

Verifiers annotate their parameters (see ``principia.types``); pydantic validates a claim's
params against those annotations, so "N must be > 0" is written once, on the function.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import stat
import sys
import typing
from pathlib import Path
from typing import Any, Callable

from pydantic import ConfigDict, ValidationError, create_model

__all__ = ["PACKAGE", "spec_problem", "module_path", "use_package", "resolve", "param_problems",
           "bind", "SpecError"]

PACKAGE = "verifiers"
# Filled in by the engine, never by a claim.
INJECTED = ("device", "tables", "budget_scale")  # tables: a published claim's transcribed rows;
# budget_scale: `verify --budget-scale`, multiplies a budgeted claim's FLOPs (a bigger machine)
_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SpecError(ValueError):
    """A verifier spec names something a claim may not call."""


def _parts(spec: str) -> tuple[list[str], str]:
    mod, sep, fn = spec.partition(":")
    parts = mod.split(".")
    if not sep or not all(_PART.fullmatch(p) for p in parts + [fn]):
        raise SpecError(f"'{spec}' must look like '{PACKAGE}.<module>:<function>'")
    if parts[0] != PACKAGE or len(parts) < 2:
        raise SpecError(f"'{spec}' is outside the '{PACKAGE}' package: a claim may only name a "
                        f"function of a module under {PACKAGE}/")
    if fn.startswith("_") or any(p.startswith("__") for p in parts):
        raise SpecError(f"'{spec}' names a private or dunder name")
    return parts, fn


def _kind(path: Path) -> str:
    """'dir', 'file', 'link', 'other' or 'missing', without following a symlink."""
    try:
        mode = path.lstat().st_mode
    except OSError:
        return "missing"
    return ("link" if stat.S_ISLNK(mode) else "dir" if stat.S_ISDIR(mode)
            else "file" if stat.S_ISREG(mode) else "other")


def module_path(root: Path, spec: str) -> Path:
    """The regular file under root/verifiers that holds the spec's module; raises SpecError."""
    parts, _ = _parts(spec)
    root = Path(root)
    cur = root
    for part in parts[:-1]:  # packages: real folders, each with its own __init__.py
        cur = cur / part
        if _kind(cur) != "dir" or _kind(cur / "__init__.py") != "file":
            raise SpecError(f"'{spec}': {cur.relative_to(root)} is not a package folder "
                            f"(a real folder with __init__.py, not a symlink)")
    for cand in (cur / f"{parts[-1]}.py", cur / parts[-1] / "__init__.py"):
        kind = _kind(cand)
        if kind == "file":
            return cand
        if kind != "missing" or _kind(cand.parent) == "link":
            raise SpecError(f"'{spec}': {cand.relative_to(root)} is not a regular file "
                            f"(verifiers are plain .py files inside the repository)")
    raise SpecError(f"'{spec}': no module file {'/'.join(parts)}.py under the repository")


def spec_problem(root: Path, spec: str) -> str | None:
    """Why a claim may not name this verifier, or None; reads the file tree, imports nothing."""
    try:
        module_path(root, spec)
    except SpecError as e:
        return str(e)
    return None


def use_package(root: Path | str) -> None:
    """Make `import verifiers...` load root/verifiers, without putting root on sys.path."""
    init = Path(root) / PACKAGE / "__init__.py"
    have = sys.modules.get(PACKAGE)
    if have is not None and Path(getattr(have, "__file__", "") or "") == init:
        return
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]
    spec = importlib.util.spec_from_file_location(PACKAGE, init, submodule_search_locations=[str(init.parent)])
    if spec is None or spec.loader is None or not init.is_file():
        raise SpecError(f"no package '{PACKAGE}' at {init.parent}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    spec.loader.exec_module(module)


def resolve(spec: str, root: Path | str | None = None) -> Callable[..., Any]:
    """'verifiers.module:function' -> the function; raises SpecError, ImportError, AttributeError
    or TypeError (the module's own import-time errors pass through)."""
    if root is not None:
        module_path(Path(root), spec)
        use_package(root)
    else:
        _parts(spec)
    mod_name, _, fn_name = spec.partition(":")
    module = importlib.import_module(mod_name)
    fn = getattr(module, fn_name, None)
    if fn is None:
        raise AttributeError(f"module '{mod_name}' has no attribute '{fn_name}'")
    if not inspect.isfunction(fn):
        raise TypeError(f"'{spec}' is a {type(fn).__name__}, not a function")
    home = getattr(fn, "__module__", "") or ""
    if home != PACKAGE and not home.startswith(PACKAGE + "."):
        raise SpecError(f"'{spec}' is '{home}.{fn.__qualname__}', imported from outside '{PACKAGE}'")
    return fn


def _model_for(fn: Callable[..., Any]):
    fields: dict[str, Any] = {}
    # Resolve string annotations (`from __future__ import annotations`); an unresolvable one is
    # the verifier's bug and must be reported, not read as "no constraints".
    hints = typing.get_type_hints(fn, include_extras=True)
    for name, p in inspect.signature(fn).parameters.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or name in INJECTED:
            continue
        ann = hints.get(name, Any)
        default = p.default if p.default is not inspect.Parameter.empty else ...
        fields[name] = (ann, default)
    cfg = ConfigDict(extra="forbid", allow_inf_nan=False, arbitrary_types_allowed=True)
    return create_model(f"Params_{fn.__name__}", __config__=cfg, **fields)


def param_problems(fn: Callable[..., Any], params: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, message) for each parameter the verifier would reject."""
    try:
        model = _model_for(fn)
    except Exception as e:  # NameError from an annotation naming something never imported
        return [("verifier", f"its annotations cannot be read: {type(e).__name__}: {e}")]
    try:
        model.model_validate(params)
    except ValidationError as e:
        out = []
        for err in e.errors():
            name = ".".join(str(p) for p in err["loc"])
            if err["type"] == "extra_forbidden":
                known = [n for n in inspect.signature(fn).parameters if n not in INJECTED]
                out.append((name, f"the verifier takes no parameter '{name}' (it takes {known})"))
            elif err["type"] == "missing":
                out.append((name, "required by the verifier but not given"))
            else:
                out.append((name, f"{err['msg']} (got {err.get('input')!r})"))
        return out
    return []


def bind(fn: Callable[..., Any], params: dict[str, Any], **injected: Any) -> dict[str, Any]:
    """Validated keyword arguments, plus any engine values the function asks for."""
    model = _model_for(fn).model_validate(params)
    kwargs = {k: getattr(model, k) for k in model.model_fields_set | set(params)}
    sig = inspect.signature(fn).parameters
    kwargs.update({k: v for k, v in injected.items() if k in sig})
    return kwargs
