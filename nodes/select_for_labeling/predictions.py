"""Prediction records: the model's predictions on items, from the platform's annotation JSON.

Pure (no dtlpy). :func:`predictions_from_annotations` turns annotation JSON into the records
:func:`~nodes.select_for_labeling.scores.score_items` scores, for the model
:func:`resolve_model_id` names; :func:`score_vector` checks a class-score vector
(``metadata.user.model.scores``). Importable from :mod:`~nodes.select_for_labeling.scores` too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from nodes.common.limits import cut, shorten

logger = logging.getLogger(__name__)

#: Annotation type of an item-level class prediction; every other type is an instance.
CLASS_TYPE = "class"
PREDICTION_COLUMNS = ("item_id", "label", "confidence", "type", "scores")
#: Where a class-score vector lives on a prediction annotation.
VECTOR_FIELD = "metadata.user.model.scores"
_BOOL_TYPES = frozenset({bool, np.bool_})

__all__ = [
    "CLASS_TYPE",
    "PREDICTION_COLUMNS",
    "VECTOR_FIELD",
    "prediction_model_ids",
    "predictions_frame",
    "predictions_from_annotations",
    "resolve_model_id",
    "score_vector",
]


def score_vector(value: Any, where: str) -> np.ndarray:
    """A class-score vector as a float array, or a ``ValueError`` naming the field and the fix.

    A vector is a non-empty flat list (or tuple, or 1-D array) of numbers in [0, 1], one per
    class; strings, nested lists, objects and booleans are refused.

    Examples
    --------
    >>> score_vector([0.7, 0.2, 0.1], "item i1").tolist()
    [0.7, 0.2, 0.1]
    >>> score_vector("0.7,0.3", "item i1")
    Traceback (most recent call last):
    ...
    ValueError: metadata.user.model.scores: '0.7,0.3' on item i1 is a str, not a flat list of class probabilities in [0, 1]; upload one number per class, e.g. [0.7, 0.2, 0.1], or leave scores out
    """
    problem, array = None, None
    if isinstance(value, np.ndarray | list | tuple):
        try:
            array = np.asarray(value)
        except (ValueError, TypeError):  # ragged nesting
            problem = "a nested list"
    else:
        problem = f"a {type(value).__name__}"
    if array is not None:
        if array.ndim != 1:
            problem = "a nested list" if array.ndim > 1 else f"a {type(value).__name__} scalar"
        elif array.size == 0:
            problem = "empty"
        elif array.dtype.kind not in "iuf" or (
            not isinstance(value, np.ndarray) and not _BOOL_TYPES.isdisjoint(map(type, value))
        ):
            bad = next(e for e in value if isinstance(e, bool | np.bool_) or not isinstance(e, int | float | np.number))
            problem = f"holding {shorten(bad, 40)}"
        else:
            array = array.astype(float)
            outside = ~np.isfinite(array) | (array < 0) | (array > 1)
            if outside.any():
                problem = f"holding {float(array[np.flatnonzero(outside)[0]])!r}"
    if problem is not None:
        raise ValueError(
            f"{VECTOR_FIELD}: {shorten(value.tolist() if isinstance(value, np.ndarray) else value, 80)} on {where} "
            f"is {problem}, not a flat list of class probabilities "
            "in [0, 1]; upload one number per class, e.g. [0.7, 0.2, 0.1], or leave scores out"
        )
    return array


def _model_info(annotation: Mapping[str, Any]) -> Mapping[str, Any] | None:
    metadata = annotation.get("metadata")
    user = metadata.get("user") if isinstance(metadata, Mapping) else None
    model = user.get("model") if isinstance(user, Mapping) else None
    return model if isinstance(model, Mapping) else None


def prediction_model_ids(annotations: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """The ids of the models that predicted the given annotations, sorted.

    A prediction is an annotation with ``metadata.user.model.model_id``; ground truth has none.

    Examples
    --------
    >>> prediction_model_ids([{"metadata": {"user": {"model": {"model_id": "m2"}}}},
    ...                       {"metadata": {"user": {"model": {"model_id": "m1"}}}}, {"metadata": {}}])
    ('m1', 'm2')
    """
    found = set()
    for annotation in annotations:
        model = _model_info(annotation)
        if model is not None and model.get("model_id") is not None:
            found.add(str(model["model_id"]))
    return tuple(sorted(found))


def resolve_model_id(
    annotations: Iterable[Mapping[str, Any]],
    configured: str | None,
    item_id: str = "?",
    field: str = "customNodeConfig.modelId",
) -> str | None:
    """Whose predictions to score: ``configured``, else the only model that predicted on the item.

    Parameters
    ----------
    annotations : iterable of dict
        The item's annotations as the platform returns them.
    configured : str or None
        The node's ``modelId``.
    item_id : str
        For the error message.
    field : str
        The config field named in the error message.

    Returns
    -------
    str or None
        ``None`` when no model predicted on the item (it scores ``emptyScore``).

    Raises
    ------
    ValueError
        When ``configured`` is ``None`` and several models predicted on the item, or when
        ``configured`` is set, the item carries predictions and none of them is by that model
        (scoring it as "no prediction" would send it to labelling for a wrong reason).

    Examples
    --------
    >>> ann = [{"metadata": {"user": {"model": {"model_id": "m1"}}}}]
    >>> resolve_model_id(ann, None), resolve_model_id([], None), resolve_model_id([], "m9")
    ('m1', None, 'm9')
    >>> resolve_model_id(ann, "m9", "i1", "modelId")
    Traceback (most recent call last):
    ...
    ValueError: modelId: 'm9' made none of the predictions on item i1, model m1 did; set modelId to the model whose predictions to score (e.g. "modelId": "m1") or run Predict with model m9 first
    """
    ids = prediction_model_ids(annotations)
    names = ", ".join(cut(i, 40) for i in ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
    if configured is not None:
        if ids and configured not in ids:
            did = f"model {names} did" if len(ids) == 1 else f"models {names} did"
            raise ValueError(
                f"{field}: {shorten(configured, 60)} made none of the predictions on item {cut(item_id, 60)}, {did}; "
                f'set modelId to the model whose predictions to score (e.g. "modelId": "{cut(ids[0], 40)}") '
                f"or run Predict with model {cut(configured, 60)} first"
            )
        return configured
    if len(ids) > 1:
        raise ValueError(
            f"{field}: not set, and item {cut(item_id, 60)} carries predictions of {len(ids)} models "
            f'({names}); set modelId to the model to score; example: "modelId": "{cut(ids[0], 40)}"'
        )
    return ids[0] if ids else None


def predictions_from_annotations(
    annotations: Iterable[Mapping[str, Any]],
    model_id: str | None = None,
) -> pd.DataFrame:
    """Prediction records (one row per predicted annotation) from the platform's annotation JSON.

    Keeps annotations with ``metadata.user.model`` (of ``model_id`` when given) and a numeric
    ``confidence``; predictions without a confidence are dropped and counted in the log. An
    optional class-score vector is read from ``metadata.user.model.scores`` and checked by
    :func:`score_vector` (a string, nested list or object there is a ``ValueError``).

    Parameters
    ----------
    annotations : iterable of dict
        ``{"id", "itemId", "type", "label", "metadata": {"user": {"model": {"model_id",
        "name", "confidence"}}}, ...}``.
    model_id : str, optional
        Keep only this model's predictions.

    Returns
    -------
    pandas.DataFrame
        Columns ``item_id``, ``label``, ``confidence``, ``type``, ``scores``, ``model_id``.

    Examples
    --------
    >>> ann = {"id": "a1", "itemId": "i1", "type": "class", "label": "cat",
    ...        "metadata": {"user": {"model": {"model_id": "m1", "name": "r", "confidence": 0.8}}}}
    >>> frame = predictions_from_annotations([ann, {"id": "a2", "itemId": "i1", "type": "class", "label": "dog"}])
    >>> frame[["item_id", "label", "confidence"]].to_dict("records")
    [{'item_id': 'i1', 'label': 'cat', 'confidence': 0.8}]
    """
    rows = []
    dropped = 0
    for annotation in annotations:
        model = _model_info(annotation)
        if model is None or model.get("model_id") is None:
            continue
        if model_id is not None and str(model["model_id"]) != model_id:
            continue
        confidence = model.get("confidence")
        if isinstance(confidence, bool) or not isinstance(confidence, int | float):
            dropped += 1
            continue
        vector = model.get("scores")
        if vector is not None:
            where = f"annotation {cut(annotation.get('id'), 60)} of item {cut(annotation.get('itemId'), 60)}"
            vector = score_vector(vector, where).tolist()
        rows.append(
            (
                annotation.get("itemId"),
                annotation.get("label"),
                float(confidence),
                annotation.get("type") or CLASS_TYPE,
                vector,
                str(model["model_id"]),
            )
        )
    if dropped:
        logger.warning("dropped %d prediction(s) without a numeric metadata.user.model.confidence", dropped)
    return pd.DataFrame(rows, columns=[*PREDICTION_COLUMNS, "model_id"])


def predictions_frame(records_by_item: Mapping[Any, Sequence[Mapping[str, Any]]]) -> pd.DataFrame:
    """Prediction records given as ``{item_id: [{"label", "confidence", "type", "scores"?}, ...]}``.

    Examples
    --------
    >>> predictions_frame({"i1": [{"label": "cat", "confidence": 0.9, "type": "class"}]}).shape
    (1, 5)
    """
    rows = [
        (item_id, r.get("label"), r.get("confidence"), r.get("type", CLASS_TYPE), r.get("scores"))
        for item_id, records in records_by_item.items()
        for r in records
    ]
    return pd.DataFrame(rows, columns=list(PREDICTION_COLUMNS))
