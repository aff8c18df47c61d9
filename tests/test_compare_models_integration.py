"""Compare Models through ``main.ServiceRunner.compare_models`` with the real dtlpy client on
the local platform: decisions, stored report and tags, training-metric pages, errors that
write nothing, and the request budget."""

from __future__ import annotations

import json
import math

import dtlpy as dl
import numpy as np
import pytest

import main
from emulator import RecordingProgress
from tests.helpers import TEST_TAGS, box, run_compare
from tests.test_compare_models_unit import BAD_CONFIGS

LABELS = ("cat", "dog", "bird")


def seed_detections(platform, dataset, n_items, models, gt_per_item=4, preds_per_gt=1.0, seed=0, tags=TEST_TAGS,
                    prefix="img"):  # fmt: skip
    """Items with ``gt_per_item`` boxes and, per (model, quality), predictions that hit with
    probability ``quality`` (IoU ~0.95) or miss (IoU ~0.14). Written straight into the
    emulator's store (no HTTP: setup is not what is measured). Returns the item ids."""
    rng = np.random.default_rng(seed)
    item_ids = platform.add_items(
        dataset, [{"name": f"{prefix}-{i:05d}.jpg", "metadata": tags} for i in range(n_items)]
    )
    for item_id in item_ids:
        annotations = []
        places = rng.uniform(0, 600, size=(gt_per_item, 2))
        for k, (left, top) in enumerate(places):
            annotations.append(box(LABELS[k % len(LABELS)], left, top))
        for model, quality in models:
            n_preds = int(round(gt_per_item * preds_per_gt))
            for k in range(n_preds):
                left, top = places[k % gt_per_item]
                offset = 1.0 if rng.uniform() < quality else 25.0
                label = LABELS[k % gt_per_item % len(LABELS)]
                annotations.append(box(label, left + offset, top, model=model, confidence=float(rng.uniform(0.05, 1))))
        platform.store.create_annotations(item_id, annotations)
    return item_ids


def _models(platform, project, dataset):
    previous = platform.create_model(project, "previous", dataset=dataset)
    new = platform.create_model(project, "new", dataset=dataset)
    return previous, new


def _stored_report(platform, model_id):
    return platform.get_json("models", model_id)["metadata"]["user"]["activeLearning"]["comparison"]


def test_clearly_better_new_model_is_promoted_and_the_report_stored(platform, project, dataset):
    previous, new = _models(platform, project, dataset)
    seed_detections(platform, dataset, 60, [(previous, 0.4), (new, 0.95)])
    platform.reset_counts()
    new_metadata_before = json.dumps(new.metadata, sort_keys=True)

    winner, progress = run_compare(previous, new, dataset, config=None)

    assert progress.actions == ["update model"]
    assert winner.id == new.id and isinstance(winner, dl.Model)
    report = _stored_report(platform, new.id)
    assert report == winner.metadata["user"]["activeLearning"]["comparison"]
    assert report["decision"] == "update model" and report["newModelWins"] is True
    [vote] = report["votes"]
    assert vote["name"] == "precision_recall.box" and vote["won"] and vote["new"] > 0.85 > 0.6 > vote["previous"]
    assert report["config"]["precision_recall"]["iou_threshold"] == 0.5 and report["details"]["testItems"] == 60
    assert json.dumps(new.metadata, sort_keys=True) == new_metadata_before  # the caller's entity is untouched
    assert platform.write_count() == 1 and platform.request_counts["PATCH /ml/models/{id}"] == 1
    assert "tags" not in platform.get_json("models", new.id)["metadata"].get("system", {})  # no itemMetadata


@pytest.mark.parametrize(("new_quality", "same_predictions"), [(0.3, False), (None, True)], ids=["worse", "equal"])
def test_worse_or_equal_new_model_is_discarded(platform, project, dataset, new_quality, same_predictions):
    previous, new = _models(platform, project, dataset)
    if same_predictions:
        ids = seed_detections(platform, dataset, 30, [(previous, 0.8)], seed=1)
        # the new model predicts exactly what the previous one did
        copies = {}
        for annotation in platform.annotations_json(dataset.id):
            if annotation["metadata"].get("user", {}).get("model"):
                clone = {k: annotation[k] for k in ("type", "label", "coordinates")}
                clone["metadata"] = {"user": {"model": dict(annotation["metadata"]["user"]["model"], model_id=new.id)}}
                copies.setdefault(annotation["itemId"], []).append(clone)
        for item_id in ids:
            platform.store.create_annotations(item_id, copies[item_id])
    else:
        seed_detections(platform, dataset, 30, [(previous, 0.8), (new, new_quality)], seed=1)
    platform.reset_counts()

    winner, progress = run_compare(previous, new, dataset, config={"precision_recall": {"per_label": True}})

    assert progress.actions == ["discard"] and winner.id == previous.id
    report = _stored_report(platform, new.id)
    assert report["decision"] == "discard" and len(report["votes"]) == 3
    assert not any(v["won"] for v in report["votes"])
    if same_predictions:
        assert all(v["delta"] == 0 for v in report["votes"])
    assert platform.write_count() == 1


def test_tag_follows_the_decision_and_reruns_are_idempotent(platform, project, dataset):
    previous, new = _models(platform, project, dataset)
    seed_detections(platform, dataset, 20, [(previous, 0.9), (new, 0.2)], seed=2)
    context = platform.make_context(node_config={"itemMetadata": True}, project=project)
    platform.reset_counts()

    winner, progress = run_compare(previous, new, dataset, context=context)
    first = platform.get_json("models", new.id)["metadata"]
    winner_again, _ = run_compare(previous, new, dataset, context=context)
    second = platform.get_json("models", new.id)["metadata"]

    assert progress.actions == ["discard"] and winner.id == winner_again.id == previous.id
    assert first["system"]["tags"] == {"discard": True}  # M3: the tag is the decision, not always "update model"
    assert first == second
    assert "tags" not in platform.get_json("models", previous.id)["metadata"].get("system", {})

    # a node without customNodeConfig, and no context at all: no tag written or removed, no crash (M13)
    bare = platform.make_context(node_config=None, project=project)
    for other_context in (bare, None):
        _, progress = run_compare(previous, new, dataset, context=other_context)
        assert progress.actions == ["discard"]
        assert platform.get_json("models", new.id)["metadata"]["system"]["tags"] == {"discard": True}


def test_training_metric_checks_read_every_page_sorted_by_x(platform, project, dataset):
    previous, new = _models(platform, project, dataset)
    epochs = 400
    rng = np.random.default_rng(5)

    def publish(model, final_map, final_loss):
        samples = []
        for epoch in range(epochs):
            last = epoch == epochs - 1
            samples.append(dl.PlotSample("mAP50(B)", "metrics", epoch, final_map if last else 0.3))
            samples.append(dl.PlotSample("box_loss", "val", epoch, final_loss if last else 2.0))
            samples.append(dl.PlotSample("precision", "metrics", epoch, 0.5))
        order = rng.permutation(len(samples) - 3)  # shuffled, and the last epoch published last
        model.metrics.create(samples=[samples[i] for i in order] + samples[-3:], dataset_id=dataset.id)

    publish(previous, final_map=0.50, final_loss=1.0)
    publish(new, final_map=0.62, final_loss=0.95)
    platform.reset_counts()
    config = {
        "wins": "0.6",  # the original docs' form: a numeric string
        "checks": [
            {"type": "plot", "legend": "metrics", "figure": "mAP50(B)", "x_index": -1, "maximize": True, "min_delta": 0.1},
            {"type": "plot", "legend": "val", "figure": "box_loss", "maximize": False, "min_delta": 0.1},
            {"type": "plot", "legend": "metrics", "figure": "precision", "min_delta": 0},
        ],
    }  # fmt: skip

    winner, progress = run_compare(previous, new, None, config=config)

    report = _stored_report(platform, new.id)
    assert [(v["name"], v["previous"], v["new"], v["won"]) for v in report["votes"]] == [
        ("plot.metrics.mAP50(B)", 0.5, 0.62, True),
        ("plot.val.box_loss", 1.0, 0.95, False),  # 0.05 better, but min_delta 0.1
        ("plot.metrics.precision", 0.5, 0.5, False),  # a tie never wins
    ]
    assert progress.actions == ["discard"] and winner.id == previous.id  # 1 of 3 < 0.6
    assert platform.request_counts["POST /ml/metrics/query"] >= 4  # 1,200 samples: 2 pages per model

    config["checks"][1]["min_delta"] = 0.01
    winner, progress = run_compare(previous, new, None, config=config)
    assert progress.actions == ["update model"] and winner.id == new.id  # 2 of 3 >= 0.6

    with pytest.raises(ValueError) as error:
        run_compare(previous, new, None, config={"checks": [{"legend": "train", "figure": "box_loss"}]})
    message = str(error.value)
    assert "has no metric with figure 'box_loss' and legend 'train'" in message
    assert "'box_loss'/'val'" in message and "'mAP50(B)'/'metrics'" in message


def test_a_refused_metrics_query_is_an_error_naming_it_not_no_metrics(platform, project, dataset):
    """dtlpy's ``model.metrics.list`` reads a 400 as "no samples"; the node raises, naming the query."""
    previous, new = _models(platform, project, dataset)
    for model in (previous, new):
        model.metrics.create(samples=[dl.PlotSample("box_loss", "val", 0, 1.0)], dataset_id=dataset.id)
    config = {"checks": [{"type": "plot", "legend": "val", "figure": "box_loss", "maximize": False}]}
    platform.fail_next("POST", r"/ml/metrics/query", status=400)
    platform.reset_counts()
    with pytest.raises(RuntimeError, match=r"the platform refused the metrics query .*modelId"):
        run_compare(previous, new, None, config=config)
    assert platform.write_count() == 0


def test_errors_write_nothing(platform, project, dataset):
    previous, new = _models(platform, project, dataset)
    ids = seed_detections(platform, dataset, 10, [(previous, 0.9)], seed=3)
    seed_detections(platform, dataset, 5, [], seed=4, tags={"system": {"tags": {"train": True}}}, prefix="train")
    empty = platform.create_dataset(project, "empty", labels=LABELS)
    platform.add_items(empty, [{"name": "x.jpg", "metadata": TEST_TAGS}])
    platform.reset_counts()

    with pytest.raises(ValueError, match=rf"new model 'new' \({new.id}\) has no predictions .* run Evaluate on"):
        run_compare(previous, new, dataset)

    # (a new model with predictions on only some test items is compared: tests/test_compare_real_evaluations.py)
    assert len(ids) == 10

    with pytest.raises(ValueError, match="no ground truth"):
        run_compare(previous, new, empty)
    with pytest.raises(ValueError, match="test subset matched 0 items"):
        run_compare(
            previous, new, empty, config={"precision_recall": {"test_subset": {"metadata.system.tags.none": True}}}
        )
    with pytest.raises(ValueError, match="dataset: None, but compare_config.precision_recall"):
        run_compare(previous, new, None)
    with pytest.raises(ValueError, match="same model as previous_model"):
        run_compare(previous, previous, dataset)
    assert platform.write_count() == 0
    assert all(not key.startswith(("PATCH", "PUT", "DELETE")) for key in platform.request_counts)


def test_polygons_and_classes_through_dtlpy_are_separate_votes(platform, project, dataset):
    previous, new = _models(platform, project, dataset)
    ids = platform.add_items(dataset, [{"name": f"p-{i}.jpg", "metadata": TEST_TAGS} for i in range(8)])

    def polygon(dx, model=None):
        points = [{"x": 10.0 + dx, "y": 10.0}, {"x": 50.0 + dx, "y": 10.0}, {"x": 30.0 + dx, "y": 60.0}]
        annotation = {"type": "segment", "label": "cat", "coordinates": [points], "metadata": {}}
        if model is not None:
            annotation["metadata"] = {"user": {"model": {"model_id": model.id, "confidence": 0.8}}}
        return annotation

    def classification(label, model=None, confidence=0.7):
        annotation = {"type": "class", "label": label, "metadata": {}}
        if model is not None:
            annotation["metadata"] = {"user": {"model": {"model_id": model.id, "confidence": confidence}}}
        return annotation

    for i, item_id in enumerate(ids):
        truth = "dog" if i % 2 else "cat"
        platform.store.create_annotations(
            item_id,
            [polygon(0), polygon(1, new), polygon(25, previous), classification(truth),
             classification(truth, new, 0.9), classification("cat", previous, 0.9)],
        )  # fmt: skip
    platform.reset_counts()

    winner, progress = run_compare(previous, new, dataset, config={"precision_recall": {}, "wins": "all"})

    votes = {v["name"]: v for v in _stored_report(platform, new.id)["votes"]}
    assert sorted(votes) == ["precision_recall.class", "precision_recall.polygon"]
    assert votes["precision_recall.polygon"]["new"] == 1.0 and votes["precision_recall.polygon"]["previous"] == 0.0
    assert votes["precision_recall.class"]["new"] == 1.0 and votes["precision_recall.class"]["won"]
    assert progress.actions == ["update model"] and winner.id == new.id


def test_a_failed_report_write_sends_no_action(platform, project, dataset):
    previous, new = _models(platform, project, dataset)
    seed_detections(platform, dataset, 10, [(previous, 0.5), (new, 0.9)], seed=8)
    platform.reset_counts()
    platform.fail_next("PATCH", r"/ml/models/", status=500)
    progress = RecordingProgress()
    with pytest.raises(dl.exceptions.InternalServerError):
        main.ServiceRunner().compare_models(previous_model=previous, new_model=new, dataset=dataset, progress=progress)
    assert progress.actions == []  # the pipeline is not routed when the decision could not be recorded
    # transient errors are retried by dtlpy: the decision is recorded and routed
    platform.fail_next("PATCH", r"/ml/models/", status=503, times=2)
    winner, progress = run_compare(previous, new, dataset)
    assert progress.actions == ["update model"] and _stored_report(platform, winner.id)["decision"] == "update model"


def test_every_bad_config_is_refused_before_any_request(platform, project, dataset):
    previous, new = _models(platform, project, dataset)
    platform.reset_counts()
    for raw, _ in BAD_CONFIGS:
        with pytest.raises(ValueError):
            run_compare(previous, new, dataset, config=raw)
    assert sum(platform.request_counts.values()) == 0


def test_request_count_for_2000_test_items_is_within_the_bound(platform, project, dataset):
    previous, new = _models(platform, project, dataset)
    n_items = 2000
    # 10 annotations per item: 4 ground truth + 3 predictions of each model
    seed_detections(platform, dataset, n_items, [(previous, 0.6), (new, 0.9)], gt_per_item=4, preds_per_gt=0.75)
    n_annotations = len(platform.annotations_json(dataset.id))
    assert n_annotations == 10 * n_items
    platform.reset_counts()

    winner, progress = run_compare(previous, new, dataset, config=None)

    counts = platform.request_counts
    queries = counts["POST /datasets/{id}/query"]
    bound = math.ceil(n_annotations / 1000) + math.ceil(n_items / 1000) + 3
    assert queries <= bound, dict(counts)
    assert counts["POST /ml/models/query"] == 1  # the lineage's comparisons, for the ledger (one page)
    assert sum(counts.values()) == queries + 2  # + that query and the one PATCH of the report
    assert progress.actions == ["update model"] and winner.id == new.id
    assert _stored_report(platform, new.id)["details"]["annotations"] == n_annotations


def test_cli_writes_report_and_pr_curves(platform, project, dataset, tmp_path, capsys):
    previous, new = _models(platform, project, dataset)
    seed_detections(platform, dataset, 15, [(previous, 0.5), (new, 0.9)], seed=6)
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps({"precision_recall": {"per_label": True}, "wins": 0.6}))
    platform.reset_counts()
    out = tmp_path / "out"

    code = main.main(["compare", "--previous", previous.id, "--new", new.id, "--dataset", dataset.id,
                      "--config", str(config_file), "--out", str(out)])  # fmt: skip

    assert code == 0
    report = (out / "report.md").read_text()
    assert "decision: **update model**" in report and "precision_recall.box[cat]" in report
    assert (out / "pr_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert platform.write_count() == 0  # read only without --store
    assert "update model" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text('{"wins": "most"}')
    assert main.main(["compare", "--previous", previous.id, "--new", new.id, "--config", str(bad)]) == 2
