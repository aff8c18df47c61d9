"""The pipeline template as a graph the demo can walk: nodes, ports, connections, actions, variables.

Pure functions over the template's JSON (``pipeline_configs/active_learning_pipeline.json``): which
node a connection leads to for an output and an action, the order a branch runs in (breadth first
along the connections, from a start node), which input a pipeline variable feeds, and a copy of the
template with the demo's dataset and model ids in its variables. No dtlpy, no platform: the
installed pipeline and the node calls are in :mod:`demo.pipeline_runner`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "pipeline_configs" / "active_learning_pipeline.json"


def load_template(path: str | Path = TEMPLATE_PATH) -> dict:
    """Read a pipeline template file.

    Examples
    --------
    >>> load_template()["name"] != ""
    True
    """
    return json.loads(Path(path).read_text(encoding="utf-8"))


def fill_variables(template: Mapping[str, Any], values: Mapping[str, Any]) -> dict:
    """A copy of ``template`` whose variables named in ``values`` carry those values.

    Raises ``ValueError`` naming a variable the template does not declare (the template is not
    modified).

    Examples
    --------
    >>> body = fill_variables(load_template(), {"Best Model": "m1"})
    >>> [v["value"] for v in body["variables"] if v["name"] == "Best Model"]
    ['m1']
    >>> fill_variables(load_template(), {"Best model": "m1"})
    Traceback (most recent call last):
    ...
    ValueError: variables: 'Best model' is not a variable of the template; one of 'Raw Dataset', ...
    """
    body = copy.deepcopy(dict(template))
    names = [v["name"] for v in body.get("variables", [])]
    for name in values:
        if name not in names:
            raise ValueError(
                f"variables: {name!r} is not a variable of the template; one of {', '.join(map(repr, names))}"
            )
    for variable in body.get("variables", []):
        if variable["name"] in values:
            variable["value"] = copy.deepcopy(values[variable["name"]])
    return body


def set_node_config(template: Mapping[str, Any], node_name: str, changes: Mapping[str, Any]) -> dict:
    """A copy of ``template`` whose node ``node_name`` has ``changes`` merged into its ``customNodeConfig``.

    Examples
    --------
    >>> body = set_node_config(load_template(), "Uncertainty Gate", {"threshold": 0.0})
    >>> TemplateGraph.from_json(body).node_named("Uncertainty Gate")["metadata"]["customNodeConfig"]["threshold"]
    0.0
    """
    body = copy.deepcopy(dict(template))
    matches = [n for n in body["nodes"] if n["name"] == node_name]
    if len(matches) != 1:
        raise ValueError(f"node_name: {node_name!r} names {len(matches)} nodes of the template; it must name one")
    config = matches[0].setdefault("metadata", {}).setdefault("customNodeConfig", {})
    config.update(copy.deepcopy(dict(changes)))
    return body


@dataclass(frozen=True)
class Edge:
    """One connection: an output port of ``source`` to an input port of ``target``, maybe for one action."""

    source: str
    source_port: str
    target: str
    target_port: str
    action: str | None


@dataclass(frozen=True)
class TemplateGraph:
    """Nodes (by id) and connections of a pipeline template or of an installed pipeline's JSON."""

    nodes: Mapping[str, Mapping[str, Any]]
    edges: tuple[Edge, ...]
    start_nodes: tuple[Mapping[str, Any], ...]

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> TemplateGraph:
        """Build from ``{"nodes", "connections", "startNodes"}``; port ids become port names.

        Examples
        --------
        >>> graph = TemplateGraph.from_json(load_template())
        >>> [graph.nodes[e.target]["name"] for e in graph.out_edges(graph.node_named("Uncertainty Gate")["id"])]
        ['Labeling']
        """
        nodes = {n["id"]: n for n in body["nodes"]}
        port_names = {
            (n["id"], p["portId"]): p["name"]
            for n in body["nodes"]
            for p in [*n.get("inputs", []), *n.get("outputs", [])]
        }
        edges = []
        for c in body.get("connections", []):
            src, tgt = c["src"], c["tgt"]
            for end in (src, tgt):
                if (end["nodeId"], end["portId"]) not in port_names:
                    raise ValueError(f"connections: port {end['portId']!r} of node {end['nodeId']!r} does not exist")
            edges.append(
                Edge(
                    source=src["nodeId"],
                    source_port=port_names[(src["nodeId"], src["portId"])],
                    target=tgt["nodeId"],
                    target_port=port_names[(tgt["nodeId"], tgt["portId"])],
                    action=c.get("action") or None,
                )
            )
        return cls(nodes=nodes, edges=tuple(edges), start_nodes=tuple(body.get("startNodes", [])))

    def node_named(self, name: str) -> Mapping[str, Any]:
        """The one node called ``name`` (``KeyError`` when there is none or several)."""
        found = [n for n in self.nodes.values() if n["name"] == name]
        if len(found) != 1:
            raise KeyError(f"{len(found)} nodes are named {name!r}")
        return found[0]

    def out_edges(self, node_id: str, action: str | None = None, port: str | None = None) -> list[Edge]:
        """Connections leaving ``node_id`` that carry ``action`` (a connection without one carries all)."""
        return [
            e
            for e in self.edges
            if e.source == node_id
            and (port is None or e.source_port == port)
            and (e.action is None or action is None or e.action == action)
        ]

    def targets(self, node_id: str, action: str | None = None, port: str | None = None) -> list[tuple[str, str]]:
        """``(target node id, input port name)`` pairs that an output with ``action`` reaches, deduplicated.

        Model Data Split's three actions all lead to Ground Truth: each action has its own connection.

        Examples
        --------
        >>> graph = TemplateGraph.from_json(load_template())
        >>> split = graph.node_named("Model Data Split")["id"]
        >>> [graph.nodes[t]["name"] for t, _ in graph.targets(split, "test")]
        ['Ground Truth']
        >>> compare = graph.node_named("Compare Models")["id"]
        >>> graph.targets(compare, "discard")
        []
        """
        seen: list[tuple[str, str]] = []
        for e in self.out_edges(node_id, action, port):
            if action is not None and e.action is None and self.port_actions(node_id, e.source_port):
                continue  # a port with actions only follows connections of its actions
            if (e.target, e.target_port) not in seen:
                seen.append((e.target, e.target_port))
        return seen

    def port_actions(self, node_id: str, port_name: str) -> tuple[str, ...]:
        """The actions an output port declares (empty when it has none)."""
        for port in self.nodes[node_id].get("outputs", []):
            if port["name"] == port_name:
                return tuple(port.get("actions") or ())
        return ()

    def branch_order(self, start_id: str) -> list[str]:
        """Node ids reachable from ``start_id`` in the order a pipeline runs them: breadth first along
        the connections, a node after every reachable node that feeds it.

        Examples
        --------
        >>> graph = TemplateGraph.from_json(load_template())
        >>> start = graph.node_named("Create New Model")["id"]
        >>> [graph.nodes[n]["name"] for n in graph.branch_order(start)]  # doctest: +NORMALIZE_WHITESPACE
        ['Create New Model', 'Train', 'Evaluate Base Model', 'Evaluate New Model', 'Compare Models',
         'Update Variables']
        """
        reachable: list[str] = [start_id]
        for node_id in reachable:
            for e in self.out_edges(node_id):
                if e.target not in reachable:
                    reachable.append(e.target)
        feeders = {n: {e.source for e in self.edges if e.target == n and e.source in reachable} for n in reachable}
        order: list[str] = []
        frontier = [start_id]
        while frontier:
            ready = [n for n in frontier if feeders[n] <= set(order)]
            if not ready:  # a cycle: take them in discovery order
                ready = frontier[:1]
            for node_id in ready:
                order.append(node_id)
                frontier.remove(node_id)
                for e in self.out_edges(node_id):
                    if e.target not in order and e.target not in frontier:
                        frontier.append(e.target)
        return order

    def variable_inputs(self, node_id: str) -> dict[str, str]:
        """``input name -> variable name`` for the inputs a pipeline variable feeds.

        Examples
        --------
        >>> graph = TemplateGraph.from_json(load_template())
        >>> graph.variable_inputs(graph.node_named("Compare Models")["id"])["previous_model"]
        'Best Model'
        """
        return {p["name"]: p["variableName"] for p in self.nodes[node_id].get("inputs", []) if p.get("variableName")}

    def start_node(self, trigger_type: str) -> Mapping[str, Any]:
        """The node a start trigger of ``trigger_type`` (``Event`` or ``Cron``) starts."""
        for start in self.start_nodes:
            if (start.get("trigger") or {}).get("type") == trigger_type:
                return self.nodes[start["nodeId"]]
        raise KeyError(f"no start node has a {trigger_type!r} trigger")
