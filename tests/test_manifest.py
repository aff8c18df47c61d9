"""The manifest, the service class and the Dockerfile agree with each other and with the
original app's interface (names users' pipelines depend on)."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = json.loads((ROOT / "dataloop.json").read_text())
PLATFORM_INJECTED = {"progress", "context"}


def _functions():
    for module in MANIFEST["components"]["modules"]:
        for function in module["functions"]:
            yield module, function


def test_manifest_has_required_top_level_keys():
    for key in ("displayName", "description", "name", "scope", "version", "codebase", "metadata", "components"):
        assert key in MANIFEST, key
    assert MANIFEST["name"] == "active-learning"
    for key in ("computeConfigs", "panels", "pipelineNodes", "modules"):
        assert MANIFEST["components"][key], key


def test_modules_keep_the_original_names_and_entry_point():
    modules = {m["name"]: m for m in MANIFEST["components"]["modules"]}
    assert set(modules) == {"model_data_split", "create_new_model", "compare_models"}
    computes = {c["name"] for c in MANIFEST["components"]["computeConfigs"]}
    assert computes == {"model-data-split", "create-new-model", "compare-models"}
    for module in modules.values():
        assert module["entryPoint"] == "main.py"
        assert module["className"] == "ServiceRunner"
        assert module["computeConfig"] in computes
        assert (ROOT / module["entryPoint"]).is_file()


@pytest.mark.parametrize(
    ("function_name", "inputs", "outputs"),
    [
        ("data_split", [("item", "Item")], [("item", "Item")]),
        (
            "create_new_model",
            [
                ("base_model", "Model"),
                ("dataset", "Dataset"),
                ("train_subset", "Json"),
                ("validation_subset", "Json"),
                ("model_configuration", "Json"),
            ],
            [("new_model", "Model"), ("base_model", "Model")],
        ),
        (
            "compare_models",
            [("previous_model", "Model"), ("new_model", "Model"), ("compare_config", "Json"), ("dataset", "Dataset")],
            [("winning_model", "Model")],
        ),
    ],
)
def test_function_io_matches_the_original(function_name, inputs, outputs):
    function = next(f for _, f in _functions() if f["name"] == function_name)
    assert [(i["name"], i["type"]) for i in function["input"]] == inputs
    assert [(o["name"], o["type"]) for o in function["output"]] == outputs


def test_compare_models_actions():
    function = next(f for _, f in _functions() if f["name"] == "compare_models")
    assert function["output"][0]["actions"] == ["update model", "discard"]


def test_every_manifest_function_exists_on_the_service_class_with_the_same_parameters():
    import main

    for module, function in _functions():
        cls = getattr(main, module["className"])
        method = getattr(cls, function["name"], None)
        assert callable(method), f"{module['className']}.{function['name']} missing"
        params = [p for p in inspect.signature(method).parameters if p != "self"]
        declared = [i["name"] for i in function["input"]]
        assert params[: len(declared)] == declared, (function["name"], params)
        assert set(params[len(declared) :]) <= PLATFORM_INJECTED, (function["name"], params)


def test_every_pipeline_node_points_at_an_existing_function():
    modules = {m["name"]: m for m in MANIFEST["components"]["modules"]}
    panels = {p["name"] for p in MANIFEST["components"]["panels"]}
    for node in MANIFEST["components"]["pipelineNodes"]:
        compute, module_name, function_name = node["invoke"]["namespace"].split(".")
        module = modules[module_name]
        assert module["computeConfig"] == compute
        assert function_name in {f["name"] for f in module["functions"]}
        assert node["categories"] == ["models"]
        if "panel" in node:
            assert node["panel"] in panels


def test_pipeline_node_names_and_config_fields():
    nodes = {n["name"]: n for n in MANIFEST["components"]["pipelineNodes"]}
    assert set(nodes) == {"dataSplit", "createNewModel", "compareModels"}
    fields = {f["name"]: f for f in nodes["createNewModel"]["configuration"]["fields"]}
    assert fields["modelName"]["props"]["default"] == (
        "{base_model.name}_{datetime.datetime.now().strftime('%Y_%m_%d-T%H_%M_%S')}"
    )
    assert fields["createModel"]["props"]["default"] == "Create New Model"
    compare_fields = {f["name"] for f in nodes["compareModels"]["configuration"]["fields"]}
    assert compare_fields == {"compareNode"}


def test_dockerfile_base_is_the_manifest_runner_image_and_installs_requirements():
    images = {c["runtime"]["runnerImage"] for c in MANIFEST["components"]["computeConfigs"]}
    images |= {s["runtime"]["runnerImage"] for s in MANIFEST["components"].get("services", [])}
    assert len(images) == 1
    dockerfile = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^FROM\s+(\S+)", dockerfile, re.M).group(1)
    assert base == images.pop()
    assert "requirements.txt" in dockerfile
    for path in ("main.py", "nodes", "pipeline_configs"):
        assert re.search(rf"^COPY .*\b{re.escape(path)}\b", dockerfile, re.M), path


def test_runtime_requirements_are_pinned():
    lines = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    requirements = [line for line in lines if line and not line.startswith("#")]
    assert requirements
    for requirement in requirements:
        assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][A-Za-z0-9.]*", requirement), requirement
    assert "dtlpy==1.126.5" in requirements


def test_default_pipeline_configs_load_relative_to_the_package(tmp_path, monkeypatch):
    from nodes.common.defaults import load_default_compare_config, load_subset_filter

    monkeypatch.chdir(tmp_path)  # the original app crashed when the CWD was not the package root
    config = load_default_compare_config()
    assert config == {"precision_recall": {"iou_threshold": 0.5, "min_delta": 0}}
    config["precision_recall"]["iou_threshold"] = 0.9
    assert load_default_compare_config()["precision_recall"]["iou_threshold"] == 0.5
    for subset in ("train", "validation", "test"):
        clauses = load_subset_filter(subset)["filter"]["$and"]
        assert {"metadata": {"system": {"tags": {subset: True}}}} in clauses[1]["$or"]
    with pytest.raises(ValueError, match="subset"):
        load_subset_filter("holdout")
