"""A misspelt claim id or quantity gets the closest known name back."""
from __future__ import annotations

import pytest

from principia.loader import load_kb
from principia.verify import decide_result, select
from tests.conftest import claim_text, write_claim


def test_misspelt_id_suggests_the_closest_claim(kb_root):
    """Selecting 'tiny-clam' names 'tiny-claim'."""
    write_claim(kb_root, "tiny-claim", claim_text())
    with pytest.raises(KeyError, match="did you mean 'tiny-claim'"):
        select(load_kb(kb_root), ["tiny-clam"], None)


def test_misspelt_quantity_suggests_the_measured_name(kb_root):
    """A check on 'x_valu' when the verifier measured 'x_value' is an error that names 'x_value'."""
    write_claim(kb_root, "tiny-claim", claim_text().replace("quantity: x,", "quantity: x_valu,"))
    claim = load_kb(kb_root).claims["tiny-claim"]
    out = decide_result(claim, {"measured": {"x_value": {"value": 1.0}}}, None)
    assert out["verdict"] == "error"
    assert "did you mean 'x_value'" in out["reason"]
