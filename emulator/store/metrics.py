"""Model metrics (``/ml/metrics``): samples ``{figure, legend, data: {x, y}, modelId, datasetId}``
published in bulk for existing models and queried with DQL, in publish order."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.store.base import ApiError, StoreBase, clone, now_iso


class MetricsMixin(StoreBase):
    def publish_metrics(self, body: Any) -> list[dict]:
        samples = body if isinstance(body, list) else [body]
        for position, sample in enumerate(samples):
            if not isinstance(sample, Mapping):
                raise ApiError(400, f"metric sample [{position}] must be an object")
            if not sample.get("modelId"):
                raise ApiError(400, f"metric sample [{position}] needs 'modelId'")
            data = sample.get("data")
            if not isinstance(data, Mapping) or "x" not in data or "y" not in data:
                raise ApiError(400, f"metric sample [{position}] needs 'data': {{'x': ..., 'y': ...}}")
        with self.lock:
            for sample in samples:
                self._get("models", sample["modelId"])
            created = []
            for sample in samples:
                metric_id = self.ids.new()
                doc = {"id": metric_id, "createdAt": now_iso(), **clone(dict(sample))}
                self.tables["metrics"][metric_id] = doc
                self.metric_ids.append(metric_id)
                created.append(clone(doc))
            return created

    def query_metrics(self, body: Mapping[str, Any], encoded: bool = False) -> dict | bytes:
        return self._query_table(body, self.metric_ids, self.tables["metrics"], encoded)
