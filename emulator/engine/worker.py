"""The worker process of a local service: runs an app's code as Dataloop's runner (dtlpy-agent,
not public) runs it in a service replica. Run as a script (never ``-m``: dtlpy's per-request
``inspect.stack()`` is far slower under runpy), with the unpacked codebase first on ``sys.path``
and its own ``DATALOOP_PATH``; it imports only the standard library and dtlpy until it imports
the module the service names. The platform (``emulator/``) imports none of the app's code.

Protocol: JSON lines. stdin carries ``init`` (platform url and token), ``run`` (one execution),
``terminate`` (an execution id) and ``exit``; the protocol channel (a copy of fd 1 taken at start)
carries ``ready``, ``progress``, ``log`` and ``result`` messages. Executions run in threads (a
replica runs up to ``concurrency`` at once); anything the code prints or logs from an
execution's thread becomes that execution's log lines.
"""

from __future__ import annotations

import datetime
import importlib
import inspect
import io
import json
import logging
import os
import sys
import threading
import traceback

_local = threading.local()
_send_lock = threading.Lock()
_channel: io.TextIOBase | None = None
# dtlpy PackageInputType → the repository (and its ``get`` keyword) an id is fetched through
_ENTITY_GETTERS = {
    "Item": ("items", "item_id"),
    "Dataset": ("datasets", "dataset_id"),
    "Model": ("models", "model_id"),
    "Annotation": ("annotations", "annotation_id"),
    "Project": ("projects", "project_id"),
    "Package": ("packages", "package_id"),
    "Service": ("services", "service_id"),
    "Execution": ("executions", "execution_id"),
    "Task": ("tasks", "task_id"),
    "Assignment": ("assignments", "assignment_id"),
    "Pipeline": ("pipelines", "pipeline_id"),
    "Recipe": ("recipes", "recipe_id"),
    "Dpk": ("dpks", "dpk_id"),
}


def send(message: dict) -> None:
    """Write one protocol message (thread-safe)."""
    line = json.dumps(message, default=str)
    with _send_lock:
        _channel.write(line + "\n")
        _channel.flush()


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class _ThreadStream(io.TextIOBase):
    """``sys.stdout`` / ``sys.stderr`` stand-in: text written from an execution's thread becomes
    that execution's log lines; other text goes to the process's stderr."""

    def __init__(self, fallback) -> None:
        self._fallback = fallback

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        execution_id = getattr(_local, "execution_id", None)
        if execution_id is None:
            self._fallback.write(text)
            return len(text)
        buffer = getattr(_local, "buffer", "") + text
        *lines, rest = buffer.split("\n")
        _local.buffer = rest
        for line in lines:
            send({"type": "log", "executionId": execution_id, "level": "INFO", "message": line, "timestamp": _now()})
        return len(text)

    def flush(self) -> None:
        self._fallback.flush()


class _ExecutionLogHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        execution_id = getattr(_local, "execution_id", None)
        if execution_id is None:
            return
        try:
            message = self.format(record)
        except Exception:  # a bad log call never fails the execution
            message = str(record.msg)
        send(
            {
                "type": "log",
                "executionId": execution_id,
                "level": record.levelname,
                "message": message,
                "timestamp": _now(),
            }
        )


def _point_dtlpy(url: str, token: str):
    import dtlpy as dl

    api = dl.client_api
    api.add_environment(
        environment=url,
        alias="local-platform",
        gate_url=url,
        url=url.rsplit("/api/v1", 1)[0] + "/",
        verify_ssl=False,
        token=token,
    )
    api.setenv("local-platform")
    api.token = token
    dl.verbose.disable_progress_bar = True
    return dl


class Worker:
    """One replica: the service's runner instance and the executions it runs."""

    def __init__(self, dl, service: dict, module: dict) -> None:
        self.dl = dl
        self.service_json = service
        self.module = module
        self._runner = None
        self._runner_lock = threading.Lock()
        self._threads: dict[str, int] = {}
        self._projects: dict[str, object] = {}

    # -------------------------------------------------------------- inputs and outputs
    def resolve(self, value, io_type: str | None):
        """An input value as the function gets it: entities fetched by id, ``X[]`` as lists."""
        if io_type is None or value is None:
            return value
        if io_type.endswith("[]"):
            values = value if isinstance(value, list) else [value]
            return [self.resolve(v, io_type[:-2]) for v in values]
        getter = _ENTITY_GETTERS.get(io_type)
        if getter is None:
            return value  # Json, String, Integer, Float, Boolean...
        repository, keyword = getter
        entity_id = value
        if isinstance(value, dict):
            entity_id = value.get(keyword, value.get("id"))
        return getattr(self.dl, repository).get(**{keyword: entity_id})

    def encode(self, value):
        """A return value as the execution's ``output``: entities as their ids, lists element-wise."""
        if isinstance(value, (list, tuple)):
            return [self.encode(v) for v in value]
        if isinstance(value, dict):
            return {k: self.encode(v) for k, v in value.items()}
        entity_id = getattr(value, "id", None)
        if entity_id is not None and hasattr(value, "to_json") and not isinstance(value, (str, bytes)):
            return entity_id
        if isinstance(value, (str, int, float, bool)) or value is None:
            return value
        if hasattr(value, "item") and hasattr(value, "dtype"):  # a numpy scalar
            return value.item()
        return str(value)

    # -------------------------------------------------------------- runner
    def runner(self):
        with self._runner_lock:
            if self._runner is None:
                entry = self.module.get("entryPoint") or "main.py"
                module_name = entry[:-3] if entry.endswith(".py") else entry
                module = importlib.import_module(module_name.replace("/", ".").replace("\\", "."))
                cls = getattr(module, self.module.get("className") or "ServiceRunner")
                params = dict(self.service_json.get("initParams") or {})
                types = {i.get("name"): i.get("type") for i in self.module.get("initInputs") or []}
                kwargs = {name: self.resolve(value, types.get(name)) for name, value in params.items()}
                self._runner = cls(**kwargs)
                if isinstance(self._runner, self.dl.BaseServiceRunner):
                    self._runner.service_entity = self.dl.Service.from_json(
                        _json=self.service_json, client_api=self.dl.client_api
                    )
            return self._runner

    def project(self, project_id: str | None):
        if project_id is None:
            return None
        if project_id not in self._projects:
            self._projects[project_id] = self.dl.projects.get(project_id=project_id)
        return self._projects[project_id]

    # -------------------------------------------------------------- executions
    def run(self, message: dict) -> None:
        execution = message["execution"]
        execution_id = execution["id"]
        _local.execution_id = execution_id
        _local.buffer = ""
        self._threads[execution_id] = threading.get_ident()
        progress = _Progress(execution_id)
        answer = {"type": "result", "executionId": execution_id}
        try:
            runner = self.runner()
            function = message.get("function") or {}
            name = execution.get("functionName") or "run"
            method = getattr(runner, name, None)
            if method is None:
                raise AttributeError(f"{type(runner).__name__} has no function {name!r}")
            types = {i.get("name"): i.get("type") for i in function.get("input") or []}
            inputs = execution.get("input") or {}
            kwargs = {key: self.resolve(value, types.get(key)) for key, value in inputs.items()}
            parameters = inspect.signature(method).parameters
            takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
            if "progress" in parameters or takes_any:
                kwargs["progress"] = progress
            if "context" in parameters or takes_any:
                kwargs["context"] = self.dl.Context(
                    service=self.dl.Service.from_json(_json=self.service_json, client_api=self.dl.client_api),
                    project=self.project(execution.get("projectId")),
                    execution_dict=execution,
                    event_context=execution.get("eventContext"),
                    progress=progress,
                    logger=logging.getLogger(f"execution.{execution_id}"),
                    sdk=self.dl,
                )
            if not takes_any:
                kwargs = {k: v for k, v in kwargs.items() if k in parameters}
            output = method(**kwargs)
            answer.update({"status": "success", "output": self.encode(output)})
        except BaseException as error:  # noqa: BLE001 - any failure is the execution's, never the worker's
            text = traceback.format_exc()
            for line in text.rstrip().splitlines():
                send(
                    {"type": "log", "executionId": execution_id, "level": "ERROR", "message": line, "timestamp": _now()}
                )
            answer.update({"status": "failed", "error": f"{type(error).__name__}: {error}", "traceback": text})
        finally:
            if _local.buffer:
                send({"type": "log", "executionId": execution_id, "level": "INFO", "message": _local.buffer})
            _local.execution_id = None
            self._threads.pop(execution_id, None)
        answer["action"] = progress.action
        send(answer)

    def stack(self, execution_id: str) -> None:
        """Log where the execution's thread is now (asked before a timeout kills the process)."""
        ident = self._threads.get(execution_id)
        frame = sys._current_frames().get(ident) if ident is not None else None
        if frame is not None:
            lines = ["Stack of the execution when its time ran out (most recent call last):"]
            lines += [line.rstrip("\n") for line in traceback.format_stack(frame)]
            for line in "\n".join(lines).splitlines():
                send(
                    {"type": "log", "executionId": execution_id, "level": "ERROR", "message": line, "timestamp": _now()}
                )
        send({"type": "stackDone", "executionId": execution_id})

    def terminate(self, execution_id: str) -> None:
        ident = self._threads.get(execution_id)
        runner = self._runner
        if ident is not None and runner is not None and hasattr(runner, "_terminate"):
            runner._terminate(ident)  # dtlpy BaseServiceRunner.kill_event() raises in that thread


class _Progress:
    """``progress`` of an execution: ``update()`` reports percent, message and ``action``."""

    def __init__(self, execution_id: str) -> None:
        self.execution_id = execution_id
        self.action = None
        self.logger = logging.getLogger(f"execution.{execution_id}")

    def update(self, status=None, progress=0, message=None, output=None, duration=None, action=None):
        if action is not None:
            self.action = action
        send(
            {
                "type": "progress",
                "executionId": self.execution_id,
                "status": status,
                "percentComplete": progress,
                "message": message,
                "action": action,
            }
        )


def main() -> None:
    global _channel
    _channel = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # text C code writes to fd 1 goes to stderr, never into the protocol
    sys.stdout = _ThreadStream(sys.__stderr__)
    sys.stderr = _ThreadStream(sys.__stderr__)
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        sys.path.pop(0)  # the platform's own folder is not on the service's path
    handler = _ExecutionLogHandler(level=logging.INFO)
    handler.setFormatter(logging.Formatter("[%(levelname)s] %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    import dtlpy  # noqa: F401 - a spare process imports dtlpy before it is given a service

    line = sys.stdin.readline()
    if not line:
        os._exit(0)  # the platform stopped before it needed this spare
    init = json.loads(line)
    sys.path.insert(0, init["codeDir"])
    os.chdir(init["codeDir"])
    dl = _point_dtlpy(init["url"], init["token"])
    worker = Worker(dl, init["service"], init["module"])
    send({"type": "ready", "pid": os.getpid()})
    for line in sys.stdin:
        message = json.loads(line)
        kind = message.get("type")
        if kind == "run":
            threading.Thread(target=worker.run, args=(message,), daemon=True).start()
        elif kind == "terminate":
            worker.terminate(message["executionId"])
        elif kind == "stack":
            worker.stack(message["executionId"])
        elif kind == "exit":
            break
    os._exit(0)  # execution threads may still run: a stopped replica does not wait for them


if __name__ == "__main__":
    main()
