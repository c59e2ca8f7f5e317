"""``principia fit RUNS.csv``: fit the Chinchilla loss to your own runs.

Reads a CSV with columns ``params``, ``tokens``, ``loss`` (one training run per row; other columns
are ignored), fits L(N, D) = E + A/N^α + B/D^β as in Hoffmann et al. 2022 App. D.2 (see
``principia.fit.fit_chinchilla``) and prints the fit, its bootstrap intervals and the
compute-optimal allocation it implies (Hoffmann et al. 2022 Eq. 4, via
``principia.formulas.chinchilla_optimum``). Also runnable as ``python -m principia.cli.fit_runs``.
Exit codes: 0 ok, 2 bad input.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..evidence import Figure, Series
from ..formulas import chinchilla_optimum, training_flops

if TYPE_CHECKING:  # scipy is imported only when a fit runs, so the CLI itself starts fast
    from ..fit import ChinchillaFitResult

__all__ = ["add_parser", "run", "main", "read_runs", "check_design", "RunsError", "report"]

COLUMNS = ("params", "tokens", "loss")
MIN_ROWS = 5  # five parameters to fit
MAX_ROWS = 100_000  # far more runs than any scaling study; bounds the fit's time
MAX_BYTES = 32 * 2**20
MAX_VALUE = 1e30  # params and tokens beyond this overflow C = 6·N·D in float64 arithmetic
KEYS = ("E", "A", "B", "alpha", "beta")


class RunsError(ValueError):
    """The runs file cannot be used; the message names the file, row and column."""


def _cell(path: Path, row: int, col: str, text: str | None) -> float:
    if text is None or not text.strip():
        raise RunsError(f"{path}: row {row}: column '{col}' is empty")
    try:
        v = float(text)
    except ValueError:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise RunsError(f"{path}: row {row}: column '{col}' must be a number (got {shown!r})") from None
    if not math.isfinite(v) or v <= 0:
        raise RunsError(f"{path}: row {row}: column '{col}' must be a positive number (got {text!r})")
    if v > MAX_VALUE:
        raise RunsError(f"{path}: row {row}: column '{col}' is {v:.3g}; values above {MAX_VALUE:g} "
                        f"overflow the compute C = 6·N·D")
    return v


def _text_of(path: Path) -> str:
    """The file as text: UTF-8 (a leading byte-order mark is dropped), bounded in size."""
    if not path.is_file():
        raise RunsError(f"{path}: no such file")
    if path.stat().st_size > MAX_BYTES:
        raise RunsError(f"{path}: larger than {MAX_BYTES // 2**20} MiB")
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise RunsError(f"{path}: not UTF-8 text (byte {e.start}: {raw[e.start:e.start + 1]!r})") from None


def _header(path: Path, reader: csv.DictReader) -> list[str]:
    header = [h.strip() for h in reader.fieldnames or []]
    dup = sorted({h for h in header if header.count(h) > 1 and h})
    if dup:
        raise RunsError(f"{path}: column(s) {', '.join(repr(d) for d in dup)} appear more than once "
                        f"in the header")
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise RunsError(f"{path}: missing column(s) {', '.join(repr(m) for m in missing)} "
                        f"(expected {', '.join(COLUMNS)}; got {', '.join(header) or 'no header'})")
    return header


def read_runs(path: Path | str) -> tuple[list[float], list[float], list[float]]:
    """(N, D, L) from a CSV; rows are numbered as in a spreadsheet (the header is row 1)."""
    path = Path(path)
    reader = csv.DictReader(io.StringIO(_text_of(path), newline=""))
    cols: dict[str, list[float]] = {c: [] for c in COLUMNS}
    row_no = 1
    try:
        reader.fieldnames = _header(path, reader)
        for row_no, row in enumerate(reader, start=2):
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue  # blank line
            if len(cols["loss"]) >= MAX_ROWS:
                raise RunsError(f"{path}: more than {MAX_ROWS} runs; fit a sample of them")
            for c in COLUMNS:
                cols[c].append(_cell(path, row_no, c, row.get(c)))
    except csv.Error as e:
        raise RunsError(f"{path}: row {row_no + 1}: not readable CSV ({e})") from None
    if len(cols["loss"]) < MIN_ROWS:
        raise RunsError(f"{path}: need at least {MIN_ROWS} runs to fit 5 parameters "
                        f"(got {len(cols['loss'])})")
    return cols["params"], cols["tokens"], cols["loss"]


def check_design(path: Path | str, N: list[float], D: list[float]) -> None:
    """Refuse designs that cannot identify the law: alpha needs several model sizes, beta
    several data sizes, and identical runs are one run counted many times."""
    for name, xs in (("params", N), ("tokens", D)):
        if len(set(xs)) < 3:
            raise RunsError(f"{path}: column '{name}' has {len(set(xs))} distinct value(s); "
                            f"fitting its exponent needs at least 3")
    if len(set(zip(N, D))) < MIN_ROWS:
        raise RunsError(f"{path}: only {len(set(zip(N, D)))} distinct (params, tokens) pairs; "
                        f"need at least {MIN_ROWS} for 5 parameters")


def _budgets(N: list[float], D: list[float], given: list[float] | None) -> list[float]:
    """The budgets to report: those asked for, else the largest run's compute ×1, ×10, ×100."""
    if given:
        return sorted(given)
    top = max(training_flops(n, d) for n, d in zip(N, D))
    return [top, 10 * top, 100 * top]


def report(fit: ChinchillaFitResult, budgets: list[float]) -> dict[str, Any]:
    """The JSON document ``principia fit --json`` prints."""
    f = fit.as_formula()
    optimum = [{"compute": C, **chinchilla_optimum(C, f)}
               for C in budgets]
    return {**{k: getattr(fit, k) for k in KEYS},
            "intervals": {k: list(fit.intervals[k]) for k in KEYS if k in fit.intervals},
            "n_runs": fit.n, "n_boot": fit.n_boot, "optimum": optimum,
            "method": "Huber (delta 1e-3) on log loss, L-BFGS-B from a grid; "
                      "Hoffmann et al. 2022 App. D.2"}


def _text(doc: dict[str, Any]) -> str:
    lines = [f"Fit of L(N, D) = E + A/N^alpha + B/D^beta to {doc['n_runs']} runs "
             f"({doc['n_boot']} bootstrap refits for the intervals):"]
    for k in KEYS:
        iv = doc["intervals"].get(k)
        ci = f"  [{iv[0]:.4g}, {iv[1]:.4g}]" if iv else ""
        lines.append(f"  {k:<6}= {doc[k]:.4g}{ci}")
    lines.append("Compute-optimal allocation (C = 6·N·D):")
    lines.append(f"  {'compute':>10}  {'params':>10}  {'tokens':>10}  {'tokens/param':>12}  {'loss':>7}")
    for o in doc["optimum"]:
        lines.append(f"  {o['compute']:>10.3g}  {o['params']:>10.3g}  {o['tokens']:>10.3g}  "
                     f"{o['tokens_per_param']:>12.3g}  {o['loss']:>7.4g}")
    return "\n".join(lines)


def figure(N: list[float], D: list[float], L: list[float], fit: ChinchillaFitResult) -> Figure:
    """Observed loss against compute, with the fitted efficient frontier L(N_opt(C), D_opt(C))."""
    C = [training_flops(n, d) for n, d in zip(N, D)]
    lo, hi = math.log10(min(C)), math.log10(max(C)) + 1
    grid = [10 ** (lo + (hi - lo) * i / 60) for i in range(61)]
    f = fit.as_formula()
    front = [chinchilla_optimum(c, f)["loss"] for c in grid]
    return Figure("Chinchilla fit", "training compute C = 6ND (FLOPs)", "loss",
                  [Series("runs", C, L, "points"), Series("fitted frontier", grid, front)],
                  xscale="log", yscale="log",
                  caption="Points: the runs. Line: the fitted loss at the compute-optimal N, D.")


def _svg(fig: Figure) -> str:
    from ..site.svg import render_figure  # the site's renderer: one look for every plot
    return render_figure(asdict(fig))


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``fit`` on an argparse subparsers object."""
    p = subparsers.add_parser("fit", help="fit L(N, D) = E + A/N^a + B/D^b to a CSV of runs",
                              description=__doc__.split("\n\n")[1] if __doc__ else None)
    _arguments(p)
    p.set_defaults(fn=run)
    return p


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", type=Path, help="CSV with columns params, tokens, loss")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--plot", type=Path, metavar="OUT.svg", help="also write an SVG plot")
    p.add_argument("--boot", type=int, default=20, metavar="N",
                   help="bootstrap refits for the intervals (default 20; 0: none)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--compute", type=float, action="append", metavar="C",
                   help="budget in FLOPs for the optimum (repeatable; default: the largest "
                        "run's compute ×1, ×10, ×100)")


def run(args: argparse.Namespace) -> int:
    """Fit and print; 2 on bad input."""
    try:
        if not 0 <= args.boot <= 1000:
            raise RunsError(f"--boot must be between 0 and 1000 (got {args.boot})")
        if args.compute and any(not (c > 0 and math.isfinite(c)) for c in args.compute):
            raise RunsError(f"--compute must be positive (got {args.compute})")
        N, D, L = read_runs(args.runs)
        check_design(args.runs, N, D)
        from ..fit import FitInputError, fit_chinchilla
        try:
            fit = fit_chinchilla(N, D, L, n_boot=args.boot, seed=args.seed)
        except FitInputError as e:
            raise RunsError(f"{args.runs}: {e}") from None
    except RunsError as e:
        print(f"principia fit: error: {e}", file=sys.stderr)
        return 2
    doc = report(fit, _budgets(N, D, args.compute))
    print(json.dumps(doc, indent=2) if args.json else _text(doc))
    if args.plot:
        try:
            args.plot.write_text(_svg(figure(N, D, L, fit)), encoding="utf-8")
        except OSError as e:
            print(f"principia fit: error: cannot write {args.plot}: {e.strerror}", file=sys.stderr)
            return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="principia fit", description=__doc__.split("\n\n")[1])
    _arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
