"""The FaaS runtime of the local platform: services run their executions off the request
thread, in worker processes (``runtime.Replica``) that import the code the app's codebase holds.

Per service: a FIFO pool of ``runtime.concurrency`` threads, one warm replica shared by them
(a process per execution when ``runExecutionAsProcess``), ``executionTimeout`` enforced by
killing the replica, and a service reset (crash, kill, timeout) followed by ``onReset``:
``rerun`` runs the execution again while ``attempts < maxAttempts``, ``failed`` fails it.
An exception in the function fails its execution (traceback in the logs) and is not retried.
Sources and assumptions: emulator/README.md, "Services, executions, models".
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from emulator.engine import executions as ex
from emulator.engine.codebase import codebase_item_id, find_function, find_module, unpack_zip
from emulator.engine.models import OPERATIONS, adapter_module, operation_inputs
from emulator.engine.runtime import Replica
from emulator.store.base import ApiError, clone

logger = logging.getLogger(__name__)

OnDone = Callable[[dict], None]


class _ServiceRuntime:
    """What runs one service: its folder, module, thread pool and warm replica."""

    def __init__(self, engine: Engine, service: Mapping[str, Any], module: dict, code_dir: str, folder: str) -> None:
        self.engine = engine
        self.service_id = service["id"]
        self.service = clone(dict(service))
        self.module = module
        self.code_dir = code_dir
        self.folder = folder
        runtime = service.get("runtime") or {}
        self.concurrency = max(1, int(runtime.get("concurrency") or 10))
        self.pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix=f"svc-{self.service_id[-6:]}")
        self.replica: Replica | None = None
        self._replica_lock = threading.Lock()
        self.running: dict[str, Replica] = {}
        #: the most executions this service ran at once (tests count it; never above concurrency)
        self.peak = 0
        #: executions waiting in the pool (ended ``failed`` if the service stops first)
        self.queued: set[str] = set()
        self.stopped = False

    @property
    def timeout_s(self) -> float:
        return float(self.service.get("executionTimeout") or 3600)

    @property
    def as_process(self) -> bool:
        return bool(self.service.get("runExecutionAsProcess"))

    def _new_replica(self) -> Replica:
        init = {
            "type": "init",
            "url": self.engine.url,
            "token": self.engine.token,
            "codeDir": self.code_dir,
            "service": self.service,
            "module": self.module,
        }
        service_id = self.service_id
        replica = self.engine._take_spare()
        replica.attach(init, lambda message: self.engine._on_message(message, service_id))
        self.engine._refill_spare()  # after this one is ready: two dtlpy imports do not compete
        return replica

    def replica_for_run(self) -> Replica:
        if self.stopped:
            raise RuntimeError("the service was stopped")
        if self.as_process:
            with self._replica_lock:
                return self._new_replica()
        with self._replica_lock:
            if self.replica is None or not self.replica.alive:
                self.replica = self._new_replica()
            return self.replica

    def stop(self) -> None:
        self.stopped = True
        self.pool.shutdown(wait=False, cancel_futures=True)
        with self.engine._lock:
            waiting, self.queued = set(self.queued), set()
        for execution_id in sorted(waiting):
            self.engine._finish(execution_id, "failed", message="the service was stopped before the execution ran")
        with self._replica_lock:
            replicas = [self.replica, *self.running.values()]
            self.replica = None
        for replica in {id(r): r for r in replicas if r is not None}.values():
            replica.close()
        shutil.rmtree(self.folder, ignore_errors=True)


class Engine:
    """The runtime of one local platform (``store.engine``).

    API (helper modules: ``services``, ``runtime``, ``executions``, ``codebase``, ``models``)

    - ``Engine(store)``; ``engine.start(url, token, workdir=None)`` / ``engine.stop()``.
    - ``engine.ensure_module_service(project_id, app_or_dpk, module_name) -> service_json``: the
      service of an app's module (``apps.install`` calls it for every module). Its ``name`` is the
      module's compute config name (what ``namespace.serviceName`` of a custom node says, e.g.
      ``select-for-labeling``), else the module name with ``_`` → ``-``.
    - ``engine.submit(service_id, function_name, inputs, *, pipeline=None, on_done=None, model=None,
      trigger_id=None, event=None) -> execution_json`` (status ``created``). ``pipeline`` =
      ``{"id", "nodeId", "executionId"}`` is stored as ``execution.pipeline`` and reaches
      ``dl.Context`` (``pipeline_id``, ``node_id``, ``pipeline_execution_id``); ``event`` becomes
      ``context.event``. Inputs are ids (``{"item": "<id>"}``; ``{"item_id": ...}`` dicts too) and
      JSON; the worker fetches entities by the function's declared input types.
      ``on_done(execution_json)`` runs off the request thread when the execution ends; the JSON has
      ``latestStatus.status`` (``success`` / ``failed`` / ``terminated``), ``output`` (entities as
      their ids, lists element-wise, several return values as a list by output position) and
      ``action`` (the last ``progress.update(action=...)``; a top-level field of the execution:
      an assumption, the platform's place for it is undocumented).
    - ``engine.run_model_operation(model_id, operation, inputs, *, pipeline=None, on_done=None,
      service_config=None) -> execution_json`` for ``predict`` / ``embed`` (``items``: ids, or
      ``item``), ``train``, ``evaluate`` (``dataset``, ``filters``), on the model's ``deploy`` /
      ``train`` / ``evaluate`` service (created on first use; a deploy service is recorded in
      ``metadata.system.deploy.services``). Outputs as the adapter returns them: predict
      ``[item ids, annotation ids]``, train the model id, evaluate ``[model id, dataset id]``;
      ``execution.model`` = ``{"modelId", "operation"}``.
    - ``engine.terminate(execution_id)``, ``engine.rerun(execution_id)``,
      ``engine.wait_idle(timeout) -> bool`` (True when nothing is queued or running),
      ``engine.peak_concurrency(service_id)``, ``engine.stop_service(service_id)``.
    - ``engine.logs[execution_id]`` lines ``{timestamp, level, message}``; ``engine.counters``
      (``processes_started``, ``executions``, ``attempts``).
    """

    def __init__(self, store: Any) -> None:
        self.store = store
        self.url: str | None = None
        self.token: str | None = None
        self.workdir: str | None = None
        self._own_workdir = False
        self._runtimes: dict[str, _ServiceRuntime] = {}
        self._lock = threading.RLock()
        self._idle = threading.Condition(self._lock)
        self._active = 0
        self._on_done: dict[str, OnDone] = {}
        self._spare: Replica | None = None
        self._spawned = 0
        #: log lines by execution id (``POST /services/logs``), and service lines by service id
        self.logs: dict[str, list[dict]] = {}
        self.service_logs: dict[str, list[dict]] = {}
        #: how much work the engine did (tests count work, never time)
        self.counters = {"processes_started": 0, "executions": 0, "attempts": 0}

    # ------------------------------------------------------------------ lifecycle
    @property
    def started(self) -> bool:
        return self.url is not None

    def start(self, url: str, token: str, workdir: str | None = None) -> Engine:
        """Serve executions against the platform at ``url`` (workers use ``token``); service
        folders go under ``workdir`` (a new temporary folder when None)."""
        self.url, self.token = url, token
        if workdir is None:
            workdir, self._own_workdir = tempfile.mkdtemp(prefix="dataloop-services-"), True
        else:
            workdir = os.path.join(workdir, "services")
            os.makedirs(workdir, exist_ok=True)
            self._own_workdir = True
        self.workdir = workdir
        return self

    def stop(self) -> None:
        """Stop every service's replicas and remove their folders."""
        with self._lock:
            # not started from here on: a service still starting spawns no spare after this point
            # (an orphan process would write into the folder removed below)
            workdir, self.url, self.token = self.workdir, None, None
            runtimes = list(self._runtimes.values())
            self._runtimes.clear()
            spare, self._spare = self._spare, None
        for runtime in runtimes:
            runtime.stop()
        if spare is not None:
            spare.close()
        if workdir and self._own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        self.workdir = None

    def _take_spare(self) -> Replica:
        """A spawned worker process (dtlpy imported or importing) for a service."""
        with self._lock:
            if not self.started:
                raise RuntimeError("the engine is stopped")
            spare, self._spare = self._spare, None
            if spare is None or not spare.alive:
                spare = self._spawn()
            return spare

    def _refill_spare(self) -> None:
        """Spawn the next spare, so the next service (or process-per-execution run) does not
        wait for a dtlpy import either."""
        with self._lock:
            if self.started and (self._spare is None or not self._spare.alive):
                self._spare = self._spawn()

    def _spawn(self) -> Replica:
        self._spawned += 1
        self.counters["processes_started"] += 1
        return Replica(os.path.join(self.workdir, f"process-{self._spawned}")).spawn()

    def stop_service(self, service_id: str) -> None:
        """Stop a service's replicas and remove its folder (service deleted, archived or changed)."""
        with self._lock:
            runtime = self._runtimes.pop(service_id, None)
        if runtime is not None:
            runtime.stop()

    # ------------------------------------------------------------------ services
    def ensure_module_service(self, project_id: str, app_or_dpk: Mapping[str, Any], module_name: str) -> dict:
        """The service of ``module_name`` of an installed app (or a DPK) in the project, created
        when missing (what ``apps.install`` does for every module)."""
        return self.store.ensure_module_service(project_id, app_or_dpk, module_name)

    def _runtime(self, service: Mapping[str, Any]) -> _ServiceRuntime:
        """The service's runtime, made on first use (its code unpacked into its own folder). The
        store is read without the engine's lock held: the engine never waits for the store while
        holding its own lock (callers may hold the store's lock and call the engine)."""
        with self._lock:
            runtime = self._runtimes.get(service["id"])
            if runtime is not None:
                return runtime
            if not self.started:
                raise ApiError(503, "the local platform's engine is not started: executions cannot run")
            workdir = self.workdir
        owner, what = self.store.code_owner(service)
        module = find_module(owner, service.get("moduleName"), what)
        if (service.get("metadata") or {}).get("ml"):
            module = adapter_module(module)
        code = self.store.item_bytes(codebase_item_id(owner, what))
        folder = tempfile.mkdtemp(prefix=f"service-{service['name'][:40]}-", dir=workdir)
        code_dir = os.path.join(folder, "code")
        os.makedirs(code_dir)
        try:
            unpack_zip(code, code_dir)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        with self._lock:
            existing = self._runtimes.get(service["id"])
            if existing is None and self.started:
                runtime = self._runtimes[service["id"]] = _ServiceRuntime(self, service, module, code_dir, folder)
                return runtime
        shutil.rmtree(folder, ignore_errors=True)  # another thread made it first, or the engine stopped
        if existing is None:
            raise ApiError(503, "the local platform's engine is not started: executions cannot run")
        return existing

    # ------------------------------------------------------------------ executions
    def submit(
        self,
        service_id: str,
        function_name: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        pipeline: Mapping[str, Any] | None = None,
        on_done: OnDone | None = None,
        model: Mapping[str, Any] | None = None,
        trigger_id: str | None = None,
        event: Mapping[str, Any] | None = None,
    ) -> dict:
        """Create a ``created`` execution of ``function_name`` on the service and queue it.

        ``on_done(execution_json)`` is called off the request thread when it ends (success,
        failed or terminated). Returns the new execution's JSON.
        """
        service = self.store.get("services", service_id)
        if not service.get("active", True):
            raise ApiError(400, f"service {service['name']!r} is paused (active: false); resume it to execute")
        if service.get("archive"):
            raise ApiError(400, f"service {service['name']!r} is archived")
        runtime = self._runtime(service)
        owner_module = runtime.module
        if function_name not in {f.get("name") for f in owner_module.get("functions") or []} and owner_module.get(
            "functions"
        ):
            names = [f.get("name") for f in owner_module["functions"]]
            raise ApiError(
                400, f"service {service['name']!r} has no function {function_name!r}; its functions: {names}"
            )
        execution = self.store.record_new_execution(
            service,
            function_name,
            dict(inputs or {}),
            pipeline=pipeline,
            model=model,
            trigger_id=trigger_id,
            event=event,
        )
        with self._lock:
            self._active += 1
            self.counters["executions"] += 1
            if on_done is not None:
                self._on_done[execution["id"]] = on_done
        try:
            with self._lock:
                runtime.queued.add(execution["id"])
            runtime.pool.submit(self._run, runtime, execution["id"])
        except RuntimeError:  # the pool was shut down (service stopped)
            with self._lock:
                runtime.queued.discard(execution["id"])
            self._finish(execution["id"], "failed", message="the service was stopped before the execution ran")
        return execution

    def run_model_operation(
        self,
        model_id: str,
        operation: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        pipeline: Mapping[str, Any] | None = None,
        on_done: OnDone | None = None,
        service_config: Mapping[str, Any] | None = None,
    ) -> dict:
        """Run ``predict`` / ``embed`` (``items``: item ids, or ``item``), ``train`` or
        ``evaluate`` (``dataset``, ``filters``) on the model's service of that kind (created on
        first use); returns the new execution's JSON (``execution.model`` names the model and
        the operation)."""
        if operation not in OPERATIONS:
            raise ApiError(400, f"model operation {operation!r} is not one of {sorted(OPERATIONS)}")
        kind, function = OPERATIONS[operation]
        arguments = operation_inputs(operation, model_id, dict(inputs or {}))
        service = self.store.model_service(model_id, kind, service_config)
        return self.submit(
            service["id"],
            function,
            arguments,
            pipeline=pipeline,
            on_done=on_done,
            model={"modelId": model_id, "operation": operation},
        )

    def rerun(self, execution_id: str) -> dict:
        """``POST /executions/{id}/rerun``: a new execution with the same service, function and input."""
        old = self.store.get("executions", execution_id)
        return self.submit(
            old["serviceId"],
            old["functionName"],
            old.get("input") or {},
            pipeline=old.get("pipeline"),
            model=old.get("model"),
        )

    def terminate(self, execution_id: str) -> dict:
        """``POST /executions/{id}/terminate``: a queued execution ends ``terminated`` at once; a
        running one is asked to stop (dtlpy ``kill_event()`` raises in its thread) and ends
        ``terminated`` when its function returns."""
        with self.store.lock:
            execution = self.store._get("executions", execution_id)
            if ex.is_final(execution):
                raise ApiError(400, f"execution {execution_id!r} already ended ({ex.status_of(execution)})")
            execution["toTerminate"] = True
            queued = ex.status_of(execution) == "created"
        if queued:
            self._finish(execution_id, "terminated", message="terminated before it ran")
        else:
            runtime = self._runtimes.get(execution["serviceId"])
            replica = runtime.running.get(execution_id) if runtime else None
            if replica is not None:
                replica.terminate(execution_id)
        return self.store.get("executions", execution_id)

    def peak_concurrency(self, service_id: str) -> int:
        """The most executions the service has run at once since it (re)started."""
        with self._lock:
            runtime = self._runtimes.get(service_id)
            return runtime.peak if runtime else 0

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no execution is queued or running; False when ``timeout`` passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._active == 0, timeout)

    # ------------------------------------------------------------------ the run loop
    def _run(self, runtime: _ServiceRuntime, execution_id: str) -> None:
        with self._lock:
            if execution_id not in runtime.queued:
                return  # the service stopped and ended it
            runtime.queued.discard(execution_id)
        try:
            self._run_attempts(runtime, execution_id)
        except Exception as error:  # the platform's own failure still ends the execution
            logger.exception("execution %s", execution_id)
            self._finish(execution_id, "failed", message=f"platform error: {type(error).__name__}: {error}")

    def _run_attempts(self, runtime: _ServiceRuntime, execution_id: str) -> None:
        while True:
            with self.store.lock:
                execution = self.store._get("executions", execution_id)
                if ex.is_final(execution):
                    return
                execution["attempts"] += 1
                ex.set_status(execution, "in-progress", percent=0)
                snapshot = clone(execution)
            self.counters["attempts"] += 1
            function = find_function(runtime.module, snapshot["functionName"])
            replica = runtime.replica_for_run()
            with self._lock:
                runtime.running[execution_id] = replica
                runtime.peak = max(runtime.peak, len(runtime.running))
            try:
                result = replica.run({"execution": snapshot, "function": function}, runtime.timeout_s)
            finally:
                with self._lock:
                    runtime.running.pop(execution_id, None)
            if result is None:
                replica.log_stack(execution_id)
                replica.kill()
                result = {
                    "status": "crashed",
                    "error": f"execution timed out after {runtime.timeout_s:g} s (service executionTimeout)",
                    "traceback": "",
                }
            if runtime.as_process:
                replica.close()
            if self._settle(runtime, execution_id, result):
                return

    def _settle(self, runtime: _ServiceRuntime, execution_id: str, result: dict) -> bool:
        """Record one attempt's result; True when the execution ended."""
        status = result.get("status")
        if status == "crashed" and result.get("traceback"):
            for line in result["traceback"].splitlines():
                self._log(execution_id, runtime.service_id, "ERROR", line)
        if status == "crashed":
            self._log(execution_id, runtime.service_id, "ERROR", result["error"])
        with self.store.lock:
            execution = self.store._get("executions", execution_id)
            if execution.get("toTerminate"):
                status, message = "terminated", "terminated on request"
            elif status == "success":
                execution["output"] = result.get("output")
                execution["action"] = result.get("action")
                message = None
            elif status == "crashed":
                rerun = runtime.service.get("onReset", "failed") == "rerun"
                if rerun and execution["attempts"] < execution["maxAttempts"]:
                    ex.set_status(
                        execution,
                        "created",
                        percent=0,
                        message=f"attempt {execution['attempts']}: {result['error']}; rerun (onReset 'rerun')",
                    )
                    return False
                status, message = "failed", result["error"]
            else:
                status, message = "failed", result.get("error") or "failed"
            error = result.get("traceback") if status == "failed" else None
        self._finish(execution_id, status, message=message, error=error)
        return True

    def _finish(self, execution_id: str, status: str, *, message: str | None = None, error: str | None = None) -> None:
        with self.store.lock:
            execution = self.store._get("executions", execution_id)
            if ex.is_final(execution):
                return  # ended already (terminated while queued): reported once
            percent = 100 if status == "success" else None
            ex.set_status(execution, status, percent=percent, message=message, error=error or None)
            execution["duration"] = ex.seconds_between(execution["createdAt"], execution["updatedAt"])
            final = clone(execution)
        self.store.execution_ended(final)
        with self._lock:
            callback = self._on_done.pop(execution_id, None)
        try:
            if callback is not None:
                callback(final)
        except Exception:  # a caller's callback never breaks the engine
            logger.exception("on_done of execution %s", execution_id)
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    # ------------------------------------------------------------------ messages from replicas
    def _on_message(self, message: dict, service_id: str | None = None) -> None:
        execution_id = message.get("executionId")
        if message.get("type") == "log":
            self._log(execution_id, service_id, message.get("level", "INFO"), message.get("message", ""))
        elif message.get("type") == "progress" and execution_id is not None:
            with self.store.lock:
                execution = self.store.tables["executions"].get(execution_id)
                if execution is not None:
                    ex.update_progress(execution, message.get("percentComplete"), message.get("message"))
                    if message.get("action") is not None:
                        execution["action"] = message["action"]

    def _log(self, execution_id: str | None, service_id: str | None, level: str, text: str) -> None:
        entry = {"timestamp": ex.now_iso(), "level": level, "message": text, "executionId": execution_id}
        with self._lock:
            if execution_id is not None:
                self.logs.setdefault(execution_id, []).append(entry)
            elif service_id is not None:
                self.service_logs.setdefault(service_id, []).append(entry)
