"""The Active Learning template runs on the local platform as a new user would run it: the app
and the demo's model app published and installed with dtlpy, ``pipelines.create`` of
``pipeline_configs/active_learning_pipeline.json``, ``install()``, an item uploaded into the Raw
Dataset, the Labeling and Review tasks completed with ``item.update_status``, the cron start
node fired on the platform's clock. Every node runs as the platform runs it (custom nodes in the
app's services, ml nodes as model operations); sources: emulator/README.md, "Pipelines".
"""

from __future__ import annotations

import copy
import io
import json
import os
import shutil
from pathlib import Path

import dtlpy as dl
import pytest

from demo.data import LABELS, encode_png, load_digits_images
from emulator import LocalPlatform, make_labels
from nodes.common.defaults import load_subset_filter

ROOT = Path(__file__).resolve().parents[1]
WAIT_S = 600


def _publish(project: dl.Project, folder: Path, manifest: str) -> dl.Dpk:
    path = folder / manifest
    body = json.loads(path.read_text())
    body["version"] = f"{body['version']}-{project.id}"  # DPK versions are platform-wide
    path.write_text(json.dumps(body))
    cwd = Path.cwd()
    os.chdir(folder)  # dtlpy packs into <cwd>/.dataloop: keep it in the temporary folder
    try:
        return project.dpks.publish(manifest_filepath=str(path), local_path=str(folder))
    finally:
        os.chdir(cwd)


def _upload_digits(dataset: dl.Dataset, count: int, seed: int, tag_subsets: bool) -> list[dl.Item]:
    data = load_digits_images(max(count, 50), seed=seed)  # the loader takes 50 at least
    items = []
    rows = zip(data.names[:count], data.images[:count], data.labels[:count], strict=True)
    for position, (name, image, label) in enumerate(rows):
        buffer = io.BytesIO(encode_png(image))
        buffer.name = name
        item = dataset.items.upload(local_path=buffer)
        if tag_subsets:
            builder = item.annotations.builder()
            builder.add(annotation_definition=dl.Classification(label=label))
            item.annotations.upload(builder)
            subset = ("test", "validation", "train", "train", "train")[position % 5]
            item.metadata.setdefault("system", {})["tags"] = {subset: True}
            item = item.update(system_metadata=True)
        items.append(item)
    return items


@pytest.fixture(scope="module")
def loop(_platform_session: LocalPlatform, tmp_path_factory):
    """A project with both apps installed, a Ground Truth dataset of tagged digits, a trained Best
    Model, and the template installed with its variables set."""
    platform = _platform_session
    project = dl.projects.create(project_name="template-loop")
    raw = project.datasets.create(dataset_name="Raw", labels=make_labels(LABELS))
    ground_truth = project.datasets.create(dataset_name="Ground Truth", labels=make_labels(LABELS))
    _upload_digits(ground_truth, 50, seed=5, tag_subsets=True)
    seed_data = project.datasets.create(dataset_name="Seed", labels=make_labels(LABELS))
    _upload_digits(seed_data, 10, seed=7, tag_subsets=True)  # a small start: the new model should win

    app_folder = tmp_path_factory.mktemp("active-learning")
    for name in ("main.py", "dataloop.json", "requirements.txt"):
        shutil.copy(ROOT / name, app_folder / name)
    shutil.copytree(ROOT / "nodes", app_folder / "nodes", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "pipeline_configs", app_folder / "pipeline_configs")
    project.apps.install(dpk=_publish(project, app_folder, "dataloop.json"))
    model_folder = tmp_path_factory.mktemp("model-app")
    shutil.copytree(ROOT / "demo", model_folder / "demo", ignore=shutil.ignore_patterns("__pycache__", "detection"))
    model_app = project.apps.install(dpk=_publish(project, model_folder, "demo/model_app/dataloop.json"))

    best = project.models.create(
        model_name="digits-v0",
        dataset_id=seed_data.id,
        labels=list(LABELS),
        app=model_app,
        dpk_model_name="digits-classifier",
        status="created",
        train_filter=dl.Filters(custom_filter=load_subset_filter("train")),
        validation_filter=dl.Filters(custom_filter=load_subset_filter("validation")),
    )
    training = best.train()
    assert platform.store.engine.wait_idle(WAIT_S)
    assert training.wait().latest_status["status"] == "success"

    template = json.loads((ROOT / "pipeline_configs" / "active_learning_pipeline.json").read_text())
    values = {"Raw Dataset": raw.id, "Best Model": best.id, "Ground Truth Dataset": ground_truth.id}
    for variable in template["variables"]:
        if variable["name"] in values:
            variable["value"] = values[variable["name"]]
    nodes = {n["name"]: n for n in template["nodes"]}
    nodes["Uncertainty Gate"]["metadata"]["customNodeConfig"]["threshold"] = 0.0  # every item is labelled
    template["projectId"] = project.id
    pipeline = project.pipelines.create(pipeline_json=copy.deepcopy(template))
    pipeline.install()
    return {
        "platform": platform,
        "project": project,
        "raw": raw,
        "ground_truth": ground_truth,
        "best": best,
        "nodes": {name: node["id"] for name, node in nodes.items()},
        "pipeline": project.pipelines.get(pipeline_id=pipeline.id),
    }


def _settle(loop: dict) -> None:
    assert loop["platform"].wait_pipelines_idle(WAIT_S)


def _cycle(loop: dict, cycle_id: str) -> dl.PipelineExecution:
    return loop["pipeline"].pipeline_executions.get(pipeline_execution_id=cycle_id)


def _statuses(cycle: dl.PipelineExecution) -> dict:
    return {n.name: n.status for n in cycle.nodes if n.status != "pending"}


def _executions(loop: dict, cycle: dl.PipelineExecution, name: str) -> list[dl.Execution]:
    return [dl.executions.get(execution_id=e["id"]) for e in cycle.executions.get(loop["nodes"][name], [])]


def _task_id(loop: dict, node_name: str) -> str:
    composition = loop["project"].compositions.get(composition_id=loop["pipeline"].composition_id)
    return next(t["state"]["taskId"] for t in composition["tasks"] if t["nodeId"] == loop["nodes"][node_name])


def test_an_uploaded_item_reaches_labeling_then_ground_truth_through_the_tasks(loop):
    """Item branch: the Raw Dataset's item-created trigger starts a cycle; Raw Data → Predict (the
    Best Model's ``predict_items``) → Uncertainty Gate (``score_item``, action ``label``) →
    Labeling, where the cycle waits (``in-progress``) for the item's status; ``completed`` leads
    to Review, ``approved`` to Model Data Split (action train / validation / test), whose
    connections all lead to Ground Truth, which clones the item into the Ground Truth Dataset."""
    pipeline, raw = loop["pipeline"], loop["raw"]
    (item,) = _upload_digits(raw, 1, seed=11, tag_subsets=False)
    _settle(loop)
    (cycle,) = list(pipeline.pipeline_executions.list().all())
    assert cycle.status == "in-progress"
    assert _statuses(cycle) == {
        "Raw Data": "success",
        "Predict": "success",
        "Uncertainty Gate": "success",
        "Labeling": "in-progress",
    }
    (predict,) = _executions(loop, cycle, "Predict")
    assert predict.function_name == "predict_items" and predict.latest_status["status"] == "success"
    (gate,) = _executions(loop, cycle, "Uncertainty Gate")
    assert gate.function_name == "score_item" and gate.latest_status["status"] == "success"
    predicted = dl.items.get(item_id=item.id).annotations.list()
    assert any(a.metadata.get("user", {}).get("model", {}).get("model_id") == loop["best"].id for a in predicted)

    labeling = _task_id(loop, "Labeling")
    assert [i.id for i in loop["project"].tasks.get(task_id=labeling).get_items().all()] == [item.id]
    dl.items.get(item_id=item.id).update_status(status=dl.ItemStatus.COMPLETED, task_id=labeling)
    _settle(loop)
    cycle = _cycle(loop, cycle.id)
    assert cycle.status == "in-progress" and _statuses(cycle)["Review"] == "in-progress"
    dl.items.get(item_id=item.id).update_status(status=dl.ItemStatus.APPROVED, task_id=_task_id(loop, "Review"))
    _settle(loop)
    cycle = _cycle(loop, cycle.id)
    assert cycle.status == "success", loop["platform"].store.get_pipeline_execution(cycle.id).get("errors")
    (split,) = _executions(loop, cycle, "Model Data Split")
    assert split.function_name == "data_split" and split.latest_status["status"] == "success"
    copies = [i for i in loop["ground_truth"].items.list().all() if i.name == item.name]
    assert len(copies) == 1
    assert set(copies[0].metadata["system"]["tags"]) & {"train", "validation", "test"}


def test_the_cron_start_node_trains_evaluates_compares_and_updates_the_best_model(loop):
    """Model branch, fired by its cron start node on the platform's clock: Create New Model →
    Train (``train_model``) → Evaluate New Model and Evaluate Base Model (``evaluate_model`` ×2)
    → Compare Models → Update Variables on ``update model``: the Best Model variable then names
    the new model, which the next cycle's Predict uses."""
    platform, pipeline = loop["platform"], loop["pipeline"]
    before = {c.id for c in pipeline.pipeline_executions.list().all()}
    started = platform.run_cron(pipeline)
    assert len(started) == 1 and started[0] not in before
    _settle(loop)
    cycle = _cycle(loop, started[0])
    assert cycle.status == "success", loop["platform"].store.get_pipeline_execution(cycle.id).get("errors")
    (create,) = _executions(loop, cycle, "Create New Model")
    new_model_id, base_model_id = create.output
    assert base_model_id == loop["best"].id and new_model_id != base_model_id
    assert [e.function_name for e in _executions(loop, cycle, "Train")] == ["train_model"]
    evaluations = _executions(loop, cycle, "Evaluate New Model") + _executions(loop, cycle, "Evaluate Base Model")
    assert [e.function_name for e in evaluations] == ["evaluate_model", "evaluate_model"]
    (compare,) = _executions(loop, cycle, "Compare Models")
    assert platform.store.get_execution(compare.id)["action"] == "update model"
    assert _statuses(cycle)["Update Variables"] == "success"
    best = {v.name: v.value for v in loop["project"].pipelines.get(pipeline_id=pipeline.id).variables}["Best Model"]
    assert best == new_model_id
    before = {c.id for c in pipeline.pipeline_executions.list().all()}
    _upload_digits(loop["raw"], 1, seed=13, tag_subsets=False)
    _settle(loop)
    (cycle,) = [c for c in pipeline.pipeline_executions.list().all() if c.id not in before]
    (predict,) = _executions(loop, cycle, "Predict")
    assert platform.store.get_execution(predict.id)["model"]["modelId"] == new_model_id
