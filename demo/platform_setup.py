"""The demo's set-up on the platform, as a user would do it with dtlpy: publish and install the
app and the task's model app from the repository folder, create and train the base model, create
and install the template once per arm, find the Labeling and Review tasks of an installed pipeline.

Edge functions (each talks to the platform). Why each step is done this way: docs/demo.md.
"""

from __future__ import annotations

import contextlib
import copy
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
APP_MANIFEST = "dataloop.json"


@contextlib.contextmanager
def _inside(folder: str) -> Iterator[None]:
    """Run in ``folder``: dtlpy packs a codebase into ``<cwd>/.dataloop``, which must not be the
    user's folder (the demo leaves nothing outside its output folder)."""
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(cwd)


def publish_and_install(project, manifest: str):
    """``project.dpks.publish`` of ``manifest`` (relative to the repository) with the repository
    folder as the codebase, then ``project.apps.install``; returns the installed app."""
    import logging

    logging.disable(logging.WARNING)  # dtlpy's "Error getting git info" for a work tree it cannot read
    try:
        with tempfile.TemporaryDirectory(prefix="active-learning-demo-publish-") as folder, _inside(folder):
            dpk = project.dpks.publish(manifest_filepath=str(REPO / manifest), local_path=str(REPO))
    finally:
        logging.disable(logging.NOTSET)
    return project.apps.install(dpk=dpk)


def create_base_model(project, task, model_app, dataset, name: str = "digits-base"):
    """The first Best Model: the task's model app's model, on ``dataset``'s train / validation
    subsets (the template's filters), created and then trained by the platform (``model.train()``)."""
    import dtlpy as dl

    from nodes.common.defaults import load_subset_filter

    return project.models.create(
        model_name=name,
        dataset_id=dataset.id,
        labels=list(task.labels),
        app=model_app,
        dpk_model_name=task.dpk_model_name,
        status="created",
        configuration=copy.deepcopy(dict(task.model_configuration)),
        train_filter=dl.Filters(custom_filter=load_subset_filter("train")),
        validation_filter=dl.Filters(custom_filter=load_subset_filter("validation")),
    )


def install_pipeline(project, body: Mapping[str, Any]):
    """``project.pipelines.create`` from the template body, then ``install()``; the pipeline as
    the platform has it afterwards."""
    pipeline = project.pipelines.create(pipeline_json=copy.deepcopy(dict(body)))
    pipeline.install()
    return project.pipelines.get(pipeline_id=pipeline.id)


def task_ids(project, pipeline) -> dict[str, str]:
    """``node name -> task id`` of the pipeline's task nodes (from its composition, where the
    platform records the tasks install created)."""
    composition = project.compositions.get(composition_id=pipeline.composition_id)
    names = {node.node_id: node.name for node in pipeline.nodes}
    return {names[t["nodeId"]]: t["state"]["taskId"] for t in composition["tasks"] if t["nodeId"] in names}


def variable(project, pipeline_id: str, name: str) -> Any:
    """The current value of the pipeline variable ``name`` (one ``GET /pipelines/{id}``)."""
    pipeline = project.pipelines.get(pipeline_id=pipeline_id)
    return next(v.value for v in pipeline.variables if v.name == name)
