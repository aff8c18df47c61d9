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
    for key in ("displayName", "description", "name", "scope", "version", "attributes", "metadata", "components"):
        assert key in MANIFEST, key
    assert MANIFEST["name"] == "active-learning"
    for key in ("computeConfigs", "panels", "pipelineNodes", "modules"):
        assert MANIFEST["components"][key], key


def test_no_codebase_so_publish_packs_the_local_code():
    # dtlpy's dpks.publish(): "if dpk.codebase is None: dpk.codebase = project.codebases.pack(local_path)".
    # A git codebase must name this repository and an existing tag; the old one named a tag of another
    # repository that does not exist, so the manifest names none.
    import dtlpy as dl

    assert "codebase" not in MANIFEST
    assert dl.Dpk.from_json(_json=json.loads(json.dumps(MANIFEST)), client_api=None, project=None).codebase is None


def test_marketplace_attributes_as_pipeline_node_apps_declare_them():
    attributes = MANIFEST["attributes"]
    assert set(attributes) == {"Provider", "Category", "Application Type", "Media Type", "License"}
    assert attributes["Category"] == "Application"
    assert attributes["Application Type"] == ["Pipeline Node"]
    assert attributes["Provider"] == "Dataloop"
    assert isinstance(attributes["Media Type"], list) and attributes["Media Type"]
    assert attributes["License"]


def test_every_pipeline_node_and_function_io_has_a_display_name_and_description():
    for node in MANIFEST["components"]["pipelineNodes"]:
        assert node.get("displayName") and node.get("description"), node["name"]
    for _, function in _functions():
        assert function.get("displayName") and function.get("description"), function["name"]
        for io in function["input"] + function["output"]:
            assert io.get("displayName") and io.get("description"), (function["name"], io["name"])


def test_compute_configs_pin_dtlpy_and_set_timeouts_and_concurrency():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    dtlpy_pin = next(line.split("==")[1].strip() for line in lines if line.startswith("dtlpy=="))
    configs = {c["name"]: c for c in MANIFEST["components"]["computeConfigs"]}
    for name, config in configs.items():
        assert config["versions"] == {"dtlpy": dtlpy_pin}, name
        assert isinstance(config["executionTimeout"], int) and 60 <= config["executionTimeout"] <= 4 * 3600, name
        assert config["runtime"]["concurrency"] >= 1, name
    # Model Data Split waits on the platform most of its time (I/O bound): many executions per replica
    assert 10 <= configs["model-data-split"]["runtime"]["concurrency"] <= 20
    # the numbers are explained for users
    explained = (ROOT / "docs" / "manifest.md").read_text()
    for name, config in configs.items():
        assert name in explained, name
        assert str(config["executionTimeout"]) in explained, name


def test_modules_keep_the_original_names_and_entry_point():
    modules = {m["name"]: m for m in MANIFEST["components"]["modules"]}
    assert set(modules) == {"model_data_split", "create_new_model", "compare_models", "select_for_labeling"}
    computes = {c["name"] for c in MANIFEST["components"]["computeConfigs"]}
    assert computes == {"model-data-split", "create-new-model", "compare-models", "select-for-labeling"}
    assert modules["select_for_labeling"]["computeConfig"] == "select-for-labeling"
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
        ("score_item", [("item", "Item")], [("item", "Item")]),
        (
            "select_items",
            [("model", "Model"), ("dataset", "Dataset"), ("selection_config", "Json")],
            [("items", "Item[]")],
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


def test_uncertainty_gate_actions():
    function = next(f for _, f in _functions() if f["name"] == "score_item")
    assert function["output"][0]["actions"] == ["label", "skip"]


def test_every_manifest_function_exists_on_the_service_class_with_the_same_parameters():
    import main

    for module, function in _functions():
        assert module["entryPoint"] == "main.py" and module["className"] == "ServiceRunner"
        cls = getattr(main, module["className"])
        method = getattr(cls, function["name"], None)
        assert callable(method), f"{module['className']}.{function['name']} missing"
        signature = inspect.signature(method).parameters
        params = [p for p in signature if p != "self"]
        declared = [i["name"] for i in function["input"]]
        assert params[: len(declared)] == declared, (function["name"], params)
        assert set(params[len(declared) :]) <= PLATFORM_INJECTED, (function["name"], params)
        for name in params[len(declared) :]:  # progress / context: optional, the runner injects them
            assert signature[name].default is None, (function["name"], name)


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
    assert set(nodes) == {"dataSplit", "createNewModel", "compareModels", "uncertaintyGate", "selectForLabeling"}
    assert nodes["uncertaintyGate"]["invoke"]["namespace"] == "select-for-labeling.select_for_labeling.score_item"
    assert nodes["selectForLabeling"]["invoke"]["namespace"] == "select-for-labeling.select_for_labeling.select_items"
    gate = {f["name"]: f["props"] for f in nodes["uncertaintyGate"]["configuration"]["fields"]}
    assert {k: gate[k]["default"] for k in ("strategy", "threshold", "aggregation")} == {
        "strategy": "margin",
        "threshold": 0.5,
        "aggregation": "max",
    }
    assert gate["modelId"]["required"] is False
    assert {o["value"] for o in gate["strategy"]["options"]} == {"least_confidence", "margin", "entropy", "random"}
    assert {o["value"] for o in gate["aggregation"]["options"]} == {"max", "mean", "sum"}
    for node in nodes.values():
        assert node["categories"] == ["models"] and node["scope"] == "node"
        for field in node.get("configuration", {}).get("fields", []):
            assert "default" in field["props"] and field["props"].get("tooltip"), (node["name"], field["name"])
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
    assert re.search(r"^RUN pip install .*-r \S*requirements\.lock$", dockerfile, re.M)  # the complete lock
    for path in ("main.py", "nodes", "pipeline_configs"):
        assert re.search(rf"^COPY .*\b{re.escape(path)}\b", dockerfile, re.M), path


def test_the_locks_pin_every_direct_requirement_at_its_version():
    """requirements.lock / requirements-dev.lock (tools/lock_requirements.py) hold every transitive
    dependency; each direct pin is in its lock at the same version, and the dev lock agrees with
    the runtime lock on every package they share."""

    def pins(name: str) -> dict[str, str]:
        lines = (ROOT / name).read_text().splitlines()
        found = dict(line.strip().split("==") for line in lines if "==" in line and not line.startswith("#"))
        return {key.lower().replace("_", "-"): value for key, value in found.items()}

    runtime, dev = pins("requirements.lock"), pins("requirements-dev.lock")
    for source, lock in (("requirements.txt", runtime), ("requirements-dev.txt", dev)):
        for name, version in pins(source).items():
            assert lock.get(name) == version, (source, name, version, lock.get(name))
    assert {name: dev.get(name) for name in runtime} == runtime
    assert len(runtime) > len(pins("requirements.txt"))  # transitive ones too
    assert "-c requirements-dev.lock" in (ROOT / "requirements-dev.txt").read_text().splitlines()


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
