"""Injected platform faults (``platform.fail_next``) while the nodes run on LocalPlatform.

What is retried and by whom: dtlpy 1.126.5 mounts a ``urllib3`` ``Retry(total=5, read=5,
connect=5, backoff_factor=1, status_forcelist=501..511, allowed_methods=False)`` on its
session, so 502/503/504..., refused connections and read timeouts are retried up to 5 times
with exponential backoff (0, 2, 4, 8, 16 s); 500 and 4xx are not retried. The nodes add no
retry layer of their own (see docs/failure-behaviour.md, "Who retries what", for why). These tests check that:

* transient faults (a few 503s, slow answers, a read timeout) during item updates,
  annotation listing, cloning and metric queries are absorbed: same result as without them;
* the retry is bounded and backs off (the backoff schedule is recorded; the sleeps are
  skipped so the tests stay fast);
* persistent faults surface as an exception naming the status, and leave no partial write;
* a batch split interrupted at any request, then rerun, ends exactly where an
  uninterrupted run ends.
"""

from __future__ import annotations

import copy
import re
import time

import dtlpy as dl
import pytest
from urllib3.util.retry import Retry

import main
from emulator import RecordingProgress
from nodes import data_split

ITEMS_QUERY = "POST /datasets/{id}/query"
PATCH_ITEM = "PATCH /items/{id}"
CLONE = "POST /ml/models/{id}/clone"
METRICS_QUERY = "POST /ml/metrics/query"
SPLIT_CONFIG = {
    "groups": [
        {"name": "train", "distribution": 80},
        {"name": "validation", "distribution": 10},
        {"name": "test", "distribution": 10},
    ],
    "itemMetadata": True,
}
MODEL_INFO = {"name": "yolo", "model_id": "model-1", "confidence": 0.9}
DTLPY_BACKOFF = [0, 2.0, 4.0, 8.0, 16.0]


@pytest.fixture
def backoffs(monkeypatch) -> list[float]:
    """Record the backoff urllib3 computes before each retry, and skip the sleep itself."""
    recorded: list[float] = []
    original = Retry.get_backoff_time

    def record(self: Retry) -> float:
        recorded.append(original(self))
        return 0.0

    monkeypatch.setattr(Retry, "get_backoff_time", record)
    return recorded


def _item(platform, dataset, n_annotations: int = 0, with_model: int = 0) -> dl.Item:
    [item_id] = platform.add_items(dataset, [{"name": "a.jpg", "metadata": {"user": {"k": 1}}}])
    if n_annotations:
        platform.store.create_annotations(
            item_id,
            [
                {
                    "type": "box",
                    "label": "cat",
                    "coordinates": [{"x": 1, "y": 1 + k, "z": 0}, {"x": 9, "y": 9 + k, "z": 0}],
                    "metadata": {"user": {"model": dict(MODEL_INFO)}} if k < with_model else {},
                }
                for k in range(n_annotations)
            ],
        )
    return dataset.items.get(item_id=item_id)


def _tags(platform, item_id):
    return (platform.get_json("items", item_id)["metadata"].get("system") or {}).get("tags")


def _split_item(platform, project, item, config=SPLIT_CONFIG):
    context = platform.make_context(config, project=project)
    progress = RecordingProgress()
    platform.reset_counts()
    out = main.ServiceRunner().data_split(item=item, progress=progress, context=context)
    return out, progress


# ------------------------------------------------------------------------------------------
# Model Data Split (per item): item update and annotation listing
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "route", "pattern", "times"),
    [
        ("PATCH", PATCH_ITEM, r"/items/", 1),
        ("PATCH", PATCH_ITEM, r"/items/", 3),
        ("POST", ITEMS_QUERY, r"/datasets/[^/]+/query", 2),
    ],
    ids=["item-update-503-once", "item-update-503-three-times", "annotation-listing-503-twice"],
)
def test_split_retries_transient_503_and_tags_as_without_faults(
    platform, project, dataset, backoffs, method, route, pattern, times
):
    item = _item(platform, dataset, n_annotations=2, with_model=1)
    expected = data_split.subset_for_item(item.id, data_split.SplitConfig.from_node_config(SPLIT_CONFIG))
    platform.fail_next(method, pattern, status=503, times=times)

    out, progress = _split_item(platform, project, item)

    assert progress.actions == [expected]
    assert _tags(platform, item.id) == {expected: True}
    assert out.metadata["system"]["tags"] == {expected: True}
    assert platform.request_counts[route] == {PATCH_ITEM: 1, ITEMS_QUERY: 1}[route] + times
    assert backoffs == DTLPY_BACKOFF[:times]  # bounded, exponential
    assert all("model" not in (a["metadata"].get("user") or {}) for a in platform.annotations_json(dataset.id))


def test_split_with_slow_answers_gives_the_same_result(platform, project, dataset):
    item = _item(platform, dataset, n_annotations=1, with_model=1)
    expected = data_split.subset_for_item(item.id, data_split.SplitConfig.from_node_config(SPLIT_CONFIG))
    platform.fail_next("PATCH", r"/items/", status=None, delay_s=0.3)
    platform.fail_next("POST", r"/query", status=None, delay_s=0.3)
    platform.fail_next("PUT", r"/annotations/", status=None, delay_s=0.3)

    out, progress = _split_item(platform, project, item)

    assert progress.actions == [expected]
    assert _tags(platform, item.id) == {expected: True}
    assert platform.request_counts[PATCH_ITEM] == 1  # a slow answer is not a failure: no retry
    assert platform.log.pending_failures() == 0


def test_a_read_timeout_is_retried_by_dtlpy(platform, project, dataset, backoffs, monkeypatch):
    """dtlpy sends with ``timeout=120``; shrink it to 0.5 s for item updates so that the first
    one's 1.5 s answer times out and urllib3 sends it again."""
    item = _item(platform, dataset)
    session = dl.client_api.session
    original_send = session.send

    def short_timeout(request, **kwargs):
        if request.method == "PATCH":
            kwargs["timeout"] = 0.5  # for every attempt urllib3 makes inside this send
        return original_send(request, **kwargs)

    monkeypatch.setattr(session, "send", short_timeout)
    platform.fail_next("PATCH", r"/items/", status=None, delay_s=1.5)

    _, progress = _split_item(platform, project, item)

    expected = data_split.subset_for_item(item.id, data_split.SplitConfig.from_node_config(SPLIT_CONFIG))
    assert progress.actions == [expected]
    assert _tags(platform, item.id) == {expected: True}
    # one read retry (a second one only if the machine is so loaded that the retry also took > 0.5 s)
    assert backoffs in ([0], [0, 2.0])
    # the timed-out request is still being served; let it finish so it is not counted in the next test
    attempts = len(backoffs) + 1
    deadline = time.monotonic() + 10
    while platform.request_counts[PATCH_ITEM] < attempts and time.monotonic() < deadline:
        time.sleep(0.05)
    assert platform.request_counts[PATCH_ITEM] == attempts  # the slow original (served late, same patch) + retries
    assert _tags(platform, item.id) == {expected: True}


def test_split_persistent_503_surfaces_after_bounded_backoff_and_writes_nothing(platform, project, dataset, backoffs):
    item = _item(platform, dataset)
    platform.fail_next("PATCH", r"/items/", status=503, times=50)

    with pytest.raises(dl.exceptions.ExceptionMain) as info:
        _split_item(platform, project, item)

    assert "503" in str(info.value)
    assert platform.request_counts[PATCH_ITEM] == 6  # 1 try + 5 retries, then it gives up
    assert backoffs == DTLPY_BACKOFF  # 30 s of backoff in production
    assert _tags(platform, item.id) is None
    assert platform.write_count() == 0


def test_split_500_is_not_retried_and_surfaces_at_once(platform, project, dataset, backoffs):
    item = _item(platform, dataset)
    platform.fail_next("PATCH", r"/items/", status=500, times=1)

    with pytest.raises(dl.exceptions.InternalServerError, match="500"):
        _split_item(platform, project, item)

    assert platform.request_counts[PATCH_ITEM] == 1
    assert backoffs == []
    assert _tags(platform, item.id) is None
    # the pipeline's retry of the execution then completes it
    out, progress = _split_item(platform, project, item)
    assert _tags(platform, item.id) == {progress.actions[0]: True}


def test_split_fault_while_stripping_predictions_then_rerun_completes(platform, project, dataset):
    item = _item(platform, dataset, n_annotations=3, with_model=2)
    platform.fail_next("PUT", r"/annotations/", status=500, times=1)

    # dtlpy logs and swallows annotation update errors; the node turns the empty answer into an error
    with pytest.raises(RuntimeError, match=f"removing model metadata from annotation .* of item {item.id} failed"):
        _split_item(platform, project, item)
    assert _tags(platform, item.id) is None  # stopped before the tag

    _, progress = _split_item(platform, project, dataset.items.get(item_id=item.id))

    assert _tags(platform, item.id) == {progress.actions[0]: True}
    assert all("model" not in (a["metadata"].get("user") or {}) for a in platform.annotations_json(dataset.id))
    assert platform.request_counts["PUT /annotations/{id}"] <= 2


# ------------------------------------------------------------------------------------------
# Create New Model: cloning
# ------------------------------------------------------------------------------------------


def _base(platform, project, dataset):
    platform.add_items(
        dataset, [{"name": f"t{i}.jpg", "metadata": {"system": {"tags": {"train": True}}}} for i in range(3)]
    )
    return platform.create_model(project, "base", dataset=dataset, labels=["cat"], configuration={"epochs": 3})


def _create(platform, project, base, dataset, execution_id="exec-clone"):
    context = platform.make_context({"modelName": "{base_model.name}-next"}, execution_id=execution_id, project=project)
    platform.reset_counts()
    return main.ServiceRunner().create_new_model(base_model=base, dataset=dataset, context=context)


def _model_names(platform, project):
    return sorted(m["name"] for m in platform.store.tables["models"].values() if m["context"]["project"] == project.id)


@pytest.mark.parametrize("status", [502, 503, 504])
def test_clone_retries_transient_5xx_and_creates_exactly_one_model(platform, project, dataset, backoffs, status):
    base = _base(platform, project, dataset)
    platform.fail_next("POST", r"/clone", status=status, times=2)

    new_model, returned_base = _create(platform, project, base, dataset)

    assert new_model.name == "base-next"
    assert returned_base.id == base.id
    assert _model_names(platform, project) == ["base", "base-next"]
    assert platform.request_counts[CLONE] == 3
    assert backoffs == DTLPY_BACKOFF[:2]


def test_slow_clone_creates_exactly_one_model(platform, project, dataset):
    base = _base(platform, project, dataset)
    platform.fail_next("POST", r"/clone", status=None, delay_s=0.5)

    new_model, _ = _create(platform, project, base, dataset)

    assert new_model.name == "base-next"
    assert _model_names(platform, project) == ["base", "base-next"]


def test_clone_persistent_503_surfaces_and_creates_no_model(platform, project, dataset, backoffs):
    base = _base(platform, project, dataset)
    platform.fail_next("POST", r"/clone", status=503, times=50)

    with pytest.raises(dl.exceptions.ExceptionMain, match="503"):
        _create(platform, project, base, dataset)

    assert _model_names(platform, project) == ["base"]
    assert platform.write_count() == 0
    assert len(backoffs) == 5


def test_clone_500_surfaces_and_a_rerun_creates_the_model_once(platform, project, dataset):
    base = _base(platform, project, dataset)
    platform.fail_next("POST", r"/clone", status=500, times=1)

    with pytest.raises(dl.exceptions.ExceptionMain, match="500"):
        _create(platform, project, base, dataset)
    assert _model_names(platform, project) == ["base"]

    first, _ = _create(platform, project, base, dataset)
    again, _ = _create(platform, project, base, dataset)
    assert first.id == again.id
    assert _model_names(platform, project) == ["base", "base-next"]


def test_create_persistent_fault_on_a_lookup_says_what_it_was_doing(platform, project, dataset):
    base = _base(platform, project, dataset)
    platform.fail_next("POST", r"/ml/models/query", status=500, times=1)

    with pytest.raises(RuntimeError, match=r"looking up the model created by execution exec-clone failed.*500"):
        _create(platform, project, base, dataset)
    assert _model_names(platform, project) == ["base"]
    assert platform.write_count() == 0


def test_a_failed_record_after_the_clone_leaves_no_stray_model_after_rerun(platform, project, dataset):
    base = _base(platform, project, dataset)
    platform.fail_next("PATCH", r"/ml/models/", status=500, times=1)

    with pytest.raises(RuntimeError, match="createdBy"):
        _create(platform, project, base, dataset)
    _create(platform, project, base, dataset)

    assert _model_names(platform, project) == ["base", "base-next"]


# ------------------------------------------------------------------------------------------
# Compare Models: metric queries and annotation listing
# ------------------------------------------------------------------------------------------


def _models_with_metrics(platform, project, dataset):
    previous = platform.create_model(project, "previous", dataset=dataset, labels=["cat"])
    new = platform.create_model(project, "new", dataset=dataset, labels=["cat"])
    for model, losses in ((previous, [1.0, 0.8, 0.6]), (new, [0.9, 0.5, 0.3])):
        samples = [dl.PlotSample(figure="loss", legend="val", x=epoch, y=y) for epoch, y in enumerate(losses)]
        model.metrics.create(samples=samples, dataset_id=dataset.id)
    return previous, new


CHECKS = {"checks": [{"type": "plot", "figure": "loss", "legend": "val", "maximize": False}], "wins": "all"}


def _compare(previous, new, dataset, config):
    progress = RecordingProgress()
    winner = main.ServiceRunner().compare_models(
        previous_model=previous, new_model=new, compare_config=copy.deepcopy(config), dataset=dataset, progress=progress
    )
    return winner, progress


@pytest.mark.parametrize(
    ("status", "delay_s", "times"),
    [(503, 0, 1), (503, 0, 2), (None, 0.4, 2)],
    ids=["metrics-503-once", "metrics-503-twice", "metrics-slow"],
)
def test_compare_survives_transient_metric_query_faults(platform, project, dataset, backoffs, status, delay_s, times):
    previous, new = _models_with_metrics(platform, project, dataset)
    platform.reset_counts()
    platform.fail_next("POST", r"/ml/metrics/query", status=status, times=times, delay_s=delay_s)

    winner, progress = _compare(previous, new, dataset, CHECKS)

    assert winner.id == new.id
    assert progress.actions == ["update model"]
    assert platform.request_counts[METRICS_QUERY] == 2 + (times if status else 0)


def test_compare_persistent_metric_query_fault_surfaces_and_stores_no_report(platform, project, dataset, backoffs):
    previous, new = _models_with_metrics(platform, project, dataset)
    platform.reset_counts()
    platform.fail_next("POST", r"/ml/metrics/query", status=503, times=50)

    with pytest.raises(dl.exceptions.ExceptionMain, match="503"):
        _compare(previous, new, dataset, CHECKS)

    assert platform.write_count() == 0
    assert "activeLearning" not in (platform.get_json("models", new.id)["metadata"].get("user") or {})


def _seed_detections(platform, dataset, previous, new, n=6):
    ids = platform.add_items(
        dataset, [{"name": f"e{i}.jpg", "metadata": {"system": {"tags": {"test": True}}}} for i in range(n)]
    )
    for k, item_id in enumerate(ids):
        box = {"type": "box", "label": "cat", "coordinates": [{"x": 10, "y": 10, "z": 0}, {"x": 50, "y": 50, "z": 0}]}
        annotations = [dict(box, metadata={})]
        for model, offset in ((previous, 30 if k % 2 else 1), (new, 1)):
            info = {"model_id": model.id, "name": model.name, "confidence": 0.8}
            shifted = {
                "type": "box",
                "label": "cat",
                "coordinates": [{"x": 10 + offset, "y": 10, "z": 0}, {"x": 50 + offset, "y": 50, "z": 0}],
                "metadata": {"user": {"model": info}},
            }
            annotations.append(shifted)
        platform.store.create_annotations(item_id, annotations)


@pytest.mark.parametrize(("status", "delay_s"), [(503, 0), (None, 0.4)], ids=["listing-503", "listing-slow"])
def test_compare_survives_faults_in_the_annotation_listing(platform, project, dataset, backoffs, status, delay_s):
    previous = platform.create_model(project, "previous", dataset=dataset, labels=["cat"])
    new = platform.create_model(project, "new", dataset=dataset, labels=["cat"])
    _seed_detections(platform, dataset, previous, new)
    reference, _ = _compare(previous, new, dataset, {"precision_recall": {"iou_threshold": 0.5}})
    reference_report = platform.get_json("models", new.id)["metadata"]["user"]["activeLearning"]["comparison"]
    platform.reset_counts()
    # every dataset query (test items, then annotations) fails or is slow once
    platform.fail_next("POST", r"/datasets/[^/]+/query", status=status, times=2, delay_s=delay_s)

    winner, progress = _compare(previous, new, dataset, {"precision_recall": {"iou_threshold": 0.5}})

    assert winner.id == reference.id == new.id
    assert progress.actions == ["update model"]
    report = platform.get_json("models", new.id)["metadata"]["user"]["activeLearning"]["comparison"]
    assert _without_times(report) == _without_times(reference_report)


def _without_times(value):
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if not re.search(r"(?i)(time|date|at)$", k)}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


# ------------------------------------------------------------------------------------------
# Batch split interrupted at any request, then rerun
# ------------------------------------------------------------------------------------------

N_BATCH = 1300  # 2 listing pages of 1,000; bulk writes of <= 1,000: train 1040 -> 2, validation 1, test 1


def _interrupt_at(platform, monkeypatch, nth: int) -> None:
    """Fail the ``nth`` (1-based) dataset query from now on with a 500 (dtlpy does not retry it):
    the split stops there, as a crashed or killed run would."""
    seen = {"n": 0}
    original = platform.log.take_failure

    def take_failure(method, path):
        if method == "POST" and re.search(r"/datasets/[^/]+/query", path):
            seen["n"] += 1
            if seen["n"] == nth:
                platform.fail_next("POST", r"/datasets/[^/]+/query", status=500, times=1)
        return original(method, path)

    monkeypatch.setattr(platform.log, "take_failure", take_failure)


def test_batch_split_retries_transient_503_on_bulk_updates(platform, dataset, backoffs):
    platform.add_items(dataset, [{"name": f"r{i:04d}.jpg", "metadata": {}} for i in range(50)])
    config = data_split.SplitConfig.from_node_config(SPLIT_CONFIG)
    plan = data_split.split_dataset(dataset, config, dry_run=True, show_progress=False)
    platform.reset_counts()
    platform.fail_next("POST", r"/datasets/[^/]+/query", status=503, times=1)  # the listing page
    original = platform.log.take_failure
    seen = {"n": 0}

    def fail_first_write(method, path):  # the first bulk update (the 2nd dataset query) fails twice
        if method == "POST" and re.search(r"/datasets/[^/]+/query", path):
            seen["n"] += 1
            if seen["n"] == 3:
                platform.fail_next("POST", r"/datasets/[^/]+/query", status=503, times=2)
        return original(method, path)

    platform.log.take_failure = fail_first_write
    try:
        summary = data_split.split_dataset(dataset, config, show_progress=False)
    finally:
        platform.log.take_failure = original

    final = {i["id"]: (i["metadata"].get("system") or {}).get("tags") for i in platform.items_json(dataset.id)}
    assert final == {item_id: {subset: True} for item_id, subset in plan.assignments.items()}
    assert summary.write_requests == 3
    assert backoffs == [0, 0, 2.0]


@pytest.mark.parametrize(
    ("nth", "split_kwargs"),
    [
        *[pytest.param(n, {}, id=f"exact-query-{n}") for n in (2, 4, 6)],  # a listing page, mid-train, last write
        pytest.param(5, {"stratify_by": "label"}, id="stratified-query-5"),
    ],
)
def test_batch_split_interrupted_at_any_page_then_rerun_equals_an_uninterrupted_run(
    platform, dataset, monkeypatch, nth, split_kwargs
):
    """Dataset queries of a run: 2 listing pages (+ 1 annotation page when stratified), then 4 bulk writes;
    interrupting at the second train write leaves the train subset half written."""
    ids = platform.add_items(dataset, [{"name": f"b{i:05d}.jpg", "metadata": {}} for i in range(N_BATCH)])
    if split_kwargs:
        labels = ["cat", "dog", "bird"]
        for k, item_id in enumerate(ids[:300]):
            box = {"type": "box", "label": labels[k % 3], "coordinates": [{"x": 1, "y": 1}, {"x": 5, "y": 5}]}
            platform.store.create_annotations(item_id, [box])
    config = data_split.SplitConfig.from_node_config(SPLIT_CONFIG)
    uninterrupted = _uninterrupted(platform, dataset, config, split_kwargs)

    _interrupt_at(platform, monkeypatch, nth)
    with pytest.raises(dl.exceptions.ExceptionMain, match="500"):
        data_split.split_dataset(dataset, config, show_progress=False, **split_kwargs)
    monkeypatch.undo()
    rerun = data_split.split_dataset(dataset, config, show_progress=False, **split_kwargs)

    final = {item["id"]: (item["metadata"].get("system") or {}).get("tags") for item in platform.items_json(dataset.id)}
    expected = {item_id: {subset: True} for item_id, subset in uninterrupted.items()}
    assert rerun.assignments == uninterrupted
    assert final == expected


def _uninterrupted(platform, dataset, config, split_kwargs) -> dict:
    """What an uninterrupted run decides: the batch decision over the initial server state
    (read from the emulator's store, no requests)."""
    tags = {i["id"]: (i["metadata"].get("system") or {}).get("tags") for i in platform.items_json(dataset.id)}
    labels = None
    if split_kwargs.get("stratify_by") == "label":
        labels = {}
        for annotation in platform.annotations_json(dataset.id):
            labels.setdefault(annotation["itemId"], set()).add(annotation["label"])
        labels = {item_id: sorted(values) for item_id, values in labels.items()}
    assignments, _ = data_split.decide_batch(tags, config, item_labels=labels, seed=config.seed)
    return assignments
