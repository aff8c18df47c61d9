"""Pipelines: JSON documents made server-side (``LocalPlatform.make_context`` /
``create_pipeline``) and served by id, which is what ``dl.Context.pipeline`` / ``node`` read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.store.base import StoreBase, clone


class PipelinesMixin(StoreBase):
    def create_pipeline(self, body: Mapping[str, Any]) -> dict:
        with self.lock:
            pipeline_id = self.ids.new()
            pipeline = self._base("pipelines", pipeline_id)
            pipeline.update(clone(dict(body)))
            pipeline["id"] = pipeline_id
            self.tables["pipelines"][pipeline_id] = pipeline
            return clone(pipeline)

    def get_pipeline(self, pipeline_id: str) -> dict:
        return self.get("pipelines", pipeline_id)
