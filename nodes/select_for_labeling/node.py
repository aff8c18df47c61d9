"""Select for Labeling pipeline edge: list from the platform, score and choose, write the records.

Two node functions, called by ``main.ServiceRunner``:

- :func:`run_gate` (Uncertainty Gate, ``score_item``): one item in. Reads the node config from
  the pipeline context, reads the item as the platform has it now (1 ``GET``), lists its
  annotations in one raw-JSON query page, scores the model's predictions
  (:func:`~nodes.select_for_labeling.scores.score_items`), writes
  ``metadata.user.activeLearning.selection`` with one ``PATCH`` (nothing when the record of this
  execution is already there) and routes the item with the progress action ``label`` / ``skip``.
- :func:`run_selection` (Select for Labeling, ``select_items``): validates ``selection_config``,
  lists the pool (item DQL, raw JSON, 1,000 a page, sorted by id) and the pool's ground truth and
  the model's predictions (one dataset-level annotation query joined with the pool filter, 1,000
  a page), drops items with ground truth or a test-subset tag, scores, chooses
  (:func:`~nodes.select_for_labeling.select.choose_items`) and writes:

  1. the batch ranking (every chosen id with its score and rank) once, on the model:
     ``model.metadata.user.activeLearning.selection`` (1 ``PATCH``);
  2. on the chosen items, one bulk update per chunk of 1,000 ids (``POST /datasets/{id}/query``
     with ``update``): the shared record ``metadata.user.activeLearning.selection`` and the tag
     ``metadata.system.tags.<tag> = true``;
  3. with ``task``: one annotation task holding the chosen items (dtlpy ``dataset.tasks.create``).

  Why the per-item score and rank are not in the item record: dtlpy 1.126.5 has no per-item
  bulk write. ``dataset.items.update(filters=..., update_values=..., system_update_values=...)``
  sends ``{"update": {"metadata": {"user": ..., "system": ...}}}`` once and the platform applies
  the same values to every match (``Filters.prepare(operation="update")``); the only other bulk
  item write, ``datasets.bulk_update_ml_subset`` (``/items/bulk-update-metadata``), also takes one
  update for a query. Per-item values would cost one ``PATCH`` per chosen item, which breaks the
  request bound, so they are stored once, on the model, where the item record points
  (``ranking``). See docs/nodes.md.

Requests of a selection: ``ceil(pool items / 1000)`` + ``ceil(listed annotations / 1000)`` reads
(+1 per listing when a page boundary falls on its end; + the feature-vector pages with
``featureSet``) and ``1 + ceil(chosen / 1000)`` writes (+1 with ``task``), independent of
annotations per item. A rerun of the same execution lists the pool, reads the model's ranking
(1 ``GET``) and returns the same items without writing; a run interrupted between its writes
finishes the missing ones. Bad input raises ``ValueError`` before any write.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from nodes.common.paging import MAX_PAGE_SIZE, json_pages
from nodes.select_for_labeling.config import GATE_ROOT, SELECTION_ROOT, GateConfig, SelectionConfig
from nodes.select_for_labeling.scores import (
    PREDICTION_COLUMNS,
    predictions_from_annotations,
    resolve_model_id,
    score_items,
)
from nodes.select_for_labeling.select import Selection, route_item, select_pool, selection_record

logger = logging.getLogger(__name__)

PAGE_SIZE = MAX_PAGE_SIZE
#: Chosen items per bulk update request.
WRITE_CHUNK = 1000
#: Where the record lives, under ``metadata.user`` of an item (and of the model, for a batch).
RECORD_KEY = "activeLearning"
RECORD_FIELD = "selection"
EXECUTION_FIELD = f"metadata.user.{RECORD_KEY}.{RECORD_FIELD}.executionId"
#: Record keys compared to decide that a rerun has nothing to write (``selectedAt`` differs by design).
_GATE_COMPARED = ("score", "strategy", "modelId", "executionId", "fallback")

__all__ = [
    "batch_ranking",
    "chosen_items",
    "gate_record",
    "item_record",
    "list_item_annotations",
    "list_pool_annotations",
    "list_pool_items",
    "read_annotation_page",
    "node_config_from_context",
    "run_gate",
    "run_selection",
    "same_gate_record",
]


# ---------------------------------------------------------------------------------------------
# Shared
# ---------------------------------------------------------------------------------------------


def node_config_from_context(context: Any) -> Mapping[str, Any] | None:
    """EDGE. The running node's ``customNodeConfig``, or ``None`` outside a pipeline.

    ``context.node`` resolves the pipeline (``GET /pipelines/{id}``) on first access.

    Examples
    --------
    >>> node_config_from_context(None) is None
    True
    """
    if context is None:
        logger.info("no context (running outside a pipeline): using the default node config")
        return None
    node = getattr(context, "node", None)
    if node is None:
        logger.info("context has no pipeline node (running outside a pipeline): using the default node config")
        return None
    metadata = node.metadata if isinstance(node.metadata, Mapping) else {}
    return metadata.get("customNodeConfig")


def _execution_id(context: Any) -> str | None:
    value = getattr(context, "execution_id", None) if context is not None else None
    return str(value) if value else None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _user_record(metadata: Any) -> Any:
    """``metadata.user.activeLearning.selection`` of an entity's metadata dict, or ``None``."""
    user = metadata.get("user") if isinstance(metadata, Mapping) else None
    active = user.get(RECORD_KEY) if isinstance(user, Mapping) else None
    return active.get(RECORD_FIELD) if isinstance(active, Mapping) else None


def _tags(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    system = (doc.get("metadata") or {}).get("system") or {}
    tags = system.get("tags") if isinstance(system, Mapping) else None
    return tags if isinstance(tags, Mapping) else {}


# ---------------------------------------------------------------------------------------------
# Uncertainty Gate
# ---------------------------------------------------------------------------------------------


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
    score: float, fallback: bool, config: GateConfig, model_id: str | None, execution_id: str | None, now: str
) -> dict[str, Any]:
    """The gate's ``metadata.user.activeLearning.selection``: the batch record without ``rank``.

    Examples
    --------
    >>> sorted(gate_record(0.7, False, GateConfig(), "m1", "e1", "2030-01-01T00:00:00Z"))
    ['executionId', 'fallback', 'modelId', 'score', 'selectedAt', 'strategy']
    """
    record = selection_record(score, config.strategy, model_id, None, execution_id, now, fallback)
    record.pop("rank")
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
    page (whatever the number of annotations up to 1,000) + 1 item ``PATCH``, the last only when
    the record differs (a rerun of the same execution writes nothing).

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
        A bad node config, or several models predicted on the item and ``modelId`` is not set.

    Examples
    --------
    >>> # main.ServiceRunner().score_item(item=item, progress=progress, context=context)
    """
    if item is None:
        raise ValueError("item: None; connect the Predict node's item output to the Uncertainty Gate")
    config = GateConfig.from_node_config(node_config_from_context(context), GATE_ROOT)
    fresh = _read_item(item)
    annotations = list_item_annotations(fresh)
    model_id = resolve_model_id(annotations, config.model_id, fresh.id, f"{GATE_ROOT}.modelId")
    predictions = (
        predictions_from_annotations(annotations, model_id)
        if model_id is not None
        else pd.DataFrame(columns=[*PREDICTION_COLUMNS, "model_id"])
    )
    scored = score_items(predictions, [fresh.id], config.strategy, config.aggregation, config.empty_score, config.seed)
    score = float(scored.scores[0])
    action = route_item(score, config.threshold)
    record = gate_record(score, bool(scored.fallback[0]), config, model_id, _execution_id(context), _now())
    if same_gate_record(_user_record(fresh.metadata), record):
        logger.info(
            "item %s: the record of this execution is already there (score %.4f): nothing written", fresh.id, score
        )
        result = fresh
    else:
        result = _write_item_record(fresh, record)
    logger.info(
        "item %s: %s score %.4f from %d prediction(s) of model %s%s -> %s (threshold %s)",
        fresh.id,
        config.strategy,
        score,
        int(scored.n_predictions[0]),
        model_id,
        " (fell back to least confidence)" if record["fallback"] else "",
        action,
        config.threshold,
    )
    if progress is not None:
        progress.update(action=action)
    return result


# ---------------------------------------------------------------------------------------------
# Select for Labeling: listing
# ---------------------------------------------------------------------------------------------


def _bad_request(error: BaseException | None) -> bool:
    """Whether ``error`` (or what caused it: ``json_pages`` wraps dtlpy's error) is an HTTP 400."""
    import dtlpy as dl

    while error is not None:
        if isinstance(error, dl.exceptions.BadRequest) or str(getattr(error, "status_code", "")) == "400":
            return True
        error = error.__cause__
    return False


def list_pool_items(dataset: Any, query: Mapping[str, Any], execution_id: str | None = None) -> list[dict]:
    """EDGE. The pool's item JSON (raw, 1,000 a page, sorted by id), plus items this execution already chose.

    With ``execution_id``, the filter is ``pool OR metadata.user.activeLearning.selection.executionId
    == execution_id`` in the same listing, so a rerun sees the items it tagged (which the default
    pool excludes) without another request. A pool with its own ``join`` cannot take the ``$or``:
    the already-chosen items are then listed by a second query.

    Raises
    ------
    ValueError
        The platform rejected the pool DQL (``selection_config.pool``).

    Examples
    --------
    >>> # docs = list_pool_items(dataset, SelectionConfig.from_json({"budget": 10}).pool_query(), "exec-1")
    """
    import dtlpy as dl

    def listing(dql: Mapping[str, Any]) -> list[dict]:
        custom = copy.deepcopy(dict(dql))
        custom["sort"] = {"id": "ascending"}  # explicit: offset pages of a stable order
        filters = dl.Filters(resource=dl.FiltersResource.ITEM, custom_filter=custom, page_size=PAGE_SIZE)
        try:
            return [doc for page in json_pages(dataset.items, filters, page_size=PAGE_SIZE) for doc in page]
        except Exception as error:
            if _bad_request(error):
                raise ValueError(
                    f"{SELECTION_ROOT}.pool: the platform rejected the pool DQL ({error}); fix the filter, e.g. "
                    '"pool": {"filter": {"$and": [{"dir": "/incoming"}]}}'
                ) from None
            raise

    if execution_id is None:
        return listing(query)
    mine = {EXECUTION_FIELD: execution_id}
    if "join" in query:
        docs = listing(query)
        seen = {d["id"] for d in docs}
        return docs + [d for d in listing({"filter": mine}) if d["id"] not in seen]
    return listing({**copy.deepcopy(dict(query)), "filter": {"$or": [copy.deepcopy(query["filter"]), mine]}})


def read_annotation_page(
    page: Iterable[Mapping[str, Any]], wanted: set[str] | frozenset[str], model_id: str
) -> tuple[pd.DataFrame, set[str]]:
    """One annotation page reduced to ``model_id``'s prediction records and the ids of items with ground truth.

    Ground truth is an annotation without ``metadata.user.model``; annotations of items outside
    ``wanted`` are ignored. Pages are reduced as they arrive, so a listing of a million
    annotations never holds its JSON at once.

    Examples
    --------
    >>> gt = {"itemId": "a", "label": "cat", "metadata": {}}
    >>> pred = {"itemId": "b", "type": "class", "label": "cat",
    ...         "metadata": {"user": {"model": {"model_id": "m", "confidence": 0.6}}}}
    >>> frame, ground_truth = read_annotation_page([gt, pred], {"a", "b"}, "m")
    >>> frame["item_id"].tolist(), ground_truth
    (['b'], {'a'})
    """
    inside = [doc for doc in page if doc.get("itemId") in wanted]
    ground_truth = {doc["itemId"] for doc in inside if _user_record_model(doc) is None}
    return predictions_from_annotations(inside, model_id), ground_truth


def list_pool_annotations(
    dataset: Any, query: Mapping[str, Any], item_ids: Iterable[str], model_id: str
) -> tuple[pd.DataFrame, set[str]]:
    """EDGE. ``model_id``'s predictions on the pool and the pool items with ground truth.

    One dataset annotation query, 1,000 a page: annotations without ``metadata.user.model``
    (ground truth) or with ``metadata.user.model.model_id == model_id``, joined with the pool's
    item filter (dtlpy's annotation -> item ``join``); each page is reduced by
    :func:`read_annotation_page` (rows outside ``item_ids`` are dropped, so a server that
    ignores the join still gives the right answer). Never one request per item.

    Examples
    --------
    >>> # predictions, ground_truth = list_pool_annotations(dataset, config.pool_query(), pool_ids, model.id)
    """
    import dtlpy as dl

    filters = dl.Filters(resource=dl.FiltersResource.ANNOTATION, page_size=PAGE_SIZE)
    filters.add(field="metadata.user.model.model_id", values=model_id, method=dl.FiltersMethod.OR)
    filters.add(
        field="metadata.user.model", values=False, operator=dl.FiltersOperations.EXISTS, method=dl.FiltersMethod.OR
    )
    if "join" not in query:
        filters.join = {
            "on": {"resource": dl.FiltersResource.ITEM.value, "local": "id", "forigen": "itemId"},
            "filter": copy.deepcopy(query["filter"]),
        }
    wanted = frozenset(item_ids)
    frames: list[pd.DataFrame] = []
    ground_truth: set[str] = set()
    for page in json_pages(dataset.annotations, filters, page_size=PAGE_SIZE):
        frame, page_truth = read_annotation_page(page, wanted, model_id)
        frames.append(frame)
        ground_truth |= page_truth
    frames = [f for f in frames if len(f)]
    predictions = pd.concat(frames, ignore_index=True) if frames else predictions_from_annotations([], model_id)
    return predictions, ground_truth


def _feature_set(dataset: Any, name: str) -> Any:
    """EDGE. The project's feature set called ``name``; ``ValueError`` when there is none."""
    import dtlpy as dl

    try:
        found = dataset.project.feature_sets.get(feature_set_name=name)
    except dl.exceptions.NotFound:
        found = None
    except dl.exceptions.PlatformException as error:
        if str(getattr(error, "status_code", "")) != "404":
            raise
        found = None
    if found is None:
        raise ValueError(
            f"{SELECTION_ROOT}.featureSet: {name!r} is not a feature set of project {dataset.project.name!r}; "
            "give the name of an existing feature set (e.g. the one an embedding model created), or leave "
            "featureSet out to cluster on the predicted class scores"
        )
    return found


def list_feature_vectors(feature_set: Any, dataset: Any, item_ids: Sequence[str]) -> dict[str, list[float]]:
    """EDGE. ``{item_id: vector}`` of ``feature_set`` on the pool (feature query pages of 1,000).

    Examples
    --------
    >>> # vectors = list_feature_vectors(project.feature_sets.get(feature_set_name="clip"), dataset, ids)
    """
    import dtlpy as dl

    filters = dl.Filters(resource=dl.FiltersResource.FEATURE, page_size=PAGE_SIZE)
    filters.add(field="featureSetId", values=feature_set.id)
    filters.add(field="datasetId", values=dataset.id)
    filters.context = {"projects": [dataset.project.id]}
    wanted = set(item_ids)
    vectors: dict[str, list[float]] = {}
    for page in json_pages(feature_set.features, filters, page_size=PAGE_SIZE):
        for doc in page:
            entity = doc.get("entityId")
            if entity in wanted and entity not in vectors:
                vectors[entity] = doc.get("value")
    return vectors


def feature_matrix(vectors: Mapping[str, Any], item_ids: Sequence[str], field: str) -> np.ndarray:
    """Rows of feature vectors aligned with ``item_ids``; items without one get the mean vector.

    Raises ``ValueError`` when no pool item has a vector or the vectors differ in length.

    Examples
    --------
    >>> feature_matrix({"a": [0, 2], "b": [2, 0]}, ["a", "b", "c"], "featureSet").tolist()
    [[0.0, 2.0], [2.0, 0.0], [1.0, 1.0]]
    """
    present = [i for i in item_ids if vectors.get(i) is not None]
    if not present:
        raise ValueError(
            f"{field}: no feature vector of this feature set is on any of the {len(item_ids)} pool items; "
            "extract features for the dataset first, or leave featureSet out"
        )
    lengths = {len(vectors[i]) for i in present}
    if len(lengths) != 1:
        raise ValueError(f"{field}: feature vectors of different lengths {sorted(lengths)}; use one feature set")
    rows = np.asarray([vectors[i] for i in present], dtype=float)
    if not np.all(np.isfinite(rows)):
        raise ValueError(f"{field}: feature vectors contain NaN or infinite values")
    matrix = np.tile(rows.mean(axis=0), (len(item_ids), 1))
    position = {item_id: n for n, item_id in enumerate(item_ids)}
    matrix[[position[i] for i in present]] = rows
    if len(present) < len(item_ids):
        logger.warning(
            "%d of %d pool items have no feature vector: they get the mean vector",
            len(item_ids) - len(present),
            len(item_ids),
        )
    return matrix


# ---------------------------------------------------------------------------------------------
# Select for Labeling: records (pure)
# ---------------------------------------------------------------------------------------------


def batch_ranking(
    selection: Selection,
    config: SelectionConfig,
    model_id: str,
    dataset_id: str,
    execution_id: str | None,
    now: str,
    fallback_ids: Iterable[str] = (),
) -> dict[str, Any]:
    """The batch record stored once, on the model: every chosen id with its score and rank.

    ``itemIds[k]`` has rank ``k + 1`` and score ``scores[k]`` (``None`` on a cold start).

    Examples
    --------
    >>> from nodes.select_for_labeling.select import choose_items
    >>> s = choose_items([0.2, 0.9], ["a", "b"], budget=5)
    >>> r = batch_ranking(s, SelectionConfig(budget=5), "m1", "d1", "e1", "t")
    >>> r["itemIds"], r["scores"], r["budgetExceedsPool"]
    (['b', 'a'], [0.9, 0.2], True)
    """
    fallback = set(fallback_ids)
    return {
        "executionId": execution_id,
        "selectedAt": now,
        "modelId": model_id,
        "datasetId": dataset_id,
        "strategy": config.strategy,
        "aggregation": config.aggregation,
        "diversity": config.diversity,
        "featureSet": config.feature_set,
        "seed": config.seed,
        "tag": config.tag,
        "method": selection.method,
        "budget": selection.budget,
        "poolSize": selection.pool_size,
        "chosen": len(selection.item_ids),
        "budgetExceedsPool": selection.budget_exceeds_pool,
        "quotaLimited": selection.quota_limited,
        "itemIds": [str(i) for i in selection.item_ids],
        "scores": [None if s is None else round(float(s), 6) for s in selection.scores],
        "fallbackItemIds": [str(i) for i in selection.item_ids if i in fallback],
        "summary": selection.summary(),
    }


def item_record(ranking: Mapping[str, Any]) -> dict[str, Any]:
    """The record every chosen item gets in the bulk update: the batch's shared part.

    Per-item ``score`` and ``rank`` are in the model's record that ``ranking`` points to
    (the platform's bulk update sets the same values on every item it matches).

    Examples
    --------
    >>> r = {"executionId": "e", "selectedAt": "t", "modelId": "m", "strategy": "margin", "tag": "to_label",
    ...      "method": "score", "budget": 2, "chosen": 2, "budgetExceedsPool": False}
    >>> item_record(r)["ranking"]
    {'resource': 'model', 'id': 'm', 'field': 'metadata.user.activeLearning.selection'}
    """
    return {
        "strategy": ranking["strategy"],
        "modelId": ranking["modelId"],
        "executionId": ranking["executionId"],
        "selectedAt": ranking["selectedAt"],
        "tag": ranking["tag"],
        "method": ranking["method"],
        "budget": ranking["budget"],
        "batchSize": ranking["chosen"],
        "budgetExceedsPool": ranking["budgetExceedsPool"],
        "ranking": {
            "resource": "model",
            "id": ranking["modelId"],
            "field": f"metadata.user.{RECORD_KEY}.{RECORD_FIELD}",
        },
    }


def _is_written(doc: Mapping[str, Any], execution_id: str | None, tag: str) -> bool:
    record = _user_record(doc.get("metadata"))
    return (
        execution_id is not None
        and isinstance(record, Mapping)
        and record.get("executionId") == execution_id
        and _tags(doc).get(tag) is True
    )


def _with_record(doc: Mapping[str, Any], record: Mapping[str, Any], tag: str) -> dict:
    """A copy of an item JSON as the platform has it after the bulk update (record + tag merged)."""
    out = copy.deepcopy(dict(doc))
    metadata = out.setdefault("metadata", {})
    user = metadata.setdefault("user", {})
    if isinstance(user, dict):
        active = user.setdefault(RECORD_KEY, {})
        if isinstance(active, dict):
            active[RECORD_FIELD] = copy.deepcopy(dict(record))
    system = metadata.setdefault("system", {})
    if isinstance(system, dict):
        tags = system.setdefault("tags", {})
        if isinstance(tags, dict):
            tags[tag] = True
    return out


# ---------------------------------------------------------------------------------------------
# Select for Labeling: writes
# ---------------------------------------------------------------------------------------------


def _store_ranking(model: Any, ranking: Mapping[str, Any]) -> None:
    """EDGE. One ``PATCH /ml/models/{id}`` (services not reloaded) on a copy of ``model``."""
    target = copy.copy(model)
    metadata = copy.deepcopy(model.metadata) if isinstance(model.metadata, dict) else {}
    user = metadata.setdefault("user", {})
    if not isinstance(user, dict):
        raise RuntimeError(f"model {model.id}: metadata.user is not an object; not overwriting it")
    active = user.setdefault(RECORD_KEY, {})
    if not isinstance(active, dict):
        raise RuntimeError(f"model {model.id}: metadata.user.{RECORD_KEY} is not an object; not overwriting it")
    active[RECORD_FIELD] = copy.deepcopy(dict(ranking))
    target.metadata = metadata
    updated = model.models.update(model=target, reload_services=False)
    if updated is None:
        raise RuntimeError(f"storing the batch ranking on model {model.id} failed (dtlpy logged the error above)")


def _bulk_write(dataset: Any, item_ids: Sequence[str], record: Mapping[str, Any], tag: str) -> int:
    """EDGE. One bulk update per chunk of 1,000 ids: the shared record and ``metadata.system.tags.<tag>``."""
    import dtlpy as dl

    requests = 0
    for start in range(0, len(item_ids), WRITE_CHUNK):
        chunk = list(item_ids[start : start + WRITE_CHUNK])
        filters = dl.Filters(resource=dl.FiltersResource.ITEM, use_defaults=False)
        filters.add(
            field="id", values=chunk, operator=dl.FiltersOperations.IN
        )  # Filters.add: custom_filter drops updates
        answer = dataset.items.update(
            filters=filters,
            update_values={RECORD_KEY: {RECORD_FIELD: copy.deepcopy(dict(record))}},
            system_update_values={"tags": {tag: True}},
            system_metadata=True,
        )
        if answer is None:
            raise RuntimeError(
                f"tagging chosen items {start + 1}-{start + len(chunk)} failed (dtlpy logged the error above); "
                "rerun the execution to finish the write"
            )
        requests += 1
    return requests


def _existing_task(dataset: Any, name: str) -> Any:
    """EDGE. The project's annotation task called ``name`` (names are unique in a project), or ``None``."""
    import dtlpy as dl

    found = dl.tasks.list(task_name=name, project_ids=[dataset.project_id])
    if found is None:
        raise RuntimeError(f"looking for task {name!r} failed (dtlpy logged the error above)")
    return found[0] if len(found) else None


def _task_execution(task: Any) -> Any:
    metadata = getattr(task, "metadata", None)
    user = metadata.get("user") if isinstance(metadata, Mapping) else None
    active = user.get(RECORD_KEY) if isinstance(user, Mapping) else None
    return active.get("executionId") if isinstance(active, Mapping) else None


def _check_task_name(dataset: Any, config: SelectionConfig, execution_id: str | None) -> Any:
    """EDGE. Before any write: the task of this execution when it exists; a name taken by another is an error."""
    if config.task is None:
        return None
    existing = _existing_task(dataset, config.task.name)
    if existing is None:
        return None
    if execution_id is not None and _task_execution(existing) == execution_id:
        return existing
    raise ValueError(
        f"{SELECTION_ROOT}.task.name: {config.task.name!r} is already the name of task {existing.id} in the project; "
        'give each round its own name, e.g. "task": {"name": "label round 2"}'
    )


def _create_task(dataset: Any, config: SelectionConfig, items: Sequence[Any], execution_id: str | None) -> Any:
    """EDGE. One annotation task holding ``items`` (dtlpy ``dataset.tasks.create``)."""
    task = config.task
    created = dataset.tasks.create(
        task_name=task.name,
        assignee_ids=list(task.assignees) or None,
        due_date=task.due_date,
        items=list(items),
        metadata={"user": {RECORD_KEY: {"executionId": execution_id, "tag": config.tag}}},
    )
    if created is None:
        raise RuntimeError(f"creating task {task.name!r} failed (dtlpy logged the error above)")
    logger.info("created annotation task %r (%s) with %d chosen items", task.name, created.id, len(items))
    return created


# ---------------------------------------------------------------------------------------------
# Select for Labeling: the node
# ---------------------------------------------------------------------------------------------


def _check_inputs(model: Any, dataset: Any) -> None:
    if model is None:
        raise ValueError("model: None; connect the model whose predictions are scored (e.g. the Best Model variable)")
    if dataset is None:
        raise ValueError("dataset: None; connect the dataset that holds the pool (e.g. the Raw Dataset variable)")


def chosen_items(dataset: Any, docs: Sequence[Mapping[str, Any]]) -> list[Any]:
    """EDGE (no request). ``dl.Item`` entities built from listed JSON with the dataset's client.

    Examples
    --------
    >>> # items = chosen_items(dataset, [doc_by_id[i] for i in selection.item_ids])
    """
    import dtlpy as dl

    return [
        dl.Item.from_json(_json=copy.deepcopy(dict(d)), client_api=dataset._client_api, dataset=dataset) for d in docs
    ]


def _finish(
    dataset: Any,
    config: SelectionConfig,
    ranking: Mapping[str, Any],
    docs_by_id: Mapping[str, Mapping[str, Any]],
    execution_id: str | None,
    task: Any = None,
) -> list[Any]:
    """EDGE. Write the chunks not yet written (+ the task), return the chosen items in rank order."""
    record = item_record(ranking)
    order = [i for i in ranking["itemIds"] if i in docs_by_id]
    missing = [i for i in ranking["itemIds"] if i not in docs_by_id]
    if missing:
        logger.warning("%d chosen item(s) are no longer in the dataset: left out", len(missing))
    todo = [i for i in order if not _is_written(docs_by_id[i], execution_id, config.tag)]
    if todo:
        _bulk_write(dataset, todo, record, config.tag)
        logger.info(
            "tagged %r and recorded %d chosen item(s) in %d bulk update(s)",
            config.tag,
            len(todo),
            math.ceil(len(todo) / WRITE_CHUNK),
        )
    else:
        logger.info("all %d chosen item(s) already carry this execution's record: nothing written", len(order))
    pending = set(todo)
    written = {i: (_with_record(docs_by_id[i], record, config.tag) if i in pending else docs_by_id[i]) for i in order}
    items = chosen_items(dataset, [written[i] for i in order])
    if config.task is not None and items:
        if task is not None:
            logger.info(
                "task %r (%s) of execution %s exists: not created again", config.task.name, task.id, execution_id
            )
        else:
            _create_task(dataset, config, items, execution_id)
    return items


def _rerun_ranking(model: Any, execution_id: str) -> Mapping[str, Any] | None:
    """EDGE. The batch ranking of ``execution_id`` on the model as the platform has it now (1 ``GET``)."""
    import dtlpy as dl

    fresh = dl.models.get(model_id=model.id)
    ranking = _user_record(fresh.metadata)
    if (
        isinstance(ranking, Mapping)
        and ranking.get("executionId") == execution_id
        and isinstance(ranking.get("itemIds"), list)
    ):
        return ranking
    return None


def run_selection(
    model: Any,
    dataset: Any,
    selection_config: Mapping[str, Any] | None = None,
    progress: Any = None,
    context: Any = None,
) -> list[Any]:
    """EDGE. Select for Labeling: choose ``budget`` pool items, record and tag them, return them.

    Parameters
    ----------
    model : dl.Model
        Whose predictions on the pool are scored (``metadata.user.model.model_id``); the batch
        ranking is stored on it.
    dataset : dl.Dataset
        Holds the pool.
    selection_config : dict
        See :class:`~nodes.select_for_labeling.config.SelectionConfig` (``budget`` is required).
    progress : dl.Progress, optional
        Receives the summary line as its message.
    context : dl.Context, optional
        ``context.execution_id`` makes the run idempotent (a rerun writes nothing).

    Returns
    -------
    list of dl.Item
        The chosen items, rank 1 first, as the platform has them after the writes.

    Raises
    ------
    ValueError
        Bad ``selection_config``, a pool DQL the platform rejects, a ``featureSet`` that does not
        exist, or a model that never predicted on the pool (for strategies that need
        predictions) — before any write.

    Examples
    --------
    >>> # main.ServiceRunner().select_items(model=model, dataset=dataset,
    >>> #                                   selection_config={"budget": 100, "diversity": "cluster"})
    """
    config = SelectionConfig.from_json(selection_config)
    _check_inputs(model, dataset)
    execution_id = _execution_id(context)
    feature_set = _feature_set(dataset, config.feature_set) if config.feature_set is not None else None
    task = _check_task_name(dataset, config, execution_id)
    query = config.pool_query()
    docs = list_pool_items(dataset, query, execution_id)
    docs_by_id = {d["id"]: d for d in docs}

    if execution_id is not None and any(_chosen_by(d, execution_id) for d in docs):
        ranking = _rerun_ranking(model, execution_id)
        if ranking is not None:
            logger.info("rerun of execution %s: returning its %d chosen item(s)", execution_id, len(ranking["itemIds"]))
            items = _finish(dataset, config, ranking, docs_by_id, execution_id, task)
            if progress is not None:
                progress.update(message=ranking.get("summary"))
            return items
        logger.warning(
            "items carry execution %s's record but the model's ranking is another one: choosing again", execution_id
        )

    # The pool: listed items that are not this execution's, with no test-subset tag and no ground truth.
    test_tags = set(config.test_subset_tags)
    pool = [d for d in docs if not (set(k for k, v in _tags(d).items() if v is True) & test_tags)]
    n_test = len(docs) - len(pool)
    predictions, ground_truth = list_pool_annotations(dataset, query, [d["id"] for d in pool], model.id)
    pool = [d for d in pool if d["id"] not in ground_truth]
    pool_ids = [d["id"] for d in pool]
    logger.info(
        "pool of dataset %s: %d items (%d left out with ground truth, %d with a test-subset tag %s)",
        dataset.id,
        len(pool_ids),
        len(ground_truth & set(docs_by_id)),
        n_test,
        sorted(test_tags),
    )
    if not pool_ids:
        logger.warning("the pool is empty: nothing to choose, nothing written")
        if progress is not None:
            progress.update(message="the pool is empty: nothing chosen")
        return []

    predictions = predictions[predictions["item_id"].isin(set(pool_ids))]
    cold = predictions.empty and config.strategy != "random"
    if cold and feature_set is None:
        raise ValueError(
            f"model: {model.id} ({getattr(model, 'name', '?')}) has no predictions on the {len(pool_ids)} pool items "
            f"of dataset {dataset.name!r}, and strategy {config.strategy!r} scores predictions; run Predict with "
            'this model on the pool first, or start cold with "strategy": "random" (or a "featureSet")'
        )
    features = None
    if feature_set is not None:
        features = feature_matrix(
            list_feature_vectors(feature_set, dataset, pool_ids), pool_ids, f"{SELECTION_ROOT}.featureSet"
        )
    if cold:
        logger.warning(
            "cold start: model %s has no predictions on the pool; k-center on feature set %r",
            model.id,
            config.feature_set,
        )
    selection, scored = select_pool(predictions, pool_ids, config, features)
    if selection.budget_exceeds_pool:
        logger.warning(
            "budget %d is larger than the pool (%d items): the whole pool is taken", config.budget, selection.pool_size
        )
    fallback_ids = [] if scored is None else scored.item_ids[scored.fallback].tolist()
    ranking = batch_ranking(selection, config, model.id, dataset.id, execution_id, _now(), fallback_ids)
    _store_ranking(model, ranking)
    items = _finish(dataset, config, ranking, docs_by_id, execution_id, task)
    logger.info("%s", selection.summary())
    if progress is not None:
        progress.update(message=selection.summary())
    return items


def _chosen_by(doc: Mapping[str, Any], execution_id: str) -> bool:
    record = _user_record(doc.get("metadata"))
    return isinstance(record, Mapping) and record.get("executionId") == execution_id


def _user_record_model(annotation: Mapping[str, Any]) -> Any:
    metadata = annotation.get("metadata")
    user = metadata.get("user") if isinstance(metadata, Mapping) else None
    model = user.get("model") if isinstance(user, Mapping) else None
    return model if isinstance(model, Mapping) else None
