"""Pipeline executions ("cycles"): the JSON the platform answers and the bookkeeping behind it.

A cycle document has the fields dtlpy's ``PipelineExecution.from_json`` reads (``id,
pipelineId, status, createdAt, updatedAt, maxAttempts, creator, nodes[], executions{}``;
``nodes[]`` as ``PipelineExecutionNode``: ``id, name, type, namespace, status, ports, metadata,
projectId``; ``executions`` keyed by node id). :class:`CycleState` counts the node runs still
open (an execution running, an item waiting in a task): the cycle is ``in-progress`` while any
is open, then ``success``, or ``failed`` when a node failed (PIPELINE_FACTS.md section 1,
"Pipeline executions"). Node statuses: ``pending`` (not reached), ``in-progress``, ``success``,
``failed``. Built-in nodes (storage, task, updateVariable) run inside the platform's
``pipeline-utils`` service on Dataloop; here they are recorded as executions of that service name
so a cycle counts one execution per node run, as the behave tests count them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from emulator.engine.executions import new_execution, set_status, status_of
from emulator.store.base import CREATOR, clone, now_iso

#: dtlpy entities/pipeline_execution.py PipelineExecutionStatus values this platform writes.
CYCLE_STATUSES = ("pending", "in-progress", "success", "failed", "terminated")


@dataclass
class NodeRuns:
    """Runs of one node in one cycle: started, finished, failed."""

    started: int = 0
    done: int = 0
    failed: int = 0

    @property
    def status(self) -> str:
        if self.failed:
            return "failed"
        if self.started == 0:
            return "pending"
        return "in-progress" if self.done < self.started else "success"


@dataclass
class CycleState:
    """What the engine knows of a running cycle besides its JSON."""

    cycle_id: str
    pipeline_id: str
    open_runs: int = 0
    failed: bool = False
    runs: dict[str, NodeRuns] = field(default_factory=dict)
    #: arrivals of nodes fed by several connected inputs: node id -> {port name: value}
    joins: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def node(self, node_id: str) -> NodeRuns:
        return self.runs.setdefault(node_id, NodeRuns())

    def status(self) -> str:
        """``in-progress`` while a run is open; then ``failed`` or ``success``.

        Example
        -------
        >>> state = CycleState("c", "p")
        >>> state.open_runs = 1
        >>> state.status()
        'in-progress'
        """
        if self.open_runs > 0:
            return "in-progress"
        return "failed" if self.failed else "success"


def new_cycle(cycle_id: str, pipeline: Mapping[str, Any], base_url: str, inputs: Mapping[str, Any]) -> dict:
    """The JSON of a new cycle of ``pipeline`` (every node ``pending``).

    Example
    -------
    >>> cycle = new_cycle("c1", {"id": "p", "projectId": "pr", "nodes": [{"id": "n", "name": "N"}]}, "u", {})
    >>> cycle["status"], cycle["nodes"][0]["status"], cycle["executions"]
    ('pending', 'pending', {})
    """
    stamp = now_iso()
    return {
        "id": cycle_id,
        "url": f"{base_url}/pipelines/{pipeline['id']}/executions/{cycle_id}",
        "pipelineId": pipeline["id"],
        "projectId": pipeline.get("projectId"),
        "status": "pending",
        "createdAt": stamp,
        "updatedAt": stamp,
        "maxAttempts": 1,
        "creator": CREATOR,
        "input": clone(dict(inputs)),
        "nodes": [
            {
                "id": node.get("id"),
                "name": node.get("name"),
                "type": node.get("type"),
                "namespace": clone(node.get("namespace")),
                "status": "pending",
                "ports": clone((node.get("inputs") or []) + (node.get("outputs") or [])),
                "metadata": clone(node.get("metadata") or {}),
                "projectId": node.get("projectId") or pipeline.get("projectId"),
            }
            for node in pipeline.get("nodes") or []
        ],
        "executions": {},
    }


def sync_statuses(cycle: dict, state: CycleState) -> None:
    """Write the node and cycle statuses of ``state`` into the cycle JSON."""
    for node in cycle["nodes"]:
        runs = state.runs.get(node["id"])
        node["status"] = runs.status if runs is not None else "pending"
    cycle["status"] = state.status()
    if state.errors:
        cycle["errors"] = list(state.errors)
    cycle["updatedAt"] = now_iso()


def render(cycle: Mapping[str, Any], executions: Mapping[str, Mapping[str, Any]]) -> dict:
    """A copy of the cycle JSON whose ``executions`` hold the current execution JSONs (by id).

    Example
    -------
    >>> render({"executions": {"n": ["e1"]}}, {"e1": {"id": "e1", "status": "success"}})
    {'executions': {'n': [{'id': 'e1', 'status': 'success'}]}}
    """
    copy = clone(dict(cycle))
    copy["executions"] = {
        node_id: [clone(executions[e]) for e in ids if e in executions] for node_id, ids in cycle["executions"].items()
    }
    return copy


def builtin_execution(
    base: Mapping[str, Any], cycle: Mapping[str, Any], node: Mapping[str, Any], inputs: Mapping[str, Any]
) -> dict:
    """An ``in-progress`` execution of a built-in node (``pipeline-utils``: storage, task,
    updateVariable), shaped as every execution (:mod:`emulator.engine.executions`).

    Example
    -------
    >>> e = builtin_execution({"id": "e"}, {"id": "c", "pipelineId": "p", "projectId": "pr"},
    ...                       {"id": "n", "namespace": {"functionName": "clone_item"}}, {"item": "i"})
    >>> e["functionName"], e["latestStatus"]["status"], e["pipeline"], e["serviceName"]
    ('clone_item', 'in-progress', {'id': 'p', 'nodeId': 'n', 'executionId': 'c'}, 'pipeline-utils')
    """
    namespace = node.get("namespace") or {}
    service = {
        "name": namespace.get("serviceName") or "pipeline-utils",
        "packageName": namespace.get("packageName") or "pipeline-utils",
        "projectId": cycle.get("projectId"),
        "maxAttempts": 1,
    }
    pipeline = {"id": cycle["pipelineId"], "nodeId": node["id"], "executionId": cycle["id"]}
    execution = new_execution(
        base, service, namespace.get("functionName") or node.get("type"), inputs, pipeline=pipeline
    )
    execution["attempts"] = 1
    set_status(execution, "in-progress", percent=0)
    return execution


def finish_builtin(execution: dict, status: str, output: Any = None, action: str | None = None) -> None:
    """Mark a built-in execution ``status`` (``success`` / ``failed``) with its output and action."""
    execution["output"] = clone(output)
    execution["action"] = action
    set_status(execution, status, percent=100)


def statistics(pipeline_id: str, cycles: list[Mapping[str, Any]], executions: Mapping[str, Mapping]) -> dict:
    """``GET /pipelines/{id}/statistics``: counters of cycles by status and of node executions by
    node and status (dtlpy ``entities/pipeline.py`` ``PipelineStats``); averages are left 0.

    Example
    -------
    >>> stats = statistics("p", [{"status": "success", "executions": {"n": ["e"]}}], {"e": {"latestStatus": {"status": "success"}}})
    >>> stats["pipelineExecutionCounters"], stats["nodeExecutionsCounters"]
    ([{'status': 'success', 'count': 1}], [{'nodeId': 'n', 'statusCount': [{'status': 'success', 'count': 1}]}])
    """
    by_status: dict[str, int] = {}
    by_node: dict[str, dict[str, int]] = {}
    for cycle in cycles:
        by_status[cycle["status"]] = by_status.get(cycle["status"], 0) + 1
        for node_id, ids in cycle.get("executions", {}).items():
            counts = by_node.setdefault(node_id, {})
            for execution_id in ids:
                status = status_of(executions.get(execution_id) or {})
                counts[status] = counts.get(status, 0) + 1
    return {
        "pipelineId": pipeline_id,
        "pipelineExecutionCounters": [{"status": s, "count": c} for s, c in sorted(by_status.items())],
        "nodeExecutionsCounters": [
            {"nodeId": n, "statusCount": [{"status": s, "count": c} for s, c in sorted(counts.items())]}
            for n, counts in by_node.items()
        ],
        "pipelineExecutionStatistics": {"avgTimePerExecution": 0, "avgExecutionsPerDay": 0},
        "nodeExecutionStatistics": [],
    }
