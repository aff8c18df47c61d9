"""Model Data Split pipeline edge: one item in, tagged with its subset, routed by the progress action.

:func:`run_node` is called by ``main.ServiceRunner.data_split``; it reads the node config from
the pipeline context, reads the item as the platform has it now, makes the pure decisions of
:mod:`nodes.data_split.assign` (subset, which predictions become ground truth) and writes the
item's tags (nothing when they are already right), then reads them back to settle a race with a
concurrent execution.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

from nodes.common.context import node_config_from_context
from nodes.common.entities import check_entity_input
from nodes.common.paging import MAX_PAGE_SIZE, build_entities, json_pages
from nodes.data_split.assign import (
    carries_model,
    existing_subset,
    foreign_subset,
    ground_truth_metadata,
    known_subsets,
    settle_after_write,
    subset_for_item,
    tags_after_assignment,
    tags_changed,
    tags_patch,
)
from nodes.data_split.config import SplitConfig, _short

logger = logging.getLogger(__name__)


def _read_item(item: Any) -> Any:
    """Edge: the item as the platform has it now (one ``GET /items/{id}``)."""
    fresh = item.items.get(item_id=item.id)
    if fresh is None:
        raise RuntimeError(f"reading item {item.id} failed (dtlpy logged the error above)")
    return fresh


def _tags_of(item: Any) -> Any:
    return ((item.metadata or {}).get("system") or {}).get("tags")


def _convert_reviewed_predictions(item: Any, item_in_subset: bool) -> int:
    """Edge: reviewed pre-annotations become ground truth (1 listing + 1 PUT per converted annotation).

    Which ones is :func:`~nodes.data_split.assign.ground_truth_metadata`'s rule, per annotation.
    The listing is the request of ``item.annotations.list`` (1,000 a page) through
    :func:`~nodes.common.paging.json_pages`, so a refused query raises instead of reading as "no
    annotations".
    """
    import dtlpy as dl

    filters = dl.Filters(resource=dl.FiltersResource.ANNOTATION, page_size=MAX_PAGE_SIZE)
    filters.add(field="itemId", values=item.id)
    annotations = [
        annotation
        for page in json_pages(item.annotations, filters)
        for annotation in build_entities(item.annotations, page)
    ]
    converted = kept = 0
    for annotation in annotations:
        new_metadata = ground_truth_metadata(annotation.metadata, item_in_subset)
        if new_metadata is None:
            kept += carries_model(annotation.metadata)
            continue
        annotation.metadata = new_metadata  # our own entity, fresh from the listing
        result = annotation.annotations.update(annotations=annotation, system_metadata=True)
        if not result:
            raise RuntimeError(
                f"removing model metadata from annotation {annotation.id} of item {item.id} failed "
                "(dtlpy logged the error above)"
            )
        converted += 1
    if converted:
        logger.info("item %s: %d reviewed predictions became ground truth (model metadata removed)", item.id, converted)
    if kept:
        logger.info(
            "item %s is already in a subset: %d predictions stay predictions (e.g. Evaluate's; "
            'only annotations a reviewer approved, metadata.system.status "approved", become ground truth)',
            item.id,
            kept,
        )
    return converted


def _write_item_tags(item: Any, patch: dict) -> Any:
    """Edge: one ``PATCH /items/{id}`` whose body carries exactly the tag ``patch`` (``None`` removes).

    dtlpy sends the difference between the entity as read (``_platform_dict``) and as modified, and
    compares values with ``==`` (``1 == True``: a ``{"train": 1}`` would never be rewritten). The
    entity as read is therefore set so that the difference is ``patch``: a name to set is absent
    from it, a name to remove is ``true`` in it.
    """
    import dtlpy as dl

    working = dl.Item.from_json(_json=item.to_json(), client_api=item._client_api, dataset=item._dataset)
    working.metadata = copy.deepcopy(working.metadata) if isinstance(working.metadata, dict) else {}
    system = working.metadata.setdefault("system", {})
    current = system.get("tags") if isinstance(system.get("tags"), dict) else {}
    modified = {k: v for k, v in current.items() if k not in patch} | {k: v for k, v in patch.items() if v is not None}
    system["tags"] = modified
    origin = copy.deepcopy(working._platform_dict)
    origin_metadata = origin.get("metadata") if isinstance(origin.get("metadata"), dict) else {}
    origin["metadata"] = origin_metadata
    if not isinstance(origin_metadata.get("system"), dict):
        origin_metadata["system"] = {}
    origin_metadata["system"]["tags"] = {k: v for k, v in current.items() if k not in patch} | {
        k: True for k, v in patch.items() if v is None
    }
    working._platform_dict = origin
    updated = working.update(system_metadata=True)
    if updated is None:
        raise RuntimeError(f"writing tags {patch} on item {item.id} failed (dtlpy logged the error above)")
    return updated


def _write_and_settle(item: Any, tags: Any, subset: str, config: SplitConfig) -> tuple[Any, str]:
    """Edge: write the membership, read the item back, and settle a race with another execution.

    See :func:`~nodes.data_split.assign.settle_after_write`: 1 PATCH + 1 GET, and 1 more PATCH
    only when a concurrent write left the item in several subsets (or in none).
    """
    _write_item_tags(item, tags_patch(tags, subset, config))
    server = _read_item(item)
    server_tags = _tags_of(server)
    settled, routable, rewrite = settle_after_write(server_tags, subset, config)
    if rewrite:
        logger.warning(
            "item %s: tags %s after a concurrent write; it stays in %r only", item.id, _short(server_tags), settled
        )
        patch = {settled: True} | {
            n: None for n in known_subsets(config) if n != settled and _is_member(server_tags, n)
        }
        server = _write_item_tags(server, patch)
    if routable is None:
        raise RuntimeError(
            f"item {item.id}: while this node wrote {{{subset!r}: true}} another Data Split put it in "
            f"{settled!r}, a subset this node does not have; it stays in {settled!r} and is not routed here"
        )
    if settled != subset:
        logger.warning(
            "item %s: another execution put it in %r after this one wrote %r: it stays in %r (last write wins)",
            item.id,
            settled,
            subset,
            settled,
        )
    return server, settled


def _is_member(tags: Any, name: str) -> bool:
    return isinstance(tags, Mapping) and tags.get(name) is True


def run_node(item: Any, progress: Any = None, context: Any = None) -> Any:
    """Edge: route ``item`` to one subset, tag it, and report the subset as the progress action.

    Requests: 1 item read (the tags as they are now, not as the execution's entity had them) +
    1 annotation listing + 1 annotation update per prediction that becomes ground truth + 1 item
    update and 1 read-back, the last two only when the tags change (a re-run writes nothing).

    Parameters
    ----------
    item : dl.Item
        Not modified; the item as the platform has it after the node is returned.
    progress : dl.Progress, optional
        Receives ``update(action=<subset>)``.
    context : dl.Context, optional
        Pipeline context whose ``node.metadata["customNodeConfig"]`` is the node config.

    Returns
    -------
    dl.Item

    Examples
    --------
    >>> # inside a pipeline: ServiceRunner().data_split(item=item, progress=progress, context=context)
    """
    check_entity_input(item, "item", "item", "Model Data Split", "an Item output")
    config = SplitConfig.from_node_config(node_config_from_context(context, logger, "the panel defaults"))
    current = _read_item(item)
    tags = _tags_of(current)
    elsewhere = foreign_subset(tags, config)
    if elsewhere is not None and existing_subset(tags, config) is None:
        raise ValueError(
            f"item {item.id}: already in subset {elsewhere!r} (metadata.system.tags.{elsewhere} is true), which "
            f"this node's groups {list(config.subset_names)} do not include; add a {elsewhere!r} group to the "
            "node or remove the tag (an item is in one subset only)"
        )
    member = existing_subset(tags, config)
    if member is not None:
        subset = member
        logger.info("item %s keeps its subset %r (tag already set)", item.id, subset)
    else:
        subset = subset_for_item(item.id, config)
        logger.info("item %s assigned to %r (seed %d)", item.id, subset, config.seed)
    _convert_reviewed_predictions(current, item_in_subset=member is not None)
    if config.item_metadata:
        new_tags = tags_after_assignment(tags, subset, config)
        if not tags_changed(tags, new_tags):
            logger.info("item %s already tagged %r: nothing to write", item.id, subset)
        else:
            current, subset = _write_and_settle(current, tags, subset, config)
    if progress is not None:
        progress.update(action=subset)
    return current
