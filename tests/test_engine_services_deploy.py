"""The README's deploy path on the local platform, with dtlpy: both manifests (``dataloop.json``
and ``template/dataloop.json``) publish and install, and the installed app's services run this
app's code as packed at publish (``main.ServiceRunner.score_item`` on an item).
Sources: emulator/README.md, "Services, executions, models"; dtlpy ``repositories/dpks.py``
(``publish`` packs the folder), ``entities/dpk.py`` (``components.pipelines: []``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import dtlpy as dl
import pytest

from emulator import LocalPlatform

ROOT = Path(__file__).resolve().parents[1]


def _publish(project: dl.Project, folder: Path) -> dl.Dpk:
    """Publish ``folder`` as a version of its own (DPK versions are platform-wide: another test of
    the session may have published the manifest's version)."""
    manifest = json.loads((folder / "dataloop.json").read_text())
    manifest["version"] = f"{manifest['version']}-{project.id}"
    (folder / "dataloop.json").write_text(json.dumps(manifest))
    cwd = Path.cwd()
    os.chdir(folder)  # dtlpy packs into <cwd>/.dataloop: keep it in the temporary folder
    try:
        return project.dpks.publish(manifest_filepath=str(folder / "dataloop.json"), local_path=str(folder))
    finally:
        os.chdir(cwd)


@pytest.fixture
def app_copy(tmp_path) -> Path:
    """The app's code as a user's checkout holds it (``main.py``, ``nodes/``, the manifest)."""
    folder = tmp_path / "active-learning"
    folder.mkdir()
    for name in ("main.py", "dataloop.json", "requirements.txt"):
        shutil.copy(ROOT / name, folder / name)
    shutil.copytree(ROOT / "nodes", folder / "nodes", ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def test_the_app_publishes_installs_and_runs_its_packed_code(platform: LocalPlatform, project, dataset, app_copy):
    """``dpks.publish`` + ``apps.install`` of ``dataloop.json`` deploys one service per module,
    named as the template's custom nodes name them (``namespace.serviceName``); executing
    ``score_item`` (the Uncertainty Gate) on an item with predictions runs the packed
    ``main.ServiceRunner`` in a worker process: the execution succeeds, routes ``label`` or
    ``skip``, and the item carries the gate's record."""
    dpk = _publish(project, app_copy)
    app = project.apps.install(dpk=dpk)
    assert app.status == "Installed"
    services = {s.name: s for s in project.services.list().all()}
    assert set(services) == {"model-data-split", "create-new-model", "compare-models", "select-for-labeling"}
    assert services["select-for-labeling"].module_name == "select_for_labeling"

    model = platform.create_model(project, "scorer", dataset=dataset)
    item = dataset.items.upload(local_path=str(app_copy / "main.py"), remote_name="scored.py")
    builder = item.annotations.builder()
    for label, confidence in (("cat", 0.5), ("dog", 0.4), ("bird", 0.1)):
        builder.add(
            annotation_definition=dl.Classification(label=label),
            model_info={"name": model.name, "model_id": model.id, "confidence": confidence},
        )
    item.annotations.upload(builder)

    execution = services["select-for-labeling"].execute(execution_input={"item": item.id}, function_name="score_item")
    assert platform.store.engine.wait_idle(180)
    execution = execution.wait()
    assert execution.latest_status["status"] == "success", platform.store.engine.logs.get(execution.id)
    assert execution.output == item.id
    assert platform.store.get_execution(execution.id)["action"] in ("label", "skip")
    record = dl.items.get(item_id=item.id).metadata["user"]["activeLearning"]["selection"]
    assert record["executionId"] == execution.id and record["modelId"] == model.id

    project.apps.uninstall(app_id=app.id)
    assert not list(project.services.list().all())


def test_the_template_publishes_and_installs(platform: LocalPlatform, project, tmp_path):
    """``template/dataloop.json`` publishes although dtlpy adds ``components.pipelines: []`` to a
    manifest without ``pipelineNodes`` (``entities/dpk.py`` ``default_pipelines``) and installs."""
    folder = tmp_path / "template"
    folder.mkdir()
    shutil.copy(ROOT / "template" / "dataloop.json", folder / "dataloop.json")
    dpk = _publish(project, folder)
    assert dpk.name == "active-learning-pipeline-template"
    stored = platform.store.get_dpk(dpk.id)
    assert stored["components"]["pipelines"] == [] and len(stored["components"]["pipelineTemplates"]) == 1
    app = project.apps.install(dpk=dpk)
    assert app.status == "Installed" and app.dpk_name == dpk.name


def test_a_non_empty_components_pipelines_is_still_refused(platform: LocalPlatform, project):
    """Only the empty list dtlpy itself adds is accepted; ``components.pipelines`` with content is
    not a component key (dtlpy ``entities/dpk.py`` ``Components``) and is refused naming it (sent
    as is: dtlpy's ``Dpk.from_json`` would replace it with ``[]``)."""
    from emulator.store import ApiError

    manifest = json.loads((ROOT / "template" / "dataloop.json").read_text())
    manifest["components"]["pipelines"] = [{"name": "x"}]
    manifest["context"] = {"project": project.id}
    with pytest.raises(ApiError, match="components.pipelines"):
        platform.call("POST", "/app-registry", manifest)
