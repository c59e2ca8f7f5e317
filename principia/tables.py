"""Transcribed published tables: ``data/<reference-key>/<name>.csv`` with a sidecar ``<name>.yaml``.

The CSV holds one row per published point and stays a plain CSV (it is what the site offers for
download). Every row carries its own ``locator`` (table, figure, page) and ``confirmed``
(``yes`` when the number was checked against the paper's text or released data, ``no``
otherwise). The sidecar says which work it comes from, how the values were read (``printed``, or
``plot`` with the reading precision) and declares every other column with its type and unit.

Files are validated like claims: every problem is a ``Problem(file, field, message)`` naming the
file and the row; only regular files inside ``data/`` are read (no symlinks), each size-capped.
"""
from __future__ import annotations

import csv
import hashlib
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from .safeyaml import read_regular
from .schema import TABLE_KEY_RE as TABLE_RE, Strict

__all__ = ["Column", "TableMeta", "Table", "load_table", "load_tables", "tables_digest",
           "table_problems", "MAX_CSV_BYTES", "MAX_ROWS", "TABLE_RE"]

MAX_CSV_BYTES = 256 * 1024
MAX_ROWS = 2000
ROW_KEYS = ("locator", "confirmed")  # every row carries these
CONFIRMED = {"yes": True, "no": False}


class Column(Strict):
    type: Literal["str", "float", "int"]
    unit: str = Field(description="Unit of the values; 'none' for names and counts of things")
    text: str = ""


class TableMeta(Strict):
    """The sidecar ``<name>.yaml`` of a transcribed table."""

    reference: str = Field(description="Key of the work in claims/_references*.yaml")
    title: str = Field(min_length=3)
    locator: str = Field(min_length=2, description="Where in the work the whole table is")
    method: Literal["printed", "plot"]
    precision: str = Field("", description="For values read off a plot: how precisely")
    columns: dict[str, Column] = Field(min_length=1)
    notes: str = ""

    @model_validator(mode="after")
    def _plot_precision(self) -> "TableMeta":
        if self.method == "plot" and not self.precision.strip():
            raise ValueError("values read off a plot need 'precision' (e.g. '±0.5 percentage points')")
        clash = [c for c in self.columns if c in ROW_KEYS]
        if clash:
            raise ValueError(f"columns {clash} are added to every row by the loader; do not declare them")
        return self


@dataclass
class Table:
    key: str                       # "<reference-key>/<name>"
    meta: TableMeta
    rows: list[dict[str, Any]] = field(default_factory=list)
    csv_text: str = ""

    @property
    def unconfirmed(self) -> int:
        return sum(not r["confirmed"] for r in self.rows)


def _problem(rel: str, where: str, msg: str):
    from .loader import Problem  # late: the loader calls into this module
    return Problem(rel, where, msg)


def _safe_file(root: Path, rel: str) -> tuple[Path | None, str]:
    """The path if it is a regular file inside data/ reached without symlinks, else a reason."""
    data = root / "data"
    path = root / rel
    cur = data
    for part in Path(rel).relative_to("data").parts:
        cur = cur / part
        if cur.is_symlink():
            return None, "symlinks are not read"
    if not path.exists():
        return None, "file not found"
    if not path.is_file():
        return None, "not a regular file"
    if data.is_symlink() or not path.resolve().is_relative_to(data.resolve()):
        return None, "outside the data/ folder"
    return path, ""


def _cell(value: str, col: Column) -> Any:
    if col.type == "str":
        if not value.strip():
            raise ValueError("empty")
        return value.strip()
    num = int(value) if col.type == "int" else float(value)
    if not math.isfinite(num):
        raise ValueError("not finite")
    return num


def _rows(text: str, meta: TableMeta, rel: str) -> tuple[list[dict[str, Any]], list[Any]]:
    """Typed rows and the problems of each (naming the CSV row, header = row 1)."""
    reader = csv.reader(io.StringIO(text), strict=True)
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        return [], [_problem(rel, "row 1", "no header row")]
    want = list(meta.columns) + list(ROW_KEYS)
    if sorted(header) != sorted(want) or len(set(header)) != len(header):
        return [], [_problem(rel, "row 1", f"header must name exactly {want} (got {header})")]
    rows, probs = [], []
    try:
        for n, raw in enumerate(reader, start=2):
            if len(rows) >= MAX_ROWS:
                return rows, [_problem(rel, f"row {n}", f"more than {MAX_ROWS} rows")]
            if len(raw) != len(header):
                probs.append(_problem(rel, f"row {n}", f"{len(raw)} cells for {len(header)} columns"))
                continue
            row, bad = _typed(dict(zip(header, raw)), meta)
            probs += [_problem(rel, f"row {n}.{k}", m) for k, m in bad]
            if not bad:
                rows.append(row)
    except csv.Error as e:
        probs.append(_problem(rel, f"row {reader.line_num}", f"CSV error: {e}"))
    if not rows and not probs:
        probs.append(_problem(rel, "", "no data rows"))
    return rows, probs


def _typed(raw: dict[str, str], meta: TableMeta) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    row: dict[str, Any] = {}
    bad = []
    if len(raw["locator"].strip()) < 2:
        bad.append(("locator", "every row needs a locator (table, figure, page)"))
    row["locator"] = raw["locator"].strip()
    conf = raw["confirmed"].strip().lower()
    if conf not in CONFIRMED:
        bad.append(("confirmed", f"must be 'yes' or 'no' (got {raw['confirmed']!r})"))
    row["confirmed"] = CONFIRMED.get(conf, False)
    for name, col in meta.columns.items():
        try:
            row[name] = _cell(raw[name], col)
        except ValueError:
            bad.append((name, f"expected a {col.type} (got {raw[name]!r})"))
    return row, bad


def _read_meta(root: Path, key: str) -> tuple[TableMeta | None, list[Any]]:
    from .loader import read_yaml, validation_problems
    rel = f"data/{key}.yaml"
    path, why = _safe_file(root, rel)
    if path is None:
        return None, [_problem(rel, "", why)]
    data, probs = read_yaml(path, rel)
    if probs:
        return None, probs
    try:
        return TableMeta.model_validate(data), []
    except ValidationError as e:
        return None, validation_problems(e, rel, TableMeta)


def _read_csv(root: Path, rel: str) -> tuple[str | None, list[Any]]:
    path, why = _safe_file(root, rel)
    if path is None:
        return None, [_problem(rel, "", why)]
    raw, probs = read_regular(path, rel, MAX_CSV_BYTES)  # one bounded, non-following read
    if raw is None:
        return None, probs
    try:
        return raw.decode("utf-8"), []
    except UnicodeDecodeError as e:
        return None, [_problem(rel, "", f"not UTF-8 (byte {e.start})")]


def load_table(root: Path | str, key: str) -> tuple[Table | None, list[Any]]:
    """One table by its key '<reference-key>/<name>': (table, problems); never raises on bad files."""
    root = Path(root)
    if not re.fullmatch(TABLE_RE, key):
        return None, [_problem("data/", key, f"a table key looks like 'reference-key/name' (got {key!r})")]
    meta, probs = _read_meta(root, key)
    text, more = _read_csv(root, f"data/{key}.csv")
    probs += more
    if meta is None or text is None:
        return None, probs
    if meta.reference != key.split("/")[0]:
        return None, probs + [_problem(f"data/{key}.yaml", "reference",
                                       f"must name the folder's work '{key.split('/')[0]}' (got '{meta.reference}')")]
    rows, more = _rows(text, meta, f"data/{key}.csv")
    if more:
        return None, probs + more
    return Table(key, meta, rows, text), probs


def load_tables(root: Path | str, keys: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The rows of each table, as the engine passes them to a verifier; raises ValueError on a bad file."""
    out = {}
    for key in keys:
        table, probs = load_table(root, key)
        if table is None or probs:
            raise ValueError("; ".join(map(str, probs)))
        out[key] = table.rows
    return out


def tables_digest(root: Path | str, keys: list[str]) -> str:
    """Hash of the tables' bytes: a changed transcription re-verifies its claims."""
    h = hashlib.sha256()
    for key in keys:
        for ext in ("yaml", "csv"):
            path, _ = _safe_file(Path(root), f"data/{key}.{ext}")
            h.update(path.read_bytes() if path and path.stat().st_size <= MAX_CSV_BYTES else b"-")
    return h.hexdigest()


def table_problems(kb: Any) -> list[Any]:
    """Each claim's tables load cleanly and cite a known reference (for the knowledge-base load)."""
    out = []
    for cid, claim in kb.claims.items():
        for i, key in enumerate(getattr(claim, "tables", []) or []):
            table, probs = load_table(kb.root, key)
            out += probs
            if table is None:
                out.append(_problem(kb.files[cid], f"tables.{i}", f"table '{key}' cannot be used"))
            elif table.meta.reference not in kb.references:
                out.append(_problem(f"data/{key}.yaml", "reference",
                                    f"unknown reference '{table.meta.reference}'"))
    return list(dict.fromkeys(out))
