"""Compare Models, pure parts: config validation, the wins rule, votes, bootstrap, report.

No platform here; integration through ``main.ServiceRunner`` is in
``test_compare_models_integration.py``.
"""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodes.common.defaults import load_default_compare_config, load_subset_filter
from nodes.compare_models import (
    CompareConfig,
    ComparisonReport,
    EvaluationTables,
    PlotCheck,
    PrecisionRecallConfig,
    annotation_tables,
    check_tables,
    evaluation_votes,
    judge_vote,
    metric_value_at,
    new_model_wins,
    paired_bootstrap_interval,
    parse_wins,
    samples_frame,
    training_votes,
    updated_metadata,
)

CHECK = {"type": "plot", "legend": "val", "figure": "box_loss", "x_index": -1, "maximize": False, "min_delta": 0}

# (config, dotted field the message must name) -- every kind of config error, each raised by
# CompareConfig.from_json (pure: before any request can happen).
BAD_CONFIGS = [
    ({}, "compare_config: {}"),
    ([1, 2], "compare_config:"),
    ("{not json", "compare_config:"),
    ({"precision_recall": {}, "foo": 1}, "compare_config: unknown key(s) 'foo'"),
    ({"wins": "0.6x", "checks": [CHECK]}, "compare_config.wins: '0.6x' is not 'any', 'all' or a number in (0, 1]"),
    ({"wins": 0, "checks": [CHECK]}, "compare_config.wins: 0"),
    ({"wins": -0.5, "checks": [CHECK]}, "compare_config.wins: -0.5"),
    ({"wins": 1.5, "checks": [CHECK]}, "compare_config.wins: 1.5"),
    ({"wins": float("nan"), "checks": [CHECK]}, "compare_config.wins: nan"),
    ({"wins": True, "checks": [CHECK]}, "compare_config.wins: True"),
    ({"wins": None, "checks": [CHECK]}, "compare_config.wins: None"),
    ({"checks": "plot.val.box_loss"}, "compare_config.checks: 'plot.val.box_loss' is not a list"),
    ({"checks": [42]}, "compare_config.checks[0]: 42 is not an object"),
    ({"checks": [{"legend": "val"}]}, "compare_config.checks[0].figure: missing"),
    ({"checks": [dict(CHECK, legend="")]}, "compare_config.checks[0].legend: ''"),
    ({"checks": [dict(CHECK, x_index=None)]}, "compare_config.checks[0].x_index: None is not an integer"),
    ({"checks": [dict(CHECK, x_index=1.5)]}, "compare_config.checks[0].x_index: 1.5"),
    ({"checks": [dict(CHECK, maximize="yes")]}, "compare_config.checks[0].maximize: 'yes' is not true or false"),
    ({"checks": [dict(CHECK, min_delta="0.1")]}, "compare_config.checks[0].min_delta: '0.1' is not a finite number"),
    ({"checks": [dict(CHECK, type="table")]}, "compare_config.checks[0].type: 'table' is not 'plot'"),
    ({"checks": [dict(CHECK, x_value=3)]}, "compare_config.checks[0]: unknown key(s) 'x_value'"),
    ({"checks": [CHECK, CHECK]}, "compare_config.checks: plot.val.box_loss checked more than once"),
    ({"checks": []}, "compare_config: "),
    ({"precision_recall": None}, "compare_config.precision_recall: None is not an object"),
    ({"precision_recall": 0.5}, "compare_config.precision_recall: 0.5 is not an object"),
    ({"precision_recall": {"iou_threshold": 0}}, "compare_config.precision_recall.iou_threshold: 0 is not in (0, 1]"),
    ({"precision_recall": {"iou_threshold": "0.5"}}, "compare_config.precision_recall.iou_threshold: '0.5'"),
    ({"precision_recall": {"min_delta": math.inf}}, "compare_config.precision_recall.min_delta: inf"),
    ({"precision_recall": {"interpolation": "auc"}}, "compare_config.precision_recall.interpolation: 'auc'"),
    ({"precision_recall": {"per_label": 1}}, "compare_config.precision_recall.per_label: 1 is not true or false"),
    ({"precision_recall": {"min_relative_change": "5%"}}, "compare_config.precision_recall.min_relative_change"),
    ({"precision_recall": {"confidence": 95}}, "compare_config.precision_recall.confidence: 95 is not in (0, 1)"),
    ({"precision_recall": {"resamples": 100}}, "compare_config.precision_recall.resamples: 100 is below 1000"),
    ({"precision_recall": {"seed": -1}}, "compare_config.precision_recall.seed: -1 is negative"),
    ({"precision_recall": {"labels": []}}, "compare_config.precision_recall.labels: []"),
    ({"precision_recall": {"labels": ["cat", 3]}}, "compare_config.precision_recall.labels[1]: 3"),
    ({"precision_recall": {"test_subset": "test"}}, "compare_config.precision_recall.test_subset: 'test'"),
    ({"precision_recall": {"test_subset": {"filter": {}}}}, "compare_config.precision_recall.test_subset.filter"),
    (
        {"precision_recall": {"test_subset": {"filter": {"a": 1}, "page": 2}}},
        "compare_config.precision_recall.test_subset: unknown key(s) 'page'",
    ),
    ({"precision_recall": {"specific_label": ["cat"]}}, "compare_config.precision_recall: unknown key(s)"),
    (
        {"precision_recall": {"wins": "any"}, "wins": "all"},
        "compare_config.precision_recall.wins: also given at compare_config.wins",
    ),
    ({"precision_recall": {}, "verbose": "yes"}, "compare_config.verbose: 'yes' is not true or false"),
]


# ------------------------------------------------------------------------------------ config


@pytest.mark.parametrize(("raw", "expected"), BAD_CONFIGS, ids=[e for _, e in BAD_CONFIGS])
def test_every_config_error_names_the_field_and_the_fix(raw, expected):
    before = copy.deepcopy(raw)
    with pytest.raises(ValueError) as error:
        CompareConfig.from_json(raw)
    message = str(error.value)
    assert message.startswith(expected) or expected in message, message
    assert "example" in message or "use" in message or "allowed keys" in message or "keep" in message, message
    assert raw == before or (isinstance(raw, float) and math.isnan(raw))  # never mutated


def test_there_are_at_least_fifteen_kinds_of_config_errors():
    kinds = {expected.split(":")[0] for _, expected in BAD_CONFIGS}
    assert len(BAD_CONFIGS) >= 15 and len(kinds) >= 15


def test_none_gives_the_packaged_default_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # M1: the original read pipeline_configs/ relative to the CWD
    config = CompareConfig.from_json(None)
    assert config.precision_recall == PrecisionRecallConfig.from_json(
        load_default_compare_config()["precision_recall"], "x"
    )
    assert config.precision_recall.iou_threshold == 0.5 and config.precision_recall.min_delta == 0.0
    assert config.precision_recall.interpolation == "every_point"
    assert config.precision_recall.test_subset_query() == load_subset_filter("test")
    assert config.wins == "all" and config.checks == () and config.needs_dataset


def test_the_callers_dict_is_never_mutated():
    raw = {"precision_recall": {"iou_threshold": 0.5, "wins": "any", "checks": [dict(CHECK)], "verbose": True}}
    before = copy.deepcopy(raw)
    config = CompareConfig.from_json(raw)
    assert raw == before
    query = config.precision_recall.test_subset_query()
    query["filter"]["changed"] = True
    assert "changed" not in config.precision_recall.test_subset_query()["filter"]


def test_nested_wins_checks_verbose_of_the_original_e2e_config_are_hoisted():
    raw = {
        "precision_recall": {
            "iou_threshold": 0.5,
            "wins": "any",
            "checks": [{"min_delta": 0.01, "maximize": True, "figure": "precision_recall", "legend": "overall",
                        "x_index": 0}],
            "verbose": True,
        }
    }  # fmt: skip
    config = CompareConfig.from_json(raw)
    assert config.wins == "any" and config.verbose is True
    assert config.checks == (PlotCheck(legend="overall", figure="precision_recall", x_index=0, min_delta=0.01),)
    assert config.precision_recall.iou_threshold == 0.5


def test_full_config_round_trips_through_to_json():
    raw = {
        "precision_recall": {"iou_threshold": 0.75, "min_delta": 0.01, "interpolation": "coco", "per_label": True,
                             "min_relative_change": 0.05, "confidence": 0.9, "resamples": 2000, "seed": 7,
                             "labels": ["cat"], "test_subset": {"metadata.system.tags.test": True}},
        "wins": "0.6", "checks": [CHECK], "verbose": False,
    }  # fmt: skip
    config = CompareConfig.from_json(raw)
    assert config.precision_recall.test_subset_query() == {"filter": {"metadata.system.tags.test": True}}
    again = CompareConfig.from_json(json.loads(json.dumps(config.to_json())))
    assert again == config
    assert CompareConfig.from_json(json.dumps(raw)) == config  # a JSON string is accepted too


# ------------------------------------------------------------------------------------ wins


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("any", "any"), ("ALL", "all"), (" all ", "all"), ("0.6", 0.6), (0.6, 0.6), (1, 1.0), ("1", 1.0), (1e-9, 1e-9)],
)
def test_wins_accepted_forms(raw, expected):
    assert parse_wins(raw) == expected


@pytest.mark.parametrize(
    ("won", "wins", "expected"),
    [
        ([True, True, True], "all", True),
        ([True, True, False], "all", False),
        ([False, False, True], "any", True),
        ([False, False, False], "any", False),
        ([True, True, False], 0.6, True),  # 2/3 >= 0.6 (the original docs' example; the code said False)
        ([True, True, False], 2 / 3, True),  # boundary: at least, not more than
        ([True, False, False], 2 / 3, False),
        ([True, True, True, False, False], 0.6, True),  # 3/5 == 0.6 exactly
        ([True, True, False, False, False], 0.6, False),
        ([True, False], 0.5, True),
        ([True, False], 1.0, False),
        ([True], 1.0, True),
    ],
)
def test_wins_rule_is_at_least(won, wins, expected):
    assert new_model_wins(won, wins) is expected


@pytest.mark.parametrize("wins", ["all", "any", 0.5, 1.0])
def test_no_votes_never_wins(wins):
    assert new_model_wins([], wins) is False


@settings(max_examples=200, deadline=None)
@given(won=st.lists(st.booleans(), min_size=1, max_size=30), wins=st.floats(min_value=1e-6, max_value=1.0))
def test_wins_fraction_matches_its_definition(won, wins):
    fraction = sum(won) / len(won)
    if abs(fraction - wins) > 1e-6:
        assert new_model_wins(won, wins) is (fraction >= wins)
    assert new_model_wins(won, "all") is all(won)
    assert new_model_wins(won, "any") is any(won)


# ------------------------------------------------------------------------------------ votes


def test_a_tie_or_exactly_min_delta_does_not_win():
    assert not judge_vote("v", 0.5, 0.5, min_delta=0.0).won
    assert not judge_vote("v", 0.5, 0.75, min_delta=0.25).won  # delta == min_delta exactly: strict
    assert judge_vote("v", 0.5, 0.75, min_delta=0.125).won
    assert not judge_vote("v", 0.5, 0.25, min_delta=0.0).won
    assert not judge_vote("v", math.nan, 0.5, min_delta=0.0).won


def test_minimised_metrics_win_when_lower_by_more_than_min_delta():
    vote = judge_vote("plot.val.loss", 0.5, 0.25, min_delta=0.125, higher_is_better=False)
    assert vote.won and vote.delta == 0.25
    assert not judge_vote("plot.val.loss", 0.5, 0.375, min_delta=0.125, higher_is_better=False).won
    assert not judge_vote("plot.val.loss", 0.25, 0.5, min_delta=0.0, higher_is_better=False).won


def test_relative_change_gate():
    assert not judge_vote("v", 0.5, 0.52, min_delta=0.0, min_relative_change=0.05).won  # +4 %
    vote = judge_vote("v", 0.5, 0.53, min_delta=0.0, min_relative_change=0.05)  # +6 %
    assert vote.won and vote.relative_change == pytest.approx(0.06)
    assert judge_vote("v", 0.0, 0.1, min_delta=0.0, min_relative_change=10.0).won  # from 0: infinite
    assert judge_vote("loss", 1.0, 0.9, min_delta=0.0, min_relative_change=0.1 - 1e-12, higher_is_better=False).won
    assert not judge_vote("loss", 1.0, 0.95, min_delta=0.0, min_relative_change=0.1, higher_is_better=False).won


def test_interval_gate():
    assert judge_vote("v", 0.5, 0.6, min_delta=0.0, interval=(0.01, 0.2)).won
    vote = judge_vote("v", 0.5, 0.6, min_delta=0.0, interval=(-0.01, 0.2))
    assert not vote.won and "not significant" in vote.reason
    assert not judge_vote("v", 0.5, 0.6, min_delta=0.05, interval=(0.05, 0.2)).won


def test_paired_bootstrap_interval_percentiles():
    low, high = paired_bootstrap_interval(np.zeros(101), np.arange(101.0), 0.9)
    assert (low, high) == pytest.approx((5.0, 95.0))
    assert all(math.isnan(v) for v in paired_bootstrap_interval(np.full(3, np.nan), np.zeros(3), 0.9))


# ------------------------------------------------------------------------------------ training metrics


def _samples(figure, legend, xs, ys):
    return [{"figure": figure, "legend": legend, "x": x, "y": y} for x, y in zip(xs, ys, strict=True)]


def test_metric_value_is_taken_after_sorting_by_x():
    frame = samples_frame(_samples("loss", "val", [3, 1, 0, 2], [0.1, 0.3, 0.4, 0.2]))
    assert metric_value_at(frame, PlotCheck(legend="val", figure="loss"), "m") == 0.1
    assert metric_value_at(frame, PlotCheck(legend="val", figure="loss", x_index=0), "m") == 0.4
    assert metric_value_at(frame, PlotCheck(legend="val", figure="loss", x_index=-2), "m") == 0.2


def test_missing_metric_lists_the_pairs_the_model_has():
    frame = samples_frame(_samples("loss", "val", [0], [1.0]) + _samples("mAP", "metrics", [0], [0.5]))
    with pytest.raises(ValueError) as error:
        metric_value_at(frame, PlotCheck(legend="train", figure="loss"), "new model 'm2' (id2)")
    message = str(error.value)
    assert "new model 'm2' (id2) has no metric with figure 'loss' and legend 'train'" in message
    assert "'loss'/'val'" in message and "'mAP'/'metrics'" in message
    with pytest.raises(ValueError, match="x_index 5 is out of range"):
        metric_value_at(frame, PlotCheck(legend="val", figure="loss", x_index=5), "m")
    with pytest.raises(ValueError, match="no metrics at all"):
        metric_value_at(samples_frame([]), PlotCheck(legend="val", figure="loss"), "m")


def test_training_votes_per_check():
    previous = samples_frame(_samples("mAP", "metrics", [0, 1], [0.3, 0.5]) + _samples("loss", "val", [0, 1], [1, 0.5]))
    new = samples_frame(_samples("mAP", "metrics", [1, 0], [0.6, 0.2]) + _samples("loss", "val", [0, 1], [1, 0.7]))
    checks = [PlotCheck(legend="metrics", figure="mAP"), PlotCheck(legend="val", figure="loss", maximize=False)]
    votes = training_votes(previous, new, checks)
    assert [(v.name, v.previous, v.new, v.won) for v in votes] == [
        ("plot.metrics.mAP", 0.5, 0.6, True),
        ("plot.val.loss", 0.5, 0.7, False),
    ]


# ------------------------------------------------------------------------------------ evaluation


def _box_records(rng, n_items, owner, quality, labels=("cat", "dog"), per_item=4, shift_seed=None):
    """Ground truth (owner None) or predictions that hit their box with probability ``quality``."""
    out = []
    place = np.random.default_rng(0)  # same ground-truth boxes for every owner
    for i in range(n_items):
        for k in range(per_item):
            left, top = place.uniform(0, 500, 2)
            record = {"item_id": f"item-{i:04d}", "type": "box", "label": labels[k % len(labels)],
                      "left": left, "top": top, "right": left + 40, "bottom": top + 40,
                      "model_id": owner, "confidence": None}  # fmt: skip
            if owner is not None:
                hit = rng.uniform() < quality
                offset = 1.0 if hit else 30.0
                record.update(left=left + offset, right=left + 40 + offset, confidence=float(rng.uniform(0.05, 1)))
            out.append(record)
    return out


def _tables(n_items, previous_quality, new_quality, seed=0):
    rng = np.random.default_rng(seed)
    records = (
        _box_records(rng, n_items, None, 0)
        + _box_records(rng, n_items, "prev", previous_quality)
        + _box_records(rng, n_items, "new", new_quality)
    )
    return annotation_tables(records, "prev", "new")


def test_annotation_tables_split_ground_truth_and_each_models_predictions():
    records = [
        {"item_id": "a", "type": "box", "label": "cat", "left": 0, "top": 0, "right": 1, "bottom": 1},
        {"item_id": "a", "type": "box", "label": "cat", "left": 0, "top": 0, "right": 1, "bottom": 1,
         "model_id": "prev", "confidence": 0.5},
        {"item_id": "a", "type": "box", "label": "dog", "left": 0, "top": 0, "right": 1, "bottom": 1,
         "model_id": "other", "confidence": 0.5},
        {"item_id": "a", "type": "point", "label": "cat"},
        {"item_id": "b", "type": "class", "label": "dog"},
        {"item_id": "b", "type": "class", "label": "dog", "model_id": "new", "confidence": None},
        {"item_id": "c", "type": "segment", "label": "cat", "polygon": np.array([[0, 0], [1, 0], [1, 1.0]])},
    ]  # fmt: skip
    tables = annotation_tables(records, "prev", "new")
    assert sorted(tables) == ["box", "class", "polygon"]
    assert (len(tables["box"].ground_truth), len(tables["box"].previous), len(tables["box"].new)) == (1, 1, 0)
    assert list(tables["box"].previous.columns) == ["item_id", "label", "left", "top", "right", "bottom", "confidence"]
    assert tables["class"].new["confidence"].tolist() == [1.0]  # missing confidence scores 1.0
    assert list(tables["class"].ground_truth.columns) == ["item_id", "label"]
    only_dogs = annotation_tables(records, "prev", "new", labels=["dog"])
    assert sorted(only_dogs) == ["class"]


def test_check_tables_refuses_unfair_comparisons():
    tables = _tables(10, 0.5, 0.9)
    check_tables(tables, "previous model p", "new model n", "dataset 'd'", 10)
    no_gt = {"box": EvaluationTables("box", tables["box"].ground_truth.iloc[:0], tables["box"].previous,
                                     tables["box"].new)}  # fmt: skip
    with pytest.raises(ValueError, match="no ground truth"):
        check_tables(no_gt, "previous model p", "new model n", "dataset 'd'", 10)
    no_pred = {"box": EvaluationTables("box", tables["box"].ground_truth, tables["box"].previous.iloc[:0],
                                       tables["box"].new)}  # fmt: skip
    with pytest.raises(ValueError, match=r"previous model p has no predictions .* run Evaluate on 'd' first"):
        check_tables(no_pred, "previous model p", "new model n", "dataset 'd'", 10)
    new = tables["box"].new
    fewer = {"box": EvaluationTables("box", tables["box"].ground_truth, tables["box"].previous,
                                     new[~new["item_id"].isin(["item-0001", "item-0002", "item-0003"])])}  # fmt: skip
    # a model without predictions on some test items detected nothing there: compared, not refused
    check_tables(fewer, "previous model p", "new model n", "dataset 'd'", 10)
    with pytest.raises(ValueError, match=r"new model n has no predictions on any of the 10 test-subset items"):
        check_tables(tables, "previous model p", "new model n", "dataset 'd'", 10, {"previous": 10, "new": 0})
    with pytest.raises(ValueError, match="matched 0 items"):
        check_tables(tables, "previous model p", "new model n", "dataset 'd'", 0)


def test_evaluation_votes_overall_and_per_label():
    tables = _tables(30, 0.3, 0.95)
    overall = evaluation_votes(tables, PrecisionRecallConfig())
    assert [v.name for v in overall.votes] == ["precision_recall.box"]
    vote = overall.votes[0]
    assert vote.won and vote.new > 0.8 and vote.previous < 0.5 and vote.interval is None
    summary = overall.summary["box"]
    assert summary["labels"] == ["cat", "dog"]
    assert vote.previous == pytest.approx(np.mean(summary["previous_ap"]))  # mean over labels with ground truth
    per_label = evaluation_votes(tables, PrecisionRecallConfig(per_label=True))
    assert [v.name for v in per_label.votes] == ["precision_recall.box[cat]", "precision_recall.box[dog]"]
    assert [v.new for v in per_label.votes] == pytest.approx(summary["new_ap"])


def test_bootstrap_large_improvement_is_significant_and_deterministic():
    tables = _tables(60, 0.4, 0.95)
    config = PrecisionRecallConfig(confidence=0.95, seed=3)
    first = evaluation_votes(tables, config).votes[0]
    assert first.won and first.interval[0] > 0.2 and first.interval[0] <= first.delta <= first.interval[1]
    assert evaluation_votes(tables, config).votes[0].interval == first.interval  # same seed, same interval
    other_seed = evaluation_votes(tables, PrecisionRecallConfig(confidence=0.95, seed=4)).votes[0]
    assert other_seed.interval != first.interval and other_seed.delta == first.delta


def test_bootstrap_zero_improvement_is_not_significant():
    # Same quality, independent noise: the point estimate favours the new model, the interval does not.
    tables = _tables(40, 0.7, 0.7, seed=15)
    plain = evaluation_votes(tables, PrecisionRecallConfig()).votes[0]
    assert plain.delta > 0 and plain.won
    significant = evaluation_votes(tables, PrecisionRecallConfig(confidence=0.95, seed=0)).votes[0]
    assert significant.interval[0] < 0 < significant.interval[1]
    assert not significant.won and "not significant" in significant.reason
    identical = annotation_tables(
        [
            dict(r, model_id="new") if r["model_id"] == "prev" else r
            for r in _box_records(np.random.default_rng(1), 20, None, 0)
        ]
        + [dict(r, model_id=m) for m in ("prev", "new") for r in _box_records(np.random.default_rng(2), 20, "x", 0.8)],
        "prev",
        "new",
    )
    vote = evaluation_votes(identical, PrecisionRecallConfig(confidence=0.95)).votes[0]
    assert vote.delta == 0 and vote.interval == (0.0, 0.0) and not vote.won


def test_polygons_and_classification_are_separate_votes():
    square = np.array([[0, 0], [10, 0], [10, 10], [0, 10.0]])
    records = []
    for i in range(6):
        item = f"i{i}"
        records += [
            {"item_id": item, "type": "segment", "label": "cat", "polygon": square},
            {"item_id": item, "type": "segment", "label": "cat", "polygon": square + 1, "model_id": "new",
             "confidence": 0.9},
            {"item_id": item, "type": "segment", "label": "cat", "polygon": square + 8, "model_id": "prev",
             "confidence": 0.9},
            {"item_id": item, "type": "class", "label": "dog" if i % 2 else "cat"},
            {"item_id": item, "type": "class", "label": "dog" if i % 2 else "cat", "model_id": "new",
             "confidence": 0.8},
            {"item_id": item, "type": "class", "label": "cat", "model_id": "prev", "confidence": 0.8},
        ]  # fmt: skip
    outcome = evaluation_votes(annotation_tables(records, "prev", "new"), PrecisionRecallConfig())
    votes = {v.name: v for v in outcome.votes}
    assert sorted(votes) == ["precision_recall.class", "precision_recall.polygon"]
    assert votes["precision_recall.polygon"].new == 1.0 and votes["precision_recall.polygon"].previous == 0.0
    assert votes["precision_recall.class"].won
    with pytest.raises(ValueError, match="paired bootstrap is available for box, polygon and mask"):
        evaluation_votes(annotation_tables(records, "prev", "new"), PrecisionRecallConfig(confidence=0.9))


# ------------------------------------------------------------------------------------ report


def _report(votes, wins="all"):
    config = CompareConfig.from_json({"wins": wins, "checks": [CHECK]})
    return ComparisonReport.decide(votes, config, "prev-id", "new-id", dataset_id="ds")


def test_report_decision_json_table_and_markdown():
    votes = [judge_vote("a", 0.5, 0.6, 0.0, interval=(0.01, 0.2)), judge_vote("b", 0.5, 0.5, 0.0)]
    report = _report(votes, wins="0.5")
    assert report.decision == "update model" and report.new_model_wins
    stored = json.loads(json.dumps(report.to_json(), allow_nan=False))  # strict JSON
    assert stored["wonVotes"] == 1 and stored["totalVotes"] == 2 and stored["wins"] == 0.5
    assert stored["votes"][0]["interval"] == [0.01, 0.2] and stored["votes"][1]["won"] is False
    assert stored["config"]["checks"][0]["figure"] == "box_loss"
    table = report.table().splitlines()
    assert table[0].split() == ["vote", "previous", "new", "delta", "interval", "won"]
    assert table[1].split()[:4] == ["a", "0.5000", "0.6000", "+0.1000"] and table[-1].endswith("-> update model")
    markdown = report.markdown("old", "fresh")
    assert "**update model**" in markdown and "| a | 0.5000 | 0.6000 | +0.1000 |" in markdown
    assert _report(votes, wins="all").decision == "discard"


def test_updated_metadata_copies_and_tags_the_decision():
    original = {"system": {"tags": {"update model": True, "test": True}}, "user": {"keep": 1}}
    before = copy.deepcopy(original)
    discard = _report([judge_vote("a", 0.5, 0.4, 0.0)])
    meta = updated_metadata(original, discard, tag_decision=True)
    assert original == before
    assert meta["system"]["tags"] == {"test": True, "discard": True}
    assert meta["user"]["keep"] == 1 and meta["user"]["activeLearning"]["comparison"]["decision"] == "discard"
    untagged = updated_metadata(None, discard, tag_decision=False)
    assert "system" not in untagged and untagged["user"]["activeLearning"]["comparison"]["newModelId"] == "new-id"
    assert updated_metadata(meta, discard, tag_decision=True) == meta  # idempotent


def test_frame_helpers_handle_strings_and_empty_input():
    frame = samples_frame(_samples("f", "l", ["2", "10", "1"], ["0.2", "1.0", "0.1"]))
    assert metric_value_at(frame, PlotCheck(legend="l", figure="f"), "m") == 1.0  # numeric sort: 10 is last
    assert annotation_tables([], "a", "b") == {}
    assert isinstance(samples_frame([]), pd.DataFrame)


def test_masks_are_scored_by_mask_iou():
    def mask(top):
        out = np.zeros((20, 20), dtype=bool)
        out[top : top + 8, 2:10] = True
        return out

    records = []
    for i in range(4):
        records += [
            {"item_id": f"i{i}", "type": "binary", "label": "cat", "mask": mask(0)},
            {"item_id": f"i{i}", "type": "binary", "label": "cat", "mask": mask(1), "model_id": "new", "confidence": 0.9},
            {"item_id": f"i{i}", "type": "binary", "label": "cat", "mask": mask(6), "model_id": "prev", "confidence": 0.9},
        ]  # fmt: skip
    [vote] = evaluation_votes(annotation_tables(records, "prev", "new"), PrecisionRecallConfig()).votes
    assert (vote.name, vote.previous, vote.new, vote.won) == ("precision_recall.mask", 0.0, 1.0, True)
