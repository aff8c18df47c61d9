"""The detection scenes generator: boxes inside the canvas, labels, determinism, disjoint sources."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from demo.detection.data import LABELS, MAX_OVERLAP, _covered_share, make_scenes


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    canvas=st.integers(40, 128),
    min_size=st.integers(6, 20),
    extra=st.integers(0, 20),
    max_objects=st.integers(1, 8),
)
def test_boxes_lie_inside_the_canvas_and_carry_digit_labels(seed, canvas, min_size, extra, max_objects):
    max_size = min(canvas, min_size + extra)
    scenes = make_scenes(6, seed=seed, canvas=canvas, min_size=min_size, max_size=max_size, max_objects=max_objects)
    assert scenes.images.shape == (6, canvas, canvas)
    for boxes, labels in zip(scenes.boxes, scenes.labels, strict=True):
        assert boxes.shape == (len(labels), 4)
        assert len(labels) <= max_objects
        assert set(labels) <= set(LABELS)
        if len(boxes):
            assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= canvas).all()
            sides = boxes[:, 2:] - boxes[:, :2]
            assert (sides[:, 0] == sides[:, 1]).all()
            assert ((sides[:, 0] >= min_size) & (sides[:, 0] <= max_size)).all()
            for k in range(1, len(boxes)):  # no digit hidden under an earlier one
                earlier = [tuple(b) for b in boxes[:k]]
                assert _covered_share(tuple(boxes[k]), earlier) <= MAX_OVERLAP


def test_same_arguments_give_the_same_scenes_and_seeds_differ():
    a, b = make_scenes(20, seed=3), make_scenes(20, seed=3)
    assert np.array_equal(a.images, b.images) and a.labels == b.labels
    assert all(np.array_equal(x, y) for x, y in zip(a.boxes, b.boxes, strict=True))
    assert not np.array_equal(a.images, make_scenes(20, seed=4).images)


def test_train_and_test_sources_differ_and_some_scenes_are_empty():
    train, test = make_scenes(200, seed=0, source="train"), make_scenes(200, seed=0, source="test")
    assert not np.array_equal(train.images, test.images)
    assert train.names[0] == "scene_train_0000.png" and test.names[0] == "scene_test_0000.png"
    empty = sum(len(b) == 0 for b in train.boxes)
    assert 5 <= empty <= 40  # EMPTY_FRACTION = 0.1 of 200
    assert {label for labels in train.labels for label in labels} == set(LABELS)


def test_a_digit_is_brighter_than_the_background_around_it():
    scenes = make_scenes(30, seed=1, empty_fraction=0.0)
    inside, outside = [], []
    for image, boxes in zip(scenes.images, scenes.boxes, strict=True):
        mask = np.zeros(image.shape, dtype=bool)
        for left, top, right, bottom in boxes.astype(int):
            mask[top:bottom, left:right] = True
        inside.append(image[mask].max())
        outside.append(np.median(image[~mask]))
    assert np.median(inside) > 3 * np.median(outside)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n_scenes": 0}, "n_scenes"),
        ({"n_scenes": True}, "n_scenes"),
        ({"n_scenes": 2, "source": "val"}, "source"),
        ({"n_scenes": 2, "min_size": 40, "max_size": 30}, "min_size"),
        ({"n_scenes": 2, "empty_fraction": 1.0}, "empty_fraction"),
    ],
)
def test_bad_arguments_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        make_scenes(**kwargs)
