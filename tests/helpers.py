"""Helpers several test modules share: box annotations (ground truth or a model's prediction), a
node called through ``main.ServiceRunner`` with a recorded progress, and the one-line totals a
table-driven suite prints in pytest's terminal summary. Import as ``from tests.helpers import ...``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import main
from emulator import RecordingProgress

TEST_TAGS = {"system": {"tags": {"test": True}}}


def box(label, left, top, size=40.0, model=None, confidence=None) -> dict:
    """A ``size`` x ``size`` box at (``left``, ``top``): ground truth, or ``model``'s prediction.

    Examples
    --------
    >>> box("cat", 10, 20, size=5)["coordinates"][1]
    {'x': 15, 'y': 25, 'z': 0}
    """
    annotation = {
        "type": "box",
        "label": label,
        "coordinates": [{"x": left, "y": top, "z": 0}, {"x": left + size, "y": top + size, "z": 0}],
        "metadata": {},
    }
    if model is not None:
        annotation["metadata"] = {
            "user": {"model": {"model_id": model.id, "name": model.name, "confidence": confidence}}
        }
    return annotation


def run_node(function: str, **inputs: Any) -> tuple[Any, RecordingProgress]:
    """Call ``main.ServiceRunner().<function>(**inputs, progress=...)``; return (result, progress)."""
    progress = RecordingProgress()
    result = getattr(main.ServiceRunner(), function)(progress=progress, **inputs)
    return result, progress


def run_compare(previous, new, dataset, config=None, context=None) -> tuple[Any, RecordingProgress]:
    """Compare Models on ``dataset``: (the winning model, the progress with the action taken)."""
    return run_node(
        "compare_models",
        previous_model=previous,
        new_model=new,
        compare_config=config,
        dataset=dataset,
        context=context,
    )


@dataclass
class Totals:
    """Counts of a table-driven suite, printed as one line in pytest's terminal summary (visible
    with ``-q``) once :meth:`print_at_end` registered it; ``line`` is formatted with ``tried``,
    ``ok`` and ``writes``. Nothing is printed when no case ran."""

    line: str
    tried: int = 0
    ok: int = 0
    writes: int = 0

    def print_at_end(self, config, name: str) -> None:
        """Register (once per session) the plugin named ``name`` that prints the totals."""
        if not config.pluginmanager.has_plugin(name):
            config.pluginmanager.register(_SummaryPlugin(self), name)


class _SummaryPlugin:
    def __init__(self, totals: Totals) -> None:
        self.totals = totals

    def pytest_terminal_summary(self, terminalreporter) -> None:
        totals = self.totals
        if totals.tried:
            terminalreporter.write_line(totals.line.format(tried=totals.tried, ok=totals.ok, writes=totals.writes))


def unreachable_platform_setup() -> str:
    """Python lines that point dtlpy at a local port nobody listens on, with a valid-looking
    unsigned token: a CLI run after them meets an unreachable platform, not a missing login."""
    import socket

    with socket.socket() as s:  # a free port, closed again: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    return (
        "import base64, json, dtlpy as dl\n"
        "b = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip('=')\n"
        f"dl.add_environment(environment='{url}/api/v1', alias='gone', verify_ssl=False, gate_url='{url}', url='{url}')\n"
        "dl.setenv('gone')\n"
        "dl.client_api.token = b({'alg': 'none'}) + '.' + b({'exp': 4102444800, 'email': 'a@b.c'}) + '.s'\n"
    )


def start_local_platform(options: list[str], cwd, env: dict) -> tuple[Any, list[str]]:
    """``python main.py platform <options>`` in a subprocess, read until it prints its connection
    lines (the last one starts ``python -c``): the process and the lines printed (stripped).

    A start that hangs is killed after 300 s (a guard, not a speed check: it ends the read with
    the output so far), and the test fails naming what was printed.
    """
    import subprocess
    import sys
    import threading
    from pathlib import Path

    main_py = Path(__file__).resolve().parents[1] / "main.py"
    process = subprocess.Popen(
        [sys.executable, str(main_py), "platform", *options],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    guard = threading.Timer(300, process.kill)
    guard.start()
    lines: list[str] = []
    try:
        for line in process.stdout:
            lines.append(line.rstrip())
            if line.strip().startswith("python -c"):
                return process, lines
    finally:
        guard.cancel()
    process.kill()
    raise AssertionError("the platform did not print its connection lines:\n" + "\n".join(lines))
