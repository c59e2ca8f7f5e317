"""The fitting library (principia.fit) and the `principia fit` command (principia.cli.fit_runs)."""
from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import check_grad

from principia.fit import (FitInputError, _objective, fit_chinchilla, fit_power_law, huber)
from principia.cli.fit_runs import main, read_runs, RunsError
from principia.formulas import FITS, chinchilla_optimum

# A known law to recover: Hoffmann et al. 2022 Eq. 10 (as printed).
TRUE = FITS["hoffmann"]


def chinchilla_runs(noise: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 6 × 6 grid of (N, D) over three decades each, losses from the known law."""
    N = np.repeat(np.logspace(7, 10, 6), 6)
    D = np.tile(np.logspace(9, 12, 6), 6)
    L = TRUE.loss(N, D) * np.exp(np.random.default_rng(seed).normal(0, noise, N.size))
    return N, D, L


def write_csv(path, rows, header="params,tokens,loss") -> str:
    path.write_text(header + "\n" + "\n".join(",".join(str(v) for v in r) for r in rows) + "\n")
    return str(path)


# ---------------------------------------------------------------- fit_power_law

@settings(max_examples=25, deadline=None)
@given(alpha=st.floats(0.05, 1.5), A=st.floats(0.1, 100), E=st.floats(0, 3))
def test_power_law_with_known_E_recovers_alpha_and_A(alpha, A, E):
    """Noiseless points from y = E + A·x^-α give back α and A when E is known."""
    x = np.logspace(1, 5, 7)
    fit = fit_power_law(x, E + A * x ** -alpha, E=E, n_boot=0)
    assert fit.alpha == pytest.approx(alpha, rel=1e-5)
    assert fit.A == pytest.approx(A, rel=1e-4)
    assert fit.r2 == pytest.approx(1.0, abs=1e-9)


def test_power_law_with_free_E_recovers_E():
    """With E left free the least-squares fit finds E, A and α of noiseless data."""
    x = np.logspace(1, 6, 9)
    fit = fit_power_law(x, 1.7 + 4.0 * x ** -0.3, n_boot=50)
    assert (fit.E, fit.A, fit.alpha) == pytest.approx((1.7, 4.0, 0.3), rel=1e-3)
    lo, hi = fit.intervals["E"]
    assert lo <= fit.E <= hi


def test_power_law_bootstrap_interval_covers_the_truth_under_noise():
    """With 1% noise the 95% bootstrap interval of α contains the true exponent."""
    x = np.logspace(2, 5, 10)
    y = 0.5 + 3.0 * x ** -0.4 * np.exp(np.random.default_rng(1).normal(0, 0.01, x.size))
    lo, hi = fit_power_law(x, y, E=0.5, n_boot=300).intervals["alpha"]
    assert lo < 0.4 < hi and hi - lo < 0.05


def test_power_law_rejects_points_below_a_known_E():
    """A known E above some y cannot be fitted, and the error says so."""
    with pytest.raises(FitInputError, match="exceed the known E"):
        fit_power_law([1, 10, 100], [3.0, 2.0, 1.0], E=1.5)


def test_power_law_rejects_non_positive_x():
    """x must be positive for a power law."""
    with pytest.raises(FitInputError, match="'x' must be positive"):
        fit_power_law([0, 1, 2], [3.0, 2.0, 1.0])


# ---------------------------------------------------------------- fit_chinchilla

def test_huber_is_quadratic_inside_delta_and_linear_outside():
    """Huber(r) = r²/2 for |r| ≤ δ and δ(|r| − δ/2) beyond."""
    r = np.array([-0.5e-3, 0.9e-3, 2e-3, -1.0])
    assert huber(r, 1e-3) == pytest.approx([0.5 * 0.5e-3 ** 2, 0.5 * 0.9e-3 ** 2,
                                            1e-3 * (2e-3 - 0.5e-3), 1e-3 * (1.0 - 0.5e-3)])


@pytest.mark.parametrize("delta", [1e-3, 1.0])
def test_chinchilla_objective_gradient_matches_finite_differences(delta):
    """The analytic gradient of Σ Huber(LSE − log L) agrees with finite differences."""
    N, D, L = chinchilla_runs(noise=0.01)
    args = (np.log(N), np.log(D), np.log(L), delta)
    theta = np.array([5.5, 6.5, 0.4, 0.3, 0.3])
    err = check_grad(lambda t: _objective(t, *args)[0], lambda t: _objective(t, *args)[1], theta)
    assert err < 1e-5 * max(1.0, np.linalg.norm(_objective(theta, *args)[1]))


def test_chinchilla_fit_recovers_a_known_law_exactly():
    """Noiseless losses from Hoffmann et al.'s Eq. 10 give back its five constants."""
    fit = fit_chinchilla(*chinchilla_runs(), n_boot=0)
    got = (fit.E, fit.A, fit.B, fit.alpha, fit.beta)
    assert got == pytest.approx((TRUE.E, TRUE.A, TRUE.B, TRUE.alpha, TRUE.beta), rel=1e-3)


def test_chinchilla_fit_recovers_a_known_law_under_noise():
    """With 0.3% noise the exponents land within 0.01 and E within 2% of the truth."""
    fit = fit_chinchilla(*chinchilla_runs(noise=0.003), n_boot=10)
    assert fit.alpha == pytest.approx(TRUE.alpha, abs=0.01)
    assert fit.beta == pytest.approx(TRUE.beta, abs=0.01)
    assert fit.E == pytest.approx(TRUE.E, rel=0.02)
    assert set(fit.intervals) == {"E", "A", "B", "alpha", "beta"}


def test_chinchilla_fit_needs_five_rows():
    """Four rows cannot pin down five parameters."""
    with pytest.raises(FitInputError, match="at least 5 rows"):
        fit_chinchilla([1e8] * 4, [1e9] * 4, [3.0] * 4)


# ---------------------------------------------------------------- principia fit

@pytest.fixture
def runs_csv(tmp_path):
    N, D, L = chinchilla_runs(noise=0.002)
    return write_csv(tmp_path / "runs.csv", [(f"{n:.6g}", f"{d:.6g}", f"{l:.6f}")
                                             for n, d, l in zip(N, D, L)])


def test_cli_recovers_the_law_from_a_csv(runs_csv, capsys):
    """`principia fit runs.csv --json` prints constants close to the law that made the data."""
    assert main([runs_csv, "--json", "--boot", "0"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["alpha"] == pytest.approx(TRUE.alpha, abs=0.01)
    assert doc["beta"] == pytest.approx(TRUE.beta, abs=0.01)
    assert doc["E"] == pytest.approx(TRUE.E, rel=0.02)


def test_cli_json_shape(runs_csv, capsys):
    """The JSON holds E, A, B, alpha, beta, [lo, hi] intervals and the optimum per budget."""
    assert main([runs_csv, "--json", "--boot", "3", "--compute", "5.76e23"]) == 0
    doc = json.loads(capsys.readouterr().out)
    for k in ("E", "A", "B", "alpha", "beta"):
        assert isinstance(doc[k], float) and math.isfinite(doc[k])
        lo, hi = doc["intervals"][k]
        assert lo <= hi
    (opt,) = doc["optimum"]
    assert opt["compute"] == 5.76e23
    assert set(opt) >= {"params", "tokens", "tokens_per_param", "loss"}
    assert opt["tokens_per_param"] == pytest.approx(opt["tokens"] / opt["params"])


def test_cli_optimum_is_the_formula_applied_to_the_fit(runs_csv, capsys):
    """The reported allocation equals chinchilla_optimum of a ChinchillaFit built from the fit."""
    main([runs_csv, "--json", "--boot", "0", "--compute", "1e22"])
    doc = json.loads(capsys.readouterr().out)
    f = fit_chinchilla(*read_runs(runs_csv), n_boot=0).as_formula()
    assert doc["optimum"][0]["params"] == pytest.approx(chinchilla_optimum(1e22, f)["params"], rel=1e-6)


def test_cli_text_output_names_every_constant(runs_csv, capsys):
    """The text report lists the five constants and a compute-optimal table."""
    assert main([runs_csv, "--boot", "0"]) == 0
    out = capsys.readouterr().out
    for k in ("E ", "A ", "B ", "alpha", "beta", "tokens/param"):
        assert k in out


def test_cli_plot_is_valid_svg(runs_csv, tmp_path, capsys):
    """--plot writes a parseable SVG with the runs and the fitted frontier."""
    out = tmp_path / "fit.svg"
    assert main([runs_csv, "--boot", "0", "--plot", str(out)]) == 0
    root = ET.fromstring(out.read_text())
    assert root.tag.endswith("svg") and "fitted frontier" in out.read_text()


@pytest.mark.parametrize("header,rows,message", [
    ("params,tokens", [(1, 2)] * 5, "missing column(s) 'loss'"),
    ("params,tokens,loss", [(1e8, 1e9, 3.0)] * 4 + [(1e8, 1e9, "abc")], "row 6: column 'loss' must be a number"),
    ("params,tokens,loss", [(1e8, 1e9, 3.0)] * 4 + [(1e8, -5, 3.0)], "row 6: column 'tokens' must be a positive"),
    ("params,tokens,loss", [(1e8, 1e9, 3.0)] * 4, "need at least 5 runs"),
    ("params,tokens,loss", [(1e8, 1e9, 3.0)] * 4 + [("", 1e9, 3.0)], "row 6: column 'params' is empty"),
])
def test_cli_bad_csv_exits_2_and_names_the_place(tmp_path, capsys, header, rows, message):
    """A bad runs file ends with exit code 2 and a message naming the file, row and column."""
    path = write_csv(tmp_path / "bad.csv", rows, header)
    assert main([path]) == 2
    err = capsys.readouterr().err
    assert path in err and message in err


def test_cli_missing_file_exits_2(tmp_path, capsys):
    """A path that is not a file is reported, not raised."""
    assert main([str(tmp_path / "nope.csv")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_read_runs_skips_blank_lines_and_extra_columns(tmp_path):
    """Extra columns and empty lines are ignored."""
    path = tmp_path / "r.csv"
    path.write_text("name,params,tokens,loss\na,1e8,1e9,3.1\n\nb,2e8,1e9,3.0\nc,4e8,1e9,2.9\n"
                    "d,8e8,1e9,2.8\ne,1.6e9,1e9,2.7\n")
    N, D, L = read_runs(path)
    assert N == [1e8, 2e8, 4e8, 8e8, 1.6e9] and L[-1] == 2.7


def test_runs_error_is_a_value_error():
    """Callers may catch RunsError as a ValueError."""
    assert issubclass(RunsError, ValueError)


# ---------------------------------------------------------------- hostile runs files

@pytest.mark.parametrize("content,message", [
    (b"params,params,tokens,loss\n" + b"1e8,1e8,1e9,3\n" * 5, "appear more than once"),
    (b"params,tokens,loss\n1e8,1e9,\xff\xfe\n", "not UTF-8"),
    (b"params,tokens,loss\n" + b"1e8,1e9,3.0\n" * 5, "distinct value"),
    (b"params,tokens,loss\n" + b"".join(b"%d,1e9,3.0\n" % (10 ** k) for k in range(6, 11)), "'tokens' has 1 distinct"),
    (b"params,tokens,loss\n" + b"".join(b"1e306,%d,3.0\n" % (10 ** k) for k in range(6, 11)), "overflow"),
    (b"params,tokens,loss\n1e8,1e9,\"" + b"9" * 140_000 + b"\"\n", "row 2"),
])
def test_hostile_runs_files_get_a_clear_error(tmp_path, capsys, content, message):
    """Duplicate headers, bad bytes, identical rows, a degenerate design, overflowing sizes and
    oversized fields exit with code 2 and a message naming the file."""
    path = tmp_path / "runs.csv"
    path.write_bytes(content)
    assert main([str(path), "--boot", "0"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and message in err and "Traceback" not in err


def test_byte_order_mark_is_read_as_utf8(tmp_path):
    """A spreadsheet's UTF-8 byte-order mark does not hide the first column."""
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfparams,tokens,loss\n" + b"1e8,1e9,3\n" * 5)
    assert read_runs(path)[0] == [1e8] * 5


def test_grid_search_memory_does_not_grow_with_rows():
    """Scoring the initialisation grid on 20,000 rows stays under 200 MB of numpy memory."""
    import tracemalloc
    from principia.fit import HOFFMANN_GRID, _grid, _grid_scores
    rng = np.random.default_rng(0)
    lN, lD = np.log(10 ** rng.uniform(7, 10, 20_000)), np.log(10 ** rng.uniform(9, 11, 20_000))
    lL = np.log(1.7 + np.exp(6 - 0.34 * lN) + np.exp(6 - 0.28 * lD))
    tracemalloc.start()
    _grid_scores(_grid(HOFFMANN_GRID), lN, lD, lL, 1e-3)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 200 * 2**20, peak


def test_more_runs_than_the_limit_are_refused_before_fitting(tmp_path, capsys):
    """A runs file past MAX_ROWS (1M rows once asked for 33.5 GiB) is refused by its size."""
    from principia.cli.fit_runs import MAX_ROWS
    path = tmp_path / "many.csv"
    path.write_text("params,tokens,loss\n" + "1e8,1e9,3.0\n" * (MAX_ROWS + 1))
    assert main([str(path), "--boot", "0"]) == 2
    assert f"more than {MAX_ROWS} runs" in capsys.readouterr().err
