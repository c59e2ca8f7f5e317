"""The `principia calc` command line: JSON keys, tables, and exit code 2 on bad input."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from principia.cli import calculators as calc
from principia.formulas import chinchilla_optimum, zero_bytes_per_gpu
from tests.conftest import ROOT


def _json(capsys, *argv: str) -> dict:
    assert calc.main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_flops_json_has_flops_and_pf_days(capsys):
    """`calc flops --json` prints exactly flops and pf_days."""
    out = _json(capsys, "flops", "--params", "174.6e9", "--tokens", "300e9")
    assert set(out) == {"flops", "pf_days"}
    assert out["pf_days"] == pytest.approx(3637.5, rel=1e-3)


def test_flops_per_param_token_is_used(capsys):
    """T5 counted at 3 FLOPs per parameter-token gives Table D.1's 104 PF-days."""
    out = _json(capsys, "flops", "--params", "3B", "--tokens", "1T", "--flops-per-param-token", "3")
    assert out["pf_days"] == pytest.approx(104.17, rel=1e-3)


def test_chinchilla_json_keys_and_values(capsys):
    """`calc chinchilla --json` prints params, tokens and tokens_per_param of Eq. 4, and the fit used."""
    out = _json(capsys, "chinchilla", "--compute", "5.76e23", "--fit", "hoffmann-unrounded")
    assert set(out) == {"params", "tokens", "tokens_per_param", "fit", "fit_source"}
    assert out["params"] == pytest.approx(40.36e9, rel=1e-3)


def test_chinchilla_default_fit_reproduces_the_papers_40b(capsys):
    """With no --fit the calculator uses a fit that gives Hoffmann's own 40B at Gopher's budget."""
    out = _json(capsys, "chinchilla", "--compute", "5.76e23")
    assert out["fit"] == "hoffmann-unrounded" and "warning" not in out
    assert out["params"] == pytest.approx(40e9, rel=0.02)


def test_chinchilla_rounded_fit_says_it_misses_the_papers_optimum(capsys):
    """Choosing Eq. 10 as printed gives 32B and a warning naming the discrepancy."""
    out = _json(capsys, "chinchilla", "--compute", "5.76e23", "--fit", "hoffmann")
    assert out["fit"] == "hoffmann" and "32B" in out["warning"]
    assert out["params"] == pytest.approx(32.2e9, rel=0.01)


def test_chinchilla_fit_parameters_override_the_named_fit(capsys):
    """Passing the unrounded α and β to the printed fit reproduces the 40B optimum."""
    out = _json(capsys, "chinchilla", "--compute", "5.76e23", "--fit", "hoffmann",
                "--alpha", "0.33917084", "--beta", "0.2849083")
    assert out["params"] == pytest.approx(40.3e9, rel=0.01)
    assert out["params"] != pytest.approx(chinchilla_optimum(5.76e23, "hoffmann")["params"], rel=0.05)


def test_zero_json_matches_the_formula(capsys):
    """`calc zero` reports the ZeRO bytes per GPU for the given stage."""
    out = _json(capsys, "zero", "--params", "7.5B", "--gpus", "64", "--stage", "2")
    assert out == {"bytes_per_gpu": zero_bytes_per_gpu(7.5e9, 64, 2)}


def test_memory_json_splits_weights_grads_optimizer(capsys):
    """`calc memory --json` gives bytes per parameter and totals for each part."""
    out = _json(capsys, "memory", "--params", "1B", "--precision", "bf16-mixed", "--optimizer", "adam")
    assert set(out) == {"bytes_per_param", "weights", "grads", "optimizer", "total"}
    assert out["bytes_per_param"] == {"weights": 2, "grads": 2, "optimizer": 12, "total": 16}
    assert out["total"] == 16e9


def test_table_output_names_each_quantity(capsys):
    """Without --json the result is a readable table of named rows."""
    assert calc.main(["memory", "--params", "1e9"]) == 0
    text = capsys.readouterr().out
    for word in ("weights", "grads", "optimizer", "total"):
        assert word in text


@pytest.mark.parametrize("argv", [
    ["flops", "--params", "-5", "--tokens", "3"],
    ["flops", "--params", "abc", "--tokens", "3"],
    ["chinchilla", "--compute", "1e20", "--fit", "kaplan"],
    ["zero", "--params", "1e9", "--gpus", "0", "--stage", "1"],
    ["zero", "--params", "1e9", "--gpus", "8", "--stage", "5"],
    ["memory", "--params", "1e9", "--precision", "fp8"],
])
def test_bad_input_exits_with_code_2(capsys, argv):
    """Negative sizes, non-numbers, unknown fits, stages or precisions exit with code 2 and a message."""
    assert calc.main(argv) == 2
    assert "error" in capsys.readouterr().err


def test_number_suffixes():
    """7B, 1.4T, 500M and 2K read as powers of ten."""
    assert [calc.parse_number(s) for s in ("7B", "1.4T", "500M", "2K", "3e5")] == \
        [7e9, 1.4e12, 5e8, 2e3, 3e5]


def test_module_entry_point_runs():
    """`python -m principia.cli.calculators` prints JSON and exits 0."""
    r = subprocess.run([sys.executable, "-m", "principia.cli.calculators", "flops", "--params", "1e9",
                        "--tokens", "2e10", "--json"], cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["flops"] == 1.2e20


def test_run_reports_value_errors_with_code_2(capsys):
    """A calculation that raises ValueError becomes exit code 2, not a traceback."""
    ns = calc.argparse.Namespace(calc_show=lambda a: calc.calc_chinchilla(1e20, "nope"), json=False)
    assert calc.run(ns) == 2
    assert "fit must be one of" in capsys.readouterr().err


# ---------------------------------------------------------------- hostile and extreme input

@pytest.mark.parametrize("args", [
    ["chinchilla", "--compute", "1e24", "--alpha", "1e-300"],
    ["chinchilla", "--compute", "1e24", "--A", "1e308"],
    ["flops", "--params", "1e200", "--tokens", "1e200", "--json"],
])
def test_extreme_inputs_exit_2_without_traceback_or_infinity(capsys, args):
    """Inputs beyond float range give exit code 2 and a message, never Infinity or a traceback."""
    from principia.cli.calculators import main as calc_main
    assert calc_main(args) == 2
    out, err = capsys.readouterr()
    assert "error:" in err and "Infinity" not in out and "Traceback" not in err


def test_suffixless_magnitude_is_warned_about(capsys):
    """`--params 175` (the B forgotten) still computes, with a warning naming the argument."""
    from principia.cli.calculators import main as calc_main
    assert calc_main(["flops", "--params", "175", "--tokens", "300B"]) == 0
    assert "--params 175" in capsys.readouterr().err


def test_params_counts_gpt2_small_from_the_shared_formula(capsys):
    """`calc params` gives GPT-2 small's 124,439,808 parameters as JSON key 'params'."""
    from principia.cli.calculators import main as calc_main
    assert calc_main(["params", "--layers", "12", "--d-model", "768", "--vocab", "50257",
                      "--ctx", "1024", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["params"] == 124_439_808


def test_params_formula_is_the_one_the_claim_verifies():
    """The verifier of param-count-12ld2 counts exactly what formulas.gpt_params says."""
    from principia.formulas import gpt_params
    from verifiers.architecture import param_count_12ld2
    ev = param_count_12ld2(shapes=[[2, 64], [12, 768]], head_size=64)
    assert ev.measured["unexplained_params"].value == 0
    for row in ev.table:
        assert row["N counted"] == gpt_params(row["n_layer"], row["d_model"])["non_embedding"]


@pytest.mark.parametrize("args", [["params", "--layers", "0", "--d-model", "8"],
                                  ["params", "--layers", "2", "--d-model", "8", "--vocab", "-1"]])
def test_params_rejects_impossible_shapes(args):
    """Zero layers or a negative vocabulary exit with code 2."""
    from principia.cli.calculators import main as calc_main
    assert calc_main(args) == 2
