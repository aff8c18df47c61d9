"""Compare Models: platform JSON and metric samples as the plain records and DataFrames the votes take.

``annotation_record`` reads one annotation's JSON (``item_id``, ``type``, ``label``,
``model_id``, ``confidence``, geometry) without building a dtlpy entity; ``annotation_tables``
splits records into ground truth and each model's predictions, one ``EvaluationTables`` per
geometry; ``samples_frame`` turns metric samples into a DataFrame. Malformed annotations are
skipped and counted (``read_annotations``, ``skipped_summary``), never an error from deep inside.
"""

from __future__ import annotations

import copy
import logging
import math
import numbers
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from nodes import metrics
from nodes.common.limits import cut, shorten

logger = logging.getLogger(__name__)

#: Dataloop annotation type -> evaluated geometry (Dataloop calls a polygon "segment":
#: ``dl.AnnotationType.POLYGON == "segment"``; a semantic mask is "binary").
ANNOTATION_GEOMETRY = {"box": "box", "segment": "polygon", "binary": "mask", "class": "class"}
METRIC_COLUMNS = ("figure", "legend", "x", "y")
#: Skipped annotations listed by id in the report (the rest are counted).
MAX_SKIPPED_EXAMPLES = 10


@dataclass(frozen=True)
class EvaluationTables:
    """Ground truth and both models' predictions of one geometry on the test subset.

    Frames have ``item_id``, ``label`` and the geometry columns of ``nodes.metrics``
    (``left, top, right, bottom`` / ``polygon`` / ``mask``; none for ``class``);
    predictions also ``confidence``.
    """

    geometry: str
    ground_truth: pd.DataFrame
    previous: pd.DataFrame
    new: pd.DataFrame


def _geometry_columns(geometry: str) -> tuple[str, ...]:
    return () if geometry == "class" else metrics.GEOMETRY_COLUMNS[geometry]


def annotation_tables(
    records: Iterable[dict],
    previous_id: str,
    new_id: str,
    labels: Sequence[str] | None = None,
) -> dict[str, EvaluationTables]:
    """Split annotation records into ground truth and each model's predictions, per geometry.

    Parameters
    ----------
    records : iterable of dict
        One per annotation: ``item_id``, ``type`` (Dataloop annotation type), ``label``,
        ``model_id`` (``None`` for ground truth, i.e. no ``metadata.user.model``),
        ``confidence`` and the geometry (``left, top, right, bottom`` / ``polygon`` /
        ``mask``). Types other than ``box``, ``segment`` (polygon), ``binary`` and ``class`` are
        ignored, and so are predictions of other models. (Dataloop's polygon type is
        ``"segment"``.)
    previous_id, new_id : str
        The models' ids.
    labels : sequence of str, optional
        Keep only these labels.

    Returns
    -------
    dict
        Geometry (``"box"``, ``"polygon"``, ``"mask"``, ``"class"``) -> ``EvaluationTables``,
        for every geometry that has ground truth or predictions of either model.

    Examples
    --------
    >>> box = {"type": "box", "label": "cat", "left": 0, "top": 0, "right": 5, "bottom": 5}
    >>> tables = annotation_tables([dict(box, item_id="i1", model_id=None, confidence=None),
    ...                             dict(box, item_id="i1", model_id="m2", confidence=0.9)], "m1", "m2")
    >>> len(tables["box"].ground_truth), len(tables["box"].previous), len(tables["box"].new)
    (1, 0, 1)
    """
    frame = pd.DataFrame(list(records))
    if frame.empty:
        return {}
    for column in ("model_id", "confidence"):
        if column not in frame:
            frame[column] = None
    frame["geometry"] = frame["type"].map(ANNOTATION_GEOMETRY)
    ignored = frame["geometry"].isna()
    if ignored.any():
        counts = frame.loc[ignored, "type"].value_counts().to_dict()
        logger.info("ignoring annotations of types the comparison does not score: %s", counts)
        frame = frame[~ignored]
    if labels is not None:
        frame = frame[frame["label"].isin(list(labels))]
    tables = {}
    for geometry in sorted(frame["geometry"].unique()):
        of_geometry = frame[frame["geometry"] == geometry]
        owner = of_geometry["model_id"]
        table = EvaluationTables(
            geometry,
            _pick(of_geometry, owner.isna(), geometry, with_confidence=False),
            _pick(of_geometry, owner == previous_id, geometry, with_confidence=True),
            _pick(of_geometry, owner == new_id, geometry, with_confidence=True),
        )
        if len(table.ground_truth) or len(table.previous) or len(table.new):
            tables[geometry] = table
    return tables


def _pick(frame: pd.DataFrame, mask: pd.Series, geometry: str, with_confidence: bool) -> pd.DataFrame:
    columns = ["item_id", "label", *_geometry_columns(geometry)] + (["confidence"] if with_confidence else [])
    part = frame.loc[mask, columns].reset_index(drop=True)
    if with_confidence:
        missing = part["confidence"].isna()
        if missing.any():
            logger.warning("%d %s predictions have no confidence; scoring them 1.0", int(missing.sum()), geometry)
        part["confidence"] = pd.to_numeric(part["confidence"].where(~missing, 1.0)).astype(float)
    return part


def _model_fields(metadata: Any) -> dict:
    """``model_id`` and ``confidence`` from an annotation's metadata (``None`` for ground truth)."""
    user = metadata.get("user") if isinstance(metadata, dict) else None
    model = user.get("model") if isinstance(user, dict) else None
    if model is None:
        return {"model_id": None, "confidence": None}
    if not isinstance(model, dict):
        return {"model_id": "", "confidence": None}
    return {"model_id": model.get("model_id", ""), "confidence": model.get("confidence")}


def annotation_record(doc: dict) -> dict:
    """The fields of one annotation the comparison needs, read straight from its platform JSON.

    Gives what :func:`_annotation_record` gives for ``dl.Annotation.from_json(_json=doc)``
    without building the entity (~1.5 ms each, most of a large listing's time), for the types
    read here: ``box`` (min / max of x and y over the first two coordinate points, as dtlpy's
    ``Box.from_json``), ``segment`` (the points of ``coordinates[0]``, as dtlpy's
    ``Polygon.from_json``) and ``class`` (no geometry). Binary masks, any other type, video
    annotations (``metadata.system.endFrame`` > 0) and documents dtlpy would read differently or
    reject go through ``dl.Annotation.from_json`` for that document only. ``doc`` is not modified.

    Examples
    --------
    >>> doc = {"id": "a1", "itemId": "i1", "type": "box", "label": "cat", "metadata": {},
    ...        "coordinates": [{"x": 9, "y": 1}, {"x": 2, "y": 5}]}
    >>> {k: annotation_record(doc)[k] for k in ("item_id", "left", "top", "right", "bottom", "model_id")}
    {'item_id': 'i1', 'left': 2, 'top': 1, 'right': 9, 'bottom': 5, 'model_id': None}
    """
    kind = doc.get("type")
    metadata = doc.get("metadata", {})
    system = metadata.get("system", {}) if isinstance(metadata, dict) else None
    end_frame = system.get("endFrame", 0) if isinstance(system, dict) else None
    still = isinstance(end_frame, (int, float)) and end_frame <= 0  # dtlpy reads endFrame > 0 as video
    if kind in ("box", "segment", "class") and still and "label" in doc:
        try:
            record = {"item_id": doc.get("itemId"), "type": kind, "label": doc["label"], **_model_fields(metadata)}
            coordinates = doc.get("coordinates", [])
            if kind == "box":
                points = coordinates[:2]
                xs, ys = [point["x"] for point in points], [point["y"] for point in points]
                record.update(left=min(xs), top=min(ys), right=max(xs), bottom=max(ys))
            elif kind == "segment":
                points = [[point["x"], point["y"]] for point in coordinates[0]]
                record["polygon"] = np.asarray(points, dtype=float)
            return record
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            pass  # not the shape read here: dtlpy decides (and raises what it raises)
    import dtlpy as dl

    return _annotation_record(dl.Annotation.from_json(_json=copy.deepcopy(doc)))


def _annotation_record(annotation: Any) -> dict:
    """EDGE helper: the fields of a ``dl.Annotation`` the comparison needs, as plain values
    (the path of the documents :func:`annotation_record` does not read itself)."""
    record = {
        "item_id": annotation.item_id,
        "type": annotation.type,
        "label": annotation.label,
        **_model_fields(annotation.metadata or {}),
    }
    geometry = ANNOTATION_GEOMETRY.get(annotation.type)
    if geometry == "box":
        record.update(left=annotation.left, top=annotation.top, right=annotation.right, bottom=annotation.bottom)
    elif geometry == "polygon":
        record["polygon"] = np.asarray(annotation.geo, dtype=float)
    elif geometry == "mask":
        record["mask"] = np.asarray(annotation.geo) > 0
    return record


def samples_frame(records: Sequence[dict]) -> pd.DataFrame:
    """Metric samples ``[{"figure", "legend", "x", "y"}, ...]`` as a DataFrame.

    ``x`` and ``y`` are kept as given; ``nodes.compare_models.training.metric_value_at`` reads them
    as numbers (a sample whose x is null or not a number never decides; a y that is not a finite
    number loses the vote).

    Examples
    --------
    >>> samples_frame([{"figure": "f", "legend": "l", "x": "1", "y": 2}])["x"].tolist()
    ['1']
    """
    return pd.DataFrame(list(records), columns=list(METRIC_COLUMNS))


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_) and math.isfinite(float(value))


def record_problem(record: dict) -> str | None:
    """Why a record cannot be scored, or ``None``: the check behind "skip and count".

    Examples
    --------
    >>> record_problem({"type": "box", "label": "cat", "left": 0, "top": 0, "right": 2, "bottom": float("inf")})
    'coordinate bottom inf is not a finite number'
    >>> record_problem({"type": "class", "label": "cat", "model_id": "m", "confidence": "high"})
    "confidence 'high' is not a finite number"
    """
    geometry = ANNOTATION_GEOMETRY.get(record.get("type"))
    if geometry is None:
        return None  # not scored: ignored later whatever it holds
    if not isinstance(record.get("label"), str):
        return f"label {shorten(record.get('label'), 60)} is not a string"
    confidence = record.get("confidence")
    if record.get("model_id") is not None and confidence is not None and not _is_finite_number(confidence):
        return f"confidence {shorten(confidence, 60)} is not a finite number"
    if geometry == "box":
        for key in metrics.BOX_COLUMNS:
            if not _is_finite_number(record.get(key)):
                return f"coordinate {key} {shorten(record.get(key), 60)} is not a finite number"
    elif geometry == "polygon":
        try:
            points = np.asarray(record.get("polygon"), dtype=float)
        except (TypeError, ValueError):
            return "polygon coordinates are not numbers"
        if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] < 3:
            return f"polygon has {points.shape[0] if points.ndim == 2 else 0} points (at least 3 are needed)"
        if not np.isfinite(points).all():
            return "polygon has a null, NaN or infinite coordinate"
    elif geometry == "mask":
        mask = record.get("mask")
        if not isinstance(mask, np.ndarray) or mask.ndim != 2 or mask.size == 0:
            return "mask is not a 2-D image"
    return None


def _unreadable_reason(doc: dict, error: Exception) -> str:
    """A short reason for a document dtlpy could not read."""
    kind = doc.get("type")
    coordinates = doc.get("coordinates")
    if kind == "binary":
        return f"mask could not be decoded ({type(error).__name__})"
    if coordinates in (None, [], [[]], {}):
        return "empty coordinates"
    if "label" not in doc:
        return "no label"
    points = coordinates[0] if kind == "segment" and isinstance(coordinates, list) else coordinates
    if isinstance(points, list):
        for point in points:
            for axis in ("x", "y"):
                value = point.get(axis) if isinstance(point, dict) else None
                if not _is_finite_number(value):
                    return f"coordinate {axis} {shorten(value, 60)} is not a finite number"
    return f"unreadable ({type(error).__name__}: {shorten(str(error), 120)})"


def _doc_model_id(doc: dict) -> str | None:
    """The ``metadata.user.model.model_id`` of an annotation document (cut), ``None`` for ground truth."""
    model = None
    for key in ("metadata", "user", "model"):
        doc = doc.get(key) if isinstance(doc, dict) else None
        model = doc
    if model is None:
        return None
    model_id = model.get("model_id") if isinstance(model, dict) else None
    return cut(model_id, 60) if model_id is not None else ""


def read_annotations(docs: Iterable[dict]) -> tuple[list[dict], list[dict]]:
    """Records of the annotations that can be scored, and the malformed ones apart.

    Parameters
    ----------
    docs : iterable of dict
        Annotation platform JSON.

    Returns
    -------
    records : list of dict
        As :func:`annotation_record`, for every well-formed annotation.
    skipped : list of dict
        ``{"annotationId", "itemId", "type", "modelId", "reason"}`` per malformed annotation (see the
        module doc; ``modelId`` is ``None`` for ground truth); a warning is logged with the count.

    Examples
    --------
    >>> ok = {"id": "a1", "itemId": "i1", "type": "box", "label": "cat", "metadata": {},
    ...       "coordinates": [{"x": 0, "y": 0}, {"x": 5, "y": 5}]}
    >>> bad = dict(ok, id="a2", coordinates=[{"x": None, "y": 0}, {"x": 5, "y": 5}])
    >>> records, skipped = read_annotations([ok, bad])
    >>> len(records), skipped[0]["annotationId"], skipped[0]["reason"]
    (1, 'a2', 'coordinate x None is not a finite number')
    """
    records: list[dict] = []
    skipped: list[dict] = []
    for doc in docs:
        try:
            record = annotation_record(doc)
        except Exception as error:  # noqa: BLE001 - dtlpy raises many kinds for a malformed document
            problem: str | None = _unreadable_reason(doc, error)
        else:
            problem = record_problem(record)
        if problem is None:
            records.append(record)
            continue
        skipped.append(
            {
                "annotationId": cut(doc.get("id"), 60),
                "itemId": cut(doc.get("itemId"), 60),
                "type": cut(doc.get("type"), 60),
                "modelId": _doc_model_id(doc),
                "reason": problem,
            }
        )
    if skipped:
        first = skipped[0]
        logger.warning(
            "skipped %d malformed annotation(s) (counted in the report), e.g. annotation %s on item %s: %s",
            len(skipped),
            first["annotationId"],
            first["itemId"],
            first["reason"],
        )
    return records, skipped


def skipped_summary(skipped: Sequence[dict]) -> dict:
    """The report's ``skippedAnnotations``: count, count per reason, the first examples.

    Examples
    --------
    >>> skipped_summary([{"annotationId": "a", "itemId": "i", "type": "box", "reason": "empty coordinates"}])["count"]
    1
    """
    return {
        "count": len(skipped),
        "byReason": dict(Counter(entry["reason"] for entry in skipped).most_common(MAX_SKIPPED_EXAMPLES)),
        "examples": [dict(entry) for entry in skipped[:MAX_SKIPPED_EXAMPLES]],
    }
