"""Batch split reruns after an interruption (pure): the run marker lets a rerun of the same split
re-decide what an interrupted run of it already tagged, so it ends exactly where one uninterrupted
run ends, in every mode; tags from anything else stay sticky."""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodes.data_split import (
    SplitConfig,
    batch_fingerprint,
    check_batch_options,
    decide_batch,
    plan_updates,
    run_mark_of,
    run_marker,
)

CONFIG = SplitConfig.from_node_config(
    {"groups": [{"name": n, "distribution": d} for n, d in (("train", 60), ("validation", 20), ("test", 20))]}
)
INITIAL_TAGS = [None, {}, {"reviewed": True}, {"train": True}, {"test": True, "validation": True}, {"train": False}]
STALE_MARKS = [None, "0000000000000000:train", "0000000000000000:test"]


def one_run(tags, marks, *, labels=None, groups=None, seed=0, reassign=False, chunk=1000, stop_after=None):
    """Decide, plan and apply bulk updates the way the server does (``null`` deletes a tag);
    ``stop_after`` applies only that many bulk requests (an interrupted run)."""
    fp = batch_fingerprint(tags, CONFIG, item_labels=labels, item_groups=groups, seed=seed, reassign=reassign)
    assignments, sticky = decide_batch(
        tags,
        CONFIG,
        item_labels=labels,
        item_groups=groups,
        seed=seed,
        reassign=reassign,
        item_marks=marks,
        fingerprint=fp,
    )
    plan = plan_updates(assignments, tags, CONFIG, chunk=chunk, sticky=sticky, fingerprint=fp)
    tags, marks = copy.deepcopy(dict(tags)), dict(marks)
    for _subset, patch, ids, marker in plan[:stop_after]:
        for item_id in ids:
            new = dict(tags.get(item_id) or {})
            for key, value in patch.items():
                if value is None:
                    new.pop(key, None)
                else:
                    new[key] = value
            tags[item_id] = new
            if marker is not None:
                marks[item_id] = marker
    return tags, marks, assignments, len(plan)


@st.composite
def datasets(draw):
    n = draw(st.integers(1, 40))
    ids = [f"it{k:03d}" for k in range(n)]
    tags = {i: copy.deepcopy(draw(st.sampled_from(INITIAL_TAGS))) for i in ids}
    marks = {i: m for i in ids if (m := draw(st.sampled_from(STALE_MARKS))) is not None}
    mode = draw(st.sampled_from(["exact", "label", "group"]))
    labels = groups = None
    if mode == "label":
        labels = {i: draw(st.lists(st.sampled_from("abc"), max_size=3)) for i in ids}
    elif mode == "group":
        groups = {i: draw(st.one_of(st.none(), st.integers(0, 5))) for i in ids}
    return tags, marks, {"labels": labels, "groups": groups, "seed": draw(st.integers(0, 3))}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=datasets(), chunk=st.integers(1, 6), data=st.data(), reassign=st.booleans())
def test_interrupted_at_any_bulk_request_then_rerun_equals_an_uninterrupted_run(case, chunk, data, reassign):
    tags, marks, options = case
    full_tags, full_marks, full_assignments, n_requests = one_run(
        tags, marks, chunk=chunk, reassign=reassign, **options
    )
    stop = data.draw(st.integers(0, n_requests), label="bulk requests before the interruption")
    part_tags, part_marks, _, _ = one_run(tags, marks, chunk=chunk, stop_after=stop, reassign=reassign, **options)
    rerun_tags, rerun_marks, rerun_assignments, _ = one_run(
        part_tags, part_marks, chunk=chunk, reassign=reassign, **options
    )
    assert rerun_assignments == full_assignments
    assert rerun_tags == full_tags
    assert rerun_marks == full_marks
    # and a rerun of the finished split has nothing left to write
    assert one_run(rerun_tags, rerun_marks, chunk=chunk, reassign=reassign, **options)[3] == 0


def test_without_the_marker_the_stratified_rerun_would_differ():
    """The case the marker is for: stratified, interrupted after the first bulk request; treating
    the partial tags as sticky moves other items (the rerun is not the uninterrupted result)."""
    ids = [f"it{k:03d}" for k in range(30)]
    tags = {i: {} for i in ids}
    labels = {i: ["a"] if k % 3 == 0 else ["b", "c"] if k % 3 == 1 else [] for k, i in enumerate(ids)}
    full_tags, _, full, n = one_run(tags, {}, labels=labels, chunk=4)
    assert n > 2
    for stop in range(1, n):
        part_tags, part_marks, _, _ = one_run(tags, {}, labels=labels, chunk=4, stop_after=stop)
        assert one_run(part_tags, part_marks, labels=labels, chunk=4)[0] == full_tags
    differs = []
    for stop in range(1, n):
        part_tags, _, _, _ = one_run(tags, {}, labels=labels, chunk=4, stop_after=stop)
        differs.append(one_run(part_tags, {}, labels=labels, chunk=4)[0] != full_tags)
    assert any(differs)


def test_tags_of_a_finished_split_stay_sticky_when_the_items_change():
    ids = [f"it{k:03d}" for k in range(50)]
    tags, marks, first, _ = one_run({i: {} for i in ids}, {})
    assert set(marks) == set(ids)
    grown = tags | {f"new{k:02d}": {} for k in range(25)}
    _, _, second, _ = one_run(grown, marks)
    assert {i: second[i] for i in ids} == first  # new fingerprint: every old tag is sticky


def test_a_tag_changed_by_hand_after_the_run_is_sticky():
    ids = [f"it{k:03d}" for k in range(40)]
    tags, marks, first, _ = one_run({i: {} for i in ids}, {})
    moved = next(i for i, s in first.items() if s == "train")
    tags[moved] = {"test": True}  # the marker still says train
    assert marks[moved].endswith(":train")
    _, _, second, _ = one_run(tags, marks)
    assert second[moved] == "test"


def test_fingerprint_covers_seed_mode_shares_labels_and_groups():
    ids = ["a", "b", "c"]
    base = batch_fingerprint(ids, CONFIG)
    other = SplitConfig.from_node_config(
        {"groups": [{"name": "train", "distribution": 50}, {"name": "test", "distribution": 50}]}
    )
    variants = {
        batch_fingerprint(ids, CONFIG, seed=1),
        batch_fingerprint(ids, CONFIG, reassign=True),
        batch_fingerprint(ids, other),
        batch_fingerprint(ids, CONFIG, item_labels={"a": ["x"]}),
        batch_fingerprint(ids, CONFIG, item_labels={"a": ["y"]}),
        batch_fingerprint(ids, CONFIG, item_groups={"a": 1}),
        batch_fingerprint(ids, CONFIG, item_groups={"a": "1"}),
        batch_fingerprint(ids[:2], CONFIG),
    }
    assert base not in variants and len(variants) == 8
    assert batch_fingerprint(ids, CONFIG, item_labels={"a": ["x", "x"]}) == batch_fingerprint(
        ids, CONFIG, item_labels={"a": ["x"]}
    )


def test_run_marker_helpers_and_group_by_guard():
    assert run_marker("f", "test") == "f:test"
    assert run_mark_of({"metadata": {"user": {"activeLearning": {"split": "f:test"}}}}) == "f:test"
    assert run_mark_of({"metadata": {"user": {"activeLearning": "x"}}}) is None
    assert run_mark_of({}) is None
    with pytest.raises(ValueError, match=r"group_by: 'metadata.user.activeLearning.split'"):
        check_batch_options(None, "metadata.user.activeLearning.split")
    check_batch_options(None, "metadata.user.activeLearningX")


@pytest.mark.parametrize(
    "field",
    [
        "metadata",
        "metadata.user",
        "metadata.system",
        "metadata.system.tags",
        "metadata.system.tags.train",
        "metadata.user.activeLearning",
        "updatedAt",
        "updatedBy",
    ],
)
def test_group_by_a_field_the_split_writes_is_refused(field):
    """Grouping by what the split's own write changes (the tags, the run marker, the update stamp,
    or an object holding one) would give the rerun of an interrupted split other groups."""
    with pytest.raises(ValueError, match=rf"^group_by: '{field}' holds .*which the split itself writes"):
        check_batch_options(None, field)
    check_batch_options(None, "metadata.system.tagsX")
    check_batch_options(None, "metadata.user.patient_id")


def test_option_messages_stay_short_for_values_of_any_length():
    for stratify_by, group_by in ((None, "a." * 100_000 + "$"), (None, "metadata.user"), ("x" * 100_000, None)):
        with pytest.raises(ValueError) as error:
            check_batch_options(stratify_by, group_by)
        assert len(str(error.value)) < 1000
    with pytest.raises(ValueError, match=r"^group_by: 'metadata\.user' holds"):
        check_batch_options(None, "metadata.user")
