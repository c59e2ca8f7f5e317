"""Verdicts and rules in plain words, for readers who will not read rule code.

``fails: spread_ratio < 0.3`` becomes "spread ratio came out at 0.41; the claim expects below 0.3".
Everything here is built from the claim's declared checks and the recorded outcomes; it never
judges anything itself (the engine did that). Unknown comparison operators (added later to the
engine) fall back to the engine's own description.
"""
from __future__ import annotations

import math
import re
from typing import Any

from ..decide import band, describe
from ..schema import Check
from .model import ClaimView
from .text import fmt

__all__ = ["MEANING", "expectation", "subject", "pairs", "plain_reason", "changes", "first_sentence"]

MEANING = {
    "supported": "Our measurement agrees with the claim as stated, at the scale tested.",
    "partly-supported": "Some parts of the claim hold here and others do not.",
    "inconclusive": "The measurement is too noisy to decide either way.",
    "refuted": "Our measurement contradicts the claim, at the scale tested.",
    "untestable": "No run this project can afford settles this claim; it is recorded, not tested.",
    "error": "The check failed to run, so there is no conclusion.",
    "not-verified": "Nothing has been run for this claim yet.",
}
_BOUND = {"<": "below {}", "<=": "at most {}", ">": "above {}", ">=": "at least {}"}


def first_sentence(text: str, limit: int = 200) -> str:
    """The first sentence of prose (cut at `limit` characters on a word boundary)."""
    t = " ".join(str(text).split())
    m = re.match(r"(.+?[.!?])(\s|$)", t)
    t = m.group(1) if m else t
    return t if len(t) <= limit else t[:limit].rsplit(" ", 1)[0] + "…"


def subject(check: Check | None, quantity: str = "") -> str:
    """What a check measures, as words: its part when it names one, else its quantity."""
    if check is not None and check.part:
        return check.part
    return (check.quantity if check else quantity).replace("_", " ")


def expectation(check: Check) -> str:
    """The check's rule in words: 'below 0.3', 'between 3.96 and 4.04', 'about 20 (±10%)'."""
    op, v = check.op, check.value
    try:
        if op in _BOUND:
            return _BOUND[op].format(fmt(v))
        if op == "approx":
            a, b = band(check)
            return f"about {fmt(v)} (between {fmt(a)} and {fmt(b)})"
        if op == "between":
            return f"between {fmt(check.low)} and {fmt(check.high)}"
        if op == "outside":
            return f"outside {fmt(check.low)} to {fmt(check.high)}"
        margin = getattr(check, "margin", None)
        if op == "equivalent" and margin is not None:
            return f"within ±{fmt(margin)} of {fmt(v)}"
        return describe(check)
    except (TypeError, ValueError, KeyError):
        return str(op)


def pairs(v: ClaimView, result: dict[str, Any]) -> list[tuple[Check | None, dict[str, Any]]]:
    """Each recorded check outcome with the claim's declared check it came from."""
    declared = list(v.claim.decision.checks) if v.claim.decision else []
    outs = [o for o in result.get("checks") or [] if isinstance(o, dict)]
    if len(declared) == len(outs) and all(c.quantity == o.get("quantity") for c, o in zip(declared, outs)):
        return list(zip(declared, outs))
    by_q = {c.quantity: c for c in declared}
    return [(by_q.get(str(o.get("quantity"))), o) for o in outs]


def _value(o: dict[str, Any]) -> str:
    unit = f" {o['unit']}" if o.get("unit") else ""
    s = f"{fmt(o.get('measured'))}{unit}"
    if o.get("lo") is not None and o.get("hi") is not None and o.get("lo") != o.get("hi"):
        s += f" (interval {fmt(o['lo'])} to {fmt(o['hi'])})"
    return s


def _sentence(check: Check | None, o: dict[str, Any]) -> str:
    what = subject(check, str(o.get("quantity", "")))
    exp = f"; the claim expects {expectation(check)}" if check else ""
    return f"{what} came out at {_value(o)}{exp}"


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:] if s else s


def plain_reason(v: ClaimView, result: dict[str, Any] | None = None) -> str:
    """One sentence saying why the verdict is what it is."""
    r = result if result is not None else v.shown
    if not r:
        if v.claim.kind == "open":
            return "Not testable here: " + first_sentence(v.claim.untestable)
        return "No result has been recorded yet."
    verdict = str(r.get("verdict") or "error")
    if verdict == "untestable":
        return "Not testable here: " + first_sentence(str(r.get("reason") or v.claim.untestable))
    ps = pairs(v, r)
    if verdict == "error" or not ps:
        err = r.get("error") if isinstance(r.get("error"), dict) else {}
        why = err.get("message") or r.get("reason") or "no reason was recorded"
        return f"The verifier did not produce a usable measurement: {first_sentence(str(why), 160)}"
    bad = [(c, o) for c, o in ps if o.get("outcome") == "refuted"]
    noisy = [(c, o) for c, o in ps if o.get("outcome") == "inconclusive"]
    held = [(c, o) for c, o in ps if o.get("outcome") == "supported"]
    if verdict == "supported":
        c, o = next(((c, o) for c, o in ps if o.get("quantity") == r.get("key")), ps[0])
        n = {1: "The check holds", 2: "Both checks hold"}.get(len(ps), f"All {len(ps)} checks hold")
        return f"{n}: {_sentence(c, o)}."
    if bad:
        lead = ""
        if held and verdict == "partly-supported":
            failing = {subject(c, str(o.get("quantity"))) for c, o in bad}
            held_parts = dict.fromkeys(subject(c, str(o.get("quantity"))) for c, o in held)
            parts = [p for p in held_parts if p not in failing]
            more = f" and {len(parts) - 2} more" if len(parts) > 2 else ""
            lead = "Holds for " + ", ".join(parts[:2]) + more + "; but " if parts else ""
        more = {1: "", 2: " (and 1 more check fails)"}.get(len(bad), f" (and {len(bad) - 1} more checks fail)")
        return _cap(lead + _sentence(*bad[0])) + more + "."
    if noisy:
        return _cap(_sentence(*noisy[0])) + ": the interval straddles the boundary, so it is too noisy to decide."
    return _cap(str(r.get("reason") or verdict)) + "."


def _distance(check: Check, x: float) -> tuple[float, float] | None:
    """(signed move needed to change the outcome, the boundary it would cross)."""
    try:
        if check.op in _BOUND:
            return check.value - x, float(check.value)
        if check.op in ("approx", "between", "outside", "equivalent"):
            if check.op == "equivalent" and getattr(check, "margin", None) is not None:
                a, b = check.value - check.margin, check.value + check.margin
            else:
                a, b = band(check)
            if a <= x <= b:
                return (a - x, a) if x - a < b - x else (b - x, b)
            return (a - x, a) if x < a else (b - x, b)
    except (TypeError, ValueError):
        return None
    return None


def changes(v: ClaimView, result: dict[str, Any], limit: int = 3) -> list[str]:
    """'What would change the verdict': the checks nearest to flipping, nearest first."""
    found = []
    for c, o in pairs(v, result):
        x = o.get("measured")
        if c is None or not isinstance(x, (int, float)) or isinstance(x, bool) or not math.isfinite(x):
            continue
        d = _distance(c, float(x))
        if d is None:
            continue
        move, edge = d
        rel = abs(move) / max(abs(float(x)), abs(edge), 1e-12)
        state = {"supported": "holds", "refuted": "fails"}.get(str(o.get("outcome")), "is undecided")
        share = f" ({rel:.0%})" if edge and x else ""
        text = (f"{subject(c)} {state} at {_value(o)}; it would have to move by {fmt(move, 3)}{share} "
                f"to cross {fmt(edge)}")
        found.append((rel, text))
    found.sort(key=lambda f: f[0])
    return [_cap(t) for _, t in found[:limit]]
