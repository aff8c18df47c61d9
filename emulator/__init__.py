"""A local Dataloop platform for tests, benchmarks and the demo: the real ``dtlpy`` client talks
to an in-process HTTP server (127.0.0.1) that speaks the part of the REST API the app uses.

Exports :class:`LocalPlatform`, :class:`RecordingProgress` and :func:`make_labels`. Importing
this package first sets ``DATALOOP_PATH`` to a fresh temporary folder when it is not set (dtlpy
reads it once, at import), so dtlpy never touches ``~/.dataloop``. Usage, endpoints, sources and
assumptions: ``emulator/README.md``; in tests use the fixtures of ``tests/conftest.py``.
"""

import os as _os
import tempfile as _tempfile

if "DATALOOP_PATH" not in _os.environ:
    _os.environ["DATALOOP_PATH"] = _tempfile.mkdtemp(prefix="dtlpy-home-")

from emulator.platform import LocalPlatform, RecordingProgress, make_labels, unsigned_token  # noqa: E402

__all__ = ["LocalPlatform", "RecordingProgress", "make_labels", "unsigned_token"]
