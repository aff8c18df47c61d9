"""Select for Labeling's listings: the pool items, the pool's ground truth and predictions, the
labelled items and the feature vectors, as raw-JSON pages (``nodes.common.paging.json_pages``),
never one request per item; and the subset tags the pipeline's Model Data Split nodes write.
"""

from __future__ import annotations

import copy
import logging
import posixpath
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from nodes.common.limits import cut
from nodes.common.paging import MAX_PAGE_SIZE, json_pages
from nodes.select_for_labeling.config import SELECTION_ROOT, SUBSET_TAGS
from nodes.select_for_labeling.scores import predictions_from_annotations
from nodes.select_for_labeling.select import RECORD_FIELD, RECORD_KEY

logger = logging.getLogger(__name__)

PAGE_SIZE = MAX_PAGE_SIZE
EXECUTION_FIELD = f"metadata.user.{RECORD_KEY}.{RECORD_FIELD}.executionId"
#: Keys of a DQL request the node sets itself; a pool query may carry them, they are replaced.
REQUEST_KEYS = ("resource", "sort", "page", "pageSize")
#: The order of the pool listing (explicit: offset pages of a stable order).
POOL_SORT = {"id": "ascending"}
#: The function of the Model Data Split pipeline node (dataloop.json), whose groups are subset tags.
DATA_SPLIT_FUNCTION = "data_split"
#: Subset tags of labelled items (used for training): their vectors are the core-set's "labelled" set.
LABELLED_SUBSET_TAGS = ("train", "validation")

__all__ = [
    "POOL_SORT",
    "REQUEST_KEYS",
    "feature_matrix",
    "feature_set_named",
    "held_out",
    "in_hidden_folder",
    "labelled_matrix",
    "list_feature_vectors",
    "list_labelled_ids",
    "list_pool_annotations",
    "list_pool_items",
    "pipeline_subset_tags",
    "pool_request",
    "read_annotation_page",
    "tags_of",
    "with_own_items",
]


def tags_of(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    """An item JSON's ``metadata.system.tags`` (``{}`` when absent or not an object).

    Examples
    --------
    >>> tags_of({"metadata": {"system": {"tags": {"test": True}}}}), tags_of({"metadata": None})
    ({'test': True}, {})
    """
    system = (doc.get("metadata") or {}).get("system") or {}
    tags = system.get("tags") if isinstance(system, Mapping) else None
    return tags if isinstance(tags, Mapping) else {}


def held_out(doc: Mapping[str, Any], held_out_tags: Iterable[str]) -> bool:
    """Whether the item carries one of ``held_out_tags`` (the value ``true``).

    Examples
    --------
    >>> held_out({"metadata": {"system": {"tags": {"test": True}}}}, ["test"])
    True
    """
    tags = tags_of(doc)
    return any(tags.get(t) is True for t in held_out_tags)


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
                    f"{SELECTION_ROOT}.pool: the platform rejected the pool DQL ({cut(str(error), 300)}); fix the filter, e.g. "
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


def feature_set_named(dataset: Any, name: str) -> Any:
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
            f"{SELECTION_ROOT}.featureSet: {cut(repr(name))} is not a feature set of project "
            f"{cut(repr(dataset.project.name), 80)}; "
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


def _user_record_model(annotation: Mapping[str, Any]) -> Any:
    metadata = annotation.get("metadata")
    user = metadata.get("user") if isinstance(metadata, Mapping) else None
    model = user.get("model") if isinstance(user, Mapping) else None
    return model if isinstance(model, Mapping) else None


def list_labelled_ids(
    dataset: Any, held_out_tags: Sequence[str], subset_tags: Sequence[str] = LABELLED_SUBSET_TAGS
) -> set[str]:
    """EDGE. Ids of the dataset's labelled items: tagged with one of ``subset_tags`` (train /
    validation), or with ground truth (an annotation without ``metadata.user.model``).

    Two item listings (1,000 a page): the tags (``$or``), and the items joined with their
    ground-truth annotations (dtlpy's item -> annotation ``join``): each item comes back once,
    however many annotations it has. Hidden items and items with a ``held_out_tags`` tag (the
    test subset: never trained on) are left out.

    Examples
    --------
    >>> # labelled = list_labelled_ids(dataset, config.held_out_tags)
    """
    import dtlpy as dl

    def base() -> Any:
        filters = dl.Filters(resource=dl.FiltersResource.ITEM, page_size=PAGE_SIZE)
        for tag in held_out_tags:
            filters.add(field=f"metadata.system.tags.{tag}", values=True, operator=dl.FiltersOperations.NOT_EQUAL)
        return filters

    tagged = base()
    for tag in subset_tags:
        tagged.add(field=f"metadata.system.tags.{tag}", values=True, method=dl.FiltersMethod.OR)
    with_truth = base()
    with_truth.add_join(field="metadata.user.model", values=False, operator=dl.FiltersOperations.EXISTS)
    found: set[str] = set()
    for filters in (tagged, with_truth):
        for page in json_pages(dataset.items, filters, page_size=PAGE_SIZE):
            found.update(doc["id"] for doc in page if not in_hidden_folder(doc))
    return found


def labelled_matrix(vectors: Mapping[str, Any], item_ids: Iterable[str], dim: int) -> np.ndarray | None:
    """Rows of the labelled items' feature vectors (those of length ``dim`` with finite values), or ``None``.

    Items without a vector are left out (a labelled item gives distances only where it is known).

    Examples
    --------
    >>> labelled_matrix({"a": [0, 1], "b": [1, 2, 3], "c": None}, ["a", "b", "c", "d"], 2).tolist()
    [[0.0, 1.0]]
    >>> labelled_matrix({}, ["a"], 2) is None
    True
    """
    rows = []
    for item_id in item_ids:
        value = vectors.get(item_id)
        if not isinstance(value, list | tuple) or len(value) != dim:
            continue
        try:
            row = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            continue
        if np.all(np.isfinite(row)):
            rows.append(row)
    return np.vstack(rows) if rows else None


def pipeline_subset_tags(context: Any) -> tuple[str, ...]:
    """EDGE (no request of its own). The group names of the Model Data Split nodes of the running pipeline.

    Read from ``context.pipeline`` (fetched once with the node config): every node whose function
    is ``data_split`` contributes its ``customNodeConfig.groups[*].name`` (a node without groups
    writes the defaults, :data:`~nodes.select_for_labeling.config.SUBSET_TAGS`). ``()`` outside a pipeline.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> split = NS(namespace=NS(function_name="data_split"),
    ...            metadata={"customNodeConfig": {"groups": [{"name": "gold"}, {"name": "test"}]}})
    >>> pipeline_subset_tags(NS(pipeline=NS(nodes=[split])))
    ('gold', 'test')
    >>> pipeline_subset_tags(None)
    ()
    """
    pipeline = getattr(context, "pipeline", None) if context is not None else None
    names: list[str] = []
    for node in getattr(pipeline, "nodes", None) or []:
        namespace = getattr(node, "namespace", None)
        if getattr(namespace, "function_name", None) != DATA_SPLIT_FUNCTION:
            continue
        metadata = getattr(node, "metadata", None)
        config = metadata.get("customNodeConfig") if isinstance(metadata, Mapping) else None
        groups = config.get("groups") if isinstance(config, Mapping) else None
        if not isinstance(groups, list) or not groups:
            names.extend(SUBSET_TAGS)
            continue
        names.extend(g["name"].strip() for g in groups if isinstance(g, Mapping) and isinstance(g.get("name"), str))
    return tuple(dict.fromkeys(n for n in names if n))
