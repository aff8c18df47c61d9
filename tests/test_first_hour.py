"""A new user's first hour: help without dtlpy, paths relative to the caller, the local platform
alone for dlp and dtlpy without touching ~/.dataloop (issues 22 and 23)."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import start_local_platform

ROOT = Path(__file__).resolve().parents[1]
DLP = Path(sys.executable).with_name("dlp")


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATALOOP_PATH",)}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), MPLCONFIGDIR=str(home / ".mpl"))
    env.update(extra)
    return env


def test_help_needs_no_dtlpy_and_writes_nothing(tmp_path: Path) -> None:
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['main.py', '--help']; sys.path.insert(0, {str(ROOT)!r})\n"
        "try:\n"
        f"    runpy.run_path({str(ROOT / 'main.py')!r}, run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    print('exit', exit.code)\n"
        "print('dtlpy imported', 'dtlpy' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=120
    )
    assert "usage: python main.py" in done.stdout
    assert "exit 0" in done.stdout and "dtlpy imported False" in done.stdout
    assert not (tmp_path / ".dataloop").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_bad_option_exits_2_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "split", "--seed", "x"],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "--seed" in done.stderr


def test_demo_out_is_relative_to_the_callers_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from demo.run import DemoOptions

    monkeypatch.chdir(tmp_path)
    options = DemoOptions.from_args(argparse.Namespace(out="rel"))
    assert options.out == tmp_path / "rel"


def test_demo_command_keeps_the_callers_folder() -> None:
    import main

    command = main.demo_command(["demo", "--out", "rel"])
    assert command[-2:] == ["--out", "rel"]  # passed through untouched; the demo resolves it


@pytest.mark.parametrize(("initial", "items"), [(300, 300), (400, 300)])
def test_demo_refuses_initial_pool_not_smaller_than_items(initial: int, items: int) -> None:
    from demo.run import DemoOptions

    with pytest.raises(ValueError, match="--initial"):
        DemoOptions.from_args(argparse.Namespace(initial=initial, items=items))


def _start_platform(tmp_path: Path, *options: str) -> tuple[subprocess.Popen, list[str]]:
    return start_local_platform(list(options), tmp_path, _env(tmp_path / "home"))


def test_platform_command_serves_dlp_in_a_dataloop_path_of_its_own(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    folder = tmp_path / "connection"
    process, lines = _start_platform(tmp_path, "--dataloop-path", str(folder), "--project", "first-project")
    try:
        assert f"export DATALOOP_PATH={folder}" in [line.strip() for line in lines]
        listed = subprocess.run(
            [str(DLP), "projects", "ls"],
            cwd=tmp_path,
            env=_env(tmp_path / "home", DATALOOP_PATH=str(folder)),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert listed.returncode == 0, listed.stderr
        assert "first-project" in listed.stdout
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    assert process.returncode == 0
    assert (folder / "cookie.json").is_file()  # the user's folder is theirs: kept
    assert not (tmp_path / "home" / ".dataloop").exists()


def test_platform_command_removes_its_own_temporary_folder(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    process, lines = _start_platform(tmp_path, "--project", "")
    exported = next(line.strip() for line in lines if line.strip().startswith("export DATALOOP_PATH="))
    folder = Path(exported.split("=", 1)[1])
    assert folder.is_dir()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=120)
    assert process.returncode == 0
    assert not folder.exists()
