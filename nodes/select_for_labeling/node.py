"""Select for Labeling pipeline edge: list the pool, score and choose a batch, claim and write it.

:func:`run_selection` (called by ``main.ServiceRunner.select_items``) lists the pool and its
annotations (:mod:`~nodes.select_for_labeling.pool`), chooses with
:func:`~nodes.select_for_labeling.select.select_pool`, stores the batch ranking as the hidden item
``/.activelearning/selections/<executionId>.json`` (:mod:`~nodes.select_for_labeling.records`),
writes record, tag and claim with conditional bulk updates so that runs at the same time never
share an item (:mod:`~nodes.select_for_labeling.claim`) and, with ``task``, creates one
annotation task. Requests and the reasons: docs/nodes.md.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from nodes.common.context import execution_id_of, node_config_from_context
from nodes.common.entities import check_entity_input
from nodes.common.limits import cut
from nodes.select_for_labeling.claim import MAX_CLAIM_ROUNDS, claim_of, held_ids, new_claim_id, write_claimed
from nodes.select_for_labeling.config import (
    NODE_ROOT,
    SELECTION_ROOT,
    SelectionConfig,
    check_selection_tag,
    merge_selection_config,
)
from nodes.select_for_labeling.pool import (
    feature_matrix,
    feature_set_named,
    held_out,
    in_hidden_folder,
    labelled_matrix,
    list_feature_vectors,
    list_labelled_ids,
    list_pool_annotations,
    list_pool_items,
    pipeline_subset_tags,
    with_own_items,
)
from nodes.select_for_labeling.records import (
    batch_ranking,
    check_task_name,
    chosen_items,
    create_task,
    is_written,
    item_record,
    ranked_ids,
    read_ranking,
    upload_ranking,
    with_record,
)
from nodes.select_for_labeling.scores import ItemScores, model_class_count
from nodes.select_for_labeling.select import Selection, recorded_selection, select_pool, utc_now

logger = logging.getLogger(__name__)

NODE_NAME = "Select for Labeling"

__all__ = ["NODE_NAME", "replaced_selection", "run_selection"]


def replaced_selection(selection: Selection, kept: Sequence[Any], replacement: Selection | None) -> Selection:
    """``selection`` with only the ``kept`` items (in their order), then ``replacement``'s items, re-ranked.

    What a run keeps when another run took some of its items at the same time.

    Examples
    --------
    >>> from nodes.select_for_labeling.select import choose_items
    >>> first = choose_items([0.9, 0.8, 0.7], ["a", "b", "c"], budget=2)
    >>> extra = choose_items([0.7], ["c"], budget=1)
    >>> s = replaced_selection(first, ["b"], extra)
    >>> s.item_ids, s.ranks, s.scores
    (('b', 'c'), (1, 2), (0.8, 0.7))
    """
    score_of = dict(zip(selection.item_ids, selection.scores, strict=True))
    ids = [*kept, *(replacement.item_ids if replacement is not None else ())]
    scores = [score_of[i] for i in kept] + list(replacement.scores if replacement is not None else ())
    return dataclasses.replace(
        selection,
        item_ids=tuple(ids),
        ranks=tuple(range(1, len(ids) + 1)),
        scores=tuple(scores),
        quota_limited=selection.quota_limited or bool(replacement is not None and replacement.quota_limited),
    )


def _write_batch(
    dataset: Any,
    config: SelectionConfig,
    ranking: Mapping[str, Any],
    ranking_item_id: str,
    docs_by_id: dict[str, dict],
    claim: Mapping[str, Any],
    force: bool = False,
) -> tuple[list[str], list[str]]:
    """EDGE. Write the ranking's items not yet written (all with ``force``) under ``claim``.

    Items no longer in the dataset, or tagged held-out since they were listed, are left out.
    Returns ``(kept, lost)``: the items that carry this run's claim, in rank order, and those
    another run wrote first. ``docs_by_id`` is updated to the written state.
    """
    record = item_record(ranking, ranking_item_id)
    chosen = ranked_ids(ranking)
    missing = [i for i in chosen if i not in docs_by_id]
    if missing:
        logger.warning("%d chosen item(s) are no longer in the dataset: left out", len(missing))
    present = [i for i in chosen if i in docs_by_id]
    order = [i for i in present if not held_out(docs_by_id[i], config.held_out_tags)]
    if len(order) < len(present):
        logger.warning(
            "%d chosen item(s) carry a held-out tag %s now: left out, not written",
            len(present) - len(order),
            list(config.held_out_tags),
        )
    execution_id = ranking.get("executionId")
    todo = [i for i in order if force or not is_written(docs_by_id[i], execution_id, config.tag, ranking_item_id)]
    if not todo:
        logger.info("all %d chosen item(s) already carry this execution's record: nothing written", len(order))
        return order, []
    requests = write_claimed(dataset, todo, docs_by_id, record, config.tag, claim)
    held = held_ids(dataset, todo, claim["id"])
    for item_id in todo:
        if item_id in held:
            docs_by_id[item_id] = with_record(docs_by_id[item_id], record, config.tag, claim)
    lost = [i for i in todo if i not in held]
    logger.info(
        "tagged %r and recorded %d chosen item(s) in %d conditional bulk update(s)%s",
        config.tag,
        len(todo) - len(lost),
        requests,
        f"; {len(lost)} were taken by another run first" if lost else "",
    )
    return [i for i in order if i not in set(lost)], lost


def _choose_and_claim(
    dataset: Any,
    model: Any,
    config: SelectionConfig,
    claim: Mapping[str, Any],
    execution_id: str | None,
    docs_by_id: dict[str, dict],
    scoring: Mapping[str, Any],
) -> tuple[Mapping[str, Any], list[str], Selection]:
    """EDGE. Choose, store the ranking, write under the claim; replace the items another run took
    first (at most :data:`~nodes.select_for_labeling.claim.MAX_CLAIM_ROUNDS` times).

    ``scoring`` holds the pool ``query`` and the inputs of ``select_pool``: ``predictions``,
    ``pool_ids``, ``features``, ``labelled_features``, ``n_classes``. Before choosing replacements
    the pool is listed again: items another run claimed since the first listing are not candidates. Returns the final ranking, the kept ids and the selection.
    """
    predictions, pool_ids, features = scoring["predictions"], scoring["pool_ids"], scoring["features"]
    extra = {"labelled_features": scoring["labelled_features"], "n_classes": scoring["n_classes"]}
    selection, scored = select_pool(predictions, pool_ids, config, features, **extra)
    if selection.budget_exceeds_pool:
        logger.warning(
            "budget %d is larger than the pool (%d items): the whole pool is taken", config.budget, selection.pool_size
        )
    fallback = _fallback_ids(scored)
    strategy_used = scored.strategy_used if scored is not None else None
    position = {item_id: n for n, item_id in enumerate(pool_ids)}
    lost_all: set[str] = set()
    for attempt in range(MAX_CLAIM_ROUNDS + 1):
        ranking = batch_ranking(
            selection, config, model.id, dataset.id, execution_id, utc_now(), fallback, strategy_used, claim["id"]
        )
        ranking_item_id = upload_ranking(dataset, ranking)
        kept, lost = _write_batch(dataset, config, ranking, ranking_item_id, docs_by_id, claim, force=attempt > 0)
        if not lost or attempt == MAX_CLAIM_ROUNDS:
            return ranking, kept, selection
        lost_all.update(lost)
        taken = set(selection.item_ids) | _taken_since(dataset, scoring["query"], execution_id, docs_by_id, claim)
        remaining = [i for i in pool_ids if i not in lost_all and i not in taken]
        logger.warning(
            "%d chosen item(s) were written by another run at the same time; choosing %d more from %d left",
            len(lost),
            len(lost),
            len(remaining),
        )
        replacement = None
        if remaining and attempt + 1 < MAX_CLAIM_ROUNDS:
            rows = None if features is None else features[[position[i] for i in remaining]]
            more = dataclasses.replace(config, budget=len(lost))
            replacement, more_scored = select_pool(predictions, remaining, more, rows, **extra)
            fallback |= _fallback_ids(more_scored)
        selection = replaced_selection(selection, [i for i in selection.item_ids if i not in lost_all], replacement)
    raise AssertionError("unreachable")  # pragma: no cover


def _taken_since(
    dataset: Any, query: Mapping[str, Any], execution_id: str | None, docs_by_id: Mapping[str, Mapping], claim: Mapping
) -> set[str]:
    """EDGE. Pool items another run claimed since this run listed them (or that left the pool):
    the pool listed again, its claims compared with the first listing's."""
    fresh = {d["id"]: claim_of(d) for d in list_pool_items(dataset, query, execution_id)}
    return {
        item_id
        for item_id, doc in docs_by_id.items()
        if item_id not in fresh or fresh[item_id] not in (claim_of(doc), claim["id"])
    }


def _fallback_ids(scored: ItemScores | None) -> set[str]:
    return set() if scored is None else {str(i) for i in scored.item_ids[scored.fallback].tolist()}


def _returned(
    dataset: Any,
    config: SelectionConfig,
    kept: Sequence[str],
    docs_by_id: Mapping[str, Mapping[str, Any]],
    task: Any,
    execution_id: str | None,
) -> list[Any]:
    """EDGE. The kept items as ``dl.Item`` entities (rank order), and the task of this execution once."""
    items = chosen_items(dataset, [docs_by_id[i] for i in kept])
    if config.task is not None and items:
        if task is not None:
            logger.info("task %r (%s) of this execution exists: not created again", cut(config.task.name), task.id)
        else:
            create_task(dataset, config, items, execution_id)
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
    """EDGE. Select for Labeling: choose ``budget`` pool items, record, tag and claim them, return them.

    Parameters
    ----------
    model : dl.Model
        Whose predictions on the pool are scored (``metadata.user.model.model_id``); read only,
        never written. Its labels give ``K`` for margin and entropy (``model_class_count``).
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
        ``context.node`` carries the node config (``customNodeConfig``; none outside a pipeline)
        and ``context.pipeline`` the Model Data Split groups (subset tags the ``tag`` may not be);
        ``context.execution_id`` makes the run idempotent (a rerun writes nothing) and is its claim.

    Returns
    -------
    list of dl.Item
        The chosen items, rank 1 first, as the platform has them after the writes.

    Raises
    ------
    ValueError
        Bad node config (``customNodeConfig.<field>``) or ``selection_config``, a ``model`` or
        ``dataset`` that is not a dtlpy Model / Dataset, a ``tag`` that is a subset tag, a pool
        DQL the platform rejects, a ``featureSet`` that does not exist, or a model that never
        predicted on the pool (for strategies that need predictions) — before any write.

    Examples
    --------
    >>> # main.ServiceRunner().select_items(model=model, dataset=dataset,
    >>> #                                   selection_config={"budget": 100, "diversity": "cluster"})
    """
    node_config = node_config_from_context(context, logger, "selection_config alone (no node config)")
    config = SelectionConfig.from_json(merge_selection_config(node_config, selection_config))
    _log_config_sources(node_config, selection_config)
    check_entity_input(model, "model", "model", NODE_NAME, "the model whose predictions are scored (e.g. Best Model)")
    check_entity_input(dataset, "dataset", "dataset", NODE_NAME, "the dataset that holds the pool (e.g. Raw Dataset)")
    groups = pipeline_subset_tags(context)
    from_node = isinstance(node_config, Mapping) and "tag" in node_config
    from_node = from_node and not (isinstance(selection_config, Mapping) and "tag" in selection_config)
    check_selection_tag(f"{NODE_ROOT if from_node else SELECTION_ROOT}.tag", config.tag, config.held_out_tags, groups)
    execution_id = execution_id_of(context)
    feature_set = feature_set_named(dataset, config.feature_set) if config.feature_set is not None else None
    task = check_task_name(dataset, config, execution_id)
    query = config.pool_query(groups)
    docs = list_pool_items(dataset, query, execution_id)
    docs_by_id = {d["id"]: d for d in docs}
    claim = {"id": new_claim_id(execution_id), "at": utc_now()}

    if execution_id is not None and any(_chosen_by(d, execution_id) for d in docs):
        found = _rerun_ranking(dataset, docs, execution_id)
        if found is not None:
            ranking, ranking_item_id = found
            logger.info("rerun of execution %s: returning its %d chosen item(s)", execution_id, len(ranking["items"]))
            kept, lost = _write_batch(dataset, config, ranking, ranking_item_id, docs_by_id, claim)
            if lost:
                logger.warning("%d item(s) of this execution's batch were written by another run: left out", len(lost))
            items = _returned(dataset, config, kept, docs_by_id, task, execution_id)
            if progress is not None:
                progress.update(message=ranking.get("summary"))
            return items
        logger.warning(
            "items carry execution %s's record but its ranking item cannot be read back: choosing again", execution_id
        )

    # The pool: listed items that are not hidden, with no held-out (test-subset) tag and no ground truth.
    visible = [d for d in docs if not in_hidden_folder(d)]
    if len(visible) < len(docs):
        logger.info("left %d hidden item(s) out of the pool (ranking files, model scores)", len(docs) - len(visible))
    pool = [d for d in visible if not held_out(d, config.held_out_tags)]
    n_test = len(visible) - len(pool)
    # joined with the same filter as the listing: this execution's already-tagged items keep their predictions
    predictions, ground_truth = list_pool_annotations(
        dataset, with_own_items(query, execution_id), [d["id"] for d in pool], model.id
    )
    pool = [d for d in pool if d["id"] not in ground_truth]
    pool_ids = [d["id"] for d in pool]
    logger.info(
        "pool of dataset %s: %d items (%d left out with ground truth, %d with a held-out tag %s)",
        dataset.id,
        len(pool_ids),
        len(ground_truth & set(docs_by_id)),
        n_test,
        list(config.held_out_tags),
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
            f"model: {cut(model.id, 80)} ({cut(getattr(model, 'name', '?'), 80)}) has no predictions on the "
            f"{len(pool_ids)} pool items of dataset {cut(repr(dataset.name), 80)}, and strategy {config.strategy!r} "
            'scores predictions; run Predict with this model on the pool first, or start cold with "strategy": '
            '"random" (or a "featureSet")'
        )
    features = labelled = None
    if feature_set is not None:
        # the labelled items (ground truth, train / validation tags) give the core-set's and the cold start's
        # "already covered" vectors: listed only when diversity or a cold start uses them
        labelled_ids = []
        if cold or config.diversity != "none":
            labelled_ids = sorted(list_labelled_ids(dataset, config.held_out_tags) - set(pool_ids))
        vectors = list_feature_vectors(feature_set, dataset, [*pool_ids, *labelled_ids])
        features = feature_matrix(vectors, pool_ids, f"{SELECTION_ROOT}.featureSet")
        labelled = labelled_matrix(vectors, labelled_ids, features.shape[1])
        if labelled_ids:
            logger.info(
                "%d labelled item(s), %d with a vector of feature set %r",
                len(labelled_ids),
                0 if labelled is None else len(labelled),
                config.feature_set,
            )
    if cold:
        logger.warning(
            "cold start: model %s has no predictions on the pool; typical items of feature set %r",
            model.id,
            config.feature_set,
        )
    scoring = {
        "query": query,
        "predictions": predictions,
        "pool_ids": pool_ids,
        "features": features,
        "labelled_features": labelled,
        "n_classes": model_class_count(model.to_json()),
    }
    ranking, kept, selection = _choose_and_claim(dataset, model, config, claim, execution_id, docs_by_id, scoring)
    items = _returned(dataset, config, kept, docs_by_id, task, execution_id)
    logger.info("%s", selection.summary())
    if progress is not None:
        progress.update(message=selection.summary())
    return items


def _chosen_by(doc: Mapping[str, Any], execution_id: str) -> bool:
    record = recorded_selection(doc.get("metadata"))
    return isinstance(record, Mapping) and record.get("executionId") == execution_id
