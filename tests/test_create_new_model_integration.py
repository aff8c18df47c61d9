"""Create New Model through ``main.ServiceRunner.create_new_model`` with real dtlpy on LocalPlatform."""

from __future__ import annotations

import copy
from datetime import datetime

import dtlpy as dl
import pytest

from emulator import make_labels as platform_labels
from main import ServiceRunner
from nodes import create_new_model as cnm
from nodes.common.defaults import load_subset_filter
from nodes.create_new_model import naming as cnm_naming
from nodes.create_new_model import node as cnm_node

CLONE = "POST /ml/models/{id}/clone"
MODELS_QUERY = "POST /ml/models/query"
ITEMS_QUERY = "POST /datasets/{id}/query"
PATCH_MODEL = "PATCH /ml/models/{id}"
PAGING = {"resource": "items", "page": 0, "pageSize": 1000}
BASE_CONFIGURATION = {
    "epochs": 10,
    "optim": {"lr": 0.1, "momentum": 0.9, "betas": [0.9, 0.99]},
    "augment": ["flip"],
    "id_to_label_map": {"0": "cat", "1": "dog"},
    "label_to_id_map": {"cat": 0, "dog": 1},
}
BASE_SUBSETS = {
    "train": {"filter": {"$and": [{"hidden": False}, {"dir": "/base-train"}]}, **PAGING},
    "validation": {"filter": {"dir": "/base-val"}, **PAGING},
}


def _tagged(tag: str, directory: str, count: int) -> list[dict]:
    return [
        {"name": f"{tag}-{i}.jpg", "dir": directory, "metadata": {"system": {"tags": {tag: True}}}}
        for i in range(count)
    ]


@pytest.fixture
def items(platform, dataset):
    entries = (
        _tagged("train", "/base-train", 3)
        + _tagged("validation", "/base-val", 2)
        + _tagged("train", "/input-train", 2)
        + _tagged("validation", "/input-val", 1)
    )
    platform.add_items(dataset, entries)
    return dataset


def _base_model(platform, project, dataset, name="base", subsets=None, status="trained"):
    metadata = {"system": {"subsets": copy.deepcopy(subsets)}} if subsets else {}
    return platform.create_model(
        project,
        name,
        dataset=dataset,
        labels=["cat", "dog"],
        configuration=copy.deepcopy(BASE_CONFIGURATION),
        status=status,
        metadata=metadata,
    )


def _run(base_model, dataset, context=None, **inputs):
    return ServiceRunner().create_new_model(base_model=base_model, dataset=dataset, context=context, **inputs)


def _expected_configuration(override):
    base = {k: v for k, v in BASE_CONFIGURATION.items() if k not in cnm.LABEL_MAP_KEYS}
    return cnm.deep_merge(base, override)


def _assert_unchanged(platform, base_model, stored_before, entity_before):
    assert platform.get_json("models", base_model.id) == stored_before
    assert base_model.to_json() == entity_before


@pytest.mark.parametrize(
    ("case", "train_input", "validation_input", "base_subsets", "expected_train", "expected_validation", "sources"),
    [
        (
            "inputs",
            {"filter": {"dir": "/input-train"}},
            {"dir": "/input-val"},  # a bare filter
            BASE_SUBSETS,
            {"filter": {"dir": "/input-train"}, **PAGING},
            {"filter": {"dir": "/input-val"}, **PAGING},
            ("input", "input"),
        ),
        (
            "base model",
            None,
            {},
            BASE_SUBSETS,
            BASE_SUBSETS["train"],
            BASE_SUBSETS["validation"],
            ("base model", "base model"),
        ),
        (
            "packaged defaults",
            {},
            None,
            None,
            {**load_subset_filter("train"), **PAGING},
            {**load_subset_filter("validation"), **PAGING},
            ("packaged default", "packaged default"),
        ),
    ],
)
def test_clone_has_exactly_the_resolved_subsets_and_merged_configuration(
    platform, project, items, case, train_input, validation_input, base_subsets, expected_train,
    expected_validation, sources, caplog,
):  # fmt: skip
    dataset = items
    base_model = _base_model(platform, project, dataset, subsets=base_subsets)
    stored_before, entity_before = platform.get_json("models", base_model.id), base_model.to_json()
    override = {"optim": {"lr": 0.01}, "augment": ["crop"], "batch": 4}
    context = platform.make_context({"modelName": "{base_model.name}-{dataset.name}-v2"}, "exec-1", project)
    platform.reset_counts()
    with caplog.at_level("INFO", logger="nodes.create_new_model"):
        new_model, returned_base = _run(
            base_model,
            dataset,
            context,
            train_subset=train_input,
            validation_subset=validation_input,
            model_configuration=copy.deepcopy(override),
        )
    assert returned_base is base_model
    stored = dl.models.get(model_id=new_model.id)  # read back from the platform
    assert stored.name == new_model.name == f"base-{dataset.name}-v2"
    assert stored.status == "created"
    assert stored.project_id == project.id and stored.dataset_id == dataset.id
    assert stored.metadata["system"]["subsets"]["train"] == expected_train
    assert stored.metadata["system"]["subsets"]["validation"] == expected_validation
    assert stored.configuration == _expected_configuration(override)
    assert stored.metadata["user"]["activeLearning"]["createdBy"] == {
        "executionId": "exec-1",
        "baseModelId": base_model.id,
    }
    _assert_unchanged(platform, base_model, stored_before, entity_before)
    counts = platform.request_counts
    assert counts[CLONE] == 1 and counts[PATCH_MODEL] == 1
    assert counts[MODELS_QUERY] == 3  # execution lookup + name lookup + the overlapping-run check after the clone
    assert counts[ITEMS_QUERY] == 1  # the train-subset count
    assert platform.write_count() == 2  # the clone and the update giving it its own records
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("created model")]
    assert f"({new_model.id})" in line and "'base'" in line
    assert f"train from {sources[0]}, validation from {sources[1]}" in line
    assert "augment, batch, id_to_label_map, label_to_id_map, optim.lr" in line


def test_rerun_of_the_same_execution_returns_the_same_model_and_writes_nothing(platform, project, items):
    dataset = items
    base_model = _base_model(platform, project, dataset, subsets=BASE_SUBSETS)
    template = "{base_model.name}_{now:%Y%m%d-%H%M%S-%f}"  # differs on every run
    first, _ = _run(base_model, dataset, platform.make_context({"modelName": template}, "exec-7", project))
    platform.reset_counts()
    second, _ = _run(base_model, dataset, platform.make_context({"modelName": template}, "exec-7", project))
    assert second.id == first.id and second.name == first.name
    assert platform.request_counts[CLONE] == 0
    assert platform.request_counts[MODELS_QUERY] == 1
    assert platform.write_count() == 0
    # another execution makes another version
    third, _ = _run(base_model, dataset, platform.make_context({"modelName": template}, "exec-8", project))
    assert third.id != first.id
    assert platform.request_counts[CLONE] == 1


def test_a_new_round_from_a_model_this_node_created(platform, project, items):
    dataset = items
    base_model = _base_model(platform, project, dataset, subsets=BASE_SUBSETS)
    context = platform.make_context({"modelName": "round"}, "exec-r1", project)
    round_one, _ = _run(base_model, dataset, context)
    round_one_trained = dl.models.get(model_id=round_one.id)
    round_one_trained.status = "trained"
    round_one_trained.update()
    context = platform.make_context({"modelName": "{base_model.name}-next"}, "exec-r2", project)
    round_two, _ = _run(dl.models.get(model_id=round_one.id), dataset, context)
    stored = dl.models.get(model_id=round_two.id)
    assert stored.name == "round-next"
    assert stored.metadata["user"]["activeLearning"]["createdBy"] == {
        "executionId": "exec-r2",
        "baseModelId": round_one.id,
    }
    assert stored.metadata["system"]["subsets"] == BASE_SUBSETS


def test_name_collision_with_an_unrelated_model_gives_a_numbered_name(platform, project, items):
    dataset = items
    base_model = _base_model(platform, project, dataset)
    platform.create_model(project, "release", dataset=dataset, status="created")
    context = platform.make_context({"modelName": "release"}, "exec-c1", project)
    new_model, _ = _run(base_model, dataset, context)
    assert new_model.name == "release-2"
    assert platform.get_json("models", new_model.id)["name"] == "release-2"
    platform.create_model(project, "release-3", dataset=dataset, status="created")
    context = platform.make_context({"modelName": "release"}, "exec-c2", project)
    assert _run(base_model, dataset, context)[0].name == "release-4"


def test_name_tries_are_bounded(platform, project, items, monkeypatch):
    dataset = items
    monkeypatch.setattr(cnm_naming, "MAX_NAME_TRIES", 3)
    base_model = _base_model(platform, project, dataset)
    for name in ("full", "full-2", "full-3"):
        platform.create_model(project, name, dataset=dataset, status="created")
    platform.reset_counts()
    with pytest.raises(ValueError, match=r"^customNodeConfig.modelName: the names 'full' to 'full-3' are all taken"):
        _run(base_model, dataset, platform.make_context({"modelName": "full"}, "exec-b", project))
    assert platform.request_counts[CLONE] == 0
    assert platform.write_count() == 0


def test_a_name_taken_between_lookup_and_clone_moves_on(platform, project, items, monkeypatch):
    dataset = items
    base_model = _base_model(platform, project, dataset)
    real_clone = cnm_node._clone
    calls = []

    def racing_clone(base, ds, proj, name, configuration, subsets, tags):
        calls.append(name)
        if len(calls) == 1:  # another run takes the name just before our clone
            platform.create_model(project, name, dataset=dataset, status="created")
        return real_clone(base, ds, proj, name, configuration, subsets, tags)

    monkeypatch.setattr(cnm_node, "_clone", racing_clone)
    new_model, _ = _run(base_model, dataset, platform.make_context({"modelName": "race"}, "exec-x", project))
    assert calls == ["race", "race-2"]
    assert new_model.name == "race-2"


def test_other_platform_errors_propagate_with_context(platform, project, items):
    dataset = items
    base_model = _base_model(platform, project, dataset)
    platform.fail_next("POST", r"/clone", status=400)
    with pytest.raises(RuntimeError, match=r"cloning model 'base' \(.*\) as 'oops' was refused"):
        _run(base_model, dataset, platform.make_context({"modelName": "oops"}, "exec-e", project))
    assert [m.name for m in project.models.list().all()] == ["base"]


def test_a_refused_execution_lookup_is_an_error_naming_the_query_not_no_model(platform, project, items):
    """dtlpy's ``project.models.list`` reads a 400 as "no models" and the node would clone again."""
    dataset = items
    base_model = _base_model(platform, project, dataset)
    context = platform.make_context({"modelName": "v2"}, "exec-400", project)
    platform.fail_next("POST", r"/ml/models/query", status=400)
    platform.reset_counts()
    with pytest.raises(
        RuntimeError, match=r"execution exec-400 failed: .?the platform refused the models query .*tags"
    ):
        _run(base_model, dataset, context)
    assert platform.write_count() == 0 and platform.request_counts[CLONE] == 0
    assert platform.request_counts[MODELS_QUERY] == 1


def test_a_refused_name_lookup_is_an_error_naming_the_query_not_free_names(platform, project, items):
    dataset = items
    base_model = _base_model(platform, project, dataset)
    platform.fail_next("POST", r"/ml/models/query", status=400)
    platform.reset_counts()
    with pytest.raises(RuntimeError, match=r"looking up model names .*the platform refused the models query .*name"):
        _run(base_model, dataset, None)  # outside a pipeline no execution is looked up: the names query is first
    assert platform.write_count() == 0 and platform.request_counts[CLONE] == 0


def test_an_empty_train_subset_creates_nothing(platform, project, items):
    dataset = items
    base_model = _base_model(platform, project, dataset)
    stored_before = platform.get_json("models", base_model.id)
    context = platform.make_context(None, "exec-empty", project)
    platform.reset_counts()
    with pytest.raises(ValueError, match=r"^train_subset: .* matches no items in dataset"):
        _run(base_model, dataset, context, train_subset={"dir": "/nowhere"})
    assert platform.write_count() == 0
    assert platform.request_counts[CLONE] == 0
    assert platform.request_counts[ITEMS_QUERY] == 1
    assert platform.get_json("models", base_model.id) == stored_before


def test_an_empty_dataset_with_default_subsets_creates_nothing(platform, project, dataset):
    base_model = _base_model(platform, project, dataset)
    platform.reset_counts()
    with pytest.raises(ValueError, match="matches no items"):
        _run(base_model, dataset, None)
    assert platform.write_count() == 0


@pytest.mark.parametrize(
    ("node_config", "inputs", "message"),
    [
        ({"modelName": "{__import__('os').system('touch pwned')}"}, {}, r"^customNodeConfig.modelName: "),
        ({"modelName": "{base_model.__class__}"}, {}, r"^customNodeConfig.modelName: "),
        ({"modelName": "a/b"}, {}, r"contains '/'"),
        (None, {"train_subset": {"name": {"$where": "1"}}}, r"^train_subset.filter.name.\$where: "),
        (None, {"validation_subset": "not json"}, r"^validation_subset: "),
        (None, {"model_configuration": [1, 2]}, r"^model_configuration: "),
    ],
)
def test_bad_input_writes_nothing(platform, project, items, node_config, inputs, message, tmp_path, monkeypatch):
    dataset = items
    monkeypatch.chdir(tmp_path)
    base_model = _base_model(platform, project, dataset)
    context = platform.make_context(node_config, "exec-bad", project)
    platform.reset_counts()
    with pytest.raises(ValueError, match=message):
        _run(base_model, dataset, context, **inputs)
    assert platform.write_count() == 0
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("status", ["created", "training", "failed"])
def test_an_untrained_base_model_is_refused(platform, project, items, status):
    base_model = _base_model(platform, project, items, status=status)
    platform.reset_counts()
    with pytest.raises(ValueError, match=rf"^base_model.status: '{status}' is not one of"):
        _run(base_model, items, None)
    assert platform.write_count() == 0


def test_missing_base_model_or_dataset(platform, project, items):
    base_model = _base_model(platform, project, items)
    with pytest.raises(ValueError, match=r"^base_model: None"):
        _run(None, items)
    with pytest.raises(ValueError, match=r"^dataset: None"):
        _run(base_model, None)


@pytest.mark.parametrize(
    ("which", "build", "message"),
    [
        ("base_model", lambda base, ds: base.id, r"^base_model: '[^']+' is a str, not a model; connect the model"),
        ("base_model", lambda base, ds: {"id": base.id}, r"^base_model: \{'id': .* is a dict, not a model"),
        ("base_model", lambda base, ds: ds, r"^base_model: .* is a Dataset, not a model; .*dl\.models\.get"),
        ("dataset", lambda base, ds: ds.id, r"^dataset: '[^']+' is a str, not a dataset; connect the dataset"),
        ("dataset", lambda base, ds: base, r"^dataset: .* is a Model, not a dataset; .*dl\.datasets\.get"),
    ],
)
def test_inputs_of_the_wrong_kind_are_refused_before_any_request(platform, project, items, which, build, message):
    base_model = _base_model(platform, project, items)
    wrong = build(base_model, items)
    context = platform.make_context({"modelName": "{base_model.name}-next"}, "exec-kind", project)
    platform.reset_counts()
    inputs = {"base_model": base_model, "dataset": items, which: wrong}
    with pytest.raises(ValueError, match=message) as error:
        _run(context=context, **inputs)
    assert len(str(error.value)) <= 1024
    assert sum(platform.request_counts.values()) == 0


def test_a_base_model_of_another_project_is_cloned_into_the_datasets_project(platform, project, items):
    """dtlpy's Models.clone makes the clone in the dataset's project (e.g. from a public pre-trained model)."""
    other = dl.projects.create(project_name=f"{project.name}-other")
    other_dataset = other.datasets.create(dataset_name="other", labels=platform_labels(["cat", "dog"]))
    base_model = _base_model(platform, other, other_dataset)
    stored_before = platform.get_json("models", base_model.id)
    context = platform.make_context({"modelName": "{base_model.name}-next"}, "exec-cross", project)
    new_model, returned = _run(base_model, items, context)
    assert returned.id == base_model.id
    stored = platform.get_json("models", new_model.id)
    assert (stored["projectId"], stored["datasetId"], stored["name"]) == (project.id, items.id, "base-next")
    assert platform.get_json("models", base_model.id) == stored_before


def test_a_base_whose_tags_are_a_string_is_refused_before_any_write(platform, project, items):
    base_model = _base_model(platform, project, items)
    base_model.tags = "update model"  # what a caller's entity can hold; never split into characters
    platform.reset_counts()
    with pytest.raises(ValueError, match=r"^base_model.tags: 'update model' is not a list of strings"):
        _run(base_model, items, None)
    assert platform.write_count() == 0


@pytest.mark.parametrize(
    ("node_config", "message"),
    [
        ({"modelName": "model\n"}, r"^customNodeConfig.modelName: 'model\\n' has the control character"),
        ({"modelName": "mo\x00del"}, r"^customNodeConfig.modelName: 'mo\\x00del' has the control character"),
        ({"modelName": "x", "pad": "x" * 2_000_000}, r"^customNodeConfig: .* bytes of JSON is over"),
    ],
)
def test_a_bad_node_config_is_refused_before_any_write(platform, project, items, node_config, message):
    base_model = _base_model(platform, project, items)
    context = platform.make_context(node_config, "exec-config", project)
    platform.reset_counts()
    with pytest.raises(ValueError, match=message):
        _run(base_model, items, context)
    assert platform.write_count() == 0


def test_a_train_subset_whose_filter_is_a_list_is_refused(platform, project, items):
    base_model = _base_model(platform, project, items)
    platform.reset_counts()
    with pytest.raises(ValueError, match=r"^train_subset.filter: \[\] is not an object of conditions; example: "):
        _run(base_model, items, None, train_subset={"filter": []})
    assert platform.write_count() == 0


def test_without_context_the_default_template_is_used(platform, project, items):
    base_model = _base_model(platform, project, items)
    before = datetime.now()
    new_model, _ = _run(base_model, items, None)
    prefix, stamp = new_model.name.split("_", 1)
    assert prefix == "base"
    assert abs((datetime.strptime(stamp, "%Y_%m_%d-T%H_%M_%S") - before).total_seconds()) < 60
    created_by = dl.models.get(model_id=new_model.id).metadata["user"]["activeLearning"]["createdBy"]
    assert created_by == {"executionId": None, "baseModelId": base_model.id}


def test_context_without_node_config_uses_the_default_template(platform, project, items):
    base_model = _base_model(platform, project, items)
    new_model, _ = _run(base_model, items, platform.make_context(None, "exec-n", project))
    assert new_model.name.startswith("base_")


def test_pipeline_variables_are_never_touched(platform, project, items):
    variables = [{"name": "train_subset", "type": "Json", "value": {"dir": "/x"}}]
    base_model = _base_model(platform, project, items)
    context = platform.make_context({"modelName": "vars"}, "exec-v", project, pipeline_variables=variables)
    pipeline_before = platform.get_json("pipelines", context.pipeline_id)
    platform.reset_counts()
    _run(base_model, items, context)
    assert platform.get_json("pipelines", context.pipeline_id) == pipeline_before
    assert not [key for key in platform.request_counts if "/pipelines" in key and not key.startswith("GET")]


def test_the_clone_carries_its_execution_tag_and_not_the_base_models(platform, project, items):
    """The execution is recorded in the clone request itself (a model tag), so a retry finds the
    model even if the createdBy update failed; a base made by an earlier run keeps no stale tag."""
    base_model = platform.create_model(project, "tagged-base", dataset=items, status="trained")
    base_model.tags = ["yolo", cnm.execution_tag("exec-old")]
    base_model = base_model.update()
    new_model, _ = _run(base_model, items, platform.make_context({"modelName": "tagged"}, "exec-new", project))
    stored = platform.get_json("models", new_model.id)
    assert stored["tags"] == ["yolo", "active-learning-execution:exec-new"]
    assert stored["metadata"]["user"]["activeLearning"]["createdBy"]["executionId"] == "exec-new"
    again, _ = _run(base_model, items, platform.make_context({"modelName": "tagged"}, "exec-new", project))
    assert again.id == new_model.id


def test_a_clone_whose_answer_was_lost_is_recognised_not_cloned_again(platform, project, items, monkeypatch):
    """dtlpy resends a clone whose answer timed out; the resend meets the name the first one took."""
    base_model = platform.create_model(project, "lost-base", dataset=items, status="trained")
    real_clone = cnm_node._clone
    calls = []

    def clone_then_lose_the_answer(*args):
        calls.append(args[3])
        real_clone(*args)
        raise dl.exceptions.Conflict("409", "model name already exists")

    monkeypatch.setattr(cnm_node, "_clone", clone_then_lose_the_answer)
    new_model, _ = _run(base_model, items, platform.make_context({"modelName": "lost"}, "exec-lost", project))
    assert calls == ["lost"]
    assert new_model.name == "lost"
    names = sorted(m["name"] for m in platform.store.tables["models"].values() if m.get("projectId") == project.id)
    assert names == ["lost", "lost-base"]
