"""`verify --budget-scale`: a bigger machine trains bigger ladders, and the result says so."""
from __future__ import annotations

import json

from principia.cli import main
from tests.conftest import claim_text, write_claim


def _verify(root, capsys, *extra: str) -> dict:
    capsys.readouterr()
    main(["--root", str(root), "verify", "--json", "--quiet", *extra])
    return json.loads(capsys.readouterr().out)["claims"][0]


def test_budget_scale_reaches_the_verifier_and_the_provenance(kb_root, capsys):
    """The scale multiplies the verifier's budget, re-runs a cached claim and is recorded."""
    write_claim(kb_root, "one", claim_text("budgeted", params="{flops: 1.0}"))
    assert _verify(kb_root, capsys)["verdict"] == "supported"
    row = _verify(kb_root, capsys, "--budget-scale", "3")
    assert row["cached"] is False and row["verdict"] == "refuted"  # x = 3, not about 1
    result = json.loads((kb_root / "results" / "one.fast.json").read_text())
    assert result["provenance"]["budget_scale"] == 3.0
    assert result["checks"][0]["measured"] == 3.0


def test_a_claim_cannot_set_the_budget_scale(kb_root, capsys):
    """budget_scale is the engine's to fill in: a claim naming it is rejected by `check`."""
    write_claim(kb_root, "one", claim_text("budgeted", params="{budget_scale: 5}"))
    assert main(["--root", str(kb_root), "check"]) == 1
    assert "budget_scale" in capsys.readouterr().err


def test_bad_budget_scale_is_a_usage_error(kb_root, capsys):
    """Zero, negative or non-numeric scales are refused with a message, not a traceback."""
    for bad in ("0", "-1", "inf", "x"):
        try:
            code = main(["--root", str(kb_root), "verify", "--budget-scale", bad])
        except SystemExit as e:
            code = e.code
        assert code == 2
        assert "--budget-scale" in capsys.readouterr().err
