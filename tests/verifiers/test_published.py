"""Re-analysis helpers for published tables: intervals, perturbations, ring volumes."""
from __future__ import annotations

import numpy as np
import pytest

from principia.schema import Claim
from verifiers import published as pub

ROWS = [{"model": "a", "params": 1e9, "locator": "T1", "confirmed": True},
        {"model": "b", "params": 1e11, "locator": "T1", "confirmed": False}]


def test_wilson_matches_a_known_interval():
    """6 of 11 gives the textbook Wilson 95% interval (0.280, 0.787)."""
    lo, hi = pub.wilson(6, 11)
    assert lo == pytest.approx(0.280, abs=1e-3) and hi == pytest.approx(0.787, abs=1e-3)


def test_wilson_stays_inside_zero_one():
    """At 0 of n and n of n the interval is clipped to [0, 1] and is not degenerate."""
    assert pub.wilson(0, 5)[0] == 0.0 and pub.wilson(0, 5)[1] > 0
    assert pub.wilson(5, 5)[1] == 1.0 and pub.wilson(5, 5)[0] < 1


def test_perturbed_rewrites_only_matching_rows():
    """A perturbation changes the rows it matches and leaves the input untouched."""
    out = pub.perturbed(ROWS, [{"where": {"model": "b"}, "set": {"params": 5.0}}])
    assert [r["params"] for r in out] == [1e9, 5.0] and ROWS[1]["params"] == 1e11


def test_perturbation_that_matches_nothing_is_an_error():
    """A falsifier whose perturbation hits no row fails loudly instead of doing nothing."""
    with pytest.raises(ValueError, match="matches no row"):
        pub.perturbed(ROWS, [{"where": {"model": "zzz"}, "set": {"params": 1.0}}])


def test_ring_volume_approaches_twice_the_shard():
    """Ring all-gather + reduce-scatter send 2(P-1)/P of the bytes: 0 at P=1, 1.75 at 8, -> 2."""
    assert pub.ring_bytes_per_gpu(1, 1.0) == 0
    assert pub.ring_bytes_per_gpu(8, 1.0) == pytest.approx(1.75)
    assert pub.ring_bytes_per_gpu(10**6, 1.0) == pytest.approx(2.0, rel=1e-5)


def test_bootstrap_median_brackets_the_median():
    """The bootstrap interval of the median contains the sample median."""
    x = np.log10(np.array([4e7, 6e9, 1.3e10, 6.8e10, 1.75e11, 2.8e11, 5.4e11]))
    lo, hi = pub.bootstrap_median(x, 2000, 0)
    assert lo <= np.median(x) <= hi


def test_emergence_scales_counts_abilities_below_the_threshold():
    """With a 50B threshold and factor 2, only the 1B row counts as far below."""
    ev = pub.emergence_scales({"t": [dict(r, ability=r["model"]) for r in ROWS]}, "t", 5e10, 2, 200, 0, [])
    assert ev.measured["share_far_below"].value == 0.5


def test_published_claim_needs_tables():
    """A claim of kind 'published' without tables, or tables on another kind, is rejected."""
    base = dict(title="t t t", statement="a statement long enough", section="s",
                sources=[{"seed": "x", "place": "p"}], citations=[{"ref": "r", "locator": "T1"}],
                verifier="verifiers.published:u_shaped_counts", tiers={"fast": {}},
                decision={"checks": [{"quantity": "x", "op": ">", "value": 0}]})
    with pytest.raises(ValueError, match="needs 'tables'"):
        Claim.model_validate({**base, "kind": "published"})
    with pytest.raises(ValueError, match="belong to kind 'published'"):
        Claim.model_validate({**base, "kind": "closed", "tables": ["wei2022ushape/patterns"]})
    assert Claim.model_validate({**base, "kind": "published", "tables": ["wei2022ushape/patterns"]})
