"""Outcomes in plain words: a check's rule, why it came out as it did, and the claim's reason line.

The reason line names every part (or check) that holds, fails or is unsettled, with the measured
value and interval, so a reader never has to decode a rule such as ``spread_ratio < 0.3``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .schema import COMPARE_OPS, Check

if TYPE_CHECKING:
    from .decide import Outcome
    from .evidence import Measure

__all__ = ["band", "describe", "say", "combine", "flip_margin"]

_WORD = {"<": "below", "<=": "at most", ">": "above", ">=": "at least"}


def band(check: Check) -> tuple[float, float]:
    """The accepted interval of an approx/between/outside/equivalent check."""
    if check.op in ("between", "outside"):
        return float(check.low), float(check.high)
    v = float(check.value)
    if check.op == "equivalent":
        return v - check.margin, v + check.margin
    tol = max(check.abs_tol or 0.0, abs(v) * (check.rel_tol or 0.0))
    return v - tol, v + tol


def describe(check: Check) -> str:
    """The rule as declared, e.g. 'a ≈ 0.5 (±10%, i.e. in [0.45, 0.55])'."""
    if check.op in COMPARE_OPS:
        sesoi = f" (smallest effect of interest {check.min_effect:g})" if check.min_effect else ""
        return f"{check.quantity} {check.op} {check.value:g}{sesoi}"
    a, b = band(check)
    if check.op == "approx":
        tol = f"±{check.rel_tol:.0%}" if check.rel_tol else f"±{check.abs_tol:g}"
        return f"{check.quantity} ≈ {check.value:g} ({tol}, i.e. in [{a:.4g}, {b:.4g}])"
    if check.op == "equivalent":
        return (f"{check.quantity} equivalent to {check.value:g} within ±{check.margin:g} "
                f"(i.e. in [{a:.4g}, {b:.4g}])")
    word = "in" if check.op == "between" else "outside"
    return f"{check.quantity} {word} [{a:.4g}, {b:.4g}]"


def _val(x: float, lo: float, hi: float) -> str:
    return f"{x:.4g}" if lo == hi == x else f"{x:.4g} [{lo:.4g}, {hi:.4g}]"


def _say_compare(check: Check, res: str, q: str, x: float, lo: float, hi: float) -> str:
    v, m, word = check.value, check.min_effect or 0.0, _WORD[check.op]
    if res == "supported":
        return f"{q} {_val(x, lo, hi)} is {word} {v:g}" + (f" by at least {m:g}" if m else "")
    if res == "refuted":
        return f"{q} {_val(x, lo, hi)} is not {word} {v:g}"
    if m and v - m <= lo and hi <= v + m:
        return f"{q} {_val(x, lo, hi)} lies within ±{m:g} of {v:g}: no meaningful effect"
    if m and abs(x - v) < m:
        return (f"{q} {_val(x, lo, hi)} differs from {v:g} by less than the smallest effect "
                f"of interest ({m:g})")
    return f"{q} {_val(x, lo, hi)} straddles {v:g}: inside the noise"


def say(check: Check, res: str, x: float, lo: float, hi: float) -> str:
    """Why one check came out as it did, in plain words with the numbers."""
    q = check.quantity.replace("_", " ")
    if check.op in COMPARE_OPS:
        return _say_compare(check, res, q, x, lo, hi)
    a, b = band(check)
    where = f"[{a:.4g}, {b:.4g}]"
    if res == "inconclusive":
        return f"{q} {_val(x, lo, hi)} straddles an edge of {where}"
    inside = (res == "supported") != (check.op == "outside")
    return f"{q} {_val(x, lo, hi)} lies {'inside' if inside else 'wholly outside'} {where}"


def _part_status(outs: list[Outcome]) -> str:
    kinds = {o.outcome for o in outs}
    return "refuted" if "refuted" in kinds else ("inconclusive" if "inconclusive" in kinds else "supported")


def _named(label: str, outs: list[Outcome], status: str) -> str:
    why = "; ".join(o.reason for o in outs if o.outcome == status and o.reason)
    if not label:  # an unnamed check: its reason already names the quantity
        return why
    return f"{label} ({why})" if why else label


def _groups(outcomes: list[Outcome]) -> list[tuple[str, list[Outcome]]]:
    """Parts in declaration order when every check names one; else one group per check."""
    if all(o.part for o in outcomes):
        parts = list(dict.fromkeys(o.part for o in outcomes))
        return [(p, [o for o in outcomes if o.part == p]) for p in parts]
    return [("", [o]) for o in outcomes]


def combine(outcomes: list[Outcome]) -> tuple[str, str]:
    """Claim verdict and a one-line reason: a part holds only when all its checks hold."""
    if any(o.outcome == "error" for o in outcomes):
        return "error", "; ".join(f"{o.quantity}: {o.reason}" for o in outcomes if o.outcome == "error")
    if all(o.outcome == "supported" for o in outcomes):
        return "supported", "every check holds"
    by = {"supported": [], "refuted": [], "inconclusive": []}
    for label, outs in _groups(outcomes):
        status = _part_status(outs)
        held = label or outs[0].quantity.replace("_", " ")
        by[status].append(held if status == "supported" else _named(label, outs, status))
    text = "; ".join(f"{head}: {', '.join(by[k])}" for head, k in
                     (("holds", "supported"), ("fails", "refuted"), ("unsettled", "inconclusive"))
                     if by[k])
    named = all(o.part for o in outcomes)
    if by["refuted"]:
        return ("partly-supported" if named and by["supported"] else "refuted"), text
    return "inconclusive", text


def flip_margin(check: Check, m: Measure) -> str:
    """How far the measured value must move for this check's outcome to change."""
    if not m.finite():
        return ""
    x = m.value
    if check.op in COMPARE_OPS:
        sesoi = f"; the smallest effect of interest is ±{check.min_effect:g}" if check.min_effect else ""
        return f"{check.quantity} would have to move by {check.value - x:+.4g} (to {check.value:g}{sesoi})"
    a, b = band(check)
    if a <= x <= b:
        return (f"{check.quantity} would have to move by {a - x:+.4g} or {b - x:+.4g} "
                f"to leave [{a:.4g}, {b:.4g}]")
    gap = a - x if x < a else b - x
    return f"{check.quantity} would have to move by {gap:+.4g} to enter [{a:.4g}, {b:.4g}]"

