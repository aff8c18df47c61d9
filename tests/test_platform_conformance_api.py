"""The local platform's entities and endpoints behave as Dataloop documents them, checked through
the real dtlpy 1.126.5 client. Each test names its source (dtlpy's source, which encodes what
the REST API sends and answers, or the Dataloop documentation) in its docstring.
"""

from __future__ import annotations

import io
import json
import shutil
import time
from pathlib import Path

import dtlpy as dl
import pandas as pd
import pytest
import requests

from emulator import LocalPlatform, make_labels
from emulator.store.base import IdFactory
from emulator.store.models import MODEL_STATUSES

REPO = Path(__file__).resolve().parents[1]


def _upload(dataset: dl.Dataset, name: str, data: bytes = b"x", **kwargs) -> dl.Item:
    buffer = io.BytesIO(data)
    buffer.name = name
    return dataset.items.upload(local_path=buffer, **kwargs)


def _raw(platform: LocalPlatform, method: str, path: str, token: str | None = "issued", **kwargs):
    headers = {}
    if token == "issued":
        headers["Authorization"] = f"Bearer {platform.token}"
    elif token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, platform.url + path, headers=headers, timeout=10, **kwargs)


# ---------------------------------------------------------------------------- authentication
def test_every_route_requires_the_issued_bearer_token(platform: LocalPlatform, project: dl.Project):
    """The REST API authenticates each request with ``Authorization: Bearer <JWT>`` and answers
    401 without a valid one (developers.dataloop.ai "Authentication"; dtlpy
    ``services/api_client.py`` ``auth`` sends ``{'authorization': 'Bearer ' + token}``)."""
    path = f"/projects/{project.id}"
    assert _raw(platform, "GET", path, token=None).status_code == 401
    assert _raw(platform, "GET", path, token="another.token.").status_code == 401
    assert _raw(platform, "POST", "/pipelines", token=None, json={"name": "x"}).status_code == 401
    assert _raw(platform, "GET", "/no/such/route", token=None).status_code == 401
    assert _raw(platform, "GET", path).status_code == 200
    assert dl.projects.get(project_id=project.id).id == project.id  # dtlpy carries the issued token
    assert platform.request_counts["GET /projects/{id}"] == 4
    assert platform.write_count() == 0


def test_each_platform_issues_its_own_token(platform: LocalPlatform):
    """A token issued by one local platform is refused by another (401).

    Source: developers.dataloop.ai "Authentication" (every request carries ``Authorization:
    Bearer <JWT>``; a token the platform did not issue is refused) and dtlpy
    ``services/api_client.py`` (``auth`` header). That each ``LocalPlatform`` issues its own
    random token (an unsigned JWT with a random ``jti``) is this emulator's own rule
    (emulator/README.md, "Environment")."""
    with LocalPlatform() as other:
        assert other.token != platform.token
        assert _raw(other, "GET", "/projects", token=platform.token).status_code == 401
        assert _raw(other, "GET", "/projects", token=other.token).status_code == 200


# ---------------------------------------------------------------------------- ids
def test_ids_are_object_ids_carrying_their_creation_time(platform: LocalPlatform, project: dl.Project):
    """Entity ids are MongoDB ObjectIds: 24 hex, the first 4 bytes the creation time in seconds
    (mongodb.com/docs/manual/reference/method/ObjectId), so they sort by creation, which
    dtlpy's keyset paging (``{"id": {"$gt": last}}``, ``entities/filters.py``) relies on."""
    before = int(time.time())
    dataset = project.datasets.create(dataset_name="ids", labels=make_labels(["a"]))
    items = [_upload(dataset, f"{i}.txt") for i in range(3)]
    after = int(time.time())
    for entity_id in [dataset.id] + [item.id for item in items]:
        assert len(entity_id) == 24 and int(entity_id, 16) >= 0
        assert before <= IdFactory.created_at(entity_id) <= after
    ids = [item.id for item in items]
    assert ids == sorted(ids)


# ---------------------------------------------------------------------------- models
def test_a_model_needs_an_existing_package(platform: LocalPlatform, project: dl.Project):
    """The REST API creates a model from a package: dtlpy ``repositories/models.py`` ``create``
    always sends ``packageId`` (its app's DPK id). Without one: 400; an unknown one: 404."""
    no_package = _raw(platform, "POST", "/ml/models", json={"name": "m", "projectId": project.id})
    assert no_package.status_code == 400 and "packageId" in no_package.json()["message"]
    unknown = _raw(platform, "POST", "/ml/models", json={"name": "m", "projectId": project.id, "packageId": "0" * 24})
    assert unknown.status_code == 404
    model = platform.create_model(project, "m", status="created")
    assert dl.models.get(model_id=model.id).package_id == model.package_id
    assert platform.get_json("packages", model.package_id)["name"] == "emulator-model-adapter"


def test_model_status_is_the_documented_enum(platform: LocalPlatform, project: dl.Project):
    """Model ``status`` is one of dtlpy ``entities/model.py`` ``ModelStatus`` (created,
    pre-trained, pending, training, trained, deployed, failed, cloning); anything else is 400."""
    assert set(MODEL_STATUSES) == {s.value for s in dl.ModelStatus}
    model = platform.create_model(project, "status", status="trained")
    model.status = "finished"
    with pytest.raises(dl.exceptions.BadRequest):
        model.update(system_metadata=True)
    with pytest.raises(Exception, match="status"):
        platform.create_model(project, "bad-status", status="done")
    model = dl.models.get(model_id=model.id)
    model.status = "deployed"
    assert model.update().status == "deployed"


def test_clone_is_asynchronous_and_dtlpy_waits(platform: LocalPlatform, project: dl.Project):
    """``POST /ml/models/{id}/clone`` answers the new model with status ``cloning``; dtlpy's
    ``model.clone(wait=True)`` polls ``GET /ml/models/{id}`` while it says ``cloning``
    (dtlpy ``repositories/models.py`` ``clone`` / ``wait_for_model_ready``)."""
    platform.clone_async = True  # the platform's behaviour; the fixture turns it off for speed
    source = platform.create_model(project, "source", status="trained", configuration={"lr": 0.1})
    pending = source.clone(model_name="pending", status="created", wait=False)
    assert pending.status == "cloning"
    assert dl.models.get(model_id=pending.id).status == "created"
    platform.reset_counts()
    done = source.clone(model_name="done", status="trained")
    assert done.status == "trained"
    assert platform.request_counts["GET /ml/models/{id}"] >= 1
    assert done.configuration == {"lr": 0.1}  # dtlpy sends the source configuration
    assert done.metadata["system"]["clonedFrom"] == source.id  # assumption, see emulator/README.md


# ---------------------------------------------------------------------------- items
def test_upload_with_annotations_file_uploads_the_annotations(platform: LocalPlatform, dataset, tmp_path):
    """The upload answer's ``x-item-op`` header is ``created`` for a new item; dtlpy uploads an
    item's annotations file only then or on ``overwrite`` (dtlpy ``repositories/uploader.py``)."""
    image = tmp_path / "a.txt"
    image.write_bytes(b"data")
    annotations = tmp_path / "a.json"
    annotation = {"type": "class", "label": "cat", "coordinates": None, "metadata": {}}
    annotations.write_text(json.dumps({"annotations": [annotation]}))
    item = dataset.items.upload(local_path=str(image), local_annotations_path=str(annotations))
    assert [a.label for a in item.annotations.list()] == ["cat"]
    upload = [r for r in platform.requests if r.route == "/datasets/{id}/items"][0]
    assert upload.status == 200


def test_upload_from_a_dataframe_uploads_annotations(platform: LocalPlatform, dataset, tmp_path):
    """``dataset.items.upload(local_path=DataFrame)`` with ``local_annotations_path`` columns uploads
    each item and its annotations (dtlpy ``repositories/uploader.py`` ``_build_elements_from_df``)."""
    rows = []
    for i, label in enumerate(["cat", "dog"]):
        path = tmp_path / f"{i}.txt"
        path.write_bytes(b"x" * (i + 1))
        ann = tmp_path / f"{i}.json"
        ann.write_text(json.dumps({"annotations": [{"type": "class", "label": label, "coordinates": None}]}))
        rows.append({"local_path": str(path), "local_annotations_path": str(ann), "remote_path": "/df"})
    items = list(dataset.items.upload(local_path=pd.DataFrame(rows)))
    labels = sorted(a["label"] for item in items for a in platform.annotations_json(dataset.id))
    assert len(items) == 2 and set(labels) == {"cat", "dog"}


def test_url_link_items_carry_their_link(platform: LocalPlatform, dataset):
    """A ``dl.UrlLink`` upload is a JSON file ``{"shebang": "dataloop", "metadata": {"dltype":
    "link", "linkInfo": {...}}}``; the item keeps it in ``metadata.system.shebang`` and its
    ``resolved_stream`` is the link (dtlpy ``repositories/uploader.py`` ``link``, ``entities/item.py``)."""
    url = "https://example.com/images/cat.jpg"
    item = dataset.items.upload(local_path=dl.UrlLink(ref=url, name="cat"))
    assert item.resolved_stream == url
    assert item.metadata["system"]["shebang"]["linkInfo"]["ref"] == url


def test_item_clone(platform: LocalPlatform, project: dl.Project, dataset):
    """``item.clone(dst_dataset_id=...)``: ``POST /items/{id}/clone`` answers a command whose
    ``spec.returnedModelId`` lists the copy (dtlpy ``repositories/items.py`` ``clone``)."""
    item = _upload(dataset, "c.txt", b"abc", item_metadata={"user": {"k": 1}})
    item.annotations.upload([dl.Annotation.new(item=item, annotation_definition=dl.Classification(label="cat"))])
    target = project.datasets.create(dataset_name="target", labels=make_labels(["cat"]))
    copy = item.clone(dst_dataset_id=target.id)
    assert copy.id != item.id and copy.dataset_id == target.id
    assert copy.metadata["user"] == {"k": 1}
    assert [a.label for a in copy.annotations.list()] == ["cat"]


def test_dataset_clone(platform: LocalPlatform, project: dl.Project, dataset):
    """``dataset.clone(clone_name=...)``: ``POST /datasets/{id}/clone`` answers a command whose
    ``spec.returnedModelId`` is the new dataset (dtlpy ``repositories/datasets.py`` ``clone``)."""
    for i in range(3):
        _upload(dataset, f"{i}.txt")
    copy = dataset.clone(clone_name="copy")
    assert copy.id != dataset.id and copy.items_count == 3
    assert copy.labels_flat_dict.keys() == dataset.labels_flat_dict.keys()


# ---------------------------------------------------------------------------- labels and export
def test_add_and_update_labels(platform: LocalPlatform, dataset):
    """``dataset.add_label`` / ``add_labels`` / ``update_label`` change the recipe's ontology
    (dtlpy ``entities/dataset.py`` -> ``entities/ontology.py`` ``update``: ``PUT /ontologies/{id}``)."""
    dataset.add_label(label_name="fish", color=(1, 2, 3))
    dataset.add_labels(label_list=[dl.Label(tag="cow", color=(4, 5, 6)), dl.Label(tag="hen", color=(7, 8, 9))])
    dataset.update_label(label_name="fish", color=(9, 9, 9))
    labels = dl.datasets.get(dataset_id=dataset.id).labels_flat_dict
    assert {"cat", "dog", "bird", "fish", "cow", "hen"} <= set(labels)
    assert labels["fish"].rgb == (9, 9, 9)


def test_download_annotations_exports_items_with_annotations(platform: LocalPlatform, dataset, tmp_path):
    """``dataset.download_annotations`` exports (``POST /datasets/{id}/export``, a command whose
    ``spec.outputItemId`` holds the items' JSON with annotations) and writes one JSON per item
    (dtlpy ``repositories/datasets.py`` ``_export_recursive`` / ``download_annotations``)."""
    item = _upload(dataset, "d.txt")
    item.annotations.upload([dl.Annotation.new(item=item, annotation_definition=dl.Classification(label="dog"))])
    out = dataset.download_annotations(local_path=str(tmp_path))
    files = list(Path(out).rglob("*.json"))
    assert len(files) == 1
    document = json.loads(files[0].read_text())
    assert [a["label"] for a in document["annotations"]] == ["dog"]


def test_items_download_with_json_annotation_options(platform: LocalPlatform, dataset, tmp_path):
    """``dataset.items.download(annotation_options=dl.ViewAnnotationOptions.JSON)`` downloads the
    items and writes one annotations JSON per item under ``json/`` (dtlpy
    ``repositories/items.py`` ``download`` → ``repositories/downloader.py``, which lists the
    annotations through ``POST /datasets/{id}/query``)."""
    item = _upload(dataset, "a.txt", b"hello")
    item.annotations.upload([dl.Annotation.new(item=item, annotation_definition=dl.Classification(label="dog"))])
    out = dataset.items.download(local_path=str(tmp_path), annotation_options=dl.ViewAnnotationOptions.JSON)
    assert Path(out).read_bytes() == b"hello"
    (annotations_file,) = list((tmp_path / "json").rglob("*.json"))
    document = json.loads(annotations_file.read_text())
    assert document["filename"] == "/a.txt"
    assert [a["label"] for a in document["annotations"]] == ["dog"]


# ---------------------------------------------------------------------------- pipelines, executions
def _template(project: dl.Project) -> dict:
    template = json.loads((REPO / "pipeline_configs" / "active_learning_pipeline.json").read_text())
    template["projectId"] = project.id
    return template


def test_the_active_learning_template_creates_and_installs(platform: LocalPlatform, project: dl.Project):
    """``project.pipelines.create(pipeline_json=...)`` then ``pipeline.install()``: ``POST
    /pipelines``, ``POST /pipelines/{id}/install``; status ``Created`` then ``Installed`` (dtlpy
    ``repositories/pipelines.py``, ``entities/pipeline.py`` ``CompositionStatus``)."""
    pipeline = project.pipelines.create(pipeline_json=_template(project))
    assert pipeline.status == "Created"
    assert len(pipeline.nodes) == len(_template(project)["nodes"])
    installed = pipeline.install()
    assert installed.status == "Installed"
    assert project.pipelines.get(pipeline_id=pipeline.id).status == "Installed"
    names = [p.name for p in project.pipelines.list().all()]
    assert pipeline.name in names


def test_a_pipeline_variable_update_is_stored(platform: LocalPlatform, project: dl.Project):
    """Changing a variable and ``pipeline.update()`` sends the whole list to ``PATCH
    /pipelines/{id}/variables`` and reads the pipeline back (dtlpy ``repositories/pipelines.py``
    ``update`` / ``__update_variables``); how Update Variables sets the Best Model."""
    pipeline = project.pipelines.create(pipeline_json=_template(project))
    best = next(v for v in pipeline.variables if v.name == "Best Model")
    best.value = "000000000000000000000abc"
    pipeline.update()
    stored = {v.name: v.value for v in project.pipelines.get(pipeline_id=pipeline.id).variables}
    assert stored["Best Model"] == "000000000000000000000abc"
    assert platform.request_counts["PATCH /pipelines/{id}/variables"] == 1


def test_a_pipeline_with_a_dangling_connection_is_refused(platform: LocalPlatform, project: dl.Project):
    """Connections name existing nodes and ports (dtlpy ``entities/pipeline.py``
    ``PipelineConnection``: ``src`` / ``tgt`` ``{nodeId, portId}``); otherwise 400."""
    template = _template(project)
    template["connections"][0]["tgt"]["nodeId"] = "no-such-node"
    with pytest.raises(dl.exceptions.BadRequest, match="no-such-node"):
        project.pipelines.create(pipeline_json=template)


def test_executions_get_and_list(platform: LocalPlatform, project: dl.Project):
    """A node's execution is read with ``GET /executions/{id}`` and listed with ``POST /query/faas``
    (``resource: executions``) (dtlpy ``repositories/executions.py`` ``get`` / ``list``)."""
    context = platform.make_context(node_config={"k": 1}, project=project)
    execution = dl.executions.get(execution_id=context.execution_dict["id"])
    assert execution.pipeline["id"] == context.pipeline_id
    listed = [e.id for e in project.executions.list().all()]
    assert execution.id in listed


# ---------------------------------------------------------------------------- tasks
def test_annotation_task_create_and_add_items(platform: LocalPlatform, dataset):
    """``dataset.tasks.create(items=...)`` (``POST /annotationtasks``, a command with
    ``spec.createdTaskId``) and ``task.add_items`` (``POST /annotationtasks/{id}/addToTask``);
    the items carry the task in ``metadata.system.refs`` (dtlpy ``repositories/tasks.py``)."""
    items = [_upload(dataset, f"t{i}.txt") for i in range(3)]
    task = dataset.tasks.create(task_name="label", items=items[:2], assignee_ids=["a@b.c"])
    assert task.name == "label" and task.dataset_id == dataset.id
    task.add_items(items=[items[2]])
    refs = [platform.get_json("items", i.id)["metadata"]["system"]["refs"] for i in items]
    assert all({"type": "task", "id": task.id} == {k: r[0][k] for k in ("type", "id")} for r in refs)
    assert dataset.tasks.get(task_id=task.id).id == task.id


def test_task_listing_is_scoped_to_the_projects_asked(platform: LocalPlatform, project: dl.Project, dataset):
    """``dl.tasks.list(task_name=..., project_ids=[...])`` sends ``context.projectIds``
    (dtlpy ``repositories/tasks.py`` ``list``: "search tasks by given list of project ids"): a task
    of the same name in another project is not listed."""
    other = dl.projects.create(project_name=f"{project.name}-other")
    other_dataset = other.datasets.create(dataset_name="other", labels=make_labels(["cat"]))
    mine = dataset.tasks.create(task_name="same name", items=[_upload(dataset, "a.txt")], assignee_ids=["a@b.c"])
    theirs = other_dataset.tasks.create(
        task_name="same name", items=[_upload(other_dataset, "b.txt")], assignee_ids=["a@b.c"]
    )
    assert [t.id for t in dl.tasks.list(task_name="same name", project_ids=[project.id])] == [mine.id]
    assert [t.id for t in dl.tasks.list(task_name="same name", project_ids=[other.id])] == [theirs.id]
    both = {t.id for t in dl.tasks.list(task_name="same name", project_ids=[project.id, other.id])}
    assert both == {mine.id, theirs.id}


# ---------------------------------------------------------------------------- feature vectors
def test_feature_sets_and_vectors(platform: LocalPlatform, project: dl.Project, dataset):
    """``project.feature_sets.create`` (``POST /features/sets``), ``feature_set.features.create``
    (``POST /features/vectors``), listed and queried by entity (``POST /features/vectors/query``)
    (dtlpy ``repositories/feature_sets.py``, ``repositories/features.py``)."""
    items = [_upload(dataset, f"f{i}.txt") for i in range(2)]
    feature_set = project.feature_sets.create(
        name="emb", size=3, set_type="embeddings", entity_type=dl.FeatureEntityType.ITEM
    )
    assert project.feature_sets.get(feature_set_name="emb").id == feature_set.id
    feature_set.features.create(value=[0.1, 0.2, 0.3], entity=items[0])
    feature_set.features.create(value=[1.0, 2.0, 3.0], entity=items[1])
    assert feature_set.features.list().items_count == 2
    filters = dl.Filters(resource=dl.FiltersResource.FEATURE, field="entityId", values=items[1].id)
    (vector,) = list(feature_set.features.list(filters=filters).all())
    assert vector.value == [1.0, 2.0, 3.0]
    with pytest.raises(dl.exceptions.BadRequest, match="size 3"):
        feature_set.features.create(value=[1.0], entity=items[0])


# ---------------------------------------------------------------------------- apps
def test_publish_and_install_this_app(platform: LocalPlatform, project: dl.Project, tmp_path):
    """``project.dpks.publish()`` packs the code into the project's ``Binaries`` dataset and posts
    the manifest (``POST /app-registry``); ``project.apps.install(dpk)`` posts ``/apps``
    (dtlpy ``repositories/dpks.py``, ``repositories/apps.py``)."""
    source = tmp_path / "app"
    source.mkdir()
    shutil.copy(REPO / "dataloop.json", source / "dataloop.json")
    (source / "main.py").write_text("print('hi')\n")
    dpk = project.dpks.publish(manifest_filepath=str(source / "dataloop.json"), local_path=str(source))
    assert dpk.name == "active-learning" and dpk.codebase is not None
    app = project.apps.install(dpk=dpk)
    assert app.dpk_name == dpk.name and app.status == "Installed"


def test_a_manifest_naming_a_missing_function_is_refused(platform: LocalPlatform, project: dl.Project, tmp_path):
    """A ``pipelineNodes`` entry invokes ``<service>.<module>.<function>`` of the manifest's own
    modules (Dataloop docs, "Manifest"; dtlpy ``entities/dpk.py``); the server refuses others (400)."""
    manifest = json.loads((REPO / "dataloop.json").read_text())
    manifest["components"]["pipelineNodes"][0]["invoke"]["namespace"] = "model-data-split.model_data_split.nope"
    (tmp_path / "dataloop.json").write_text(json.dumps(manifest))
    with pytest.raises(dl.exceptions.BadRequest, match="nope"):
        project.dpks.publish(manifest_filepath=str(tmp_path / "dataloop.json"), local_path=str(tmp_path))


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda m: m["components"].update({"widgets": []}), "widgets"),
        (lambda m: m["components"]["modules"][0].update({"computeConfig": "no-such-config"}), "no-such-config"),
        (
            lambda m: m["components"]["computeConfigs"][0].update({"runtime": {"podType": "gpu-huge"}}),
            "gpu-huge",
        ),
    ],
    ids=["unknown-component-key", "missing-compute-config", "unknown-pod-type"],
)
def test_a_bad_manifest_is_refused_naming_the_problem(platform, project: dl.Project, tmp_path, change, named):
    """``project.dpks.publish()`` of a manifest with an unknown ``components`` key, a module whose
    ``computeConfig`` names no entry of ``computeConfigs``, or an unknown pod type is refused
    (400 → ``dl.exceptions.BadRequest``) naming it, and nothing is published. Sources: Dataloop
    developer docs "Application Manifest" (the component keys, compute configs); dtlpy
    ``entities/dpk.py`` (``Components``, ``DpkComputeConfig``) and ``entities/service.py``
    (``InstanceCatalog``). Refusing with 400 on the first problem is an assumption
    (emulator/store/manifest.py)."""
    manifest = json.loads((REPO / "dataloop.json").read_text())
    change(manifest)
    (tmp_path / "dataloop.json").write_text(json.dumps(manifest))
    with pytest.raises(dl.exceptions.BadRequest, match=named):
        project.dpks.publish(manifest_filepath=str(tmp_path / "dataloop.json"), local_path=str(tmp_path))
    assert platform.request_counts["POST /app-registry"] >= 1
    published = platform.store.tables.get("dpks", {}).values()
    assert not [d for d in published if json.dumps(d).count(project.id)]


# ---------------------------------------------------------------------------- refusals, counts, faults
def test_what_is_not_implemented_is_refused_naming_the_route(platform: LocalPlatform, project: dl.Project):
    """Documented routes the emulator does not serve answer 501 naming the route; unknown paths
    404 and known paths with another method 405, both naming the route (never a guess).

    Source of "documented route": dtlpy 1.126.5 (``repositories/pipeline_executions.py`` ``rerun``
    posts ``/pipelines/{id}/executions/rerun``) and the public OpenAPI description of the REST API
    (``/api/v1`` paths). The status codes are this emulator's own rule (moto-style refusal,
    emulator/README.md "Endpoints"): the platform serves these routes."""
    pipeline = project.pipelines.create(pipeline_json=_template(project))
    answer = _raw(platform, "POST", f"/pipelines/{pipeline.id}/executions/rerun", json={})
    assert answer.status_code == 501 and "/pipelines/{id}/executions/rerun" in answer.json()["message"]
    assert _raw(platform, "GET", "/no/such/thing").status_code == 404
    wrong = _raw(platform, "PUT", "/annotationtasks/query", json={})
    assert wrong.status_code == 405 and "/annotationtasks/query" in wrong.json()["message"]


def test_tasks_and_pipelines_are_counted_and_can_be_failed(platform: LocalPlatform, project: dl.Project, dataset):
    """Counting and fault injection (emulator/README.md, "Test helpers": ``request_counts``,
    ``fail_next``; this emulator's own tools) also cover annotation tasks and pipelines: a 503 is
    retried by dtlpy (``services/api_client.py`` retries 501-511), a 404 is not."""
    item = _upload(dataset, "counted.txt")
    platform.reset_counts()
    platform.fail_next("POST", r"^/annotationtasks$", status=503)
    task = dataset.tasks.create(task_name="counted", items=[item], assignee_ids=["a@b.c"])
    assert platform.request_counts["POST /annotationtasks"] == 2
    assert [r.status for r in platform.requests if r.route == "/annotationtasks"] == [503, 200]
    gets = platform.request_counts["GET /annotationtasks/{id}"]
    platform.fail_next("GET", r"^/annotationtasks/[0-9a-f]{24}$", status=404)
    with pytest.raises(dl.exceptions.NotFound):
        dataset.tasks.get(task_id=task.id)
    assert dataset.tasks.get(task_id=task.id).id == task.id
    assert platform.request_counts["GET /annotationtasks/{id}"] == gets + 2
    platform.fail_next("POST", r"^/pipelines$", status=503)
    pipeline = project.pipelines.create(pipeline_json=_template(project))
    assert platform.request_counts["POST /pipelines"] == 2
    platform.fail_next("POST", r"^/pipelines/[0-9a-f]{24}/install$", status=None, delay_s=0.2)
    started = time.perf_counter()
    pipeline.install()
    assert time.perf_counter() - started >= 0.2
    assert platform.request_counts["POST /pipelines/{id}/install"] == 1


def test_new_routes_are_counted_and_can_be_failed(platform: LocalPlatform, project: dl.Project):
    """Request counting and fault injection cover the new routes: dtlpy retries a 503 (its
    ``services/api_client.py`` retries 501-511), so the feature set is created once."""
    platform.fail_next("POST", r"^/features/sets$", status=503)
    project.feature_sets.create(name="retry", size=2, set_type="x", entity_type=dl.FeatureEntityType.ITEM)
    assert platform.request_counts["POST /features/sets"] == 2
    assert [r.status for r in platform.requests if r.route == "/features/sets"] == [503, 200]


def test_items_in_a_dot_folder_are_hidden(platform: LocalPlatform, dataset):
    """An item uploaded under a folder starting with ``.`` is hidden: listed only with ``hidden:
    true`` (dtlpy-documentation DQL cookbook, "Working with Hidden Items"; dtlpymetrics stores its
    scores under ``/.modelscores`` and reads them with ``Filters(field="hidden", values=True)``)."""
    buffer = io.BytesIO(b"{}")
    buffer.name = "scores.json"
    hidden = dataset.items.upload(local_path=buffer, remote_path="/.modelscores")
    visible = _upload(dataset, "seen.txt")
    assert hidden.hidden is True and visible.hidden is False
    default = [i.id for i in dataset.items.list().all()]
    assert hidden.id not in default and visible.id in default
    filters = dl.Filters(use_defaults=False)
    filters.add(field="hidden", values=True)
    filters.add(field="type", values="file")  # the folder's own directory item is hidden too
    assert [i.id for i in dataset.items.list(filters=filters).all()] == [hidden.id]
