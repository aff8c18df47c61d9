"""Services (``/services``) and executions (``/executions``, ``/query/faas``, ``/services/logs``):
the records the REST API serves; :mod:`emulator.engine` runs them (``store.engine``).

A service is created by ``apps.install`` (one per module of the app's manifest), by
``project.services.deploy`` of a FaaS package (``POST /services``), or by a model operation.
Sources and assumptions: emulator/README.md, "Services, executions, models".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from emulator.engine import executions as ex
from emulator.engine.codebase import compute_config, find_module, service_name_of
from emulator.store.base import CREATOR, ApiError, StoreBase, clone, now_iso, patch_of

#: dtlpy entities/service.py ``Service.from_json`` defaults and ``KubernetesRuntime`` defaults
SERVICE_DEFAULTS = {
    "executionTimeout": 3600,
    "drainTime": 600,
    "onReset": "failed",
    "runExecutionAsProcess": False,
    "maxAttempts": 3,
}
_PACKAGE_NAME = re.compile(r"\A[a-z0-9][a-z0-9-]{0,99}\Z")
RUNTIME_DEFAULTS = {"podType": "regular-s", "numReplicas": 1, "concurrency": 10}
# a DPK compute config's keys that become the service's own (dtlpy entities/dpk.py DpkComputeConfig)
COMPUTE_CONFIG_KEYS = (
    "runtime",
    "versions",
    "executionTimeout",
    "drainTime",
    "onReset",
    "runExecutionAsProcess",
    "maxAttempts",
)
_SERVICE_FIELDS = (
    "initParams",
    *COMPUTE_CONFIG_KEYS,
    "secrets",
    "integrations",
    "driverId",
    "useUserJwt",
    "botUserName",
)


def check_service_config(body: Mapping[str, Any], what: str) -> None:
    """Refuse (400 naming the field) a service setting outside what dtlpy documents.

    Example
    -------
    >>> check_service_config({"onReset": "rerun", "maxAttempts": 2}, "service")
    >>> check_service_config({"onReset": "retry"}, "service")
    Traceback (most recent call last):
    ...
    emulator.store.base.ApiError: service onReset: 'retry' is not one of ['failed', 'rerun']
    """
    if "onReset" in body and body["onReset"] not in ("failed", "rerun"):  # dtlpy OnResetAction
        raise ApiError(400, f"{what} onReset: {body['onReset']!r} is not one of ['failed', 'rerun']")
    for key in ("executionTimeout", "maxAttempts", "drainTime"):
        value = body.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ApiError(400, f"{what} {key}: {value!r} is not a positive integer")
    runtime = body.get("runtime")
    if runtime is not None:
        if not isinstance(runtime, Mapping):
            raise ApiError(400, f"{what} runtime: must be an object")
        concurrency = runtime.get("concurrency")
        if concurrency is not None and (
            isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1
        ):
            raise ApiError(400, f"{what} runtime.concurrency: {concurrency!r} is not a positive integer")
    if "initParams" in body and not isinstance(body["initParams"], Mapping):
        raise ApiError(400, f"{what} initParams: must be an object")


class ServicesMixin(StoreBase):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from emulator.engine import Engine

        self.tables.setdefault("services", {})
        self.engine = Engine(self)

    # ------------------------------------------------------------------ services
    def _new_service(self, body: Mapping[str, Any]) -> dict:
        """Store a service record (take the lock first)."""
        check_service_config(body, "service")
        service_id = self.ids.new()
        service = self._base("services", service_id)
        service.update(clone(SERVICE_DEFAULTS))
        service.update(
            {
                "name": body["name"],
                "projectId": body["projectId"],
                "orgId": "emulator-org",
                "packageId": body.get("packageId"),
                "packageName": body.get("packageName"),
                "packageRevision": body.get("packageRevision", "1.0.0"),
                "version": "1.0.0",
                "moduleName": body.get("moduleName", "default_module"),
                "initParams": {},
                "runtime": dict(RUNTIME_DEFAULTS),
                "versions": {},
                "active": bool(body.get("active", True)),
                "archive": False,
                "global": False,
                "secrets": [],
                "integrations": [],
                "metadata": clone(body.get("metadata") or {}),
                "app": clone(body.get("app")),
                "appId": (body.get("app") or {}).get("id"),
                "type": body.get("type", "regular"),
                "mode": {},
            }
        )
        for key in _SERVICE_FIELDS:
            if body.get(key) is not None:
                value = clone(body[key])
                service[key] = {**RUNTIME_DEFAULTS, **value} if key == "runtime" else value
        self.tables["services"][service_id] = service
        return service

    def create_service(self, body: Mapping[str, Any]) -> dict:
        """``POST /services`` (dtlpy ``services.deploy`` of a FaaS package)."""
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise ApiError(400, "service 'name' is required")
        with self.lock:
            project_id = body.get("projectId")
            self._get("projects", project_id)
            package_id = body.get("packageId")
            if package_id in self.tables["dpks"]:
                raise ApiError(400, "cannot deploy a dpk package as a service: install the app (apps.install)")
            package = self._get("packages", package_id)
            find_module(package, body.get("moduleName") or None, f"package {package['name']!r}")
            self._check_service_name_free(name, project_id)
            service = self._new_service(
                {**body, "packageName": package["name"], "packageRevision": package.get("version", "1.0.0")}
            )
            return clone(service)

    def _check_service_name_free(self, name: str, project_id: str) -> None:
        for other in self.tables["services"].values():
            if other["name"] == name and other["projectId"] == project_id and not other.get("archive"):
                raise ApiError(409, f"a service named {name!r} already exists in the project")

    def ensure_module_service(self, project_id: str, app_or_dpk: Mapping[str, Any], module_name: str) -> dict:
        """The service of an app's module in the project, created when missing."""
        with self.lock:
            if "dpkName" in app_or_dpk:  # an installed app
                app = app_or_dpk
                dpk = self._get("dpks", app["dpkId"]) if app.get("dpkId") in self.tables["dpks"] else None
                dpk = dpk or self.dpk_by_name(app["dpkName"], app.get("dpkVersion"))
            else:
                app, dpk = None, app_or_dpk
            module = find_module(dpk, module_name, f"app {dpk['name']!r}")
            name = service_name_of(module)
            for service in self.tables["services"].values():
                if service["projectId"] == project_id and service["name"] == name and not service.get("archive"):
                    if service.get("packageId") != dpk["id"] or service.get("moduleName") != module_name:
                        raise ApiError(409, f"service {name!r} already exists in the project for another app or module")
                    return clone(service)
            config = compute_config(dpk, module)
            body = {
                "name": name,
                "projectId": project_id,
                "packageId": dpk["id"],
                "packageName": dpk["name"],
                "packageRevision": dpk["version"],
                "moduleName": module_name,
                "initParams": {i["name"]: i.get("value") for i in module.get("initInputs") or [] if "name" in i},
                "app": {"id": app["id"], "name": app["name"], "dpkName": dpk["name"], "dpkVersion": dpk["version"]}
                if app
                else None,
            }
            body.update({key: config[key] for key in COMPUTE_CONFIG_KEYS if key in config})
            return clone(self._new_service(body))

    def code_owner(self, service: Mapping[str, Any]) -> tuple[dict, str]:
        """The DPK or FaaS package whose codebase and modules a service runs."""
        with self.lock:
            package_id = service.get("packageId")
            if package_id in self.tables["dpks"]:
                dpk = self.tables["dpks"][package_id]
                return clone(dpk), f"app {dpk['name']!r}"
            if package_id in self.tables["packages"]:
                package = self.tables["packages"][package_id]
                return clone(package), f"package {package['name']!r}"
            raise ApiError(404, f"service {service.get('name')!r}: its package {package_id!r} does not exist")

    def check_package_name(self, name: str) -> dict:
        """``GET /piper-misc/naming/packages/{name}`` (dtlpy ``packages._name_validation`` before a
        push): a package name is lowercase letters, digits and hyphens (Dataloop docs, FaaS
        naming; the answer body is not read by dtlpy: ``{}``)."""
        if not _PACKAGE_NAME.match(name):
            raise ApiError(400, f"package name {name!r}: use lowercase letters, digits and hyphens, e.g. 'my-package'")
        return {}

    def get_service(self, service_id: str) -> dict:
        return self.get("services", service_id)

    def patch_service(self, service_id: str, body: Mapping[str, Any]) -> dict:
        """``PATCH /services/{id}`` (dtlpy ``service.update()``): the next execution runs with
        the new settings (the service's replicas restart)."""
        patch = patch_of(body, ("id", "url", "createdAt", "creator", "projectId", "packageId"), "service patch")
        check_service_config(patch, "service patch")
        with self.lock:
            service = self._get("services", service_id)
            for key, value in patch.items():
                service[key] = value
            service["updatedAt"] = now_iso()
            answer = clone(service)
        self.engine.stop_service(service_id)
        return answer

    def delete_service(self, service_id: str) -> None:
        with self.lock:
            self._get("services", service_id)
            del self.tables["services"][service_id]
        self.engine.stop_service(service_id)

    def archive_service(self, service_id: str) -> None:
        """A model's train / evaluate service is archived after use (platform behaviour)."""
        with self.lock:
            service = self.tables["services"].get(service_id)
            if service is not None:
                service["archive"] = True
                service["active"] = False
        self.engine.stop_service(service_id)

    def services_of_app(self, app_id: str) -> list[str]:
        with self.lock:
            return [s["id"] for s in self.tables["services"].values() if s.get("appId") == app_id]

    # ------------------------------------------------------------------ executions
    def record_new_execution(self, service: Mapping[str, Any], function_name: str, inputs: dict, **kwargs: Any) -> dict:
        """Store a new ``created`` execution of ``function_name`` on ``service``."""
        with self.lock:
            execution_id = self.ids.new()
            execution = ex.new_execution(
                self._base("executions", execution_id), service, function_name, inputs, **kwargs
            )
            self.tables["executions"][execution_id] = execution
            return clone(execution)

    def execution_ended(self, execution: Mapping[str, Any]) -> None:
        """Called by the engine when an execution ends (model operations follow it)."""
        model = execution.get("model")
        ended = getattr(self, "model_operation_ended", None)
        if isinstance(model, Mapping) and model.get("modelId") and ended is not None:
            ended(execution)

    def execute(self, service_id: str, body: Mapping[str, Any]) -> dict:
        """``POST /executions/{serviceId}`` (dtlpy ``service.execute`` / ``executions.create``)."""
        if "batch" in body:
            raise ApiError(501, "batch executions (execute_batch) are not implemented by the emulator")
        inputs = body.get("input") or {}
        if not isinstance(inputs, Mapping):
            raise ApiError(400, "execution 'input' must be an object of {name: value}")
        function_name = body.get("functionName") or "run"
        return self.engine.submit(service_id, function_name, dict(inputs))

    def record_execution(
        self, execution_id: str, project_id: str, pipeline: Mapping[str, Any], node: Mapping[str, Any]
    ) -> dict:
        """The in-progress execution ``LocalPlatform.make_context`` records for a node it did not run."""
        with self.lock:
            execution = self._base("executions", execution_id)
            namespace = node.get("namespace") or {}
            service = {
                "id": namespace.get("serviceName"),
                "name": namespace.get("serviceName"),
                "projectId": project_id,
            }
            execution = ex.new_execution(
                execution,
                {**service, "packageName": namespace.get("packageName")},
                namespace.get("functionName"),
                {},
                pipeline={"id": pipeline["id"], "nodeId": node["id"], "executionId": f"pexec-{execution_id}"},
            )
            execution["attempts"] = 1
            ex.set_status(execution, "in-progress", percent=0)
            execution["creator"] = CREATOR
            self.tables["executions"][execution_id] = execution
            return clone(execution)

    def get_execution(self, execution_id: str) -> dict:
        return self.get("executions", execution_id)

    def terminate_execution(self, execution_id: str, body: Mapping[str, Any]) -> dict:
        return self.engine.terminate(execution_id)

    def rerun_execution(self, execution_id: str, body: Mapping[str, Any]) -> dict:
        return self.engine.rerun(execution_id)

    def query_faas(self, body: Mapping[str, Any], encoded: bool = False) -> dict | bytes:
        """``POST /query/faas``: executions, services and packages by ``resource`` (dtlpy
        ``executions.list`` / ``services.list`` / ``packages.list``)."""
        if not isinstance(body, Mapping):
            raise ApiError(400, "query body must be a JSON object")
        resource = body.get("resource")
        tables = {"executions": "executions", "packages": "packages", "services": "services"}
        if resource not in tables:
            raise ApiError(501, f"POST /query/faas with resource {resource!r} is not implemented by the emulator")
        table = self.tables[tables[resource]]
        return self._query_table(body, sorted(table), table, encoded)

    def service_logs(self, body: Mapping[str, Any], encoded: bool = False) -> dict:
        """``POST /services/logs`` (dtlpy ``services.log``): ``{logs: [{timestamp, message}],
        checkpoint, stop}``; ``stop`` once every execution asked for has ended and no line is left."""
        wanted = body.get("executionId") or []
        if isinstance(wanted, str):
            wanted = [wanted]
        service_id = body.get("serviceId")
        model_id = body.get("modelId")
        with self.lock:
            executions = [
                e
                for e in self.tables["executions"].values()
                if (not wanted or e["id"] in wanted)
                and (service_id is None or e["serviceId"] == service_id or wanted)
                and (model_id is None or (e.get("model") or {}).get("modelId") == model_id)
                and (body.get("functionName") is None or e["functionName"] == body["functionName"])
                and (
                    body.get("modelOperation") is None
                    or (e.get("model") or {}).get("operation") == body["modelOperation"]
                )
            ]
            ids = [e["id"] for e in executions]
            done = all(ex.is_final(e) for e in executions)
        with self.engine._lock:
            lines = [line for i in ids for line in self.engine.logs.get(i, [])]
            if not wanted and service_id is not None and model_id is None:
                lines += self.engine.service_logs.get(service_id, [])
        lines.sort(key=lambda line: line["timestamp"])
        text = body.get("text")
        if isinstance(text, str) and text:
            lines = [line for line in lines if text in line["message"]]
        checkpoint = body.get("checkpoint") if isinstance(body.get("checkpoint"), Mapping) else {}
        start = int(checkpoint.get("index", 0)) if isinstance(checkpoint.get("index", 0), int) else 0
        # dtlpy ServiceLog iterates ``while not stop``: a page with lines never stops the reading
        page = lines[start:]
        return {"logs": clone(page), "checkpoint": {"index": len(lines)}, "stop": done and not page}
