"""Keep dtlpy's files out of the user's home while the demo runs.

dtlpy reads ``DATALOOP_PATH`` once, when it is imported, and writes its cookie, logs and
call counters there (default ``~/.dataloop``). :func:`isolate_dataloop_path` must run
before the first ``import dtlpy``: it points ``DATALOOP_PATH`` at a fresh temporary
folder (removed at exit) and sends Python's other temporary files there too. This module
imports nothing from dtlpy.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile

ENV_MARKER = "ACTIVE_LEARNING_DEMO_DATALOOP_PATH"


def wants_demo(argv: list[str]) -> bool:
    """True when the command line runs the demo (``python main.py [-v] demo ...``).

    Examples
    --------
    >>> wants_demo(["-v", "demo", "--rounds", "1"]), wants_demo(["split", "--dataset", "demo"])
    (True, False)
    """
    for arg in argv:
        if not arg.startswith("-"):
            return arg == "demo"
    return False


def isolate_dataloop_path(argv: list[str] | None = None, force: bool = False) -> str | None:
    """Point ``DATALOOP_PATH`` (and ``tempfile``) at a fresh temporary folder for the demo.

    Does nothing when ``argv`` is not a demo command (unless ``force``), or when dtlpy is
    already imported (too late: the caller is told by the return value ``None``).

    Returns
    -------
    str or None
        The folder now used as ``DATALOOP_PATH``.
    """
    if not force and not wants_demo(list(sys.argv[1:] if argv is None else argv)):
        return None
    if "dtlpy" in sys.modules:
        return None
    if os.environ.get(ENV_MARKER) and os.environ.get("DATALOOP_PATH") == os.environ[ENV_MARKER]:
        return os.environ[ENV_MARKER]
    path = tempfile.mkdtemp(prefix="active-learning-demo-")
    os.environ["DATALOOP_PATH"] = path
    os.environ[ENV_MARKER] = path
    private_tmp = os.path.join(path, "tmp")
    os.makedirs(private_tmp, exist_ok=True)
    tempfile.tempdir = private_tmp
    os.environ.setdefault("MPLCONFIGDIR", os.path.join(path, "matplotlib"))  # font cache, not ~/.cache
    atexit.register(shutil.rmtree, path, True)
    return path


class PrivatePaths:
    """dtlpy's DATALOOP_PATH and Python's temp folder of one demo run, and how to undo them."""

    def __init__(self, root: str, saved_tempdir, saved_dataloop_path, owned: bool, set_mplconfigdir: bool):
        self.root, self.saved_tempdir, self.saved_dataloop_path = root, saved_tempdir, saved_dataloop_path
        self.owned, self.set_mplconfigdir = owned, set_mplconfigdir

    def cleanup(self) -> None:
        """Restore what :func:`private_paths` changed; remove the folder when this run made it."""
        import importlib

        service_defaults = importlib.import_module("dtlpy.services.service_defaults")
        tempfile.tempdir = self.saved_tempdir
        if self.set_mplconfigdir:
            os.environ.pop("MPLCONFIGDIR", None)
        if self.saved_dataloop_path is not None:
            service_defaults.DATALOOP_PATH = self.saved_dataloop_path
        if self.owned:
            shutil.rmtree(self.root, ignore_errors=True)


def private_paths() -> PrivatePaths:
    """Make dtlpy's model downloads and temp files land in a temporary DATALOOP_PATH.

    When :func:`isolate_dataloop_path` ran before dtlpy was imported, that folder is already in
    place; otherwise a fresh one is made for this run (removed by ``cleanup``).
    """
    import importlib
    import logging

    service_defaults = importlib.import_module("dtlpy.services.service_defaults")
    isolated = os.environ.get(ENV_MARKER)
    if isolated and service_defaults.DATALOOP_PATH == isolated:
        root, owned, saved = isolated, False, None
    else:
        root, owned, saved = tempfile.mkdtemp(prefix="active-learning-demo-"), True, service_defaults.DATALOOP_PATH
        service_defaults.DATALOOP_PATH = root
        logging.getLogger(__name__).warning(
            "dtlpy was imported before the demo isolated DATALOOP_PATH; using %s for model files", root
        )
    saved_tempdir = tempfile.tempdir
    private_tmp = os.path.join(root, "tmp")
    os.makedirs(private_tmp, exist_ok=True)
    tempfile.tempdir = private_tmp
    set_mpl = "MPLCONFIGDIR" not in os.environ  # matplotlib's font cache would go to ~/.cache otherwise
    if set_mpl:
        os.environ["MPLCONFIGDIR"] = os.path.join(root, "matplotlib")
    return PrivatePaths(root, saved_tempdir, saved, owned, set_mpl)
