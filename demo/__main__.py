"""The demo program: ``python demo/__main__.py [options]`` (what ``python main.py demo [options]``
runs) or ``python -m demo [options]``.

``DATALOOP_PATH`` points at a temporary folder before dtlpy is imported, so nothing is written to
``~/.dataloop``. main.py runs this file as a script, not with ``-m``: dtlpy calls
``inspect.stack()`` on every request, about ten times slower with ``-m``'s frozen runpy frames.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:
    # run as a script: the repository, not demo/ itself, is what imports resolve against
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from demo.isolation import isolate_dataloop_path  # noqa: E402

if __name__ == "__main__":
    # SIGTERM unwinds like Ctrl-C, so the temporary folders' clean-up (atexit, finally) runs
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    isolate_dataloop_path(force=True)
    from demo.cli import main  # noqa: E402  (after the isolation above, on purpose)

    sys.exit(main(sys.argv[1:]))
