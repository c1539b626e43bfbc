"""Imported first by every benchmark: the repository before this folder on the module path.

Run as `python bench/<name>.py`, a benchmark has this folder first on the path, and
`bench/fiat.py` would stand in for the `fiat` package wherever the service imports it. The
repository comes first instead, and this folder last, for the benchmarks' shared modules.
"""

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [
    str(_HERE.parent),
    *(entry for entry in sys.path if Path(entry or ".").resolve() != _HERE),
    str(_HERE),
]
