"""Shared pytest fixtures: one local Dataloop platform per test session, and a fresh project
and dataset per test. Integration tests talk to it through the real dtlpy client.

- ``platform``: the session's :class:`emulator.LocalPlatform`; before each test that uses it,
  its request counts and pending fault-injection rules are cleared, ``clone_polls`` is 0 and
  ``clone_async`` is off: a clone answers its final status at once, so dtlpy's polling (which sleeps
  about 2 s per poll) does not slow every test. The platform's asynchronous clone is the
  default of ``LocalPlatform`` (the demo runs with it) and is checked where a test sets
  ``platform.clone_async = True``.
- ``project``: a new ``dl.Project`` (unique name) per test.
- ``dataset``: a new ``dl.Dataset`` in ``project`` with labels ``["cat", "dog", "bird"]``.

Creating the project and dataset happens before the counts are reset, so
``platform.request_counts`` in a test only shows the test's own requests.

Tests are hermetic: before anything is imported, ``HOME`` (and the cache folders libraries derive
from it) point at a fresh temporary folder, so no test reads or writes the real home directory,
whatever dtlpy, matplotlib or another process does there.
"""

from __future__ import annotations

import itertools
import os
import sys
import tempfile
from pathlib import Path

TEST_HOME = tempfile.mkdtemp(prefix="active-learning-tests-home-")
for _variable in ("HOME", "USERPROFILE"):
    os.environ[_variable] = TEST_HOME
os.environ["XDG_CACHE_HOME"] = os.path.join(TEST_HOME, ".cache")
os.environ["XDG_CONFIG_HOME"] = os.path.join(TEST_HOME, ".config")
os.environ["MPLCONFIGDIR"] = os.path.join(TEST_HOME, ".matplotlib")
os.environ["DATALOOP_PATH"] = tempfile.mkdtemp(prefix="active-learning-tests-dtlpy-")  # not under HOME

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import emulator  # noqa: E402  (sets DATALOOP_PATH before dtlpy is imported, when possible)
from emulator import LocalPlatform  # noqa: E402

_names = itertools.count(1)


@pytest.fixture(scope="session")
def _platform_session():
    with LocalPlatform(alias="emulator-tests") as platform:
        yield platform


@pytest.fixture
def platform(_platform_session: LocalPlatform) -> LocalPlatform:
    _platform_session.clear_failures()
    _platform_session.clone_polls = 0
    _platform_session.clone_async = False
    _platform_session.reset_counts()
    return _platform_session


@pytest.fixture
def project(platform: LocalPlatform):
    import dtlpy as dl

    created = dl.projects.create(project_name=f"project-{next(_names)}")
    platform.reset_counts()
    return created


@pytest.fixture
def dataset(platform: LocalPlatform, project):
    created = project.datasets.create(
        dataset_name=f"dataset-{next(_names)}", labels=emulator.make_labels(["cat", "dog", "bird"])
    )
    platform.reset_counts()
    return created


def pytest_terminal_summary(terminalreporter):
    """``documented behaviours: N checked``: the platform-conformance tests that passed."""
    passed = [
        report
        for report in terminalreporter.stats.get("passed", [])
        if report.when == "call" and report.nodeid.startswith("tests/test_platform_conformance")
    ]
    if passed:
        terminalreporter.write_line(f"documented behaviours: {len(passed)} checked")
