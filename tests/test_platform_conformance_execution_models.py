"""Documented model operations (conformance) on the local platform with the demo's adapter published as a model app
(``demo/model_app/dataloop.json``): ``model.train()``, ``model.deploy()``,
``model.predict(item_ids)`` and ``model.evaluate(dataset_id, filters)`` run ``DigitsAdapter``
in model services through dtlpy's own ``train_model`` / ``predict_items`` / ``evaluate_model``.
Sources: emulator/README.md, "Services, executions, models" (PIPELINE_FACTS §6).
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import dtlpy as dl
import pytest

from demo.data import LABELS, encode_png, load_digits_images
from emulator import LocalPlatform
from nodes.common.defaults import load_subset_filter

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def digits(_platform_session: LocalPlatform, tmp_path_factory):
    """A project with the model app installed and 60 labelled digits tagged train / validation / test."""
    project = dl.projects.create(project_name="engine-models")
    dataset = project.datasets.create(dataset_name="digits", labels=_labels())
    data = load_digits_images(60, seed=3)
    items = []
    for position, (name, image, label) in enumerate(zip(data.names, data.images, data.labels, strict=True)):
        buffer = io.BytesIO(encode_png(image))
        buffer.name = name
        item = dataset.items.upload(local_path=buffer)
        builder = item.annotations.builder()
        builder.add(annotation_definition=dl.Classification(label=label))
        item.annotations.upload(builder)
        subset = "test" if position % 5 == 0 else "validation" if position % 5 == 1 else "train"
        item.metadata.setdefault("system", {})["tags"] = {subset: True}
        items.append(item.update(system_metadata=True))
    source = tmp_path_factory.mktemp("model-app")
    shutil.copytree(ROOT / "demo", source / "demo", ignore=shutil.ignore_patterns("__pycache__", "detection"))
    cwd = Path.cwd()
    try:  # dtlpy packs into <cwd>/.dataloop: keep it in the temporary folder
        import os

        os.chdir(source)
        dpk = project.dpks.publish(
            manifest_filepath=str(source / "demo/model_app/dataloop.json"), local_path=str(source)
        )
    finally:
        os.chdir(cwd)
    app = project.apps.install(dpk=dpk)
    return {"project": project, "dataset": dataset, "items": items, "app": app, "dpk": dpk}


def _labels():
    from emulator import make_labels

    return make_labels(LABELS)


def _new_model(digits, name: str) -> dl.Model:
    project = digits["project"]
    return project.models.create(
        model_name=name,
        dataset_id=digits["dataset"].id,
        labels=list(LABELS),
        app=digits["app"],
        dpk_model_name="digits-classifier",
        status="created",
        train_filter=dl.Filters(custom_filter=load_subset_filter("train")),
        validation_filter=dl.Filters(custom_filter=load_subset_filter("validation")),
    )


def test_install_creates_the_apps_model(digits):
    """Installing a model app creates its ``components.models`` in the project (PIPELINE_FACTS §7:
    "Model object with the same name should be exist"), bound to the app's adapter module."""
    model = digits["project"].models.get(model_name="digits-classifier")
    assert model.module_name == "digits-adapter" and model.package_id == digits["dpk"].id
    assert model.status == "pre-trained" and model.app["dpkName"] == "digits-classifier"


def test_train_deploy_predict_evaluate(platform, digits):
    """train → an execution of ``train_model`` on a train service (``metadata.ml.modelOperation``
    ``train``) that ends ``trained`` with artifacts; deploy → ``deployed`` and the service in
    ``metadata.system.deploy.services``; predict → ``predict_items`` uploads the model's
    annotations; evaluate → ``evaluate_model``, status stays ``deployed``, the dataset in
    ``metadata.system.evaluate.datasets``; train / evaluate services are archived after use
    (PIPELINE_FACTS §6, dtlpy behave tests models_repo/test_models_flow.feature)."""
    engine = platform.store.engine
    model = _new_model(digits, "digits-v1")

    training = model.train()
    assert training.function_name == "train_model"
    assert engine.wait_idle(300)
    training = training.wait()
    assert training.latest_status["status"] == "success", platform.store.engine.logs.get(training.id)
    train_service = dl.services.get(service_id=training.service_id)
    assert train_service.metadata["ml"] == {"modelId": model.id, "modelOperation": "train"}
    assert train_service.archive is True
    model = dl.models.get(model_id=model.id)
    assert model.status == "trained" and [a.filename for a in model.artifacts.list()]

    service = model.deploy()
    model = dl.models.get(model_id=model.id)
    assert model.status == "deployed" and model.metadata["system"]["deploy"]["services"] == [service.id]
    assert service.metadata["ml"]["modelOperation"] == "deploy"

    targets = [item.id for item in digits["items"][:3]]
    prediction = model.predict(item_ids=targets)
    assert engine.wait_idle(300)
    prediction = prediction.wait()
    assert prediction.latest_status["status"] == "success", platform.store.engine.logs.get(prediction.id)
    assert prediction.function_name == "predict_items" and prediction.service_id == service.id
    items_out, annotations_out = prediction.output
    assert items_out == targets and len(annotations_out) == 3 * 3  # top-3 classes per item
    predicted = dl.items.get(item_id=targets[0]).annotations.list()
    assert sum(1 for a in predicted if a.metadata.get("user", {}).get("model", {}).get("model_id") == model.id) == 3

    test_filter = dl.Filters(custom_filter=load_subset_filter("test"))
    evaluation = model.evaluate(dataset_id=digits["dataset"].id, filters=test_filter)
    assert engine.wait_idle(300)
    evaluation = evaluation.wait()
    assert evaluation.latest_status["status"] == "success", platform.store.engine.logs.get(evaluation.id)
    assert evaluation.function_name == "evaluate_model"
    assert evaluation.output == [model.id, digits["dataset"].id]
    model = dl.models.get(model_id=model.id)
    assert model.status == "deployed"
    assert model.metadata["system"]["evaluate"]["datasets"] == [digits["dataset"].id]
    assert dl.services.get(service_id=evaluation.service_id).archive is True


def test_predict_before_deploy_is_refused_by_dtlpy(digits):
    """dtlpy ``models.predict`` raises "Need to deploy before predicting" without deploy services."""
    model = _new_model(digits, "digits-undeployed")
    with pytest.raises(ValueError, match="deploy"):
        model.predict(item_ids=[digits["items"][0].id])


def test_a_failed_training_leaves_the_model_failed(platform, digits):
    """A training whose adapter raises fails its execution with the traceback in its logs and the
    model's status becomes ``failed`` (dtlpy ``train_model`` logs "Setting model.status to
    failed"; the platform sets it: inferred, PIPELINE_FACTS §6)."""
    model = digits["project"].models.create(
        model_name="digits-no-subsets",
        dataset_id=digits["dataset"].id,
        labels=list(LABELS),
        app=digits["app"],
        dpk_model_name="digits-classifier",
        status="created",
    )
    execution = model.train()
    assert platform.store.engine.wait_idle(300)
    execution = execution.wait()
    assert execution.latest_status["status"] == "failed"
    text = "\n".join(line["message"] for line in platform.store.engine.logs[execution.id])
    assert "Traceback" in text and "has no metadata.system.subsets" in text
    assert dl.models.get(model_id=model.id).status == "failed"


def test_a_model_without_an_app_codebase_is_refused(platform, project, dataset):
    """A model whose package is not a published app with a codebase has no adapter the platform
    could run: ``model.train()`` is refused (400) naming the fix, and no execution is created."""
    model = platform.create_model(project, "bare", dataset=dataset, status="created")
    before = len(platform.store.tables["executions"])
    with pytest.raises(dl.exceptions.BadRequest, match="publish a model app"):
        model.train()
    assert len(platform.store.tables["executions"]) == before
