"""DQL queries: pages of a dataset's items or annotations (``POST /datasets/{id}/query``, with
joins, ``intersect`` / ``except``, bulk update and bulk delete) and of small tables (datasets,
models, metrics, ...). A page costs ``O(log n + page size)`` once a query's match list is
cached (per dataset, until its next write). Sources and assumptions: emulator/README.md,
"Queries" and "Sources by module".
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
#: Largest page served: "Page size: The paging size being used, blocked by 1000 items per page"
#: (https://dataloop.ai/docs/api-dql); a larger ``pageSize`` gives pages of 1,000.
MAX_PAGE_SIZE = 1000
#: What a ``join`` of each resource joins, and on which fields (``dtlpy/entities/filters.py``,
#: ``Filters.add_join`` / ``__generate_custom_query``: ``on`` of an items query is
#: ``{"resource": "annotations", "local": "itemId", "forigen": "id"}``, of an annotations query
#: ``{"resource": "items", "local": "id", "forigen": "itemId"}``).
_JOINED = {"items": "annotations", "annotations": "items"}
#: Keys of an ``intersect`` / ``except`` sub-query (the cookbook's ``{"query": {"filter", "join"}}``).
_SUB_QUERY_KEYS = frozenset({"filter", "join", "intersect", "except", "resource"})


@dataclass(frozen=True)
class _Query:
    """A compiled dataset query: its filter, its join and its ``intersect`` / ``except`` queries."""

    predicate: Callable[[Mapping[str, Any]], bool]
    join: Callable[[Mapping[str, Any]], bool] | None
    intersect: _Query | None
    excepted: _Query | None


def _compile_query(body: Mapping[str, Any], resource: str, filter_: Any, where: str = "") -> _Query:
    """Compile ``filter_`` and the body's ``join`` / ``intersect`` / ``except`` (no document read).

    Raises ``dql.DQLError`` (HTTP 400) on a malformed part, naming it.
    """
    predicate = dql.compile_filter(filter_)
    join = body.get("join")
    join_predicate = None
    if join is not None:
        if not isinstance(join, Mapping):
            raise dql.DQLError(f"{where}join must be an object like {{'filter': {{'label': 'cat'}}}}")
        on = join.get("on")
        joined = _JOINED[resource]
        if on is not None and not (isinstance(on, Mapping) and on.get("resource", joined) == joined):
            raise dql.DQLError(f"{where}join.on: a query of {resource} joins {joined}, got {json.dumps(on)[:200]}")
        join_predicate = dql.compile_filter(join.get("filter"))
    subs: dict[str, _Query | None] = {}
    for key in ("intersect", "except"):
        part = body.get(key)
        if part is None:
            subs[key] = None
            continue
        if not (isinstance(part, Mapping) and set(part) == {"query"} and isinstance(part["query"], Mapping)):
            raise dql.DQLError(f'{where}{key} must be {{"query": {{"filter": ..., "join": ...}}}}')
        query = part["query"]
        unknown = sorted(str(k) for k in query if k not in _SUB_QUERY_KEYS)
        if unknown:
            raise dql.DQLError(f"{where}{key}.query: unknown key(s) {', '.join(unknown)}")
        if query.get("resource", resource) != resource:
            raise dql.DQLError(f"{where}{key}.query.resource must be {resource!r}")
        subs[key] = _compile_query(query, resource, query.get("filter"), f"{where}{key}.query.")
    return _Query(predicate, join_predicate, subs["intersect"], subs["except"])


class QueriesMixin(StoreBase):
    def query_dataset(self, dataset_id: str, body: Mapping[str, Any], encoded: bool = False) -> dict | bytes:
        """``POST /datasets/{id}/query``: page, bulk update or bulk delete items or annotations.

        With ``encoded`` a page comes back as its JSON bytes, encoded under the lock (no copy of
        the documents: fewer allocations and garbage-collector pauses on big datasets). Every
        part of the query is compiled, and a malformed one refused (400), before the lock is
        taken. The server adds no filter of its own: listing files only (``hidden: false``,
        ``type: "file"``) is dtlpy's default ``Filters`` (``dtlpy/entities/filters.py``,
        ``__add_defaults``), sent by the client.
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
            query = _compile_query(body, resource, rest)
            if body.get("sort"):
                sort_keys, id_only = dql.sort_key_function(body.get("sort"))
            else:  # the documented default sort (https://docs.dataloop.ai/docs/api-dql)
                sort_keys, id_only = dql.DEFAULT_SORT_KEYS, False
        except dql.DQLError as error:
            raise ApiError(400, f"invalid DQL: {error}") from None
        except RecursionError:
            raise ApiError(400, "invalid DQL: the filter is nested too deeply") from None
        if "update" in body and not isinstance(body["update"], Mapping):
            raise ApiError(400, "query 'update' must be an object, e.g. {'metadata': {'user': {...}}}")
        shape = json.dumps(
            {k: body.get(k) for k in ("join", "intersect", "except")}, sort_keys=True, default=str
        )  # part of the match-cache key: the same filter with another join is another query
        try:  # a $match over its work budget on some value: 400, before anything is written
            with self.lock:
                index = self._index(dataset_id)
                if resource == "items":
                    ids, table = index.item_ids, self.tables["items"]
                else:
                    ids, table = index.annotation_ids, self.tables["annotations"]
                predicate = self._bind(index, resource, query)
                scan = _Scan(index, resource, ids, table, rest, shape, predicate)
                if "update" in body or body.get("delete") is True:
                    matched = [table[i] for i in _all_matches(scan, bounds)]
                    if "update" in body:
                        return self._bulk_update(index, resource, matched, body)
                    return self._bulk_delete(index, resource, matched)
                descending = bool(sort_keys) and id_only and sort_keys[0][1]
                if sort_keys and not id_only:
                    if page_size == 0:  # a count: no need to sort
                        return _page_answer([], len(_all_matches(scan, bounds)), page_size, encoded)
                    matched_ids = _sorted_matches(scan, bounds, sort_keys)
                    chosen = matched_ids[page * page_size : (page + 1) * page_size + 1]
                    return _page_answer([table[i] for i in chosen], len(matched_ids), page_size, encoded)
                return _lazy_page(scan, bounds, page, page_size, descending, encoded)
        except dql.DQLError as error:
            raise ApiError(400, f"invalid DQL: {error}") from None

    def _bind(self, index: DatasetIndex, resource: str, query: _Query) -> Callable[[Mapping[str, Any]], bool]:
        """The compiled query as one predicate over the dataset's documents (caller holds the lock).

        A join keeps the documents related to at least one joined document matching the join's
        filter; ``intersect`` keeps those also matched by its query, ``except`` drops them
        (cookbook: "returns only the items that appear in all queries" / "excluding data from one
        set that also appears in another").
        """
        parts = [query.predicate]
        if query.join is not None:
            join, joined = query.join, None

            def related(doc: Mapping[str, Any]) -> bool:
                # the joined ids, computed on first use (not when the match list is cached)
                nonlocal joined
                if joined is None:
                    if resource == "items":
                        annotations = self.tables["annotations"]
                        joined = {annotations[i]["itemId"] for i in index.annotation_ids if join(annotations[i])}
                    else:
                        items = self.tables["items"]
                        joined = {i for i in index.item_ids if join(items[i])}
                return (doc["id"] if resource == "items" else doc.get("itemId")) in joined

            parts.append(related)
        if query.intersect is not None:
            parts.append(self._bind(index, resource, query.intersect))
        if query.excepted is not None:
            excluded = self._bind(index, resource, query.excepted)
            parts.append(lambda doc: not excluded(doc))
        if len(parts) == 1:
            return parts[0]
        return lambda doc: all(part(doc) for part in parts)

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
            deep_merge(doc, update, none_deletes=self.bulk_null_deletes)
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
        except RecursionError:
            raise ApiError(400, "invalid DQL: the filter is nested too deeply") from None
        try:  # a $match over its work budget on some value: 400
            with self.lock:
                start, stop = start_position(ids, bounds)
                docs = [table[i] for i in ids[start:stop] if predicate(table[i])]
                if sort_keys and not id_only:
                    docs = dql.sort_documents(docs, sort_keys)
                elif sort_keys and sort_keys[0][1]:
                    docs = docs[::-1]
                return _page_answer(docs[page * page_size : (page + 1) * page_size + 1], len(docs), page_size, encoded)
        except dql.DQLError as error:
            raise ApiError(400, f"invalid DQL: {error}") from None


@dataclass(frozen=True)
class _Scan:
    """What a dataset query reads: the dataset's index, the resource's sorted ids and documents,
    the filter without its keyset clause (``rest``), the query's ``join`` / ``intersect`` /
    ``except`` (``shape``, JSON) and the compiled predicate of all of it."""

    index: DatasetIndex
    resource: str
    ids: list[str]
    table: dict[str, dict]
    rest: Any
    shape: str
    predicate: Callable[[Mapping[str, Any]], bool]

    def cache_key(self, sort: Any = None) -> tuple:
        return (self.resource, json.dumps(self.rest, sort_keys=True, default=str), self.shape, repr(sort))


def _all_matches(scan: _Scan, bounds: Mapping[str, str]) -> list[str]:
    """Ids (sorted) matching the query within the keyset bounds; cached per query and write.

    The cache key holds the filter, the join, ``intersect`` and ``except`` (a bulk update of
    the same filter with another join is another match list). A filter that requires ``id $in
    [...]`` (a bulk update of chosen items) tests only those ids' documents (binary search in
    the dataset's sorted ids), not the whole dataset.
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
    cached = _cached(index, scan.cache_key(), lambda: [i for i in ids if predicate(table[i])])
    if bounds:
        start, stop = start_position(cached, bounds)
        return cached[start:stop]
    return list(cached)


def _cached(index: DatasetIndex, key: tuple, compute: Callable[[], list[str]]) -> list[str]:
    cached = index.match_cache.get(key)
    if cached is None:
        cached = compute()
        index.match_cache[key] = cached
        while len(index.match_cache) > _MATCH_CACHE_SIZE:
            index.match_cache.popitem(last=False)
    else:
        index.match_cache.move_to_end(key)
    return cached


def _sorted_matches(scan: _Scan, bounds: Mapping[str, str], sort_keys: list) -> list[str]:
    """Matching ids in the order of ``sort_keys``; cached like :func:`_all_matches` when unbounded."""

    def compute() -> list[str]:
        docs = dql.sort_documents([scan.table[i] for i in _all_matches(scan, bounds)], sort_keys)
        return [d["id"] for d in docs]

    if bounds:
        return compute()
    return _cached(scan.index, scan.cache_key(sort_keys), compute)


def _lazy_page(
    scan: _Scan, bounds: Mapping[str, str], page: int, page_size: int, descending: bool, encoded: bool
) -> dict | bytes:
    cached = scan.index.match_cache.get(scan.cache_key())
    if cached is None:
        # first page of a new query: scan once, cache the matches for the next pages and counts
        cached = _all_matches(scan, {})
    start, stop = start_position(cached, bounds)
    window = cached[start:stop]
    if descending:
        window = window[::-1]
    total = len(window)
    chosen = window[page * page_size : (page + 1) * page_size + 1]
    return _page_answer([scan.table[i] for i in chosen], total, page_size, encoded)


def _paging(body: Mapping[str, Any]) -> tuple[int, int]:
    """``page`` and ``pageSize`` of a query body; a ``pageSize`` over :data:`MAX_PAGE_SIZE` is capped.

    Defaults: page 0 (https://docs.dataloop.ai/docs/api-dql: "The default value is 0"), page size
    1,000 (the same page: "In the SDK, the default value is 1000 items per page"; dtlpy always
    sends it). ``pageSize`` 0 is a count (dtlpy's ``items_count``).
    """
    page = body.get("page", 0)
    page_size = body.get("pageSize", MAX_PAGE_SIZE)
    if isinstance(page, bool) or not isinstance(page, int) or page < 0:
        raise ApiError(400, f"query 'page' must be an integer >= 0, got {page!r}")
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 0:
        raise ApiError(400, f"query 'pageSize' must be an integer >= 0 (0: count only), got {page_size!r}")
    return page, min(page_size, MAX_PAGE_SIZE)


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
