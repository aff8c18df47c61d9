"""Helpers the command lines share: a bounded ``--config`` read, an ``--out`` probe, platform failures.

``read_config_text`` reads only a regular file and at most its size limit (a device, FIFO or folder
is refused before it is opened); ``prepare_out_dir`` creates ``--out`` and writes (then removes) a
probe file in it before any work, so an unwritable place fails first whoever runs it;
``check_platform`` and ``platform_failure`` turn "not logged in" and "platform
unreachable" into one line saying how to log in or start the local platform (exit code 2).
"""

from __future__ import annotations

import os
import re
import socket
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from nodes.common.limits import MAX_BYTES, cut, shorten

#: Control characters never belong in a path typed on a command line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: Seconds the reachability check waits for the platform's TCP port.
CONNECT_TIMEOUT = 3.0
#: What to do when the platform cannot be used (one line, in every platform message).
LOGIN_HINT = (
    "log in with `dlp login` (or dl.login() in Python) for that environment, or start the local platform with "
    "`python main.py platform` and use the connection lines it prints"
)


class PlatformUnavailable(RuntimeError):
    """The Dataloop platform cannot be used: not logged in, or not reachable (one-line message)."""


def read_config_text(path: Any, option: str = "--config", max_bytes: int = 2 * MAX_BYTES, fix: str = "") -> str:
    """The UTF-8 text of the regular file ``path``, read up to ``max_bytes``; else a ``ValueError``.

    The file is checked with ``os.stat`` before it is opened: a folder, device (``/dev/zero``),
    FIFO or socket is refused without reading, and at most ``max_bytes + 1`` bytes are read, so a
    file that grows (or a ``/proc`` file whose size reads 0) never fills the memory. Every message
    names ``option`` and ends with ``fix``.

    Examples
    --------
    >>> read_config_text("/dev/zero")
    Traceback (most recent call last):
    ...
    ValueError: --config: '/dev/zero' is a character device, not a regular file; give the path of a JSON file
    """
    fix = fix or "give the path of a JSON file"
    if not isinstance(path, str) or not path or _CONTROL.search(path):
        raise ValueError(f"{option}: {shorten(path, 120)} is not a file name; {fix}")
    shown = shorten(path, 120)
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{option}: {shown} is {_kind(info.st_mode)}, not a regular file; {fix}")
        if info.st_size > max_bytes:
            raise ValueError(f"{option} {shown}: {info.st_size:,} bytes, more than the {max_bytes:,} allowed; {fix}")
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as error:
        raise ValueError(f"{option}: {shown} cannot be read ({error.strerror or error}); {fix}") from None
    if len(data) > max_bytes:
        raise ValueError(f"{option} {shown}: more than the {max_bytes:,} bytes allowed; {fix}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{option} {shown}: not UTF-8 text ({error.reason}); save the file as UTF-8") from None


def _kind(mode: int) -> str:
    for check, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if check(mode):
            return name
    return "a special file"


@dataclass
class OutDir:
    """An output folder that was just proved writable; ``created`` are the folders made for it."""

    path: Path
    created: list[Path] = field(default_factory=list)

    def discard_if_unused(self) -> None:
        """Remove the folders made for it (newest first) while they are empty: a refusal leaves nothing."""
        for folder in reversed(self.created):
            try:
                folder.rmdir()
            except OSError:
                return


def prepare_out_dir(value: Any, option: str = "--out", example: str = "--out report", files: tuple = ()) -> OutDir:
    """Create ``value`` (and its parents) and write, then remove, a probe file in it.

    Writing is the only check that holds for every user (root writes where the permission bits
    say no; a read-only file system refuses everyone), so this is done before any work. An
    existing file, a path under a file, a folder standing where one of ``files`` is to be written,
    or a place that refuses the probe is a ``ValueError`` naming ``option``; folders made before
    the refusal are removed again.

    Examples
    --------
    >>> import tempfile
    >>> out = prepare_out_dir(tempfile.mkdtemp() + "/a/b")
    >>> out.path.is_dir(), [p.name for p in out.created], list(out.path.iterdir())
    (True, ['a', 'b'], [])
    >>> out.discard_if_unused(); out.path.exists()
    False
    """
    fix = f"give a new or existing folder you can write to, e.g. {example}"
    if not isinstance(value, str) or not value or _CONTROL.search(value):
        raise ValueError(f"{option}: {shorten(value, 120)} is not a usable folder name; {fix}")
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{option}: {shorten(value, 120)} is an existing file, not a folder; {fix}")
    missing = []
    parent = path
    while not parent.exists() and parent.parent != parent:
        missing.append(parent)
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise ValueError(
            f"{option}: {shorten(str(parent), 120)} is a file, so {shorten(value, 120)} cannot be created; {fix}"
        )
    out = OutDir(path)
    try:
        for folder in reversed(missing):
            folder.mkdir()
            out.created.append(folder)
        for name in files:
            if (path / name).is_dir():
                raise ValueError(
                    f"{option}: {shorten(str(path / name), 120)} is a folder, so {name} cannot be written; {fix}"
                )
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-probe-", delete=True) as probe:
            probe.write(b"probe")
            probe.flush()
    except OSError as error:
        out.discard_if_unused()
        raise ValueError(
            f"{option}: {shorten(value, 120)} is not writable ({cut(error.strerror or error, 80)}); {fix}"
        ) from None
    except ValueError:
        out.discard_if_unused()
        raise
    return out


def check_platform(timeout: float = CONNECT_TIMEOUT) -> None:
    """EDGE. Refuse (``PlatformUnavailable``) when dtlpy has no login, or its environment is unreachable.

    No login is dtlpy's token being empty (an expired one may still be renewed by dtlpy, and is
    reported by :func:`platform_failure` if not). Reachability is one TCP connect to the host and
    port of ``dl.client_api.environment`` (no HTTP request), so an unreachable platform fails in
    seconds instead of after dtlpy's retries.
    """
    import dtlpy as dl

    environment = str(dl.client_api.environment)
    if not dl.client_api.token:
        raise PlatformUnavailable(f"not logged in to Dataloop (environment {cut(environment, 120)}); {LOGIN_HINT}")
    parts = urlsplit(environment)
    if not parts.hostname:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            pass
    except OSError as error:
        raise PlatformUnavailable(
            f"the Dataloop platform at {cut(environment, 120)} is not reachable ({cut(error.strerror or error, 60)}); "
            f"{LOGIN_HINT}"
        ) from None


def platform_failure(error: BaseException) -> str | None:
    """The one-line message for an error that means "not logged in" or "platform unreachable", else ``None``.

    Examples
    --------
    >>> platform_failure(ConnectionRefusedError(111, "Connection refused")).startswith("the Dataloop platform")
    True
    >>> platform_failure(ValueError("x")) is None
    True
    """
    if isinstance(error, PlatformUnavailable):
        return str(error)
    import requests

    if isinstance(error, requests.exceptions.ConnectionError | requests.exceptions.Timeout | ConnectionError):
        return f"the Dataloop platform could not be reached ({type(error).__name__}); {LOGIN_HINT}"
    module = type(error).__module__ or ""
    if module.startswith("dtlpy") and type(error).__name__ in ("TokenExpired", "Unauthorized"):
        return f"not logged in to Dataloop (or the login expired); {LOGIN_HINT}"
    return None
