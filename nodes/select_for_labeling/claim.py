"""Select for Labeling's claim on its chosen items, so runs at the same time never share an item.

Each chosen item is written (record, tag and ``metadata.user.activeLearning.claim``) by a bulk
update whose filter also requires the claim the run listed (compare-and-set); the run then
re-reads which of its items carry its claim. An item another run wrote in between is lost and
replaced from the rest of the pool. Rules and the platform assumption: docs/nodes.md.
"""

from __future__ import annotations

import copy
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from nodes.common.paging import MAX_PAGE_SIZE, json_pages
from nodes.select_for_labeling.records import CLAIM_FIELD
from nodes.select_for_labeling.select import RECORD_FIELD, RECORD_KEY

logger = logging.getLogger(__name__)

#: Item ids per conditional bulk update and per re-read.
WRITE_CHUNK = 1000
#: The claim's id field (DQL path).
CLAIM_ID_FIELD = f"metadata.user.{RECORD_KEY}.{CLAIM_FIELD}.id"
#: How many times a run replaces items another run took before it keeps what it holds.
MAX_CLAIM_ROUNDS = 5

__all__ = [
    "CLAIM_ID_FIELD",
    "MAX_CLAIM_ROUNDS",
    "claim_groups",
    "claim_of",
    "held_ids",
    "new_claim_id",
    "write_claimed",
]


def new_claim_id(execution_id: str | None) -> str:
    """The run's claim id: its execution id in a pipeline, else ``run-<random hex>``.

    Examples
    --------
    >>> new_claim_id("65f0c1"), new_claim_id(None)[:4]
    ('65f0c1', 'run-')
    """
    return execution_id or f"run-{uuid.uuid4().hex}"


def claim_of(doc: Mapping[str, Any]) -> str | None:
    """The claim id an item JSON carries (``metadata.user.activeLearning.claim.id``); ``None``
    when absent, ``null`` or not a string.

    Examples
    --------
    >>> claim_of({"metadata": {"user": {"activeLearning": {"claim": {"id": "e1"}}}}}), claim_of({})
    ('e1', None)
    """
    metadata = doc.get("metadata")
    user = metadata.get("user") if isinstance(metadata, Mapping) else None
    active = user.get(RECORD_KEY) if isinstance(user, Mapping) else None
    claim = active.get(CLAIM_FIELD) if isinstance(active, Mapping) else None
    value = claim.get("id") if isinstance(claim, Mapping) else None
    return value if isinstance(value, str) else None


def claim_groups(
    docs_by_id: Mapping[str, Mapping[str, Any]], item_ids: Sequence[str]
) -> list[tuple[str | None, list[str]]]:
    """``item_ids`` grouped by the claim each carried when listed (first seen first, order kept).

    Each group is written with one conditional update per 1,000 ids: "this claim is still there".

    Examples
    --------
    >>> docs = {"a": {}, "b": {"metadata": {"user": {"activeLearning": {"claim": {"id": "e0"}}}}}, "c": {}}
    >>> claim_groups(docs, ["a", "b", "c"])
    [(None, ['a', 'c']), ('e0', ['b'])]
    """
    groups: dict[str | None, list[str]] = {}
    for item_id in item_ids:
        groups.setdefault(claim_of(docs_by_id[item_id]), []).append(item_id)
    return list(groups.items())


def write_claimed(
    dataset: Any,
    item_ids: Sequence[str],
    docs_by_id: Mapping[str, Mapping[str, Any]],
    record: Mapping[str, Any],
    tag: str,
    claim: Mapping[str, Any],
) -> int:
    """EDGE. Write ``record``, ``tag`` and ``claim`` on each item whose claim is still the one it was listed with.

    One bulk update per group of :func:`claim_groups` and 1,000 ids: the filter is ``id $in
    [...]`` and ``claim.id`` equal to the listed one (or absent). An item another run wrote
    after the listing does not match and is left as that run wrote it. Returns the request count.

    Examples
    --------
    >>> # write_claimed(dataset, ["a", "b"], docs_by_id, record, "to_label", {"id": "exec-1", "at": now})
    """
    import dtlpy as dl

    requests = 0
    update = {RECORD_KEY: {RECORD_FIELD: copy.deepcopy(dict(record)), CLAIM_FIELD: copy.deepcopy(dict(claim))}}
    for seen, ids in claim_groups(docs_by_id, item_ids):
        for start in range(0, len(ids), WRITE_CHUNK):
            chunk = list(ids[start : start + WRITE_CHUNK])
            filters = dl.Filters(resource=dl.FiltersResource.ITEM, use_defaults=False)
            # Filters.add: a custom_filter drops the update
            filters.add(field="id", values=chunk, operator=dl.FiltersOperations.IN)
            if seen is None:
                filters.add(field=CLAIM_ID_FIELD, values=False, operator=dl.FiltersOperations.EXISTS)
            else:
                filters.add(field=CLAIM_ID_FIELD, values=seen)
            answer = dataset.items.update(
                filters=filters,
                update_values=copy.deepcopy(update),
                system_update_values={"tags": {tag: True}},
                system_metadata=True,
            )
            if answer is None:
                raise RuntimeError(
                    f"tagging {len(chunk)} chosen item(s) failed (dtlpy logged the error above); "
                    "rerun the execution to finish the write"
                )
            requests += 1
    return requests


def held_ids(dataset: Any, item_ids: Sequence[str], claim_id: str) -> set[str]:
    """EDGE. Which of ``item_ids`` carry the claim ``claim_id`` now (item queries of 1,000 ids).

    Examples
    --------
    >>> # held = held_ids(dataset, chosen, "exec-1")
    """
    import dtlpy as dl

    held: set[str] = set()
    for start in range(0, len(item_ids), WRITE_CHUNK):
        filters = dl.Filters(resource=dl.FiltersResource.ITEM, use_defaults=False, page_size=MAX_PAGE_SIZE)
        filters.add(field="id", values=list(item_ids[start : start + WRITE_CHUNK]), operator=dl.FiltersOperations.IN)
        filters.add(field=CLAIM_ID_FIELD, values=claim_id)
        for page in json_pages(dataset.items, filters, page_size=MAX_PAGE_SIZE):
            held.update(doc["id"] for doc in page)
    return held
