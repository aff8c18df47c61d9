"""Copies and exports of dataset content: dataset clone (``POST /datasets/{id}/clone``), item
clone (``POST /items/{id}/clone``) and the JSON export (``POST /datasets/{id}/export``) that
``dataset.download_annotations`` reads. Sources and assumptions: emulator/README.md, "Sources
by module".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from emulator.store.base import ApiError, StoreBase, clone


class ClonesMixin(StoreBase):
    def _copy_item(self, item: dict, dataset_id: str, path: str, with_metadata: bool, with_annotations: bool) -> dict:
        metadata = clone(item.get("metadata") or {}) if with_metadata else {}
        if isinstance(metadata.get("system"), dict):
            metadata["system"].pop("refs", None)  # task references stay with the source
        copy, op = self._put_item(dataset_id, path, self.blobs.get(item["id"], b""), metadata, "skip", None)
        if op == "skip":
            raise ApiError(409, f"item {path!r} already exists in dataset {dataset_id!r}")
        if with_annotations:
            annotations = [clone(self.tables["annotations"][i]) for i in self.item_annotations.get(item["id"], [])]
            if annotations:
                self.create_annotations(copy["id"], annotations)
        return copy

    def clone_item(self, item_id: str, body: Mapping[str, Any]) -> dict:
        params = body.get("cloneDatasetParams") if isinstance(body.get("cloneDatasetParams"), Mapping) else {}
        with self.lock:
            item = self._get("items", item_id)
            target = body.get("targetDatasetId") or item["datasetId"]
            self._get("datasets", target)
            path = body.get("remoteFileName") or item["filename"]
            copy = self._copy_item(
                item, target, path, params.get("withMetadata", True), params.get("withItemsAnnotations", True)
            )
            if isinstance(body.get("metadata"), Mapping) and body["metadata"]:
                self.patch_item(copy["id"], {"metadata": body["metadata"]}, False)
            return self._command("CloneItem", {"returnedModelId": [copy["id"]]})

    def clone_dataset(self, dataset_id: str, body: Mapping[str, Any]) -> dict:
        params = body.get("cloneDatasetParams") if isinstance(body.get("cloneDatasetParams"), Mapping) else {}
        with self.lock:
            source = self._get("datasets", dataset_id)
            if params.get("targetDatasetId"):
                target = self._get("datasets", params["targetDatasetId"])["id"]
            else:
                name = body.get("name")
                if not isinstance(name, str) or not name:
                    raise ApiError(400, "dataset clone needs the new dataset 'name'")
                created = self.create_dataset({"name": name, "projects": list(source["projects"])})
                target = created["id"]
                # the clone keeps the source's recipe (labels), as the platform's clone does
                recipes = source.get("metadata", {}).get("system", {}).get("recipes", [])
                self.tables["datasets"][target]["metadata"]["system"]["recipes"] = list(recipes)
            query = {"filter": body.get("filter", {}).get("filter", body.get("filter")) or {}}
            directory = (params.get("targetDirectory") or "/").rstrip("/")
            for item_id in self._task_item_ids(dataset_id, query):
                item = self.tables["items"][item_id]
                self._copy_item(
                    item,
                    target,
                    f"{directory}{item['filename']}",
                    params.get("withMetadata", True),
                    params.get("withItemsAnnotations", True),
                )
            return self._command("CloneDataset", {"returnedModelId": target})

    def export_dataset(self, dataset_id: str, body: Mapping[str, Any]) -> dict:
        items_query = body.get("itemsQuery") if isinstance(body.get("itemsQuery"), Mapping) else {}
        include = bool((body.get("annotations") or {}).get("include", False))
        with self.lock:
            dataset = self._get("datasets", dataset_id)
            query = {"filter": items_query.get("filter") or {}}
            if items_query.get("join"):
                query["join"] = items_query["join"]
            documents = []
            for item_id in self._task_item_ids(dataset_id, query):
                document = clone(self.tables["items"][item_id])
                if include:
                    document["annotations"] = [
                        clone(self.tables["annotations"][i]) for i in self.item_annotations.get(item_id, [])
                    ]
                documents.append(document)
            project_id = dataset["projects"][0]
            binaries = self.list_datasets(project_id=project_id, name="Binaries")
            binaries_id = (
                binaries[0]["id"]
                if binaries
                else self.create_dataset({"name": "Binaries", "projects": [project_id]})["id"]
            )
            export_id = self.ids.new()
            export, _ = self._put_item(
                binaries_id,
                f"/.exports/{dataset_id}/{export_id}.json",
                json.dumps(documents).encode("utf-8"),
                {"system": {"exportedDatasetId": dataset_id}},
                "overwrite",
                None,
            )
            export["hidden"] = True
            return self._command("ExportDatasetAsJson", {"outputItemId": export["id"], "datasetId": dataset_id})
