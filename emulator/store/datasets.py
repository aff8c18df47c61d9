"""Datasets: created in a project (name unique per project, optionally with a default recipe
and empty ontology), listed, patched, deleted with their items and annotations, and queried
(``POST /datasets/query``). A dataset's ``itemsCount`` / ``annotationsCount`` are live counts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from emulator.store.base import ApiError, DatasetIndex, StoreBase, clone, now_iso, patch_of


class DatasetsMixin(StoreBase):
    def create_dataset(self, body: Mapping[str, Any]) -> dict:
        name = body.get("name")
        projects = body.get("projects")
        if not isinstance(name, str) or not name:
            raise ApiError(400, "dataset name is required")
        if not isinstance(projects, list) or not projects:
            raise ApiError(400, "dataset 'projects' must be a list with the project id")
        with self.lock:
            for project_id in projects:
                self._get("projects", project_id)
            for dataset in self.tables["datasets"].values():
                if dataset["name"] == name and dataset["projects"][0] == projects[0]:
                    raise ApiError(409, f"dataset named {name!r} already exists in the project")
            dataset_id = self.ids.new()
            dataset = self._base("datasets", dataset_id)
            dataset.update(
                {
                    "name": name,
                    "projects": list(projects),
                    "driver": body.get("driver", "emulator-driver"),
                    "items": f"{self.base_url}/datasets/{dataset_id}/items",
                    "itemsCount": 0,
                    "annotated": 0,
                    "annotationsCount": 0,
                    "readableType": "dataset",
                    "accessLevel": "owner",
                    "readonly": False,
                    "metadata": {"system": {"recipes": []}},
                    "directoryTree": {"dirs": [], "url": f"{self.base_url}/datasets/{dataset_id}/directoryTree"},
                    "export": {},
                    "expirationOptions": body.get("expirationOptions"),
                    "indexDriver": body.get("indexDriver", "v2"),
                }
            )
            self.tables["datasets"][dataset_id] = dataset
            self.indexes[dataset_id] = DatasetIndex()
            if body.get("createDefaultRecipe", False):
                ontology = self.create_ontology({"roots": [], "projectIds": list(projects)})
                recipe = self.create_recipe(
                    {"title": f"{name} Default Recipe", "projectIds": list(projects), "ontologyIds": [ontology["id"]]}
                )
                dataset["metadata"]["system"]["recipes"] = [recipe["id"]]
            return self._dataset_view(dataset)

    def _dataset_view(self, dataset: dict) -> dict:
        view = clone(dataset)
        index = self.indexes.get(dataset["id"])
        if index is not None:
            view["itemsCount"] = len(index.item_ids)
            view["annotationsCount"] = len(index.annotation_ids)
        return view

    def get_dataset(self, dataset_id: str) -> dict:
        with self.lock:
            return self._dataset_view(self._get("datasets", dataset_id))

    def list_datasets(self, project_id: str | None = None, name: str | None = None) -> list[dict]:
        with self.lock:
            return [
                self._dataset_view(d)
                for d in self.tables["datasets"].values()
                if (project_id is None or project_id in d["projects"]) and (name is None or d["name"] == name)
            ]

    def query_datasets(self, body: Mapping[str, Any], encoded: bool = False) -> dict | bytes:
        """``POST /datasets/query``: a DQL page of the datasets of ``context.projects`` (all when absent)."""
        context = body.get("context") or {}
        projects = context.get("projects") if isinstance(context, dict) else None
        self._ensure_binaries_dataset(body, projects)
        docs = [
            d
            for d in self.list_datasets()
            if not projects or any(project_id in d["projects"] for project_id in projects)
        ]
        return self.query_documents(docs, body, encoded)

    def _ensure_binaries_dataset(self, body: Mapping[str, Any], projects: Any) -> None:
        """dtlpy finds a project's model artifacts in its hidden ``Binaries`` dataset, looked up by a
        system-space datasets query on the name; the platform makes it with the project, the
        emulator on that first lookup (so ordinary dataset listings of other tests are unchanged)."""
        if not body.get("systemSpace") or not isinstance(projects, list) or len(projects) != 1:
            return
        if '"Binaries"' not in json.dumps(body.get("filter") or {}):
            return
        if not self.list_datasets(project_id=projects[0], name="Binaries"):
            try:
                self.create_dataset({"name": "Binaries", "projects": [projects[0]]})
            except ApiError as error:
                if error.status != 409:  # 409: created meanwhile by a concurrent lookup
                    raise

    def patch_dataset(self, dataset_id: str, body: Mapping[str, Any], system: bool) -> dict:
        read_only = ("id", "url", "createdAt", "creator", "items", "itemsCount", "annotationsCount", "projects")
        patch = patch_of(body, read_only, "dataset patch")
        with self.lock:
            dataset = self._get("datasets", dataset_id)
            metadata = patch.pop("metadata", None)
            for key, value in patch.items():
                dataset[key] = value
            if isinstance(metadata, Mapping):
                system_part = metadata.get("system")
                rest = {k: v for k, v in metadata.items() if k != "system"}
                dataset.setdefault("metadata", {}).update(clone(rest))
                if system and isinstance(system_part, Mapping):
                    dataset["metadata"]["system"] = clone(dict(system_part))
            dataset["updatedAt"] = now_iso()
            return self._dataset_view(dataset)

    def delete_dataset(self, dataset_id: str) -> None:
        with self.lock:
            self._get("datasets", dataset_id)
            index = self.indexes.pop(dataset_id)
            for item_id in index.item_ids:
                self.tables["items"].pop(item_id, None)
                self.blobs.pop(item_id, None)
                self.item_annotations.pop(item_id, None)
            for annotation_id in index.annotation_ids:
                self.tables["annotations"].pop(annotation_id, None)
            del self.tables["datasets"][dataset_id]
