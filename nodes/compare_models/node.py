"""Compare Models pipeline edge: list from the platform, decide, store the report.

``run_node`` (called by ``main.ServiceRunner.compare_models``) validates the config, lists what
the votes need as raw JSON pages (``nodes.common.paging``: the test-subset item ids, then one
annotation query for ground truth and both models' predictions joined with the test subset, and
each model's metric samples), decides (``compare``, read only) and stores the report on the new
model with one update. Requests do not grow with annotations per item (docs/nodes.md). Bad input
raises ``ValueError`` before any write.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Sequence
from typing import Any

import pandas as pd

from nodes.common.context import node_config_from_context
from nodes.common.entities import check_entity_input
from nodes.common.limits import shorten
from nodes.common.paging import count_matches, json_pages, offset_pages
from nodes.compare_models.config import CompareConfig
from nodes.compare_models.evaluation import check_tables, evaluation_votes, prediction_coverage
from nodes.compare_models.records import annotation_tables, read_annotations, samples_frame, skipped_summary
from nodes.compare_models.report import DISCARD, UPDATE_MODEL, Comparison, ComparisonReport, updated_metadata
from nodes.compare_models.stopping import (
    extend_ledger,
    latest_ledger,
    ledger_row,
    prediction_agreement,
    recommend_stop,
)
from nodes.compare_models.training import training_votes
from nodes.compare_models.votes import Vote

logger = logging.getLogger(__name__)

PAGE_SIZE = 1000
#: Comparisons against the previous model read for the ledger: one page of the newest models.
LEDGER_SOURCES = 100
#: Where a model's comparison record is stored.
COMPARISON_FIELD = "metadata.user.activeLearning.comparison"


def list_metric_samples(model: Any) -> pd.DataFrame:
    """EDGE. All pages of the model's metric samples as a DataFrame ``figure, legend, x, y``.

    The requests of dtlpy's ``model.metrics.list`` (``POST /ml/metrics/query`` by offset, 1,000 a
    page, ``modelId`` in the filter), read as raw JSON (``nodes.common.paging.offset_pages``), so
    a refused query raises ``RuntimeError`` naming it instead of reading as "no metrics".

    Examples
    --------
    >>> # list_metric_samples(dl.models.get(model_id="...")).query("figure == 'box_loss'")
    """
    import dtlpy as dl

    filters = dl.Filters(resource=dl.FiltersResource.METRICS, page_size=PAGE_SIZE)
    filters.add(field="modelId", values=model.id)
    records = [
        {"figure": d.get("figure", ""), "legend": d.get("legend", ""), "x": _data(d).get("x"), "y": _data(d).get("y")}
        for page in offset_pages(model.metrics, filters, page_size=PAGE_SIZE)
        for d in page
    ]
    logger.debug("model %s: %d metric samples", model.id, len(records))
    return samples_frame(records)


def _data(sample: dict) -> dict:
    data = sample.get("data")
    return data if isinstance(data, dict) else {}


def list_test_item_ids(dataset: Any, query: dict) -> list[str]:
    """EDGE. Ids of the items matched by the test-subset DQL (one paged items query).

    Examples
    --------
    >>> # list_test_item_ids(dataset, load_subset_filter("test"))
    """
    import dtlpy as dl

    filters = dl.Filters(resource=dl.FiltersResource.ITEM, custom_filter=copy.deepcopy(query))
    return [doc["id"] for page in json_pages(dataset.items, filters, page_size=PAGE_SIZE) for doc in page]


def list_test_annotations(
    dataset: Any,
    test_query: dict,
    item_ids: Sequence[str],
    model_ids: Sequence[str],
    skipped: list | None = None,
) -> list[dict]:
    """EDGE. Ground truth and the given models' predictions on the test items, as records.

    One dataset-level paged annotation query (1,000 a page, keyset paging by
    ``nodes.common.paging.json_pages``, records read from the raw JSON by ``annotation_record``):
    annotations without ``metadata.user.model`` or whose ``model_id`` is one of
    ``model_ids``, joined with the test-subset item filter (dtlpy's annotation -> item
    ``join``). Rows are then also filtered to ``item_ids``, so a server that ignores the
    join still gives the right answer (with more pages). Never one request per item.
    Malformed annotations are left out (``nodes.compare_models.records.read_annotations``) and,
    when ``skipped`` is given, appended to it with their ids and reasons.

    Examples
    --------
    >>> # records = list_test_annotations(dataset, query, item_ids, [previous.id, new.id])
    >>> # annotation_tables(records, previous.id, new.id)["box"].ground_truth.head()
    """
    import dtlpy as dl

    filters = dl.Filters(resource=dl.FiltersResource.ANNOTATION, page_size=PAGE_SIZE)
    filters.add(
        field="metadata.user.model.model_id",
        values=list(model_ids),
        operator=dl.FiltersOperations.IN,
        method=dl.FiltersMethod.OR,
    )
    filters.add(
        field="metadata.user.model", values=False, operator=dl.FiltersOperations.EXISTS, method=dl.FiltersMethod.OR
    )
    if "join" not in test_query:  # an item filter that itself joins annotations cannot be nested
        filters.join = {
            "on": {"resource": dl.FiltersResource.ITEM.value, "local": "id", "forigen": "itemId"},
            "filter": copy.deepcopy(test_query["filter"]),
        }
    wanted = set(item_ids)
    records: list[dict] = []
    outside = 0
    for page in json_pages(dataset.annotations, filters, page_size=PAGE_SIZE):
        inside = [doc for doc in page if doc.get("itemId") in wanted]
        outside += len(page) - len(inside)
        page_records, page_skipped = read_annotations(inside)
        records += page_records
        if skipped is not None:
            skipped += page_skipped
    if outside:
        logger.debug("dropped %d annotations of items outside the test subset (join not applied)", outside)
    return records


def _model_label(kind: str, model: Any) -> str:
    model_id = str(model.id)
    model_id = model_id if len(model_id) <= 60 else model_id[:57] + "..."
    return f"{kind} model {shorten(getattr(model, 'name', '?'), 80)} ({model_id})"


def compare(previous_model: Any, new_model: Any, config: CompareConfig, dataset: Any = None) -> Comparison:
    """EDGE (read only). Gather every vote and decide; writes nothing.

    Parameters
    ----------
    previous_model, new_model : dtlpy.Model
    config : CompareConfig
        Already validated.
    dataset : dtlpy.Dataset, optional
        Required when ``config.precision_recall`` is set.

    Returns
    -------
    Comparison

    Examples
    --------
    >>> # with dtlpy pointed at a platform (see tests/test_compare_models_integration.py):
    >>> # compare(prev, new, CompareConfig.from_json(None), dataset).report.decision
    """
    previous_label, new_label = _model_label("previous", previous_model), _model_label("new", new_model)
    votes: list[Vote] = []
    if config.checks:
        votes += training_votes(
            list_metric_samples(previous_model),
            list_metric_samples(new_model),
            config.checks,
            previous_label,
            new_label,
        )
    outcome = None
    details: dict = {}
    agreement = None
    if config.precision_recall is not None:
        pr = config.precision_recall
        dataset_label = f"dataset {shorten(dataset.name, 80)}"
        item_ids = list_test_item_ids(dataset, pr.test_subset_query())
        skipped: list[dict] = []
        records = list_test_annotations(
            dataset, pr.test_subset_query(), item_ids, [previous_model.id, new_model.id], skipped
        )
        coverage = prediction_coverage(
            item_ids,
            {r["item_id"] for r in records if r["model_id"] == previous_model.id},
            {r["item_id"] for r in records if r["model_id"] == new_model.id},
        )
        tables = annotation_tables(records, previous_model.id, new_model.id, pr.labels)
        check_tables(
            tables,
            previous_label,
            new_label,
            dataset_label,
            len(item_ids),
            predicted_items={"previous": coverage["previous"]["items"], "new": coverage["new"]["items"]},
            skipped={
                "previous": [s for s in skipped if s.get("modelId") == previous_model.id],
                "new": [s for s in skipped if s.get("modelId") == new_model.id],
            },
        )
        if coverage["warning"]:
            logger.warning("%s", coverage["warning"])
        outcome = evaluation_votes(tables, pr, item_ids=item_ids)
        votes += outcome.votes
        agreement = prediction_agreement(tables, item_ids, config.stop.score_threshold)
        details = {
            "testItems": len(item_ids),
            "annotations": len(records) + len(skipped),
            "coverage": coverage,
            "skippedAnnotations": skipped_summary(skipped),
            "perLabelAP": outcome.summary,
        }
    report = ComparisonReport.decide(
        votes,
        config,
        previous_model.id,
        new_model.id,
        dataset_id=dataset.id if dataset is not None and config.precision_recall is not None else None,
        details=details,
        agreement=agreement,
    )
    if config.stop.enabled:
        report = report.with_stopping(stopping_signal(previous_model, new_model, report, config, dataset))
    return Comparison(report, outcome)


def _comparison_record(metadata: Any) -> dict | None:
    """A model's stored comparison record, or ``None`` (absent, ``null`` or not an object)."""
    for key in ("user", "activeLearning", "comparison"):
        metadata = metadata.get(key) if isinstance(metadata, dict) else None
    return metadata if isinstance(metadata, dict) else None


def lineage_comparisons(previous_model: Any, new_model: Any, dataset_id: str | None = None) -> list[dict]:
    """EDGE (one request). The stored comparison records the ledger continues from.

    One models query (one page of the newest :data:`LEDGER_SOURCES`, in the new model's project):
    the previous model itself (its record is the comparison that made it the winner) and the models
    compared against it (``comparison.previousModelId``: discarded rounds live on the discarded
    models). Each record carries the lineage's ledger up to its round, so no ancestor is fetched.
    The record on the ``previous_model`` entity counts too; a refused query leaves only that one
    (logged). With ``dataset_id``, only comparisons on that dataset count (a lineage is compared on
    one dataset's test subset; two lineages from one base model on different datasets stay apart).

    Examples
    --------
    >>> # latest_ledger(lineage_comparisons(previous, new), exclude_model_id=new.id)
    """
    import dtlpy as dl

    def same_dataset(record: dict | None) -> bool:
        return record is not None and (dataset_id is None or record.get("datasetId") == dataset_id)

    records = [r for r in (_comparison_record(previous_model.metadata),) if same_dataset(r)]
    filters = dl.Filters(resource=dl.FiltersResource.MODEL, page_size=LEDGER_SOURCES)
    filters.add(field="projectId", values=new_model.project_id)
    if dataset_id is not None:
        filters.add(field=f"{COMPARISON_FIELD}.datasetId", values=dataset_id)
    filters.add(field="id", values=previous_model.id, method=dl.FiltersMethod.OR)
    filters.add(field=f"{COMPARISON_FIELD}.previousModelId", values=previous_model.id, method=dl.FiltersMethod.OR)
    filters.sort_by(field="createdAt", value=dl.FiltersOrderByDirection.DESCENDING)
    try:
        page = next(iter(offset_pages(dl.models, filters)), [])
    except RuntimeError as error:
        logger.warning("the ledger continues from the previous model's record only: %s", shorten(str(error), 300))
        return records
    records += [r for r in (_comparison_record(doc.get("metadata")) for doc in page) if same_dataset(r)]
    return records


def count_train_items(new_model: Any, dataset: Any) -> int | None:
    """EDGE (one count request). Items of ``dataset`` in the new model's train subset, or ``None``.

    The subset is ``metadata.system.subsets.train`` (set by Create New Model); ``None`` when the
    model has none or was trained on another dataset than the one compared on.
    """
    import dtlpy as dl

    system = new_model.metadata.get("system") if isinstance(new_model.metadata, dict) else None
    subsets = system.get("subsets") if isinstance(system, dict) else None
    query = subsets.get("train") if isinstance(subsets, dict) else None
    if (
        dataset is None
        or not isinstance(query, dict)
        or not query
        or getattr(new_model, "dataset_id", None) != dataset.id
    ):
        return None
    query = copy.deepcopy(query if "filter" in query else {"filter": query})
    try:
        return count_matches(dataset.items, dl.Filters(custom_filter=query))
    except RuntimeError as error:
        logger.warning(
            "counting the new model's train subset failed; labels not recorded: %s", shorten(str(error), 300)
        )
        return None


def stopping_signal(
    previous_model: Any, new_model: Any, report: ComparisonReport, config: CompareConfig, dataset: Any
) -> dict:
    """EDGE (two requests: the lineage query and the train-subset count). The report's ``stopping``.

    ``{"config", "ledger", "recommendation", "reason"}``: the lineage's ledger (at most
    ``stopping.MAX_LEDGER_ROWS`` rows, the newest last) with this round appended, and
    ``stopping.recommend_stop`` over it.
    """
    kappa = None if report.agreement is None else report.agreement.get("kappa")
    row = ledger_row(
        [v.to_json() for v in report.votes],
        kappa,
        count_train_items(new_model, dataset),
        model_id=new_model.id,
        decision=report.decision,
    )
    earlier = lineage_comparisons(previous_model, new_model, report.dataset_id)
    ledger = extend_ledger(latest_ledger(earlier, new_model.id), row)
    return {"config": config.stop.to_json(), "ledger": ledger, **recommend_stop(ledger, config.stop)}


def _item_metadata_enabled(context: Any) -> bool:
    """EDGE. ``customNodeConfig.itemMetadata`` of the pipeline node; False outside a pipeline."""
    custom = node_config_from_context(context)
    return isinstance(custom, dict) and custom.get("itemMetadata") is True


def store_report(new_model: Any, report: ComparisonReport, tag_decision: bool) -> Any:
    """EDGE. One update request on a copy of ``new_model`` carrying the report (and tag).

    The caller's entity is left as it was; the updated entity is returned.

    Examples
    --------
    >>> # updated = store_report(new_model, report, tag_decision=False)
    >>> # updated.metadata["user"]["activeLearning"]["comparison"]["decision"]
    """
    target = copy.copy(new_model)
    target.metadata = updated_metadata(new_model.metadata, report, tag_decision)
    updated = target.update(system_metadata=tag_decision)
    if updated is None:
        raise RuntimeError(f"storing the comparison report on model {new_model.id} failed (dtlpy returned None)")
    return updated


def _check_inputs(previous_model: Any, new_model: Any, config: CompareConfig, dataset: Any) -> None:
    """EDGE. The node's inputs are entities of the right kind, before any request."""
    for name, value in (("previous_model", previous_model), ("new_model", new_model)):
        check_entity_input(value, name, "model", "Compare Models", "a model")
    if dataset is not None:
        check_entity_input(dataset, "dataset", "dataset", "Compare Models", "the dataset both models were evaluated on")
    if previous_model.id == new_model.id:
        raise ValueError(
            f"new_model: {shorten(new_model.id, 80)} is the same model as previous_model; connect the newly trained model"
        )
    if config.needs_dataset and dataset is None:
        raise ValueError(
            "dataset: None, but compare_config.precision_recall compares predictions on the test subset of a "
            "dataset; connect the dataset both models were evaluated on, or compare training metrics only: "
            'compare_config = {"checks": [{"legend": "val", "figure": "box_loss", "maximize": false}]}'
        )


def run_node(
    previous_model: Any,
    new_model: Any,
    compare_config: dict | None = None,
    dataset: Any = None,
    progress: Any = None,
    context: Any = None,
) -> Any:
    """EDGE. The Compare Models pipeline node: return the winning model.

    Parameters
    ----------
    previous_model, new_model : dtlpy.Model
    compare_config : dict, optional
        See ``nodes.compare_models.config``; ``None`` selects the packaged default.
    dataset : dtlpy.Dataset, optional
        The dataset both models were evaluated on (needed for ``precision_recall``).
    progress : dtlpy.Progress, optional
        Receives ``action="update model"`` or ``"discard"``.
    context : dtlpy.Context, optional
        ``context.node.metadata["customNodeConfig"]["itemMetadata"]`` enables the tag.

    Returns
    -------
    dtlpy.Model
        ``new_model`` (as updated with the report) if it wins, else ``previous_model``.

    Examples
    --------
    >>> # main.ServiceRunner().compare_models(previous_model=prev, new_model=new,
    >>> #                                     compare_config=None, dataset=dataset, progress=progress)
    """
    config = CompareConfig.from_json(compare_config)
    _check_inputs(previous_model, new_model, config, dataset)
    comparison = compare(previous_model, new_model, config, dataset)
    report = comparison.report
    logger.info("comparison of previous %s and new %s:\n%s", previous_model.id, new_model.id, report.table())
    if config.verbose and comparison.evaluation is not None:
        logger.info("per-label AP on the test subset: %s", json.dumps(comparison.evaluation.summary))
    tag = _item_metadata_enabled(context)
    updated_new = store_report(new_model, report, tag)
    winner = updated_new if report.new_model_wins else previous_model
    logger.info(
        "new model %s %s: won %d of %d votes (wins=%r) -> %s",
        new_model.id,
        "wins" if report.new_model_wins else "does not win",
        sum(v.won for v in report.votes),
        len(report.votes),
        report.wins,
        report.decision,
    )
    if report.recommendation is not None:
        logger.info(
            "stopping signal (round %s): %s, %s", report.round, report.recommendation, report.stopping["reason"]
        )
    if progress is not None:
        progress.update(action=UPDATE_MODEL if report.new_model_wins else DISCARD)
    return winner
