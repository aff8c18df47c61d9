"""Pipelines (``/pipelines``); executions are in ``store/services.py``.

A pipeline is created from its JSON, its graph checked (unique node ids, connections and start
nodes naming existing nodes and ports, unique variable names), queried, read, updated,
installed / paused and deleted. Sources and assumptions: emulator/README.md, "Sources by module".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.store.base import ApiError, StoreBase, clone, now_iso, patch_of


def _ports(node: Mapping[str, Any], side: str) -> set[str]:
    return {p.get("portId") for p in node.get(side) or [] if isinstance(p, Mapping)}


def check_pipeline_graph(pipeline: Mapping[str, Any]) -> None:
    """Refuse (400 naming the field) a pipeline whose graph does not hold together.

    Example
    -------
    >>> check_pipeline_graph({"nodes": [{"id": "a", "inputs": [], "outputs": []}], "connections": []})
    >>> check_pipeline_graph({"nodes": [], "connections": [{"src": {"nodeId": "x"}, "tgt": {"nodeId": "y"}}]})
    Traceback (most recent call last):
    ...
    emulator.store.base.ApiError: pipeline connections[0].src.nodeId: 'x' is not a node id
    """
    nodes = pipeline.get("nodes") or []
    if not isinstance(nodes, list):
        raise ApiError(400, "pipeline nodes: must be a list")
    by_id: dict[str, Mapping[str, Any]] = {}
    for position, node in enumerate(nodes):
        if not isinstance(node, Mapping) or not isinstance(node.get("id"), str) or not node["id"]:
            raise ApiError(400, f"pipeline nodes[{position}]: needs an 'id'")
        if node["id"] in by_id:
            raise ApiError(400, f"pipeline nodes[{position}].id: {node['id']!r} is repeated")
        by_id[node["id"]] = node
    connections = pipeline.get("connections") or []
    if not isinstance(connections, list):
        raise ApiError(400, "pipeline connections: must be a list")
    for position, connection in enumerate(connections):
        for end, side in (("src", "outputs"), ("tgt", "inputs")):
            ref = connection.get(end) if isinstance(connection, Mapping) else None
            field = f"pipeline connections[{position}].{end}"
            if not isinstance(ref, Mapping):
                raise ApiError(400, f"{field}: needs {{'nodeId', 'portId'}}")
            node = by_id.get(ref.get("nodeId"))
            if node is None:
                raise ApiError(400, f"{field}.nodeId: {ref.get('nodeId')!r} is not a node id")
            if "portId" in ref and ref["portId"] not in _ports(node, side):
                raise ApiError(400, f"{field}.portId: {ref['portId']!r} is not an {side[:-1]} port of that node")
    for position, start in enumerate(pipeline.get("startNodes") or []):
        node_id = start.get("nodeId") if isinstance(start, Mapping) else None
        if node_id not in by_id:
            raise ApiError(400, f"pipeline startNodes[{position}].nodeId: {node_id!r} is not a node id")
    names: set[str] = set()
    for position, variable in enumerate(pipeline.get("variables") or []):
        name = variable.get("name") if isinstance(variable, Mapping) else None
        if not isinstance(name, str) or not name:
            raise ApiError(400, f"pipeline variables[{position}]: needs a 'name'")
        if name in names:
            raise ApiError(400, f"pipeline variables[{position}].name: {name!r} is repeated")
        names.add(name)


class PipelinesMixin(StoreBase):
    # ------------------------------------------------------------------ pipelines
    def create_pipeline(self, body: Mapping[str, Any]) -> dict:
        if not isinstance(body, Mapping):
            raise ApiError(400, "pipeline body must be a JSON object")
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise ApiError(400, "pipeline 'name' is required")
        check_pipeline_graph(body)
        with self.lock:
            project_id = body.get("projectId")
            self._get("projects", project_id)
            for other in self.tables["pipelines"].values():
                if other["name"] == name and other.get("projectId") == project_id:
                    raise ApiError(409, f"a pipeline named {name!r} already exists in the project")
            pipeline_id = self.ids.new()
            pipeline = self._base("pipelines", pipeline_id)
            pipeline.update(
                {
                    "connections": [],
                    "startNodes": [],
                    "variables": [],
                    "settings": {},
                    "orgId": "emulator-org",
                    "status": "Created",  # dtlpy entities/pipeline.py CompositionStatus.CREATED
                }
            )
            pipeline.update(patch_of(body, ("id", "url", "createdAt", "creator", "compositionId"), "pipeline"))
            pipeline["compositionId"] = None
            self.tables["pipelines"][pipeline_id] = pipeline
            return clone(pipeline)

    def get_pipeline(self, pipeline_id: str) -> dict:
        return self.get("pipelines", pipeline_id)

    def query_pipelines(self, body: Mapping[str, Any], encoded: bool = False) -> dict | bytes:
        """``POST /pipelines/query``: pipelines, or their cycles when ``resource`` is
        ``pipelineState`` (dtlpy ``FiltersResource.PIPELINE_EXECUTION``, sent by
        ``pipeline.pipeline_executions.list``)."""
        if isinstance(body, Mapping) and body.get("resource") == "pipelineState":
            return self.pipeline_runtime.query_cycles(body, encoded)
        table = self.tables["pipelines"]
        return self._query_table(body, list(table), table, encoded)

    def patch_pipeline(self, pipeline_id: str, body: Mapping[str, Any]) -> dict:
        patch = patch_of(body, ("id", "url", "createdAt", "creator", "projectId", "status"), "pipeline patch")
        with self.lock:
            pipeline = self._get("pipelines", pipeline_id)
            check_pipeline_graph({**pipeline, **patch})
            pipeline.update(patch)
            pipeline["updatedAt"] = now_iso()
            return clone(pipeline)

    def patch_pipeline_variables(self, pipeline_id: str, body: Mapping[str, Any]) -> dict:
        """``PATCH /pipelines/{id}/variables``: dtlpy ``repositories/pipelines.py``
        ``__update_variables`` sends the whole list ``{"variables": [...]}`` (each with its
        ``reference``) and reads the updated pipeline back."""
        variables = body.get("variables") if isinstance(body, Mapping) else None
        if not isinstance(variables, list) or not all(
            isinstance(v, Mapping) and isinstance(v.get("name"), str) and isinstance(v.get("type"), str)
            for v in variables
        ):
            raise ApiError(400, "variables must be a list of objects with a 'name' and a 'type'")
        names = [v["name"] for v in variables]
        if len(set(names)) != len(names):
            raise ApiError(400, "variable names must be unique in a pipeline")
        with self.lock:
            pipeline = self._get("pipelines", pipeline_id)
            pipeline["variables"] = clone(variables)
            pipeline["updatedAt"] = now_iso()
            return clone(pipeline)

    # ------------------------------------------------------------------ the runtime (emulator/engine/pipelines.py)
    @property
    def pipeline_runtime(self) -> Any:
        """The pipelines' runtime (installs, triggers, cycles), made on first use."""
        runtime = self.__dict__.get("_pipeline_runtime")
        if runtime is None:
            from emulator.engine.pipelines import PipelineRuntime

            with self.lock:
                runtime = self.__dict__.get("_pipeline_runtime")
                if runtime is None:
                    runtime = self.__dict__["_pipeline_runtime"] = PipelineRuntime(self)
        return runtime

    def on_item_created(self, item: Mapping[str, Any]) -> None:
        """Hook of the item store: an item was created (event triggers of installed pipelines)."""
        runtime = self.__dict__.get("_pipeline_runtime")
        if runtime is not None:
            runtime.on_item_created(item)

    def install_pipeline(self, pipeline_id: str, body: Mapping[str, Any]) -> dict:
        with self.lock:
            check_pipeline_graph(self._get("pipelines", pipeline_id))
        return self.pipeline_runtime.install(pipeline_id, body)

    def uninstall_pipeline(self, pipeline_id: str, body: Mapping[str, Any]) -> dict:
        return self.pipeline_runtime.pause(pipeline_id, body)

    def reset_pipeline(self, pipeline_id: str, body: Mapping[str, Any]) -> dict:
        return self.pipeline_runtime.reset(pipeline_id, body)

    def execute_pipeline(self, pipeline_id: str, body: Mapping[str, Any]) -> dict:
        return self.pipeline_runtime.execute(pipeline_id, body)

    def pipeline_statistics(self, pipeline_id: str) -> dict:
        return self.pipeline_runtime.statistics(pipeline_id)

    def get_pipeline_execution(self, cycle_id: str) -> dict:
        """``GET /pipelines/{pipelineId}/executions/{id}`` (cycle ids are unique platform-wide)."""
        return self.pipeline_runtime.get_cycle(cycle_id)

    def get_composition(self, composition_id: str) -> dict:
        return self.pipeline_runtime.composition(composition_id)

    def delete_pipeline(self, pipeline_id: str) -> None:
        with self.lock:
            self._get("pipelines", pipeline_id)
            del self.tables["pipelines"][pipeline_id]
