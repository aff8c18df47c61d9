"""Raw-JSON paging over dtlpy listings (the edge every node lists through).

:func:`json_pages` sends dtlpy's ``POST /datasets/{id}/query`` requests (items, annotations,
features) with an explicit sort and yields the documents without building entities;
:func:`offset_pages` does the same for the project-level queries dtlpy pages by offset
(``/ml/models/query``, ``/ml/metrics/query``). A query the platform refuses (HTTP 400) is an
error naming the query, where dtlpy's paged ``list`` logs it and returns an empty page. Uses the
repositories' private ``_list`` (dtlpy 1.126.5 is pinned; re-check when upgrading).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

logger = logging.getLogger(__name__)

#: Largest page the platform serves for items and annotations (dtlpy's own limit).
MAX_PAGE_SIZE = 1000

#: Explicit order of offset-paged (``custom_filter``) requests, and their tie-break.
ID_ORDER = {"id": "ascending"}

__all__ = ["ID_ORDER", "MAX_PAGE_SIZE", "build_entities", "count_matches", "json_pages", "offset_pages"]


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
        The platform refused the query (HTTP 400; the message names the query), or dtlpy
        answered ``None`` (an error it was configured to suppress).

    Notes
    -----
    A structured filter is paged by keyset like dtlpy's ``PagedEntities``: sorted by id
    ascending, each next request asks for page 0 of the filter AND ``id > last id`` (the filter
    nested whole, see ``_after``), so documents added or changed while paging are neither skipped
    nor repeated. A ``custom_filter`` (a raw DQL dict)
    cannot take that clause; it is paged by offset as dtlpy pages it (``page`` 0, 1, ... while
    ``hasNextPage``), sorted by the query's own ``sort`` with ``id`` ascending added as the last
    key (never the platform's default order), still one request per page and without entities. Either way there is one
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


def offset_pages(repository: Any, filters: Any, page_size: int | None = None) -> Iterator[list[dict]]:
    """EDGE. Page a project-level listing by offset, as dtlpy does, and yield each page's raw JSON.

    For the resources dtlpy's ``PagedEntities`` pages by offset (models: ``POST /ml/models/query``,
    metrics: ``POST /ml/metrics/query``; ``repositories/models.py`` ``_list``). The requests are
    the ones dtlpy's ``list`` sends (``filters.prepare()`` with ``page`` 0, 1, ... while
    ``hasNextPage``), one per page, minus the filter clauses its ``list`` adds: put those
    (``projectId`` for ``project.models``, ``modelId`` for ``model.metrics``) in ``filters``.

    Parameters
    ----------
    repository : dtlpy repository
        ``project.models`` or ``model.metrics`` (anything with dtlpy's ``_list(filters)``).
    filters : dtlpy.Filters
        A structured filter (not ``custom_filter``); never modified.
    page_size : int or None
        Documents per request, 1 to 1000; ``None`` keeps ``filters.page_size``.

    Yields
    ------
    list of dict
        The non-empty pages, in the platform's order.

    Raises
    ------
    ValueError
        ``page_size`` out of range, or ``filters`` is a ``custom_filter``.
    RuntimeError
        The platform refused the query (HTTP 400; the message names the query), or dtlpy
        answered ``None``.

    Examples
    --------
    >>> # filters = dl.Filters(resource=dl.FiltersResource.METRICS); filters.add(field="modelId", values=model.id)
    >>> # samples = [doc for page in offset_pages(model.metrics, filters) for doc in page]
    """
    base = copy.deepcopy(filters)
    if base.custom_filter is not None:
        raise ValueError("filters: offset_pages takes a structured filter; page a custom_filter with json_pages")
    base.page_size = _check_page_size(base.page_size if page_size is None else page_size)
    yield from _numbered_pages(repository, base, lambda request, page: setattr(request, "page", page))


def build_entities(repository: Any, docs: list[dict]) -> list[Any]:
    """EDGE (no request). dtlpy entities of listed ``docs``, built as the repository's ``list`` builds them.

    Examples
    --------
    >>> # models = [m for page in offset_pages(project.models, filters) for m in build_entities(project.models, page)]
    """
    return list(repository._build_entities_from_response(response_items=list(docs)))


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
    query["sort"] = _explicit_sort(query.get("sort"))

    def set_page(request: Any, page: int) -> None:
        request.custom_filter = copy.deepcopy(query)
        request.custom_filter["page"] = page

    yield from _numbered_pages(repository, base, set_page)


def _numbered_pages(repository: Any, base: Any, set_page: Callable[[Any, int], None]) -> Iterator[list[dict]]:
    """EDGE. Offset paging: a copy of ``base`` numbered 0, 1, ... by ``set_page``, while ``hasNextPage``."""
    page = 0
    while True:
        request = copy.deepcopy(base)
        set_page(request, page)
        docs, has_next = _request_page(repository, request)
        if docs:
            yield docs
        if not docs or not has_next:
            return
        page += 1


def _explicit_sort(sort: Any) -> dict:
    """The query's sort with ``id`` ascending as its last key (a total, explicit order).

    Examples
    --------
    >>> _explicit_sort(None), _explicit_sort({"filename": "descending"})
    ({'id': 'ascending'}, {'filename': 'descending', 'id': 'ascending'})
    """
    explicit = dict(sort) if isinstance(sort, dict) else {}
    explicit.setdefault("id", "ascending")
    return explicit


def describe_query(body: dict) -> str:
    """The query part of a request body (``filter``, ``join``, ``intersect``, ``except``) as short JSON.

    Examples
    --------
    >>> describe_query({"filter": {"dir": "/a"}, "page": 3, "resource": "items"})
    '{"filter": {"dir": "/a"}}'
    """
    query = {k: body[k] for k in ("filter", "join", "intersect", "except") if body.get(k) is not None}
    text = json.dumps(query, default=str, sort_keys=False)
    return text if len(text) <= 500 else text[:497] + "..."


def _request_page(repository: Any, request: Any) -> tuple[list[dict], bool]:
    """EDGE. One query request: the documents and whether more pages follow."""
    answer = _send(repository, request)
    return list(answer.get("items") or []), bool(answer.get("hasNextPage"))


def _send(repository: Any, request: Any) -> dict:
    """EDGE. One query request through dtlpy's ``_list``, whose refusals are errors naming the query."""
    import dtlpy as dl

    body = request.prepare()
    try:
        answer = repository._list(filters=request)
    except dl.exceptions.BadRequest as error:
        raise RuntimeError(
            f"the platform refused the {request.resource} query {describe_query(body)}: "
            f"{getattr(error, 'message', None) or error}"
        ) from error
    if answer is None:
        raise RuntimeError(
            f"listing {request.resource} failed for the query {describe_query(body)} (dtlpy logged the error above)"
        )
    return answer


def count_matches(repository: Any, filters: Any) -> int:
    """EDGE. How many documents ``filters`` matches (one request, ``totalItemsCount``).

    Unlike ``repository.list(filters).items_count``, which reads a refused query as 0 (dtlpy
    swallows the ``BadRequest`` of a paged list), a refused query raises ``RuntimeError`` naming
    it. ``filters`` is not modified.

    Examples
    --------
    >>> # count_matches(dataset.items, dl.Filters(custom_filter={"filter": {"dir": "/train"}}))
    """
    request = copy.deepcopy(filters)
    request.page = 0
    request.page_size = 1
    if request.custom_filter is not None:
        custom = copy.deepcopy(request.custom_filter)
        request.custom_filter = custom if "filter" in custom else {"filter": custom}
        request.custom_filter.update(page=0, pageSize=1)
    return int(_send(repository, request).get("totalItemsCount") or 0)
