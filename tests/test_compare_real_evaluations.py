"""Issue 13 §1: Compare Models on real evaluations. The evaluated items are the test-subset
items; a model with no prediction on an item detected nothing there (its ground truth is a miss);
only a model with no prediction on any test item is refused. Coverage is stored, printed and
warned about (more than 10 percentage points apart). Predictions on items without ground truth
are false positives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nodes import metrics
from nodes.compare_models.config import PrecisionRecallConfig
from nodes.compare_models.evaluation import check_tables, evaluation_votes, prediction_coverage
from nodes.compare_models.records import annotation_tables
from nodes.compare_models.report import ComparisonReport
from tests.helpers import TEST_TAGS, box, run_compare


def _report(platform, model_id):
    return platform.get_json("models", model_id)["metadata"]["user"]["activeLearning"]["comparison"]


# ------------------------------------------------------------------------------------ coverage


def test_coverage_warning_boundary_is_ten_percentage_points_exactly():
    items = [f"i{k}" for k in range(100)]
    at = prediction_coverage(items, items, items[:90])  # 10.0 points apart: no warning
    assert at["warning"] is None and at["gapPoints"] == 10.0
    assert (at["previous"]["items"], at["new"]["items"], at["testItems"]) == (100, 90, 100)
    over = prediction_coverage(items, items[:89], items)  # 11 points apart
    assert over["warning"] is not None and "11.0 percentage points" in over["warning"]
    assert over["previous"]["coverage"] == 0.89 and over["new"]["coverage"] == 1.0
    # items outside the test subset do not count
    outside = prediction_coverage(items[:10], items[:10] + ["x", "y"], items[:10])
    assert outside["previous"]["items"] == 10 and outside["warning"] is None
    # a gap just over 10 % of an odd number of items (exact integers, no rounding)
    assert prediction_coverage(range(21), range(21), range(18))["warning"] is not None  # 3/21 = 14.3 points
    assert prediction_coverage(range(30), range(30), range(27))["warning"] is None  # 3/30 = 10 points
    assert prediction_coverage([], [], [])["warning"] is None


def test_a_model_with_no_prediction_on_some_items_is_compared_and_its_ground_truth_there_missed():
    records = []
    for i in range(10):
        item = f"item-{i}"
        records.append({"item_id": item, "type": "box", "label": "cat", "left": 0, "top": 0, "right": 10, "bottom": 10})
        records.append(dict(records[-1], model_id="prev", confidence=0.9))
        if i < 7:  # the new model detected nothing on 3 items
            records.append(dict(records[-2], model_id="new", confidence=0.9))
    tables = annotation_tables(records, "prev", "new")
    check_tables(tables, "previous model p", "new model n", "dataset 'd'", 10, {"previous": 10, "new": 7})
    [vote] = evaluation_votes(tables, PrecisionRecallConfig()).votes
    assert vote.previous == 1.0 and vote.new == pytest.approx(0.7)  # 3 of 10 ground truth missed
    assert not vote.won


def test_labels_filter_compares_a_model_that_never_predicted_that_label():
    records = []
    for i in range(6):
        item = f"item-{i}"
        for label, left in (("cat", 0), ("dog", 100)):
            records.append({"item_id": item, "type": "box", "label": label, "left": left, "top": 0,
                            "right": left + 10, "bottom": 10})  # fmt: skip
        records.append(dict(records[-2], model_id="new", confidence=0.8))  # new: cats only
        records.append(dict(records[-2], model_id="prev", confidence=0.8))  # previous: dogs only
    tables = annotation_tables(records, "prev", "new", labels=["dog"])
    assert len(tables["box"].new) == 0  # no dog prediction at all
    # the new model was evaluated (it has predictions on every test item): compared, not refused
    check_tables(tables, "previous model p", "new model n", "dataset 'd'", 6, {"previous": 6, "new": 6})
    outcome = evaluation_votes(tables, PrecisionRecallConfig(labels=("dog",), per_label=True))
    assert [(v.name, v.previous, v.new, v.won) for v in outcome.votes] == [
        ("precision_recall.box[dog]", 1.0, 0.0, False)
    ]


def test_predictions_on_items_without_ground_truth_are_false_positives():
    gt = {"item_id": "a", "type": "box", "label": "cat", "left": 0, "top": 0, "right": 10, "bottom": 10}
    records = [gt, dict(gt, model_id="prev", confidence=0.5), dict(gt, model_id="new", confidence=0.5),
               dict(gt, item_id="b", model_id="new", confidence=0.9)]  # fmt: skip
    [vote] = evaluation_votes(annotation_tables(records, "prev", "new"), PrecisionRecallConfig()).votes
    assert vote.previous == 1.0 and vote.new == 0.5  # the new model's most confident box is a false positive


def test_classification_scores_both_models_over_the_same_items():
    records = [{"item_id": f"i{k}", "type": "class", "label": "cat"} for k in range(4)]
    records += [dict(r, model_id="prev", confidence=0.9) for r in records[:4]]
    records.append({"item_id": "i4", "type": "class", "label": "cat", "model_id": "prev", "confidence": 0.1})
    records += [dict(records[0], model_id="new", confidence=0.9), dict(records[1], model_id="new", confidence=0.8)]
    outcome = evaluation_votes(annotation_tables(records, "prev", "new"), PrecisionRecallConfig())
    [vote] = outcome.votes
    # item i4 (no cat, predicted by the previous model only) is scored for the new model too: a
    # negative tied with its two missed cats at the bottom of its ranking
    gt = pd.DataFrame({"item_id": [f"i{k}" for k in range(4)], "label": "cat"})
    new_pred = pd.DataFrame({"item_id": ["i0", "i1"], "label": "cat", "confidence": [0.9, 0.8]})
    expected = metrics.evaluate_classification(
        gt, new_pred, interpolation="every_point", item_ids=[f"i{k}" for k in range(5)]
    ).mean_ap
    alone = metrics.evaluate_classification(gt, new_pred, interpolation="every_point").mean_ap
    assert vote.previous == 1.0 and vote.new == pytest.approx(expected) and expected == pytest.approx(0.5 + 0.5 * 0.8)
    assert alone == 1.0  # scored over its own items only, the misses would cost nothing


# ------------------------------------------------------------------------------------ through dtlpy


def test_a_new_model_evaluated_on_part_of_the_test_subset_is_compared_with_coverage(platform, project, dataset, caplog):
    previous = platform.create_model(project, "previous", dataset=dataset)
    new = platform.create_model(project, "new", dataset=dataset)
    ids = platform.add_items(dataset, [{"name": f"c-{i}.jpg", "metadata": TEST_TAGS} for i in range(10)])
    annotations = {}
    for i, item_id in enumerate(ids):
        annotations[item_id] = [box("cat", 100, 100), box("cat", 100, 100, model=previous, confidence=0.9)]
        if i < 7:  # Evaluate found nothing on 3 images for the new model
            annotations[item_id].append(box("cat", 101, 100, model=new, confidence=0.9))
    empty_item = platform.add_items(dataset, [{"name": "no-gt.jpg", "metadata": TEST_TAGS}])[0]
    annotations[empty_item] = [box("cat", 5, 5, model=previous, confidence=0.1)]  # a false positive
    for item_id, docs in annotations.items():
        platform.store.create_annotations(item_id, docs)
    platform.reset_counts()
    caplog.set_level("INFO")

    winner, progress = run_compare(previous, new, dataset)

    report = _report(platform, new.id)
    coverage = report["details"]["coverage"]
    assert coverage["testItems"] == 11
    assert (coverage["previous"]["items"], coverage["new"]["items"]) == (11, 7)
    assert coverage["warning"] and "36.4 percentage points" in coverage["warning"]
    [vote] = report["votes"]
    assert vote["new"] == pytest.approx(0.7)  # 3 misses of 10 ground truth
    assert vote["previous"] == 1.0  # its false positive is the least confident: AP stays 1
    assert progress.actions == ["discard"] and winner.id == previous.id
    table = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("comparison of previous"))
    assert "coverage (test items with >= 1 prediction): previous 11/11 (100.0 %), new 7/11 (63.6 %)" in table
    assert "WARNING: coverage differs by 36.4 percentage points" in table
    assert any(r.levelname == "WARNING" and "coverage differs" in r.getMessage() for r in caplog.records)
    assert platform.write_count() == 1


def test_coverage_within_ten_points_has_no_warning_in_the_report(platform, project, dataset):
    previous = platform.create_model(project, "previous", dataset=dataset)
    new = platform.create_model(project, "new", dataset=dataset)
    ids = platform.add_items(dataset, [{"name": f"w-{i}.jpg", "metadata": TEST_TAGS} for i in range(10)])
    for i, item_id in enumerate(ids):
        docs = [box("cat", 100, 100), box("cat", 100, 100, model=new, confidence=0.9)]
        if i:  # previous model: nothing on one image (10 points apart, not more)
            docs.append(box("cat", 100, 100, model=previous, confidence=0.9))
        platform.store.create_annotations(item_id, docs)

    winner, progress = run_compare(previous, new, dataset)

    coverage = _report(platform, new.id)["details"]["coverage"]
    assert coverage["warning"] is None and coverage["gapPoints"] == 10.0
    assert progress.actions == ["update model"] and winner.id == new.id


def test_labels_filter_through_dtlpy_does_not_refuse_a_model_without_that_label(platform, project, dataset):
    previous = platform.create_model(project, "previous", dataset=dataset)
    new = platform.create_model(project, "new", dataset=dataset)
    ids = platform.add_items(dataset, [{"name": f"l-{i}.jpg", "metadata": TEST_TAGS} for i in range(4)])
    for item_id in ids:
        platform.store.create_annotations(
            item_id,
            [box("cat", 0, 0), box("dog", 200, 200), box("cat", 0, 0, model=new, confidence=0.7),
             box("dog", 200, 200, model=previous, confidence=0.7)],
        )  # fmt: skip

    winner, progress = run_compare(previous, new, dataset, config={"precision_recall": {"labels": ["dog"]}})

    [vote] = _report(platform, new.id)["votes"]
    assert (vote["previous"], vote["new"], vote["won"]) == (1.0, 0.0, False)
    assert progress.actions == ["discard"] and winner.id == previous.id


def test_only_a_model_never_evaluated_is_refused_and_nothing_is_written(platform, project, dataset):
    previous = platform.create_model(project, "previous", dataset=dataset)
    new = platform.create_model(project, "new", dataset=dataset)
    ids = platform.add_items(dataset, [{"name": f"n-{i}.jpg", "metadata": TEST_TAGS} for i in range(3)])
    for item_id in ids:
        platform.store.create_annotations(item_id, [box("cat", 0, 0), box("cat", 0, 0, model=previous, confidence=1)])
    # the new model's predictions exist, but outside the test subset: never evaluated on it
    other = platform.add_items(dataset, [{"name": "train.jpg", "metadata": {"system": {"tags": {"train": True}}}}])
    platform.store.create_annotations(other[0], [box("cat", 0, 0, model=new, confidence=1)])
    platform.reset_counts()

    with pytest.raises(ValueError) as error:
        run_compare(previous, new, dataset)

    message = str(error.value)
    assert "new model 'new'" in message and "no predictions on any of the 3 test-subset items" in message
    assert "run Evaluate on" in message and len(message) < 1000
    assert platform.write_count() == 0


def test_report_table_shows_coverage_lines_only_when_measured():
    from nodes.compare_models.config import CompareConfig

    config = CompareConfig.from_json({"checks": [{"legend": "v", "figure": "f"}]})
    assert "coverage" not in ComparisonReport.decide([], config, "p", "n").table()
    details = {"coverage": prediction_coverage(range(4), range(4), range(3))}
    table = ComparisonReport.decide([], config, "p", "n", details=details).table()
    assert "previous 4/4 (100.0 %), new 3/4 (75.0 %)" in table and "WARNING: coverage differs by 25.0" in table
    markdown = ComparisonReport.decide([], config, "p", "n", details=details).markdown()
    assert "- coverage (test items with >= 1 prediction)" in markdown


def test_bootstrap_resamples_every_test_item_including_unannotated_ones():
    rng = np.random.default_rng(0)
    records = []
    for i in range(12):
        item = f"item-{i:02d}"
        left = float(rng.uniform(0, 100))
        gt = {"item_id": item, "type": "box", "label": "cat", "left": left, "top": 0, "right": left + 10, "bottom": 10}
        records += [gt, dict(gt, model_id="new", confidence=0.9), dict(gt, model_id="prev", confidence=0.9,
                                                                          left=left + 6, right=left + 16)]  # fmt: skip
    tables = annotation_tables(records, "prev", "new")
    config = PrecisionRecallConfig(confidence=0.9, seed=1)
    annotated = evaluation_votes(tables, config).votes[0].interval
    everything = evaluation_votes(tables, config, item_ids=[f"item-{i:02d}" for i in range(40)]).votes[0].interval
    assert annotated != everything  # 28 empty test items change the resampling
