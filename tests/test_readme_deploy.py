"""The README's deploy steps, pasted as a user would against ``python main.py platform`` (issue 22):
``dlp app publish`` / ``dlp app install`` for both manifests, and the Python variant, in a shell
whose ``DATALOOP_PATH`` is the one the platform printed. Only the placeholders are filled in."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import start_local_platform

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PROJECT = "readme-project"


def _readme_block(language: str, after: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(after)
    match = re.compile(rf"```{language}\n(.*?)```", re.S).search(text, start)
    assert match, f"no {language} block after {after!r} in README.md"
    return match.group(1)


@pytest.fixture
def local_platform(tmp_path):
    """``python main.py platform`` in a subprocess (a fresh one per test: a DPK version publishes once);
    its connection folder and a copy of the repository."""
    work = tmp_path
    home, folder = work / "home", work / "connection"
    home.mkdir()
    checkout = work / "app"  # what a user has after `git clone`: the app's files, no venv or outputs
    shutil.copytree(
        ROOT,
        checkout,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis", "active_learning_demo*"
        ),
    )
    env = {k: v for k, v in os.environ.items() if k != "DATALOOP_PATH"}
    env.update(HOME=str(home), PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", MPLCONFIGDIR=str(home / ".mpl"))
    process, lines = start_local_platform(["--dataloop-path", str(folder), "--project", PROJECT], work, env)
    assert any(line.strip() == f"export DATALOOP_PATH={folder}" for line in lines), "".join(lines)
    env["DATALOOP_PATH"] = str(folder)
    try:
        yield checkout, env
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)


def _shell(line: str, cwd: Path, env: dict) -> str:
    done = subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def test_readme_dlp_steps_publish_and_install_both_apps(local_platform):
    checkout, env = local_platform
    steps = [line.split("#")[0].strip() for line in _readme_block("bash", "## Install and deploy").splitlines()]
    steps = [step for step in steps if step and not step.startswith("pip install")]
    assert len(steps) == 4, steps
    cwd, published = checkout, []
    for step in steps:
        step = step.replace('"<project>"', PROJECT)
        for placeholder, dpk_id in zip(("<app dpk id>", "<template dpk id>"), published, strict=False):
            step = step.replace(placeholder, dpk_id)
        assert "<" not in step, step
        if step.startswith("cd template && "):
            cwd, step = checkout / "template", step.removeprefix("cd template && ")
        out = _shell(step, cwd, env)
        if " publish " in f" {step} ":
            published.append(re.search(r"Published the application: id=(\w+)", out).group(1))
    assert len(published) == 2
    listed = _shell(f"dlp app list --project-name {PROJECT}", checkout, env)
    for manifest in (ROOT / "dataloop.json", ROOT / "template" / "dataloop.json"):
        name = json.loads(manifest.read_text(encoding="utf-8"))["name"]
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", listed), listed


def test_readme_python_steps_publish_and_install_both_apps(local_platform):
    checkout, env = local_platform
    code = _readme_block("python", "or from Python:").replace("<project>", PROJECT)
    code += "\nprint('apps', sorted(a.dpk_name for a in project.apps.list().all()))\n"
    out = _shell(f"{sys.executable} - <<'EOF'\n{code}\nEOF", checkout, env)
    assert "apps [" in out
    installed = out.split("apps ", 1)[1]
    manifests = [ROOT / "dataloop.json", ROOT / "template" / "dataloop.json"]
    for manifest in manifests:
        assert json.loads(manifest.read_text(encoding="utf-8"))["name"] in installed
