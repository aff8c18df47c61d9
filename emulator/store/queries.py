"""DQL queries: pages of a dataset's items or annotations (``POST /datasets/{id}/query``, with
joins, bulk update and bulk delete) and of small tables (datasets, models, metrics).

A page costs ``O(log n + page size)``: dtlpy's keyset bound (``{"id": {"$gt": last}}``) is
found with :mod:`bisect` in the dataset's sorted ids, and the full match list of a filter (for
``totalItemsCount``) is cached per dataset until the next write to that dataset.
"""

from __future__ import annotations

import bisect
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from emulator import dql
from emulator.store.base import ApiError, DatasetIndex, StoreBase, clone, deep_merge, now_iso, start_position

logger = logging.getLogger(__name__)

_MATCH_CACHE_SIZE = 64


class QueriesMixin(StoreBase):
    def query_dataset(self, dataset_id: str, body: Mapping[str, Any], encoded: bool = False) -> dict | bytes:
        """``POST /datasets/{id}/query``: page, bulk update or bulk delete items or annotations.

        With ``encoded`` a page comes back as its JSON bytes, encoded under the lock (no copy of
        the documents: fewer allocations and garbage-collector pauses on big datasets).
        """
        if not isinstance(body, Mapping):
            raise ApiError(400, "query body must be a JSON object")
        resource = body.get("resource", "items")
        if resource not in ("items", "annotations"):
            raise ApiError(400, f"query resource {resource!r} is not 'items' or 'annotations'")
        page, page_size = _paging(body)
        raw_filter = body.get("filter") or {}
        try:
            rest, bounds = dql.split_id_keyset(raw_filter)
            predicate = dql.compile_filter(rest)
            sort_keys, id_only = dql.sort_key_function(body.get("sort"))
            join = body.get("join")
            join_predicate = dql.compile_filter(join.get("filter")) if isinstance(join, Mapping) else None
        except dql.DQLError as error:
            raise ApiError(400, f"invalid DQL: {error}") from None
        if "update" in body and not isinstance(body["update"], Mapping):
            raise ApiError(400, "query 'update' must be an object, e.g. {'metadata': {'user': {...}}}")
        with self.lock:
            index = self._index(dataset_id)
            if resource == "items":
                ids, table = index.item_ids, self.tables["items"]
            else:
                ids, table = index.annotation_ids, self.tables["annotations"]
            if join_predicate is not None and resource == "items":
                joined = {
                    a["itemId"]
                    for a in (self.tables["annotations"][i] for i in index.annotation_ids)
                    if join_predicate(a)
                }
                base_predicate = predicate

                def predicate(doc: Mapping[str, Any]) -> bool:
                    return doc["id"] in joined and base_predicate(doc)

            scan = _Scan(index, resource, ids, table, rest, predicate)
            if "update" in body or body.get("delete") is True:
                matched = [table[i] for i in _all_matches(scan, bounds)]
                if "update" in body:
                    return self._bulk_update(index, resource, matched, body)
                return self._bulk_delete(index, resource, matched)
            descending = bool(sort_keys) and id_only and sort_keys[0][1]
            if sort_keys and not id_only:
                matched_ids = _all_matches(scan, bounds, join)
                docs = dql.sort_documents([table[i] for i in matched_ids], sort_keys)
                return _page_answer(docs[page * page_size : (page + 1) * page_size + 1], len(docs), page_size, encoded)
            return _lazy_page(scan, bounds, join, page, page_size, descending, encoded)

    def _bulk_update(self, index: DatasetIndex, resource: str, docs: list[dict], body: Mapping[str, Any]) -> dict:
        update = clone(dict(body["update"]))
        system_space = bool(body.get("systemSpace"))
        metadata = update.get("metadata")
        if isinstance(metadata, Mapping) and "system" in metadata and not system_space:
            metadata = {k: v for k, v in metadata.items() if k != "system"}
            update["metadata"] = metadata
        protected = {"id", "datasetId", "url", "createdAt", "creator", "filename", "itemId"}
        bad = sorted(set(update) & protected)
        if bad:
            raise ApiError(400, f"bulk update cannot change {', '.join(bad)}")
        stamp = now_iso()
        for doc in docs:
            deep_merge(doc, update, none_deletes=False)
            doc["updatedAt"] = stamp
        if docs:
            index.touch()
        logger.debug("bulk update of %d %s", len(docs), resource)
        return {"totalItemsCount": len(docs), "updated": len(docs), "resource": resource}

    def _bulk_delete(self, index: DatasetIndex, resource: str, docs: list[dict]) -> dict:
        for doc in list(docs):
            if resource == "items":
                self.delete_item(doc["id"])
            else:
                self.delete_annotation(doc["id"])
        index.touch()
        return {"totalItemsCount": len(docs), "deleted": len(docs), "resource": resource}

    def query_documents(self, docs: list[dict], body: Mapping[str, Any], encoded: bool = False) -> dict | bytes:
        """Filter, sort and page a small list of documents (datasets) with a DQL body."""
        table = {d["id"]: d for d in docs}
        return self._query_table(body, sorted(table), table, encoded)

    def _query_table(self, body: Mapping[str, Any], ids: list[str], table: dict, encoded: bool = False) -> dict | bytes:
        if not isinstance(body, Mapping):
            raise ApiError(400, "query body must be a JSON object")
        page, page_size = _paging(body)
        try:
            rest, bounds = dql.split_id_keyset(body.get("filter") or {})
            predicate = dql.compile_filter(rest)
            sort_keys, id_only = dql.sort_key_function(body.get("sort"))
        except dql.DQLError as error:
            raise ApiError(400, f"invalid DQL: {error}") from None
        with self.lock:
            start, stop = start_position(ids, bounds)
            docs = [table[i] for i in ids[start:stop] if predicate(table[i])]
            if sort_keys and not id_only:
                docs = dql.sort_documents(docs, sort_keys)
            elif sort_keys and sort_keys[0][1]:
                docs = docs[::-1]
            return _page_answer(docs[page * page_size : (page + 1) * page_size + 1], len(docs), page_size, encoded)


@dataclass(frozen=True)
class _Scan:
    """What a dataset query reads: the dataset's index, the resource's sorted ids and documents,
    the filter without its keyset clause (``rest``) and its compiled predicate (join included)."""

    index: DatasetIndex
    resource: str
    ids: list[str]
    table: dict[str, dict]
    rest: Any
    predicate: Callable[[Mapping[str, Any]], bool]

    def cache_key(self, join: Any) -> tuple:
        return (
            self.resource,
            json.dumps(self.rest, sort_keys=True, default=str),
            json.dumps(join, sort_keys=True, default=str),
        )


def _all_matches(scan: _Scan, bounds: Mapping[str, str], join: Any = None) -> list[str]:
    """Ids (sorted) matching the filter within the keyset bounds; cached per filter and write.

    A filter that requires ``id $in [...]`` (a bulk update of chosen items) tests only those
    ids' documents (binary search in the dataset's sorted ids), not the whole dataset.
    """
    ids, table, predicate, index = scan.ids, scan.table, scan.predicate, scan.index
    restriction = dql.id_restriction(scan.rest)
    if restriction is not None:
        found = []
        for item_id in sorted(restriction):
            position = bisect.bisect_left(ids, item_id)
            if position < len(ids) and ids[position] == item_id and predicate(table[item_id]):
                found.append(item_id)
        if bounds:
            start, stop = start_position(found, bounds)
            return found[start:stop]
        return found
    key = scan.cache_key(join)
    cached = index.match_cache.get(key)
    if cached is None:
        cached = [i for i in ids if predicate(table[i])]
        index.match_cache[key] = cached
        while len(index.match_cache) > _MATCH_CACHE_SIZE:
            index.match_cache.popitem(last=False)
    else:
        index.match_cache.move_to_end(key)
    if bounds:
        start, stop = start_position(cached, bounds)
        return cached[start:stop]
    return list(cached)


def _lazy_page(
    scan: _Scan, bounds: Mapping[str, str], join: Any, page: int, page_size: int, descending: bool, encoded: bool
) -> dict | bytes:
    cached = scan.index.match_cache.get(scan.cache_key(join))
    if cached is None:
        # first page of a new filter: scan once, cache the matches for the next pages and counts
        cached = _all_matches(scan, {}, join)
    start, stop = start_position(cached, bounds)
    window = cached[start:stop]
    if descending:
        window = window[::-1]
    total = len(window)
    chosen = window[page * page_size : (page + 1) * page_size + 1]
    return _page_answer([scan.table[i] for i in chosen], total, page_size, encoded)


def _paging(body: Mapping[str, Any]) -> tuple[int, int]:
    page = body.get("page", 0)
    page_size = body.get("pageSize", 1000)
    if isinstance(page, bool) or not isinstance(page, int) or page < 0:
        raise ApiError(400, f"query 'page' must be an integer >= 0, got {page!r}")
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 0:
        raise ApiError(400, f"query 'pageSize' must be an integer >= 0 (0: count only), got {page_size!r}")
    return page, page_size


def _page_answer(
    docs_plus_one: list[Mapping[str, Any]], total: int, page_size: int, encoded: bool = False
) -> dict | bytes:
    """A page answer from up to ``page_size + 1`` documents (the extra one means a next page).

    ``page_size`` 0 is a count query (dtlpy's ``items_count``, the adapter's item count): no
    items, only ``totalItemsCount``.
    """
    if page_size == 0:
        answer: dict[str, Any] = {"totalItemsCount": total, "totalPagesCount": 0, "hasNextPage": False, "items": []}
        return json.dumps(answer).encode("utf-8") if encoded else answer
    has_next = len(docs_plus_one) > page_size
    docs = docs_plus_one[:page_size]
    head = {
        "totalItemsCount": total,
        "totalPagesCount": (total + page_size - 1) // page_size,
        "hasNextPage": has_next,
    }
    if encoded:
        # one C-level encoding pass instead of copying every document (the caller holds the lock)
        return (json.dumps(head)[:-1] + ', "items": ' + json.dumps(docs) + "}").encode("utf-8")
    return {**head, "items": [clone(d) for d in docs]}
