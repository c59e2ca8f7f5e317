"""A claim's own parameters for verifier tests: the YAML is the one source of every setting."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import yaml

from tests.conftest import ROOT

__all__ = ["params"]


@lru_cache(maxsize=None)
def _claim(cid: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "claims" / f"{cid}.yaml").read_text(encoding="utf-8"))


def params(cid: str, tier: str = "fast", **override: Any) -> dict[str, Any]:
    """The claim's params overlaid with its tier's and then with the test's overrides."""
    c = _claim(cid)
    return {**c.get("params", {}), **(c.get("tiers", {}).get(tier) or {}), **override}
