"""`python -m principia`: the command line, without the working folder shadowing other modules.

`python -m` puts the working folder first on sys.path, so a `yaml.py` or `json.py` committed at
the repository root would be imported instead of the real module. The folder is replaced by a
private one that holds only a link to this package.
"""
import atexit
import os
import shutil
import sys
import tempfile


def _safe_path() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    shim = tempfile.mkdtemp(prefix="principia-path-")
    os.symlink(here, os.path.join(shim, "principia"))
    atexit.register(shutil.rmtree, shim, True)
    sys.path[0] = shim


_safe_path()
from principia.cli import main  # noqa: E402  (after the path is made safe)

sys.exit(main())
