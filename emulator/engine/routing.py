"""Routing of a pipeline cycle: pure functions over the pipeline JSON (plain dicts).

Which connections fire for a node's outputs and the action it set, how an execution's output
maps onto output ports, how a list reaching a single-entity input fans out (several lists zip),
how a node's inputs bind to pipeline variables and static values, and how a task status maps to
a task node's action. No store, no threads: :mod:`emulator.engine.cycles` applies them. Sources
and assumptions: emulator/README.md, "Pipelines".
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from emulator import dql

#: Port types whose values are entity ids (dtlpy ``PackageInputType``).
ENTITY_TYPES = frozenset({"Item", "Dataset", "Model", "Annotation", "Task", "Assignment", "Package", "Service"})

#: Task statuses written differently by dtlpy (``item.update_status('complete')``) and by the
#: templates (``actions: ['completed', ...]``): both spellings pick the same connection
#: (an assumption; PIPELINE_FACTS.md section 4, "Task node").
STATUS_SPELLINGS = {
    "complete": "completed",
    "completed": "complete",
    "approve": "approved",
    "approved": "approve",
    "discard": "discarded",
    "discarded": "discard",
}


class RoutingError(ValueError):
    """A cycle cannot go on: the message says which node or port and why (the cycle fails)."""


def is_list_type(port_type: str | None) -> bool:
    """``True`` for a list port type such as ``Item[]``.

    Example
    -------
    >>> is_list_type("Item[]"), is_list_type("Item")
    (True, False)
    """
    return isinstance(port_type, str) and port_type.endswith("[]")


def entity_ref(value: Any) -> Any:
    """The id an entity value carries: an id string, an entity JSON (``id``) or a
    ``{"item_id": ...}``-style reference; anything else unchanged.

    Example
    -------
    >>> entity_ref({"item_id": "i1"}), entity_ref({"id": "m1", "name": "x"}), entity_ref("d1")
    ('i1', 'm1', 'd1')
    """
    if isinstance(value, Mapping):
        if isinstance(value.get("id"), str):
            return value["id"]
        refs = [v for k, v in value.items() if k.endswith("_id") and isinstance(v, str)]
        if len(refs) == 1:
            return refs[0]
    return value


def normalise(port_type: str | None, value: Any) -> Any:
    """``value`` as it travels on a port of ``port_type``: entity values become ids (lists of ids).

    Example
    -------
    >>> normalise("Item[]", [{"id": "a"}, "b"]), normalise("Json", {"id": "kept"})
    (['a', 'b'], {'id': 'kept'})
    """
    base = port_type[:-2] if is_list_type(port_type) else port_type
    if base not in ENTITY_TYPES:
        return value
    if isinstance(value, (list, tuple)):
        return [entity_ref(v) for v in value]
    return entity_ref(value)


def port_values(node: Mapping[str, Any], output: Any) -> dict[str, Any]:
    """An execution's ``output`` on the node's output ports: ``{portId: value}``.

    One output port takes the whole value; several take a list/tuple by position (inferred:
    PIPELINE_FACTS.md section 2, "Several outputs"). ``None`` on several ports sends ``None``
    on each.

    Example
    -------
    >>> node = {"outputs": [{"portId": "p1", "type": "Item"}, {"portId": "p2", "type": "Annotation[]"}]}
    >>> port_values(node, [{"id": "i"}, ["a1"]])
    {'p1': 'i', 'p2': ['a1']}
    """
    ports = [p for p in node.get("outputs") or [] if isinstance(p, Mapping)]
    if not ports:
        return {}
    if len(ports) == 1:
        port = ports[0]
        if isinstance(output, (list, tuple)) and len(output) == 1 and not is_list_type(port.get("type")):
            output = output[0]  # a one-value tuple (``return (model,)``) on a single port
        return {port["portId"]: normalise(port.get("type"), output)}
    if output is None:
        return {p["portId"]: None for p in ports}
    if not isinstance(output, (list, tuple)) or len(output) != len(ports):
        raise RoutingError(
            f"node {node.get('name')!r}: {len(ports)} output ports need a list of {len(ports)} values "
            f"(one per port, by position); got {type(output).__name__}"
        )
    return {p["portId"]: normalise(p.get("type"), v) for p, v in zip(ports, output, strict=True)}


def condition_filter(connection: Mapping[str, Any]) -> dict | None:
    """The DQL filter of a connection's ``condition`` (a JSON string; ``None`` when empty).

    Example
    -------
    >>> condition_filter({"condition": "{}"}) is None, condition_filter({"condition": '{"dir": "/a"}'})
    (True, {'dir': '/a'})
    """
    raw = connection.get("condition")
    if raw in (None, "", "{}"):
        return None
    parsed = json.loads(raw) if isinstance(raw, str) else raw
    if isinstance(parsed, Mapping) and "filter" in parsed and len(parsed) <= 2:
        parsed = parsed["filter"]
    return dict(parsed) if parsed else None


def passes_condition(connection: Mapping[str, Any], entity: Mapping[str, Any] | None) -> bool:
    """Does ``entity`` (the JSON of the value travelling, or ``None``) pass the connection's
    condition? No condition: always. A condition on a value that is not an entity: never
    (inferred: PIPELINE_FACTS.md section 2, "Connection condition").

    Example
    -------
    >>> c = {"condition": '{"dir": "/keep"}'}
    >>> passes_condition(c, {"dir": "/keep"}), passes_condition(c, {"dir": "/other"})
    (True, False)
    """
    query = condition_filter(connection)
    if query is None:
        return True
    if entity is None:
        return False
    return dql.matches(entity, query)


def firing_connections(
    connections: Sequence[Mapping[str, Any]], node_id: str, values: Mapping[str, Any], action: str | None
) -> list[Mapping[str, Any]]:
    """The connections leaving ``node_id`` that carry a value, given the action it set.

    A connection with an ``action`` fires only when it equals ``action``; one without an action
    always fires (test-verified and inferred: PIPELINE_FACTS.md section 2, "Action routing").
    A port the node sent nothing on (absent from ``values``) fires nothing.

    Example
    -------
    >>> cs = [{"src": {"nodeId": "n", "portId": "o"}, "tgt": {"nodeId": "a"}, "action": "first"},
    ...       {"src": {"nodeId": "n", "portId": "o"}, "tgt": {"nodeId": "b"}, "action": "second"},
    ...       {"src": {"nodeId": "n", "portId": "o"}, "tgt": {"nodeId": "c"}}]
    >>> [c["tgt"]["nodeId"] for c in firing_connections(cs, "n", {"o": "item"}, "first")]
    ['a', 'c']
    >>> [c["tgt"]["nodeId"] for c in firing_connections(cs, "n", {"o": "item"}, None)]
    ['c']
    """
    fired = []
    for connection in connections:
        src = connection.get("src") or {}
        if src.get("nodeId") != node_id or src.get("portId") not in values:
            continue
        wanted = connection.get("action")
        if wanted and wanted != action:
            continue
        fired.append(connection)
    return fired


def task_action(status: str, actions: Sequence[str]) -> str | None:
    """The task node action a status picks: the status itself when the node declares it, else
    its other spelling (``complete`` / ``completed``...), else ``None`` (the item stays).

    Example
    -------
    >>> task_action("complete", ["completed", "discard"]), task_action("approved", ["approve"])
    ('completed', 'approve')
    >>> task_action("rejected", ["completed"]) is None
    True
    """
    if status in actions:
        return status
    other = STATUS_SPELLINGS.get(status)
    return other if other in actions else None


def expand_inputs(ports: Sequence[Mapping[str, Any]], values: Mapping[str, Any], node_name: str = "") -> list[dict]:
    """The input sets a node runs with: one per element when a list reaches a single-entity
    input (fan-out); several such lists of the same length zip, of different lengths fail.

    Test-verified counts: PIPELINE_FACTS.md section 2, "List output -> single-item input".

    Parameters
    ----------
    ports : list of dict
        The node's input ports (``name``, ``type``).
    values : dict
        ``{port name: value}`` of what reached the node.

    Example
    -------
    >>> ports = [{"name": "item", "type": "Item"}, {"name": "cfg", "type": "Json"}]
    >>> expand_inputs(ports, {"item": ["a", "b"], "cfg": {"k": 1}})
    [{'item': 'a', 'cfg': {'k': 1}}, {'item': 'b', 'cfg': {'k': 1}}]
    >>> expand_inputs(ports, {"item": "a", "cfg": [1]})
    [{'item': 'a', 'cfg': [1]}]
    """
    by_name = {p.get("name"): p for p in ports if isinstance(p, Mapping)}
    spread = {
        name: list(value)
        for name, value in values.items()
        if isinstance(value, (list, tuple))
        and name in by_name
        and not is_list_type(by_name[name].get("type"))
        and by_name[name].get("type") in ENTITY_TYPES
    }
    if not spread:
        return [dict(values)]
    lengths = {len(v) for v in spread.values()}
    if len(lengths) > 1:
        raise RoutingError(
            f"node {node_name!r}: list inputs {sorted(spread)} have different lengths {sorted(lengths)}; "
            "lists reaching single inputs must be of one length (they are zipped)"
        )
    (length,) = lengths
    return [{**values, **{name: spread[name][i] for name in spread}} for i in range(length)]


def bound_inputs(node: Mapping[str, Any], variables: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The inputs a node takes from the pipeline itself: ports with a ``variableName`` get the
    variable's current value, ports with a ``defaultValue`` that value (PIPELINE_FACTS.md
    section 3, "Node inputs come from 3 places").

    Example
    -------
    >>> node = {"inputs": [{"name": "m", "variableName": "Best Model"}, {"name": "k", "defaultValue": 3}]}
    >>> bound_inputs(node, [{"name": "Best Model", "value": "m1"}])
    {'m': 'm1', 'k': 3}
    """
    by_name = {v.get("name"): v for v in variables if isinstance(v, Mapping)}
    bound: dict[str, Any] = {}
    for port in node.get("inputs") or []:
        if not isinstance(port, Mapping):
            continue
        name = port.get("variableName")
        if name:
            if name not in by_name:
                raise RoutingError(
                    f"node {node.get('name')!r} input {port.get('name')!r}: variable {name!r} is not "
                    "a variable of the pipeline"
                )
            bound[port["name"]] = normalise(port.get("type"), by_name[name].get("value"))
        elif "defaultValue" in port and port["defaultValue"] is not None:
            bound[port["name"]] = port["defaultValue"]
    return bound


def variable_value(variables: Sequence[Mapping[str, Any]], name: str | None) -> Any:
    """The current value of the variable ``name`` (``None`` when absent or unnamed).

    Example
    -------
    >>> variable_value([{"name": "Raw Dataset", "value": "d1"}], "Raw Dataset")
    'd1'
    """
    for variable in variables:
        if isinstance(variable, Mapping) and variable.get("name") == name:
            return entity_ref(variable.get("value"))
    return None


def connected_input_names(pipeline: Mapping[str, Any], node: Mapping[str, Any]) -> set[str]:
    """Names of the node's input ports some connection feeds (the node waits for each of them).

    Example
    -------
    >>> node = {"id": "n", "inputs": [{"portId": "p", "name": "item"}, {"portId": "q", "name": "x"}]}
    >>> connected_input_names({"connections": [{"tgt": {"nodeId": "n", "portId": "p"}}]}, node)
    {'item'}
    """
    port_names = {p.get("portId"): p.get("name") for p in node.get("inputs") or [] if isinstance(p, Mapping)}
    return {
        port_names[c["tgt"]["portId"]]
        for c in pipeline.get("connections") or []
        if (c.get("tgt") or {}).get("nodeId") == node.get("id") and (c.get("tgt") or {}).get("portId") in port_names
    }
