"""The pipeline template file as data: read it, fill its variables, change a node's config.

Pure functions over the template's JSON (``pipeline_configs/active_learning_pipeline.json``); the
demo installs the result with ``project.pipelines.create`` and the local platform runs it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
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
    >>> node_named(body, "Uncertainty Gate")["metadata"]["customNodeConfig"]["threshold"]
    0.0
    """
    body = copy.deepcopy(dict(template))
    node = node_named(body, node_name)
    node.setdefault("metadata", {}).setdefault("customNodeConfig", {}).update(copy.deepcopy(dict(changes)))
    return body


def node_named(template: Mapping[str, Any], node_name: str) -> dict:
    """The one node of ``template`` called ``node_name`` (``ValueError`` when not exactly one).

    Examples
    --------
    >>> node_named(load_template(), "Compare Models")["type"]
    'custom'
    """
    matches = [n for n in template["nodes"] if n["name"] == node_name]
    if len(matches) != 1:
        raise ValueError(f"node_name: {node_name!r} names {len(matches)} nodes of the template; it must name one")
    return matches[0]


def variable_value(template: Mapping[str, Any], name: str) -> Any:
    """The value of the template variable ``name`` (``KeyError`` when it has none of that name).

    Examples
    --------
    >>> variable_value(load_template(), "Comparison Configuration")["precision_recall"]["min_delta"]
    0
    """
    for variable in template.get("variables", []):
        if variable["name"] == name:
            return variable.get("value")
    raise KeyError(name)
