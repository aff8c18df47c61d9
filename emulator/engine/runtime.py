"""Service replicas: worker processes (``emulator/engine/worker.py``) that run a service's code,
started from the service's own folder (its unpacked codebase and a ``DATALOOP_PATH`` per
process) and spoken to over JSON lines. A replica runs several executions at once in threads;
a crash or a kill ends every execution it was running (the engine decides what follows).
"""

from __future__ import annotations

import collections
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

WORKER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker.py")
#: seconds a new worker process may take to import dtlpy and answer ``ready`` (assumption)
STARTUP_TIMEOUT_S = 120.0


class Replica:
    """One worker process: spawned first (it imports dtlpy while it waits: a spare), then given
    a service (:meth:`attach`).

    Parameters
    ----------
    folder : str
        The process's own folder (its ``DATALOOP_PATH``), removed when the process ends.
    on_message : callable
        Called with every ``progress`` / ``log`` message (from the reader thread).
    """

    def __init__(self, folder: str, on_message: Callable[[dict], None] | None = None) -> None:
        self.init: dict | None = None
        self.folder = folder
        self.on_message = on_message or (lambda message: None)
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=60)
        self._pending: dict[str, dict[str, Any]] = {}
        self._stacks: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._ready = threading.Event()
        self._dead = threading.Event()
        self.process: subprocess.Popen | None = None
        self.returncode: int | None = None

    # ------------------------------------------------------------------ lifecycle
    def spawn(self) -> Replica:
        """Start the process (it imports dtlpy, then waits for :meth:`attach`)."""
        os.makedirs(self.folder, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
        env.update({"DATALOOP_PATH": self.folder, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"})
        self.process = subprocess.Popen(
            [sys.executable, WORKER_SCRIPT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=self.folder,
            env=env,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        threading.Thread(target=self._read_stdout, daemon=True, name="replica-out").start()
        threading.Thread(target=self._read_stderr, daemon=True, name="replica-err").start()
        return self

    def attach(self, init: dict, on_message: Callable[[dict], None]) -> Replica:
        """Give the process its service (``init``: ``url``, ``token``, ``codeDir``, ``service``,
        ``module``) and wait until it answers ``ready`` (killed after ``STARTUP_TIMEOUT_S``)."""
        self.init = init
        self.on_message = on_message
        try:
            self._send(init)
        except (OSError, ValueError):
            pass  # it died: the reader answers every run as crashed
        if not self._ready.wait(STARTUP_TIMEOUT_S) and not self._dead.is_set():
            self.kill()
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and not self._dead.is_set()

    def kill(self) -> None:
        """End the process at once (its running executions end as crashed)."""
        if self.process is None:
            return
        try:
            self.process.kill()
        except OSError:
            pass
        self._dead.wait(10)

    def close(self) -> None:
        """Ask the process to exit, then kill it if it does not."""
        if self.process is None or self._dead.is_set():
            return
        try:
            if self.init is None:  # a spare waits for its init line: end of input ends it
                with self._write_lock:
                    self.process.stdin.close()
            else:
                self._send({"type": "exit"})
            self.process.wait(5)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        self.kill()

    # ------------------------------------------------------------------ executions
    def run(self, message: dict, timeout_s: float | None) -> dict | None:
        """Run one execution; its result message, a ``crashed`` one when the process died, or
        ``None`` when ``timeout_s`` passed first (the caller decides to kill)."""
        execution_id = message["execution"]["id"]
        slot: dict[str, Any] = {"event": threading.Event(), "result": None}
        with self._lock:
            if not self.alive:
                return self._crashed()
            self._pending[execution_id] = slot
        try:
            self._send({"type": "run", **message})
        except (OSError, ValueError):
            pass  # the reader sees the process end and answers every pending slot
        finished = slot["event"].wait(timeout_s)
        with self._lock:
            self._pending.pop(execution_id, None)
        return slot["result"] if finished else None

    def log_stack(self, execution_id: str, timeout_s: float = 2.0) -> None:
        """Ask the process to log where ``execution_id`` is now; wait for it (or ``timeout_s``)."""
        done = threading.Event()
        with self._lock:
            self._stacks[execution_id] = done
        try:
            self._send({"type": "stack", "executionId": execution_id})
            done.wait(timeout_s)
        except (OSError, ValueError):
            pass
        finally:
            with self._lock:
                self._stacks.pop(execution_id, None)

    def terminate(self, execution_id: str) -> None:
        try:
            self._send({"type": "terminate", "executionId": execution_id})
        except (OSError, ValueError):
            pass

    # ------------------------------------------------------------------ plumbing
    def _send(self, message: dict) -> None:
        with self._write_lock:
            stdin = self.process.stdin
            stdin.write(json.dumps(message) + "\n")
            stdin.flush()

    def _crashed(self) -> dict:
        code = self.returncode
        tail = "\n".join(self.stderr_tail)
        return {
            "type": "result",
            "status": "crashed",
            "error": f"the service process ended (exit code {code})",
            "traceback": tail,
        }

    def _read_stdout(self) -> None:
        for line in self.process.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                self.stderr_tail.append(line.rstrip())
                continue
            kind = message.get("type")
            if kind == "ready":
                self._ready.set()
            elif kind == "stackDone":
                with self._lock:
                    done = self._stacks.get(message.get("executionId"))
                if done is not None:
                    done.set()
            elif kind == "result":
                with self._lock:
                    slot = self._pending.get(message.get("executionId"))
                if slot is not None:
                    slot["result"] = message
                    slot["event"].set()
            else:
                try:
                    self.on_message(message)
                except Exception:  # the platform's bookkeeping never stops the reader
                    logger.exception("replica message %r", kind)
        self.returncode = self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)
        with self._lock:
            self._dead.set()
            pending = list(self._pending.values())
        for slot in pending:
            slot["result"] = self._crashed()
            slot["event"].set()
        self._ready.set()

    def _read_stderr(self) -> None:
        for line in self.process.stderr:
            text = line.rstrip("\n")
            self.stderr_tail.append(text)
            try:
                self.on_message({"type": "log", "executionId": None, "level": "INFO", "message": text})
            except Exception:
                logger.exception("replica stderr")
