"""`python -m principia`: the command line, without the working folder shadowing other modules."""
import sys

sys.path.pop(0)  # the working folder: a yaml.py or json.py there must not be imported
from principia.safepath import shim  # noqa: E402  (principia itself is already imported)

sys.path.insert(0, shim())
from principia.cli import main  # noqa: E402

sys.exit(main())
