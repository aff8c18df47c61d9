"""Raw-JSON paging over a dtlpy listing (the edge every node lists through).

dtlpy's ``repository.list`` builds an entity per document (``dl.Item``, ``dl.Annotation``), which
costs ~1.5 ms each and dominates the time of listing a large dataset. :func:`json_pages` sends the
same ``POST /datasets/{id}/query`` requests, one per page, and yields the documents as the server
returned them. It uses the repository's private ``_list`` (dtlpy 1.126.5 is pinned in
requirements.txt; re-check this module when upgrading).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from typing import Any

logger = logging.getLogger(__name__)

#: Largest page the platform serves for items and annotations (dtlpy's own limit).
MAX_PAGE_SIZE = 1000

__all__ = ["MAX_PAGE_SIZE", "json_pages"]


def _check_page_size(page_size: Any) -> int:
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(
            f"page_size: {page_size!r} is not an integer from 1 to {MAX_PAGE_SIZE}; use e.g. {MAX_PAGE_SIZE}"
        )
    return page_size


def json_pages(repository: Any, filters: Any, page_size: int | None = MAX_PAGE_SIZE) -> Iterator[list[dict]]:
    """EDGE. Page through a dtlpy listing and yield each page's raw JSON documents.

    Parameters
    ----------
    repository : dtlpy repository
        ``dataset.items`` or ``dataset.annotations`` (anything with dtlpy's ``_list(filters)``).
    filters : dtlpy.Filters
        What to list; never modified (a deep copy is paged). Joins (``filters.join``) and
        ``custom_filter`` queries are sent as dtlpy would send them.
    page_size : int or None, default 1000
        Documents per request, 1 to 1000. The default forces full pages whatever
        ``filters.page_size`` says; pass ``None`` to use ``filters.page_size`` as the caller
        set it (dtlpy's default for items and annotations is 1000).

    Yields
    ------
    list of dict
        The non-empty pages, in order; no document twice.

    Raises
    ------
    ValueError
        ``page_size`` out of range.
    RuntimeError
        dtlpy answered ``None`` (it logs the HTTP error itself and swallows it).

    Notes
    -----
    A structured filter is paged by keyset like dtlpy's ``PagedEntities``: sorted by id
    ascending, each next request asks for page 0 of the filter AND ``id > last id`` (the filter
    nested whole, see ``_after``), so documents added or changed while paging are neither skipped
    nor repeated. A ``custom_filter`` (a raw DQL dict)
    cannot take that clause; it is paged by offset as dtlpy pages it (``page`` 0, 1, ... while
    ``hasNextPage``), still one request per page and without entities. Either way there is one
    request per page, plus one when a page boundary falls on the last document.

    Examples
    --------
    >>> # filters = dl.Filters(resource=dl.FiltersResource.ANNOTATION)
    >>> # label_of = {doc["id"]: doc["label"] for page in json_pages(dataset.annotations, filters)
    >>> #             for doc in page}
    """
    import dtlpy as dl

    base = copy.deepcopy(filters)
    base.page_size = _check_page_size(base.page_size if page_size is None else page_size)
    base.page = 0
    if base.custom_filter is not None:
        yield from _offset_pages(repository, base)
        return
    base.sort_by(field="id", value=dl.FiltersOrderByDirection.ASCENDING)
    body = base.prepare()  # the first page's request, exactly as dtlpy sends it
    last_id = None
    while True:
        request = copy.deepcopy(base)
        if last_id is not None:
            request.custom_filter = _after(body, last_id)
        docs, has_next = _request_page(repository, request)
        if docs:
            yield docs
        if not docs or not has_next:
            return
        last_id = docs[-1]["id"]


def _after(body: dict, last_id: str) -> dict:
    """The request body of the page after ``last_id``: the whole filter AND ``id > last_id``.

    The filter is nested whole (``{"$and": [filter, {"id": {"$gt": last_id}}]}``) rather than
    the clause appended to its ``$and`` as dtlpy does: a filter with a top-level ``$or`` (OR
    clauses, e.g. "ground truth or these models' predictions") would otherwise carry the keyset
    beside it, where a server cannot tell it from the rest of the filter and re-matches the whole
    dataset for every page. Same documents, same order.
    """
    request = copy.deepcopy(body)
    clause = {"id": {"$gt": last_id}}
    request["filter"] = {"$and": [request["filter"], clause]} if request.get("filter") else {"$and": [clause]}
    request["page"] = 0
    return request


def _offset_pages(repository: Any, base: Any) -> Iterator[list[dict]]:
    """EDGE. Offset paging of a ``custom_filter`` query (dtlpy's own way for raw DQL)."""
    custom = copy.deepcopy(base.custom_filter)
    query = copy.deepcopy(custom) if "filter" in custom else {"filter": custom}
    query.setdefault("pageSize", base.page_size)  # dtlpy keeps a pageSize written in the query
    page = 0
    while True:
        request = copy.deepcopy(base)
        request.custom_filter = copy.deepcopy(query)
        request.custom_filter["page"] = page
        docs, has_next = _request_page(repository, request)
        if docs:
            yield docs
        if not docs or not has_next:
            return
        page += 1


def _request_page(repository: Any, request: Any) -> tuple[list[dict], bool]:
    """EDGE. One ``POST /datasets/{id}/query``: the documents and whether more pages follow."""
    answer = repository._list(filters=request)
    if answer is None:
        raise RuntimeError(f"listing {request.resource} failed (dtlpy logged the error above)")
    return list(answer.get("items") or []), bool(answer.get("hasNextPage"))
