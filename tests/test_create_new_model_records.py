"""Create New Model never writes a model it cannot finish, and the new model's records are its own.

Through ``main.ServiceRunner.create_new_model`` with the real dtlpy client on LocalPlatform: a
base model with a malformed field is refused before the clone (reruns too), and a clone of last
round's winner starts without the base's ``activeLearning`` records or decision tag, also when
the update after the clone failed and the execution is retried.
"""

from __future__ import annotations

import copy

import dtlpy as dl
import pytest

from main import ServiceRunner
from nodes import create_new_model as cnm

CLONE = "POST /ml/models/{id}/clone"
PATCH_MODEL = "PATCH /ml/models/{id}"
TEMPLATE = {"modelName": "{base_model.name}-next"}


@pytest.fixture
def items(platform, dataset):
    platform.add_items(
        dataset, [{"name": f"t{i}.jpg", "metadata": {"system": {"tags": {"train": True}}}} for i in range(3)]
    )
    return dataset


def _run(platform, project, base_model, dataset, execution_id):
    context = platform.make_context(TEMPLATE, execution_id=execution_id, project=project)
    return ServiceRunner().create_new_model(base_model=base_model, dataset=dataset, context=context)


def _project_models(platform, project):
    return sorted(
        (m for m in platform.store.tables["models"].values() if m["context"]["project"] == project.id),
        key=lambda m: m["name"],
    )


# ------------------------------------------------------------------------------------------
# a malformed base model is refused before the clone
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "metadata",
    [
        {"user": {"activeLearning": None}},
        {"user": None},
        {"system": {"subsets": None, "annotationsSubsets": None, "tags": None}},
        {"user": {"activeLearning": {"createdBy": None, "comparison": None}}, "system": {"tags": {"discard": None}}},
    ],
    ids=["activeLearning-null", "user-null", "system-fields-null", "records-null"],
)
def test_a_null_on_the_base_reads_as_absent_and_gives_the_same_new_model(platform, project, items, metadata):
    """The reported case: a base model whose ``activeLearning`` is ``null`` (a platform that keeps the
    null a removal sends) was refused. ``null`` reads as absent: the clone is made, its records are
    its own, exactly as for a base without the key, and a rerun returns the same model."""
    base_model = platform.create_model(
        project, "winner", dataset=items, configuration={"epochs": 2}, metadata=copy.deepcopy(metadata)
    )
    stored_before = platform.get_json("models", base_model.id)
    new_model, _ = _run(platform, project, base_model, items, "exec-null")
    again, _ = _run(platform, project, base_model, items, "exec-null")
    assert again.id == new_model.id
    assert [m["name"] for m in _project_models(platform, project)] == ["winner", "winner-next"]
    stored = platform.get_json("models", new_model.id)["metadata"]
    assert stored["user"]["activeLearning"] == {"createdBy": {"executionId": "exec-null", "baseModelId": base_model.id}}
    assert set(stored["system"]["subsets"]) >= {"train", "validation"}
    assert platform.get_json("models", base_model.id) == stored_before  # the base is never written


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({"user": "me"}, "base_model.metadata.user"),
        ({"user": {"activeLearning": "yes"}}, "base_model.metadata.user.activeLearning"),
        ({"user": {"activeLearning": [{"createdBy": {}}]}}, "base_model.metadata.user.activeLearning"),
        ({"system": {"subsets": "train"}}, "base_model.metadata.system.subsets"),
        ({"system": {"annotationsSubsets": 1}}, "base_model.metadata.system.annotationsSubsets"),
        ({"system": {"tags": ["update model"]}}, "base_model.metadata.system.tags"),
    ],
)
def test_each_malformed_base_field_is_refused_before_any_write(platform, project, items, metadata, field):
    base_model = platform.create_model(project, "base", dataset=items, metadata=copy.deepcopy(metadata))
    platform.reset_counts()
    with pytest.raises(ValueError, match=rf"^{field.replace('.', '[.]')}: .* is not an object; "):
        _run(platform, project, base_model, items, "exec-shape")
    assert platform.write_count() == 0
    assert [m["name"] for m in _project_models(platform, project)] == ["base"]


def _with_stored_configuration(platform, base_model, configuration):
    """The base model as dtlpy reads it after its stored configuration was set to ``configuration``."""
    platform.store.tables["models"][base_model.id]["configuration"] = copy.deepcopy(configuration)
    return dl.models.get(model_id=base_model.id)


@pytest.mark.parametrize(
    ("configuration", "message"),
    [
        ([1, 2], r"^base_model\.configuration: \[1, 2\] is not an object"),
        ("epochs=3", r"^base_model\.configuration: 'epochs=3' is not an object"),
        ({"a": {"b": [1, {"c": 1}]}, "deep": {"x": {"y": {}}}}, None),  # a well-formed one passes
    ],
)
def test_base_configuration_is_checked_before_the_clone(platform, project, items, configuration, message):
    base_model = platform.create_model(project, "base", dataset=items)
    base_model = _with_stored_configuration(platform, base_model, configuration)
    platform.reset_counts()
    if message is None:
        new_model, _ = _run(platform, project, base_model, items, "exec-conf")
        assert platform.get_json("models", new_model.id)["configuration"] == configuration
        return
    with pytest.raises(ValueError, match=message):
        _run(platform, project, base_model, items, "exec-conf")
    assert platform.write_count() == 0
    assert [m["name"] for m in _project_models(platform, project)] == ["base"]


def test_a_base_without_configuration_clones(platform, project, items):
    """A configuration of ``null`` is an absent one (dtlpy's clone would otherwise crash on it)."""
    base_model = _with_stored_configuration(platform, platform.create_model(project, "bare", dataset=items), None)
    assert base_model.configuration is None
    new_model, _ = _run(platform, project, base_model, items, "exec-bare")
    assert platform.get_json("models", new_model.id)["configuration"] == {}


# ------------------------------------------------------------------------------------------
# the new model's records are its own
# ------------------------------------------------------------------------------------------


def _last_rounds_winner(platform, project, dataset, decision):
    """A base as the previous round left it: created by this node, compared, tagged by Compare."""
    return platform.create_model(
        project,
        "winner",
        dataset=dataset,
        configuration={"epochs": 2},
        tags=["yolo", decision, cnm.execution_tag("exec-round-1")],
        metadata={
            "user": {
                "activeLearning": {
                    "createdBy": {"executionId": "exec-round-1", "baseModelId": "m-older"},
                    "comparison": {"decision": decision, "votes": []},
                },
                "team": {"owner": "ana"},
            },
            "system": {"tags": {decision: True, "reviewed": True}},
        },
    )


@pytest.mark.parametrize("decision", ["update model", "discard"])
def test_a_clone_of_last_rounds_winner_starts_with_records_of_its_own(platform, project, items, decision):
    base_model = _last_rounds_winner(platform, project, items, decision)
    stored_before = platform.get_json("models", base_model.id)
    platform.reset_counts()
    new_model, returned_base = _run(platform, project, base_model, items, "exec-round-2")

    stored = platform.get_json("models", new_model.id)
    assert stored["metadata"]["user"] == {
        "activeLearning": {"createdBy": {"executionId": "exec-round-2", "baseModelId": base_model.id}},
        "team": {"owner": "ana"},  # the user's own metadata is copied
    }
    assert stored["metadata"]["system"]["tags"] == {"reviewed": True}
    assert stored["metadata"]["system"]["clonedFrom"] == base_model.id
    assert stored["tags"] == ["yolo", cnm.execution_tag("exec-round-2")]
    assert new_model.metadata == stored["metadata"]  # the returned entity is the stored one
    assert platform.get_json("models", base_model.id) == stored_before  # the base is never modified
    assert returned_base is base_model
    assert platform.request_counts[CLONE] == 1 and platform.request_counts[PATCH_MODEL] == 1
    assert platform.write_count() == 2


def test_a_rerun_after_a_failed_record_replaces_the_inherited_records(platform, project, items):
    base_model = _last_rounds_winner(platform, project, items, "update model")
    platform.fail_next("PATCH", r"/ml/models/", status=500, times=1)
    with pytest.raises(RuntimeError, match=r"was created but recording metadata.user.activeLearning.createdBy failed"):
        _run(platform, project, base_model, items, "exec-retry")
    (half_done,) = [m for m in _project_models(platform, project) if m["name"] == "winner-next"]
    # what the platform's clone copied: the base's records and verdict (the reason for the update)
    assert half_done["metadata"]["user"]["activeLearning"]["createdBy"]["executionId"] == "exec-round-1"
    assert half_done["metadata"]["system"]["tags"]["update model"] is True

    platform.reset_counts()
    again, _ = _run(platform, project, base_model, items, "exec-retry")
    assert again.id == half_done["id"]
    assert platform.request_counts[CLONE] == 0 and platform.request_counts[PATCH_MODEL] == 1
    stored = platform.get_json("models", again.id)
    assert stored["metadata"]["user"]["activeLearning"] == {
        "createdBy": {"executionId": "exec-retry", "baseModelId": base_model.id}
    }
    assert stored["metadata"]["system"]["tags"] == {"reviewed": True}
    assert [m["name"] for m in _project_models(platform, project)] == ["winner", "winner-next"]

    platform.reset_counts()  # finished now: a third run writes nothing
    third, _ = _run(platform, project, base_model, items, "exec-retry")
    assert third.id == again.id and platform.write_count() == 0


def test_a_rerun_keeps_what_later_nodes_wrote_on_the_finished_model(platform, project, items):
    base_model = _last_rounds_winner(platform, project, items, "discard")
    new_model, _ = _run(platform, project, base_model, items, "exec-later")
    compared = dl.models.get(model_id=new_model.id)  # Compare Models stores its verdict on it
    compared.metadata["user"]["activeLearning"]["comparison"] = {"decision": "update model"}
    compared.metadata["system"]["tags"]["update model"] = True
    compared.update(system_metadata=True)
    stored_before = platform.get_json("models", new_model.id)
    platform.reset_counts()
    again, _ = _run(platform, project, base_model, items, "exec-later")
    assert again.id == new_model.id
    assert platform.write_count() == 0
    assert platform.get_json("models", new_model.id) == stored_before
