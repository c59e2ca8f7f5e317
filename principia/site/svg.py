"""One look for every plot: an Evidence figure as SVG text, drawn by ``plots`` (matplotlib).

Kept as the entry point other commands use (``principia fit --plot``); the site itself writes
figure files through ``plots.FigureStore``.
"""
from __future__ import annotations

from typing import Any

from .plots import render_svg

__all__ = ["render_figure"]


def render_figure(fig: dict[str, Any]) -> str:
    """One figure (Figure.to_json form) as a standalone SVG string."""
    return render_svg(fig)
