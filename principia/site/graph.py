"""The claim graph as static SVG: 'uses' edges (grey arrows) and 'contests' edges (dashed red).

The whole graph is an arc diagram: every related claim on one vertical line, grouped under its
section's heading, with its id to the right (the title on hover) and every edge a curve to the
left. So the drawing is as narrow as a page column however many claims there are, no edge runs
through a node or a label, and a section's claims sit together. Nodes link to their claim pages
and are coloured by verdict. A claim page draws its own neighbourhood (what it uses, what uses
it, what contests it). ``layers`` (depth along 'uses') is kept for callers that rank claims.
"""
from __future__ import annotations

from typing import Callable, Iterable

from .model import ClaimView
from .text import html_text, VERDICT_LABELS

__all__ = ["VERDICT_COLORS", "layers", "graph_svg", "neighbourhood_svg", "related_ids"]

VERDICT_COLORS = {
    "supported": "#2e7d32", "partly-supported": "#7cb342", "inconclusive": "#f9a825",
    "refuted": "#c62828", "untestable": "#7b1fa2", "error": "#3e2723", "not-verified": "#9e9e9e",
}
DX, DY, R = 150, 90, 9


def related_ids(views: dict[str, ClaimView]) -> list[str]:
    """Claims with at least one 'uses' or 'contests' relation, either way."""
    return sorted(cid for cid, v in views.items() if v.claim.relations.uses or v.claim.relations.contests
                  or v.used_by or v.contested_by)


def layers(views: dict[str, ClaimView], ids: Iterable[str]) -> list[list[str]]:
    """Claims grouped by depth along 'uses', ordered within a layer to keep edges short."""
    keep = set(ids)
    depth: dict[str, int] = {}

    def d(cid: str, seen: frozenset[str]) -> int:
        if cid not in depth:
            used = [u for u in views[cid].claim.relations.uses if u in keep and u not in seen]
            depth[cid] = 1 + max((d(u, seen | {cid}) for u in used), default=-1)
        return depth[cid]

    for cid in sorted(keep):
        d(cid, frozenset())
    out: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for cid in sorted(keep, key=lambda c: (views[c].claim.section, c)):
        out[depth[cid]].append(cid)
    users: dict[str, list[str]] = {c: [] for c in keep}
    for c in keep:
        for u in views[c].claim.relations.uses:
            if u in keep:
                users[u].append(c)
    for _ in range(3):  # barycentre sweeps: down by the claims used, up by the users
        _sweep(out[1:], lambda c: [u for u in views[c].claim.relations.uses if u in keep], out)
        _sweep(out[-2::-1], lambda c: users[c], out)
    return out


def _sweep(order: list[list[str]], neighbours: Callable[[str], list[str]], rows: list[list[str]]) -> None:
    """Reorder each layer (in the given order) by the mean position of each claim's neighbours."""
    pos = {c: i for row in rows for i, c in enumerate(row)}
    for layer in order:
        def bary(c: str) -> float:
            ns = [pos[n] for n in neighbours(c) if n in pos]
            return sum(ns) / len(ns) if ns else pos[c]
        layer.sort(key=bary)
        pos.update({c: i for i, c in enumerate(layer)})


def _node(cid: str, v: ClaimView, x: float, y: float, href: str, label: str = "below") -> str:
    """A linked circle coloured by verdict; the label goes 'below', 'right' or 'left' of it."""
    color = VERDICT_COLORS.get(v.verdict, VERDICT_COLORS["error"])
    tip = f"{cid}: {v.claim.title} ({VERDICT_LABELS.get(v.verdict, v.verdict)})"
    text = cid  # whole: ids are short, and the title is in the tooltip
    ty = y + R + 13 if label == "below" else y + 4
    tx, anchor = {"below": (x, "middle"), "right": (x + R + 5, "start"), "left": (x - R - 5, "end")}[label]
    return (f'<a href="{html_text(href)}"><title>{html_text(tip)}</title>'
            f'<circle cx="{x:.0f}" cy="{y:.0f}" r="{R}" fill="{color}" stroke="currentColor" stroke-width="1"/>'
            f'<text x="{tx:.0f}" y="{ty:.0f}" text-anchor="{anchor}">{html_text(text)}</text></a>')


def _defs(prefix: str) -> str:
    return (f'<defs><marker id="{prefix}-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
            f'markerHeight="7" orient="auto-start-reverse"><path d="M0 0L10 5L0 10z" fill="currentColor"/>'
            f'</marker></defs>')


def _edge(p: tuple[float, float], q: tuple[float, float], kind: str, prefix: str) -> str:
    """A 'uses' edge points from the user to the used claim; 'contests' is a dashed red line."""
    (x1, y1), (x2, y2) = p, q
    dx, dy = x2 - x1, y2 - y1
    n = max((dx * dx + dy * dy) ** 0.5, 1e-9)
    x1, y1, x2, y2 = x1 + dx / n * R, y1 + dy / n * R, x2 - dx / n * (R + 2), y2 - dy / n * (R + 2)
    if kind == "contests":
        return (f'<path d="M{x1:.0f} {y1:.0f}L{x2:.0f} {y2:.0f}" stroke="#c62828" stroke-width="1.5" '
                f'stroke-dasharray="5 4" fill="none"/>')
    return (f'<path d="M{x1:.0f} {y1:.0f}L{x2:.0f} {y2:.0f}" stroke="currentColor" stroke-opacity="0.55" '
            f'fill="none" marker-end="url(#{prefix}-arrow)"/>')


ROW, HEAD, NODE_X, LABEL_GAP = 24, 30, 150, 14  # arc diagram: rows, section headings, node column


def _arc(y1: float, y2: float, kind: str, prefix: str) -> str:
    """A curve left of the node column from y1 to y2: it can cross other edges, never a node
    or a label. 'uses' arrows are grey; 'contests' curves are dashed red and bulge further."""
    span = abs(y2 - y1)
    bulge = min(30 + span * 0.35, NODE_X - 20) * (1.0 if kind == "uses" else 1.15)
    x0 = NODE_X - R - 1
    ctrl = f"{NODE_X - min(bulge, NODE_X - 12):.0f} {(y1 + y2) / 2:.0f}"
    path = f"M{x0} {y1:.0f}Q{ctrl} {x0} {y2:.0f}"
    if kind == "contests":
        return f'<path d="{path}" stroke="#c62828" stroke-width="1.6" stroke-dasharray="5 4" fill="none"/>'
    return (f'<path d="{path}" stroke="currentColor" stroke-opacity="0.5" fill="none" '
            f'marker-end="url(#{prefix}-arrow)"/>')


def _rows(views: dict[str, ClaimView], ids: list[str], titles: dict[str, str]) -> tuple[dict[str, float], list[str], float]:
    """(y of each claim, section headings as SVG text, height): claims grouped by section."""
    pos: dict[str, float] = {}
    heads: list[str] = []
    y = 10.0
    by: dict[str, list[str]] = {}
    for cid in ids:
        by.setdefault(views[cid].claim.section, []).append(cid)
    for sec in sorted(by, key=lambda s: list(titles).index(s) if s in titles else len(titles)):
        y += HEAD
        heads.append(f'<text x="{NODE_X - R}" y="{y - 8:.0f}" font-weight="bold" font-size="11" fill-opacity="0.75">'
                     f'{html_text(titles.get(sec, sec))}</text>')
        for cid in by[sec]:
            pos[cid] = y
            y += ROW
    return pos, heads, y


def graph_svg(views: dict[str, ClaimView], href: Callable[[str], str], titles: dict[str, str] | None = None) -> str:
    """The whole relation graph as an arc diagram: claims in one column, grouped by section
    (``titles``: section id -> title, in display order), edges as curves to its left."""
    ids = related_ids(views)
    if not ids:
        return ""
    titles = titles or {}
    pos, heads, height = _rows(views, ids, titles)
    edges = []
    for cid in ids:
        rel = views[cid].claim.relations
        edges += [_arc(pos[cid], pos[u], "uses", "pg") for u in rel.uses if u in pos]
        edges += [_arc(pos[cid], pos[u], "contests", "pg") for u in rel.contests if u in pos]
    nodes = [_node(c, views[c], NODE_X, pos[c], href(c), label="right") for c in ids]
    heading = max(len(titles.get(views[c].claim.section, views[c].claim.section)) for c in ids)
    width = max(NODE_X + R + LABEL_GAP + 7 * max(len(c) for c in ids), NODE_X - R + 6.8 * heading) + 10
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
            f'width="{width:.0f}" height="{height:.0f}" class="pp-graph" role="img" '
            f'aria-label="Claim graph" font-family="sans-serif" font-size="12" fill="currentColor">'
            f'<title>Claim graph</title>{_defs("pg")}' + "".join(heads) + "".join(edges) + "".join(nodes) + "</svg>")


def _column(ids: list[str], limit: int = 10) -> tuple[list[str], int]:
    return ids[:limit], max(0, len(ids) - limit)


def neighbourhood_svg(v: ClaimView, views: dict[str, ClaimView], href: Callable[[str], str]) -> str:
    """One claim between what it uses (left) and what uses it (right); contests below."""
    rel = v.claim.relations
    left, more_l = _column([u for u in rel.uses if u in views])
    right, more_r = _column(sorted(v.used_by))
    below, more_b = _column(sorted({*[u for u in rel.contests if u in views], *v.contested_by}), 4)
    if not (left or right or below):
        return ""
    rows = max(len(left), len(right), 1)
    width, row_h, top = 640, 30, 34
    height = top + rows * row_h + (len(below) * row_h + 6 if below else 0)
    cx, cy = width / 2, top + (rows - 1) * row_h / 2
    out = [_defs("pn")]
    items: list[str] = []
    for x, name, ids in ((190, "uses", left), (450, "used by", right)):
        if ids:
            items.append(f'<text x="{x:.0f}" y="14" text-anchor="middle" fill-opacity="0.6">{name}</text>')

    def col(ids: list[str], x: float, more: int) -> list[tuple[str, tuple[float, float]]]:
        placed = [(c, (x, top + (rows - len(ids)) * row_h / 2 + i * row_h)) for i, c in enumerate(ids)]
        if more:
            items.append(f'<text x="{x:.0f}" y="{height - 4:.0f}" text-anchor="middle">+{more} more</text>')
        return placed

    for c, p in col(left, 190, more_l):
        out.append(_edge((cx, cy), p, "uses", "pn"))
        items.append(_node(c, views[c], *p, href(c), label="left"))
    for c, p in col(right, 450, more_r):
        out.append(_edge(p, (cx, cy), "uses", "pn"))
        items.append(_node(c, views[c], *p, href(c), label="right"))
    for i, c in enumerate(below):
        p = (cx + 60, top + rows * row_h + i * row_h)
        out.append(_edge((cx, cy), p, "contests", "pn"))
        items.append(_node(c, views[c], *p, href(c), label="right"))
    if more_b:
        items.append(f'<text x="{cx + 60:.0f}" y="{height - 4:.0f}">+{more_b} more contested</text>')
    items.append(_node(v.id, v, cx, cy, href(v.id)))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height:.0f}" width="{width}" '
            f'height="{height:.0f}" class="pp-graph" role="img" aria-label="Neighbourhood of {html_text(v.id)}" '
            f'font-family="sans-serif" font-size="11" fill="currentColor">'
            + "".join(out) + "".join(items) + "</svg>")
