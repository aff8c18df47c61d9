"""The demo's edge: the Active Learning pipeline template installed on the embedded local platform
once per arm (margin selection, and a random baseline), run by the platform round after round.

:func:`run_demo` publishes and installs the apps, trains the base model with ``model.train()``,
installs the template with ``pipelines.create`` + ``install()``, then each round uploads new raw
items (the Raw Dataset's trigger starts the cycles), has the annotator work the Labeling and Review
tasks, and advances the platform clock to the weekly cron of the model branch. It only watches
cycles and executions; the report lists them. Budget rule and design: docs/demo.md.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import logging
import resource
import shutil
import tempfile
import time
from collections.abc import Callable

from demo.options import DEMO_TARGET_SECONDS, DemoOptions
from demo.session import DemoResult, Session

logger = logging.getLogger(__name__)
#: how long a stopped demo lets the executions in flight end before the platform stops
STOP_GRACE_S = 20.0


# -------------------------------------------------------------------------------------------- the run
def run_demo(options: DemoOptions, echo: Callable[[str], None] = print, progress_bars: bool = True) -> DemoResult:
    """Run the whole demo and write ``report.md``, ``pr_curves.png``, ``learning_curve.png``.

    Edge function: starts ``LocalPlatform`` (127.0.0.1 only, its worker processes and folders
    removed on every exit path) and drives it with dtlpy; the multi-seed study runs meanwhile in
    a second process (no platform).

    Examples
    --------
    >>> result = run_demo(DemoOptions(items=300, rounds=1))   # doctest: +SKIP
    >>> result.decision in ("update model", "discard")        # doctest: +SKIP
    True
    """
    from demo.isolation import private_paths
    from demo.study import start_study
    from emulator import LocalPlatform

    started, cpu_started = time.perf_counter(), _cpu_seconds()
    options.out.mkdir(parents=True, exist_ok=True)
    private = private_paths()
    study = None
    platform = LocalPlatform(id_prefix=f"{options.seed % 2**32:08x}")
    try:
        if options.study_seeds:
            study = start_study(options.study_seeds, options.rounds, options.budget, options.initial)
        platform.start()
        session = Session(options, platform, echo, progress_bars, study)
        result = session.run()
        if options.keep_running:
            _keep_running(platform, echo)
    except BaseException:
        # stopped early (Ctrl-C, SIGTERM, an error): let the executions in flight end first, so no
        # worker process is still starting when the platform stops (see docs/demo.md)
        with contextlib.suppress(Exception):
            platform.store.engine.wait_idle(STOP_GRACE_S)
        raise
    finally:
        platform.stop()
        if study is not None:
            study.stop()
        private.cleanup()
    elapsed = time.perf_counter() - started
    own, children = (a - b for a, b in zip(_cpu_seconds(), cpu_started, strict=True))
    from demo.tasks import TASK_TARGET_SECONDS

    target = TASK_TARGET_SECONDS.get(options.task, DEMO_TARGET_SECONDS)
    verdict = "met" if elapsed < target else "MISSED"
    echo(
        f"elapsed: {elapsed:.1f} s wall; CPU {own + children:.1f} s ({own:.1f} s this process with the platform, "
        f"{children:.1f} s its worker processes and the study) (target: under {target} s on 2 cores: "
        f"{verdict})"
    )
    return dataclasses.replace(result, elapsed_s=elapsed, cpu_s=own + children)


def _cpu_seconds() -> tuple[float, float]:
    """CPU seconds (user + system) of this process, and of its ended child processes."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def _keep_running(platform, echo: Callable[[str], None]) -> None:
    """Leave the platform up and say how to point dtlpy and dlp at it, until Ctrl-C.

    The connection goes into a ``DATALOOP_PATH`` folder of its own (removed on exit): the user's
    ``~/.dataloop`` and their real login are neither read nor changed.
    """
    from emulator.serve import connection_lines, write_connection

    folder = tempfile.mkdtemp(prefix="active-learning-demo-connection-")
    atexit.register(shutil.rmtree, folder, True)
    try:
        write_connection(folder, platform.url, platform.alias, platform.token)
        echo("")
        echo("The local platform keeps running (Ctrl-C to stop). In another shell (your ~/.dataloop is untouched):")
        for line in connection_lines(folder, "active-learning-demo"):
            if not line.startswith("dlp app publish"):
                echo(f"    {line}")
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        echo("stopping the local platform")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
