"""Models (``/ml/models``): created in a project from a package (name unique per project), read,
cloned (asynchronously), patched, deleted and queried; deployed, trained, evaluated and asked to
predict through model services (:class:`ModelOperationsMixin`, :mod:`emulator.engine.models`). Sources, what a clone copies and the
assumptions: emulator/README.md ("Endpoints", "Sources by module").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.engine import executions as ex
from emulator.engine.codebase import compute_config, find_module
from emulator.engine.models import service_body as model_service_body
from emulator.store.base import (
    CREATOR,
    ApiError,
    StoreBase,
    clone,
    deep_merge,
    insert_sorted,
    now_iso,
    patch_of,
    remove_sorted,
)

#: dtlpy 1.126.5 entities/model.py ``ModelStatus`` (the platform's documented model statuses).
MODEL_STATUSES = ("created", "pre-trained", "pending", "training", "trained", "deployed", "failed", "cloning")


def check_status(status: Any, what: str) -> str:
    if status not in MODEL_STATUSES:
        raise ApiError(400, f"{what} 'status': {status!r} is not one of {list(MODEL_STATUSES)}")
    return status


class ModelsMixin(StoreBase):
    def create_model(self, body: Mapping[str, Any]) -> dict:
        name = body.get("name")
        project_id = body.get("projectId")
        if not isinstance(name, str) or not name:
            raise ApiError(400, "model 'name' is required")
        status = check_status(body.get("status", "created"), "model")
        with self.lock:
            self._get("projects", project_id)
            self._require_package(body.get("packageId"))
            for field in ("tags", "labels"):
                _check_string_list(body.get(field), field)
            if body.get("datasetId") is not None:
                self._get("datasets", body["datasetId"])
            self._check_model_name_free(name, project_id)
            model_id = self.ids.new()
            model = self._base("ml/models", model_id)
            model.update(
                {
                    "name": name,
                    "projectId": project_id,
                    "context": {"project": project_id, "org": "emulator-org", "creator": CREATOR},
                    "packageId": body.get("packageId"),
                    "datasetId": body.get("datasetId"),
                    "labels": list(body.get("labels") or []),
                    "configuration": clone(body.get("configuration") or {}),
                    "status": status,
                    "description": body.get("description"),
                    "tags": list(body.get("tags") or []),
                    "metadata": clone(body.get("metadata") or {}),
                    "artifacts": clone(body.get("artifacts") or []),
                    "inputType": body.get("inputType", "image"),
                    "outputType": body.get("outputType", "box"),
                    "moduleName": body.get("moduleName", "model-adapter"),
                    "scope": body.get("scope", "project"),
                    "version": body.get("version", "1.0.0"),
                    "statusLogs": [],
                    "app": body.get("app"),
                }
            )
            model["metadata"].setdefault("system", {})
            self.tables["models"][model_id] = model
            insert_sorted(self.model_ids, model_id)
            return clone(model)

    def _check_model_name_free(self, name: str, project_id: str) -> None:
        for model in self.tables["models"].values():
            if model["name"] == name and model["context"]["project"] == project_id:
                raise ApiError(409, f"a model named {name!r} already exists in the project")

    def get_model(self, model_id: str) -> dict:
        with self.lock:
            pending = self._cloning.get(model_id)
            if pending is not None:
                if pending["polls"] > 0:
                    pending["polls"] -= 1
                else:
                    self._finish_clone(model_id)
            return clone(self._get("models", model_id))

    def _finish_clone(self, model_id: str) -> None:
        """The asynchronous copy is done: the model takes its final status (take the lock first)."""
        pending = self._cloning.pop(model_id, None)
        model = self.tables["models"].get(model_id)
        if pending is not None and model is not None and model["status"] == "cloning":
            model["status"] = pending["status"]
            model["updatedAt"] = now_iso()

    def clone_model(self, source_id: str, body: Mapping[str, Any]) -> dict:
        if not isinstance(body, Mapping):
            raise ApiError(400, "clone body must be a JSON object")
        final_status = check_status(body.get("status", "created"), "clone")
        with self.lock:
            source = self._get("models", source_id)
            name = body.get("name")
            if not isinstance(name, str) or not name:
                raise ApiError(400, "clone needs the new model 'name'")
            project_id = body.get("projectId") or source["context"]["project"]
            metadata = clone(source.get("metadata") or {})
            sent = body.get("metadata")
            if isinstance(sent, Mapping):
                # assumption: each metadata.system key sent (subsets, annotationsSubsets...)
                # replaces the source's value for that key; other metadata is deep-merged
                deep_merge(metadata, {k: v for k, v in sent.items() if k != "system"}, none_deletes=False)
                if isinstance(sent.get("system"), Mapping):
                    if not isinstance(metadata.get("system"), dict):
                        metadata["system"] = {}
                    for key, value in sent["system"].items():
                        metadata["system"][key] = clone(value)
            configuration = clone(source.get("configuration") or {})
            if isinstance(body.get("configuration"), Mapping):
                configuration = clone(dict(body["configuration"]))
            new_body = {
                "name": name,
                "projectId": project_id,
                "packageId": body.get("packageId", source.get("packageId")),
                "datasetId": body.get("datasetId", source.get("datasetId")),
                "labels": body.get("labels", source.get("labels")),
                "configuration": configuration,
                "status": final_status,
                "description": body.get("description", source.get("description")),
                "tags": body.get("tags", source.get("tags")),
                "metadata": metadata,
                "artifacts": source.get("artifacts"),
                "inputType": body.get("inputType") or source.get("inputType"),
                "outputType": body.get("outputType") or source.get("outputType"),
                "moduleName": source.get("moduleName"),
                "scope": body.get("scope", source.get("scope")),
                "app": source.get("app"),
            }
            model = self.tables["models"][self.create_model(new_body)["id"]]
            model["metadata"].setdefault("system", {})["clonedFrom"] = source_id
            if self.clone_async:
                model["status"] = "cloning"
                self._cloning[model["id"]] = {"polls": self.clone_polls, "status": final_status}
            return clone(model)

    def patch_model(self, model_id: str, body: Mapping[str, Any], system: bool) -> dict:
        patch = patch_of(body, ("id", "url", "createdAt", "creator", "context", "projectId"), "model patch")
        for field in ("tags", "labels"):
            if field in patch:
                _check_string_list(patch[field], field)
        with self.lock:
            model = self._get("models", model_id)
            metadata = patch.pop("metadata", None)
            if "name" in patch and patch["name"] != model["name"]:
                self._check_model_name_free(patch["name"], model["context"]["project"])
            if "status" in patch:
                check_status(patch["status"], "model patch")
                self._cloning.pop(model_id, None)
            for key, value in patch.items():
                model[key] = value
            if isinstance(metadata, Mapping):
                metadata = clone(dict(metadata))
                system_part = metadata.pop("system", None)
                kept_system = model.get("metadata", {}).get("system", {})
                model["metadata"] = metadata
                model["metadata"]["system"] = (
                    system_part if system and isinstance(system_part, Mapping) else kept_system
                )
            model["updatedAt"] = now_iso()
            return clone(model)

    def delete_model(self, model_id: str) -> None:
        with self.lock:
            self._get("models", model_id)
            del self.tables["models"][model_id]
            self._cloning.pop(model_id, None)
            remove_sorted(self.model_ids, model_id)

    def query_models(self, body: Mapping[str, Any], encoded: bool = False) -> dict | bytes:
        with self.lock:  # copies whose polls are over are finished when listed, too
            for model_id in [i for i, p in self._cloning.items() if p["polls"] <= 0]:
                self._finish_clone(model_id)
        return self._query_table(body, self.model_ids, self.tables["models"], encoded)


def _check_string_list(value: Any, field: str) -> None:
    """``tags`` and ``labels`` are lists of strings (dtlpy ``repositories/models.py`` ``create``:
    ":param list tags: `list` of `str`"; ``labels`` likewise); anything else is a 400."""
    if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise ApiError(400, f"{field} must be a list of strings")


class ModelOperationsMixin(StoreBase):
    """``POST /ml/models/{id}/deploy|train|evaluate|predict|embed``: model services and their
    executions (:mod:`emulator.engine.models`); the model's status follows them."""

    def model_service(self, model_id: str, kind: str, service_config: Mapping[str, Any] | None = None) -> dict:
        """The model's ``kind`` service (``deploy`` / ``train`` / ``evaluate``), created when
        missing from the model's app module; a deploy service is recorded in
        ``metadata.system.deploy.services``."""
        if service_config is not None and not isinstance(service_config, Mapping):
            raise ApiError(400, "serviceConfig must be an object")
        with self.lock:
            model = self._get("models", model_id)
            for service in self.tables["services"].values():
                ml = (service.get("metadata") or {}).get("ml") or {}
                if ml.get("modelId") == model_id and ml.get("modelOperation") == kind and not service.get("archive"):
                    return clone(service)
            dpk = self.tables["dpks"].get(model.get("packageId"))
            if dpk is None:
                raise ApiError(
                    400,
                    f"model {model['name']!r}: its package {model.get('packageId')!r} is not a published app (dpk) "
                    "with a codebase, so the local platform has no adapter to run; publish a model app "
                    "(components.models + a module naming the adapter class) and create the model from it",
                )
            module = find_module(dpk, model.get("moduleName"), f"app {dpk['name']!r}")
            config = {**compute_config(dpk, module), **dict(service_config or {})}
            service = self._new_service(model_service_body(model, kind, dpk, config))
            if kind == "deploy":
                system = model.setdefault("metadata", {}).setdefault("system", {})
                deploy = system.setdefault("deploy", {})
                deploy["services"] = [*deploy.get("services", []), service["id"]]
                model["updatedAt"] = now_iso()
            return clone(service)

    def deploy_model(self, model_id: str, body: Mapping[str, Any]) -> dict:
        """``model.deploy()``: the deploy service; the model's status becomes ``deployed``."""
        service = self.model_service(model_id, "deploy", body.get("serviceConfig"))
        with self.lock:
            model = self._get("models", model_id)
            model["status"] = "deployed"
            model["updatedAt"] = now_iso()
        return service

    def _operation(self, model_id: str, operation: str, body: Mapping[str, Any]) -> dict:
        body_input = body.get("input") if isinstance(body.get("input"), Mapping) else {}
        config = body.get("config") if isinstance(body.get("config"), Mapping) else {}
        inputs: dict[str, Any] = {}
        if operation in ("predict", "embed"):
            if body_input.get("datasetId") is not None:
                raise ApiError(501, f"model {operation} over a dataset (datasetId) is not implemented by the emulator")
            inputs["items"] = body_input.get("itemIds") or []
            with self.lock:
                model = self._get("models", model_id)
                deployed = (model.get("metadata") or {}).get("system", {}).get("deploy", {}).get("services") or []
            if config.get("serviceId") is not None and config["serviceId"] not in deployed:
                raise ApiError(400, f"service {config['serviceId']!r} is not a deploy service of model {model_id!r}")
            if not deployed:
                raise ApiError(400, f"model {model['name']!r} is not deployed; deploy it before {operation}")
        elif operation == "evaluate":
            inputs = {"dataset": body_input.get("datasetId"), "filters": body_input.get("datasetQuery")}
            self._get("datasets", inputs["dataset"]) if inputs["dataset"] else None
            config = config.get("serviceConfig") or {}
        else:
            config = body.get("serviceConfig") or {}
        return self.engine.run_model_operation(model_id, operation, inputs, service_config=config or None)

    def train_model(self, model_id: str, body: Mapping[str, Any]) -> dict:
        return self._operation(model_id, "train", body)

    def evaluate_model(self, model_id: str, body: Mapping[str, Any]) -> dict:
        return self._operation(model_id, "evaluate", body)

    def predict_model(self, model_id: str, body: Mapping[str, Any]) -> dict:
        return self._operation(model_id, "predict", body)

    def embed_model(self, model_id: str, body: Mapping[str, Any]) -> dict:
        return self._operation(model_id, "embed", body)

    def model_operation_ended(self, execution: Mapping[str, Any]) -> None:
        """After a model operation: a failed training leaves the model ``failed``; an evaluation
        records its dataset in ``metadata.system.evaluate.datasets``; train / evaluate services
        are archived once idle."""
        ml = execution.get("model") or {}
        status = (execution.get("latestStatus") or {}).get("status")
        with self.lock:
            model = self.tables["models"].get(ml.get("modelId"))
            if model is not None and ml.get("operation") == "train" and status != "success":
                model["status"] = "failed"
                model["updatedAt"] = now_iso()
            if model is not None and ml.get("operation") == "evaluate" and status == "success":
                evaluate = model.setdefault("metadata", {}).setdefault("system", {}).setdefault("evaluate", {})
                dataset_id = (execution.get("input") or {}).get("dataset")
                evaluate["datasets"] = [*[d for d in evaluate.get("datasets", []) if d != dataset_id], dataset_id]
            service = self.tables["services"].get(execution.get("serviceId"))
            kind = ((service or {}).get("metadata") or {}).get("ml", {}).get("modelOperation")
            busy = any(
                e["serviceId"] == execution.get("serviceId") and e["id"] != execution.get("id") and not ex.is_final(e)
                for e in self.tables["executions"].values()
            )
        if kind in ("train", "evaluate") and not busy:
            self.archive_service(service["id"])
