"""A local Dataloop platform for tests, benchmarks and the demo: the real ``dtlpy`` client talks
to an in-process HTTP server (127.0.0.1) that speaks the part of the REST API the app uses.

Exports :class:`LocalPlatform`, :class:`RecordingProgress`, :func:`make_labels` and
:func:`unsigned_token`, imported on first use (so ``python main.py --help`` never imports dtlpy).
Before dtlpy is first imported through them, ``DATALOOP_PATH`` is set to a fresh temporary folder
when it is not set (dtlpy reads it once, at import; the folder is removed at exit), so dtlpy never
touches ``~/.dataloop``. Usage, endpoints, sources and assumptions: ``emulator/README.md``; in
tests use the fixtures of ``tests/conftest.py``.
"""

import atexit as _atexit
import os as _os
import shutil as _shutil
import tempfile as _tempfile

__all__ = ["LocalPlatform", "RecordingProgress", "make_labels", "unsigned_token"]


def _own_dataloop_path() -> None:
    if "DATALOOP_PATH" not in _os.environ:
        path = _tempfile.mkdtemp(prefix="dtlpy-home-")
        _os.environ["DATALOOP_PATH"] = path
        _atexit.register(_shutil.rmtree, path, True)


def __getattr__(name: str):
    if name in __all__:
        _own_dataloop_path()
        from emulator import platform

        return getattr(platform, name)
    raise AttributeError(f"module 'emulator' has no attribute {name!r}")
