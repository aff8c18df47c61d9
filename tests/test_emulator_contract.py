"""Contract tests of the local platform (``emulator/``) through the real dtlpy client: every
call the nodes, tests and demo rely on, request counting, fault injection, errors and paging."""

from __future__ import annotations

import io
import json
from pathlib import Path

import dtlpy as dl
import pytest

from emulator import LocalPlatform, RecordingProgress, make_labels


def _buffer(name: str, data: bytes) -> io.BytesIO:
    buffer = io.BytesIO(data)
    buffer.name = name
    return buffer


def _upload(dataset: dl.Dataset, count: int, tags=lambda i: {"train": i % 2 == 0}, prefix="img") -> list[dl.Item]:
    items = []
    for i in range(count):
        item = dataset.items.upload(
            local_path=_buffer(f"{prefix}-{i:03d}.txt", f"content {i}".encode()),
            item_metadata={"system": {"tags": tags(i)}, "user": {"index": i}},
        )
        items.append(item)
    return items


def test_acceptance_script(platform: LocalPlatform):
    """The issue's acceptance script, with counts matching what was written."""
    project = dl.projects.create(project_name="acceptance")
    dataset = project.datasets.create(dataset_name="images", labels=make_labels(["cat", "dog"]))
    assert [label.tag for label in dataset.labels] == ["cat", "dog"]

    items = _upload(dataset, 20)
    assert len({item.id for item in items}) == 20

    train = dl.Filters(field="metadata.system.tags.train", values=True)
    assert dataset.items.list(filters=train).items_count == 10

    odd = dl.Filters(field="metadata.user.index", values=[1, 3, 5], operator=dl.FiltersOperations.IN)
    dataset.items.update(filters=odd, system_update_values={"tags": {"validation": True}}, system_metadata=True)
    validation = dl.Filters(field="metadata.system.tags.validation", values=True)
    assert sorted(i.metadata["user"]["index"] for i in dataset.items.list(filters=validation).all()) == [1, 3, 5]
    # bulk update merges: the train tag written at upload is still there
    assert all("train" in i.metadata["system"]["tags"] for i in dataset.items.list(filters=validation).all())

    builder = items[0].annotations.builder()
    builder.add(annotation_definition=dl.Box(top=10, left=20, bottom=30, right=40, label="cat"))
    builder.add(annotation_definition=dl.Box(top=1, left=2, bottom=3, right=4, label="dog"))
    uploaded = items[0].annotations.upload(builder)
    assert len(uploaded) == 2
    listed = items[0].annotations.list()
    assert sorted(a.label for a in listed) == ["cat", "dog"]
    box = next(a for a in listed if a.label == "cat")
    assert (box.top, box.left, box.bottom, box.right) == (10, 20, 30, 40)

    model = platform.create_model(project, name="base", dataset=dataset, labels=["cat", "dog"], status="trained")
    clone = model.clone(
        model_name="base-v2",
        dataset=dataset,
        configuration={"epochs": 3},
        status="created",
        train_filter=train,
        validation_filter=validation,
    )
    back = dl.models.get(model_id=clone.id)
    assert back.name == "base-v2"
    assert back.status == "created"
    assert back.dataset_id == dataset.id
    assert back.configuration == {"epochs": 3}
    assert back.labels == ["cat", "dog"]
    subsets = back.metadata["system"]["subsets"]
    assert subsets["train"]["filter"] == train.prepare()["filter"]
    assert subsets["validation"]["filter"] == validation.prepare()["filter"]
    # the subset filters select what was written
    assert dataset.items.list(filters=dl.Filters(custom_filter=subsets["train"])).items_count == 10

    counts = platform.request_counts
    assert counts["POST /datasets/{id}/items"] == 20
    assert counts["POST /items/{id}/annotations"] == 1
    assert counts["POST /ml/models/{id}/clone"] == 1


# ---------------------------------------------------------------------------- projects & datasets
def test_projects_and_datasets_get_by_id_and_name(platform: LocalPlatform, project: dl.Project):
    assert dl.projects.get(project_id=project.id).name == project.name
    assert dl.projects.get(project_name=project.name).id == project.id
    dataset = platform.create_dataset(project, "by-name", labels=["cat", "dog"])
    assert project.datasets.get(dataset_id=dataset.id).name == "by-name"
    assert project.datasets.get(dataset_name="by-name").id == dataset.id
    assert dl.datasets.get(dataset_id=dataset.id).labels_flat_dict.keys() == {"cat", "dog"}
    recipe_ids = dataset.get_recipe_ids()
    assert len(recipe_ids) == 1
    recipe = dataset.recipes.get(recipe_id=recipe_ids[0])
    assert [label.tag for label in recipe.ontologies.list()[0].labels] == ["cat", "dog"]
    assert platform.request_counts["POST /datasets"] == 1


def test_unknown_ids_raise_not_found(platform: LocalPlatform):
    with pytest.raises(dl.exceptions.NotFound):
        dl.projects.get(project_id="0" * 24)
    with pytest.raises(dl.exceptions.NotFound):
        dl.items.get(item_id="0" * 24)
    with pytest.raises(dl.exceptions.NotFound):
        dl.models.get(model_id="0" * 24)
    assert platform.request_counts["GET /items/{id}"] == 1
    assert [r.status for r in platform.requests] == [404, 404, 404]
    assert platform.write_count() == 0


# ---------------------------------------------------------------------------- items
def test_upload_files_and_buffers_then_get_and_download(platform: LocalPlatform, dataset: dl.Dataset, tmp_path):
    path = tmp_path / "local.jpg"
    path.write_bytes(b"\xff\xd8 not really a jpeg")
    from_file = dataset.items.upload(local_path=str(path), remote_path="/folder", item_metadata={"user": {"a": 1}})
    from_buffer = dataset.items.upload(local_path=_buffer("mem.txt", b"in memory"), item_metadata={"user": {"b": 2}})
    assert from_file.filename == "/folder/local.jpg" and from_file.dir == "/folder"
    assert from_buffer.filename == "/mem.txt"
    fetched = dl.items.get(item_id=from_buffer.id)
    assert fetched.metadata["user"] == {"b": 2}
    assert fetched.metadata["system"]["size"] == len(b"in memory")
    assert fetched.dataset_id == dataset.id
    assert fetched.download(save_locally=False).read() == b"in memory"
    assert from_file.download(save_locally=False).read() == path.read_bytes()
    # uploading the same path again skips (same item), overwrite replaces the bytes
    again = dataset.items.upload(local_path=_buffer("mem.txt", b"in memory"))
    assert again.id == from_buffer.id
    replaced = dataset.items.upload(local_path=_buffer("mem.txt", b"replaced"), overwrite=True)
    assert replaced.id == from_buffer.id
    assert replaced.download(save_locally=False).read() == b"replaced"
    assert len(platform.items_json(dataset.id)) == 2


def test_items_list_pages_by_keyset(platform: LocalPlatform, dataset: dl.Dataset):
    uploaded = _upload(dataset, 7)
    filters = dl.Filters()
    filters.page_size = 3
    platform.reset_counts()
    pages = dataset.items.list(filters=filters)
    assert pages.items_count == 7
    seen = [item.id for page in pages for item in page]
    assert seen == sorted(item.id for item in uploaded)
    queries = [r for r in platform.requests if r.route == "/datasets/{id}/query"]
    assert len(queries) >= 3
    assert platform.write_count() == 0


def test_items_list_offset_pages_with_custom_filter(platform: LocalPlatform, dataset: dl.Dataset):
    _upload(dataset, 5)
    custom = dl.Filters(custom_filter={"filter": {"$and": [{"metadata.user.index": {"$gte": 1}}]}, "pageSize": 2})
    pages = dataset.items.list(filters=custom)
    indexes = [item.metadata["user"]["index"] for page in pages for item in page]
    # no sort sent: the documented default, type then newest first (https://docs.dataloop.ai/docs/api-dql)
    assert indexes == [4, 3, 2, 1]


def test_item_update_system_metadata(platform: LocalPlatform, dataset: dl.Dataset):
    item = _upload(dataset, 1)[0]
    item.metadata["system"]["tags"] = {"validation": True}
    item.metadata["user"]["note"] = "x"
    updated = item.update(system_metadata=True)
    assert updated.metadata["system"]["tags"] == {"validation": True}
    assert platform.get_json("items", item.id)["metadata"]["user"] == {"index": 0, "note": "x"}
    assert platform.request_counts["PATCH /items/{id}"] == 1
    # without system_metadata the platform ignores system changes
    updated.metadata["system"]["tags"] = {"test": True}
    updated.update()
    assert platform.get_json("items", item.id)["metadata"]["system"]["tags"] == {"validation": True}


def test_bulk_update_by_filter_is_one_request(platform: LocalPlatform, dataset: dl.Dataset):
    _upload(dataset, 6)
    platform.reset_counts()
    train = dl.Filters(field="metadata.system.tags.train", values=True)
    dataset.items.update(filters=train, system_update_values={"tags": {"test": True}}, system_metadata=True)
    dataset.items.update(filters=train, update_values={"checked": True})
    assert platform.request_counts == {"POST /datasets/{id}/query": 2}
    assert platform.write_count() == 2
    stored = platform.items_json(dataset.id)
    assert [i["metadata"]["system"]["tags"].get("test", False) for i in stored] == [True, False] * 3
    assert [i["metadata"]["user"].get("checked", False) for i in stored] == [True, False] * 3


def test_item_delete(platform: LocalPlatform, dataset: dl.Dataset):
    item = _upload(dataset, 2)[0]
    item.annotations.upload([dl.Annotation.new(item=item, annotation_definition=dl.Classification(label="cat"))])
    dataset.items.delete(item_id=item.id)
    with pytest.raises(dl.exceptions.NotFound):
        dl.items.get(item_id=item.id)
    assert len(platform.items_json(dataset.id)) == 1
    assert platform.annotations_json(dataset.id) == []


# ---------------------------------------------------------------------------- annotations
def test_annotations_upload_list_update_delete(platform: LocalPlatform, dataset: dl.Dataset):
    import numpy as np

    item = _upload(dataset, 1)[0]
    builder = item.annotations.builder()
    builder.add(dl.Box(top=1, left=2, bottom=11, right=22, label="cat"))
    builder.add(dl.Polygon(geo=[[0, 0], [10, 0], [10, 10]], label="dog"))
    builder.add(dl.Classification(label="bird"))
    mask = np.zeros((4, 4), dtype=bool)
    mask[1:3, 1:3] = True
    builder.add(dl.Segmentation(geo=mask, label="cat"))
    builder.add(
        dl.Box(top=2, left=3, bottom=12, right=23, label="cat"),
        model_info={"name": "m", "model_id": "abc", "confidence": 0.75},
    )
    uploaded = item.annotations.upload(builder)
    assert len(uploaded) == 5
    assert platform.request_counts["POST /items/{id}/annotations"] == 1
    listed = item.annotations.list()
    assert sorted(a.type for a in listed) == ["binary", "box", "box", "class", "segment"]
    prediction = next(a for a in listed if a.metadata.get("user", {}).get("model"))
    assert prediction.metadata["user"]["model"] == {"name": "m", "model_id": "abc", "confidence": 0.75}
    assert dl.items.get(item_id=item.id).annotations_count == 5

    box = next(a for a in listed if a.type == "box" and not a.metadata.get("user"))
    box.metadata["system"]["reviewed"] = True
    updated = box.update(system_metadata=True)
    assert updated.metadata["system"]["reviewed"] is True
    assert platform.get_json("annotations", box.id)["metadata"]["system"]["reviewed"] is True
    assert platform.request_counts["PUT /annotations/{id}"] == 1

    box.delete()
    assert len(item.annotations.list()) == 4


def test_dataset_annotations_list_filters_and_pages(platform: LocalPlatform, dataset: dl.Dataset):
    items = _upload(dataset, 3)
    for item in items:
        builder = item.annotations.builder()
        builder.add(dl.Box(top=0, left=0, bottom=5, right=5, label="cat"))
        builder.add(
            dl.Box(top=0, left=0, bottom=5, right=5, label="dog"),
            model_info={"name": "m", "model_id": "x", "confidence": 0.5},
        )
        item.annotations.upload(builder)
    cats = dl.Filters(resource=dl.FiltersResource.ANNOTATION, field="label", values="cat")
    assert dataset.annotations.list(filters=cats).items_count == 3
    predictions = dl.Filters(resource=dl.FiltersResource.ANNOTATION)
    predictions.add(field="metadata.user.model.model_id", values="x")
    predictions.page_size = 2
    pages = dataset.annotations.list(filters=predictions)
    assert pages.items_count == 3
    assert sorted(a.item_id for page in pages for a in page) == sorted(i.id for i in items)


def test_items_list_with_annotation_join(platform: LocalPlatform, dataset: dl.Dataset):
    items = _upload(dataset, 3)
    items[1].annotations.upload(
        [dl.Annotation.new(item=items[1], annotation_definition=dl.Classification(label="dog"))]
    )
    items[2].annotations.upload(
        [dl.Annotation.new(item=items[2], annotation_definition=dl.Classification(label="cat"))]
    )
    with_dogs = dl.Filters()
    with_dogs.add_join(field="label", values="dog")
    assert [item.id for item in dataset.items.list(filters=with_dogs).all()] == [items[1].id]
    annotated = dl.Filters(field="annotated", values=True)
    assert dataset.items.list(filters=annotated).items_count == 2


# ---------------------------------------------------------------------------- errors
def test_unknown_dql_operator_is_bad_request(platform: LocalPlatform, dataset: dl.Dataset):
    _upload(dataset, 2)
    bad = dl.Filters()
    bad.add(field="metadata.user.index", values="1", operator="regex")
    with pytest.raises(dl.exceptions.BadRequest) as error:
        dataset.items.update(filters=bad, update_values={"x": 1})
    assert "$regex" in error.value.message
    assert platform.requests[-1].status == 400
    assert all("x" not in i["metadata"]["user"] for i in platform.items_json(dataset.id))
    # dtlpy's PagedEntities logs a BadRequest of a list and returns an empty page
    assert dataset.items.list(filters=bad).items_count == 0
    assert platform.requests[-1].status == 400


def test_fail_next_503_is_retried_by_dtlpy(platform: LocalPlatform, dataset: dl.Dataset):
    item = _upload(dataset, 1)[0]
    platform.reset_counts()
    platform.fail_next("PATCH", r"/items/", status=503, times=1)
    item.metadata["user"]["retried"] = True
    item.update()
    assert [r.status for r in platform.requests] == [503, 200]
    assert platform.request_counts["PATCH /items/{id}"] == 2
    assert platform.get_json("items", item.id)["metadata"]["user"]["retried"] is True


def test_fail_next_500_raises_and_writes_nothing(platform: LocalPlatform, dataset: dl.Dataset):
    item = _upload(dataset, 1)[0]
    platform.fail_next("PATCH", r"/items/", status=500, times=1)
    item.metadata["user"]["lost"] = True
    with pytest.raises(dl.exceptions.InternalServerError):
        item.update()
    assert "lost" not in platform.get_json("items", item.id)["metadata"]["user"]
    # the rule is used up: the next call goes through
    item.update()
    assert platform.get_json("items", item.id)["metadata"]["user"]["lost"] is True


def test_fail_next_only_matches_method_and_path(platform: LocalPlatform, dataset: dl.Dataset):
    item = _upload(dataset, 1)[0]
    platform.fail_next("GET", r"/ml/models/", status=404, times=2)
    assert dl.items.get(item_id=item.id).id == item.id
    for _ in range(2):
        with pytest.raises(dl.exceptions.NotFound):
            dl.models.get(model_id="whatever")
    with pytest.raises(ValueError, match="times"):
        platform.fail_next("GET", r"/x", times=0)


def test_fail_next_delay(platform: LocalPlatform, project: dl.Project):
    import time

    platform.fail_next("GET", r"/projects/", status=None, delay_s=0.3)
    start = time.perf_counter()
    assert dl.projects.get(project_id=project.id).id == project.id
    assert time.perf_counter() - start >= 0.3


# ---------------------------------------------------------------------------- models & metrics
def test_models_get_list_update_delete(platform: LocalPlatform, project: dl.Project, dataset: dl.Dataset):
    model = platform.create_model(project, name="m1", dataset=dataset, configuration={"lr": 0.1}, status="trained")
    assert model.labels == ["cat", "dog", "bird"]
    assert model.configuration == {"lr": 0.1}
    assert model.project_id == project.id
    platform.create_model(project, name="m2", status="created")
    names = dl.Filters(resource=dl.FiltersResource.MODEL, field="status", values="trained")
    assert [m.name for m in project.models.list(filters=names).all()] == ["m1"]
    assert project.models.get(model_name="m2").status == "created"
    assert {m.name for m in dl.models.list().all()} >= {"m1", "m2"}

    model.metadata["system"]["note"] = "kept"
    model.metadata["user"] = {"x": 1}
    updated = model.update(system_metadata=True)
    assert updated.metadata["system"]["note"] == "kept"
    assert platform.get_json("models", model.id)["metadata"]["user"] == {"x": 1}
    assert platform.request_counts["PATCH /ml/models/{id}"] == 1

    model.delete()
    with pytest.raises(dl.exceptions.NotFound):
        dl.models.get(model_id=model.id)


def test_clone_honours_arguments(platform: LocalPlatform, project: dl.Project, dataset: dl.Dataset):
    source = platform.create_model(
        project, name="src", dataset=dataset, configuration={"epochs": 1, "id_to_label_map": {"0": "cat"}}
    )
    other_project = dl.projects.create(project_name=f"{project.name}-other")
    clone = source.clone(
        model_name="dst",
        project_id=other_project.id,
        labels=["cat"],
        configuration={"epochs": 5},
        description="fine-tuned",
        tags=["v2"],
        status="created",
    )
    assert clone.project_id == other_project.id
    assert clone.labels == ["cat"]
    assert clone.configuration == {"epochs": 5}  # label maps dropped with new labels
    assert clone.description == "fine-tuned" and clone.tags == ["v2"]
    assert clone.status == "created"
    assert platform.get_json("models", source.id)["name"] == "src"
    assert platform.request_counts["POST /ml/models/{id}/clone"] == 1


def test_clone_waits_while_cloning(platform: LocalPlatform, project: dl.Project):
    platform.clone_async = True
    platform.clone_polls = 1
    source = platform.create_model(project, name="slow")
    clone = source.clone(model_name="slow-copy")
    assert clone.status == "created"
    # create_model's get, then dtlpy polls: one answer "cloning", one with the final status
    assert platform.request_counts["GET /ml/models/{id}"] == 3


def test_metrics_publish_and_list(platform: LocalPlatform, project: dl.Project, dataset: dl.Dataset):
    model = platform.create_model(project, name="with-metrics", dataset=dataset)
    samples = [dl.PlotSample(figure="precision", legend="cat", x=i, y=i / 10) for i in range(5)]
    assert model.metrics.create(samples=samples, dataset_id=dataset.id) is True
    filters = dl.Filters(resource=dl.FiltersResource.METRICS)
    filters.page_size = 2
    listed = [sample for page in model.metrics.list(filters=filters) for sample in page]
    assert [(s.x, s.y) for s in listed] == [(i, i / 10) for i in range(5)]
    assert platform.metrics_json(model.id)[0]["datasetId"] == dataset.id
    assert platform.request_counts["POST /ml/metrics/publish"] == 1


# ---------------------------------------------------------------------------- context & progress
def test_make_context_resolves_node_config(platform: LocalPlatform, project: dl.Project):
    config = {"modelName": "m-{date}", "nested": {"a": [1, 2]}}
    context = platform.make_context(node_config=config, execution_id="exec-1", project=project)
    assert context.execution_id == "exec-1"
    assert context.node.metadata["customNodeConfig"] == config
    assert context.pipeline.id == context.pipeline_id
    assert platform.request_counts["GET /pipelines/{id}"] == 1
    bare = platform.make_context(node_config=None, project=project)
    assert "customNodeConfig" not in bare.node.metadata


def test_recording_progress():
    progress = RecordingProgress()
    progress.update(status="running", progress=50, message="half")
    progress.update(action="discard")
    assert isinstance(progress, dl.Progress)
    assert progress.actions == ["discard"]
    assert progress.updates == [
        {"status": "running", "progress": 50, "message": "half"},
        {"progress": 0, "action": "discard"},
    ]


# ---------------------------------------------------------------------------- counts, env, concurrency
def test_request_counts_and_write_count(platform: LocalPlatform, dataset: dl.Dataset):
    item = _upload(dataset, 1)[0]
    dl.items.get(item_id=item.id)
    dataset.items.list()
    counts = platform.request_counts
    assert counts["POST /datasets/{id}/items"] == 1
    assert counts["GET /items/{id}"] == 1
    assert counts["POST /datasets/{id}/query"] == 1
    assert platform.write_count() == 1
    platform.reset_counts()
    assert platform.request_counts == {} and platform.write_count() == 0


def test_nested_platform_restores_dtlpy_environment(platform: LocalPlatform, project: dl.Project):
    before = (dl.client_api.environment, dl.client_api.token, dl.client_api.cookie_io.COOKIE)
    outer_cookie = Path(dl.client_api.cookie_io.COOKIE).read_bytes()
    with LocalPlatform() as inner:
        assert dl.client_api.environment == inner.url
        assert dl.client_api.cookie_io.COOKIE != before[2]  # its own cookie file: the outer one is not written
        inner_project = dl.projects.create(project_name="inner-only")
        assert inner.request_counts["POST /projects"] == 1
    assert (dl.client_api.environment, dl.client_api.token, dl.client_api.cookie_io.COOKIE) == before
    assert Path(dl.client_api.cookie_io.COOKIE).read_bytes() == outer_cookie
    assert dl.projects.get(project_id=project.id).name == project.name
    with pytest.raises(dl.exceptions.NotFound):
        dl.projects.get(project_id=inner_project.id)
    assert platform.request_counts["POST /projects"] == 0


def test_concurrent_clients_do_not_lose_updates(platform: LocalPlatform, dataset: dl.Dataset):
    from concurrent.futures import ThreadPoolExecutor

    item = _upload(dataset, 1)[0]
    others = _upload(dataset, 8, tags=lambda i: {}, prefix="other")

    def worker(n: int) -> None:
        mine = dl.items.get(item_id=item.id)
        mine.metadata["user"][f"worker{n}"] = n
        mine.update()
        flt = dl.Filters(field="id", values=others[n].id)
        dataset.items.update(filters=flt, system_update_values={"tags": {f"t{n}": True}}, system_metadata=True)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(worker, range(8)))
    stored = platform.get_json("items", item.id)["metadata"]["user"]
    assert {k: v for k, v in stored.items() if k.startswith("worker")} == {f"worker{n}": n for n in range(8)}
    for n, other in enumerate(others):
        assert platform.get_json("items", other.id)["metadata"]["system"]["tags"] == {f"t{n}": True}


def test_bulk_update_by_id_list_looks_ids_up_with_the_full_filter(platform: LocalPlatform, project, dataset):
    """The store's id fast path (``id $in`` bulk updates) keeps the filter's meaning: only items of
    this dataset, hidden items and folders excluded by dtlpy's default clauses, unknown ids ignored."""
    ids = platform.add_items(dataset, [{"name": f"f{k}.jpg", "metadata": {}} for k in range(6)])
    other = project.datasets.create("other", labels=make_labels(["cat"]))
    foreign = platform.add_items(other, [{"name": "g.jpg", "metadata": {}}])
    with platform.store.lock:
        platform.store.tables["items"][ids[5]]["hidden"] = True
        platform.store._index(dataset.id).touch()
    chosen = [ids[0], ids[2], ids[5], foreign[0], "no-such-id"]
    platform.reset_counts()
    with_defaults = dl.Filters()
    with_defaults.add(field="id", values=chosen, operator=dl.FiltersOperations.IN)
    dataset.items.update(filters=with_defaults, update_values={"hit": 1})
    exact = dl.Filters(use_defaults=False)
    exact.add(field="id", values=chosen, operator=dl.FiltersOperations.IN)
    exact.add(field="filename", values="/f2.jpg", operator=dl.FiltersOperations.NOT_EQUAL)
    dataset.items.update(filters=exact, update_values={"raw": 1})
    stored = {i["id"]: i["metadata"].get("user") or {} for i in platform.items_json(dataset.id)}
    assert {i for i, user in stored.items() if user.get("hit")} == {ids[0], ids[2]}
    assert {i for i, user in stored.items() if user.get("raw")} == {ids[0], ids[5]}
    assert "hit" not in (platform.items_json(other.id)[0]["metadata"].get("user") or {})
    assert platform.request_counts == {"POST /datasets/{id}/query": 2}
    page = dataset.items.list(filters=with_defaults)
    assert sorted(item.id for item in page.items) == sorted([ids[0], ids[2]])


def test_bulk_update_by_id_list_does_not_scan_the_dataset(platform: LocalPlatform, dataset, monkeypatch):
    """Documents the filter is evaluated on: the chosen ids only, not all 2,000 items."""
    from emulator import dql

    ids = platform.add_items(dataset, [{"name": f"s{k:04d}.jpg", "metadata": {}} for k in range(2000)])
    evaluated = []
    compile_filter = dql.compile_filter

    def counting_compile(query):
        predicate = compile_filter(query)

        def counted(doc):
            evaluated.append(doc["id"])
            return predicate(doc)

        return counted

    monkeypatch.setattr(dql, "compile_filter", counting_compile)
    chosen = dl.Filters(use_defaults=False)
    chosen.add(field="id", values=ids[10:13], operator=dl.FiltersOperations.IN)
    dataset.items.update(filters=chosen, system_update_values={"tags": {"train": True}}, system_metadata=True)
    assert set(evaluated) == set(ids[10:13])  # (nested clauses count again: a set)
    tagged = [i["id"] for i in platform.items_json(dataset.id) if (i["metadata"].get("system") or {}).get("tags")]
    assert tagged == ids[10:13]


def test_clone_replaces_each_system_metadata_key_it_sends(platform: LocalPlatform, project, dataset):
    """The subsets (and any other ``metadata.system`` key) sent with a clone replace the source's
    value for that key; they are not deep-merged into it. Keys not sent are inherited."""
    base_train = {"filter": {"metadata.system.tags.train": True, "dir": "/old"}, "resource": "items", "page": 0}
    base_validation = {"filter": {"metadata.system.tags.validation": True}, "resource": "items"}
    source = platform.create_model(
        project,
        name="base",
        dataset=dataset,
        metadata={
            "system": {"subsets": {"train": base_train, "validation": base_validation}, "ref": {"a": 1}},
            "user": {"note": {"x": 1}},
        },
    )
    new_train = dl.Filters(field="metadata.system.tags.train", values=True)
    new_train.add(field="metadata.user.round", values=2)
    clone = source.clone(model_name="round-2", train_filter=new_train, status="created")
    stored = platform.get_json("models", clone.id)["metadata"]
    assert stored["system"]["subsets"]["train"] == new_train.prepare()  # not a mix with base_train
    assert "dir" not in json.dumps(stored["system"]["subsets"]["train"])
    assert stored["system"]["subsets"]["validation"] == base_validation  # inherited by dtlpy, sent back as is
    assert stored["system"]["ref"] == {"a": 1} and stored["system"]["clonedFrom"] == source.id
    assert stored["user"] == {"note": {"x": 1}}
    assert platform.get_json("models", source.id)["metadata"]["system"]["subsets"]["train"] == base_train
