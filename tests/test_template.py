"""The Active Learning pipeline template (pipeline_configs/active_learning_pipeline.json) is
parsed by dtlpy's own entity classes and cannot drift from dataloop.json: tools/template_check.py
checks what dtlpy does not, and mutations of the manifest or the template make it fail."""

from __future__ import annotations

import copy
import json

import dtlpy as dl
import jsonschema
import pytest

from tools.template_check import (
    APP_MANIFEST,
    ROOT,
    TEMPLATE,
    TEMPLATE_MANIFEST,
    build_template_manifest,
    check_template,
    load_json,
)

MANIFEST_JSON = load_json(APP_MANIFEST)
TEMPLATE_JSON = load_json(TEMPLATE)


def _node(template: dict, name: str) -> dict:
    return next(n for n in template["nodes"] if n["name"] == name)


def _port(node: dict, side: str, name: str) -> dict:
    return next(p for p in node[side] if p["name"] == name)


def _function(manifest: dict, name: str) -> dict:
    return next(f for m in manifest["components"]["modules"] for f in m["functions"] if f["name"] == name)


def _edges(template: dict) -> set[tuple[str, str, str, str, str | None]]:
    nodes = {n["id"]: n for n in template["nodes"]}
    ports = {p["portId"]: p["name"] for n in template["nodes"] for p in n["inputs"] + n["outputs"]}
    return {
        (
            nodes[c["src"]["nodeId"]]["name"],
            ports[c["src"]["portId"]],
            nodes[c["tgt"]["nodeId"]]["name"],
            ports[c["tgt"]["portId"]],
            c.get("action"),
        )
        for c in template["connections"]
    }


# --- parsed by dtlpy -----------------------------------------------------------------------------


def test_dtlpy_parses_the_template_and_the_manifest_offline():
    pipeline = dl.Pipeline.from_json(_json=copy.deepcopy(TEMPLATE_JSON), client_api=None, project=None)
    kinds = {n.name: type(n).__name__ for n in pipeline.nodes}
    assert kinds["Raw Data"] == kinds["Ground Truth"] == "DatasetNode"
    assert kinds["Labeling"] == kinds["Review"] == "TaskNode"
    assert len(pipeline.nodes) == 13 and len(pipeline.connections) == 13
    assert {v.name for v in pipeline.variables} == {v["name"] for v in TEMPLATE_JSON["variables"]}
    dpk = dl.Dpk.from_json(_json=copy.deepcopy(MANIFEST_JSON), client_api=None, project=None)
    assert dpk.codebase is None  # dpks.publish() packs the local code
    functions = {f.name: f for m in dpk.components.modules for f in m.functions}
    assert [o.actions for o in functions["score_item"].outputs] == [["label", "skip"]]


def test_the_shipped_template_is_consistent_with_dataloop_json():
    assert check_template(TEMPLATE_JSON, MANIFEST_JSON) == []


# --- the template's content (issue 16 section 1) -------------------------------------------------


def test_nodes_and_their_types():
    types = {n["name"]: (n["type"], n["namespace"]["functionName"]) for n in TEMPLATE_JSON["nodes"]}
    assert types == {
        "Raw Data": ("storage", "clone_item"),
        "Predict": ("ml", "predict"),
        "Uncertainty Gate": ("custom", "score_item"),
        "Labeling": ("task", "move_to_task"),
        "Review": ("task", "move_to_task"),
        "Model Data Split": ("custom", "data_split"),
        "Ground Truth": ("storage", "clone_item"),
        "Create New Model": ("custom", "create_new_model"),
        "Train": ("ml", "train"),
        "Evaluate New Model": ("ml", "evaluate"),
        "Evaluate Base Model": ("ml", "evaluate"),
        "Compare Models": ("custom", "compare_models"),
        "Update Variables": ("updateVariable", "update_variable"),
    }
    assert _node(TEMPLATE_JSON, "Labeling")["metadata"]["taskType"] == "annotation"
    assert _node(TEMPLATE_JSON, "Review")["metadata"]["taskType"] == "qa"
    assert _node(TEMPLATE_JSON, "Predict")["metadata"]["variableModel"] == "Best Model"
    assert _node(TEMPLATE_JSON, "Raw Data")["metadata"]["variableDataset"] == "Raw Dataset"
    assert _node(TEMPLATE_JSON, "Ground Truth")["metadata"]["variableDataset"] == "Ground Truth Dataset"


def test_connections_follow_the_active_learning_loop():
    assert _edges(TEMPLATE_JSON) == {
        ("Raw Data", "item", "Predict", "item", None),
        ("Predict", "item", "Uncertainty Gate", "item", None),
        ("Uncertainty Gate", "item", "Labeling", "item", "label"),  # 'skip' goes nowhere
        ("Labeling", "item", "Review", "item", "completed"),
        ("Review", "item", "Model Data Split", "item", "approved"),
        ("Model Data Split", "item", "Ground Truth", "item", "train"),
        ("Model Data Split", "item", "Ground Truth", "item", "validation"),
        ("Model Data Split", "item", "Ground Truth", "item", "test"),
        ("Create New Model", "new_model", "Train", "model", None),
        ("Create New Model", "base_model", "Evaluate Base Model", "model", None),
        ("Train", "model", "Evaluate New Model", "model", None),
        ("Evaluate New Model", "model", "Compare Models", "new_model", None),
        ("Compare Models", "winning_model", "Update Variables", "Best Model", "update model"),
    }


def test_start_nodes_item_created_event_and_weekly_cron():
    by_id = {n["id"]: n["name"] for n in TEMPLATE_JSON["nodes"]}
    starts = {by_id[s["nodeId"]]: s for s in TEMPLATE_JSON["startNodes"]}
    assert set(starts) == {"Raw Data", "Create New Model"}
    raw = starts["Raw Data"]
    assert raw["type"] == "root"
    assert raw["trigger"]["type"] == "Event"
    assert raw["trigger"]["spec"]["resource"] == "Item" and raw["trigger"]["spec"]["actions"] == ["Created"]
    cron = starts["Create New Model"]["trigger"]
    assert cron["type"] == "Cron"
    minute, hour, day, month, weekday = cron["spec"]["cron"].split()
    assert (day, month) == ("*", "*") and weekday.isdigit() and minute.isdigit() and hour.isdigit()  # weekly


def test_variables_are_the_pipeline_configs_files():
    variables = {v["name"]: v for v in TEMPLATE_JSON["variables"]}
    assert {n: v["type"] for n, v in variables.items()} == {
        "Raw Dataset": "Dataset",
        "Best Model": "Model",
        "Ground Truth Dataset": "Dataset",
        "Train Subset Filter": "Json",
        "Validation Subset Filter": "Json",
        "Test Subset Filter": "Json",
        "Model Configuration": "Json",
        "Comparison Configuration": "Json",
    }
    for subset in ("train", "validation", "test"):
        expected = load_json(ROOT / "pipeline_configs" / f"{subset}_subset_filter.json")
        assert variables[f"{subset.capitalize()} Subset Filter"]["value"] == expected
    assert variables["Model Configuration"]["value"] == {}
    assert variables["Comparison Configuration"]["value"] == load_json(
        ROOT / "pipeline_configs" / "compare_configurations.json"
    )
    for name in ("Raw Dataset", "Best Model", "Ground Truth Dataset"):
        assert variables[name]["value"] is None  # the user sets the ids after creating the pipeline
    for variable in variables.values():
        assert variable["description"]


def test_model_data_split_config_is_the_panel_default():
    node = _node(TEMPLATE_JSON, "Model Data Split")
    config = node["metadata"]["customNodeConfig"]
    jsonschema.validate(config, load_json(ROOT / "nodes" / "schemas" / "data_split_config.json"))
    assert [(g["name"], g["distribution"]) for g in config["groups"]] == [
        ("train", 80),
        ("validation", 10),
        ("test", 10),
    ]
    assert config["itemMetadata"] is True
    output = _port(node, "outputs", "item")
    assert [(p["action"], p["portId"]) for p in config["ports"]] == [(a, output["portId"]) for a in output["actions"]]


def test_node_configs_use_the_manifest_defaults():
    fields = {
        n["name"]: {f["name"]: f["props"].get("default") for f in n.get("configuration", {}).get("fields", [])}
        for n in MANIFEST_JSON["components"]["pipelineNodes"]
    }
    gate = _node(TEMPLATE_JSON, "Uncertainty Gate")["metadata"]["customNodeConfig"]
    assert {k: gate[k] for k in ("strategy", "threshold", "aggregation")} == {
        "strategy": "margin",
        "threshold": 0.5,
        "aggregation": "max",
    }
    assert {k: fields["uncertaintyGate"][k] for k in ("strategy", "threshold", "aggregation")} == {
        "strategy": "margin",
        "threshold": 0.5,
        "aggregation": "max",
    }
    create = _node(TEMPLATE_JSON, "Create New Model")["metadata"]["customNodeConfig"]
    assert create["modelName"] == fields["createNewModel"]["modelName"]


def test_each_custom_node_config_is_accepted_by_its_node():
    from nodes.create_new_model.config import CreateModelConfig
    from nodes.data_split.config import SplitConfig
    from nodes.select_for_labeling.config import GateConfig

    def config(name):
        return _node(TEMPLATE_JSON, name)["metadata"]["customNodeConfig"]

    gate = GateConfig.from_node_config(config("Uncertainty Gate"))
    assert (gate.strategy, gate.threshold, gate.aggregation, gate.model_id) == ("margin", 0.5, "max", None)
    split = SplitConfig.from_node_config(config("Model Data Split"))
    assert [(g.name, g.share) for g in split.groups] == [("train", 80), ("validation", 10), ("test", 10)]
    assert split.item_metadata is True
    fields = {
        f["name"]: f
        for n in MANIFEST_JSON["components"]["pipelineNodes"]
        for f in n.get("configuration", {}).get("fields", [])
    }
    assert (
        CreateModelConfig.from_json(config("Create New Model")).name_template == fields["modelName"]["props"]["default"]
    )


def test_custom_nodes_refer_to_this_app_exactly():
    pipeline_nodes = {n["name"]: n for n in MANIFEST_JSON["components"]["pipelineNodes"]}
    for node in TEMPLATE_JSON["nodes"]:
        if node["type"] != "custom":
            continue
        entry = pipeline_nodes[node["metadata"]["pipelineNodeName"]]
        service, module, function = entry["invoke"]["namespace"].split(".")
        namespace = node["namespace"]
        assert (namespace["serviceName"], namespace["moduleName"], namespace["functionName"]) == (
            service,
            module,
            function,
        )
        assert namespace["packageName"] == node["dpkName"] == MANIFEST_JSON["name"]
        declared = _function(MANIFEST_JSON, function)
        assert [(p["name"], p["type"]) for p in node["inputs"]] == [(i["name"], i["type"]) for i in declared["input"]]
        assert [(p["name"], p["type"]) for p in node["outputs"]] == [(o["name"], o["type"]) for o in declared["output"]]


# --- the template app (second manifest) -----------------------------------------------------------


def test_template_manifest_is_generated_from_the_template_and_depends_on_the_app():
    committed = load_json(TEMPLATE_MANIFEST)
    assert committed == build_template_manifest(TEMPLATE_JSON, MANIFEST_JSON), (
        "template/dataloop.json is stale: run .venv/bin/python tools/template_check.py --write-manifest"
    )
    dpk = dl.Dpk.from_json(_json=copy.deepcopy(committed), client_api=None, project=None)
    assert dpk.dependencies == [{"name": MANIFEST_JSON["name"]}]
    assert dpk.version == MANIFEST_JSON["version"]
    assert dpk.codebase is None
    assert dpk.components.pipeline_templates == [TEMPLATE_JSON]
    assert dpk.attributes["Category"] == "Pipeline"
    assert dpk.name != MANIFEST_JSON["name"]


# --- mutations: the check must catch drift ----------------------------------------------------------


def _mutated_manifest(mutate) -> dict:
    manifest = copy.deepcopy(MANIFEST_JSON)
    mutate(manifest)
    return manifest


def _rename_function(manifest):
    _function(manifest, "score_item")["name"] = "score"


def _remove_action(manifest):
    _function(manifest, "score_item")["output"][0]["actions"].remove("skip")


def _remove_compare_action(manifest):
    _function(manifest, "compare_models")["output"][0]["actions"] = ["update_model", "discard"]


def _change_input_type(manifest):
    next(i for i in _function(manifest, "compare_models")["input"] if i["name"] == "dataset")["type"] = "Item"


def _rename_input(manifest):
    _function(manifest, "create_new_model")["input"][2]["name"] = "train_filter"


def _rename_output(manifest):
    _function(manifest, "create_new_model")["output"][0]["name"] = "model"


def _rename_pipeline_node(manifest):
    next(n for n in manifest["components"]["pipelineNodes"] if n["name"] == "dataSplit")["name"] = "modelDataSplit"


def _rename_module(manifest):
    next(m for m in manifest["components"]["modules"] if m["name"] == "select_for_labeling")["name"] = "selection"
    for node in manifest["components"]["pipelineNodes"]:
        node["invoke"]["namespace"] = node["invoke"]["namespace"].replace(".select_for_labeling.", ".selection.")


def _rename_compute(manifest):
    node = next(n for n in manifest["components"]["pipelineNodes"] if n["name"] == "compareModels")
    node["invoke"]["namespace"] = "compare-models-nodes.compare_models.compare_models"


def _drop_config_option(manifest):
    node = next(n for n in manifest["components"]["pipelineNodes"] if n["name"] == "uncertaintyGate")
    strategy = next(f for f in node["configuration"]["fields"] if f["name"] == "strategy")
    strategy["props"]["options"] = [o for o in strategy["props"]["options"] if o["value"] != "margin"]


def _bad_type(manifest):
    _function(manifest, "select_items")["output"][0]["type"] = "Items"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_rename_function, "has no function 'score_item'"),
        (_remove_action, "actions ['label', 'skip'] differ from ['label']"),
        (_remove_compare_action, "differ from ['update_model', 'discard']"),
        (_change_input_type, "input 'dataset' is 'Dataset', compare_models.compare_models declares 'Item'"),
        (_rename_input, "missing input 'train_filter'"),
        (_rename_output, "output 'new_model' is not declared"),
        (_rename_pipeline_node, "pipelineNodeName 'dataSplit' is not a pipelineNodes entry"),
        (_rename_module, "namespace.moduleName is 'select_for_labeling', dataloop.json pipelineNodes"),
        (_rename_compute, "namespace.serviceName is 'compare-models'"),
        (_drop_config_option, "customNodeConfig.strategy = 'margin' is not one of"),
        (_bad_type, "output 'items': type 'Items' is not a dl.PackageInputType"),
    ],
)
def test_a_manifest_mutation_makes_the_check_fail(mutate, expected):
    problems = check_template(TEMPLATE_JSON, _mutated_manifest(mutate))
    assert any(expected in p for p in problems), problems


def _template_with(mutate) -> dict:
    template = copy.deepcopy(TEMPLATE_JSON)
    mutate(template)
    return template


def _dangling_port(t):
    t["connections"][0]["tgt"]["portId"] = "no-such-port"


def _dangling_node(t):
    t["connections"][1]["src"]["nodeId"] = "no-such-node"


def _action_not_declared(t):
    next(c for c in t["connections"] if c.get("action") == "label")["action"] = "uncertain"


def _action_missing(t):
    next(c for c in t["connections"] if c.get("action") == "approved").pop("action")


def _variable_missing(t):
    t["variables"] = [v for v in t["variables"] if v["name"] != "Comparison Configuration"]


def _variable_type(t):
    next(v for v in t["variables"] if v["name"] == "Best Model")["type"] = "Dataset"


def _orphan_input(t):
    _port(_node(t, "Create New Model"), "inputs", "base_model").pop("variableName")


def _duplicate_id(t):
    _node(t, "Train")["id"] = _node(t, "Predict")["id"]


def _start_node_missing(t):
    t["startNodes"][1]["nodeId"] = "gone"


def _unknown_type(t):
    _node(t, "Train")["type"] = "trainer"


def _type_mismatch(t):
    _port(_node(t, "Train"), "inputs", "model")["type"] = "Item"


def _task_actions(t):
    _port(_node(t, "Review"), "outputs", "item")["actions"] = ["done"]


def _split_ports(t):
    _node(t, "Model Data Split")["metadata"]["customNodeConfig"]["ports"].pop()


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_dangling_port, "target port 'no-such-port' is not an input of 'Predict'"),
        (_dangling_node, "node 'no-such-node' does not exist"),
        (_action_not_declared, "action 'uncertain' is not one of the source port's actions ['label', 'skip']"),
        (_action_missing, "fix: set the connection's action"),
        (_variable_missing, "variable 'Comparison Configuration' does not exist"),
        (_variable_type, "variable 'Best Model' is 'Dataset', the port needs 'Model'"),
        (_orphan_input, "input 'base_model' (Model) is fed by nothing"),
        (_duplicate_id, "duplicated node id"),
        (_start_node_missing, "nodeId 'gone' is not a node"),
        (_unknown_type, "unknown type 'trainer'"),
        (_type_mismatch, "joins 'new_model' (Model) to 'model' (Item)"),
        (_task_actions, "lacks the qa task actions ['approved', 'discard']"),
        (_split_ports, "customNodeConfig groups ['train', 'validation', 'test'] differ from its ports"),
    ],
)
def test_a_template_mutation_makes_the_check_fail(mutate, expected):
    problems = check_template(_template_with(mutate), MANIFEST_JSON)
    assert any(expected in p for p in problems), problems


def test_check_does_not_modify_its_arguments():
    template, manifest = copy.deepcopy(TEMPLATE_JSON), copy.deepcopy(MANIFEST_JSON)
    check_template(template, manifest)
    assert template == TEMPLATE_JSON and manifest == MANIFEST_JSON


def test_command_line_reports_and_exits_nonzero(tmp_path, capsys):
    from tools import template_check

    assert template_check.main([]) == 0
    broken = tmp_path / "template.json"
    broken.write_text(json.dumps(_template_with(_action_not_declared)))
    assert template_check.main(["--template", str(broken)]) == 1
    assert "action 'uncertain'" in capsys.readouterr().err


# --- the picture is drawn from the template ---------------------------------------------------------


def test_diagram_is_drawn_from_the_template():
    from tools.draw_pipeline_diagram import diagram_elements

    boxes, arrows = diagram_elements(TEMPLATE_JSON)
    assert {b["name"] for b in boxes} == {n["name"] for n in TEMPLATE_JSON["nodes"]}
    assert len(arrows) == len(TEMPLATE_JSON["connections"])
    assert {a["label"] for a in arrows if a["label"]} >= {"label", "completed", "approved", "update model"}
    positions = [(b["x"], b["y"]) for b in boxes]
    assert len(set(positions)) == len(positions)


# --- the nodes' own validators: a template a node would refuse at run time fails the check -----------


def _gate_config(**changes):
    def mutate(t):
        _node(t, "Uncertainty Gate")["metadata"]["customNodeConfig"].update(changes)

    return mutate


def _split_config(**changes):
    def mutate(t):
        _node(t, "Model Data Split")["metadata"]["customNodeConfig"].update(changes)

    return mutate


def _create_config(**changes):
    def mutate(t):
        _node(t, "Create New Model")["metadata"]["customNodeConfig"].update(changes)

    return mutate


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_gate_config(threshold="0.5"), "customNodeConfig.threshold: '0.5' is not a finite number"),
        (_gate_config(threshold=float("nan")), "customNodeConfig.threshold: nan is not a JSON number"),
        (_gate_config(modelId=123), "customNodeConfig.modelId: 123"),
        (_split_config(itemMetdata=True), "customNodeConfig.itemMetdata: unknown key; did you mean 'itemMetadata'"),
        (_split_config(seed=-1), "customNodeConfig.seed"),
        (_create_config(modelName="{base_model.__class__}"), "customNodeConfig.modelName"),
        (_create_config(modelName="\u202emodel"), "U+202E"),
    ],
    ids=["threshold-string", "threshold-nan", "model-id-number", "split-typo", "split-seed", "create-template", "rlo"],
)
def test_a_config_the_node_would_refuse_at_run_time_fails_the_check(mutate, expected):
    problems = check_template(_template_with(mutate), MANIFEST_JSON)
    assert any("the node would refuse its customNodeConfig at run time" in p and expected in p for p in problems), (
        problems
    )


# --- malformed documents are problems, never crashes --------------------------------------------------


def _pipeline_node(manifest, name):
    return next(n for n in manifest["components"]["pipelineNodes"] if n["name"] == name)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda m: m["components"]["pipelineNodes"].append("dataSplit"),
            'pipelineNodes[5]: "dataSplit" is not an object',
        ),
        (
            lambda m: _pipeline_node(m, "dataSplit").pop("invoke"),
            "invoke.namespace: 'None' is not 'service.module.function'",
        ),
        (
            lambda m: _pipeline_node(m, "dataSplit").update(invoke={"namespace": "a.b"}),
            "is not 'service.module.function'",
        ),
        (
            lambda m: _pipeline_node(m, "uncertaintyGate")["configuration"].update(fields={"a": 1}),
            "configuration.fields",
        ),
        (
            lambda m: _pipeline_node(m, "uncertaintyGate")["configuration"]["fields"].append(7),
            "configuration.fields[5]: 7 is not an object",
        ),
        (lambda m: m["components"].update(modules={"a": 1}), "components.modules"),
        (lambda m: m["components"]["modules"][0]["functions"].append("x"), "functions[1]"),
        (lambda m: m.update(components=[]), "components"),
    ],
    ids=[
        "node-string",
        "no-invoke",
        "short-namespace",
        "fields-object",
        "field-int",
        "modules-object",
        "function-string",
        "components-list",
    ],
)
def test_a_malformed_manifest_is_reported_as_a_problem(mutate, expected):
    problems = check_template(TEMPLATE_JSON, _mutated_manifest(mutate))
    assert problems and any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t.update(nodes="x"),
        lambda t: t["nodes"].append(3),
        lambda t: t["connections"].append(None),
        lambda t: t.update(startNodes=[1]),
        lambda t: t.update(variables=[{"name": 1}]),
        lambda t: _node(t, "Train").update(inputs=[{"portId": 3}]),
        lambda t: _node(t, "Model Data Split")["metadata"].update(customNodeConfig=[1]),
    ],
)
def test_a_malformed_template_is_reported_as_a_problem_never_a_crash(mutate):
    assert check_template(_template_with(mutate), MANIFEST_JSON)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: str(d / "missing.json"), "cannot be read"),
        (lambda d: str(d), "is a folder"),
        (lambda d: _write(d / "latin1.json", b'{"name": "caf\xe9"}'), "not UTF-8"),
        (lambda d: _write(d / "bad.json", b'{"nodes": ['), "is not valid JSON"),
        (lambda d: _write(d / "deep.json", b"[" * 100_000 + b"]" * 100_000), "nested"),
        (lambda d: _write(d / "deep65.json", b"[" * 65 + b"]" * 65), "nested deeper than 64"),
        (lambda d: _write(d / "twice.json", b'{"a": 1, "a": 2}'), "given twice"),
        ("/dev/zero", "character device"),
    ],
    ids=["missing", "folder", "bad-utf8", "bad-json", "absurd-nesting", "nesting-65", "duplicate-key", "device"],
)
@pytest.mark.parametrize("option", ["--template", "--manifest"])
def test_an_unreadable_file_exits_2_with_one_line(tmp_path, capsys, make, expected, option):
    from tools import template_check

    path = make(tmp_path) if callable(make) else make
    assert template_check.main([option, path]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {option}") and expected in err, err
    assert "Traceback" not in err and len(err) < 1024


def _write(path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)
