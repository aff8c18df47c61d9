"""Compare Models reads annotation records straight from the platform JSON
(``nodes.compare_models.annotation_record``); these tests hold it to the records the entity path
(``dl.Annotation.from_json`` then ``_annotation_record``) gives, for annotations uploaded through
dtlpy and for generated documents, and check the listing still builds no entity for them."""

from __future__ import annotations

import copy
import io

import dtlpy as dl
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodes import compare_models
from nodes.compare_models.records import _annotation_record, annotation_record

TEST = {"system": {"tags": {"test": True}}}
#: Fields every platform annotation has (dtlpy's entity needs them).
AUDIT = {"creator": "u@x", "createdAt": "2026-01-01T00:00:00Z", "updatedBy": "u@x", "updatedAt": "2026-01-01T00:00:00Z"}


def _entity_record(doc: dict) -> dict:
    """The old path: a dtlpy entity per document, then its fields."""
    return _annotation_record(dl.Annotation.from_json(_json=copy.deepcopy(doc)))


def assert_same_record(fast: dict, reference: dict) -> None:
    assert sorted(fast) == sorted(reference)
    for key, expected in reference.items():
        if isinstance(expected, np.ndarray):
            assert isinstance(fast[key], np.ndarray) and fast[key].dtype == expected.dtype, key
            np.testing.assert_array_equal(fast[key], expected, err_msg=key)
        else:
            assert fast[key] == expected, (key, fast[key], expected)
            assert type(fast[key]) is type(expected) or isinstance(expected, np.generic), key


def _upload_item(dataset, name):
    buffer = io.BytesIO(b"\x89PNG fake image bytes")
    buffer.name = name
    return dataset.items.upload(local_path=buffer, item_metadata=TEST)


def test_records_from_json_equal_the_entity_records_for_uploaded_annotations(platform, dataset):
    item = _upload_item(dataset, "a.png")
    mask = np.zeros((6, 8), dtype=bool)
    mask[1:4, 2:7] = True
    model_info = {"name": "m", "model_id": "model-1", "confidence": 0.75}
    builder = item.annotations.builder()
    builder.add(dl.Box(top=3, left=20.5, bottom=30, right=40, label="cat"))
    builder.add(dl.Box(top=1, left=2, bottom=11, right=22, label="dog"), model_info=model_info)
    builder.add(dl.Polygon(geo=np.array([[1.0, 2.0], [30.0, 2.5], [15.0, 40.0]]), label="cat"))
    builder.add(dl.Polygon(geo=np.array([[5, 5], [9, 5], [7, 9]]), label="bird"), model_info=model_info)
    builder.add(dl.Classification(label="dog"))
    builder.add(dl.Classification(label="cat"), model_info=dict(model_info, confidence=0.2))
    builder.add(dl.Segmentation(geo=mask, label="bird"))
    builder.add(dl.Segmentation(geo=mask, label="cat"), model_info=model_info)
    builder.add(dl.Point(x=3, y=4, label="cat"))  # a type the comparison does not score
    uploaded = item.annotations.upload(builder)
    assert uploaded is not None and len(uploaded) == 9

    docs = platform.annotations_json(dataset.id)
    assert sorted(doc["type"] for doc in docs) == sorted(["box"] * 2 + ["segment"] * 2 + ["class"] * 2 + ["binary"] * 2 + ["point"])  # fmt: skip
    for doc in docs:
        before = copy.deepcopy(doc)
        assert_same_record(annotation_record(doc), _entity_record(doc))
        assert doc == before  # the document is not modified
    by_type = {(r["type"], r["model_id"]): r for r in map(annotation_record, docs)}
    assert (by_type["box", None]["left"], by_type["box", None]["bottom"]) == (20.5, 30)
    assert by_type["box", "model-1"]["confidence"] == 0.75
    np.testing.assert_array_equal(by_type["segment", None]["polygon"], [[1.0, 2.0], [30.0, 2.5], [15.0, 40.0]])
    assert by_type["class", "model-1"]["confidence"] == 0.2 and "polygon" not in by_type["class", None]
    np.testing.assert_array_equal(by_type["binary", None]["mask"], mask)


def test_listing_builds_entities_only_for_the_documents_it_cannot_read(platform, dataset, monkeypatch):
    item = _upload_item(dataset, "b.png")
    builder = item.annotations.builder()
    for k in range(5):
        builder.add(dl.Box(top=k, left=k, bottom=k + 5, right=k + 5, label="cat"))
        builder.add(dl.Classification(label="dog"), model_info={"name": "m", "model_id": "m1", "confidence": 0.5})
        builder.add(dl.Polygon(geo=np.array([[k, 0], [k + 4, 0], [k, 4]]), label="cat"))
    mask = np.ones((4, 4), dtype=bool)
    builder.add(dl.Segmentation(geo=mask, label="bird"))
    item.annotations.upload(builder)
    built = []
    original = dl.Annotation.from_json.__func__

    def counting(cls, *args, **kwargs):
        built.append(kwargs.get("_json", args[0] if args else None)["type"])
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(dl.Annotation, "from_json", classmethod(counting))
    platform.reset_counts()
    query = {"filter": {"$and": [{"metadata.system.tags.test": True}, {"hidden": False}, {"type": "file"}]}}
    records = compare_models.list_test_annotations(dataset, query, [item.id], ["m1", "m2"])
    assert len(records) == 16 and built == ["binary"]  # only the mask went through dtlpy's entity
    assert platform.request_counts["POST /datasets/{id}/query"] == 1
    assert sum(platform.request_counts.values()) == 1


_number = st.one_of(st.integers(-10_000, 10_000), st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False, width=32))
_point = st.fixed_dictionaries({"x": _number, "y": _number, "z": st.just(0)})
_model = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {"model_id": st.sampled_from(["m1", "m2"]), "name": st.just("m")},
        optional={"confidence": st.floats(0, 1, allow_nan=False)},
    ),
)


@st.composite
def _documents(draw):
    kind = draw(st.sampled_from(["box", "segment", "class"]))
    if kind == "box":
        coordinates = draw(st.lists(_point, min_size=1, max_size=3))
    elif kind == "segment":
        coordinates = [draw(st.lists(_point, min_size=1, max_size=6))]
    else:
        coordinates = draw(st.sampled_from([[], None]))
    doc = {
        "id": "a1",
        "itemId": draw(st.sampled_from(["i1", "i2"])),
        "datasetId": "d1",
        "type": kind,
        "label": draw(st.sampled_from(["cat", "dog"])),
        "metadata": {"system": {"status": None}},
        **AUDIT,
    }
    if coordinates is not None:
        doc["coordinates"] = coordinates
    model = draw(_model)
    if model is not None:
        doc["metadata"]["user"] = {"model": model}
    return doc


@settings(max_examples=150, deadline=None)
@given(_documents())
def test_records_from_generated_json_equal_the_entity_records(doc):
    assert_same_record(annotation_record(doc), _entity_record(doc))


@pytest.mark.parametrize(
    "doc",
    [
        {"type": "box", "label": "cat", "itemId": "i", "metadata": {}, "coordinates": [], **AUDIT},
        {"type": "segment", "label": "cat", "itemId": "i", "metadata": {}, **AUDIT},
        {"type": "box", "itemId": "i", "metadata": {}, "coordinates": [{"x": 1, "y": 1}, {"x": 2, "y": 2}], **AUDIT},
    ],
    ids=["box-without-points", "segment-without-coordinates", "no-label"],
)
def test_documents_dtlpy_rejects_are_rejected_the_same_way(doc):
    with pytest.raises(Exception) as expected:
        _entity_record(doc)
    assert "creator" not in str(expected.value)  # rejected for the geometry or label, not the fixture
    with pytest.raises(type(expected.value)):
        annotation_record(doc)


def test_video_annotations_go_through_the_entity():
    doc = {
        "id": "a1",
        "itemId": "i1",
        "type": "box",
        "label": "cat",
        "metadata": {"system": {"frame": 0, "endFrame": 3}},
        "coordinates": [{"x": 1, "y": 2}, {"x": 5, "y": 9}],
        **AUDIT,
    }
    assert_same_record(annotation_record(doc), _entity_record(doc))
