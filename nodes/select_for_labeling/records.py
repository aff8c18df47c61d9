"""Select for Labeling's records: the batch ranking (pure), the record each chosen item gets,
the ranking's hidden item (upload, read back) and the annotation task of the chosen items.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from nodes.common.limits import cut, shorten
from nodes.select_for_labeling.config import SELECTION_ROOT, SelectionConfig
from nodes.select_for_labeling.pool import tags_of
from nodes.select_for_labeling.select import RECORD_FIELD, RECORD_KEY, Selection, recorded_selection

logger = logging.getLogger(__name__)

#: Where a run's claim on an item lives: ``metadata.user.activeLearning.claim`` (``{"id", "at"}``).
CLAIM_FIELD = "claim"
#: The hidden folder (a name starting with ``.``) of the dataset that holds one ranking item per run.
RANKING_DIR = "/.activelearning/selections"

__all__ = [
    "RANKING_DIR",
    "batch_ranking",
    "check_task_name",
    "chosen_items",
    "create_task",
    "existing_task",
    "is_written",
    "item_record",
    "ranked_ids",
    "ranking_file_name",
    "read_ranking",
    "upload_ranking",
    "with_record",
]


def batch_ranking(
    selection: Selection,
    config: SelectionConfig,
    model_id: str,
    dataset_id: str,
    execution_id: str | None,
    now: str,
    fallback_ids: Iterable[str] = (),
    strategy_used: str | None = None,
    claim_id: str | None = None,
) -> dict[str, Any]:
    """The batch ranking, stored once as the JSON of a hidden item: every chosen id with its score and rank.

    ``items[k]`` is ``{"itemId", "score", "rank": k + 1}`` (``score`` is ``None`` on a cold start).
    ``strategy`` is the score actually computed (``strategy_used``, e.g. ``least_confidence`` when
    margin fell back because the model's class count is unknown), ``requested`` the configured
    one; ``claimId`` is the run's claim on its items (the execution id in a pipeline).

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
        "strategy": strategy_used or config.strategy,
        "requested": config.strategy,
        "executionId": execution_id,
        "claimId": claim_id,
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
    """The ranking item's file name: ``<executionId>.json``, else ``<claimId>.json`` (a run outside a
    pipeline), else ``run-<fingerprint>.json``.

    The fingerprint is a SHA-256 of the ranking's canonical JSON (it holds ``selectedAt``, so two
    runs outside a pipeline never share a file). Characters a file name should not hold become ``_``.

    Examples
    --------
    >>> ranking_file_name({"executionId": "65f0c1/x"})
    '65f0c1_x.json'
    >>> ranking_file_name({"executionId": None, "claimId": "run-1f2e"})
    'run-1f2e.json'
    >>> ranking_file_name({"executionId": None, "items": []})[:4]
    'run-'
    """
    execution_id = ranking.get("executionId") or ranking.get("claimId")
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
        "requested": ranking.get("requested", ranking["strategy"]),
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


def is_written(doc: Mapping[str, Any], execution_id: str | None, tag: str, ranking_item_id: str) -> bool:
    """Whether the item already carries this execution's record, pointing to this ranking item, and the tag."""
    record = recorded_selection(doc.get("metadata"))
    return (
        execution_id is not None
        and isinstance(record, Mapping)
        and record.get("executionId") == execution_id
        and record.get("ranking") == ranking_item_id
        and tags_of(doc).get(tag) is True
    )


def with_record(
    doc: Mapping[str, Any], record: Mapping[str, Any], tag: str, claim: Mapping[str, Any] | None = None
) -> dict:
    """A copy of an item JSON as the platform has it after the bulk update (record, claim and tag merged).

    Examples
    --------
    >>> with_record({"id": "a"}, {"executionId": "e"}, "to_label")["metadata"]["system"]["tags"]
    {'to_label': True}
    """
    out = copy.deepcopy(dict(doc))
    metadata = out.setdefault("metadata", {})
    user = metadata.setdefault("user", {})
    if isinstance(user, dict):
        active = user.setdefault(RECORD_KEY, {})
        if isinstance(active, dict):
            active[RECORD_FIELD] = copy.deepcopy(dict(record))
            if claim is not None:
                active[CLAIM_FIELD] = copy.deepcopy(dict(claim))
    system = metadata.setdefault("system", {})
    if isinstance(system, dict):
        tags = system.setdefault("tags", {})
        if isinstance(tags, dict):
            tags[tag] = True
    return out


def upload_ranking(dataset: Any, ranking: Mapping[str, Any]) -> str:
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


def existing_task(dataset: Any, name: str) -> Any:
    """EDGE. The project's annotation task called ``name`` (names are unique in a project), or ``None``."""
    import dtlpy as dl

    found = dl.tasks.list(task_name=name, project_ids=[dataset.project_id])
    if found is None:
        raise RuntimeError(f"looking for task {shorten(name)} failed (dtlpy logged the error above)")
    return found[0] if len(found) else None


def _task_execution(task: Any) -> Any:
    metadata = getattr(task, "metadata", None)
    user = metadata.get("user") if isinstance(metadata, Mapping) else None
    active = user.get(RECORD_KEY) if isinstance(user, Mapping) else None
    return active.get("executionId") if isinstance(active, Mapping) else None


def check_task_name(dataset: Any, config: SelectionConfig, execution_id: str | None) -> Any:
    """EDGE. Before any write: the task of this execution when it exists; a name taken by another is an error."""
    if config.task is None:
        return None
    existing = existing_task(dataset, config.task.name)
    if existing is None:
        return None
    if execution_id is not None and _task_execution(existing) == execution_id:
        return existing
    raise ValueError(
        f"{SELECTION_ROOT}.task.name: {shorten(config.task.name)} is already the name of task {cut(existing.id, 80)} "
        "in the project; "
        'give each round its own name, e.g. "task": {"name": "label round 2"}'
    )


def create_task(dataset: Any, config: SelectionConfig, items: Sequence[Any], execution_id: str | None) -> Any:
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
        raise RuntimeError(f"creating task {shorten(task.name)} failed (dtlpy logged the error above)")
    logger.info("created annotation task %r (%s) with %d chosen items", task.name, created.id, len(items))
    return created
