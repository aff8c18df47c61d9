"""Start-node triggers of an installed pipeline: pure functions over the pipeline JSON.

``startNodes[].trigger`` becomes a live trigger only at install (dtlpy ``repositories/
triggers.py``: "The trigger will not create until pipeline is install"). An ``Event`` trigger on
``Item`` / ``Created`` starts a cycle for an item created in the start node's dataset (its
``metadata.datasetId`` or ``variableDataset``; any dataset of the project for a node without
one) that matches the trigger's ``filter`` (a dict, or the JSON string dtlpy's
``node.add_trigger`` stores); a ``Cron`` trigger starts a cycle at each minute its
``spec.cron`` matches on the platform's clock. Sources: PIPELINE_FACTS.md section 3 and
emulator/README.md, "Pipelines".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from emulator import dql
from emulator.engine.clock import parse_cron
from emulator.engine.routing import variable_value


class TriggerError(ValueError):
    """A start node's trigger that cannot be installed (the message names the start node)."""


@dataclass(frozen=True)
class Trigger:
    """One live trigger: the node it starts at and what fires it."""

    node_id: str
    kind: str  # "Event" or "Cron"
    resource: str | None = None
    actions: tuple[str, ...] = ()
    filter: Mapping[str, Any] | None = None
    cron: str | None = None


def _filter_of(spec: Mapping[str, Any], where: str) -> dict | None:
    raw = spec.get("filter")
    if raw in (None, "", {}):
        return None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise TriggerError(f"{where}.spec.filter: {raw[:80]!r} is not a JSON DQL filter") from None
    if not isinstance(raw, Mapping):
        raise TriggerError(f"{where}.spec.filter: must be a DQL filter object")
    if "filter" in raw and len(raw) <= 2:
        raw = raw["filter"]
    try:
        dql.compile_filter(raw)
    except dql.DQLError as error:
        raise TriggerError(f"{where}.spec.filter: invalid DQL: {error}") from None
    return dict(raw)


def pipeline_triggers(pipeline: Mapping[str, Any]) -> list[Trigger]:
    """The triggers of the pipeline's ``startNodes`` (checked: a bad cron or filter is refused).

    Example
    -------
    >>> p = {"startNodes": [{"nodeId": "a", "type": "root", "trigger": {"type": "Event",
    ...      "spec": {"resource": "Item", "actions": ["Created"], "filter": {"type": "file"}}}},
    ...      {"nodeId": "b", "type": "trigger", "trigger": {"type": "Cron", "spec": {"cron": "0 9 * * 1"}}}]}
    >>> [(t.node_id, t.kind) for t in pipeline_triggers(p)]
    [('a', 'Event'), ('b', 'Cron')]
    """
    triggers = []
    for position, start in enumerate(pipeline.get("startNodes") or []):
        trigger = start.get("trigger") if isinstance(start, Mapping) else None
        if not trigger:
            continue
        where = f"startNodes[{position}].trigger"
        spec = trigger.get("spec") or {}
        kind = trigger.get("type")
        if kind == "Event":
            actions = spec.get("actions") or ["Created"]
            triggers.append(
                Trigger(
                    node_id=start["nodeId"],
                    kind="Event",
                    resource=spec.get("resource", "Item"),
                    actions=tuple(actions if isinstance(actions, list) else [actions]),
                    filter=_filter_of(spec, where),
                )
            )
        elif kind == "Cron":
            try:
                parse_cron(spec.get("cron"))
            except ValueError as error:
                raise TriggerError(f"{where}.spec.cron: {error}") from None
            triggers.append(Trigger(node_id=start["nodeId"], kind="Cron", cron=spec["cron"]))
        else:
            raise TriggerError(f"{where}.type: {kind!r} is not 'Event' or 'Cron' (dtlpy TriggerType)")
    return triggers


def node_dataset_id(pipeline: Mapping[str, Any], node: Mapping[str, Any]) -> str | None:
    """The dataset a node names: ``metadata.datasetId`` or the value of ``metadata.variableDataset``.

    Example
    -------
    >>> node = {"metadata": {"variableDataset": "Raw Dataset"}}
    >>> node_dataset_id({"variables": [{"name": "Raw Dataset", "value": "d1"}]}, node)
    'd1'
    """
    metadata = node.get("metadata") or {}
    if metadata.get("datasetId"):
        return metadata["datasetId"]
    if metadata.get("variableDataset"):
        return variable_value(pipeline.get("variables") or [], metadata["variableDataset"])
    return None


def item_event_starts(pipeline: Mapping[str, Any], item: Mapping[str, Any], action: str = "Created") -> list[str]:
    """The start node ids an item event (``Item`` / ``action``) fires in an installed pipeline.

    Example
    -------
    >>> p = {"nodes": [{"id": "a", "metadata": {"datasetId": "d1"}}], "startNodes": [{"nodeId": "a",
    ...      "trigger": {"type": "Event", "spec": {"resource": "Item", "actions": ["Created"],
    ...      "filter": {"$and": [{"hidden": False}, {"type": "file"}]}}}}]}
    >>> item_event_starts(p, {"datasetId": "d1", "hidden": False, "type": "file"})
    ['a']
    >>> item_event_starts(p, {"datasetId": "d2", "hidden": False, "type": "file"})
    []
    """
    nodes = {n.get("id"): n for n in pipeline.get("nodes") or []}
    starts = []
    for trigger in pipeline_triggers(pipeline):
        if trigger.kind != "Event" or trigger.resource != "Item" or action not in trigger.actions:
            continue
        node = nodes.get(trigger.node_id) or {}
        dataset_id = node_dataset_id(pipeline, node)
        if dataset_id is not None and item.get("datasetId") != dataset_id:
            continue
        if trigger.filter is not None and not dql.matches(item, trigger.filter):
            continue
        starts.append(trigger.node_id)
    return starts


def cron_starts(pipeline: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(node id, cron expression)`` of the pipeline's cron triggers.

    Example
    -------
    >>> cron_starts({"startNodes": [{"nodeId": "b", "trigger": {"type": "Cron", "spec": {"cron": "0 9 * * 1"}}}]})
    [('b', '0 9 * * 1')]
    """
    return [(t.node_id, t.cron) for t in pipeline_triggers(pipeline) if t.kind == "Cron"]
