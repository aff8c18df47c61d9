"""Task nodes: the annotation / QA task a task node creates at install, and the dataset it is on.

Install creates one task per task node, on the node's dataset, listed under the project's tasks
(PIPELINE_FACTS.md section 1, "What install() does"; Dataloop docs "Labeling nodes"). The task's
body comes from the node's ``metadata`` (dtlpy ``entities/node.py`` ``TaskNode``: ``datasetId,
recipeId, taskOwner, taskType, workload, priority, dueDate, batchSize, maxBatchWorkload``) and
its ``availableActions`` from the output port's ``actions``. An item that reaches the node is
added to the task; the status an annotator sets picks the action it leaves by
(:func:`emulator.engine.routing.task_action`). Pure functions; the runtime applies them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.engine.triggers import node_dataset_id


def node_actions(node: Mapping[str, Any]) -> list[str]:
    """The actions of a task node's output port (dtlpy defaults: ``complete`` / ``approve`` and
    ``discard``, by task type, when the port declares none).

    Example
    -------
    >>> node_actions({"metadata": {"taskType": "qa"}, "outputs": [{"name": "item"}]})
    ['approve', 'discard']
    """
    for port in node.get("outputs") or []:
        if isinstance(port, Mapping) and port.get("actions"):
            return list(port["actions"])
    task_type = (node.get("metadata") or {}).get("taskType", "annotation")
    return ["approve", "discard"] if task_type == "qa" else ["complete", "discard"]


def task_dataset_id(pipeline: Mapping[str, Any], node: Mapping[str, Any]) -> str | None:
    """The dataset a task node's task is on: the node's own ``metadata.datasetId`` /
    ``variableDataset``, else the dataset of the nearest storage node upstream (an assumption for
    templates whose task nodes name no dataset), else ``None`` (the task is created on the
    dataset of the first item that reaches the node).

    Example
    -------
    >>> p = {"variables": [], "nodes": [{"id": "s", "type": "storage", "metadata": {"datasetId": "d"}},
    ...      {"id": "t", "type": "task", "metadata": {}}],
    ...      "connections": [{"src": {"nodeId": "s"}, "tgt": {"nodeId": "t"}}]}
    >>> task_dataset_id(p, p["nodes"][1])
    'd'
    """
    own = node_dataset_id(pipeline, node)
    if own:
        return own
    nodes = {n.get("id"): n for n in pipeline.get("nodes") or []}
    seen = {node.get("id")}
    frontier = [node.get("id")]
    while frontier:
        upstream = []
        for target in frontier:
            for connection in pipeline.get("connections") or []:
                if (connection.get("tgt") or {}).get("nodeId") != target:
                    continue
                source_id = (connection.get("src") or {}).get("nodeId")
                if source_id in seen or source_id not in nodes:
                    continue
                seen.add(source_id)
                source = nodes[source_id]
                if source.get("type") == "storage":
                    found = node_dataset_id(pipeline, source)
                    if found:
                        return found
                upstream.append(source_id)
        frontier = upstream
    return None


def task_body(pipeline: Mapping[str, Any], node: Mapping[str, Any], dataset_id: str) -> dict:
    """The ``POST /annotationtasks`` body of a task node's task (no items yet).

    Example
    -------
    >>> body = task_body({"name": "P", "projectId": "pr"}, {"id": "n", "name": "Labeling",
    ...                  "metadata": {"taskType": "qa"}, "outputs": [{"actions": ["approved", "discard"]}]}, "d")
    >>> body["name"], body["spec"], [a["action"] for a in body["availableActions"]]
    ('P - Labeling', {'type': 'qa'}, ['approved', 'discard'])
    """
    metadata = node.get("metadata") or {}
    body: dict[str, Any] = {
        "name": f"{pipeline.get('name')} - {node.get('name')}",
        "projectId": pipeline.get("projectId"),
        "datasetId": dataset_id,
        "spec": {"type": metadata.get("taskType", "annotation")},
        "query": {"filter": {"id": {"$in": []}}},
        "availableActions": [{"action": a, "displayName": a} for a in node_actions(node)],
        "metadata": {"system": {"pipelineId": pipeline.get("id"), "nodeId": node.get("id")}},
    }
    for key in ("recipeId", "taskOwner", "priority", "dueDate", "workload", "batchSize", "maxBatchWorkload"):
        if metadata.get(key) is not None:
            body[key] = metadata[key]
    return body
