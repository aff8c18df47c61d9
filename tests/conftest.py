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
whatever dtlpy, matplotlib or another process does there. That folder, dtlpy's own
(``DATALOOP_PATH``), pytest's ``tmp_path`` base (put under it) and the session's ``TMPDIR`` (every
other temporary file of the tests and of the processes they start: dtlpy's ``mkdtemp`` calls, the
platform's workers) are removed when the session ends, and again at interpreter exit (an
interrupted run, ``-x``, Ctrl-C), so nothing is left in the temporary directory.

``--null-reading {deletes,stored}`` (or ``EMULATOR_NULL_READING``) chooses the local platform's
reading of a ``null`` in a single-entity PATCH, which Dataloop does not document: ``deletes`` (the
default: the key is removed) or ``stored`` (``null`` is kept as a value, as the item docs' "Null"
metadata type reads) for the whole session; the node integration tests (``BOTH_NULL_READINGS``)
run under both readings in every session, each test once per reading.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import sys
import tempfile
from pathlib import Path

TEST_HOME = tempfile.mkdtemp(prefix="active-learning-tests-home-")
DATALOOP_PATH = tempfile.mkdtemp(prefix="active-learning-tests-dtlpy-")  # not under HOME
# every temporary file of the session, this process's and its subprocesses' (dtlpy's own mkdtemp
# calls, the platform's worker processes, CLIs run by tests), goes into one folder removed at the end
TEST_TMP = tempfile.mkdtemp(prefix="active-learning-tests-tmp-")
os.environ["TMPDIR"] = TEST_TMP
tempfile.tempdir = TEST_TMP
for _variable in ("HOME", "USERPROFILE"):
    os.environ[_variable] = TEST_HOME
os.environ["XDG_CACHE_HOME"] = os.path.join(TEST_HOME, ".cache")
os.environ["XDG_CONFIG_HOME"] = os.path.join(TEST_HOME, ".config")
os.environ["MPLCONFIGDIR"] = os.path.join(TEST_HOME, ".matplotlib")
os.environ["DATALOOP_PATH"] = DATALOOP_PATH
_OWN_PID = os.getpid()


def remove_test_folders() -> None:
    """Remove the session's HOME and dtlpy folders (idempotent; only in the process that made them)."""
    if os.getpid() != _OWN_PID:  # a forked worker must not remove its parent's folders
        return
    for folder in (TEST_HOME, DATALOOP_PATH, TEST_TMP):
        shutil.rmtree(folder, ignore_errors=True)


# registered before dtlpy is imported, so it runs after dtlpy's own exit handlers (LIFO)
atexit.register(remove_test_folders)
NULL_READINGS = ("deletes", "stored")

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import emulator  # noqa: E402  (sets DATALOOP_PATH before dtlpy is imported, when possible)
from emulator import LocalPlatform  # noqa: E402

_names = itertools.count(1)


def pytest_addoption(parser):
    parser.addoption(
        "--null-reading",
        choices=NULL_READINGS,
        default=os.environ.get("EMULATOR_NULL_READING", "deletes"),
        help="the local platform's reading of null in a single-entity PATCH: deletes the key (default) "
        "or stored as a value (env EMULATOR_NULL_READING)",
    )


def pytest_configure(config):
    if config.getoption("--null-reading") not in NULL_READINGS:
        raise pytest.UsageError(f"--null-reading / EMULATOR_NULL_READING: use one of {', '.join(NULL_READINGS)}")
    if config.option.basetemp is None:  # tmp_path folders live under the test HOME, removed with it
        config.option.basetemp = os.path.join(TEST_HOME, "pytest")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    """After the session's fixtures (the platform) are torn down: remove the temporary folders."""
    remove_test_folders()


# The node integration tests run under both readings of null in one session (the README's test
# command): each of their tests is parametrized by the reading, which the platform fixture sets.
BOTH_NULL_READINGS = frozenset(
    {
        "test_data_split_node",
        "test_data_split_batch",
        "test_data_split_concurrency",
        "test_data_split_predictions",
        "test_create_new_model_integration",
        "test_create_new_model_records",
        "test_compare_models_integration",
        "test_select_items_integration",
        "test_select_gate_integration",
    }
)


def pytest_generate_tests(metafunc):
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    if module in BOTH_NULL_READINGS and "platform" in metafunc.fixturenames:
        metafunc.parametrize("null_deletes", [True, False], ids=["null-deletes", "null-stored"], indirect=True)


@pytest.fixture
def null_deletes(request, pytestconfig) -> bool:
    """The reading of ``null`` in a single-entity PATCH for this test: the parametrized one in the
    node integration tests, else the session's (``--null-reading``)."""
    if hasattr(request, "param"):
        return bool(request.param)
    return pytestconfig.getoption("--null-reading") == "deletes"


@pytest.fixture(scope="session")
def _platform_session(pytestconfig):
    reading = pytestconfig.getoption("--null-reading") == "deletes"
    with LocalPlatform(alias="emulator-tests", null_deletes=reading) as platform:
        yield platform


@pytest.fixture
def platform(_platform_session: LocalPlatform, null_deletes: bool) -> LocalPlatform:
    _platform_session.clear_failures()
    _platform_session.clone_polls = 0
    _platform_session.clone_async = False
    _platform_session.store.null_deletes = null_deletes
    _platform_session.store.bulk_null_deletes = False
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


def pytest_terminal_summary(terminalreporter, config):
    """``documented behaviours: N checked``: the platform-conformance tests that passed."""
    if config.getoption("--null-reading") != "deletes":
        terminalreporter.write_line(f"local platform: null in a PATCH read as {config.getoption('--null-reading')}")
    passed = [
        report
        for report in terminalreporter.stats.get("passed", [])
        if report.when == "call" and report.nodeid.startswith("tests/test_platform_conformance")
    ]
    if passed:
        terminalreporter.write_line(f"documented behaviours: {len(passed)} checked")
