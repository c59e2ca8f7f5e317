"""Decision rules: declared checks turn measurements into verdicts, and can always fail."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from principia.decide import combine, decide, evaluate_check, flip_margin, invert
from principia.evidence import Measure
from principia.schema import Check, Decision

finite = st.floats(-1e6, 1e6, allow_nan=False)


def _check(**kw) -> Check:
    return Check(quantity="q", **kw)


def test_point_comparison_supports_and_refutes():
    """Without an interval the point value decides."""
    assert evaluate_check(_check(op=">", value=1), Measure(2)).outcome == "supported"
    assert evaluate_check(_check(op=">", value=1), Measure(0.5)).outcome == "refuted"


def test_interval_straddling_threshold_is_inconclusive():
    """An effect whose interval contains the threshold is inside the noise."""
    assert evaluate_check(_check(op=">", value=0), Measure(0.1, -0.2, 0.4)).outcome == "inconclusive"
    assert evaluate_check(_check(op=">", value=0), Measure(0.3, 0.1, 0.5)).outcome == "supported"
    assert evaluate_check(_check(op=">", value=0), Measure(-0.3, -0.5, -0.1)).outcome == "refuted"


def test_missing_or_nan_measurement_is_an_error():
    """A quantity the verifier did not measure, or measured as NaN, is an error."""
    assert evaluate_check(_check(op="<", value=1), None).outcome == "error"
    assert evaluate_check(_check(op="<", value=1), Measure(float("nan"))).outcome == "error"


def test_a_measure_its_device_cannot_test_is_inconclusive():
    """A measure marked untestable settles nothing, whatever its value, and says why."""
    m = Measure(0.02, 0.01, 0.03, untestable="no bf16 units")
    out = evaluate_check(_check(op=">", value=1), m)
    assert out.outcome == "inconclusive" and "not testable here: no bf16 units" in out.reason
    assert evaluate_check(_check(op="<=", value=1), m).outcome == "inconclusive"


def test_named_parts_give_partly_supported():
    """When every check names a part and only some hold, the verdict names them."""
    d = Decision(checks=[_check(op=">", value=0, part="sign"),
                         Check(quantity="r", op="approx", value=20, rel_tol=0.1, part="ratio")])
    verdict, reason, _ = decide(d, {"q": Measure(1), "r": Measure(40)})
    assert verdict == "partly-supported" and "sign" in reason and "ratio" in reason


ops = st.sampled_from(["<", "<=", ">", ">="])


@given(ops, finite, finite, st.floats(0, 100))
def test_inverting_a_one_sided_check_swaps_its_outcome(op, v, x, half):
    """Supported becomes refuted and back; inconclusive stays inconclusive."""
    c = _check(op=op, value=v)
    m = Measure(x, x - half, x + half)
    before = evaluate_check(c, m).outcome
    after = evaluate_check(invert(Decision(checks=[c])).checks[0], m).outcome
    assert after == {"supported": "refuted", "refuted": "supported"}.get(before, "inconclusive")


@given(finite, st.floats(0.001, 10), finite, st.floats(0, 100))
def test_inverting_an_approx_check_swaps_its_outcome(v, rel, x, half):
    """approx inverts to 'outside the same band'."""
    c = _check(op="approx", value=v, rel_tol=rel, abs_tol=1e-9)
    m = Measure(x, x - half, x + half)
    before = evaluate_check(c, m).outcome
    after = evaluate_check(invert(Decision(checks=[c])).checks[0], m).outcome
    assert after == {"supported": "refuted", "refuted": "supported"}.get(before, "inconclusive")


@given(st.lists(st.sampled_from(["supported", "refuted", "inconclusive"]), min_size=1, max_size=5))
def test_claim_is_supported_only_when_every_check_is(kinds):
    """One failing check is enough to keep a claim from being supported."""
    from principia.decide import Outcome
    outs = [Outcome("q", "r", k, 1.0, None, None, "", "", "") for k in kinds]
    verdict, _ = combine(outs)
    assert (verdict == "supported") == all(k == "supported" for k in kinds)
    assert (verdict == "refuted") == ("refuted" in kinds)


def test_flip_margin_names_the_distance_to_the_threshold():
    """'What would flip this' is the gap between the measured value and the rule's edge."""
    text = flip_margin(_check(op="approx", value=20, rel_tol=0.25), Measure(21))
    assert "-6" in text and "+4" in text


# --- intervals, smallest effects, equivalence, parts, replication (issue 9) -------------------

any_op = st.sampled_from(["<", "<=", ">", ">=", "approx", "between", "outside", "equivalent"])


def _any_check(op: str, v: float, w: float, m: float) -> Check:
    """A check of any op built from a value v, a width w and a smallest effect m."""
    if op in ("between", "outside"):
        return _check(op=op, low=v - w, high=v + w)
    if op == "approx":
        return _check(op=op, value=v, abs_tol=w)
    if op == "equivalent":
        return _check(op=op, value=v, margin=w + 1e-6)
    return _check(op=op, value=v, min_effect=m)


def test_band_judges_the_interval_not_the_point():
    """A point inside the band with an interval crossing its edge is inconclusive (isoflop-tiny)."""
    c = _check(op="between", low=0.4, high=0.6)
    assert evaluate_check(c, Measure(0.45, 0.38, 0.59)).outcome == "inconclusive"
    assert evaluate_check(c, Measure(0.45, 0.41, 0.59)).outcome == "supported"
    assert evaluate_check(c, Measure(0.7, 0.65, 0.8)).outcome == "refuted"
    assert evaluate_check(c, Measure(0.45)).outcome == "supported"


@given(finite, st.floats(0.001, 100), st.floats(0.0, 1.0), st.floats(0.001, 100))
def test_interval_straddling_a_band_edge_is_never_decided(v, w, where, reach):
    """An interval that contains either edge of a band is neither supported nor refuted."""
    for op in ("approx", "between", "outside", "equivalent"):
        c = _any_check(op, v, w, 0)
        edge = v - w if where < 0.5 else v + w
        m = Measure(edge, edge - reach, edge + reach)
        assert evaluate_check(c, m).outcome == "inconclusive", (op, c, m)


@given(any_op, finite, st.floats(0.001, 100), st.floats(0, 10), finite, st.floats(0, 50),
       st.floats(0, 50))
def test_widening_an_interval_never_decides_more(op, v, w, m_eff, x, half, extra):
    """Widening an interval can only move a decided outcome to inconclusive, never the reverse."""
    c = _any_check(op, v, w, m_eff)
    narrow = evaluate_check(c, Measure(x, x - half, x + half)).outcome
    wide = evaluate_check(c, Measure(x, x - half - extra, x + half + extra)).outcome
    assert wide in (narrow, "inconclusive")


@given(ops, finite, st.floats(0.001, 10), st.floats(0, 0.999), st.floats(0, 5))
def test_an_effect_smaller_than_min_effect_is_never_decided(op, v, m_eff, frac, half):
    """A point effect smaller than the smallest effect of interest wins for neither side."""
    x = v + frac * m_eff * (1 if op in (">", ">=") else -1)
    got = evaluate_check(_check(op=op, value=v, min_effect=m_eff), Measure(x, x - half, x + half))
    assert got.outcome == "inconclusive"


def test_a_tight_null_says_no_meaningful_effect():
    """An interval wholly inside ±min_effect is named as no meaningful effect."""
    got = evaluate_check(_check(op="<", value=0, min_effect=0.01), Measure(-0.0006, -0.004, 0.003))
    assert got.outcome == "inconclusive" and "no meaningful effect" in got.reason


def test_equivalence_is_judged_on_the_interval_against_the_margin():
    """TOST-style: inside ±margin supported, wholly outside refuted, across an edge inconclusive."""
    c = _check(op="equivalent", value=1, margin=0.1)
    assert evaluate_check(c, Measure(1.02, 0.95, 1.08)).outcome == "supported"
    assert evaluate_check(c, Measure(0.7, 0.64, 0.77)).outcome == "refuted"
    assert evaluate_check(c, Measure(0.95, 0.85, 1.05)).outcome == "inconclusive"


@given(any_op, finite, st.floats(0.001, 100), st.floats(0, 10), finite, st.floats(0, 100))
def test_inverting_any_check_swaps_its_outcome(op, v, w, m_eff, x, half):
    """Every op, min_effect included, has an opposite that swaps supported and refuted."""
    c = _any_check(op, v, w, m_eff)
    m = Measure(x, x - half, x + half)
    before = evaluate_check(c, m).outcome
    after = evaluate_check(invert(Decision(checks=[c])).checks[0], m).outcome
    assert after == {"supported": "refuted", "refuted": "supported"}.get(before, "inconclusive")


@given(st.lists(st.tuples(any_op, finite, st.floats(0.001, 100), st.floats(0, 10)),
                min_size=1, max_size=4), finite, st.floats(0, 100))
def test_a_claim_with_the_opposite_expectation_is_refuted(specs, x, half):
    """Whenever a claim is supported, the claim with every check inverted is refuted."""
    d = Decision(checks=[Check(quantity=f"q{i}", **_any_check(*s).model_dump(exclude={"quantity"}))
                         for i, s in enumerate(specs)])
    measured = {f"q{i}": Measure(x, x - half, x + half) for i in range(len(specs))}
    if decide(d, measured)[0] == "supported":
        assert decide(invert(d), measured)[0] == "refuted"


def test_a_measure_whose_interval_excludes_its_value_is_an_error():
    """lo <= value <= hi must hold; a broken interval is not trusted."""
    got = evaluate_check(_check(op=">", value=0), Measure(1.0, 1.5, 2.0))
    assert got.outcome == "error" and "does not contain" in got.reason


def test_a_part_holds_only_when_all_its_checks_hold():
    """One inconclusive check keeps its part from holding, and the reason names it."""
    d = Decision(checks=[_check(op=">", value=0, part="warning"),
                         Check(quantity="r", op=">", value=0, part="warning"),
                         Check(quantity="s", op=">", value=0, part="fault"),
                         Check(quantity="t", op=">", value=0, part="recovery")])
    got = {"q": Measure(1), "r": Measure(0.1, -0.1, 0.3), "s": Measure(-1), "t": Measure(2)}
    verdict, reason, _ = decide(d, got)
    assert verdict == "partly-supported"
    assert reason.startswith("holds: recovery;") and "unsettled: warning (r 0.1" in reason
    assert "fails: fault (s -1 is not above 0)" in reason


def test_an_inconclusive_part_is_named_when_nothing_fails():
    """With no failures, the reason lists what holds and what is unsettled, in words."""
    d = Decision(checks=[_check(op=">", value=0, part="loss falls"),
                         Check(quantity="grad_ratio", op="<", value=1, part="gradients shrink")])
    verdict, reason, _ = decide(d, {"q": Measure(1), "grad_ratio": Measure(0.9, 0.7, 1.1)})
    assert verdict == "inconclusive"
    assert reason == ("holds: loss falls; unsettled: gradients shrink "
                      "(grad ratio 0.9 [0.7, 1.1] straddles 1: inside the noise)")


def _problems(kb_root, check_yaml: str) -> list[str]:
    from principia.loader import load_kb
    from tests.conftest import claim_text, write_claim
    text = claim_text().replace("{quantity: x, op: approx, value: 1, rel_tol: 0.1}", check_yaml)
    write_claim(kb_root, "bad-rule", text)
    return [str(p) for p in load_kb(kb_root).problems]


def test_equivalence_without_margin_is_rejected_naming_file_and_field(kb_root):
    """An 'equivalent' check with no margin is a problem in claims/<id>.yaml at the check."""
    (p,) = _problems(kb_root, "{quantity: x, op: equivalent, value: 1}")
    assert p.startswith("claims/bad-rule.yaml: decision.checks.0") and "margin" in p


def test_negative_or_nan_margins_are_rejected(kb_root):
    """A negative margin or a NaN smallest effect is rejected at its field."""
    (p,) = _problems(kb_root, "{quantity: x, op: equivalent, value: 1, margin: -0.1}")
    assert "decision.checks.0.margin" in p
    (p,) = _problems(kb_root, "{quantity: x, op: '>', value: 1, min_effect: .nan}")
    assert "decision.checks.0.min_effect" in p


def test_too_few_data_draws_is_an_error():
    """A claim that declares replication over data draws rejects evidence reporting fewer."""
    from principia.decide import replication_problem
    from principia.schema import Replication
    d = Decision(checks=[_check(op=">", value=0)],
                 replication=Replication(min_data_draws={"fast": 2, "full": 5}))
    assert replication_problem(d, "full", {"data_draws": 5, "seeds": 3}) == ""
    assert "at least 5" in replication_problem(d, "full", {"data_draws": 1, "seeds": 5})
    assert "no replication" in replication_problem(d, "fast", None)
    assert replication_problem(Decision(checks=d.checks), "full", None) == ""


@given(st.lists(st.sampled_from(["supported", "refuted", "inconclusive"]), min_size=2, max_size=6))
def test_a_part_with_any_unsettled_or_failed_check_never_holds(kinds):
    """With one part, the claim is supported only when every one of its checks is."""
    from principia.decide import Outcome
    outs = [Outcome(f"q{i}", "r", k, 1.0, None, None, "", "one part", "", reason=f"q{i} {k}")
            for i, k in enumerate(kinds)]
    verdict, reason = combine(outs)
    assert (verdict == "supported") == all(k == "supported" for k in kinds)
    assert not reason.startswith("holds: one part") or verdict == "supported"
    if "inconclusive" in kinds and "refuted" not in kinds:
        assert verdict == "inconclusive" and "unsettled: one part" in reason


@given(finite, st.floats(0.001, 100), finite, st.floats(0, 100))
def test_equivalence_is_supported_only_inside_the_margin(v, margin, x, half):
    """An 'equivalent' check is supported exactly when the whole interval is within ±margin."""
    c = _check(op="equivalent", value=v, margin=margin)
    got = evaluate_check(c, Measure(x, x - half, x + half)).outcome
    inside = v - margin <= x - half and x + half <= v + margin
    assert (got == "supported") == inside


@settings(deadline=None)  # the first call imports scipy
@given(st.lists(st.lists(st.floats(-100, 100), min_size=1, max_size=4), min_size=2, max_size=8))
def test_intervals_over_draws_count_draws_not_seeds(draws):
    """Seeds nested in a draw are averaged first: n is the number of draws, and the mean of
    draw means is the value."""
    from principia.evidence import interval_over_draws
    m = interval_over_draws({i: d for i, d in enumerate(draws)})
    means = [sum(d) / len(d) for d in draws]
    assert m.n == len(draws)
    assert abs(m.value - sum(means) / len(means)) < 1e-6
    assert m.lo <= m.value <= m.hi
