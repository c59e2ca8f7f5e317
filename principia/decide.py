"""Apply a claim's declared decision rule to measured values.

Each check yields supported / refuted / inconclusive, judged on the measure's interval (lo, hi)
when it has one and on the point value otherwise:

- a comparison (< <= > >=) is supported only when the whole interval agrees and refuted only
  when the whole interval disagrees; with a ``min_effect`` the point effect must also reach it,
  so an effect smaller than the smallest effect of interest wins for neither side;
- a band (approx, between, equivalent) is supported only when the whole interval lies inside it
  and refuted only when the whole interval lies outside; ``outside`` is the mirror image.

Wording of the outcomes lives in ``principia.wording``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, asdict
from typing import Any

from .evidence import Measure
from .schema import COMPARE_OPS, Check, Decision
from .wording import band, combine, describe, flip_margin, say

__all__ = ["Outcome", "evaluate_check", "combine", "invert", "decide", "flip_margin", "describe",
           "band", "replication_problem", "VERDICTS"]

VERDICTS = ("supported", "partly-supported", "inconclusive", "refuted", "untestable", "error")
_INVERSE = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "between": "outside", "outside": "between"}
_SLACK = 1e-9  # relative rounding allowed when checking lo <= value <= hi


@dataclass
class Outcome:
    quantity: str
    rule: str
    outcome: str  # supported | refuted | inconclusive | error
    measured: float | None
    lo: float | None
    hi: float | None
    unit: str
    part: str
    source_says: str
    reason: str = ""  # the outcome in plain words
    seed_fraction: float | None = None  # share of per-seed values on which the rule holds

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _compare(op: str, x: float, v: float) -> bool:
    return {"<": x < v, "<=": x <= v, ">": x > v, ">=": x >= v}[op]


def bad_interval(m: Measure) -> str:
    """Why a measure cannot be trusted ('' when it can): non-finite, or lo <= value <= hi broken."""
    if not m.finite():
        return "measured value is NaN or infinite"
    lo = m.lo if m.lo is not None else m.value
    hi = m.hi if m.hi is not None else m.value
    slack = _SLACK * max(1.0, abs(m.value))
    if not lo - slack <= m.value <= hi + slack:
        return f"its interval [{lo:.4g}, {hi:.4g}] does not contain its value {m.value:.4g}"
    return ""


def _judge(check: Check, x: float, lo: float, hi: float) -> str:
    """supported / refuted / inconclusive of one check on (value, lo, hi)."""
    if check.op in COMPARE_OPS:
        meaningful = abs(x - check.value) >= (check.min_effect or 0.0)
        if _compare(check.op, hi if "<" in check.op else lo, check.value) and meaningful:
            return "supported"
        if not _compare(check.op, lo if "<" in check.op else hi, check.value) and meaningful:
            return "refuted"
        return "inconclusive"
    a, b = band(check)
    inside = a <= lo and hi <= b
    disjoint = hi < a or lo > b
    if check.op == "outside":
        inside, disjoint = disjoint, inside
    return "supported" if inside else ("refuted" if disjoint else "inconclusive")


def evaluate_check(check: Check, m: Measure | None) -> Outcome:
    base = dict(quantity=check.quantity, rule=describe(check), part=check.part,
                source_says=check.source_says)
    if m is None:
        return Outcome(**base, outcome="error", measured=None, lo=None, hi=None, unit="",
                       reason=f"verifier did not measure '{check.quantity}'")
    vals = dict(measured=m.value, lo=m.lo, hi=m.hi, unit=m.unit)
    if m.untestable:  # the verifier says this device cannot test it: a win for neither side
        return Outcome(**base, **vals, outcome="inconclusive",
                       reason=f"{check.quantity.replace('_', ' ')} not testable here: {m.untestable}")
    broken = bad_interval(m)
    if broken:
        return Outcome(**base, **vals, outcome="error", reason=broken)
    lo = m.lo if m.lo is not None else m.value
    hi = m.hi if m.hi is not None else m.value
    res = _judge(check, m.value, lo, hi)
    return Outcome(**base, **vals, outcome=res, reason=say(check, res, m.value, lo, hi),
                   seed_fraction=_seed_fraction(check, m))


def _seed_fraction(check: Check, m: Measure) -> float | None:
    """How many of the per-seed values satisfy the rule on their own (point comparison)."""
    if not m.samples:
        return None
    held = [_judge(check, s, s, s) == "supported" for s in m.samples if math.isfinite(s)]
    return sum(held) / len(m.samples)  # NaN seeds count as not holding


def invert(decision: Decision) -> Decision:
    """The opposite expectation: every check's comparison reversed."""
    checks = []
    for c in decision.checks:
        d = c.model_dump()
        if c.op in ("approx", "equivalent"):
            a, b = band(c)
            d.update(op="outside", value=None, low=a, high=b, rel_tol=None, abs_tol=None,
                     margin=None)
        else:
            d["op"] = _INVERSE[c.op]
        checks.append(Check.model_validate(d))
    return decision.model_copy(update={"checks": checks})


def decide(decision: Decision, measured: dict[str, Measure]) -> tuple[str, str, list[Outcome]]:
    outcomes = [evaluate_check(c, measured.get(c.quantity)) for c in decision.checks]
    verdict, reason = combine(outcomes)
    return verdict, reason, outcomes


def replication_problem(decision: Decision | None, tier: str, replication: Any) -> str:
    """Why the evidence's replication falls short of the claim's declared minimum ('' if not)."""
    need = decision.replication.min_data_draws.get(tier) if decision and decision.replication else None
    if not need:
        return ""
    draws = replication.get("data_draws") if isinstance(replication, dict) else None
    if not isinstance(draws, int) or isinstance(draws, bool):
        return (f"the claim requires {need} data draws on the {tier} tier (decision.replication) "
                f"but the evidence reports no replication.data_draws")
    if draws < need:
        return (f"the evidence reports {draws} data draw(s); the claim requires at least {need} "
                f"on the {tier} tier (decision.replication)")
    return ""
