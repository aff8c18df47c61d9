"""Compare Models' stopping signal: Cohen's kappa (against scikit-learn), ``compare_config.stop``,
the ledger, the recommendation, and the lineage read on the local platform (bounded requests)."""

from __future__ import annotations

import math
import warnings

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score

from nodes.compare_models.config import CompareConfig
from nodes.compare_models.records import EvaluationTables
from nodes.compare_models.stopping import (
    MAX_LEDGER_ROWS,
    StopConfig,
    cohen_kappa,
    extend_ledger,
    latest_ledger,
    ledger_row,
    prediction_agreement,
    read_ledger,
    recommend_stop,
)
from tests.helpers import TEST_TAGS, box, run_compare

# ------------------------------------------------------------------------------------ kappa

_labels = st.one_of(st.sampled_from(["cat", "dog", "bird", "fish"]), st.integers(0, 5))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_labels, _labels), min_size=1, max_size=60), st.booleans())
def test_cohen_kappa_equals_scikit_learn(pairs, as_strings):
    a = [str(x) if as_strings else x for x, _ in pairs]
    b = [str(y) if as_strings else y for _, y in pairs]
    if not as_strings and {type(v) for v in a + b} != {int} and len({type(v) for v in a + b}) > 1:
        a, b = [str(v) for v in a], [str(v) for v in b]  # scikit-learn cannot sort mixed types
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns where kappa is 0 / 0
        expected = cohen_kappa_score(a, b)
    ours = cohen_kappa(a, b)
    if math.isnan(expected):  # 0 / 0: both raters used one and the same label
        assert len(set(a) | set(b)) == 1 and ours == 1.0
    else:
        assert ours == pytest.approx(expected, abs=1e-12)
    assert -1.0 <= ours <= 1.0


@settings(max_examples=100, deadline=None)
@given(st.lists(_labels, min_size=1, max_size=40))
def test_identical_raters_agree_perfectly(labels):
    assert cohen_kappa(labels, labels) == 1.0


def test_cohen_kappa_edges():
    assert math.isnan(cohen_kappa([], []))
    assert cohen_kappa(["a", "a"], ["a", "a"]) == 1.0
    assert cohen_kappa(["a", "b"], ["b", "a"]) == -1.0
    with pytest.raises(ValueError, match="one label per item"):
        cohen_kappa(["a"], ["a", "b"])


# ------------------------------------------------------------------------------------ config


def test_stop_defaults_and_switches():
    assert CompareConfig.from_json(None).stop == StopConfig(enabled=True, kappa=0.99, rounds=3, score_threshold=0.5)
    pr = {"precision_recall": {}}
    assert CompareConfig.from_json({**pr, "stop": False}).stop.enabled is False
    assert CompareConfig.from_json({**pr, "stop": {"enabled": False}}).stop.enabled is False
    assert CompareConfig.from_json({**pr, "stop": True}).stop == StopConfig()
    assert CompareConfig.from_json({**pr, "stop": None}).stop == StopConfig()
    config = CompareConfig.from_json({**pr, "stop": {"kappa": 0.9, "rounds": 2, "score_threshold": 0.3}})
    assert config.stop == StopConfig(True, 0.9, 2, 0.3)
    assert config.to_json()["stop"] == {"enabled": True, "kappa": 0.9, "rounds": 2, "score_threshold": 0.3}


@pytest.mark.parametrize(
    ("stop", "field"),
    [
        ("yes", "compare_config.stop"),
        ([], "compare_config.stop"),
        (1, "compare_config.stop"),
        ({"kapa": 0.9}, "kapa"),
        ({"enabled": "no"}, "compare_config.stop.enabled"),
        ({"kappa": 1.5}, "compare_config.stop.kappa"),
        ({"kappa": -0.1}, "compare_config.stop.kappa"),
        ({"kappa": "0.9"}, "compare_config.stop.kappa"),
        ({"kappa": True}, "compare_config.stop.kappa"),
        ({"rounds": 0}, "compare_config.stop.rounds"),
        ({"rounds": 2.0}, "compare_config.stop.rounds"),
        ({"rounds": MAX_LEDGER_ROWS + 1}, "compare_config.stop.rounds"),
        ({"score_threshold": 2}, "compare_config.stop.score_threshold"),
        ({"score_threshold": None}, "compare_config.stop.score_threshold"),
    ],
)
def test_bad_stop_config_is_refused_naming_the_field(stop, field):
    with pytest.raises(ValueError) as error:
        CompareConfig.from_json({"precision_recall": {}, "stop": stop})
    message = str(error.value)
    assert field in message and "example" in message and len(message) < 1000


def test_stop_alone_compares_nothing():
    with pytest.raises(ValueError, match="compares nothing"):
        CompareConfig.from_json({"stop": {"kappa": 0.9}})


# ------------------------------------------------------------------------------------ recommendation


def _rows(kappas, intervals=None):
    intervals = intervals or [None] * len(kappas)
    return [
        {"round": i + 1, "labels": 10 * (i + 1), "metric": 0.5, "interval": iv, "kappa": k}
        for i, (k, iv) in enumerate(zip(kappas, intervals, strict=True))
    ]


@pytest.mark.parametrize(
    ("kappas", "intervals", "expected"),
    [
        ([0.5, 0.995, 0.99, 1.0], None, "stop"),  # the last 3 >= 0.99 (the boundary counts)
        ([0.995, 0.98, 0.995, 0.999], None, "continue"),  # one of the last 3 below
        ([1.0, 1.0], None, "continue"),  # fewer rounds than needed
        ([0.5, 0.6, 0.7], [[-0.1, 0.2], [0.0, 0.1], [-0.3, 0.0]], "stop"),  # 0 in every interval (bounds count)
        ([0.5, 0.6, 0.7], [[-0.1, 0.2], [0.01, 0.1], [-0.3, 0.0]], "continue"),
        ([0.5, 0.6, 0.7], [[-0.1, 0.2], None, [-0.3, 0.0]], "continue"),  # no interval: does not count
        ([None, 1.0, 1.0], None, "continue"),  # no kappa: does not count
    ],
)
def test_recommend_stop_rules(kappas, intervals, expected):
    result = recommend_stop(_rows(kappas, intervals), StopConfig())
    assert result["recommendation"] == expected and result["reason"]


def test_recommend_stop_with_one_round_and_switched_off():
    assert recommend_stop(_rows([0.99]), StopConfig(rounds=1))["recommendation"] == "stop"
    off = recommend_stop(_rows([1.0, 1.0, 1.0]), StopConfig(enabled=False))
    assert off["recommendation"] == "continue" and "switched off" in off["reason"]
    assert recommend_stop([], StopConfig())["recommendation"] == "continue"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.floats(-1, 1)), min_size=0, max_size=8),
    st.integers(1, 5),
    st.floats(0, 1),
)
def test_recommendation_depends_only_on_the_last_rounds(kappas, rounds, threshold):
    config = StopConfig(kappa=threshold, rounds=rounds)
    rows = _rows(kappas)
    result = recommend_stop(rows, config)["recommendation"]
    last = kappas[-rounds:]
    wanted = len(kappas) >= rounds and all(k is not None and k >= threshold for k in last)
    assert result == ("stop" if wanted else "continue")
    assert (
        recommend_stop([{"round": 0, "kappa": -1.0}, *rows], config)["recommendation"] == result or len(kappas) < rounds
    )


# ------------------------------------------------------------------------------------ ledger


def test_ledger_row_follows_the_first_precision_recall_vote():
    votes = [
        {"name": "plot.val.loss", "new": 0.2, "delta": 0.1, "interval": None},
        {"name": "precision_recall.box", "new": 0.7, "delta": -0.01, "interval": [-0.05, 0.03]},
    ]
    row = ledger_row(votes, 0.93, 250, model_id="m3", decision="discard")
    assert row == {
        "round": None,
        "modelId": "m3",
        "labels": 250,
        "metricName": "precision_recall.box",
        "metric": 0.7,
        "gain": -0.01,
        "interval": [-0.05, 0.03],
        "kappa": 0.93,
        "decision": "discard",
    }
    assert ledger_row([], None, None)["metric"] is None
    assert ledger_row([{"name": "x", "new": None, "delta": None, "interval": [None, 1]}], None, 1)["interval"] is None


def test_ledger_is_numbered_capped_and_read_tolerantly():
    rows: list = []
    for _ in range(MAX_LEDGER_ROWS + 5):
        rows = extend_ledger(rows, {"kappa": 1.0})
    assert len(rows) == MAX_LEDGER_ROWS and rows[0]["round"] == 6 and rows[-1]["round"] == MAX_LEDGER_ROWS + 5
    assert read_ledger({"stopping": {"ledger": None}}) == [] and read_ledger({"stopping": []}) == []
    assert read_ledger({"stopping": {"ledger": [{"round": True}, {"round": 2}]}}) == [{"round": 2}]
    older = {"newModelId": "a", "stopping": {"ledger": [{"round": 1}, {"round": 2}]}}
    newer = {"newModelId": "b", "stopping": {"ledger": [{"round": 1}, {"round": 2}, {"round": 3}]}}
    assert latest_ledger([None, older, newer, {"stopping": None}])[-1]["round"] == 3
    assert latest_ledger([older, newer], exclude_model_id="b")[-1]["round"] == 2


# ------------------------------------------------------------------------------------ agreement


def _frame(rows, confidence=True):
    columns = ["item_id", "label", "confidence"] if confidence else ["item_id", "label"]
    return pd.DataFrame(rows, columns=columns)


def test_classification_agreement_is_kappa_of_top_labels():
    previous = _frame([("a", "cat", 0.9), ("a", "dog", 0.1), ("b", "dog", 0.8), ("c", "cat", 0.6)])
    new = _frame([("a", "dog", 0.3), ("a", "cat", 0.7), ("b", "cat", 0.8), ("b", "dog", 0.8)])  # b: tie -> cat
    table = EvaluationTables("class", _frame([], confidence=False), previous, new)
    agreement = prediction_agreement({"class": table}, ["a", "b", "c", "d"])
    expected = cohen_kappa_score(["cat", "dog", "cat", "-"], ["cat", "cat", "-", "-"])
    assert agreement["kappa"] == pytest.approx(expected) and agreement["decisions"] == 4
    assert agreement["byGeometry"]["class"]["decisions"] == 4


def test_detection_agreement_is_kappa_of_labels_present_at_the_score_threshold():
    gt = pd.DataFrame({"item_id": ["a", "b"], "label": ["cat", "dog"]})
    previous = _frame([("a", "cat", 0.9), ("b", "dog", 0.4), ("b", "bird", 0.7)])
    new = _frame([("a", "cat", 0.5), ("b", "dog", 0.6), ("a", "cat", 0.1)])
    table = EvaluationTables("box", gt, previous, new)
    agreement = prediction_agreement({"box": table}, ["a", "b", "c"], score_threshold=0.5)
    labels = ["bird", "cat", "dog"]
    keys = [(i, lab) for i in ("a", "b", "c") for lab in labels]
    prev = [k in {("a", "cat"), ("b", "bird")} for k in keys]
    nw = [k in {("a", "cat"), ("b", "dog")} for k in keys]
    assert agreement["kappa"] == pytest.approx(cohen_kappa_score(prev, nw))
    assert agreement["decisions"] == 9 and agreement["scoreThreshold"] == 0.5
    higher = prediction_agreement({"box": table}, ["a", "b", "c"], score_threshold=0.95)
    assert higher["kappa"] == 1.0  # nobody predicts anything at 0.95: perfect (trivial) agreement


def test_agreement_of_nothing_is_none():
    assert prediction_agreement({}, ["a"])["kappa"] is None


# ------------------------------------------------------------------------------------ on the platform

CAT = box("cat", 10, 10)


def _round(platform, project, dataset, previous, name, item_ids, label="cat"):
    """A model whose prediction on each test item is a ``label`` box on the ground-truth cat."""
    model = platform.create_model(project, name, dataset=dataset)
    for item_id in item_ids:
        platform.store.create_annotations(item_id, [box(label, 10, 10, model=model, confidence=0.9)])
    return model


def _stored(platform, model):
    return platform.get_json("models", model.id)["metadata"]["user"]["activeLearning"]["comparison"]


def test_ledger_continues_through_discarded_and_promoted_rounds_and_recommends_stop(platform, project, dataset):
    item_ids = platform.add_items(dataset, [{"name": f"s{i}.jpg", "metadata": TEST_TAGS} for i in range(6)])
    for item_id in item_ids:
        platform.store.create_annotations(item_id, [CAT])
    previous = _round(platform, project, dataset, None, "p0", item_ids, label="dog")  # a dog on every cat
    config = {"precision_recall": {"iou_threshold": 0.5}, "stop": {"rounds": 2, "kappa": 0.99}}

    first = _round(platform, project, dataset, previous, "m1", item_ids, label="dog")  # same as p0: discarded
    winner, progress = run_compare(previous, first, dataset, config)
    assert progress.actions == ["discard"] and winner.id == previous.id
    record = _stored(platform, first)
    assert record["round"] == 1 and record["kappa"] == 1.0 and record["recommendation"] == "continue"
    assert record["stopping"]["ledger"][-1]["decision"] == "discard"

    second = _round(platform, project, dataset, previous, "m2", item_ids)  # hits every box: promoted
    platform.reset_counts()
    winner, progress = run_compare(previous, second, dataset, config)
    assert progress.actions == ["update model"] and winner.id == second.id
    record = _stored(platform, second)
    assert [row["round"] for row in record["stopping"]["ledger"]] == [1, 2]  # found m1's discarded round
    assert [row["modelId"] for row in record["stopping"]["ledger"]] == [first.id, second.id]
    assert record["recommendation"] == "continue" and record["kappa"] == -1.0  # dog vs cat on every item
    assert platform.request_counts["POST /ml/models/query"] == 1  # the lineage: one query, no model gets
    assert platform.request_counts["GET /ml/models/{id}"] == 0

    third = _round(platform, project, dataset, second, "m3", item_ids)
    run_compare(second, third, dataset, config)  # the same predictions as m2: discarded
    record = _stored(platform, third)
    assert [row["round"] for row in record["stopping"]["ledger"]] == [1, 2, 3]  # from m2's own record
    assert record["kappa"] == 1.0 and record["recommendation"] == "continue"  # rounds 2 and 3: kappa -1, 1

    fourth = _round(platform, project, dataset, second, "m4", item_ids)
    run_compare(second, fourth, dataset, config)
    record = _stored(platform, fourth)
    assert [row["round"] for row in record["stopping"]["ledger"]] == [1, 2, 3, 4]  # from m3's discarded round
    assert record["recommendation"] == "stop" and "kappa" in record["stopping"]["reason"]

    # a rerun of the last comparison gives the same round (its own record is not a source)
    run_compare(second, fourth, dataset, config)
    assert [row["round"] for row in _stored(platform, fourth)["stopping"]["ledger"]] == [1, 2, 3, 4]


def test_stop_switched_off_records_agreement_but_no_ledger_and_reads_no_lineage(platform, project, dataset):
    item_ids = platform.add_items(dataset, [{"name": f"o{i}.jpg", "metadata": TEST_TAGS} for i in range(3)])
    for item_id in item_ids:
        platform.store.create_annotations(item_id, [CAT])
    previous = _round(platform, project, dataset, None, "off-p", item_ids, label="dog")
    new = _round(platform, project, dataset, previous, "off-n", item_ids)
    platform.reset_counts()
    run_compare(previous, new, dataset, {"precision_recall": {}, "stop": False})
    record = _stored(platform, new)
    assert record["stopping"] is None and record["recommendation"] is None and record["round"] is None
    assert record["agreement"]["decisions"] == 6 and record["kappa"] is not None
    assert platform.request_counts["POST /ml/models/query"] == 0


def test_train_subset_items_are_counted_per_round(platform, project, dataset):
    item_ids = platform.add_items(dataset, [{"name": f"c{i}.jpg", "metadata": TEST_TAGS} for i in range(2)])
    platform.add_items(
        dataset, [{"name": f"tr{i}.jpg", "metadata": {"system": {"tags": {"train": True}}}} for i in range(5)]
    )
    for item_id in item_ids:
        platform.store.create_annotations(item_id, [CAT])
    previous = _round(platform, project, dataset, None, "cnt-p", item_ids, label="dog")
    new = _round(platform, project, dataset, previous, "cnt-n", item_ids)
    train = {"filter": {"$and": [{"metadata.system.tags.train": True}, {"hidden": False}, {"type": "file"}]}}
    new.metadata.setdefault("system", {})["subsets"] = {"train": train}
    new = new.update(system_metadata=True)
    run_compare(previous, new, dataset, {"precision_recall": {}})
    assert _stored(platform, new)["stopping"]["ledger"][-1]["labels"] == 5


def test_two_lineages_from_one_base_on_different_datasets_keep_their_own_rounds(platform, project, dataset):
    other = project.datasets.create(dataset_name="other-arm")
    rounds = {}
    base = platform.create_model(project, "shared-base", dataset=dataset)
    for arm, ds in (("a", dataset), ("b", other)):
        item_ids = platform.add_items(ds, [{"name": f"{arm}{i}.jpg", "metadata": TEST_TAGS} for i in range(3)])
        for item_id in item_ids:
            platform.store.create_annotations(item_id, [CAT, box("dog", 10, 10, model=base, confidence=0.9)])
        new = _round(platform, project, ds, base, f"{arm}-1", item_ids, label="dog")  # discarded
        run_compare(base, new, ds, {"precision_recall": {}})
        rounds[arm] = _stored(platform, new)["round"]
    assert rounds == {"a": 1, "b": 1}  # arm b does not continue arm a's discarded round
