"""A sys.path entry that holds only this package.

`python -m` and `python -c` put the working folder first on sys.path, so a `yaml.py` or
`typing.py` committed at the repository root would be imported instead of the real module.
Processes we start (the fork server, `check`'s import probe) run with PYTHONSAFEPATH and find
`principia` through this folder, which links to the package in use and nothing else.
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from functools import lru_cache

__all__ = ["shim"]


@lru_cache(maxsize=1)
def shim() -> str:
    """A private folder containing only a link named 'principia' to this package."""
    folder = tempfile.mkdtemp(prefix="principia-path-")
    os.symlink(os.path.dirname(os.path.abspath(__file__)), os.path.join(folder, "principia"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def child_env() -> dict[str, str]:
    """Environment for a child Python: no working folder on sys.path, this package first."""
    extra = os.environ.get("PYTHONPATH")
    path = shim() + (os.pathsep + extra if extra else "")
    return {**os.environ, "PYTHONSAFEPATH": "1", "PYTHONPATH": path}
