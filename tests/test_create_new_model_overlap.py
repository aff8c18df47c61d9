"""Two runs of one execution, even overlapping, end with exactly one model.

Threads call ``main.ServiceRunner().create_new_model`` with the same execution id at the same
time, through the real dtlpy client on LocalPlatform. Three guards, each tested on its own:

- the name: time placeholders show the execution's ``createdAt`` when the context has it, so
  every run renders the same name and the platform's name uniqueness refuses the second clone,
  whose run then finds the first run's model by the execution tag;
- a name held by a model carrying this execution's tag is that model (no ``-2`` clone);
- after its clone, a run lists the execution's models; the runs agree on the oldest and a run
  whose clone is newer deletes it (names that differ, or a platform whose name check races).
"""

from __future__ import annotations

import threading

import dtlpy as dl
import pytest

from main import ServiceRunner
from nodes import create_new_model as cnm
from nodes.create_new_model import node as cnm_node

CLONE = "POST /ml/models/{id}/clone"
DELETE_MODEL = "DELETE /ml/models/{id}"


@pytest.fixture
def base(platform, project, dataset):
    platform.add_items(
        dataset, [{"name": f"t{i}.jpg", "metadata": {"system": {"tags": {"train": True}}}} for i in range(3)]
    )
    model = platform.create_model(project, "base", dataset=dataset, configuration={"epochs": 2})
    platform.reset_counts()
    return model


def _models(platform, project):
    return sorted(
        (m for m in platform.store.tables["models"].values() if m["context"]["project"] == project.id),
        key=lambda m: m["name"],
    )


def _execution_models(platform, project, execution_id):
    tag = cnm.execution_tag(execution_id)
    return [m for m in _models(platform, project) if tag in m.get("tags", [])]


def _run_together(platform, project, base_model, dataset, node_config, execution_id, runs=2, created_at=None):
    """Start ``runs`` threads at once, each with its own context of the same execution."""
    contexts = [platform.make_context(node_config, execution_id=execution_id, project=project) for _ in range(runs)]
    for context in contexts:
        if created_at is not None:
            context.execution_dict["createdAt"] = created_at
    start = threading.Barrier(runs)
    results: list = [None] * runs

    def run(k):
        start.wait()
        try:
            results[k] = ServiceRunner().create_new_model(base_model=base_model, dataset=dataset, context=contexts[k])
        except BaseException as error:  # reported by the test
            results[k] = error

    threads = [threading.Thread(target=run, args=(k,)) for k in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not [t for t in threads if t.is_alive()]
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    return [new_model for new_model, _ in results]


def _assert_one_finished_model(platform, project, base_model, execution_id, returned):
    (only,) = _execution_models(platform, project, execution_id)
    assert {m.id for m in returned} == {only["id"]}
    assert only["metadata"]["user"]["activeLearning"] == {
        "createdBy": {"executionId": execution_id, "baseModelId": base_model.id}
    }
    assert len(_models(platform, project)) == 2  # the base and the one new model
    return only


@pytest.mark.parametrize("attempt", range(3))
def test_overlapping_runs_with_the_same_name_end_with_one_model(platform, project, dataset, base, attempt):
    returned = _run_together(platform, project, base, dataset, {"modelName": "{base_model.name}-next"}, "exec-o", 3)
    only = _assert_one_finished_model(platform, project, base, "exec-o", returned)
    assert only["name"] == "base-next"


@pytest.mark.parametrize("attempt", range(3))
def test_overlapping_runs_of_the_default_template_share_the_executions_time(platform, project, dataset, base, attempt):
    returned = _run_together(platform, project, base, dataset, None, "exec-d", 3, created_at="2025-01-31T12:05:09Z")
    only = _assert_one_finished_model(platform, project, base, "exec-d", returned)
    local = cnm.execution_time({"createdAt": "2025-01-31T12:05:09Z"})
    assert only["name"] == f"base_{local:%Y_%m_%d-T%H_%M_%S}"


def test_the_name_shows_the_executions_creation_time(platform, project, dataset, base):
    template = {"modelName": "{base_model.name}_{datetime.datetime.utcnow().strftime('%Y_%m_%d-T%H_%M_%S')}"}
    context = platform.make_context(template, execution_id="exec-t", project=project)
    context.execution_dict["createdAt"] = "2025-01-31T12:05:09.500Z"
    new_model, _ = ServiceRunner().create_new_model(base_model=base, dataset=dataset, context=context)
    assert new_model.name == "base_2025_01_31-T12_05_09"


def test_both_runs_clone_before_either_looks_and_the_newer_clone_is_deleted(
    platform, project, dataset, base, monkeypatch
):
    """Names that differ (microseconds), and both clones land before either run checks: the
    worst interleaving, forced with a barrier right after each clone."""
    real_clone = cnm_node._clone
    both_cloned = threading.Barrier(2)

    def clone_then_wait(*args):
        model = real_clone(*args)
        both_cloned.wait(timeout=60)
        return model

    monkeypatch.setattr(cnm_node, "_clone", clone_then_wait)
    platform.reset_counts()
    returned = _run_together(platform, project, base, dataset, {"modelName": "{now:%H%M%S%f}"}, "exec-w")
    only = _assert_one_finished_model(platform, project, base, "exec-w", returned)
    assert platform.request_counts[CLONE] == 2
    assert platform.request_counts[DELETE_MODEL] == 1
    first = min((m for m in returned), key=lambda m: m.id)
    assert only["id"] == first.id  # the oldest clone is the one kept


def test_a_run_that_finds_the_name_taken_by_its_own_execution_returns_that_model(
    platform, project, dataset, base, monkeypatch
):
    """The other run's clone landed after this run's execution lookup but before its names lookup."""
    first, _ = ServiceRunner().create_new_model(
        base_model=base,
        dataset=dataset,
        context=platform.make_context({"modelName": "same"}, execution_id="exec-n", project=project),
    )
    monkeypatch.setattr(cnm_node, "_find_created_model", lambda project, execution_id: None)
    platform.reset_counts()
    again, _ = ServiceRunner().create_new_model(
        base_model=base,
        dataset=dataset,
        context=platform.make_context({"modelName": "same"}, execution_id="exec-n", project=project),
    )
    assert again.id == first.id
    assert platform.request_counts[CLONE] == 0 and platform.write_count() == 0
    assert [m["name"] for m in _models(platform, project)] == ["base", "same"]


def test_a_name_held_by_another_executions_model_still_moves_on(platform, project, dataset, base):
    ServiceRunner().create_new_model(
        base_model=base,
        dataset=dataset,
        context=platform.make_context({"modelName": "same"}, execution_id="exec-a", project=project),
    )
    other, _ = ServiceRunner().create_new_model(
        base_model=base,
        dataset=dataset,
        context=platform.make_context({"modelName": "same"}, execution_id="exec-b", project=project),
    )
    assert other.name == "same-2"


def test_a_failed_delete_of_the_duplicate_says_so(platform, project, dataset, base, monkeypatch):
    """The older clone exists already (an overlapping run); this run's clone, newer, cannot be deleted."""
    older = ServiceRunner().create_new_model(
        base_model=base,
        dataset=dataset,
        context=platform.make_context({"modelName": "older"}, execution_id="exec-f", project=project),
    )[0]
    monkeypatch.setattr(cnm_node, "_find_created_model", lambda project, execution_id: None)
    platform.fail_next("DELETE", r"/ml/models/", status=500, times=1)
    with pytest.raises(RuntimeError) as error:
        ServiceRunner().create_new_model(
            base_model=base,
            dataset=dataset,
            context=platform.make_context({"modelName": "newer"}, execution_id="exec-f", project=project),
        )
    message = str(error.value)
    assert message.startswith("execution exec-f created two models, 'older'")
    assert "'newer'" in message and "delete it by hand" in message and len(message) <= 1024
    assert {m["name"] for m in _execution_models(platform, project, "exec-f")} == {"older", "newer"}
    assert dl.models.get(model_id=older.id).name == "older"
