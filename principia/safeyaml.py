"""Read one YAML file of the knowledge base safely.

A safe loader that also refuses anchors/aliases (entity expansion) and duplicate keys, reading
only regular files (never a symlink, folder, FIFO or device) and at most ``MAX_BYTES`` of them,
so a hostile file cannot run code, hang the reader or exhaust memory.
"""
from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from .loader import Problem

__all__ = ["read_yaml", "parse_yaml", "MAX_BYTES"]

MAX_BYTES = 256 * 1024


_BASE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when present: ~5x faster


class _Loader(_BASE):  # type: ignore[misc, valid-type]
    """Safe loader that rejects aliases (entity expansion) and duplicate keys."""

    def construct_object(self, node, deep=False):  # type: ignore[override]
        # An alias is the same node reached twice: refuse it before anything is expanded.
        if node in self.constructed_objects or node in self.recursive_objects:
            raise yaml.constructor.ConstructorError(
                None, None, "anchors and aliases are not allowed in claim files", node.start_mark)
        return super().construct_object(node, deep)

    def construct_mapping(self, node, deep=False):  # type: ignore[override]
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(
                    None, None, "mapping keys must be plain scalars", key_node.start_mark)
            key = key_node.value
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}'", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


# YAML 1.1 (PyYAML) reads 1e9 as a string; accept the YAML 1.2 float forms authors expect.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                |[-+]?\.(?:inf|Inf|INF)
                |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def read_regular(path: Path, rel: str, limit: int = MAX_BYTES) -> tuple[bytes | None, list["Problem"]]:
    """At most `limit` bytes of a regular file; a symlink, folder, FIFO or device is refused
    (never followed, never blocked on, never read without bound)."""
    from .loader import Problem
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        why = "is a symlink; claim files must be regular files" if e.errno == errno.ELOOP else \
            f"cannot be read ({e.strerror})"
        return None, [Problem(rel, "", why)]
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None, [Problem(rel, "", "is not a regular file")]
        raw = os.read(fd, limit + 1)
    finally:
        os.close(fd)
    if len(raw) > limit:
        return None, [Problem(rel, "", f"file is over {limit} bytes, the limit")]
    return raw, []


def read_yaml(path: Path, rel: str) -> tuple[Any, list["Problem"]]:
    """Parse one YAML file; return (data, problems)."""
    from .loader import Problem
    raw, probs = read_regular(path, rel)
    if raw is None:
        return None, probs
    return parse_yaml(raw, rel)


def parse_yaml(raw: bytes, rel: str) -> tuple[Any, list["Problem"]]:
    """Parse YAML bytes read elsewhere (e.g. from git) with the same safe loader and limits."""
    from .loader import Problem
    if len(raw) > MAX_BYTES:
        return None, [Problem(rel, "", f"file is over {MAX_BYTES} bytes, the limit")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, [Problem(rel, "", f"not UTF-8 (byte {e.start}: {raw[e.start:e.start + 1]!r})")]
    try:
        return yaml.load(text, Loader=_Loader), []
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = getattr(e, "problem", None) or str(e).splitlines()[0]
        return None, [Problem(rel, where, f"YAML error: {what}")]
    except (RecursionError, ValueError, OverflowError) as e:
        return None, [Problem(rel, "", f"YAML error: {type(e).__name__}: {e}")]
