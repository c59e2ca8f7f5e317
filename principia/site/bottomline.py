"""The bottom-line box at the top of every claim page: the answer before the evidence.

Verdict per tier (flagged when they disagree), what it means in plain words, why, what was
tested at what scale and how often, what the source says, where it stops applying, and what
would change the verdict. Optional result fields (``scale``, ``replication``, a stale claim
hash) are read defensively: results recorded before they existed simply say less.
"""
from __future__ import annotations

from ..audit import stale_reason
from . import htmlparts as H
from .model import ClaimView
from .plain import MEANING, changes, first_sentence, pairs, plain_reason
from .text import badge, fmt_si, html_math, html_text

__all__ = ["bottom_line", "tier_badges", "scale_text", "KIND_WORDS"]

KIND_WORDS = {
    "closed": "a closed-form calculation (exact, no noise)",
    "run": "small training runs or simulations on this machine",
    "dist": "a fit to published numbers",
    "published": "a re-analysis of tables transcribed from the source",
    "open": "nothing: no run here can settle it",
}


def tier_badges(v: ClaimView, sep: str = " · ") -> str:
    """'full: supported · fast: refuted ⚠ tiers disagree', or the one verdict there is."""
    tiers = [t for t in ("full", "fast") if t in v.results]
    if not tiers:
        return badge(v.verdict)
    out = sep.join(f'<span class="pp-tier">{t}: {badge(v.tier_verdict(t) or "error")}</span>' for t in tiers)
    if v.tiers_disagree:
        out += ' <strong class="pp-flag" title="The fast and full tiers reach different verdicts">⚠ tiers disagree</strong>'
    return out


def scale_text(v: ClaimView) -> str:
    """'1.2k–160k params, up to 2.1M tokens; data: text:…' (or 'up to 160k params, …' without a
    smallest size) from result['scale'], else ''."""
    s = v.extra("scale")
    parts = []
    num = lambda k: isinstance(s.get(k), (int, float)) and not isinstance(s.get(k), bool) and s[k] > 0
    if num("max_params"):
        low = f"{fmt_si(s['min_params'])}–" if num("min_params") and s["min_params"] < s["max_params"] else ""
        parts.append(f"{low}{fmt_si(s['max_params'])} params")
    if isinstance(s.get("max_tokens"), (int, float)) and s["max_tokens"]:
        parts.append(f"{fmt_si(s['max_tokens'])} tokens")
    text = ", ".join(parts)
    text = ("tested at " if num("min_params") else "up to ") + text if text else ""
    data = [str(d) for d in s.get("data") or [] if d]
    if data:
        text += ("; " if text else "") + "data: " + ", ".join(data)
    return text


def _replicates(v: ClaimView) -> str:
    rep = v.extra("replication")
    if rep:
        bits = [f"{rep[k]} {w}" for k, w in (("seeds", "seeds"), ("data_draws", "data draws"))
                if isinstance(rep.get(k), int)]
        why = f" ({rep['reason']})" if rep.get("reason") else ""
        return ", ".join(bits) + why
    seeds = ((v.shown or {}).get("evidence") or {}).get("seeds") or []
    if v.claim.kind == "closed":
        return "none needed (exact calculation)"
    return f"{len(seeds)} seeds" if seeds else "not recorded"


def _source_line(v: ClaimView) -> str:
    r = v.shown or {}
    for c, o in pairs(v, r):
        if o.get("source_says"):
            state = {"supported": "agrees", "refuted": "disagrees"}.get(str(o.get("outcome")), "cannot tell")
            return f"“{html_text(o['source_says'])}” — our measurement {state}."
    return ""


def _how_sure(v: ClaimView) -> str:
    r = v.shown
    if not r:
        return ""
    bits = []
    if v.tiers_disagree:
        bits.append("the fast and full tiers disagree, so treat the verdict as provisional")
    elif len(v.results) == 2:
        bits.append("the fast and full tiers agree")
    elif v.waiting_full:
        bits.append("only the fast tier has run")
    fracs = [o.get("seed_fraction") for _, o in pairs(v, r) if isinstance(o.get("seed_fraction"), (int, float))]
    if fracs:
        bits.append(f"the weakest check holds on {min(fracs):.0%} of seeds")
    return "; ".join(bits)


def _rows(v: ClaimView) -> list[tuple[str, str]]:
    reason = html_math(plain_reason(v))
    rows = [("Verdict", tier_badges(v)), ("In plain words", html_text(MEANING.get(v.verdict, ""))),
            ("Why", reason), ("Tested by", html_text(KIND_WORDS.get(v.claim.kind, v.claim.kind)))]
    scale = scale_text(v)
    if scale or v.claim.kind == "run":  # a calculation or a re-analysis has no scale of its own
        rows.append(("Scale tested", html_text(scale) if scale else "not recorded for this result"))
    reps = _replicates(v)
    if v.claim.kind in ("run", "closed") or v.extra("replication"):
        rows.append(("Replicates", html_text(reps)))
    src = _source_line(v)
    if src:
        rows.append(("The source says", src))
    if v.claim.scope.strip():
        rows.append(("Where it stops applying", html_math(first_sentence(v.claim.scope, 300))))
    sure = _how_sure(v)
    if sure:
        rows.append(("How sure", html_text(sure)))
    return rows


def bottom_line(v: ClaimView) -> str:
    """The box as one HTML string; 'What would change the verdict' for every numeric check."""
    rows = "".join(f"<dt>{k}</dt><dd>{x}</dd>" for k, x in _rows(v))
    body = f'<p class="admonition-title">Bottom line</p><dl class="pp-bl">{rows}</dl>'
    if v.stale:
        body += ('<p class="pp-flag">⚠ Stale: this verdict was reached under an earlier version of the '
                 f"claim's rule or parameters ({html_text(stale_reason(v.claim, v.shown))}); it needs a rerun.</p>")
    flip = changes(v, v.shown) if v.shown and v.shown.get("verdict") not in ("error", "untestable") else []
    if flip:
        body += "<p><strong>What would change the verdict:</strong></p>" + H.ul(html_text(f) + "." for f in flip)
    return f'<div class="admonition abstract pp-bottomline">{body}</div>'

