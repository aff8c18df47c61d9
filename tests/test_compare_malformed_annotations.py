"""Issue 13 §4: one malformed annotation in the test subset never stops Compare Models with an
``IndexError`` / ``TypeError``. The chosen rule (docs/failure-behaviour.md, Compare Models): the
annotation is **skipped and counted** in the stored report (``details.skippedAnnotations``: count,
count per reason, the first examples with annotation id and item id), a warning is logged, and the
decision is the one the well-formed annotations give. Every kind is uploaded to the local
platform and read back through the real dtlpy client."""

from __future__ import annotations

import math

import dtlpy as dl
import pytest

from nodes.compare_models.records import read_annotations, record_problem
from tests.helpers import TEST_TAGS, box, run_compare


def _upload(item_id, annotations):
    """POST /items/{id}/annotations through dtlpy's own client (the request Evaluate makes)."""
    success, response = dl.client_api.gen_request(
        req_type="post", path=f"/items/{item_id}/annotations", json_req=annotations
    )
    assert success, response.text
    return response.json()


def _malformed(kind, previous, new):
    """One malformed annotation of each kind (a new-model prediction where confidence matters)."""
    good = box("cat", 10, 10)
    if kind == "empty-coordinates":
        return dict(good, coordinates=[])
    if kind == "null-coordinate":
        return dict(good, coordinates=[{"x": None, "y": 10}, {"x": 50, "y": 50}])
    if kind == "string-confidence":
        return box("cat", 10, 10, model=new, confidence="very high")
    if kind == "polygon-under-3-points":
        return {
            "type": "segment",
            "label": "cat",
            "coordinates": [[{"x": 1, "y": 1}, {"x": 9, "y": 9}]],
            "metadata": {},
        }
    if kind == "undecodable-mask":
        return {"type": "binary", "label": "cat", "coordinates": "data:image/png;base64,AAAA", "metadata": {}}
    raise AssertionError(kind)


def _seed(platform, dataset, previous, new, n_items=6):
    ids = platform.add_items(dataset, [{"name": f"m-{i}.jpg", "metadata": TEST_TAGS} for i in range(n_items)])
    for i, item_id in enumerate(ids):
        _upload(
            item_id,
            [
                box("cat", 100, 100),
                box("cat", 100, 100, model=new, confidence=0.9),  # hit
                box("cat", 130, 100, model=previous, confidence=0.8 - i / 100),  # miss (IoU ~0.14)
            ],
        )
    return ids


KINDS = ["empty-coordinates", "null-coordinate", "string-confidence", "polygon-under-3-points", "undecodable-mask"]
REASONS = {
    "empty-coordinates": "empty coordinates",
    "null-coordinate": "coordinate x None is not a finite number",
    "string-confidence": "confidence 'very high' is not a finite number",
    "polygon-under-3-points": "polygon has 2 points (at least 3 are needed)",
    "undecodable-mask": "mask could not be decoded",
}


@pytest.mark.parametrize("kind", KINDS)
def test_one_malformed_annotation_is_skipped_and_counted_in_the_report(platform, project, dataset, kind, caplog):
    previous = platform.create_model(project, "previous", dataset=dataset)
    new = platform.create_model(project, "new", dataset=dataset)
    ids = _seed(platform, dataset, previous, new)
    [bad] = _upload(ids[2], [_malformed(kind, previous, new)])
    platform.reset_counts()

    winner, progress = run_compare(previous, new, dataset)

    assert progress.actions == ["update model"] and winner.id == new.id  # the well-formed data decides
    report = platform.get_json("models", new.id)["metadata"]["user"]["activeLearning"]["comparison"]
    skipped = report["details"]["skippedAnnotations"]
    assert skipped["count"] == 1
    [example] = skipped["examples"]
    assert example["annotationId"] == bad["id"] and example["itemId"] == ids[2]
    assert example["reason"].startswith(REASONS[kind])
    assert list(skipped["byReason"].values()) == [1]
    assert report["details"]["annotations"] == 3 * len(ids) + 1
    [vote] = report["votes"]
    assert (vote["previous"], vote["new"]) == (0.0, 1.0)
    assert any("skipped 1 malformed annotation" in r.getMessage() for r in caplog.records)
    assert platform.write_count() == 1


def test_infinite_coordinates_stored_on_the_platform_are_skipped(platform, project, dataset):
    """JSON cannot carry ±inf from a client (requests refuses), but a stored document can hold it
    and the server answers ``Infinity``, which dtlpy reads back as a float infinity."""
    previous = platform.create_model(project, "previous", dataset=dataset)
    new = platform.create_model(project, "new", dataset=dataset)
    ids = _seed(platform, dataset, previous, new)
    [plus] = platform.store.create_annotations(ids[0], [dict(box("cat", 10, 10), coordinates=[{"x": math.inf, "y": 1}, {"x": 5, "y": 5}])])  # fmt: skip
    [minus] = platform.store.create_annotations(ids[1], [box("cat", -math.inf, 10, model=new, confidence=0.5)])

    winner, progress = run_compare(previous, new, dataset)

    assert progress.actions == ["update model"] and winner.id == new.id
    skipped = platform.get_json("models", new.id)["metadata"]["user"]["activeLearning"]["comparison"]["details"][
        "skippedAnnotations"
    ]
    assert skipped["count"] == 2
    assert {(e["annotationId"], e["itemId"]) for e in skipped["examples"]} == {
        (plus["id"], ids[0]),
        (minus["id"], ids[1]),
    }
    assert all("is not a finite number" in e["reason"] for e in skipped["examples"])


def test_every_kind_at_once_and_the_table_prints_the_count(platform, project, dataset, caplog):
    previous = platform.create_model(project, "previous", dataset=dataset)
    new = platform.create_model(project, "new", dataset=dataset)
    ids = _seed(platform, dataset, previous, new)
    for position, kind in enumerate(KINDS):
        _upload(ids[position], [_malformed(kind, previous, new)])
    caplog.set_level("INFO")

    run_compare(previous, new, dataset, config={"precision_recall": {"per_label": True}})

    report = platform.get_json("models", new.id)["metadata"]["user"]["activeLearning"]["comparison"]
    assert report["details"]["skippedAnnotations"]["count"] == len(KINDS)
    table = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("comparison of previous"))
    assert f"skipped {len(KINDS)} malformed annotation(s)" in table


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ({"type": "box", "label": "cat", "left": 0, "top": 0, "right": 1, "bottom": 1}, None),
        ({"type": "box", "label": "cat", "left": 0, "top": None, "right": 1, "bottom": 1}, "coordinate top None"),
        ({"type": "box", "label": "cat", "left": 0, "top": 0, "right": math.inf, "bottom": 1}, "coordinate right inf"),
        ({"type": "box", "label": "cat", "left": True, "top": 0, "right": 1, "bottom": 1}, "coordinate left True"),
        ({"type": "box", "label": None, "left": 0, "top": 0, "right": 1, "bottom": 1}, "label None"),
        ({"type": "class", "label": "cat", "model_id": "m", "confidence": math.nan}, "confidence nan"),
        ({"type": "class", "label": "cat", "model_id": "m", "confidence": "0.5"}, "confidence '0.5'"),
        ({"type": "class", "label": "cat", "model_id": "m", "confidence": None}, None),  # scored 1.0
        ({"type": "class", "label": "cat", "model_id": None, "confidence": "x"}, None),  # ground truth
        ({"type": "segment", "label": "c", "polygon": [[0, 0], [1, 0], [1, math.nan]]}, "polygon has a null"),
        ({"type": "segment", "label": "c", "polygon": [[0, 0], [1, 0]]}, "polygon has 2 points"),
        ({"type": "segment", "label": "c", "polygon": [[0, 0], [1, 0], [1, 1]]}, None),
        ({"type": "binary", "label": "c", "mask": None}, "mask is not a 2-D image"),
        ({"type": "point", "label": None}, None),  # a type the comparison does not score
    ],
)
def test_record_problem_names_each_kind(record, problem):
    found = record_problem(record)
    assert found is None if problem is None else found.startswith(problem), found


def test_read_annotations_never_raises_on_hostile_documents():
    docs = [
        {"id": "a", "itemId": "i", "type": "box", "label": "cat", "metadata": {}, "coordinates": None},
        {"id": "b", "itemId": "i", "type": "box", "label": "cat", "metadata": {}, "coordinates": "x"},
        {"id": "c", "itemId": "i", "type": "segment", "label": "cat", "metadata": {}, "coordinates": [[]]},
        {"id": "d", "itemId": "i", "type": "segment", "label": "cat", "metadata": {}, "coordinates": [[1, 2, 3]]},
        {"id": "e", "itemId": "i", "type": "box", "metadata": {}, "coordinates": [{"x": 1, "y": 1}]},
        {"id": "f", "itemId": "i", "type": "binary", "label": "cat", "metadata": {}, "coordinates": 7},
    ]
    records, skipped = read_annotations(docs)
    assert records == [] and [s["annotationId"] for s in skipped] == ["a", "b", "c", "d", "e", "f"]
    assert all(len(s["reason"]) < 300 for s in skipped)
