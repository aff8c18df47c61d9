"""The pipeline runtime of the local platform: install, triggers, cycles, node runs, routing.

:class:`PipelineRuntime` holds the live side of pipelines: what ``install()`` set up (tasks of
task nodes, services of custom / function / code nodes, triggers of start nodes, kept on the
pipeline's composition), the running cycles, and the items waiting in task nodes. Every change
of a cycle runs on one dispatcher thread, so node completions (called back from executions),
item events and task statuses never race; FaaS and ml nodes run through the services engine
(``engine.submit`` / ``engine.run_model_operation``, ``services.py``), built-in nodes (storage,
task, updateVariable) inside the platform. Sources and assumptions: emulator/README.md, "Pipelines".
"""

from __future__ import annotations

import datetime
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from emulator.engine import cycles as cyc
from emulator.engine import routing
from emulator.engine.clock import Clock, due_times
from emulator.engine.executions import status_of
from emulator.engine.tasks import node_actions, task_body, task_dataset_id
from emulator.engine.triggers import TriggerError, cron_starts, item_event_starts, node_dataset_id, pipeline_triggers
from emulator.store.base import ApiError, clone, now_iso

logger = logging.getLogger(__name__)

#: node types run as FaaS executions on a service (PIPELINE_FACTS.md section 4)
FAAS_TYPES = ("custom", "function", "code")
BUILTIN_TYPES = ("storage", "task", "updateVariable")
KNOWN_TYPES = FAAS_TYPES + BUILTIN_TYPES + ("ml",)
CYCLES = "pipelineExecutions"
COMPOSITIONS = "compositions"


class PipelineRuntime:
    """Installed pipelines and their cycles over a :class:`~emulator.store.Store`.

    Parameters
    ----------
    store : Store
        The platform's state (its lock guards every table this runtime changes).
    executor : object, optional
        What runs FaaS and ml nodes (``submit``, ``run_model_operation``,
        ``ensure_module_service``); default: ``store.engine`` when a node needs it.
    clock : Clock, optional
        The clock cron triggers follow (moves only when advanced).
    """

    def __init__(self, store: Any, executor: Any = None, clock: Clock | None = None) -> None:
        self.store = store
        self._executor = executor
        self.clock = clock or Clock()
        store.tables.setdefault(CYCLES, {})
        store.tables.setdefault(COMPOSITIONS, {})
        self._states: dict[str, cyc.CycleState] = {}
        #: (task id, item id) -> (cycle id, node id, execution id) of an item waiting for its status
        self._waiting: dict[tuple[str, str], tuple[str, str, str]] = {}
        #: (task id, item id) -> (cycle id, node id) of an item that left (a repeatable node re-emits it)
        self._left: dict[tuple[str, str], tuple[str, str]] = {}
        self._queue: queue.Queue = queue.Queue()
        self._pending = 0  # events queued or running, plus executions not called back yet
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None
        #: node runs to hand to the engine once the event that queued them released the lock
        self._outbox: list[tuple[str, str, Callable[[Callable[[dict], None]], dict]]] = []

    # ------------------------------------------------------------------ dispatcher
    @property
    def executor(self) -> Any:
        executor = self._executor or getattr(self.store, "engine", None)
        if executor is None:
            raise ApiError(501, "this platform has no execution engine: FaaS and ml nodes cannot run")
        return executor

    def _post(self, function: Callable[..., None], *args: Any) -> None:
        with self._idle:
            self._pending += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="pipeline-dispatcher", daemon=True)
                self._thread.start()
        self._queue.put((function, args))

    def _loop(self) -> None:
        while True:
            function, args = self._queue.get()
            if function is None:
                return
            try:
                function(*args)
                self._flush_submissions()
            except Exception:  # a bug must not stop every pipeline: log it, go on
                logger.exception("pipeline dispatcher: %s failed", getattr(function, "__name__", function))
            finally:
                self._release()

    def _flush_submissions(self) -> None:
        """Hand the node runs queued by the last event to the engine, outside the store's lock
        (the engine takes its own lock before the store's: never the other way round here)."""
        while self._outbox:
            cycle_id, node_id, submit = self._outbox.pop(0)
            on_done = self._callback(cycle_id, node_id)
            try:
                execution = submit(on_done)
            except Exception as error:  # refused by the engine: the run fails, the cycle too
                self._release()
                message = error.message if isinstance(error, ApiError) else f"{type(error).__name__}: {error}"
                with self.store.lock:
                    node = self._node(cycle_id, node_id)
                    self._finish(cycle_id, node_id, None, None, failed=f"node {node.get('name')!r}: {message}")
                continue
            with self.store.lock:
                self._record(cycle_id, node_id, execution["id"])

    def _release(self) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Block until no pipeline event is queued and no node execution is running (items
        waiting in tasks do not count); ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def idle(self) -> bool:
        """No pipeline event queued or running and no node execution awaited."""
        with self._idle:
            return self._pending == 0

    def stop(self) -> None:
        """Stop the dispatcher thread (queued events are dropped)."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put((None, ()))
            thread.join(timeout=10)
        self._thread = None

    # ------------------------------------------------------------------ install / pause / reset
    def install(self, pipeline_id: str, body: Mapping[str, Any]) -> dict:
        """``POST /pipelines/{id}/install``: tasks, services and triggers, then ``Installed``."""
        with self.store.lock:
            pipeline = self.store._get("pipelines", pipeline_id)
            if not pipeline.get("nodes"):
                raise ApiError(400, f"pipeline {pipeline['name']!r} has no nodes to install")
            for node in pipeline["nodes"]:
                if node.get("type") not in KNOWN_TYPES:
                    raise ApiError(
                        501,
                        f"pipeline node {node.get('name')!r}: type {node.get('type')!r} is not run by the "
                        f"local platform (one of {', '.join(KNOWN_TYPES)})",
                    )
            try:
                triggers = pipeline_triggers(pipeline)
            except TriggerError as error:
                raise ApiError(400, f"pipeline {error}") from None
            services = {
                n["id"]: self._service_or_none(pipeline, n) for n in pipeline["nodes"] if n["type"] in FAAS_TYPES
            }
            composition = self._composition(pipeline)
            for node in pipeline["nodes"]:
                if node["type"] == "task":
                    self._node_task(pipeline, composition, node, None)
            composition["services"] = [{"nodeId": k, "serviceId": v} for k, v in services.items()]
            composition["triggers"] = [
                {"nodeId": t.node_id, "type": t.kind, "active": True, "cron": t.cron} for t in triggers
            ]
            composition["status"] = "Installed"
            if (body or {}).get("resumeOption") == "terminateExistingCycles":
                self._terminate_cycles(pipeline_id)
            pipeline["status"] = "Installed"  # dtlpy entities/pipeline.py CompositionStatus.INSTALLED
            pipeline["compositionId"] = composition["id"]
            pipeline["updatedAt"] = now_iso()
            return clone(pipeline)

    def pause(self, pipeline_id: str, body: Mapping[str, Any]) -> dict:
        """``POST /pipelines/{id}/uninstall`` (dtlpy ``pipeline.pause``): the triggers stop (with
        ``keepTriggersActive`` they are marked active, but events while paused are not queued:
        not implemented); running cycles go on (UNDOCUMENTED; an assumption)."""
        with self.store.lock:
            pipeline = self.store._get("pipelines", pipeline_id)
            pipeline["status"] = "Uninstalled"  # CompositionStatus.UNINSTALLED
            pipeline["updatedAt"] = now_iso()
            composition = self.store.tables[COMPOSITIONS].get(pipeline.get("compositionId") or "")
            if composition is not None:
                composition["status"] = "Uninstalled"
                keep = bool((body or {}).get("keepTriggersActive"))
                for trigger in composition.get("triggers", []):
                    trigger["active"] = keep
            return clone(pipeline)

    def reset(self, pipeline_id: str, body: Mapping[str, Any]) -> dict:
        """``POST /pipelines/{id}/reset``: "Resets pipeline counters" (dtlpy docstring): the
        statistics count cycles from now on; cycles stay readable."""
        with self.store.lock:
            pipeline = self.store._get("pipelines", pipeline_id)
            pipeline.setdefault("metadata", {})["countersResetAt"] = now_iso()
            return clone(pipeline)

    def statistics(self, pipeline_id: str) -> dict:
        with self.store.lock:
            pipeline = self.store._get("pipelines", pipeline_id)
            since = (pipeline.get("metadata") or {}).get("countersResetAt", "")
            chosen = [
                c
                for c in self.store.tables[CYCLES].values()
                if c["pipelineId"] == pipeline_id and c["createdAt"] >= since
            ]
            return cyc.statistics(pipeline_id, chosen, self.store.tables["executions"])

    def composition(self, composition_id: str) -> dict:
        return self.store.get(COMPOSITIONS, composition_id)

    def _composition(self, pipeline: dict) -> dict:
        table = self.store.tables[COMPOSITIONS]
        composition = table.get(pipeline.get("compositionId") or "")
        if composition is None:
            composition_id = self.store.ids.new()
            composition = self.store._base("compositions", composition_id)
            composition.update({"pipelineId": pipeline["id"], "projectId": pipeline.get("projectId"), "tasks": []})
            table[composition_id] = composition
        return composition

    def _service_or_none(self, pipeline: Mapping[str, Any], node: Mapping[str, Any]) -> str | None:
        """The node's service id, or ``None`` when its app is not installed yet: install goes on
        and the node's runs fail naming the missing app (an assumption; Dataloop's answer to a
        pipeline whose app is missing is undocumented)."""
        try:
            return self._node_service(pipeline, node)
        except ApiError as error:
            if error.status != 400:
                raise
            return None

    def _node_service(self, pipeline: Mapping[str, Any], node: Mapping[str, Any]) -> str:
        """The id of the service a custom / function / code node executes on."""
        namespace = node.get("namespace") or {}
        project_id = pipeline.get("projectId")
        services = self.store.tables.get("services", {})
        if node["type"] == "custom":
            package = node.get("dpkName") or namespace.get("packageName")
            apps = [
                a
                for a in self.store.tables["apps"].values()
                if a.get("projectId") == project_id and package in (a.get("dpkName"), a.get("name"))
            ]
            if apps:
                return self.executor.ensure_module_service(project_id, clone(apps[0]), namespace.get("moduleName"))[
                    "id"
                ]
        if node["type"] == "code":
            make = getattr(self.executor, "ensure_code_service", None)
            if make is None:
                raise ApiError(501, f"pipeline node {node.get('name')!r}: code nodes are not run by the local platform")
            return make(project_id, clone(dict(pipeline)), clone(dict(node)))["id"]
        for service in services.values():
            if service.get("name") == namespace.get("serviceName") and service.get("projectId") == project_id:
                return service["id"]
        raise ApiError(
            400,
            f"pipeline node {node.get('name')!r}: no service {namespace.get('serviceName')!r} in the project"
            + (
                f" and no installed app {namespace.get('packageName')!r}; install the app first"
                if node["type"] == "custom"
                else ""
            ),
        )

    def _node_task(
        self, pipeline: Mapping[str, Any], composition: dict, node: Mapping[str, Any], item: Any
    ) -> str | None:
        """The task of a task node: created once (at install when its dataset is known, else on
        the dataset of the first item reaching it) and kept on the composition."""
        for entry in composition["tasks"]:
            if entry["nodeId"] == node["id"] and entry["state"]["taskId"] in self.store.tables["tasks"]:
                return entry["state"]["taskId"]
        dataset_id = task_dataset_id(pipeline, node) or (item or {}).get("datasetId")
        if dataset_id is None:
            return None
        body = task_body(pipeline, node, dataset_id)
        taken = {
            t["name"] for t in self.store.tables["tasks"].values() if t.get("projectId") == pipeline.get("projectId")
        }
        name, suffix = body["name"], 1
        while body["name"] in taken:
            suffix += 1
            body["name"] = f"{name} ({suffix})"
        command = self.store.create_task(body)
        task_id = command["spec"]["createdTaskId"]
        composition["tasks"] = [e for e in composition["tasks"] if e["nodeId"] != node["id"]]
        composition["tasks"].append({"nodeId": node["id"], "state": {"taskId": task_id}})
        return task_id

    # ------------------------------------------------------------------ starting cycles
    def execute(self, pipeline_id: str, body: Mapping[str, Any]) -> dict:
        """``POST /pipelines/{id}/execute`` ``{"pipeline": {"input", "nodeId"?}}``: a new cycle."""
        options = (body or {}).get("pipeline")
        if "batch" in (body or {}):
            raise ApiError(
                501, "pipeline execute with 'batch' (execute_batch) is not implemented by the local platform"
            )
        if options is not None and not isinstance(options, Mapping):
            raise ApiError(400, "pipeline execute: 'pipeline' must be an object {'input': {...}, 'nodeId'?: ...}")
        options = options or {}
        inputs = options.get("input") or {}
        if not isinstance(inputs, Mapping):
            raise ApiError(400, "pipeline execute: 'pipeline.input' must be an object {name: value}")
        with self.store.lock:
            pipeline = self.store._get("pipelines", pipeline_id)
            if pipeline.get("status") != "Installed":
                raise ApiError(
                    400, f"pipeline {pipeline['name']!r} is not installed (status {pipeline.get('status')!r})"
                )
            node_id = options.get("nodeId") or self._root_node_id(pipeline)
            if node_id not in {n["id"] for n in pipeline["nodes"]}:
                raise ApiError(400, f"pipeline execute: nodeId {node_id!r} is not a node of the pipeline")
            return self._start_cycle(pipeline, node_id, dict(inputs))

    def _root_node_id(self, pipeline: Mapping[str, Any]) -> str:
        starts = pipeline.get("startNodes") or []
        roots = [s["nodeId"] for s in starts if s.get("type") == "root"] or [s["nodeId"] for s in starts]
        if not roots:
            raise ApiError(400, f"pipeline {pipeline['name']!r} has no start node; pass nodeId")
        return roots[0]

    def _start_cycle(self, pipeline: Mapping[str, Any], node_id: str, inputs: dict) -> dict:
        cycle_id = self.store.ids.new()
        cycle = cyc.new_cycle(cycle_id, pipeline, self.store.base_url, inputs)
        self.store.tables[CYCLES][cycle_id] = cycle
        self._states[cycle_id] = state = cyc.CycleState(cycle_id, pipeline["id"])
        state.open_runs += 1  # the start, released once the start node's runs are queued
        self._post(self._begin, cycle_id, node_id, inputs)
        return clone(cycle)

    def _begin(self, cycle_id: str, node_id: str, inputs: dict) -> None:
        with self.store.lock:
            state = self._states[cycle_id]
            node = self._node(cycle_id, node_id)
            self._arrive(cycle_id, node, inputs, start=True)
            state.open_runs -= 1
            self._sync(cycle_id)

    def on_item_created(self, item: Mapping[str, Any]) -> None:
        """An item was created: start a cycle in each installed pipeline whose start node's
        Item / Created trigger it matches (called with the store's lock held)."""
        for pipeline in list(self.store.tables["pipelines"].values()):
            if pipeline.get("status") != "Installed" or not self._triggers_active(pipeline, "Event"):
                continue
            try:
                starts = item_event_starts(pipeline, item, "Created")
            except TriggerError:
                continue
            for node_id in starts:
                node = next(n for n in pipeline["nodes"] if n["id"] == node_id)
                port = next((p["name"] for p in node.get("inputs") or []), "item")
                self._start_cycle(pipeline, node_id, {port: item["id"]})

    def _triggers_active(self, pipeline: Mapping[str, Any], kind: str) -> bool:
        """Did install make a trigger of ``kind`` (``Event`` / ``Cron``) live, still active?"""
        composition = self.store.tables[COMPOSITIONS].get(pipeline.get("compositionId") or "") or {}
        return any(t.get("active") and t.get("type") == kind for t in composition.get("triggers", []))

    def advance_clock(self, delta: datetime.timedelta) -> list[str]:
        """Move the clock; each cron trigger of an installed pipeline fires once per matching
        minute passed. Returns the ids of the cycles started."""
        before, after = self.clock.advance(delta)
        started = []
        with self.store.lock:
            for pipeline in list(self.store.tables["pipelines"].values()):
                if pipeline.get("status") != "Installed" or not self._triggers_active(pipeline, "Cron"):
                    continue
                for node_id, expression in cron_starts(pipeline):
                    for _ in due_times(expression, before, after):
                        started.append(self._start_cycle(pipeline, node_id, {})["id"])
        return started

    def run_cron(self, pipeline_id: str | None = None) -> list[str]:
        """Fire every cron trigger of the installed pipeline(s) now, whatever the schedule."""
        started = []
        with self.store.lock:
            for pipeline in list(self.store.tables["pipelines"].values()):
                if pipeline_id not in (None, pipeline["id"]) or pipeline.get("status") != "Installed":
                    continue
                for node_id, _ in cron_starts(pipeline):
                    started.append(self._start_cycle(pipeline, node_id, {})["id"])
        return started

    # ------------------------------------------------------------------ cycles (read)
    def get_cycle(self, cycle_id: str) -> dict:
        with self.store.lock:
            cycle = self.store.tables[CYCLES].get(cycle_id)
            if cycle is None:
                raise ApiError(404, f"pipeline execution not found: {cycle_id!r}")
            return cyc.render(cycle, self.store.tables["executions"])

    def query_cycles(self, body: Mapping[str, Any], encoded: bool = False) -> dict:
        """``POST /pipelines/query`` with ``resource: pipelineState`` (dtlpy
        ``pipeline_executions.list``: a PIPELINE_EXECUTION filter with ``pipelineId``)."""
        with self.store.lock:  # filter the stored cycles, render only the page's
            page = self.store.query_documents(list(self.store.tables[CYCLES].values()), body, encoded=False)
            page["items"] = [cyc.render(c, self.store.tables["executions"]) for c in page["items"]]
            return page

    # ------------------------------------------------------------------ node runs
    def _node(self, cycle_id: str, node_id: str) -> dict:
        pipeline = self.store._get("pipelines", self._states[cycle_id].pipeline_id)
        return next(n for n in pipeline["nodes"] if n["id"] == node_id)

    def _pipeline(self, cycle_id: str) -> dict:
        return self.store._get("pipelines", self._states[cycle_id].pipeline_id)

    def _sync(self, cycle_id: str) -> None:
        cycle = self.store.tables[CYCLES].get(cycle_id)
        if cycle is not None and cycle["status"] != "terminated":
            cyc.sync_statuses(cycle, self._states[cycle_id])

    def _fail(self, cycle_id: str, node_id: str, message: str) -> None:
        state = self._states[cycle_id]
        state.failed = True
        state.node(node_id).failed += 1
        state.errors.append(message)
        logger.info("pipeline cycle %s failed at node %s: %s", cycle_id, node_id, message)

    def _arrive(self, cycle_id: str, node: Mapping[str, Any], values: Mapping[str, Any], start: bool = False) -> None:
        """Values reached ``node``: wait for its other connected inputs, then run it (once per
        fanned-out input set)."""
        state = self._states[cycle_id]
        pipeline = self._pipeline(cycle_id)
        connected = routing.connected_input_names(pipeline, node)
        if not start and len(connected) > 1:
            joined = state.joins.setdefault(node["id"], {})
            joined.update(values)
            if not connected <= set(joined):
                return
            values = state.joins.pop(node["id"])
        try:
            bound = routing.bound_inputs(node, pipeline.get("variables") or [])
            input_sets = routing.expand_inputs(node.get("inputs") or [], {**bound, **values}, node.get("name", ""))
        except routing.RoutingError as error:
            self._fail(cycle_id, node["id"], str(error))
            return
        for inputs in input_sets:
            self._run(cycle_id, node, inputs, start)

    def _run(self, cycle_id: str, node: Mapping[str, Any], inputs: dict, start: bool) -> None:
        state = self._states[cycle_id]
        state.node(node["id"]).started += 1
        state.open_runs += 1
        kind = node.get("type")
        try:
            if kind in FAAS_TYPES:
                self._run_faas(cycle_id, node, inputs)
            elif kind == "ml":
                self._run_ml(cycle_id, node, inputs)
            elif kind == "task":
                self._run_task(cycle_id, node, inputs)
            elif kind == "storage":
                self._run_builtin(cycle_id, node, inputs, self._storage(cycle_id, node, inputs, start))
            elif kind == "updateVariable":
                self._run_builtin(cycle_id, node, inputs, self._update_variables(cycle_id, node, inputs))
            else:
                raise routing.RoutingError(f"node {node.get('name')!r}: type {kind!r} is not run by the local platform")
        except (routing.RoutingError, ApiError) as error:
            message = error.message if isinstance(error, ApiError) else str(error)
            self._finish(cycle_id, node["id"], None, None, failed=f"node {node.get('name')!r}: {message}")

    def _record(self, cycle_id: str, node_id: str, execution_id: str) -> None:
        self.store.tables[CYCLES][cycle_id]["executions"].setdefault(node_id, []).append(execution_id)

    def _pipeline_ref(self, cycle_id: str, node_id: str) -> dict:
        return {"id": self._states[cycle_id].pipeline_id, "nodeId": node_id, "executionId": cycle_id}

    def _callback(self, cycle_id: str, node_id: str) -> Callable[[dict], None]:
        with self._idle:
            self._pending += 1  # an execution not called back yet keeps the runtime busy

        def on_done(execution: dict) -> None:
            self._post(self._execution_done, cycle_id, node_id, execution)
            self._release()

        return on_done

    def _run_faas(self, cycle_id: str, node: Mapping[str, Any], inputs: dict) -> None:
        composition = self.store.tables[COMPOSITIONS][self._pipeline(cycle_id)["compositionId"]]
        entry = next((s for s in composition["services"] if s["nodeId"] == node["id"]), None)
        if entry is None:
            raise routing.RoutingError("no service: re-install the pipeline")
        if entry["serviceId"] is None:  # the app was missing at install: try again, or fail naming it
            entry["serviceId"] = self._node_service(self._pipeline(cycle_id), node)
        service_id = entry["serviceId"]
        function = (node.get("namespace") or {}).get("functionName") or "run"
        executor, reference = self.executor, self._pipeline_ref(cycle_id, node["id"])
        self._outbox.append(
            (
                cycle_id,
                node["id"],
                lambda on_done: executor.submit(service_id, function, inputs, pipeline=reference, on_done=on_done),
            )
        )

    def _run_ml(self, cycle_id: str, node: Mapping[str, Any], inputs: dict) -> None:
        """An ml node runs its model operation (``namespace.functionName``: predict, train,
        evaluate, embed) on the node's model: ``metadata.variableModel`` / ``modelId``, else the
        ``model`` input (PIPELINE_FACTS.md section 6, "ML pipeline nodes")."""
        metadata = node.get("metadata") or {}
        operation = (node.get("namespace") or {}).get("functionName")
        model_id = metadata.get("modelId")
        if metadata.get("variableModel"):
            model_id = routing.variable_value(
                self._pipeline(cycle_id).get("variables") or [], metadata["variableModel"]
            )
        model_id = model_id or inputs.get("model")
        if not model_id:
            raise routing.RoutingError(f"{operation}: no model (variable {metadata.get('variableModel')!r} is empty)")
        arguments = dict(inputs)
        if operation in ("predict", "embed") and "item" in arguments:
            arguments["items"] = [arguments.pop("item")]
        executor, reference = self.executor, self._pipeline_ref(cycle_id, node["id"])
        self._outbox.append(
            (
                cycle_id,
                node["id"],
                lambda on_done: executor.run_model_operation(
                    model_id, operation, arguments, pipeline=reference, on_done=on_done
                ),
            )
        )

    def _builtin(self, cycle_id: str, node: Mapping[str, Any], inputs: dict) -> dict:
        execution_id = self.store.ids.new()
        base = self.store._base("executions", execution_id)
        execution = cyc.builtin_execution(base, self.store.tables[CYCLES][cycle_id], node, inputs)
        self.store.tables["executions"][execution_id] = execution
        self._record(cycle_id, node["id"], execution_id)
        return execution

    def _run_builtin(self, cycle_id: str, node: Mapping[str, Any], inputs: dict, output: Any) -> None:
        execution = self._builtin(cycle_id, node, inputs)
        cyc.finish_builtin(execution, "success", output)
        self._finish(cycle_id, node["id"], output, None)

    def _storage(self, cycle_id: str, node: Mapping[str, Any], inputs: dict, start: bool) -> Any:
        """A dataset node: at the start it lets through the items of its dataset; elsewhere it
        clones the item into its dataset (folder ``metadata.dir``), and an item already there
        passes (Dataloop docs "Data nodes")."""
        dataset_id = node_dataset_id(self._pipeline(cycle_id), node)
        item_id = next(iter(inputs.values()), None) if len(inputs) == 1 else inputs.get("item")
        if dataset_id is None or item_id is None:
            return item_id
        item = self.store._get("items", item_id)
        if item["datasetId"] == dataset_id:
            return item_id
        if start:
            return None
        directory = ((node.get("metadata") or {}).get("dir") or "/").rstrip("/")
        path = f"{directory}{item['filename']}" if directory else item["filename"]
        existing = self.store._index(dataset_id).by_filename.get("/" + path.lstrip("/"))
        if existing is not None:
            return existing
        return self.store._copy_item(item, dataset_id, path, True, True)["id"]

    def _update_variables(self, cycle_id: str, node: Mapping[str, Any], inputs: dict) -> dict:
        """An updateVariable node writes each input into the pipeline variable named like its
        port (PIPELINE_FACTS.md section 3; persistence for later cycles is an assumption)."""
        pipeline = self._pipeline(cycle_id)
        by_name = {v.get("name"): v for v in pipeline.get("variables") or []}
        for name, value in inputs.items():
            if name not in by_name:
                raise routing.RoutingError(f"no pipeline variable {name!r} to update")
            by_name[name]["value"] = clone(value)
            by_name[name]["updatedAt"] = now_iso()
        pipeline["updatedAt"] = now_iso()
        outputs = [p.get("name") for p in node.get("outputs") or []]
        return inputs.get(outputs[0]) if len(outputs) == 1 else [inputs.get(n) for n in outputs]

    def _run_task(self, cycle_id: str, node: Mapping[str, Any], inputs: dict) -> None:
        """The item enters the node's task and waits there for its status."""
        pipeline = self._pipeline(cycle_id)
        item_id = inputs.get("item", next(iter(inputs.values()), None))
        item = self.store._get("items", item_id) if isinstance(item_id, str) else None
        if item is None:
            raise routing.RoutingError("a task node needs an item")
        composition = self.store.tables[COMPOSITIONS][pipeline["compositionId"]]
        task_id = self._node_task(pipeline, composition, node, item)
        refs = item.setdefault("metadata", {}).setdefault("system", {}).setdefault("refs", [])
        for ref in refs:  # an item entering again loses its previous status (DAT-52654)
            if ref.get("type") == "task" and ref.get("id") == task_id:
                ref.setdefault("metadata", {})["status"] = None
        self.store._refer_items(task_id, [item_id])
        execution = self._builtin(cycle_id, node, inputs)
        self._waiting[(task_id, item_id)] = (cycle_id, node["id"], execution["id"])
        self._left.pop((task_id, item_id), None)

    def on_item_status(self, task_id: str, item_id: str, status: str | None, operation: str) -> None:
        """An item's status in a task changed (``POST /assignments/items/tasks/{id}/status``)."""
        self._post(self._item_status, task_id, item_id, status, operation)

    def _item_status(self, task_id: str, item_id: str, status: str | None, operation: str) -> None:
        if operation != "create" or not status:
            return
        with self.store.lock:
            key = (task_id, item_id)
            if key in self._waiting:
                cycle_id, node_id, execution_id = self._waiting.pop(key)
                run_open = True
            elif key in self._left:
                cycle_id, node_id = self._left[key]
                node = self._node(cycle_id, node_id)
                if not (node.get("metadata") or {}).get("repeatable", True):
                    return
                execution_id, run_open = self._builtin(cycle_id, node, {"item": item_id})["id"], False
            else:
                return
            node = self._node(cycle_id, node_id)
            action = routing.task_action(status, node_actions(node))
            cyc.finish_builtin(self.store.tables["executions"][execution_id], "success", item_id, action)
            self._left[key] = (cycle_id, node_id)
            state = self._states[cycle_id]
            if not run_open:  # a repeatable node re-emits: the cycle runs again from here
                state.node(node_id).started += 1
                state.open_runs += 1
            self._finish(cycle_id, node_id, item_id, action)

    def _execution_done(self, cycle_id: str, node_id: str, execution: Mapping[str, Any]) -> None:
        status = status_of(execution)
        with self.store.lock:
            if status == "success":
                self._finish(cycle_id, node_id, execution.get("output"), execution.get("action"))
            else:
                message = (execution.get("latestStatus") or {}).get("message") or status
                self._finish(
                    cycle_id, node_id, None, None, failed=f"execution {execution.get('id')} {status}: {message}"
                )

    def _finish(self, cycle_id: str, node_id: str, output: Any, action: str | None, failed: str | None = None) -> None:
        """A node run ended: route its output (or fail the cycle), close the run."""
        state = self._states[cycle_id]
        cycle = self.store.tables[CYCLES].get(cycle_id)
        if failed is not None:
            self._fail(cycle_id, node_id, failed)
        elif cycle is not None and cycle["status"] != "terminated":
            pipeline = self._pipeline(cycle_id)
            node = self._node(cycle_id, node_id)
            try:
                values = routing.port_values(node, output)
                self._route(cycle_id, pipeline, node, values, action)
            except routing.RoutingError as error:
                self._fail(cycle_id, node_id, str(error))
        state.node(node_id).done += 1
        state.open_runs -= 1
        self._sync(cycle_id)

    def _route(
        self, cycle_id: str, pipeline: Mapping[str, Any], node: Mapping[str, Any], values: dict, action: Any
    ) -> None:
        nodes = {n["id"]: n for n in pipeline["nodes"]}
        arrivals: dict[str, dict[str, Any]] = {}
        for connection in routing.firing_connections(pipeline.get("connections") or [], node["id"], values, action):
            value = values[connection["src"]["portId"]]
            value = self._filtered(connection, value)
            if value is None or value == []:
                continue
            target = nodes[connection["tgt"]["nodeId"]]
            port = next(p for p in target.get("inputs") or [] if p.get("portId") == connection["tgt"]["portId"])
            arrivals.setdefault(target["id"], {})[port["name"]] = value
        for target_id, arrived in arrivals.items():
            self._arrive(cycle_id, nodes[target_id], arrived)

    def _filtered(self, connection: Mapping[str, Any], value: Any) -> Any:
        """The part of ``value`` that passes the connection's condition (items by their JSON)."""
        if routing.condition_filter(connection) is None:
            return value
        if isinstance(value, list):
            return [v for v in value if routing.passes_condition(connection, self._entity(v))]
        return value if routing.passes_condition(connection, self._entity(value)) else None

    def _entity(self, value: Any) -> dict | None:
        if not isinstance(value, str):
            return None
        for table in ("items", "models", "datasets", "annotations"):
            if value in self.store.tables[table]:
                return self.store.tables[table][value]
        return None

    def _terminate_cycles(self, pipeline_id: str) -> None:
        for cycle in self.store.tables[CYCLES].values():
            if cycle["pipelineId"] == pipeline_id and cycle["status"] in ("pending", "in-progress"):
                cycle["status"] = "terminated"
                cycle["updatedAt"] = now_iso()
        for key, (cycle_id, _, _) in list(self._waiting.items()):
            if self._states[cycle_id].pipeline_id == pipeline_id:
                del self._waiting[key]
