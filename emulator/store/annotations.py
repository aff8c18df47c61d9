"""Annotations: uploaded onto an item as a list (box, polygon, segment, binary, class, point...
stored as sent), listed per item, updated (nested objects deep-merged) and deleted; an item's
``annotationsCount`` / ``annotated`` follow them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.store.base import ApiError, StoreBase, clone, deep_merge, insert_sorted, now_iso, patch_of, remove_sorted


class AnnotationsMixin(StoreBase):
    def create_annotations(self, item_id: str, body: Any) -> list[dict]:
        annotations = body if isinstance(body, list) else [body]
        for position, annotation in enumerate(annotations):
            if not isinstance(annotation, Mapping):
                raise ApiError(400, f"annotation [{position}] must be an object")
            if not isinstance(annotation.get("type"), str) or not annotation["type"]:
                raise ApiError(400, f"annotation [{position}] needs a 'type' (e.g. 'box')")
            if "label" in annotation and not isinstance(annotation["label"], str):
                raise ApiError(400, f"annotation [{position}] 'label' must be a string")
        with self.lock:
            item = self._get("items", item_id)
            index = self.indexes[item["datasetId"]]
            created = []
            for annotation in annotations:
                annotation_id = self.ids.new()
                doc = self._base("annotations", annotation_id)
                doc.update(patch_of(annotation, ("id", "url", "createdAt", "creator"), "annotation"))
                metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
                metadata.setdefault("system", {})
                if not isinstance(metadata["system"], dict):
                    metadata["system"] = {}
                doc["metadata"] = metadata
                doc.update(
                    {
                        "itemId": item_id,
                        "datasetId": item["datasetId"],
                        "item": f"{self.base_url}/items/{item_id}",
                        "dataset": f"{self.base_url}/datasets/{item['datasetId']}",
                        "label": doc.get("label", ""),
                        "attributes": doc.get("attributes", []),
                        "source": doc.get("source", "sdk"),
                        "hash": annotation_id,
                    }
                )
                doc.setdefault("coordinates", None)
                self.tables["annotations"][annotation_id] = doc
                insert_sorted(index.annotation_ids, annotation_id)
                self.item_annotations.setdefault(item_id, []).append(annotation_id)
                created.append(clone(doc))
            self._refresh_item_annotation_count(item)
            index.touch()
            return created

    def _refresh_item_annotation_count(self, item: dict) -> None:
        count = len(self.item_annotations.get(item["id"], []))
        item["annotationsCount"] = count
        item["annotated"] = count > 0

    def list_item_annotations(self, item_id: str) -> list[dict]:
        with self.lock:
            self._get("items", item_id)
            return [clone(self.tables["annotations"][i]) for i in self.item_annotations.get(item_id, [])]

    def get_annotation(self, annotation_id: str) -> dict:
        return self.get("annotations", annotation_id)

    def update_annotation(self, annotation_id: str, body: Mapping[str, Any], system: bool) -> dict:
        read_only = ("id", "url", "itemId", "datasetId", "createdAt", "creator", "item", "dataset")
        with self.lock:
            annotation, patch = self._patch_target(
                "annotations", annotation_id, body, read_only, system, "annotation update"
            )
            for key, value in patch.items():
                if isinstance(value, Mapping) and isinstance(annotation.get(key), dict):
                    deep_merge(annotation[key], value)
                else:
                    annotation[key] = value
            annotation["updatedAt"] = now_iso()
            self.indexes[annotation["datasetId"]].touch()
            return clone(annotation)

    def delete_annotation(self, annotation_id: str) -> None:
        with self.lock:
            annotation = self._get("annotations", annotation_id)
            index = self.indexes[annotation["datasetId"]]
            remove_sorted(index.annotation_ids, annotation_id)
            siblings = self.item_annotations.get(annotation["itemId"], [])
            if annotation_id in siblings:
                siblings.remove(annotation_id)
            del self.tables["annotations"][annotation_id]
            item = self.tables["items"].get(annotation["itemId"])
            if item is not None:
                self._refresh_item_annotation_count(item)
            index.touch()

    def annotations_of(self, dataset_id: str) -> list[dict]:
        with self.lock:
            index = self._index(dataset_id)
            return [clone(self.tables["annotations"][i]) for i in index.annotation_ids]
