"""Load and validate claim files without running anything.

Every problem becomes a ``Problem(file, field, message)``; nothing here raises on bad input.
YAML is read with a safe loader that also refuses anchors/aliases (entity expansion), duplicate
keys and oversized files, so a hostile claim cannot run code or exhaust memory.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .safeyaml import MAX_BYTES, parse_yaml, read_yaml
from .scan import hazards
from .schema import ID_RE, Catalogue, Claim, Reference

__all__ = ["Problem", "KnowledgeBase", "load_kb", "parse_claim", "read_yaml", "MAX_BYTES"]

SECTIONS_FILE = "_sections.yaml"
REFERENCES_GLOB = "_references*.yaml"


@dataclass(frozen=True)
class Problem:
    file: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.field}" if self.field else self.file
        return f"{where}: {self.message}"


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def _known_keys(model: type, loc: tuple[Any, ...]) -> list[str]:
    """The allowed keys at a location in the model tree (for did-you-mean)."""
    from pydantic import BaseModel
    cur: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or cur is None:
            continue
        fld = getattr(cur, "model_fields", {}).get(part)
        if fld is None:
            return []
        ann = fld.annotation
        cur = _inner_model(ann)
    return list(getattr(cur, "model_fields", {}).keys()) if cur else []


def _inner_model(ann: Any) -> Any:
    from pydantic import BaseModel
    import typing
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in typing.get_args(ann):
        found = _inner_model(arg)
        if found:
            return found
    return None


def validation_problems(err: ValidationError, rel: str, model: type, prefix: str = "") -> list[Problem]:
    out = []
    for e in err.errors():
        loc = tuple(e["loc"])
        path = prefix + _field_path(loc)
        if e["type"] == "extra_forbidden":
            key = str(loc[-1])
            close = difflib.get_close_matches(key, _known_keys(model, loc), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            out.append(Problem(rel, path, f"unknown key '{key}'{hint}"))
        else:
            got = e.get("input")
            msg = e["msg"].removeprefix("Value error, ")
            if not isinstance(got, (dict, list)):  # a container is not worth echoing
                shown = repr(got)
                msg += f" (got {shown[:57] + '...' if len(shown) > 60 else shown})"
            out.append(Problem(rel, path or "(top level)", msg))
    return out


@dataclass
class KnowledgeBase:
    root: Path
    claims: dict[str, Claim] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # id -> relative path
    references: dict[str, Reference] = field(default_factory=dict)
    catalogue: Catalogue | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _load_catalogue(kb: KnowledgeBase, cdir: Path) -> None:
    path = cdir / SECTIONS_FILE
    rel = f"claims/{SECTIONS_FILE}"
    if not path.exists():
        kb.problems.append(Problem(rel, "", "missing: it lists the source documents and sections"))
        return
    data, probs = read_yaml(path, rel)
    kb.problems += probs
    if probs:
        return
    try:
        kb.catalogue = Catalogue.model_validate(data)
    except ValidationError as e:
        kb.problems += validation_problems(e, rel, Catalogue)
        return
    for sid, sec in kb.catalogue.sections.items():
        if sec.seed not in kb.catalogue.seeds:
            kb.problems.append(Problem(rel, f"sections.{sid}.seed", f"unknown seed '{sec.seed}'"))


def _load_references(kb: KnowledgeBase, cdir: Path) -> None:
    for path in sorted(cdir.glob(REFERENCES_GLOB)):
        rel = f"claims/{path.name}"
        data, probs = read_yaml(path, rel)
        kb.problems += probs
        if probs:
            continue
        if not isinstance(data, dict):
            kb.problems.append(Problem(rel, "", "must be a mapping of reference keys"))
            continue
        for key, entry in data.items():
            if key in kb.references:
                kb.problems.append(Problem(rel, str(key), "reference key defined twice"))
                continue
            try:
                kb.references[str(key)] = Reference.model_validate(entry)
            except ValidationError as e:
                kb.problems += validation_problems(e, rel, Reference, prefix=f"{key}.")


def _load_claim(kb: KnowledgeBase, path: Path) -> None:
    rel = f"claims/{path.name}"
    cid = path.stem
    if path.suffix == ".yml":
        kb.problems.append(Problem(rel, "", "use the '.yaml' extension"))
        return
    if not re.fullmatch(ID_RE, cid):
        kb.problems.append(Problem(rel, "", f"file name '{cid}' is not a valid id ({ID_RE})"))
        return
    if cid.lower() in {c.lower() for c in kb.claims}:
        kb.problems.append(Problem(rel, "", f"duplicate id '{cid}'"))
        return
    data, probs = read_yaml(path, rel)
    kb.problems += probs
    if probs:
        return
    if not isinstance(data, dict):
        kb.problems.append(Problem(rel, "", f"a claim must be a mapping (got {type(data).__name__})"))
        return
    bad = [Problem(rel, f, m) for f, m in hazards(data)]
    if bad:
        kb.problems += bad
        return
    try:
        kb.claims[cid] = Claim.model_validate(data)
        kb.files[cid] = rel
    except ValidationError as e:
        kb.problems += validation_problems(e, rel, Claim)


def parse_claim(raw: bytes, rel: str) -> tuple[Claim | None, list[Problem]]:
    """One claim from YAML bytes (e.g. an old version from git), checked as a claim file is
    (safe YAML, no hazards, today's schema); (None, problems) when it does not parse."""
    data, probs = parse_yaml(raw, rel)
    if probs:
        return None, probs
    if not isinstance(data, dict):
        return None, [Problem(rel, "", f"a claim must be a mapping (got {type(data).__name__})")]
    bad = [Problem(rel, f, m) for f, m in hazards(data)]
    if bad:
        return None, bad
    try:
        return Claim.model_validate(data), []
    except ValidationError as e:
        return None, validation_problems(e, rel, Claim)


def _cross_checks(kb: KnowledgeBase) -> None:
    sections = kb.catalogue.sections if kb.catalogue else {}
    seeds = kb.catalogue.seeds if kb.catalogue else {}
    for cid, c in kb.claims.items():
        rel = kb.files[cid]
        if kb.catalogue and c.section not in sections:
            close = difflib.get_close_matches(c.section, list(sections), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            kb.problems.append(Problem(rel, "section", f"unknown section '{c.section}'{hint}"))
        for i, s in enumerate(c.sources):
            if kb.catalogue and s.seed not in seeds:
                kb.problems.append(Problem(rel, f"sources.{i}.seed", f"unknown seed '{s.seed}'"))
        for i, cit in enumerate(c.citations):
            if cit.ref not in kb.references:
                close = difflib.get_close_matches(cit.ref, list(kb.references), n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                kb.problems.append(Problem(rel, f"citations.{i}.ref", f"unknown reference '{cit.ref}'{hint}"))
        for rel_kind in ("uses", "contests"):
            for i, other in enumerate(getattr(c.relations, rel_kind)):
                if other not in kb.claims:
                    kb.problems.append(Problem(rel, f"relations.{rel_kind}.{i}", f"no claim with id '{other}'"))
                elif other == cid:
                    kb.problems.append(Problem(rel, f"relations.{rel_kind}.{i}", "a claim cannot relate to itself"))
    for cycle in _uses_cycles(kb):
        first = cycle[0]
        kb.problems.append(Problem(kb.files[first], "relations.uses",
                                   "'uses' cycle: " + " -> ".join(cycle + [first])))


def _uses_cycles(kb: KnowledgeBase) -> list[list[str]]:
    """Each elementary cycle found by DFS, reported once (by its smallest id)."""
    graph = {cid: [u for u in c.relations.uses if u in kb.claims] for cid, c in kb.claims.items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    found: dict[frozenset[str], list[str]] = {}

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for m in graph[n]:
            if state.get(m) == 1:
                cyc = stack[stack.index(m):]
                found.setdefault(frozenset(cyc), cyc)
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)
    return list(found.values())


def load_kb(root: Path | str = ".") -> KnowledgeBase:
    """Read claims/, its catalogue and references; collect every structural problem."""
    root = Path(root).resolve()
    kb = KnowledgeBase(root=root)
    cdir = root / "claims"
    if not cdir.is_dir():
        kb.problems.append(Problem("claims/", "", "folder not found"))
        return kb
    _load_catalogue(kb, cdir)
    _load_references(kb, cdir)
    for path in sorted(cdir.iterdir()):
        if path.name.startswith(("_", ".")) or path.suffix not in (".yaml", ".yml"):
            continue
        _load_claim(kb, path)
    _cross_checks(kb)
    _table_checks(kb)
    return kb


def _table_checks(kb: KnowledgeBase) -> None:
    """Published claims' transcribed tables load cleanly (principia/tables.py)."""
    from .tables import table_problems
    kb.problems += table_problems(kb)
