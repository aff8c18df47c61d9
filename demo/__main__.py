"""The demo program: ``python demo/__main__.py [options]`` (what ``python main.py demo [options]``
runs) or ``python -m demo [options]``.

The temporary ``DATALOOP_PATH`` is set before dtlpy is imported, so nothing is written to
``~/.dataloop``. ``main.py`` starts this file as a script rather than with ``-m``: dtlpy calls
``inspect.stack()`` on every request, and the frozen ``runpy`` frames that ``-m`` leaves at the
bottom of the stack make each call about ten times slower (``inspect.getmodule`` scans
``sys.modules`` for a file it can never find).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:
    # run as a script: the repository, not demo/ itself, is what imports resolve against
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from demo.isolation import isolate_dataloop_path  # noqa: E402

if __name__ == "__main__":
    isolate_dataloop_path(force=True)
    from demo.cli import main  # noqa: E402  (after the isolation above, on purpose)

    sys.exit(main(sys.argv[1:]))
