"""``python -m emulator`` / ``python main.py platform``: the local platform alone, for a user's own
dtlpy scripts and the ``dlp`` CLI.

The platform's connection (environment, alias and bearer token) is written into a ``DATALOOP_PATH``
folder of its own, in the cookie format dtlpy itself reads (``login_parameters`` and ``url``, see
``dtlpy/services/api_client.py`` ``environments`` / ``environment``), so another shell only has to
``export DATALOOP_PATH=<that folder>`` before running ``dlp`` or ``python``: nothing of the user's
``~/.dataloop`` is read or changed, and their real login keeps working.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable

DEFAULT_PROJECT = "my-project"


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python main.py platform`` / ``python -m emulator``."""
    parser.add_argument(
        "--dataloop-path",
        metavar="DIR",
        help="folder dtlpy and dlp keep this platform's connection in (default: a new temporary folder, removed "
        "when the platform stops); never your ~/.dataloop",
    )
    parser.add_argument(
        "--project",
        default=DEFAULT_PROJECT,
        help="a project created at start, so `dlp app publish --project-name` has one (default: %(default)s; "
        "'' creates none)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m emulator``."""
    parser = argparse.ArgumentParser(
        prog="python -m emulator", description="run the local Dataloop platform alone, until Ctrl-C"
    )
    add_cli_arguments(parser)
    return parser


def connection_lines(dataloop_path: str, project: str | None) -> list[str]:
    """What a user types in another shell to use the platform: dlp and dtlpy, one folder exported.

    Examples
    --------
    >>> connection_lines("/tmp/x", "p")[0]
    'export DATALOOP_PATH=/tmp/x'
    """
    lines = [f"export DATALOOP_PATH={shlex.quote(dataloop_path)}", "dlp projects ls"]
    if project:
        lines.append(f"dlp app publish --project-name {shlex.quote(project)}")
    lines.append("python -c 'import dtlpy as dl; print(dl.projects.list())'")
    return lines


def write_connection(dataloop_path: str, url: str, alias: str, token: str) -> str:
    """Register the platform as the active dtlpy environment in ``dataloop_path``'s cookie file.

    The same two keys ``dl.add_environment`` / ``dl.setenv`` and the token setter write, through
    dtlpy's own ``CookieIO``; the path of the cookie file is returned.
    """
    from dtlpy.services.cookie import CookieIO

    os.makedirs(dataloop_path, exist_ok=True)
    path = os.path.join(dataloop_path, "cookie.json")
    cookie = CookieIO(path=path)
    environment = {
        "audience": None,
        "client_id": None,
        "auth0_url": None,
        "alias": alias,
        "token": token,
        "gate_url": url,
        "refresh_token": None,
        "verify_ssl": False,
        "use_ssl_context": False,
        "url": url.rsplit("/api/v1", 1)[0] + "/",
        "login_domain": None,
    }
    cookie.put("login_parameters", {url: environment})
    cookie.put("url", url)
    return path


def serve(
    dataloop_path: str | None = None,
    project: str | None = DEFAULT_PROJECT,
    echo: Callable[[str], None] = print,
    stop: threading.Event | None = None,
) -> int:
    """Start the local platform, print how to connect, and serve until ``stop`` is set or Ctrl-C / SIGTERM."""
    owned = dataloop_path is None
    folder = tempfile.mkdtemp(prefix="local-dataloop-") if owned else os.path.abspath(dataloop_path)
    stop = stop or threading.Event()
    if "dtlpy" not in sys.modules:  # dtlpy's own logs and state go to the folder too
        os.environ["DATALOOP_PATH"] = folder
    try:
        import logging

        import dtlpy as dl

        from emulator.platform import LocalPlatform

        logging.getLogger("dtlpy").setLevel(logging.ERROR)  # the SSL notice for 127.0.0.1, alias notices

        with LocalPlatform(alias="local") as platform:
            write_connection(folder, platform.url, "local", platform.token)
            if project:
                dl.projects.create(project_name=project)
            echo(f"local Dataloop platform on {platform.url} (Ctrl-C to stop)")
            echo("In another shell (your ~/.dataloop is neither read nor changed):")
            for line in connection_lines(folder, project):
                echo(f"    {line}")
            _stop_on_signals(stop)
            try:
                while not stop.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
            echo("stopping the local platform")
    finally:
        if owned:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM ends the loop like Ctrl-C, so the ``finally`` clean-up runs (main thread only)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())


def main(argv: list[str] | None = None) -> int:
    """``python -m emulator [options]``."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    return serve(args.dataloop_path, args.project or None)
