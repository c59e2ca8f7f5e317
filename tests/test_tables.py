"""Transcribed published tables: the loader accepts a good file and names file and row of a bad one."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from principia.tables import MAX_CSV_BYTES, load_table, load_tables

META = """\
reference: wei2022emergent
title: "Emergence scales"
locator: "Table 1, p. 7"
method: printed
columns:
  task: {type: str, unit: none}
  params: {type: float, unit: parameters}
"""
CSV = "task,params,locator,confirmed\naddition,1.3e10,Table 1 row 1,yes\nwic,5.4e11,Table 1 row 9,no\n"


def _write(root: Path, meta: str = META, csv: str = CSV, name: str = "t") -> str:
    d = root / "data" / "wei2022emergent"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.yaml").write_text(meta, encoding="utf-8")
    (d / f"{name}.csv").write_text(csv, encoding="utf-8")
    return f"wei2022emergent/{name}"


def _messages(root: Path, key: str) -> list[str]:
    table, probs = load_table(root, key)
    assert table is None
    return [str(p) for p in probs]


def test_good_table_loads_typed_rows(tmp_path):
    """A well-formed table gives typed rows with locator and confirmation status."""
    key = _write(tmp_path)
    table, probs = load_table(tmp_path, key)
    assert probs == [] and table.rows[0] == {"task": "addition", "params": 1.3e10,
                                             "locator": "Table 1 row 1", "confirmed": True}
    assert table.unconfirmed == 1


def test_row_without_locator_is_rejected(tmp_path):
    """A row with an empty locator is an error naming the file and the row."""
    key = _write(tmp_path, csv=CSV.replace("Table 1 row 9", ""))
    msgs = _messages(tmp_path, key)
    assert any("data/wei2022emergent/t.csv: row 3.locator" in m for m in msgs), msgs


def test_bad_number_names_row_and_column(tmp_path):
    """A cell that is not the declared type names its row and column."""
    key = _write(tmp_path, csv=CSV.replace("5.4e11", "540B"))
    assert any("row 3.params" in m and "'540B'" in m for m in _messages(tmp_path, key))


def test_non_finite_number_is_rejected(tmp_path):
    """NaN and inf are not published values."""
    key = _write(tmp_path, csv=CSV.replace("5.4e11", "nan"))
    assert any("row 3.params" in m for m in _messages(tmp_path, key))


def test_confirmed_must_be_yes_or_no(tmp_path):
    """The confirmation flag is yes or no, nothing else."""
    key = _write(tmp_path, csv=CSV.replace(",no\n", ",maybe\n"))
    assert any("row 3.confirmed" in m for m in _messages(tmp_path, key))


def test_header_must_match_declared_columns(tmp_path):
    """An undeclared or missing column is reported on the header row."""
    key = _write(tmp_path, csv=CSV.replace("task,params", "task,size"))
    assert any("row 1" in m and "header" in m for m in _messages(tmp_path, key))


def test_ragged_row_is_rejected(tmp_path):
    """A row with the wrong number of cells is named."""
    key = _write(tmp_path, csv=CSV + "extra,1,Table 1,yes,surplus\n")
    assert any("row 4" in m and "cells" in m for m in _messages(tmp_path, key))


def test_sidecar_needs_units_and_a_locator(tmp_path):
    """A column without a unit or a sidecar without a locator fails validation."""
    key = _write(tmp_path, meta=META.replace("unit: parameters", "text: size").replace('locator: "Table 1, p. 7"\n', ""))
    msgs = _messages(tmp_path, key)
    assert any("locator" in m for m in msgs) and any("columns.params.unit" in m for m in msgs), msgs


def test_plot_readings_need_a_precision(tmp_path):
    """Values read off a plot must say how precisely."""
    key = _write(tmp_path, meta=META.replace("method: printed", "method: plot"))
    assert any("precision" in m for m in _messages(tmp_path, key))


def test_reference_must_match_the_folder(tmp_path):
    """The sidecar's reference key is the folder the table lives in."""
    key = _write(tmp_path, meta=META.replace("reference: wei2022emergent", "reference: kaplan2020"))
    assert any("reference" in m for m in _messages(tmp_path, key))


def test_symlinked_csv_is_not_read(tmp_path):
    """A symlink in place of the CSV is refused, not followed."""
    key = _write(tmp_path)
    target = tmp_path / "elsewhere.csv"
    target.write_text(CSV, encoding="utf-8")
    csv = tmp_path / "data" / "wei2022emergent" / "t.csv"
    csv.unlink()
    os.symlink(target, csv)
    assert any("symlink" in m for m in _messages(tmp_path, key))


def test_oversized_csv_is_refused(tmp_path):
    """A CSV over the size cap is refused before it is parsed."""
    key = _write(tmp_path, csv=CSV + "x,1,Table 1,yes\n" * (MAX_CSV_BYTES // 10))
    assert any("limit" in m for m in _messages(tmp_path, key))


def test_missing_file_and_bad_key(tmp_path):
    """A missing table and a malformed key are both reported, not raised."""
    assert any("not found" in m for m in _messages(tmp_path, "wei2022emergent/absent"))
    assert any("reference-key/name" in m for m in _messages(tmp_path, "../etc/passwd"))


def test_load_tables_raises_a_named_error(tmp_path):
    """The engine's entry point raises ValueError naming the file and row."""
    key = _write(tmp_path, csv=CSV.replace("Table 1 row 9", ""))
    with pytest.raises(ValueError, match="t.csv: row 3.locator"):
        load_tables(tmp_path, [key])
