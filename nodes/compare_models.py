"""Compare Models node: decide whether a newly trained model replaces the previous one.

``run_node`` is the pipeline edge (called by ``main.ServiceRunner.compare_models``); the
decision itself is made by pure functions over DataFrames, in three steps:

1. **Votes from the evaluation** (``precision_recall``, needs ``dataset``): ground truth is
   every annotation on the test-subset items that carries no ``metadata.user.model``;
   a model's predictions are the annotations whose ``metadata.user.model.model_id`` is
   its id, scored by ``metadata.user.model.confidence`` (what dtlpy's ``model_info`` and
   the platform's Evaluate write). Each annotation type is evaluated on its own:
   ``box``, ``segment`` (polygons), ``binary`` (masks) with COCO matching at ``iou_threshold``, and
   ``class`` (item-level classification). The compared quantity is the **mean AP over
   the labels that have ground truth** (``interpolation`` ``every_point`` by default, the
   VOC area under the precision envelope, i.e. the original app's AUC-PR made exact),
   one vote per annotation type; with ``per_label`` it is each label's AP, one vote per
   label. The original pooled all labels into one curve (and mixed per-label rows into
   it, defect M7); a macro mean does not let the most frequent label decide alone.
   All metric math comes from ``nodes.metrics``.
2. **Votes from training metrics** (``checks``): the value of a ``figure``/``legend``
   at ``x_index`` of the samples sorted by x, over all metric pages.
3. **Decision** (``nodes.compare_report``): the new model wins when the fraction of won
   votes is at least ``wins``; the ``ComparisonReport`` is logged and stored on the new
   model under ``metadata.user.activeLearning.comparison`` with one update request.

A vote wins when ``new - previous > min_delta`` (strict), and, if set, the relative change
is at least ``min_relative_change`` and the lower bound of the paired-bootstrap interval
of the difference (``resamples`` resamples of the test items with replacement, seeded,
scored at once through ``nodes.metrics.average_precision_from_matches``) is
``> min_delta``.

Listing is dataset level and paged (1,000 a page): one items query for the test-subset
ids, then one annotation query restricted to ground truth and the two models'
predictions and joined with the test-subset item filter (rows outside the test items
are dropped as well, in case a server ignores the join). Requests are
``ceil(test items / 1000) + ceil(listed annotations / 1000)`` (+1 per listing when a
page boundary falls on the end), independent of annotations per item. Both listings come
as raw JSON pages (``nodes.common.paging.json_pages``) and annotation records are read from the JSON
(``annotation_record``), so no dtlpy entity is built for boxes, polygons and classes.

With ``itemMetadata`` in the node's ``customNodeConfig``, the new model is also tagged
with the decision (``metadata.system.tags["update model"]`` or ``["discard"]``, the
other action's tag removed) in the same update. Bad input (config, missing
predictions or ground truth, models evaluated on different items) raises
``ValueError`` before anything is written. A model's evaluated items are the test items
holding at least one of its predictions (annotations are all the platform keeps of an
evaluation), so both models must have predictions on exactly the same test items. This
is deliberately strict: it catches a test subset that changed between the two
evaluations, at the price of refusing a model that detected nothing at all on some item.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import sys
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nodes import metrics
from nodes.compare_config import CompareConfig, PrecisionRecallConfig
from nodes.compare_report import (
    ACTIONS,
    DISCARD,
    UPDATE_MODEL,
    ComparisonReport,
    Vote,
    judge_vote,
    samples_frame,
    training_votes,
)
from nodes.common.paging import json_pages

logger = logging.getLogger(__name__)

#: Dataloop annotation type -> evaluated geometry (Dataloop calls a polygon "segment":
#: ``dl.AnnotationType.POLYGON == "segment"``; a semantic mask is "binary").
ANNOTATION_GEOMETRY = {"box": "box", "segment": "polygon", "binary": "mask", "class": "class"}
PAGE_SIZE = 1000
REPORT_KEY = "activeLearning"
MAX_PLOTTED_LABELS = 12

__all__ = [
    "ANNOTATION_GEOMETRY",
    "EvaluationOutcome",
    "EvaluationTables",
    "add_cli_arguments",
    "annotation_record",
    "annotation_tables",
    "compare",
    "evaluation_votes",
    "paired_bootstrap_interval",
    "run_cli",
    "run_node",
    "updated_metadata",
]


# --------------------------------------------------------------------------------------------
# Pure part: annotation records -> DataFrames -> votes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvaluationTables:
    """Ground truth and both models' predictions of one geometry on the test subset.

    Frames have ``item_id``, ``label`` and the geometry columns of ``nodes.metrics``
    (``left, top, right, bottom`` / ``polygon`` / ``mask``; none for ``class``);
    predictions also ``confidence``.
    """

    geometry: str
    ground_truth: pd.DataFrame
    previous: pd.DataFrame
    new: pd.DataFrame


def _geometry_columns(geometry: str) -> tuple[str, ...]:
    return () if geometry == "class" else metrics.GEOMETRY_COLUMNS[geometry]


def annotation_tables(
    records: Iterable[dict],
    previous_id: str,
    new_id: str,
    labels: Sequence[str] | None = None,
) -> dict[str, EvaluationTables]:
    """Split annotation records into ground truth and each model's predictions, per geometry.

    Parameters
    ----------
    records : iterable of dict
        One per annotation: ``item_id``, ``type`` (Dataloop annotation type), ``label``,
        ``model_id`` (``None`` for ground truth, i.e. no ``metadata.user.model``),
        ``confidence`` and the geometry (``left, top, right, bottom`` / ``polygon`` /
        ``mask``). Types other than ``box``, ``segment`` (polygon), ``binary`` and ``class`` are
        ignored, and so are predictions of other models. (Dataloop's polygon type is
        ``"segment"``.)
    previous_id, new_id : str
        The models' ids.
    labels : sequence of str, optional
        Keep only these labels.

    Returns
    -------
    dict
        Geometry (``"box"``, ``"polygon"``, ``"mask"``, ``"class"``) -> ``EvaluationTables``,
        for every geometry that has ground truth or predictions of either model.

    Examples
    --------
    >>> box = {"type": "box", "label": "cat", "left": 0, "top": 0, "right": 5, "bottom": 5}
    >>> tables = annotation_tables([dict(box, item_id="i1", model_id=None, confidence=None),
    ...                             dict(box, item_id="i1", model_id="m2", confidence=0.9)], "m1", "m2")
    >>> len(tables["box"].ground_truth), len(tables["box"].previous), len(tables["box"].new)
    (1, 0, 1)
    """
    frame = pd.DataFrame(list(records))
    if frame.empty:
        return {}
    for column in ("model_id", "confidence"):
        if column not in frame:
            frame[column] = None
    frame["geometry"] = frame["type"].map(ANNOTATION_GEOMETRY)
    ignored = frame["geometry"].isna()
    if ignored.any():
        counts = frame.loc[ignored, "type"].value_counts().to_dict()
        logger.info("ignoring annotations of types the comparison does not score: %s", counts)
        frame = frame[~ignored]
    if labels is not None:
        frame = frame[frame["label"].isin(list(labels))]
    tables = {}
    for geometry in sorted(frame["geometry"].unique()):
        of_geometry = frame[frame["geometry"] == geometry]
        owner = of_geometry["model_id"]
        table = EvaluationTables(
            geometry,
            _pick(of_geometry, owner.isna(), geometry, with_confidence=False),
            _pick(of_geometry, owner == previous_id, geometry, with_confidence=True),
            _pick(of_geometry, owner == new_id, geometry, with_confidence=True),
        )
        if len(table.ground_truth) or len(table.previous) or len(table.new):
            tables[geometry] = table
    return tables


def _pick(frame: pd.DataFrame, mask: pd.Series, geometry: str, with_confidence: bool) -> pd.DataFrame:
    columns = ["item_id", "label", *_geometry_columns(geometry)] + (["confidence"] if with_confidence else [])
    part = frame.loc[mask, columns].reset_index(drop=True)
    if with_confidence:
        missing = part["confidence"].isna()
        if missing.any():
            logger.warning("%d %s predictions have no confidence; scoring them 1.0", int(missing.sum()), geometry)
        part["confidence"] = pd.to_numeric(part["confidence"].where(~missing, 1.0)).astype(float)
    return part


def _evaluate(table: EvaluationTables, predictions: pd.DataFrame, config: PrecisionRecallConfig) -> Any:
    """One model's evaluation of one geometry (all math in nodes.metrics)."""
    if table.geometry == "class":
        return metrics.evaluate_classification(table.ground_truth, predictions, interpolation=config.interpolation)
    return metrics.evaluate_detections(
        table.ground_truth,
        predictions,
        iou_threshold=config.iou_threshold,
        interpolation=config.interpolation,
        geometry=table.geometry,
    )


def check_tables(
    tables: dict[str, EvaluationTables],
    previous_label: str,
    new_label: str,
    dataset_label: str,
    n_test_items: int,
) -> None:
    """Refuse to compare when the evaluation cannot be fair; every message says what to do.

    Raises ``ValueError`` when there is no ground truth on the test subset, when a model
    has no prediction on it ("run Evaluate on <dataset> first"), or when the two models
    have predictions on different test items (the count that differs is named).

    Examples
    --------
    >>> check_tables({}, "previous model a", "new model b", "dataset d", 0)
    Traceback (most recent call last):
    ...
    ValueError: dataset d: the test subset matched 0 items; tag test items (metadata.system.tags.test) or set compare_config.precision_recall.test_subset
    """
    if n_test_items == 0:
        raise ValueError(
            f"{dataset_label}: the test subset matched 0 items; tag test items (metadata.system.tags.test) or set "
            f"compare_config.precision_recall.test_subset"
        )
    n_gt = sum(len(t.ground_truth) for t in tables.values())
    if n_gt == 0:
        raise ValueError(
            f"{dataset_label}: no ground truth (annotations without metadata.user.model) on the {n_test_items} "
            f"test-subset items; annotate the test items or point compare_config.precision_recall.test_subset at "
            f"annotated items"
        )
    for label, attr in ((previous_label, "previous"), (new_label, "new")):
        if sum(len(getattr(t, attr)) for t in tables.values()) == 0:
            raise ValueError(
                f"{label} has no predictions on the {n_test_items} test-subset items of {dataset_label}; "
                f"run Evaluate on {dataset_label.removeprefix('dataset ')} first"
            )
    prev_items = set().union(*(set(t.previous["item_id"]) for t in tables.values()))
    new_items = set().union(*(set(t.new["item_id"]) for t in tables.values()))
    if prev_items != new_items:
        only_prev, only_new = len(prev_items - new_items), len(new_items - prev_items)
        raise ValueError(
            f"the models were evaluated on different items of {dataset_label}: {only_prev} test items have "
            f"predictions of {previous_label} only and {only_new} of {new_label} only "
            f"({only_prev + only_new} differ); run Evaluate for both models on the same test subset"
        )


def paired_bootstrap_interval(previous: np.ndarray, new: np.ndarray, confidence: float) -> tuple[float, float]:
    """Two-sided percentile interval of ``new - previous`` over paired resamples.

    Parameters
    ----------
    previous, new : numpy.ndarray, shape (n_resamples,)
        The quantity of each model on the same resampled test sets. NaN entries (a
        resample without ground truth of a label) are left out.
    confidence : float
        In (0, 1), e.g. 0.95 gives the 2.5 % and 97.5 % percentiles.

    Returns
    -------
    (float, float)
        ``(nan, nan)`` when no resample is usable.

    Examples
    --------
    >>> paired_bootstrap_interval(np.zeros(4), np.array([1.0, 2.0, 3.0, 4.0]), 0.5)
    (1.75, 3.25)
    """
    delta = np.asarray(new, dtype=float) - np.asarray(previous, dtype=float)
    delta = delta[~np.isnan(delta)]
    if delta.size == 0:
        return (math.nan, math.nan)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(delta, [tail, 100.0 - tail])
    return (float(low), float(high))


def bootstrap_weights(n_items: int, resamples: int, seed: int) -> np.ndarray:
    """Multiplicities of ``n_items`` items in ``resamples`` resamples with replacement (seeded).

    Examples
    --------
    >>> bootstrap_weights(3, 2, 0).sum(axis=1).tolist()
    [3, 3]
    """
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_items, np.full(n_items, 1.0 / n_items), size=resamples)


@dataclass(frozen=True)
class EvaluationOutcome:
    """Votes of the precision-recall comparison and what they were computed from."""

    votes: tuple[Vote, ...]
    evaluations: dict = field(default_factory=dict)  # geometry -> (previous evaluation, new evaluation)
    summary: dict = field(default_factory=dict)  # geometry -> per-label AP of both models (JSON)


def _resampled_ap(
    evaluation: metrics.DetectionEvaluation, universe: pd.Index, weights: np.ndarray, interpolation: str
) -> pd.DataFrame:
    """(n_resamples x labels) AP of one model on the paired resamples (columns: label values)."""
    matches = evaluation.matches
    columns = universe.get_indexer(pd.Index(matches.item_ids))
    ap = metrics.average_precision_from_matches(matches, weights[:, columns], interpolation=interpolation)
    return pd.DataFrame(ap[:, :, 0], columns=pd.Index(matches.labels))


def evaluation_votes(tables: dict[str, EvaluationTables], config: PrecisionRecallConfig) -> EvaluationOutcome:
    """Precision-recall votes: one per geometry (mean AP), or one per geometry and label.

    Parameters
    ----------
    tables : dict
        From ``annotation_tables`` (checked with ``check_tables``).
    config : PrecisionRecallConfig

    Returns
    -------
    EvaluationOutcome

    Examples
    --------
    >>> box = {"type": "box", "label": "cat", "left": 0, "top": 0, "right": 5, "bottom": 5}
    >>> records = [dict(box, item_id="i1", model_id=None),
    ...            dict(box, item_id="i1", model_id="old", confidence=0.9, right=1),
    ...            dict(box, item_id="i1", model_id="new", confidence=0.9)]
    >>> outcome = evaluation_votes(annotation_tables(records, "old", "new"), PrecisionRecallConfig())
    >>> [(v.name, v.previous, v.new, v.won) for v in outcome.votes]
    [('precision_recall.box', 0.0, 1.0, True)]
    """
    votes: list[Vote] = []
    evaluations: dict = {}
    summary: dict = {}
    for geometry, table in tables.items():
        if table.ground_truth.empty:
            logger.info(
                "%s: %d/%d predictions but no ground truth of this type; not scored",
                geometry,
                len(table.previous),
                len(table.new),
            )
            continue
        previous_eval, new_eval = _evaluate(table, table.previous, config), _evaluate(table, table.new, config)
        evaluations[geometry] = (previous_eval, new_eval)
        gt_labels = sorted(table.ground_truth["label"].unique())
        previous_ap = previous_eval.per_label["ap"].reindex(gt_labels)
        new_ap = new_eval.per_label["ap"].reindex(gt_labels)
        summary[geometry] = {
            "labels": gt_labels,
            "previous_ap": [float(v) for v in previous_ap.fillna(0.0)],
            "new_ap": [float(v) for v in new_ap.fillna(0.0)],
            "ground_truth": int(len(table.ground_truth)),
            "previous_predictions": int(len(table.previous)),
            "new_predictions": int(len(table.new)),
        }
        resampled = None
        if config.confidence is not None:
            if geometry == "class":
                raise ValueError(
                    "compare_config.precision_recall.confidence: the paired bootstrap is available for box, polygon "
                    "and mask annotations only, and the test subset holds classification annotations; remove "
                    "'confidence' or compare detections"
                )
            universe = pd.Index(
                sorted(set(table.ground_truth["item_id"]) | set(table.previous["item_id"]) | set(table.new["item_id"]))
            )
            weights = bootstrap_weights(len(universe), config.resamples, config.seed)
            resampled = (
                _resampled_ap(previous_eval, universe, weights, config.interpolation).reindex(columns=gt_labels),
                _resampled_ap(new_eval, universe, weights, config.interpolation).reindex(columns=gt_labels),
            )
        name = f"precision_recall.{geometry}"
        if config.per_label:
            targets = [(f"{name}[{label}]", [label]) for label in gt_labels]
        else:
            targets = [(name, gt_labels)]
        for vote_name, vote_labels in targets:
            if config.per_label:
                prev_value, new_value = float(previous_ap[vote_labels[0]]), float(new_ap[vote_labels[0]])
            else:  # mean over the labels with ground truth, as nodes.metrics defines mean_ap
                prev_value, new_value = previous_eval.mean_ap, new_eval.mean_ap
            interval = None
            if resampled is not None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN resamples of rare labels
                    prev_r = _mean_over_labels(resampled[0][vote_labels], resampled[1][vote_labels], first=True)
                    new_r = _mean_over_labels(resampled[0][vote_labels], resampled[1][vote_labels], first=False)
                interval = paired_bootstrap_interval(prev_r, new_r, config.confidence)
            votes.append(
                judge_vote(
                    vote_name,
                    prev_value,
                    new_value,
                    min_delta=config.min_delta,
                    min_relative_change=config.min_relative_change,
                    interval=interval,
                )
            )
    if not votes:
        raise ValueError(
            "compare_config.precision_recall: nothing to score on the test subset (no ground truth of an "
            "annotation type the models predicted); check the annotation types or compare_config.precision_recall.labels"
        )
    return EvaluationOutcome(tuple(votes), evaluations, summary)


def _mean_over_labels(previous: pd.DataFrame, new: pd.DataFrame, first: bool) -> np.ndarray:
    """Per-resample mean AP over labels that have ground truth in that resample.

    In a resample a label either has ground truth (both models' AP defined; a model without
    predictions of it has AP 0) or not (NaN for both); NaN predictions-only APs become 0.
    """
    has_gt = ~(previous.isna() & new.isna()).to_numpy()
    frame = previous if first else new
    values = np.where(has_gt, frame.fillna(0.0).to_numpy(), np.nan)
    return np.nanmean(values, axis=1)


# --------------------------------------------------------------------------------------------
# Pure part: the stored report
# --------------------------------------------------------------------------------------------


def updated_metadata(metadata: dict | None, report: ComparisonReport, tag_decision: bool) -> dict:
    """A new metadata dict for the new model: the report, and the decision tag if asked.

    The input is not modified. The tag of the other action is removed, so re-running a
    comparison that now decides differently leaves exactly one decision tag.

    Examples
    --------
    >>> from nodes.compare_config import CompareConfig
    >>> config = CompareConfig.from_json({"checks": [{"legend": "v", "figure": "f"}]})
    >>> report = ComparisonReport.decide([], config, "p", "n")
    >>> meta = updated_metadata({"system": {"tags": {"update model": True}}}, report, True)
    >>> meta["system"]["tags"], meta["user"]["activeLearning"]["comparison"]["decision"]
    ({'discard': True}, 'discard')
    """
    out = copy.deepcopy(metadata) if isinstance(metadata, dict) else {}
    if not isinstance(out.get("user"), dict):
        out["user"] = {}
    if not isinstance(out["user"].get(REPORT_KEY), dict):
        out["user"][REPORT_KEY] = {}
    out["user"][REPORT_KEY]["comparison"] = report.to_json()
    if tag_decision:
        if not isinstance(out.get("system"), dict):
            out["system"] = {}
        if not isinstance(out["system"].get("tags"), dict):
            out["system"]["tags"] = {}
        for action in ACTIONS:
            out["system"]["tags"].pop(action, None)
        out["system"]["tags"][report.decision] = True
    return out


# --------------------------------------------------------------------------------------------
# Edge: everything below talks to the platform through dtlpy
# --------------------------------------------------------------------------------------------


def _pages(paged: Any) -> Iterator[list]:
    """Every page of a dtlpy ``PagedEntities``, without re-fetching the first one."""
    yield paged.items
    while paged.has_next_page:
        paged.next_page()
        if not paged.items:
            break
        yield paged.items


def list_metric_samples(model: Any) -> pd.DataFrame:
    """EDGE. All pages of ``model.metrics`` as a DataFrame ``figure, legend, x, y`` (M6).

    Examples
    --------
    >>> # list_metric_samples(dl.models.get(model_id="...")).query("figure == 'box_loss'")
    """
    import dtlpy as dl

    paged = model.metrics.list(filters=dl.Filters(resource=dl.FiltersResource.METRICS, page_size=PAGE_SIZE))
    records = [{"figure": s.figure, "legend": s.legend, "x": s.x, "y": s.y} for page in _pages(paged) for s in page]
    logger.debug("model %s: %d metric samples", model.id, len(records))
    return samples_frame(records)


def list_test_item_ids(dataset: Any, query: dict) -> list[str]:
    """EDGE. Ids of the items matched by the test-subset DQL (one paged items query).

    Examples
    --------
    >>> # list_test_item_ids(dataset, load_subset_filter("test"))
    """
    import dtlpy as dl

    filters = dl.Filters(resource=dl.FiltersResource.ITEM, custom_filter=copy.deepcopy(query))
    return [doc["id"] for page in json_pages(dataset.items, filters, page_size=PAGE_SIZE) for doc in page]


def _model_fields(metadata: Any) -> dict:
    """``model_id`` and ``confidence`` from an annotation's metadata (``None`` for ground truth)."""
    user = metadata.get("user") if isinstance(metadata, dict) else None
    model = user.get("model") if isinstance(user, dict) else None
    if model is None:
        return {"model_id": None, "confidence": None}
    if not isinstance(model, dict):
        return {"model_id": "", "confidence": None}
    return {"model_id": model.get("model_id", ""), "confidence": model.get("confidence")}


def annotation_record(doc: dict) -> dict:
    """The fields of one annotation the comparison needs, read straight from its platform JSON.

    Gives what :func:`_annotation_record` gives for ``dl.Annotation.from_json(_json=doc)``
    without building the entity (~1.5 ms each, most of a large listing's time), for the types
    read here: ``box`` (min / max of x and y over the first two coordinate points, as dtlpy's
    ``Box.from_json``), ``segment`` (the points of ``coordinates[0]``, as dtlpy's
    ``Polygon.from_json``) and ``class`` (no geometry). Binary masks, any other type, video
    annotations (``metadata.system.endFrame`` > 0) and documents dtlpy would read differently or
    reject go through ``dl.Annotation.from_json`` for that document only. ``doc`` is not modified.

    Examples
    --------
    >>> doc = {"id": "a1", "itemId": "i1", "type": "box", "label": "cat", "metadata": {},
    ...        "coordinates": [{"x": 9, "y": 1}, {"x": 2, "y": 5}]}
    >>> {k: annotation_record(doc)[k] for k in ("item_id", "left", "top", "right", "bottom", "model_id")}
    {'item_id': 'i1', 'left': 2, 'top': 1, 'right': 9, 'bottom': 5, 'model_id': None}
    """
    kind = doc.get("type")
    metadata = doc.get("metadata", {})
    system = metadata.get("system", {}) if isinstance(metadata, dict) else None
    end_frame = system.get("endFrame", 0) if isinstance(system, dict) else None
    still = isinstance(end_frame, (int, float)) and end_frame <= 0  # dtlpy reads endFrame > 0 as video
    if kind in ("box", "segment", "class") and still and "label" in doc:
        try:
            record = {"item_id": doc.get("itemId"), "type": kind, "label": doc["label"], **_model_fields(metadata)}
            coordinates = doc.get("coordinates", [])
            if kind == "box":
                points = coordinates[:2]
                xs, ys = [point["x"] for point in points], [point["y"] for point in points]
                record.update(left=min(xs), top=min(ys), right=max(xs), bottom=max(ys))
            elif kind == "segment":
                points = [[point["x"], point["y"]] for point in coordinates[0]]
                record["polygon"] = np.asarray(points, dtype=float)
            return record
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            pass  # not the shape read here: dtlpy decides (and raises what it raises)
    import dtlpy as dl

    return _annotation_record(dl.Annotation.from_json(_json=copy.deepcopy(doc)))


def _annotation_record(annotation: Any) -> dict:
    """EDGE helper: the fields of a ``dl.Annotation`` the comparison needs, as plain values
    (the path of the documents :func:`annotation_record` does not read itself)."""
    record = {
        "item_id": annotation.item_id,
        "type": annotation.type,
        "label": annotation.label,
        **_model_fields(annotation.metadata or {}),
    }
    geometry = ANNOTATION_GEOMETRY.get(annotation.type)
    if geometry == "box":
        record.update(left=annotation.left, top=annotation.top, right=annotation.right, bottom=annotation.bottom)
    elif geometry == "polygon":
        record["polygon"] = np.asarray(annotation.geo, dtype=float)
    elif geometry == "mask":
        record["mask"] = np.asarray(annotation.geo) > 0
    return record


def list_test_annotations(
    dataset: Any, test_query: dict, item_ids: Sequence[str], model_ids: Sequence[str]
) -> list[dict]:
    """EDGE. Ground truth and the given models' predictions on the test items, as records.

    One dataset-level paged annotation query (1,000 a page, keyset paging by
    ``nodes.common.paging.json_pages``, records read from the raw JSON by ``annotation_record``):
    annotations without ``metadata.user.model`` or whose ``model_id`` is one of
    ``model_ids``, joined with the test-subset item filter (dtlpy's annotation -> item
    ``join``). Rows are then also filtered to ``item_ids``, so a server that ignores the
    join still gives the right answer (with more pages). Never one request per item.

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
        for doc in page:
            if doc.get("itemId") in wanted:
                records.append(annotation_record(doc))
            else:
                outside += 1
    if outside:
        logger.debug("dropped %d annotations of items outside the test subset (join not applied)", outside)
    return records


@dataclass(frozen=True)
class Comparison:
    """What ``compare`` found: the report and the evaluation behind it (for plots)."""

    report: ComparisonReport
    evaluation: EvaluationOutcome | None = None


def _model_label(kind: str, model: Any) -> str:
    return f"{kind} model {getattr(model, 'name', '?')!r} ({model.id})"


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
    if config.precision_recall is not None:
        pr = config.precision_recall
        dataset_label = f"dataset {dataset.name!r}"
        item_ids = list_test_item_ids(dataset, pr.test_subset_query())
        records = list_test_annotations(dataset, pr.test_subset_query(), item_ids, [previous_model.id, new_model.id])
        tables = annotation_tables(records, previous_model.id, new_model.id, pr.labels)
        check_tables(tables, previous_label, new_label, dataset_label, len(item_ids))
        outcome = evaluation_votes(tables, pr)
        votes += outcome.votes
        details = {"testItems": len(item_ids), "annotations": len(records), "perLabelAP": outcome.summary}
    report = ComparisonReport.decide(
        votes,
        config,
        previous_model.id,
        new_model.id,
        dataset_id=dataset.id if dataset is not None and config.precision_recall is not None else None,
        details=details,
    )
    return Comparison(report, outcome)


def _item_metadata_enabled(context: Any) -> bool:
    """EDGE. ``customNodeConfig.itemMetadata`` of the pipeline node; False outside a pipeline (M13)."""
    if context is None:
        return False
    node = getattr(context, "node", None)
    if node is None:
        return False
    node_metadata = getattr(node, "metadata", None) or {}
    custom = node_metadata.get("customNodeConfig") if isinstance(node_metadata, dict) else None
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
    if previous_model is None or new_model is None:
        missing = "previous_model" if previous_model is None else "new_model"
        raise ValueError(f"{missing}: None; connect a model to the Compare Models node's {missing} input")
    if previous_model.id == new_model.id:
        raise ValueError(
            f"new_model: {new_model.id!r} is the same model as previous_model; connect the newly trained model"
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
        See ``nodes.compare_config``; ``None`` selects the packaged default.
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
    if progress is not None:
        progress.update(action=UPDATE_MODEL if report.new_model_wins else DISCARD)
    return winner


# --------------------------------------------------------------------------------------------
# Command line: python main.py compare --previous ID --new ID --dataset ID [--config FILE] [--out DIR]
# --------------------------------------------------------------------------------------------


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python main.py compare``.

    Examples
    --------
    >>> parser = argparse.ArgumentParser()
    >>> add_cli_arguments(parser)
    >>> parser.parse_args(["--previous", "a", "--new", "b"]).out
    'compare_report'
    """
    parser.add_argument("--previous", required=True, metavar="ID", help="id of the previous (current) model")
    parser.add_argument("--new", required=True, metavar="ID", help="id of the newly trained model")
    parser.add_argument(
        "--dataset", metavar="ID", help="id of the dataset both models were evaluated on (needed for precision_recall)"
    )
    parser.add_argument("--config", metavar="FILE", help="compare_config JSON file (default: the packaged one)")
    parser.add_argument("--out", metavar="DIR", default="compare_report", help="output folder (default: %(default)s)")
    parser.add_argument(
        "--store",
        action="store_true",
        help="also store the report on the new model (metadata.user.activeLearning.comparison)",
    )


def plot_pr_curves(outcome: EvaluationOutcome | None, path: Path, previous_name: str, new_name: str) -> None:
    """Both models' precision-recall curves, one panel per (geometry, label), to ``path`` (PNG).

    Examples
    --------
    >>> # plot_pr_curves(comparison.evaluation, Path("out/pr_curves.png"), "previous", "new")
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []
    if outcome is not None:
        for geometry, (previous_eval, new_eval) in outcome.evaluations.items():
            for label in outcome.summary[geometry]["labels"][:MAX_PLOTTED_LABELS]:
                panels.append((geometry, label, previous_eval, new_eval))
    n = max(1, len(panels))
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 4 * rows), squeeze=False)
    for ax in axes.ravel()[len(panels) :]:
        ax.axis("off")
    if not panels:
        axes[0, 0].text(0.5, 0.5, "no precision-recall comparison\n(training metrics only)", ha="center", va="center")
    for ax, (geometry, label, previous_eval, new_eval) in zip(axes.ravel(), panels, strict=False):
        for evaluation, name, style in ((previous_eval, previous_name, "--"), (new_eval, new_name, "-")):
            try:
                curve = evaluation.curve(label)
            except ValueError:
                continue
            ax.step(np.r_[0.0, curve.recall], np.r_[1.0, curve.precision], style, where="post", label=name)
        ax.set_title(f"{geometry}: {label}")
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
        ax.legend(loc="lower left", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _get_entity(getter: Any, option: str, **ids: str) -> Any:
    """EDGE. Get one entity by id; an unknown id is a ``ValueError`` naming the CLI option."""
    import dtlpy as dl

    try:
        return getter(**ids)
    except dl.exceptions.NotFound:
        raise ValueError(f"{option}: {next(iter(ids.values()))!r} not found; check the id") from None


def run_cli(args: argparse.Namespace) -> int:
    """Run the comparison from a terminal; write ``report.md`` and ``pr_curves.png`` to ``--out``.

    Read only unless ``--store``. Exit code 0 (the decision is in the report), 2 on bad input.

    Examples
    --------
    >>> # python main.py compare --previous <id> --new <id> --dataset <id> --out report/
    """
    try:
        raw = None
        if args.config:
            with open(args.config, encoding="utf-8") as f:
                text = f.read()
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as error:
                raise ValueError(f"--config {args.config}: not valid JSON ({error}); fix the file") from None
        config = CompareConfig.from_json(raw)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    import dtlpy as dl

    try:
        previous_model = _get_entity(dl.models.get, "--previous", model_id=args.previous)
        new_model = _get_entity(dl.models.get, "--new", model_id=args.new)
        dataset = _get_entity(dl.datasets.get, "--dataset", dataset_id=args.dataset) if args.dataset else None
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        _check_inputs(previous_model, new_model, config, dataset)
        comparison = compare(previous_model, new_model, config, dataset)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = comparison.report
    (out / "report.md").write_text(report.markdown(previous_model.name, new_model.name), encoding="utf-8")
    plot_pr_curves(comparison.evaluation, out / "pr_curves.png", previous_model.name, new_model.name)
    if args.store:
        store_report(new_model, report, tag_decision=False)
    print(report.table())
    print(f"wrote {out / 'report.md'} and {out / 'pr_curves.png'}")
    return 0
