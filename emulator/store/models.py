"""Models (``/ml/models``): created in a project (name unique per project), read (a fresh
clone answers ``cloning`` for ``clone_polls`` reads), cloned, patched, deleted and queried."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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


class ModelsMixin(StoreBase):
    def create_model(self, body: Mapping[str, Any]) -> dict:
        name = body.get("name")
        project_id = body.get("projectId")
        if not isinstance(name, str) or not name:
            raise ApiError(400, "model 'name' is required")
        with self.lock:
            self._get("projects", project_id)
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
                    "status": body.get("status", "created"),
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
            model = clone(self._get("models", model_id))
            remaining = self._cloning.get(model_id, 0)
            if remaining > 0:
                self._cloning[model_id] = remaining - 1
                model["status"] = "cloning"
            return model

    def clone_model(self, source_id: str, body: Mapping[str, Any]) -> dict:
        if not isinstance(body, Mapping):
            raise ApiError(400, "clone body must be a JSON object")
        with self.lock:
            source = self._get("models", source_id)
            name = body.get("name")
            if not isinstance(name, str) or not name:
                raise ApiError(400, "clone needs the new model 'name'")
            project_id = body.get("projectId") or source["context"]["project"]
            metadata = clone(source.get("metadata") or {})
            sent = body.get("metadata")
            if isinstance(sent, Mapping):
                # like the platform: each metadata.system key sent (subsets, annotationsSubsets...)
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
                "status": body.get("status", "created"),
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
            model = self.create_model(new_body)
            self.tables["models"][model["id"]]["metadata"].setdefault("system", {})["clonedFrom"] = source_id
            model = clone(self.tables["models"][model["id"]])
            if self.clone_polls > 0:
                self._cloning[model["id"]] = self.clone_polls
                model["status"] = "cloning"
            return model

    def patch_model(self, model_id: str, body: Mapping[str, Any], system: bool) -> dict:
        patch = patch_of(body, ("id", "url", "createdAt", "creator", "context", "projectId"), "model patch")
        with self.lock:
            model = self._get("models", model_id)
            metadata = patch.pop("metadata", None)
            if "name" in patch and patch["name"] != model["name"]:
                self._check_model_name_free(patch["name"], model["context"]["project"])
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
            remove_sorted(self.model_ids, model_id)

    def query_models(self, body: Mapping[str, Any], encoded: bool = False) -> dict | bytes:
        return self._query_table(body, self.model_ids, self.tables["models"], encoded)
