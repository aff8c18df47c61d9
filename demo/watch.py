"""What the platform recorded, read back with dtlpy for the report: the cycles of each installed
pipeline (``pipeline.pipeline_executions``) and their node executions (``project.executions``),
tallied per node, in the template's order.

:func:`tally` is pure (plain dicts); the two ``list_*`` functions are the edge.
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: functions whose execution lasts while an item waits (task nodes) or that the platform does itself
WAITING_FUNCTIONS = frozenset({"move_to_task", "clone_item", "update_variable"})


@dataclass(frozen=True)
class NodeTally:
    """One node over a set of cycles: its statuses in them and the executions it ran."""

    node: str
    statuses: Mapping[str, int]  # node status in the cycles -> count (pending left out)
    executions: Mapping[str, int]  # execution status -> count
    functions: tuple[str, ...] = ()
    seconds: float = 0.0  # summed execution run time (in-progress -> last status; queueing not counted)

    def line(self) -> str:
        """``Predict: executions predict_items success 300 (12.0 s run time) node success 300``."""
        parts = [f"{self.node}:"]
        if self.executions:
            runs = ", ".join(f"{k} {v}" for k, v in sorted(self.executions.items()))
            waited = set(self.functions) <= WAITING_FUNCTIONS  # a task's time is the people's, not a run's
            timing = "" if waited else f" ({self.seconds:.1f} s run time)"
            parts.append(f"executions {'/'.join(self.functions)} {runs}{timing}")
        parts.append("node " + ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items())))
        return " ".join(parts)


@dataclass(frozen=True)
class BranchRecord:
    """The cycles one arm started in one round for one branch, as the platform recorded them."""

    arm: str
    round: int
    branch: str  # "items" (Raw Dataset trigger) or "model" (cron)
    cycles: Mapping[str, int]  # cycle status -> count
    nodes: tuple[NodeTally, ...] = field(default_factory=tuple)

    def lines(self) -> list[str]:
        """The record as text, one line per node."""
        head = ", ".join(f"{k} {v}" for k, v in sorted(self.cycles.items()))
        out = [f"{self.arm} round {self.round}, {self.branch} branch: {sum(self.cycles.values())} cycles ({head})"]
        return out + [f"    {node.line()}" for node in self.nodes]


def _seconds(execution: Mapping[str, Any]) -> float:
    """Run time: from ``in-progress`` to the last status (time queued is not counted)."""
    log = [s for s in execution.get("statusLog") or [] if s.get("timestamp")]
    started = [s["timestamp"] for s in log if s.get("status") == "in-progress"]
    if not started or len(log) < 2:
        return 0.0
    parse = [datetime.datetime.fromisoformat(str(s).replace("Z", "+00:00")) for s in (started[0], log[-1]["timestamp"])]
    return max(0.0, (parse[1] - parse[0]).total_seconds())


def tally(
    cycles: Sequence[Mapping[str, Any]], executions: Iterable[Mapping[str, Any]], node_order: Sequence[str]
) -> tuple[dict[str, int], tuple[NodeTally, ...]]:
    """Cycle statuses and one :class:`NodeTally` per node that ran, in ``node_order``.

    ``cycles`` are pipeline-execution JSON (``status``, ``nodes`` with ``id`` / ``name`` / ``status``);
    ``executions`` are execution JSON (``pipeline.executionId`` / ``nodeId``, ``functionName``,
    ``latestStatus.status``, ``statusLog``); node ids are matched through the cycles' nodes.

    Examples
    --------
    >>> cycle = {"id": "c", "status": "success", "nodes": [{"id": "n", "name": "Gate", "status": "success"}]}
    >>> run = {"pipeline": {"executionId": "c", "nodeId": "n"}, "functionName": "score_item",
    ...        "latestStatus": {"status": "success"}, "statusLog": []}
    >>> statuses, nodes = tally([cycle], [run], ["Gate"])
    >>> statuses, nodes[0].line()
    ({'success': 1}, 'Gate: executions score_item success 1 (0.0 s run time) node success 1')
    """
    ids = {c["id"] for c in cycles}
    names: dict[str, str] = {}
    statuses: dict[str, Counter] = {}
    for cycle in cycles:
        for node in cycle.get("nodes") or []:
            node_id = node.get("id") or node.get("nodeId")
            name = node.get("name") or node.get("nodeName") or node_id
            names[node_id] = name
            if node.get("status") and node.get("status") != "pending":
                statuses.setdefault(name, Counter())[node["status"]] += 1
    runs: dict[str, Counter] = {}
    functions: dict[str, dict] = {}
    seconds: dict[str, float] = {}
    for execution in executions:
        ref = execution.get("pipeline") or {}
        if ref.get("executionId") not in ids:
            continue
        name = names.get(ref.get("nodeId"), ref.get("nodeId"))
        runs.setdefault(name, Counter())[(execution.get("latestStatus") or {}).get("status", "unknown")] += 1
        functions.setdefault(name, {})[execution.get("functionName", "?")] = None
        seconds[name] = seconds.get(name, 0.0) + _seconds(execution)
    order = list(node_order) + sorted(set(statuses) | set(runs) - set(node_order), key=str)
    nodes = tuple(
        NodeTally(n, dict(statuses.get(n, {})), dict(runs.get(n, {})), tuple(functions.get(n, {})), seconds.get(n, 0.0))
        for n in dict.fromkeys(order)
        if n in statuses or n in runs
    )
    return dict(Counter(c.get("status", "unknown") for c in cycles)), nodes


# ------------------------------------------------------------------------------------- edge
def list_cycles(pipeline) -> list[dict]:
    """Every cycle of ``pipeline`` as JSON (``pipeline.pipeline_executions.list()``, paged)."""
    return [cycle.to_json() for cycle in pipeline.pipeline_executions.list().all()]


def list_executions(project, pipeline_id: str) -> list[dict]:
    """Every execution the pipeline's nodes ran, as JSON (``project.executions.list`` filtered on
    ``pipeline.id``, pages of 1,000)."""
    import dtlpy as dl

    filters = dl.Filters(resource=dl.FiltersResource.EXECUTION, field="pipeline.id", values=pipeline_id)
    filters.page_size = 1000
    return [execution.to_json() for execution in project.executions.list(filters=filters).all()]
