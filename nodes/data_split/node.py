"""Model Data Split pipeline edge: one item in, tagged with its subset, routed by the progress action.

:func:`run_node` is called by ``main.ServiceRunner.data_split``; it reads the node config from
the pipeline context, makes the pure decisions of :mod:`nodes.data_split.assign` and writes the
item's tags (nothing when they are already right).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from nodes.data_split.assign import existing_subset, strip_model_metadata, subset_for_item, tags_after_assignment
from nodes.data_split.config import CONFIG_FIELD, SplitConfig, _short

logger = logging.getLogger(__name__)


def node_config_from_context(context: Any) -> Mapping[str, Any] | None:
    """Edge: the raw ``customNodeConfig`` of the running node, or ``None`` outside a pipeline.

    ``context.node`` resolves the pipeline (``GET /pipelines/{id}``) on first access.

    Examples
    --------
    >>> node_config_from_context(None) is None
    True
    """
    if context is None:
        logger.info("no context (running outside a pipeline): using the panel defaults")
        return None
    node = context.node
    if node is None:
        logger.info("context has no pipeline node (running outside a pipeline): using the panel defaults")
        return None
    metadata = node.metadata if isinstance(node.metadata, Mapping) else {}
    return metadata.get(CONFIG_FIELD)


def _remove_model_metadata(item: Any) -> int:
    """Edge: strip ``model`` from the item's annotations that carry it (1 listing + 1 PUT each)."""
    import dtlpy as dl

    filters = dl.Filters(resource=dl.FiltersResource.ANNOTATION, page_size=1000)
    annotations = item.annotations.list(filters=filters)
    updated = 0
    for annotation in annotations:
        new_metadata = strip_model_metadata(annotation.metadata)
        if new_metadata is None:
            continue
        annotation.metadata = new_metadata  # our own entity, fresh from the listing
        result = annotation.annotations.update(annotations=annotation, system_metadata=True)
        if not result:
            raise RuntimeError(
                f"removing model metadata from annotation {annotation.id} of item {item.id} failed "
                "(dtlpy logged the error above)"
            )
        updated += 1
    if updated:
        logger.info("item %s: %d reviewed predictions became ground truth (model metadata removed)", item.id, updated)
    return updated


def _write_item_tags(item: Any, new_tags: dict) -> Any:
    """Edge: PATCH the item's ``metadata.system.tags`` on a copy of the entity (one request)."""
    import dtlpy as dl

    working = dl.Item.from_json(_json=item.to_json(), client_api=item._client_api, dataset=item._dataset)
    working.metadata.setdefault("system", {})
    working.metadata["system"]["tags"] = new_tags
    updated = working.update(system_metadata=True)
    if updated is None:
        raise RuntimeError(f"writing tags {new_tags} on item {item.id} failed (dtlpy logged the error above)")
    return updated


def run_node(item: Any, progress: Any = None, context: Any = None) -> Any:
    """Edge: route ``item`` to one subset, tag it, and report the subset as the progress action.

    Requests: 1 annotation listing + 1 annotation update per annotation carrying model
    metadata + 1 item update, the last only when the tags change (a re-run writes nothing).

    Parameters
    ----------
    item : dl.Item
        Not modified; the updated entity is returned when tags were written.
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
    if item is None or not isinstance(getattr(item, "id", None), str) or not hasattr(item, "metadata"):
        raise ValueError(f"item: {_short(item)} is not a dl.Item; connect the node's input to an Item output")
    config = SplitConfig.from_node_config(node_config_from_context(context))
    tags = ((item.metadata or {}).get("system") or {}).get("tags")
    subset = existing_subset(tags, config)
    if subset is not None:
        logger.info("item %s keeps its subset %r (tag already set)", item.id, subset)
    else:
        subset = subset_for_item(item.id, config)
        logger.info("item %s assigned to %r (seed %d)", item.id, subset, config.seed)
    _remove_model_metadata(item)
    if config.item_metadata:
        new_tags = tags_after_assignment(tags, subset, config)
        if isinstance(tags, Mapping) and new_tags == dict(tags):
            logger.info("item %s already tagged %r: nothing to write", item.id, subset)
        else:
            item = _write_item_tags(item, new_tags)
    if progress is not None:
        progress.update(action=subset)
    return item
