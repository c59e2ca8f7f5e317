"""Find a claim's verifier and check its parameters against the function's signature.

Verifiers annotate their parameters (see ``principia.types``); pydantic validates a claim's
params against those annotations, so "N must be > 0" is written once, on the function.
"""
from __future__ import annotations

import importlib
import inspect
import typing
from typing import Any, Callable

from pydantic import ConfigDict, ValidationError, create_model

__all__ = ["resolve", "param_problems", "bind"]

# Filled in by the engine, never by a claim.
INJECTED = ("device", "tier", "tables")  # tables: the rows of a published claim's transcribed tables


def resolve(spec: str) -> Callable[..., Any]:
    """'module:function' -> the callable; raises ImportError/AttributeError/TypeError."""
    mod_name, _, fn_name = spec.partition(":")
    module = importlib.import_module(mod_name)
    fn = getattr(module, fn_name, None)
    if fn is None:
        raise AttributeError(f"module '{mod_name}' has no attribute '{fn_name}'")
    if not callable(fn):
        raise TypeError(f"'{spec}' is a {type(fn).__name__}, not a function")
    return fn


def _model_for(fn: Callable[..., Any]):
    fields: dict[str, Any] = {}
    try:  # resolve string annotations (modules using `from __future__ import annotations`)
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:
        hints = {}
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
        _model_for(fn).model_validate(params)
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
