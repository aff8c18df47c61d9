"""Feature sets (``/features/sets``) and feature vectors (``/features/vectors``): a set names a
vector space of one ``size`` over one entity type; a vector holds one entity's values in a set.
Sources and assumptions: emulator/README.md, "Sources by module".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.store.base import ApiError, StoreBase, clone

ENTITY_TYPES = ("item", "annotation", "dataset")  # dtlpy entities/feature_set.py FeatureEntityType


def _scoped(table: dict[str, dict], body: Mapping[str, Any], key: str) -> list[str]:
    """Ids of the documents in the query's ``context.projects`` (all when there is none)."""
    context = body.get("context") if isinstance(body, Mapping) else None
    projects = context.get("projects") if isinstance(context, Mapping) else None
    if not projects:
        return list(table)
    return [i for i, doc in table.items() if doc.get(key) in projects]


class FeaturesMixin(StoreBase):
    def create_feature_set(self, body: Mapping[str, Any]) -> list[dict]:
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise ApiError(400, "feature set 'name' is required")
        size = body.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ApiError(400, f"feature set 'size': {size!r} is not a positive integer")
        entity_type = body.get("entityType")
        if entity_type not in ENTITY_TYPES:
            raise ApiError(400, f"feature set 'entityType': {entity_type!r} is not one of {list(ENTITY_TYPES)}")
        project_id = body.get("project")
        with self.lock:
            self._get("projects", project_id)
            if body.get("modelId") is not None:
                self._get("models", body["modelId"])
            for other in self.tables["feature_sets"].values():
                if other["name"] == name and other["project"] == project_id:
                    raise ApiError(409, f"a feature set named {name!r} already exists in the project")
            set_id = self.ids.new()
            feature_set = self._base("features/sets", set_id)
            feature_set.update(
                {
                    "name": name,
                    "size": size,
                    "type": body.get("type"),
                    "entityType": entity_type,
                    "project": project_id,
                    "modelId": body.get("modelId"),
                    "org": body.get("org"),
                    "tags": clone(body.get("tags") or []),
                }
            )
            self.tables["feature_sets"][set_id] = feature_set
            return [clone(feature_set)]

    def get_feature_set(self, set_id: str) -> dict:
        return self.get("feature_sets", set_id)

    def query_feature_sets(self, body: Mapping[str, Any], encoded: bool = False) -> dict | bytes:
        table = self.tables["feature_sets"]
        return self._query_table(body, _scoped(table, body, "project"), table, encoded)

    def delete_feature_set(self, set_id: str) -> None:
        with self.lock:
            self._get("feature_sets", set_id)
            for vector_id in [i for i, v in self.tables["features"].items() if v["featureSetId"] == set_id]:
                del self.tables["features"][vector_id]
            del self.tables["feature_sets"][set_id]

    def create_features(self, body: Any) -> list[dict]:
        entries = body if isinstance(body, list) else [body]
        with self.lock:
            checked = []
            for position, entry in enumerate(entries):
                if not isinstance(entry, Mapping):
                    raise ApiError(400, f"feature vector [{position}] must be an object")
                feature_set = self._get("feature_sets", entry.get("featureSetId"))
                value = entry.get("value")
                if not isinstance(value, list) or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
                ):
                    raise ApiError(400, f"feature vector [{position}] 'value' must be a list of numbers")
                if len(value) != feature_set["size"]:
                    raise ApiError(
                        400,
                        f"feature vector [{position}] 'value' has {len(value)} numbers; "
                        f"feature set {feature_set['name']!r} has size {feature_set['size']}",
                    )
                entity_id = entry.get("entityId")
                entity_table = {"item": "items", "annotation": "annotations", "dataset": "datasets"}
                self._get(entity_table[feature_set["entityType"]], entity_id)
                checked.append((entry, feature_set))
            created = []
            for entry, feature_set in checked:
                vector_id = self.ids.new()
                vector = self._base("features/vectors", vector_id)
                vector.update(
                    {
                        "featureSetId": feature_set["id"],
                        "entityId": entry["entityId"],
                        "entityType": feature_set["entityType"],
                        "datasetId": entry.get("datasetId"),
                        "value": clone(entry["value"]),
                        "project": entry.get("project") or feature_set["project"],
                        "version": entry.get("version"),
                        "parentId": entry.get("parentId"),
                        "org": entry.get("org"),
                    }
                )
                self.tables["features"][vector_id] = vector
                created.append(clone(vector))
            return created

    def get_feature(self, vector_id: str) -> dict:
        return self.get("features", vector_id)

    def query_features(self, body: Mapping[str, Any], encoded: bool = False) -> dict | bytes:
        table = self.tables["features"]
        return self._query_table(body, _scoped(table, body, "project"), table, encoded)

    def delete_feature(self, vector_id: str) -> None:
        with self.lock:
            self._get("features", vector_id)
            del self.tables["features"][vector_id]
