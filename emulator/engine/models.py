"""Model operations: ``model.deploy()``, ``train()``, ``evaluate()``, ``predict()``, ``embed()``
run the model's adapter (the module of the model's app that ``model.moduleName`` names, a
``dl.BaseModelAdapter`` subclass) in model services, through dtlpy's own ``train_model`` /
``evaluate_model`` / ``predict_items`` / ``embed_items``.

One service per model and operation kind: ``deploy`` (predict and embed run there; recorded in
``model.metadata.system.deploy.services``), ``train`` and ``evaluate`` (archived when their
execution ends). Each has ``metadata.ml = {modelId, modelOperation}`` and
``initParams.model_entity`` = the model id. Sources and assumptions: emulator/README.md,
"Services, executions, models".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.store.base import ApiError
from emulator.store.services import COMPUTE_CONFIG_KEYS

#: the adapter functions and their inputs (dtlpy ml/base_model_adapter.py decorators)
MODEL_FUNCTIONS = [
    {"name": "predict_items", "input": [{"name": "items", "type": "Item[]"}]},
    {"name": "embed_items", "input": [{"name": "items", "type": "Item[]"}]},
    {"name": "predict_dataset", "input": [{"name": "dataset", "type": "Dataset"}, {"name": "filters", "type": "Json"}]},
    {"name": "embed_dataset", "input": [{"name": "dataset", "type": "Dataset"}, {"name": "filters", "type": "Json"}]},
    {"name": "train_model", "input": [{"name": "model", "type": "Model"}]},
    {
        "name": "evaluate_model",
        "input": [
            {"name": "model", "type": "Model"},
            {"name": "dataset", "type": "Dataset"},
            {"name": "filters", "type": "Json"},
        ],
    },
]
#: operation → (service kind, adapter function)
OPERATIONS = {
    "predict": ("deploy", "predict_items"),
    "embed": ("deploy", "embed_items"),
    "train": ("train", "train_model"),
    "evaluate": ("evaluate", "evaluate_model"),
}


def adapter_module(module: Mapping[str, Any]) -> dict:
    """A model app's module as the model service runs it: the adapter functions it does not
    declare added with dtlpy's signatures, and ``model_entity`` a ``Model`` init input.

    Example
    -------
    >>> m = adapter_module({"name": "m", "functions": [], "initInputs": []})
    >>> sorted(f["name"] for f in m["functions"])[:2], m["initInputs"]
    (['embed_dataset', 'embed_items'], [{'name': 'model_entity', 'type': 'Model'}])
    """
    found = dict(module)
    declared = {f.get("name") for f in found.get("functions") or []}
    found["functions"] = list(found.get("functions") or []) + [f for f in MODEL_FUNCTIONS if f["name"] not in declared]
    inits = list(found.get("initInputs") or [])
    if not any(i.get("name") == "model_entity" for i in inits):
        inits.append({"name": "model_entity", "type": "Model"})
    found["initInputs"] = inits
    return found


def operation_inputs(operation: str, model_id: str, inputs: Mapping[str, Any]) -> dict:
    """The adapter function's inputs for a model operation (``item`` becomes ``items: [item]``).

    Example
    -------
    >>> operation_inputs("predict", "m1", {"item": "i1"})
    {'items': ['i1']}
    >>> operation_inputs("evaluate", "m1", {"dataset": "d1"})
    {'model': 'm1', 'dataset': 'd1', 'filters': None}
    """
    if operation in ("predict", "embed"):
        if "items" in inputs:
            items = inputs["items"]
        elif "item" in inputs:
            items = [inputs["item"]]
        else:
            raise ApiError(400, f"model {operation}: needs 'items' (item ids)")
        return {"items": list(items) if isinstance(items, list) else [items]}
    if operation == "train":
        return {"model": model_id}
    if operation == "evaluate":
        if not inputs.get("dataset"):
            raise ApiError(400, "model evaluate: needs 'dataset' (a dataset id)")
        return {"model": model_id, "dataset": inputs["dataset"], "filters": inputs.get("filters")}
    raise ApiError(400, f"model operation {operation!r} is not one of {sorted(OPERATIONS)}")


def service_body(model: Mapping[str, Any], kind: str, dpk: Mapping[str, Any], config: Mapping[str, Any]) -> dict:
    """The body of a model's ``kind`` service (``deploy`` / ``train`` / ``evaluate``)."""
    app = model.get("app") if isinstance(model.get("app"), Mapping) else None
    body = {
        "name": f"model-{model['id']}-{kind}",
        "projectId": model["context"]["project"],
        "packageId": dpk["id"],
        "packageName": dpk["name"],
        "packageRevision": dpk.get("version"),
        "moduleName": model.get("moduleName"),
        "initParams": {"model_entity": model["id"]},
        "metadata": {"ml": {"modelId": model["id"], "modelOperation": kind}},
        "app": {"id": app.get("id"), "name": app.get("componentName"), "dpkName": dpk["name"]} if app else None,
    }
    body.update({key: config[key] for key in COMPUTE_CONFIG_KEYS if key in config})
    return body
