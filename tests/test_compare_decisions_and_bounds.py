"""Issue 13 §2 and §3: decisions that cannot be wrong by a rounding (exact ``wins``, no promotion
without a won vote, training-metric samples ordered by a numeric x, non-finite values lose) and
resource bounds on the compare config (``resamples`` <= 100,000, memory-bounded bootstrap blocks
whose result does not depend on the block size, depth / size / NaN refused by path, short
messages)."""

from __future__ import annotations

import json
import logging
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodes.compare_models.config import MAX_RESAMPLES, CompareConfig, PlotCheck, PrecisionRecallConfig
from nodes.compare_models.evaluation import (
    bootstrap_block_size,
    bootstrap_weight_blocks,
    bootstrap_weights,
    evaluation_votes,
)
from nodes.compare_models.records import annotation_tables, samples_frame
from nodes.compare_models.training import metric_value_at, numeric_values, training_votes
from nodes.compare_models.votes import decimal_value, judge_vote, new_model_wins, relative_change, wins_fraction

# ------------------------------------------------------------------------------------ wins


@pytest.mark.parametrize("wins", [1e-300, 5e-324, 1e-9, 0.001, 0.5, 1.0, "any", "all", "1e-300"])
@pytest.mark.parametrize("n_votes", [1, 2, 7])
def test_a_model_that_won_no_vote_is_never_promoted(wins, n_votes):
    parsed = wins if wins in ("any", "all") else float(wins)
    assert new_model_wins([False] * n_votes, parsed) is False
    assert new_model_wins([], parsed) is False


@pytest.mark.parametrize(
    ("won", "of", "wins", "expected"),
    [
        (1, 10, 0.1, True),  # 0.1 is 1/10 exactly (the decimal written), not 0.1000000000000000055...
        (1, 10, 0.10000000000000002, False),
        (3, 5, 0.6, True),
        (3, 5, "0.6", True),
        (2, 5, 0.4, True),
        (2, 5, 0.4000000000000001, False),
        (2, 3, 2 / 3, True),  # 0.6666666666666666 < 2/3
        (1, 3, 1 / 3, True),
        (1, 3, 0.33333333333333337, False),
        (99, 100, 0.99, True),
        (98, 100, 0.99, False),
        (999_999, 1_000_000, 0.999999, True),
        (999_998, 1_000_000, 0.999999, False),
        (1, 1, 1, True),
        (4, 5, 1.0, False),
    ],
)
def test_wins_is_compared_exactly(won, of, wins, expected):
    votes = [True] * won + [False] * (of - won)
    assert new_model_wins(votes, wins) is expected


@settings(max_examples=300, deadline=None)
@given(won=st.lists(st.booleans(), min_size=0, max_size=40), wins=st.floats(min_value=0, max_value=1, exclude_min=True))
def test_wins_rule_is_the_exact_fraction_of_the_written_number(won, wins):
    expected = sum(won) > 0 and Fraction(sum(won), len(won)) >= Fraction(repr(wins))
    assert new_model_wins(won, wins) is expected
    assert new_model_wins(won, "any") is any(won)
    assert new_model_wins(won, "all") is (bool(won) and all(won))


def test_wins_fraction_and_bad_values():
    assert wins_fraction(0.6) == Fraction(3, 5) and wins_fraction("0.25") == Fraction(1, 4)
    assert wins_fraction(Fraction(2, 3)) == Fraction(2, 3) and wins_fraction(1) == 1
    for bad in (0, 0.0, -0.1, 1.5, math.nan, math.inf, True, None, "most", "nan", [0.5]):
        with pytest.raises(ValueError, match="wins"):
            wins_fraction(bad)
    with pytest.raises(ValueError):
        new_model_wins([True], "most")


# ------------------------------------------------------------------------------------ votes


def test_min_relative_change_exactly_at_its_boundary_wins():
    # 0.5 -> 0.625: relative change exactly 0.25 (all values exact in binary)
    at = judge_vote("v", 0.5, 0.625, min_delta=0.0, min_relative_change=0.25)
    assert at.relative_change == 0.25 and at.won  # ">=": the boundary is enough
    above = judge_vote("v", 0.5, 0.625, min_delta=0.0, min_relative_change=0.25000000000000006)
    assert not above.won and "below min_relative_change" in above.reason
    lower = judge_vote("loss", 0.5, 0.375, min_delta=0.0, min_relative_change=0.25, higher_is_better=False)
    assert lower.relative_change == 0.25 and lower.won
    assert not judge_vote("loss", 0.5, 0.375, min_delta=0.0, min_relative_change=0.2500001, higher_is_better=False).won
    assert judge_vote("v", 0.5, 0.625, min_delta=0.0).relative_change is None  # not asked, not computed


# Boundaries written in decimal, not exact in binary: decided on the decimals written
# (0.4 - 0.3 is 0.10000000000000003 in floats, (0.88 - 0.8) / 0.8 is 0.09999999999999995).
@pytest.mark.parametrize(
    ("previous", "new", "min_delta", "higher_is_better", "won"),
    [
        (0.3, 0.4, 0.1, True, False),  # exactly min_delta: strict, a float subtraction said +0.1000...03
        (0.3, 0.4000000000000001, 0.1, True, True),
        (0.3, 0.4, 0.09999999999999999, True, True),
        (0.3, 0.6, 0.3, True, False),  # 0.3 in binary is below 3/10: the margin too is read as written
        (0.01, 0.11000000000000001, 0.1, True, True),  # +0.10000000000000001 rounds to the float 0.1
        (0.4, 0.3, 0.1, False, False),  # maximize false: previous - new
        (0.4, 0.29999999999999993, 0.1, False, True),
        (0.7, 0.8, 0.1, True, False),
        (0.8, 0.7, 0.1, False, False),
        (0.8, 0.6999999999999998, 0.1, False, True),
    ],
)
def test_min_delta_at_a_decimal_boundary_is_strict(previous, new, min_delta, higher_is_better, won):
    vote = judge_vote("v", previous, new, min_delta=min_delta, higher_is_better=higher_is_better)
    assert vote.won is won, vote.reason
    # the same through a training-metric check (maximize false: a loss)
    check = PlotCheck(legend="val", figure="loss", maximize=higher_is_better, min_delta=min_delta)
    [training] = training_votes(_samples([0], [previous]), _samples([0], [new]), [check])
    assert training.won is won, training.reason


def test_min_delta_reasons_show_the_numbers_compared():
    assert judge_vote("v", 0.3, 0.4, min_delta=0.1).reason == "delta +0.1 is not > min_delta 0.1"
    assert judge_vote("v", 0.3, 0.4, min_delta=0.1).delta == 0.1
    assert judge_vote("v", 0.01, 0.11000000000000001, min_delta=0.1).reason == (
        "delta +0.10000000000000001 > min_delta 0.1"  # all the digits where 4 would show them equal
    )
    assert judge_vote("v", 0.5, 0.625, min_delta=0.0).reason == "delta +0.125 > min_delta 0"


@pytest.mark.parametrize(
    ("previous", "new", "min_relative_change", "higher_is_better", "won"),
    [
        (0.8, 0.88, 0.1, True, True),  # exactly 10 %: the boundary passes
        (0.8, 0.8799999999999999, 0.1, True, False),
        (0.8, 0.88, 0.10000000000000002, True, False),
        (0.8, 0.88, 0.09999999999999999, True, True),
        (0.3, 0.33, 0.1, True, True),  # (0.33 - 0.3) / 0.3 is 0.10000000000000009 in floats
        (0.3, 0.32999999999999996, 0.1, True, False),
        (0.8, 0.72, 0.1, False, True),  # maximize false: (previous - new) / |previous|
        (0.8, 0.7200000000000001, 0.1, False, False),
        (0.5, 0.45, 0.1, False, True),  # 0.09999999999999998 in floats
        (0.5, 0.45000000000000007, 0.1, False, False),
        # exactly 7/46961392596481900 below 203 %, though the float nearest the quotient is 2.03
        (0.939227851929638, 2.845860391346803, 2.03, True, False),
    ],
)
def test_min_relative_change_at_a_decimal_boundary_passes(previous, new, min_relative_change, higher_is_better, won):
    vote = judge_vote(
        "v", previous, new, min_delta=0.0, min_relative_change=min_relative_change, higher_is_better=higher_is_better
    )
    assert vote.won is won, vote.reason
    if not won:
        assert "below min_relative_change" in vote.reason


def test_relative_change_reasons_and_values_are_the_decimal_ones():
    at = judge_vote("v", 0.8, 0.88, min_delta=0.0, min_relative_change=0.1)
    assert at.relative_change == 0.1 and at.reason == "delta +0.08 > min_delta 0"
    below = judge_vote("v", 0.8, 0.8799999999999999, min_delta=0.0, min_relative_change=0.1)
    assert below.reason == "relative change +9.9999999999999875% is below min_relative_change 10%"
    clear = judge_vote("v", 0.5, 0.52, min_delta=0.0, min_relative_change=0.05)
    assert clear.reason == "relative change +4.00% is below min_relative_change 5.00%"
    assert relative_change(0.8, 0.88) == 0.1 and relative_change(0.0, 0.1) == math.inf


def test_the_interval_bound_is_compared_with_min_delta_as_written():
    assert not judge_vote("v", 0.3, 0.6, min_delta=0.1, interval=(0.1, 0.4)).won
    assert judge_vote("v", 0.3, 0.6, min_delta=0.1, interval=(0.10000000000000002, 0.4)).won
    assert not judge_vote("v", 0.3, 0.6, min_delta=0.3, interval=(0.3, 0.4)).won  # delta 0.3 is not > 0.3 either
    assert not judge_vote("v", 0.3, 0.7, min_delta=0.3, interval=(0.3, 0.4)).won
    assert judge_vote("v", 0.3, 0.7, min_delta=0.3, interval=(0.30000000000000004, 0.4)).won


def test_decimal_value_reads_the_decimal_written():
    assert decimal_value(0.1) == Fraction(1, 10) and decimal_value(np.float64(0.3)) == Fraction(3, 10)
    assert decimal_value(-math.inf) == -math.inf and math.isnan(decimal_value(math.nan))


@pytest.mark.parametrize(
    ("previous", "new", "higher_is_better"),
    [
        (0.5, math.inf, True),
        (0.5, -math.inf, False),  # a "perfect" infinite loss
        (0.5, math.nan, True),
        (math.nan, 0.5, True),
        (-math.inf, 0.5, True),
        (math.inf, 0.5, False),
        (math.inf, math.inf, True),
    ],
)
def test_a_nan_or_infinite_value_loses_the_vote_with_a_warning(previous, new, higher_is_better, caplog):
    with caplog.at_level(logging.WARNING, logger="nodes.compare_models.votes"):
        vote = judge_vote("plot.val.x", previous, new, min_delta=0.0, higher_is_better=higher_is_better)
    assert not vote.won and "loses the vote" in vote.reason
    assert any("plot.val.x" in r.getMessage() and "not a finite number" in r.getMessage() for r in caplog.records)
    assert vote.to_json()["won"] is False
    json.dumps(vote.to_json(), allow_nan=False)  # stored as JSON: no NaN / Infinity


def _samples(xs, ys, figure="loss", legend="val"):
    return samples_frame([{"figure": figure, "legend": legend, "x": x, "y": y} for x, y in zip(xs, ys, strict=True)])


def test_samples_are_ordered_by_numeric_x_not_text():
    frame = _samples(["9", "10", "2"], [0.9, 0.1, 0.2])  # as text "9" > "10"
    assert metric_value_at(frame, PlotCheck(legend="val", figure="loss"), "m") == 0.1
    assert metric_value_at(frame, PlotCheck(legend="val", figure="loss", x_index=0), "m") == 0.2


def test_null_or_non_number_x_never_decides_and_is_counted(caplog):
    frame = _samples([0, 1, None, "last", True, math.nan, math.inf, 2], [0.5, 0.4, 0.0, 0.0, 0.0, 0.0, 0.0, 0.3])
    with caplog.at_level(logging.WARNING, logger="nodes.compare_models.training"):
        value = metric_value_at(frame, PlotCheck(legend="val", figure="loss"), "new model m")
    assert value == 0.3  # x = 2 is the last numeric x; the five others are ignored
    assert any(
        "ignored 5 of 8 samples whose x is null or not a finite number" in r.getMessage() for r in caplog.records
    )
    assert metric_value_at(frame, PlotCheck(legend="val", figure="loss", x_index=-3), "m") == 0.5
    with pytest.raises(ValueError, match="x_index -4 is out of range .* which has 3 samples"):
        metric_value_at(frame, PlotCheck(legend="val", figure="loss", x_index=-4), "m")
    with pytest.raises(ValueError, match="has 2 samples of this metric but none with a numeric x"):
        metric_value_at(_samples([None, "a"], [0.1, 0.2]), PlotCheck(legend="val", figure="loss"), "m")


def test_a_non_number_y_loses_its_vote():
    previous = _samples([0, 1], [0.5, 0.4])
    new = _samples([0, 1], [0.5, "low"])
    [vote] = training_votes(previous, new, [PlotCheck(legend="val", figure="loss", maximize=False)])
    assert not vote.won and math.isnan(vote.new)
    [vote] = training_votes(
        previous, _samples([0, 1], [0.5, "0.25"]), [PlotCheck(legend="val", figure="loss", maximize=False)]
    )
    assert vote.won and vote.new == 0.25


def test_numeric_values():
    values = numeric_values([1, 2.5, "3", " 4 ", None, True, False, np.float32(5), np.int64(6), "x", [], {}, -math.inf])
    assert values.tolist()[:4] == [1.0, 2.5, 3.0, 4.0]
    assert np.isnan(values[[4, 5, 6, 9, 10, 11, 12]]).all() and values[7] == 5.0 and values[8] == 6.0


# ------------------------------------------------------------------------------------ resamples and blocks


def test_resamples_has_a_documented_upper_bound():
    assert MAX_RESAMPLES == 100_000
    config = CompareConfig.from_json({"precision_recall": {"confidence": 0.95, "resamples": 100_000}})
    assert config.precision_recall.resamples == 100_000
    for bad, phrase in ((100_001, "is above 100,000"), (10**12, "is above 100,000"), (999, "is below 1000")):
        with pytest.raises(ValueError, match=rf"compare_config.precision_recall.resamples: {bad} {phrase}"):
            CompareConfig.from_json({"precision_recall": {"resamples": bad}})


@pytest.mark.parametrize(("n_items", "resamples"), [(1, 5), (7, 13), (50, 40)])
def test_bootstrap_weights_do_not_depend_on_the_block_size(n_items, resamples):
    whole = bootstrap_weights(n_items, resamples, seed=11)
    assert whole.shape == (resamples, n_items) and (whole.sum(axis=1) == n_items).all()
    for block in (1, 2, 3, resamples - 1, resamples, resamples + 5):
        blocks = list(bootstrap_weight_blocks(n_items, resamples, 11, block))
        assert [start for start, _ in blocks] == list(range(0, resamples, max(1, block)))
        assert all(len(w) <= block for _, w in blocks)
        np.testing.assert_array_equal(np.concatenate([w for _, w in blocks]), whole)
    with pytest.raises(ValueError, match="bootstrap block"):
        list(bootstrap_weight_blocks(3, 5, 0, 0))


def test_block_size_bounds_the_weights_held_at_once():
    assert bootstrap_block_size(1000, MAX_RESAMPLES) * 1000 <= 2**20
    assert bootstrap_block_size(10**7, MAX_RESAMPLES) == 1  # huge test subsets: one resample at a time
    assert bootstrap_block_size(10, 1000) == 1000


def _box_tables(n_items, seed):
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n_items):
        item = f"item-{i:03d}"
        for k, label in enumerate(("cat", "dog")):
            left = float(rng.uniform(0, 400))
            gt = {"item_id": item, "type": "box", "label": label, "left": left, "top": 50.0 * k,
                  "right": left + 30, "bottom": 50.0 * k + 30}  # fmt: skip
            records.append(gt)
            for owner, quality in (("prev", 0.6), ("new", 0.8)):
                shift = 1.0 if rng.uniform() < quality else 20.0
                # rounded confidences: ties with true and false positives on one item
                records.append(dict(gt, model_id=owner, confidence=round(float(rng.uniform()), 1),
                                    left=left + shift, right=left + 30 + shift))  # fmt: skip
                records.append(dict(gt, model_id=owner, confidence=records[-1]["confidence"], left=left + 200,
                                    right=left + 230))  # fmt: skip
    return annotation_tables(records, "prev", "new")


@pytest.mark.parametrize("per_label", [False, True])
def test_bootstrap_interval_does_not_depend_on_the_block_size(per_label):
    tables = _box_tables(25, seed=4)
    config = PrecisionRecallConfig(confidence=0.9, resamples=1000, seed=5, per_label=per_label)
    items = [f"item-{i:03d}" for i in range(30)]
    reference = [v.interval for v in evaluation_votes(tables, config, item_ids=items).votes]
    for block in (1, 37, 999, 5000):
        got = [v.interval for v in evaluation_votes(tables, config, item_ids=items, bootstrap_block=block).votes]
        assert got == reference
    assert len(reference) == (2 if per_label else 1) and all(low < high for low, high in reference)


# ------------------------------------------------------------------------------------ config bounds


def _nested(depth):
    value: dict = {"iou_threshold": 0.5}
    for _ in range(depth):
        value = {"x": value}
    return value


HOSTILE = [
    ({"precision_recall": _nested(70)}, "nested deeper than 64 levels"),
    ("[" * 200_000, "nested too deeply"),
    ('{"a":' * 100_000 + "1" + "}" * 100_000, "nested too deeply"),
    ('{"wins": "' + "x" * 1_100_000 + '"}', "over the 1,000,000-byte limit"),
    ({"checks": [{"legend": "v", "figure": "f", "min_delta": math.nan}]}, "compare_config.checks[0].min_delta: nan"),
    ({"precision_recall": {"min_delta": math.inf}}, "compare_config.precision_recall.min_delta: inf"),
    ({"precision_recall": {"labels": ["cat", -math.inf]}}, "compare_config.precision_recall.labels[1]: -inf"),
    ('{"precision_recall": {"iou_threshold": NaN}}', "compare_config.precision_recall.iou_threshold: nan"),
    ({"precision_recall": {"labels": ["x" * 2_000_000]}}, "over the 1,000,000-byte limit"),
    ({"wins": "x" * 100_000, "checks": [{"legend": "v", "figure": "f"}]}, "compare_config.wins: 'xxx"),
    ({"checks": [{"legend": "v" * 50_000, "figure": "f"}] * 2}, "checked more than once"),
    ({"k" * 10_000: 1}, "compare_config: unknown key(s) 'kkk"),
    ({f"k{i}": 1 for i in range(10_000)}, "and 9995 more"),
    ({"precision_recall": {"test_subset": {"filter": {"a": 1}, "z" * 9000: 1}}}, "unknown key(s) 'zzz"),
    ({"precision_recall": {"iou_threshold": "0." + "5" * 5000}}, "is not a finite number"),
    ({1: "x"}, "is not a string"),
    ({"checks": [{"legend": "v", "figure": "f", "type": object()}]}, "is not JSON"),
    (
        {"precision_recall": {"test_subset": {"filter": {"k" * 300_000: {"$bad": 1}}}}},
        "compare_config.precision_recall.test_subset.filter." + "k" * 61 + "....$bad: '$bad' is not a supported",
    ),
    (
        {"precision_recall": {"test_subset": {"filter": {"$" + "k" * 300_000: 1}}}},
        "compare_config.precision_recall.test_subset.filter.$" + "k" * 60 + "...: '$kkk",
    ),
    (
        {"precision_recall": {"test_subset": {"filter": {"a": {"$in": 1}}, "join": {"filter": _nested(60)}}}},
        "test_subset.join.filter.x.x.x",
    ),
    ('{"precision_recall": {"min_delta": 0, "min_delta": 0.5}}', "key 'min_delta' is given twice in one object"),
    ('{"checks": [{"legend": "v", "figure": "f", "legend": "w"}]}', "key 'legend' is given twice"),
    ({"precision_recall": {"min_delta": -0.01}}, "compare_config.precision_recall.min_delta: -0.01 is negative"),
    (
        {"checks": [{"legend": "v", "figure": "f", "min_delta": -1}]},
        "compare_config.checks[0].min_delta: -1 is negative",
    ),
    (
        {"precision_recall": {"min_relative_change": -0.05}},
        "compare_config.precision_recall.min_relative_change: -0.05 is negative",
    ),
]


@pytest.mark.parametrize(("raw", "phrase"), HOSTILE, ids=[p[:40] for _, p in HOSTILE])
def test_hostile_configs_are_refused_with_a_short_message_naming_the_path(raw, phrase):
    with pytest.raises(ValueError) as error:
        CompareConfig.from_json(raw)
    message = str(error.value)
    assert phrase in message, message[:300]
    assert len(message) <= 1024, len(message)


def test_a_long_path_keeps_its_start_and_end():
    condition: dict = {"$regexx": 1}
    for _ in range(50):  # 50 keys of 5,000 characters: a path of 250,000
        condition = {"k" * 5000: condition}
    with pytest.raises(ValueError) as error:
        CompareConfig.from_json({"precision_recall": {"test_subset": {"filter": condition}}})
    message = str(error.value)
    assert message.startswith("compare_config.precision_recall.test_subset.filter.kkk") and len(message) <= 1000
    assert "...k" in message and ".$regexx: '$regexx' is not a supported operator" in message


def test_margins_may_be_zero_but_not_negative():
    config = CompareConfig.from_json(
        {"precision_recall": {"min_delta": 0, "min_relative_change": 0.0}, "checks": [{"legend": "v", "figure": "f"}]}
    )
    assert config.precision_recall.min_delta == 0.0 and config.precision_recall.min_relative_change == 0.0
    assert CompareConfig.from_json({"precision_recall": {"min_delta": -0.0}}).precision_recall.min_delta == 0.0
    with pytest.raises(ValueError) as error:
        CompareConfig.from_json({"precision_recall": {"min_relative_change": -1e-300}})
    assert "use 0 or a positive fraction (0.05 = 5 %), or null for no relative check" in str(error.value)
    with pytest.raises(ValueError, match=r"use 0 \(any improvement\) or a positive number"):
        CompareConfig.from_json({"precision_recall": {"min_delta": -5e-324}})


def test_duplicate_keys_are_refused_only_in_json_text():
    text = '{"precision_recall": {"iou_threshold": 0.5, "min_delta": 0.1}}'
    assert CompareConfig.from_json(text).precision_recall.min_delta == 0.1
    assert CompareConfig.from_json('{"precision_recall": {"labels": ["a", "a"]}}').precision_recall.labels == ("a", "a")
    with pytest.raises(ValueError) as error:
        CompareConfig.from_json('{"wins": "all", "precision_recall": {}, "wins": "any"}')
    assert str(error.value).startswith("compare_config: key 'wins' is given twice in one object; keep one")


def test_config_limits_are_checked_before_any_request(platform, project, dataset):
    import main

    previous = platform.create_model(project, "previous", dataset=dataset)
    new = platform.create_model(project, "new", dataset=dataset)
    platform.reset_counts()
    for raw, _ in HOSTILE:
        with pytest.raises(ValueError):
            main.ServiceRunner().compare_models(previous_model=previous, new_model=new, compare_config=raw,
                                                dataset=dataset)  # fmt: skip
    assert sum(platform.request_counts.values()) == 0


def test_runtime_messages_about_long_metric_names_stay_short():
    check = PlotCheck(legend="v" * 5000, figure="f" * 5000)
    frame = samples_frame([{"figure": "g" * 3000 + str(k), "legend": "l", "x": 0, "y": 1.0} for k in range(50)])
    with pytest.raises(ValueError) as error:
        metric_value_at(frame, check, "new model 'm' (id)")
    assert "has no metric with figure" in str(error.value) and len(str(error.value)) <= 1024
    named = samples_frame([{"figure": "f" * 5000, "legend": "v" * 5000, "x": None, "y": 1.0}])
    with pytest.raises(ValueError) as error:
        metric_value_at(named, check, "m")
    assert "none with a numeric x" in str(error.value) and len(str(error.value)) <= 1024
