"""`principia check`: structure, references and verifiers of every claim, without running any."""
from __future__ import annotations

from pathlib import Path

from .loader import KnowledgeBase, Problem, load_kb
from .registry import param_problems, resolve
from .schema import NUMERIC_KINDS

__all__ = ["check", "verifier_problems", "falsifier_problems"]


def verifier_problems(kb: KnowledgeBase, cid: str) -> list[Problem]:
    """Import the claim's verifier and validate every parameter set it will be called with."""
    claim, rel = kb.claims[cid], kb.files[cid]
    if not claim.verifier:
        return []
    try:
        fn = resolve(claim.verifier)
    except Exception as e:  # ImportError, AttributeError, TypeError, or the module's own error
        return [Problem(rel, "verifier", f"'{claim.verifier}' cannot be used: {type(e).__name__}: {e}")]
    out: list[Problem] = []
    sets = [("params", claim.params)]
    sets += [(f"tiers.{t}", claim.tier_params(t)) for t in claim.tiers]
    sets += [(f"falsify.{i}.params", {**claim.tier_params(f.tier), **f.params})
             for i, f in enumerate(claim.falsify)]
    seen: set[tuple[str, str]] = set()
    for where, params in sets:
        for name, msg in param_problems(fn, params):
            own = where if where == "params" or name not in claim.params else "params"
            if (name, msg) in seen:
                continue
            seen.add((name, msg))
            out.append(Problem(rel, f"{own}.{name}", msg))
    return out


def falsifier_problems(kb: KnowledgeBase) -> list[Problem]:
    """A numeric claim must be able to fail: closed-form claims declare at least one falsifier."""
    return [Problem(kb.files[cid], "falsify", f"kind '{c.kind}' needs at least one 'falsify' entry: "
                    "perturbed params under which the claim must come out refuted")
            for cid, c in sorted(kb.claims.items()) if c.kind in NUMERIC_KINDS and not c.falsify]


def check(root: Path | str = ".", import_verifiers: bool = True) -> KnowledgeBase:
    """Load the knowledge base and add verifier problems; kb.ok tells the result."""
    kb = load_kb(root)
    kb.problems += falsifier_problems(kb)
    if import_verifiers:
        import sys
        root_s = str(kb.root)
        if root_s not in sys.path:
            sys.path.insert(0, root_s)
        for cid in sorted(kb.claims):
            kb.problems += verifier_problems(kb, cid)
    return kb
