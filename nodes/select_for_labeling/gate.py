"""Uncertainty Gate pipeline edge: one item in, scored, recorded, routed ``label`` or ``skip``.

:func:`run_gate` (called by ``main.ServiceRunner.score_item``) reads the node config from the
pipeline context and the item as the platform has it now, lists its annotations (one raw-JSON
query page), reads the number of the model's labels ``K`` (:func:`model_classes`, once per model
id and process), scores the model's predictions (:mod:`~nodes.select_for_labeling.scores`), writes
``metadata.user.activeLearning.selection`` with one ``PATCH`` (nothing when this execution's
record is already there) and routes the item by its score (:func:`~nodes.select_for_labeling.select.route_item`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from nodes.common.context import execution_id_of, node_config_from_context
from nodes.common.entities import check_entity_input
from nodes.common.limits import cut
from nodes.common.paging import MAX_PAGE_SIZE, json_pages
from nodes.select_for_labeling.config import GATE_ROOT, GateConfig
from nodes.select_for_labeling.scores import (
    PREDICTION_COLUMNS,
    model_class_count,
    predictions_from_annotations,
    resolve_model_id,
    score_items,
)
from nodes.select_for_labeling.select import (
    RECORD_FIELD,
    RECORD_KEY,
    recorded_selection,
    route_item,
    selection_record,
    utc_now,
)

logger = logging.getLogger(__name__)

PAGE_SIZE = MAX_PAGE_SIZE
#: Record keys compared to decide that a rerun has nothing to write (``selectedAt`` differs by design).
_GATE_COMPARED = ("score", "strategy", "requested", "modelId", "executionId", "fallback", "nClasses")
#: ``K`` per model id, read once per process: a model's labels do not change under a running pipeline.
_CLASS_COUNTS: dict[str, int | None] = {}

__all__ = ["gate_record", "list_item_annotations", "model_classes", "run_gate", "same_gate_record"]


def model_classes(model_id: str | None) -> int | None:
    """EDGE. ``K``, the number of the model's labels (one ``GET /ml/models/{id}`` per model id and process).

    :func:`~nodes.select_for_labeling.scores.model_class_count` of the model's JSON. ``None``
    (and a warning) when the model has no labels or cannot be read: the scores then fall back
    as :func:`~nodes.select_for_labeling.scores.score_items` says. A model the platform answers
    "not found" / "forbidden" for is remembered as ``None``; other failures (a timeout) are not
    remembered, so the next item asks again.

    Examples
    --------
    >>> model_classes(None) is None
    True
    """
    if model_id is None:
        return None
    if model_id in _CLASS_COUNTS:
        return _CLASS_COUNTS[model_id]
    import dtlpy as dl

    try:
        model = dl.models.get(model_id=model_id)
    except (dl.exceptions.NotFound, dl.exceptions.Forbidden, dl.exceptions.BadRequest) as error:
        logger.warning("model %s cannot be read (%s): the number of its labels is unknown", cut(model_id, 60), error)
        _CLASS_COUNTS[model_id] = None
        return None
    except dl.exceptions.PlatformException as error:
        logger.warning("reading model %s failed (%s): the number of its labels is unknown", cut(model_id, 60), error)
        return None
    count = model_class_count(model.to_json()) if model is not None else None
    if count is None:
        logger.warning("model %s has no labels: the number of its classes is unknown", cut(model_id, 60))
    _CLASS_COUNTS[model_id] = count
    return count


def list_item_annotations(item: Any) -> list[dict]:
    """EDGE. The item's annotations as raw JSON: one query page of up to 1,000 (``POST /datasets/{id}/query``).

    Examples
    --------
    >>> # annotations = list_item_annotations(dl.items.get(item_id="..."))
    """
    import dtlpy as dl

    filters = dl.Filters(resource=dl.FiltersResource.ANNOTATION, page_size=PAGE_SIZE)
    filters.add(field="itemId", values=item.id)
    return [doc for page in json_pages(item.annotations, filters, page_size=PAGE_SIZE) for doc in page]


def gate_record(
    score: float,
    fallback: bool,
    config: GateConfig,
    model_id: str | None,
    execution_id: str | None,
    now: str,
    strategy_used: str | None = None,
    n_classes: int | None = None,
) -> dict[str, Any]:
    """The gate's ``metadata.user.activeLearning.selection``: the batch record without ``rank``, with ``nClasses``.

    ``strategy`` is the score computed (``strategy_used``, default the configured one),
    ``requested`` the configured strategy and ``nClasses`` the ``K`` used (``None``: unknown).

    Examples
    --------
    >>> sorted(gate_record(0.7, False, GateConfig(), "m1", "e1", "2030-01-01T00:00:00Z"))
    ['executionId', 'fallback', 'modelId', 'nClasses', 'requested', 'score', 'selectedAt', 'strategy']
    >>> r = gate_record(0.2, True, GateConfig(), "m1", "e1", "t", "least_confidence")
    >>> r["strategy"], r["requested"], r["fallback"]
    ('least_confidence', 'margin', True)
    """
    used = strategy_used or config.strategy
    record = selection_record(score, used, model_id, None, execution_id, now, fallback, config.strategy)
    record.pop("rank")
    record["nClasses"] = n_classes
    return record


def same_gate_record(existing: Any, new: Mapping[str, Any]) -> bool:
    """Whether ``existing`` already says what ``new`` says (all but ``selectedAt``; scores to 1e-9).

    Examples
    --------
    >>> a = gate_record(0.7, False, GateConfig(), "m1", "e1", "t1")
    >>> same_gate_record(a, gate_record(0.7, False, GateConfig(), "m1", "e1", "t2"))
    True
    >>> same_gate_record(a, gate_record(0.7, False, GateConfig(), "m1", "e2", "t2"))
    False
    """
    if not isinstance(existing, Mapping):
        return False
    for key in _GATE_COMPARED:
        old, value = existing.get(key), new.get(key)
        if key == "score" and isinstance(old, int | float) and isinstance(value, int | float):
            if not math.isclose(float(old), float(value), abs_tol=1e-9):
                return False
        elif old != value:
            return False
    return True


def _read_item(item: Any) -> Any:
    """EDGE. The item as the platform has it now (one ``GET /items/{id}``)."""
    fresh = item.items.get(item_id=item.id)
    if fresh is None:
        raise RuntimeError(f"reading item {item.id} failed (dtlpy logged the error above)")
    return fresh


def _write_item_record(item: Any, record: Mapping[str, Any]) -> Any:
    """EDGE. One ``PATCH /items/{id}`` on a copy of ``item``: only the record changes (dtlpy sends the diff)."""
    import dtlpy as dl

    working = dl.Item.from_json(_json=item.to_json(), client_api=item._client_api, dataset=item._dataset)
    metadata = working.metadata
    user = metadata.setdefault("user", {})
    if not isinstance(user, dict):
        raise RuntimeError(f"item {item.id}: metadata.user is {type(user).__name__}, not an object; not overwriting it")
    active = user.setdefault(RECORD_KEY, {})
    if not isinstance(active, dict):
        raise RuntimeError(
            f"item {item.id}: metadata.user.{RECORD_KEY} is {type(active).__name__}, not an object; not overwriting it"
        )
    active[RECORD_FIELD] = dict(record)
    updated = working.update()
    if updated is None:
        raise RuntimeError(f"writing the selection record on item {item.id} failed (dtlpy logged the error above)")
    return updated


def run_gate(item: Any, progress: Any = None, context: Any = None) -> Any:
    """EDGE. The Uncertainty Gate: score ``item``, record the score, route it ``label`` or ``skip``.

    Requests: the node's pipeline (through ``context.node``) + 1 item read + 1 annotation query
    page (whatever the number of annotations up to 1,000) + 1 model read the first time margin or
    entropy sees a model id in the process (:func:`model_classes`) + 1 item ``PATCH``, the last only when the
    record differs (a rerun of the same execution writes nothing).

    Parameters
    ----------
    item : dl.Item
        An item with the model's predictions (annotations with ``metadata.user.model``).
    progress : dl.Progress, optional
        Receives ``action="label"`` when the score is at least ``threshold``, else ``"skip"``.
    context : dl.Context, optional
        ``context.node.metadata["customNodeConfig"]`` is the node config (defaults outside a
        pipeline); ``context.execution_id`` goes into the record.

    Returns
    -------
    dl.Item
        The item as updated (or as read, when nothing changed).

    Raises
    ------
    ValueError
        ``item`` is not a ``dl.Item``; a bad node config; several models predicted on the item
        and ``modelId`` is not set; ``modelId`` is set and the item carries predictions, none by
        that model; a malformed class-score vector. Nothing is written before the refusal.

    Examples
    --------
    >>> # main.ServiceRunner().score_item(item=item, progress=progress, context=context)
    """
    if item is None:
        raise ValueError("item: None; connect the Predict node's item output to the Uncertainty Gate")
    check_entity_input(item, "item", "item", "Uncertainty Gate", "the Predict node's item output")
    raw = node_config_from_context(context, logger, "the default node config")
    config = GateConfig.from_node_config(raw, GATE_ROOT)
    fresh = _read_item(item)
    annotations = list_item_annotations(fresh)
    model_id = resolve_model_id(annotations, config.model_id, fresh.id, f"{GATE_ROOT}.modelId")
    predictions = (
        predictions_from_annotations(annotations, model_id)
        if model_id is not None
        else pd.DataFrame(columns=[*PREDICTION_COLUMNS, "model_id"])
    )
    needs_k = len(predictions) and config.strategy in ("margin", "entropy")  # least confidence is 1 - p1 whatever K
    n_classes = model_classes(model_id) if needs_k else None
    scored = score_items(
        predictions, [fresh.id], config.strategy, config.aggregation, config.empty_score, config.seed, n_classes
    )
    score = float(scored.scores[0])
    action = route_item(score, config.threshold)
    record = gate_record(
        score,
        bool(scored.fallback[0]),
        config,
        model_id,
        execution_id_of(context),
        utc_now(),
        scored.strategy_used,
        n_classes,
    )
    if same_gate_record(recorded_selection(fresh.metadata), record):
        logger.info(
            "item %s: the record of this execution is already there (score %.4f): nothing written", fresh.id, score
        )
        result = fresh
    else:
        result = _write_item_record(fresh, record)
    logger.info(
        "item %s: %s score %.4f from %d prediction(s) of model %s (K=%s)%s -> %s (threshold %s)",
        fresh.id,
        scored.strategy_used,
        score,
        int(scored.n_predictions[0]),
        model_id,
        n_classes,
        f" (requested {config.strategy}: the model's number of labels is unknown)" if record["fallback"] else "",
        action,
        config.threshold,
    )
    if progress is not None:
        progress.update(action=action)
    return result
