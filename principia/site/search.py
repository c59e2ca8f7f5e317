"""What the local search index sees: plain-text formulas, tags, and a boost per claim page.

Material's search indexes a page's front-matter ``tags`` with a very large boost and honours
``search: {boost: x}``. A claim page lists its tags and its id there, so a title or tag match
ranks above a mention in running text; among equal matches, a claim that other claims use
ranks first (it is the one the others build on). Snippets are text: TeX is turned into
readable characters here, before the indexer reads it.
"""
from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["tex_plain", "search_meta"]

_SYMBOLS = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "varepsilon": "ε", "eta": "η",
    "theta": "θ", "lambda": "λ", "mu": "μ", "nu": "ν", "pi": "π", "rho": "ρ", "sigma": "σ", "tau": "τ",
    "phi": "φ", "chi": "χ", "psi": "ψ", "omega": "ω", "Delta": "Δ", "Sigma": "Σ", "Omega": "Ω",
    "propto": "∝", "approx": "≈", "sim": "~", "times": "×", "cdot": "·", "le": "≤", "leq": "≤", "ge": "≥",
    "geq": "≥", "ne": "≠", "neq": "≠", "infty": "∞", "to": "→", "rightarrow": "→", "pm": "±", "ll": "≪",
    "gg": "≫", "sqrt": "√", "sum": "Σ", "log": "log", "exp": "exp", "min": "min", "max": "max",
}
_MATH = re.compile(r"\$\$(.+?)\$\$|\$([^$]+)\$", re.S)
_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_CMD = re.compile(r"\\([A-Za-z]+)")
_SCRIPT = re.compile(r"([_^])\{([^{}]*)\}")


def _formula(tex: str) -> str:
    s = _FRAC.sub(r"(\1)/(\2)", tex)
    s = _SCRIPT.sub(lambda m: m.group(1) + (m.group(2) if len(m.group(2)) == 1 else m.group(2)), s)
    s = _CMD.sub(lambda m: _SYMBOLS.get(m.group(1), ""), s)
    s = s.replace("{", "").replace("}", "").replace("\\,", " ").replace("\\", "")
    return " ".join(s.split())


def tex_plain(text: Any) -> str:
    """Text with every $…$ / $$…$$ formula written as plain characters, no TeX left."""
    return _MATH.sub(lambda m: _formula(m.group(1) or m.group(2)), str(text))


def search_meta(tags: list[str], cid: str, used_by: int) -> dict[str, Any]:
    """Front-matter fields for a claim page: tags (and the id) for the index, and a boost."""
    return {"tags": [*tags, cid], "search": {"boost": round(1 + math.log1p(used_by), 3)}}
