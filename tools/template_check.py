"""Offline check of the Active Learning pipeline template against this app's manifest.

dtlpy parses a pipeline (``dl.Pipeline.from_json``) and an app manifest (``dl.Dpk.from_json``)
without a platform, but it accepts unknown node types, dangling connections and custom nodes that
name functions the app does not have. :func:`check_template` parses both with dtlpy's own entity
classes and then checks what dtlpy does not:

- every custom node matches a ``pipelineNodes`` entry of ``dataloop.json``: node name, service,
  module, function, input and output names and types, output actions, node config keys;
- Dataloop's built-in nodes (dataset, task, ml, update-variable) have the ports they need;
- every connection joins an existing output port to an existing input port of the same type, and
  its action is one the source port declares (a port with actions needs one);
- every variable a node references exists with the port's type; no variable is unused;
- the start nodes exist and carry a valid trigger;
- no required input is left unfed (connection, variable, default, or the trigger's item);
- no duplicated node, port, start-node or variable id/name, and no duplicated connection;
- every custom node's ``customNodeConfig`` is accepted by **the node's own validator** (the one
  the node runs at run time: :data:`NODE_VALIDATORS`), so a template the node would refuse (a
  threshold ``"0.5"`` or NaN, a numeric ``modelId``, an unknown key) fails here.

A malformed manifest or template (a node that is not an object, a missing ``invoke``...) is
reported as a problem, never as a crash; on the command line a file that is missing, a folder,
not UTF-8, not JSON or nested absurdly deep exits with code 2 and one line.

It also builds the second manifest (``template/dataloop.json``) that publishes the template as
its own app, so the copy embedded there is generated, never edited by hand.

Usage::

    .venv/bin/python tools/template_check.py                    # check; exit 1 on problems, 2 on unreadable files
    .venv/bin/python tools/template_check.py --write-manifest   # regenerate template/dataloop.json
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the nodes' validators are imported from the repository
    sys.path.insert(0, str(ROOT))
APP_MANIFEST = ROOT / "dataloop.json"
TEMPLATE = ROOT / "pipeline_configs" / "active_learning_pipeline.json"
TEMPLATE_MANIFEST = ROOT / "template" / "dataloop.json"

# Ports and actions of Dataloop's built-in nodes, as its published templates and dtlpy's
# TaskNode / DatasetNode write them (task actions are dl.ItemStatus values).
ML_PORTS = {
    "predict": ({"item": "Item"}, {"item": "Item", "annotations": "Annotation[]"}),
    "train": ({"model": "Model"}, {"model": "Model"}),
    "evaluate": ({"model": "Model", "dataset": "Dataset", "filters": "Json"}, {"model": "Model", "dataset": "Dataset"}),
}
TASK_ACTIONS = {"annotation": ("completed", "discard"), "qa": ("approved", "discard")}
KNOWN_TYPES = {"storage", "task", "ml", "custom", "updateVariable", "code", "function"}
TEMPLATE_ATTRIBUTES = {
    "Provider": "Dataloop",
    "Category": "Pipeline",
    "Pipeline Type": "MLOps",
    "Media Type": ["All Media Types"],
}


#: Largest template or manifest file read (bytes), and deepest nesting accepted.
MAX_FILE_BYTES = 4_000_000
MAX_FILE_DEPTH = 64


def load_json(path: str | Path) -> Any:
    """Read one JSON file.

    Examples
    --------
    >>> load_json(APP_MANIFEST)["name"]
    'active-learning'
    """
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_json_file(path: Any, option: str) -> Any:
    """A user-given JSON file, or a one-line ``ValueError`` naming ``option``.

    Only a regular file is read, at most :data:`MAX_FILE_BYTES` (a folder, device or missing
    file is refused), as UTF-8 JSON without a key given twice and at most
    :data:`MAX_FILE_DEPTH` levels deep.

    Examples
    --------
    >>> read_json_file(APP_MANIFEST, "--manifest")["name"]
    'active-learning'
    >>> read_json_file("/", "--template")
    Traceback (most recent call last):
    ...
    ValueError: --template: '/' is a folder, not a regular file; give the path of a JSON file
    """
    from nodes.common.cli import read_config_text
    from nodes.common.limits import check_json_value, loads_json_text

    text = read_config_text(str(path), option=option, max_bytes=MAX_FILE_BYTES)
    value = loads_json_text(text, option, max_bytes=None)
    check_json_value(value, option, max_depth=MAX_FILE_DEPTH, max_bytes=MAX_FILE_BYTES)
    return value


def _validate_select_items(config: Any) -> None:
    from nodes.select_for_labeling.config import SelectionConfig, merge_selection_config

    SelectionConfig.from_json(merge_selection_config(config, None))


def _validate_score_item(config: Any) -> None:
    from nodes.select_for_labeling.config import GateConfig

    GateConfig.from_node_config(config)


def _validate_data_split(config: Any) -> None:
    from nodes.data_split.config import SplitConfig

    SplitConfig.from_node_config(config)


def _validate_create_new_model(config: Any) -> None:
    from nodes.create_new_model.config import CreateModelConfig

    CreateModelConfig.from_json(config)


#: The validator each custom node runs on its ``customNodeConfig`` at run time, by function name
#: (Compare Models reads only ``itemMetadata`` of its node config: the manifest fields check it).
NODE_VALIDATORS = {
    "data_split": _validate_data_split,
    "create_new_model": _validate_create_new_model,
    "score_item": _validate_score_item,
    "select_items": _validate_select_items,
}


def parse(template: Mapping, manifest: Mapping):
    """Parse ``template`` and ``manifest`` with dtlpy's entity classes (offline; raises on bad input).

    Returns ``(pipeline, dpk)``: a ``dl.Pipeline`` and a ``dl.Dpk``. Function input and output
    types are checked by :func:`check_template` (dtlpy's ``FunctionIO`` does not validate them when
    it parses a manifest).

    Examples
    --------
    >>> pipeline, dpk = parse(load_json(TEMPLATE), load_json(APP_MANIFEST))
    >>> dpk.name, len(pipeline.nodes) > 0
    ('active-learning', True)
    """
    import dtlpy as dl  # imported late: callers decide where dtlpy keeps its files (DATALOOP_PATH)

    pipeline = dl.Pipeline.from_json(_json=copy.deepcopy(dict(template)), client_api=None, project=None)
    dpk = dl.Dpk.from_json(_json=copy.deepcopy(dict(manifest)), client_api=None, project=None)
    return pipeline, dpk


def _manifest_functions(dpk) -> dict[tuple[str, str], Any]:
    return {(m.name, f.name): (m, f) for m in dpk.components.modules for f in m.functions}


def _pipeline_nodes(dpk) -> dict[str, dict]:
    return {n["name"]: n for n in dpk.components.pipeline_nodes or []}


def _ports(node) -> dict[str, Any]:
    return {p.port_id: p for p in [*node.inputs, *node.outputs]}


def _io_map(ports: Iterable) -> dict[str, str]:
    return {p.name: p.input_type for p in ports}


def _fmt(values) -> str:
    return "[" + ", ".join(repr(v) for v in values) + "]"


def check_template(template: Mapping, manifest: Mapping) -> list[str]:
    """Problems of ``template`` (a pipeline-template dict) against ``manifest`` (``dataloop.json``).

    Returns a list of messages, each naming the node / port / connection, what is wrong and the
    fix; an empty list means the template is consistent. Neither argument is modified.

    Examples
    --------
    >>> check_template(load_json(TEMPLATE), load_json(APP_MANIFEST))
    []
    >>> manifest = load_json(APP_MANIFEST)
    >>> manifest["components"]["modules"][3]["functions"][0]["name"] = "score"
    >>> any("score_item" in p for p in check_template(load_json(TEMPLATE), manifest))
    True
    """
    problems: list[str] = []
    try:
        pipeline, dpk = parse(template, manifest)
    except Exception as error:  # dtlpy raises assorted types on malformed input
        return [f"dtlpy cannot parse the template or the manifest: {type(error).__name__}: {error}"]

    problems += _shape_problems(template, manifest)
    if problems:  # the checks below walk these shapes
        return problems
    try:
        nodes = list(pipeline.nodes)
        variables = {v.name: v for v in pipeline.variables}
    except _MALFORMED as error:
        return [_malformed("the template's nodes or variables", error)]
    problems += _guarded("the manifest's function types", _check_manifest_types, dpk)
    problems += _guarded("the ids and names", _check_duplicates, template, nodes, pipeline)
    problems += _guarded("the variables", _check_variables, pipeline, nodes)
    fed_by_trigger: set[str] = set()
    try:
        fed_by_trigger = _trigger_fed_ports(pipeline, nodes, problems)
    except _MALFORMED as error:
        problems.append(_malformed("the start nodes", error))
    optional: set[tuple[str, str]] = set()
    for node in nodes:
        where = f"node {getattr(node, 'name', None)!r}"
        if node.node_type == "custom":
            problems += _guarded(where, _check_custom_node, node, dpk, optional)
        else:
            problems += _guarded(where, _check_builtin_node, node, variables)
    problems += _guarded("the connections", _check_connections, pipeline, nodes)
    problems += _guarded("the required inputs", _check_required_inputs, pipeline, nodes, fed_by_trigger, optional)
    return problems


#: What dtlpy's entities and the checks raise on a malformed document (a list where an object is due...).
_MALFORMED = (AttributeError, KeyError, TypeError, IndexError, ValueError)


def _malformed(what: str, error: BaseException) -> str:
    return (
        f"{what}: malformed ({type(error).__name__}: {str(error)[:200]}); fix the JSON so that it has the shape "
        "dtlpy's entities and dataloop.json's schema describe"
    )


def _guarded(what: str, check, *args) -> list[str]:
    """``check(*args)``, with a malformed document reported as one problem instead of a crash."""
    try:
        return check(*args)
    except _MALFORMED as error:
        return [_malformed(what, error)]


def _shape_problems(template: Any, manifest: Any) -> list[str]:
    """The shapes the checks rely on: objects and lists where dataloop.json and the template have them."""
    problems = []

    def need(value: Any, kind: type, where: str) -> bool:
        if not isinstance(value, kind):
            name = "an object" if kind is dict else "a list"
            problems.append(f"{where}: {str(json.dumps(value, default=repr))[:80]} is not {name}; fix: make it {name}")
            return False
        return True

    if not need(template, dict, "template") or not need(manifest, dict, "dataloop.json"):
        return problems
    for key in ("nodes", "connections"):
        if need(template.get(key, []), list, f"template.{key}"):
            for i, entry in enumerate(template.get(key, [])):
                need(entry, dict, f"template.{key}[{i}]")
    components = manifest.get("components", {})
    if not need(components, dict, "dataloop.json components"):
        return problems
    for key in ("modules", "pipelineNodes"):
        entries = components.get(key, [])
        if not need(entries, list, f"dataloop.json components.{key}"):
            continue
        for i, entry in enumerate(entries):
            where = f"dataloop.json components.{key}[{i}]"
            if not need(entry, dict, where):
                continue
            if key == "modules":
                if need(entry.get("functions", []), list, f"{where}.functions"):
                    for j, function in enumerate(entry.get("functions", [])):
                        need(function, dict, f"{where}.functions[{j}]")
            else:
                invoke = entry.get("invoke")
                namespace = invoke.get("namespace") if isinstance(invoke, dict) else None
                if not isinstance(namespace, str) or len(namespace.split(".")) != 3:
                    problems.append(
                        f"{where}.invoke.namespace: {str(namespace)[:80]!r} is not 'service.module.function'; "
                        'fix: e.g. "invoke": {"type": "function", "namespace": "data-split.model_data_split.data_split"}'
                    )
                configuration = entry.get("configuration", {})
                if need(configuration, dict, f"{where}.configuration"):
                    fields = configuration.get("fields", [])
                    if need(fields, list, f"{where}.configuration.fields"):
                        for j, field in enumerate(fields):
                            if need(field, dict, f"{where}.configuration.fields[{j}]") and not isinstance(
                                field.get("name"), str
                            ):
                                problems.append(f"{where}.configuration.fields[{j}]: needs a 'name' (a string)")
    return problems


def _check_manifest_types(dpk) -> list[str]:
    import dtlpy as dl

    valid = {t.value for t in dl.PackageInputType}
    problems = []
    for module in dpk.components.modules:
        for function in module.functions:
            for side, ios in (("input", function.inputs or []), ("output", function.outputs or [])):
                for io in ios:
                    if io.type not in valid:
                        problems.append(
                            f"dataloop.json {module.name}.{function.name} {side} {io.name!r}: type {io.type!r} "
                            f"is not a dl.PackageInputType (e.g. 'Item', 'Item[]', 'Model', 'Json')"
                        )
    return problems


def _check_duplicates(template: Mapping, nodes, pipeline) -> list[str]:
    problems = []
    counted = {
        "node id": [n.node_id for n in nodes],
        "node name": [n.name for n in nodes],
        "port id": [p.port_id for n in nodes for p in [*n.inputs, *n.outputs]],
        "start node id": [s.get("id") for s in pipeline.start_nodes or [] if s.get("id") is not None],
        "variable name": [v.name for v in pipeline.variables],
        "connection": [
            (c.source.node_id, c.source.port_id, c.target.node_id, c.target.port_id, c.action)
            for c in pipeline.connections
        ],
    }
    for what, values in counted.items():
        for value, count in Counter(values).items():
            if count > 1:
                problems.append(f"duplicated {what} {value!r} ({count} times); fix: make each {what} unique")
    for node in nodes:
        if not node.node_id or not node.name:
            problems.append(f"node {node.name or node.node_id!r}: needs both 'id' and 'name'")
    return problems


def _check_variables(pipeline, nodes) -> list[str]:
    import dtlpy as dl

    problems = []
    valid_types = {t.value for t in dl.PackageInputType}
    variables = {v.name: v for v in pipeline.variables}
    for variable in pipeline.variables:
        if variable.variable_type not in valid_types:
            problems.append(f"variable {variable.name!r}: type {variable.variable_type!r} is not a dl.PackageInputType")
    used = set()
    for node in nodes:
        references = [(f"input {p.name!r}", p.variable_name, p.input_type) for p in node.inputs if p.variable_name]
        for key, kind in (("variableDataset", "Dataset"), ("variableModel", "Model")):
            if node.metadata.get(key):
                references.append((f"metadata.{key}", node.metadata[key], kind))
        if node.node_type == "updateVariable":
            references += [(f"port {p.name!r}", p.name, p.input_type) for p in [*node.inputs, *node.outputs]]
        for where, name, kind in references:
            used.add(name)
            if name not in variables:
                problems.append(
                    f"node {node.name!r} {where}: variable {name!r} does not exist; "
                    f"fix: declare it in 'variables' (known: {_fmt(sorted(variables))})"
                )
            elif variables[name].variable_type != kind:
                problems.append(
                    f"node {node.name!r} {where}: variable {name!r} is {variables[name].variable_type!r}, "
                    f"the port needs {kind!r}"
                )
    for name in variables:
        if name not in used:
            problems.append(f"variable {name!r} is not used by any node; fix: reference it or remove it")
    return problems


def _trigger_fed_ports(pipeline, nodes, problems: list[str]) -> set[str]:
    """Check the start nodes; return the input port ids an item-event trigger feeds."""
    by_id = {n.node_id: n for n in nodes}
    fed = set()
    start_nodes = pipeline.start_nodes or []
    roots = [s for s in start_nodes if s.get("type") == "root"]
    if len(roots) != 1:
        problems.append(f"startNodes: {len(roots)} nodes of type 'root'; fix: exactly one start node is the root")
    for start in start_nodes:
        node = by_id.get(start.get("nodeId"))
        if node is None:
            problems.append(f"start node {start.get('id')!r}: nodeId {start.get('nodeId')!r} is not a node")
            continue
        trigger = start.get("trigger") or {}
        spec = trigger.get("spec") or {}
        if trigger.get("type") == "Event":
            if not spec.get("resource") or not spec.get("actions"):
                problems.append(f"start node {node.name!r}: an Event trigger needs spec.resource and spec.actions")
            for port in node.inputs:
                if port.input_type == spec.get("resource"):
                    fed.add(port.port_id)
        elif trigger.get("type") == "Cron":
            if len(str(spec.get("cron", "")).split()) != 5:
                problems.append(
                    f"start node {node.name!r}: cron {spec.get('cron')!r} is not a 5-field cron spec; "
                    'example: "0 3 * * 6"'
                )
        elif trigger:
            problems.append(f"start node {node.name!r}: trigger type {trigger.get('type')!r} is not Event or Cron")
    return fed


def _check_custom_node(node, dpk, optional: set[tuple[str, str]]) -> list[str]:
    problems = []
    where = f"custom node {node.name!r}"
    pnode_name = node.metadata.get("pipelineNodeName")
    pnodes = _pipeline_nodes(dpk)
    pnode = pnodes.get(pnode_name)
    if pnode is None:
        return [
            f"{where}: metadata.pipelineNodeName {pnode_name!r} is not a pipelineNodes entry of dataloop.json "
            f"(known: {_fmt(sorted(pnodes))})"
        ]
    service, module_name, function_name = pnode["invoke"]["namespace"].split(".")
    namespace = node.namespace
    expected = {
        "namespace.functionName": (namespace.function_name, function_name),
        "namespace.moduleName": (namespace.module_name, module_name),
        "namespace.serviceName": (namespace.service_name, service),
        "namespace.packageName": (namespace.package_name, dpk.name),
        "dpkName": (node.dpk_name, dpk.name),
    }
    for field, (actual, wanted) in expected.items():
        if actual != wanted:
            problems.append(
                f"{where}: {field} is {actual!r}, dataloop.json pipelineNodes {pnode_name!r} says {wanted!r}"
            )
    found = _manifest_functions(dpk).get((module_name, function_name))
    if found is None:
        problems.append(
            f"{where}: dataloop.json has no function {function_name!r} in module {module_name!r} "
            f"(pipelineNodes {pnode_name!r} invokes {pnode['invoke']['namespace']!r})"
        )
        return problems
    _, function = found
    declared_in = {io.name: io for io in function.inputs or []}
    declared_out = {io.name: io for io in function.outputs or []}
    qualified = f"{module_name}.{function_name}"
    for side, ports, declared in (("input", node.inputs, declared_in), ("output", node.outputs, declared_out)):
        actual = _io_map(ports)
        for name in sorted(set(declared) - set(actual)):
            problems.append(f"{where}: missing {side} {name!r} ({declared[name].type}) that {qualified} declares")
        for name in sorted(set(actual) - set(declared)):
            problems.append(f"{where}: {side} {name!r} is not declared by {qualified} (declared: {_fmt(declared)})")
        for name in sorted(set(actual) & set(declared)):
            if actual[name] != declared[name].type:
                problems.append(
                    f"{where}: {side} {name!r} is {actual[name]!r}, {qualified} declares {declared[name].type!r}"
                )
    for name, io in declared_in.items():
        if io.mandatory is False:
            optional.add((node.node_id, name))
    config = node.metadata.get("customNodeConfig")
    for port in node.outputs:
        io = declared_out.get(port.name)
        if io is None:
            continue
        if io.actions:
            wanted, source = list(io.actions), f"{qualified} output {port.name!r}"
        elif pnode.get("panel"):
            panel_ports = (config or {}).get("ports") or []
            wanted, source = (
                [p.get("action") for p in panel_ports],
                f"customNodeConfig.ports of panel {pnode['panel']!r}",
            )
            groups = [g.get("name") for g in (config or {}).get("groups") or []]
            if groups and groups != wanted:
                problems.append(f"{where}: customNodeConfig groups {_fmt(groups)} differ from its ports {_fmt(wanted)}")
        else:
            wanted, source = [], f"{qualified} output {port.name!r}"
        if sorted(port.actions or []) != sorted(wanted):
            problems.append(
                f"{where}: output {port.name!r} actions {_fmt(port.actions or [])} differ from {_fmt(wanted)} ({source})"
            )
    problems += _check_node_config(where, pnode, config)
    validator = NODE_VALIDATORS.get(function_name)
    if validator is not None:
        try:
            validator(copy.deepcopy(config))
        except ValueError as error:
            problems.append(f"{where}: the node would refuse its customNodeConfig at run time: {error}")
    return problems


def _check_node_config(where: str, pnode: Mapping, config: Any) -> list[str]:
    fields = {f["name"]: f for f in (pnode.get("configuration") or {}).get("fields", [])}
    if pnode.get("panel"):
        return [] if isinstance(config, dict) else [f"{where}: a panel node needs metadata.customNodeConfig"]
    if not fields:
        return []
    if not isinstance(config, dict):
        return [f"{where}: metadata.customNodeConfig is missing; fields: {_fmt(fields)}"]
    problems = []
    for key, value in config.items():
        if key in ("name", "validation"):
            continue
        field = fields.get(key)
        if field is None:
            problems.append(f"{where}: customNodeConfig.{key} is not a configuration field (fields: {_fmt(fields)})")
            continue
        props = field.get("props", {})
        options = [o.get("value") for o in props.get("options", [])]
        if options and value not in options:
            problems.append(f"{where}: customNodeConfig.{key} = {value!r} is not one of {_fmt(options)}")
        if props.get("type") == "number" and isinstance(value, int | float):
            low, high = props.get("min"), props.get("max")
            if (low is not None and value < low) or (high is not None and value > high):
                problems.append(f"{where}: customNodeConfig.{key} = {value!r} is outside [{low}, {high}]")
    for name, field in fields.items():
        if field.get("props", {}).get("required") and name not in config and name != "name":
            if "default" not in field.get("props", {}):
                problems.append(f"{where}: required configuration field {name!r} has no value and no default")
    return problems


def _check_builtin_node(node, variables: Mapping) -> list[str]:
    where = f"{node.node_type} node {node.name!r}"
    kind = node.node_type
    if kind not in KNOWN_TYPES:
        return [f"node {node.name!r}: unknown type {kind!r} (known: {_fmt(sorted(KNOWN_TYPES))})"]
    problems = []
    inputs, outputs = _io_map(node.inputs), _io_map(node.outputs)
    if kind == "storage":
        expected = ({"item": "Item"}, {"item": "Item"})
        if not (node.metadata.get("variableDataset") or node.metadata.get("datasetId")):
            problems.append(f"{where}: needs metadata.variableDataset or metadata.datasetId")
    elif kind == "task":
        expected = ({"item": "Item"}, {"item": "Item"})
        task_type = node.metadata.get("taskType")
        if task_type not in TASK_ACTIONS:
            problems.append(f"{where}: metadata.taskType {task_type!r} is not one of {_fmt(TASK_ACTIONS)}")
        else:
            for port in node.outputs:
                missing = [a for a in TASK_ACTIONS[task_type] if a not in (port.actions or [])]
                if missing:
                    problems.append(f"{where}: output {port.name!r} lacks the {task_type} task actions {_fmt(missing)}")
    elif kind == "ml":
        function = node.namespace.function_name
        if function not in ML_PORTS:
            return [f"{where}: ml function {function!r} is not one of {_fmt(ML_PORTS)}"]
        expected = ML_PORTS[function]
        if function == "predict" and not (node.metadata.get("variableModel") or node.metadata.get("modelId")):
            problems.append(f"{where}: predict needs metadata.variableModel (a Model variable) or metadata.modelId")
    elif kind == "updateVariable":
        expected = (inputs, outputs)  # port names are variable names: checked in _check_variables
        if not inputs:
            problems.append(f"{where}: needs one input port per variable it sets")
    else:
        return problems
    for side, actual, wanted in (("inputs", inputs, expected[0]), ("outputs", outputs, expected[1])):
        if actual != wanted:
            problems.append(f"{where}: {side} {actual} differ from the built-in node's {wanted}")
    return problems


def _check_connections(pipeline, nodes) -> list[str]:
    problems = []
    by_id = {n.node_id: n for n in nodes}
    for index, connection in enumerate(pipeline.connections):
        src, tgt = connection.source, connection.target
        label = f"connection #{index}"
        source_node, target_node = by_id.get(src.node_id), by_id.get(tgt.node_id)
        if source_node is None or target_node is None:
            missing = src.node_id if source_node is None else tgt.node_id
            problems.append(f"{label}: node {missing!r} does not exist")
            continue
        label = f"connection #{index} {source_node.name!r} -> {target_node.name!r}"
        source_port = {p.port_id: p for p in source_node.outputs}.get(src.port_id)
        target_port = {p.port_id: p for p in target_node.inputs}.get(tgt.port_id)
        if source_port is None:
            problems.append(f"{label}: source port {src.port_id!r} is not an output of {source_node.name!r}")
        if target_port is None:
            problems.append(f"{label}: target port {tgt.port_id!r} is not an input of {target_node.name!r}")
        if source_port is None or target_port is None:
            continue
        if source_port.input_type != target_port.input_type:
            problems.append(
                f"{label}: joins {source_port.name!r} ({source_port.input_type}) to "
                f"{target_port.name!r} ({target_port.input_type})"
            )
        actions = source_port.actions or []
        if connection.action is None and actions:
            problems.append(f"{label}: the source port has actions {_fmt(actions)}; fix: set the connection's action")
        elif connection.action is not None and connection.action not in actions:
            problems.append(
                f"{label}: action {connection.action!r} is not one of the source port's actions {_fmt(actions)}"
            )
    return problems


def _check_required_inputs(pipeline, nodes, fed_by_trigger: set[str], optional: set[tuple[str, str]]) -> list[str]:
    connected = {c.target.port_id for c in pipeline.connections}
    problems = []
    for node in nodes:
        for port in node.inputs:
            fed = (
                port.port_id in connected
                or port.port_id in fed_by_trigger
                or port.variable_name
                or port.default_value is not None
                or (node.node_id, port.name) in optional
            )
            if not fed:
                problems.append(
                    f"node {node.name!r} input {port.name!r} ({port.input_type}) is fed by nothing; "
                    "fix: connect it, or set its variableName or defaultValue"
                )
    return problems


def build_template_manifest(template: Mapping, app_manifest: Mapping) -> dict:
    """The manifest of the template app: ``template`` under ``components.pipelineTemplates``.

    It depends on the app (``dependencies``) and shares its version and scope, as Dataloop's
    own template apps do (dataloop-ai-apps/pipeline-templates).

    Examples
    --------
    >>> manifest = build_template_manifest(load_json(TEMPLATE), load_json(APP_MANIFEST))
    >>> manifest["dependencies"], manifest["components"]["pipelineTemplates"][0] == load_json(TEMPLATE)
    ([{'name': 'active-learning'}], True)
    """
    return {
        "name": f"{app_manifest['name']}-pipeline-template",
        "displayName": "Active Learning Pipeline (Uncertainty Gate)",
        "description": template["description"],
        "version": app_manifest["version"],
        "scope": app_manifest["scope"],
        "attributes": copy.deepcopy(TEMPLATE_ATTRIBUTES),
        "dependencies": [{"name": app_manifest["name"]}],
        "components": {"pipelineTemplates": [copy.deepcopy(dict(template))]},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", default=str(TEMPLATE), help="pipeline template JSON (default: %(default)s)")
    parser.add_argument("--manifest", default=str(APP_MANIFEST), help="app manifest (default: %(default)s)")
    parser.add_argument(
        "--write-manifest", action="store_true", help=f"regenerate {TEMPLATE_MANIFEST.relative_to(ROOT)}"
    )
    args = parser.parse_args(argv)
    try:
        template = read_json_file(args.template, "--template")
        manifest = read_json_file(args.manifest, "--manifest")
    except ValueError as error:
        sys.stderr.write(f"error: {str(error).splitlines()[0] if str(error) else error}\n")
        return 2
    problems = check_template(template, manifest)
    for problem in problems:
        sys.stderr.write(f"{problem}\n")
    if problems:
        return 1
    if args.write_manifest:
        TEMPLATE_MANIFEST.parent.mkdir(exist_ok=True)
        text = json.dumps(build_template_manifest(template, manifest), indent=2, ensure_ascii=False) + "\n"
        TEMPLATE_MANIFEST.write_text(text, encoding="utf-8")
    sys.stdout.write(f"{Path(args.template).name}: consistent with {Path(args.manifest).name}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
