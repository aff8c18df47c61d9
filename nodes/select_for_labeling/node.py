"""Select for Labeling pipeline edge: list the pool, score and choose a batch, write the records.

:func:`run_selection` (called by ``main.ServiceRunner.select_items``) lists the pool items and the
pool's ground truth and model predictions as raw-JSON pages, chooses with
:func:`~nodes.select_for_labeling.select.select_pool`, then writes the batch ranking once as the
hidden item ``/.activelearning/selections/<executionId>.json``, one bulk update per 1,000 chosen
items (the shared record and the tag) and, with ``task``, one annotation task. Requests and the
reason per-item scores live in the ranking item: docs/nodes.md.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import logging
import math
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from nodes.common.context import execution_id_of, node_config_from_context
from nodes.common.paging import MAX_PAGE_SIZE, json_pages
from nodes.select_for_labeling.config import SELECTION_ROOT, SelectionConfig, merge_selection_config
from nodes.select_for_labeling.scores import predictions_from_annotations
from nodes.select_for_labeling.select import (
    RECORD_FIELD,
    RECORD_KEY,
    Selection,
    recorded_selection,
    select_pool,
    utc_now,
)

logger = logging.getLogger(__name__)

PAGE_SIZE = MAX_PAGE_SIZE
#: Chosen items per bulk update request.
WRITE_CHUNK = 1000
EXECUTION_FIELD = f"metadata.user.{RECORD_KEY}.{RECORD_FIELD}.executionId"
#: The hidden folder (a name starting with ``.``) of the dataset that holds one ranking item per run.
RANKING_DIR = "/.activelearning/selections"
#: Keys of a DQL request the node sets itself; a pool query may carry them, they are replaced.
REQUEST_KEYS = ("resource", "sort", "page", "pageSize")
#: The order of the pool listing (explicit: offset pages of a stable order).
POOL_SORT = {"id": "ascending"}

__all__ = [
    "POOL_SORT",
    "REQUEST_KEYS",
    "batch_ranking",
    "chosen_items",
    "in_hidden_folder",
    "item_record",
    "list_pool_annotations",
    "list_pool_items",
    "pool_request",
    "ranked_ids",
    "ranking_file_name",
    "read_annotation_page",
    "read_ranking",
    "run_selection",
    "with_own_items",
]


def _tags(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    system = (doc.get("metadata") or {}).get("system") or {}
    tags = system.get("tags") if isinstance(system, Mapping) else None
    return tags if isinstance(tags, Mapping) else {}


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


def pool_request(query: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a pool ``query`` as the node sends it: its own sort, paging left to the pager.

    A user's ``resource``, ``sort``, ``page`` and ``pageSize`` are accepted and replaced: the pool
    is listed as items, by id ascending, 1,000 a page (``nodes.common.paging.json_pages``).

    Examples
    --------
    >>> pool_request({"filter": {"dir": "/a"}, "resource": "items", "sort": {"filename": "descending"},
    ...               "page": 3, "pageSize": 10})
    {'filter': {'dir': '/a'}, 'sort': {'id': 'ascending'}}
    """
    request = {k: copy.deepcopy(v) for k, v in query.items() if k not in REQUEST_KEYS}
    request["sort"] = dict(POOL_SORT)
    return request


def with_own_items(query: Mapping[str, Any], execution_id: str | None) -> dict[str, Any]:
    """A copy of the pool ``query`` that also matches the items ``execution_id`` already recorded.

    ``pool OR metadata.user.activeLearning.selection.executionId == execution_id``; unchanged
    without an execution id or when the pool has its own ``join`` (which cannot take the ``$or``).

    Examples
    --------
    >>> with_own_items({"filter": {"dir": "/a"}}, "e1")["filter"]["$or"][1]
    {'metadata.user.activeLearning.selection.executionId': 'e1'}
    >>> with_own_items({"filter": {"dir": "/a"}}, None)
    {'filter': {'dir': '/a'}}
    """
    out = copy.deepcopy(dict(query))
    if execution_id is None or "join" in query:
        return out
    out["filter"] = {"$or": [out["filter"], {EXECUTION_FIELD: execution_id}]}
    return out


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
        custom = pool_request(dql)
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
    if "join" in query:
        docs = listing(query)
        seen = {d["id"] for d in docs}
        return docs + [d for d in listing({"filter": {EXECUTION_FIELD: execution_id}}) if d["id"] not in seen]
    return listing(with_own_items(query, execution_id))


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
    """The batch ranking, stored once as the JSON of a hidden item: every chosen id with its score and rank.

    ``items[k]`` is ``{"itemId", "score", "rank": k + 1}`` (``score`` is ``None`` on a cold start).

    Examples
    --------
    >>> from nodes.select_for_labeling.select import choose_items
    >>> s = choose_items([0.2, 0.9], ["a", "b"], budget=5)
    >>> r = batch_ranking(s, SelectionConfig(budget=5), "m1", "d1", "e1", "t")
    >>> r["items"], r["budgetExceedsPool"]
    ([{'itemId': 'b', 'score': 0.9, 'rank': 1}, {'itemId': 'a', 'score': 0.2, 'rank': 2}], True)
    """
    fallback = set(fallback_ids)
    return {
        "modelId": model_id,
        "strategy": config.strategy,
        "executionId": execution_id,
        "selectedAt": now,
        "budget": selection.budget,
        "poolSize": selection.pool_size,
        "budgetExceedsPool": selection.budget_exceeds_pool,
        "method": selection.method,
        "items": [
            {"itemId": str(i), "score": None if s is None else round(float(s), 6), "rank": k + 1}
            for k, (i, s) in enumerate(zip(selection.item_ids, selection.scores, strict=True))
        ],
        "datasetId": dataset_id,
        "aggregation": config.aggregation,
        "diversity": config.diversity,
        "featureSet": config.feature_set,
        "seed": config.seed,
        "tag": config.tag,
        "chosen": len(selection.item_ids),
        "quotaLimited": selection.quota_limited,
        "fallbackItemIds": [str(i) for i in selection.item_ids if i in fallback],
        "summary": selection.summary(),
    }


def ranked_ids(ranking: Mapping[str, Any]) -> list[str]:
    """The chosen item ids of a batch ranking, rank 1 first.

    Examples
    --------
    >>> ranked_ids({"items": [{"itemId": "b", "score": 0.2, "rank": 2}, {"itemId": "a", "score": 0.9, "rank": 1}]})
    ['a', 'b']
    """
    return [str(e["itemId"]) for e in sorted(ranking["items"], key=lambda e: e["rank"])]


def ranking_file_name(ranking: Mapping[str, Any]) -> str:
    """The ranking item's file name: ``<executionId>.json``, or ``run-<fingerprint>.json`` outside a pipeline.

    The fingerprint is a SHA-256 of the ranking's canonical JSON (it holds ``selectedAt``, so two
    runs outside a pipeline never share a file). Characters a file name should not hold become ``_``.

    Examples
    --------
    >>> ranking_file_name({"executionId": "65f0c1/x"})
    '65f0c1_x.json'
    >>> ranking_file_name({"executionId": None, "items": []})[:4]
    'run-'
    """
    execution_id = ranking.get("executionId")
    if execution_id:
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", str(execution_id)).lstrip(".") or "_"
    else:
        canonical = json.dumps(ranking, sort_keys=True, separators=(",", ":"), default=str)
        stem = "run-" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:20]
    return f"{stem}.json"


def item_record(ranking: Mapping[str, Any], ranking_item_id: str) -> dict[str, Any]:
    """The record every chosen item gets in the bulk update: the batch's shared part.

    Per-item ``score`` and ``rank`` are in the ranking item whose id is ``ranking`` (the
    platform's bulk update sets the same values on every item it matches).

    Examples
    --------
    >>> r = {"executionId": "e", "selectedAt": "t", "modelId": "m", "strategy": "margin", "tag": "to_label",
    ...      "method": "score", "budget": 2, "chosen": 2, "budgetExceedsPool": False}
    >>> item_record(r, "it-1")["ranking"]
    'it-1'
    """
    return {
        "strategy": ranking["strategy"],
        "modelId": ranking["modelId"],
        "executionId": ranking["executionId"],
        "selectedAt": ranking["selectedAt"],
        "ranking": str(ranking_item_id),
        "tag": ranking["tag"],
        "method": ranking["method"],
        "budget": ranking["budget"],
        "batchSize": ranking["chosen"],
        "budgetExceedsPool": ranking["budgetExceedsPool"],
    }


def in_hidden_folder(doc: Mapping[str, Any]) -> bool:
    """Whether an item JSON is hidden or lies in a folder whose name starts with ``.``.

    The platform hides such items (dtlpymetrics uploads its scores to ``/.modelscores`` and finds
    them with ``hidden: true``); the node never chooses one (its own rankings live in
    ``/.activelearning/selections``), even from a user pool DQL without ``hidden: false``.

    Examples
    --------
    >>> in_hidden_folder({"filename": "/.activelearning/selections/e1.json"})
    True
    >>> in_hidden_folder({"dir": "/incoming", "filename": "/incoming/.a.jpg"})
    False
    """
    if doc.get("hidden") is True:
        return True
    directory = doc.get("dir") or posixpath.dirname(str(doc.get("filename") or "/"))
    return any(part.startswith(".") for part in str(directory).split("/"))


def _is_written(doc: Mapping[str, Any], execution_id: str | None, tag: str, ranking_item_id: str) -> bool:
    """Whether the item already carries this execution's record, pointing to this ranking item, and the tag."""
    record = recorded_selection(doc.get("metadata"))
    return (
        execution_id is not None
        and isinstance(record, Mapping)
        and record.get("executionId") == execution_id
        and record.get("ranking") == ranking_item_id
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


def _upload_ranking(dataset: Any, ranking: Mapping[str, Any]) -> str:
    """EDGE. One upload (``POST /datasets/{id}/items``, overwrite): the ranking JSON as a hidden item; its id.

    The item is ``/.activelearning/selections/<executionId>.json`` in the pool's dataset, an entity
    this node creates (the model is never written). Overwrite: a run that stopped before its bulk
    updates uploads the same file again when rerun.
    """
    name = ranking_file_name(ranking)
    buffer = io.BytesIO(json.dumps(ranking, indent=1, sort_keys=False).encode("utf-8"))
    buffer.name = name
    uploaded = dataset.items.upload(local_path=buffer, remote_path=RANKING_DIR, overwrite=True)
    if uploaded is None or isinstance(uploaded, list | tuple) or not getattr(uploaded, "id", None):
        raise RuntimeError(
            f"uploading the batch ranking {RANKING_DIR}/{name} to dataset {dataset.id} failed "
            "(dtlpy logged the error above); nothing was tagged, rerun the execution"
        )
    logger.info(
        "stored the batch ranking of %d item(s) as %s (item %s)", ranking["chosen"], uploaded.filename, uploaded.id
    )
    return str(uploaded.id)


def read_ranking(dataset: Any, ranking_item_id: str) -> Any:
    """EDGE. The batch ranking JSON of the hidden item ``ranking_item_id`` (``GET /items/{id}`` + its stream).

    Examples
    --------
    >>> # ranking = read_ranking(dataset, item.metadata["user"]["activeLearning"]["selection"]["ranking"])
    >>> # {e["itemId"]: (e["score"], e["rank"]) for e in ranking["items"]}
    """
    item = dataset.items.get(item_id=ranking_item_id)
    if item is None:
        raise RuntimeError(f"reading ranking item {ranking_item_id} failed (dtlpy logged the error above)")
    data = item.download(save_locally=False)
    if data is None:
        raise RuntimeError(f"downloading ranking item {ranking_item_id} failed (dtlpy logged the error above)")
    return json.loads(data.getvalue().decode("utf-8"))


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
    ranking_item_id: str,
    docs_by_id: Mapping[str, Mapping[str, Any]],
    execution_id: str | None,
    task: Any = None,
) -> list[Any]:
    """EDGE. Write the chunks not yet written (+ the task), return the chosen items in rank order."""
    record = item_record(ranking, ranking_item_id)
    chosen = ranked_ids(ranking)
    order = [i for i in chosen if i in docs_by_id]
    missing = [i for i in chosen if i not in docs_by_id]
    if missing:
        logger.warning("%d chosen item(s) are no longer in the dataset: left out", len(missing))
    todo = [i for i in order if not _is_written(docs_by_id[i], execution_id, config.tag, record["ranking"])]
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


def _rerun_ranking(
    dataset: Any, docs: Iterable[Mapping[str, Any]], execution_id: str
) -> tuple[Mapping[str, Any], str] | None:
    """EDGE. The batch ranking of ``execution_id`` and its item id, read back from the hidden item
    the listed items' records point to (``GET /items/{id}`` + its stream); ``None`` when unreadable."""
    import dtlpy as dl

    pointers = {
        str(record["ranking"])
        for record in (recorded_selection(d.get("metadata")) for d in docs)
        if isinstance(record, Mapping) and record.get("executionId") == execution_id and record.get("ranking")
    }
    for ranking_item_id in sorted(pointers):
        try:
            ranking = read_ranking(dataset, ranking_item_id)
        except (dl.exceptions.NotFound, RuntimeError, ValueError) as error:  # gone or not a ranking; 5xx propagate
            logger.warning("ranking item %s of execution %s is unreadable: %s", ranking_item_id, execution_id, error)
            continue
        if (
            isinstance(ranking, Mapping)
            and ranking.get("executionId") == execution_id
            and isinstance(ranking.get("items"), list)
        ):
            return ranking, ranking_item_id
    return None


def _log_config_sources(node_config: Any, selection_config: Any) -> None:
    """One line: which selection fields the node config gave and which ``selection_config`` overrode."""
    node_keys = (
        {k for k in node_config if k not in ("name", "validation", "nodeName")}
        if isinstance(node_config, Mapping)
        else set()
    )
    given = set(selection_config) if isinstance(selection_config, Mapping) else set()
    logger.info(
        "selection config: node config fields %s, %s keys %s (overriding %s)",
        sorted(node_keys - given),
        SELECTION_ROOT,
        sorted(given),
        sorted(node_keys & given),
    )


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
        Whose predictions on the pool are scored (``metadata.user.model.model_id``); read only,
        never written.
    dataset : dl.Dataset
        Holds the pool; the batch ranking is uploaded into it as the hidden item
        ``/.activelearning/selections/<executionId>.json``.
    selection_config : dict or None
        See :class:`~nodes.select_for_labeling.config.SelectionConfig`. Its keys override the
        node's config fields (``budget``, ``strategy``, ``aggregation``, ``diversity``, ``tag``,
        ``seed``, ``featureSet``), a shallow merge
        (:func:`~nodes.select_for_labeling.config.merge_selection_config`); ``None`` or ``{}``
        uses the node config alone. A ``budget`` must come from one of the two.
    progress : dl.Progress, optional
        Receives the summary line as its message.
    context : dl.Context, optional
        ``context.node`` carries the node config (``customNodeConfig``; none outside a pipeline);
        ``context.execution_id`` makes the run idempotent (a rerun writes nothing).

    Returns
    -------
    list of dl.Item
        The chosen items, rank 1 first, as the platform has them after the writes.

    Raises
    ------
    ValueError
        Bad node config (``customNodeConfig.<field>``) or ``selection_config``, a pool DQL the platform rejects, a ``featureSet`` that does not
        exist, or a model that never predicted on the pool (for strategies that need
        predictions) — before any write.

    Examples
    --------
    >>> # main.ServiceRunner().select_items(model=model, dataset=dataset,
    >>> #                                   selection_config={"budget": 100, "diversity": "cluster"})
    """
    node_config = node_config_from_context(context, logger, "selection_config alone (no node config)")
    raw = merge_selection_config(node_config, selection_config)
    config = SelectionConfig.from_json(raw)
    _log_config_sources(node_config, selection_config)
    _check_inputs(model, dataset)
    execution_id = execution_id_of(context)
    feature_set = _feature_set(dataset, config.feature_set) if config.feature_set is not None else None
    task = _check_task_name(dataset, config, execution_id)
    query = config.pool_query()
    docs = list_pool_items(dataset, query, execution_id)
    docs_by_id = {d["id"]: d for d in docs}

    if execution_id is not None and any(_chosen_by(d, execution_id) for d in docs):
        found = _rerun_ranking(dataset, docs, execution_id)
        if found is not None:
            ranking, ranking_item_id = found
            logger.info("rerun of execution %s: returning its %d chosen item(s)", execution_id, len(ranking["items"]))
            items = _finish(dataset, config, ranking, ranking_item_id, docs_by_id, execution_id, task)
            if progress is not None:
                progress.update(message=ranking.get("summary"))
            return items
        logger.warning(
            "items carry execution %s's record but its ranking item cannot be read back: choosing again", execution_id
        )

    # The pool: listed items that are not hidden, with no test-subset tag and no ground truth.
    visible = [d for d in docs if not in_hidden_folder(d)]
    if len(visible) < len(docs):
        logger.info("left %d hidden item(s) out of the pool (ranking files, model scores)", len(docs) - len(visible))
    test_tags = set(config.test_subset_tags)
    pool = [d for d in visible if not (set(k for k, v in _tags(d).items() if v is True) & test_tags)]
    n_test = len(visible) - len(pool)
    # joined with the same filter as the listing: this execution's already-tagged items keep their predictions
    predictions, ground_truth = list_pool_annotations(
        dataset, with_own_items(query, execution_id), [d["id"] for d in pool], model.id
    )
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
    ranking = batch_ranking(selection, config, model.id, dataset.id, execution_id, utc_now(), fallback_ids)
    ranking_item_id = _upload_ranking(dataset, ranking)
    items = _finish(dataset, config, ranking, ranking_item_id, docs_by_id, execution_id, task)
    logger.info("%s", selection.summary())
    if progress is not None:
        progress.update(message=selection.summary())
    return items


def _chosen_by(doc: Mapping[str, Any], execution_id: str) -> bool:
    record = recorded_selection(doc.get("metadata"))
    return isinstance(record, Mapping) and record.get("executionId") == execution_id


def _user_record_model(annotation: Mapping[str, Any]) -> Any:
    metadata = annotation.get("metadata")
    user = metadata.get("user") if isinstance(metadata, Mapping) else None
    model = user.get("model") if isinstance(user, Mapping) else None
    return model if isinstance(model, Mapping) else None
