"""``python -m demo [options]`` (what ``python main.py demo [options]`` runs).

The temporary ``DATALOOP_PATH`` is set before dtlpy is imported, so nothing is written to
``~/.dataloop``.
"""

from __future__ import annotations

import sys

from demo.isolation import isolate_dataloop_path

if __name__ == "__main__":
    isolate_dataloop_path(force=True)
    from demo.cli import main  # noqa: E402  (after the isolation above, on purpose)

    sys.exit(main(sys.argv[1:]))
