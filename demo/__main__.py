"""``python -m demo [options]``: the same as ``python main.py demo [options]``.

The temporary ``DATALOOP_PATH`` is set before dtlpy is imported, so nothing is written to
``~/.dataloop``.
"""

from __future__ import annotations

import sys

from demo.isolation import isolate_dataloop_path

if __name__ == "__main__":
    isolate_dataloop_path(force=True)
    import main  # noqa: E402  (after the isolation above, on purpose)

    sys.exit(main.main(["demo", *sys.argv[1:]]))
