"""A local Dataloop platform for tests, benchmarks and the demo: the real ``dtlpy`` client
talks to an in-process HTTP server that speaks the part of the REST API the app uses.

Usage::

    import dtlpy as dl
    from emulator import LocalPlatform, RecordingProgress

    with LocalPlatform() as platform:          # 127.0.0.1, free port; dtlpy points at it until exit
        project = dl.projects.create("p")
        dataset = project.datasets.create("d", labels=make_labels(["cat", "dog"]))
        # (dtlpy 1.126.5 only accepts dl.Label objects with a colour here; or use
        #  platform.create_dataset(project, "d", labels=["cat", "dog"]))
        item = dataset.items.upload(local_path=buffer, item_metadata={"user": {"k": 1}})
        model = platform.create_model(project, name="m", dataset=dataset, status="trained")
        context = platform.make_context(node_config={"modelName": "m"}, project=project)
        platform.request_counts["POST /datasets/{id}/query"]   # Counter by route template
        platform.fail_next("PATCH", r"/items/", status=503)     # fault injection

In tests use the fixtures of ``tests/conftest.py`` (``platform``, ``project``, ``dataset``).
The supported endpoints are listed in ``emulator/README.md``.

dtlpy reads ``DATALOOP_PATH`` (its cookie, logs and caches folder) once, at import. Importing
this package first sets it to a fresh temporary folder when it is not set, so dtlpy never
touches ``~/.dataloop``. When dtlpy was imported earlier, ``LocalPlatform`` still swaps dtlpy's
cookie for one in its own temporary folder while it runs, so the user's environments and tokens
are never read or written; only dtlpy's log folder may then be the default one.
"""

import os as _os
import tempfile as _tempfile

if "DATALOOP_PATH" not in _os.environ:
    _os.environ["DATALOOP_PATH"] = _tempfile.mkdtemp(prefix="dtlpy-home-")

from emulator.platform import LocalPlatform, RecordingProgress, make_labels, unsigned_token  # noqa: E402

__all__ = ["LocalPlatform", "RecordingProgress", "make_labels", "unsigned_token"]
