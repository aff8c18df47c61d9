"""Compare Models evaluation votes: precision-recall on the test subset, with the paired bootstrap.

``check_tables`` refuses only what cannot be compared; ``prediction_coverage`` describes each
model's coverage of the test items; ``evaluation_votes`` gives one vote per geometry (mean AP) or
per geometry and label, judged by ``nodes.compare_models.votes.judge_vote``, with a paired
bootstrap interval of the delta when ``confidence`` is set (resampled block by block). All metric
math is ``nodes.metrics``; the evaluated items are described in docs/nodes.md. Pure, no dtlpy.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from nodes import metrics
from nodes.common.limits import cut
from nodes.compare_models.config import PrecisionRecallConfig
from nodes.compare_models.records import EvaluationTables
from nodes.compare_models.votes import Vote, judge_vote

logger = logging.getLogger(__name__)


def _evaluate(table: EvaluationTables, predictions: pd.DataFrame, config: PrecisionRecallConfig, item_ids: set) -> Any:
    """One model's evaluation of one geometry (all math in nodes.metrics).

    Classification is scored over ``item_ids`` (the same items for both models), so an item a
    model gave no class is a miss for it rather than an item left out.
    """
    if table.geometry == "class":
        return metrics.evaluate_classification(
            table.ground_truth, predictions, interpolation=config.interpolation, item_ids=sorted(item_ids)
        )
    return metrics.evaluate_detections(
        table.ground_truth,
        predictions,
        iou_threshold=config.iou_threshold,
        interpolation=config.interpolation,
        geometry=table.geometry,
    )


#: Coverage gap (in percentage points of the test items) above which the report warns.
COVERAGE_WARNING_POINTS = 10


def prediction_coverage(test_item_ids: Iterable[Any], previous_items: Iterable[Any], new_items: Iterable[Any]) -> dict:
    """Each model's coverage: test items with at least one of its predictions / test items.

    "More than 10 %" is read as percentage points of the test items: the report warns when
    ``|previous items - new items| / test items > 0.10``, compared exactly in integers
    (``10 * |difference| > test items``), so a gap of exactly 10 points does not warn.

    Parameters
    ----------
    test_item_ids : iterable
        The test-subset items (the evaluated items).
    previous_items, new_items : iterable
        Items holding at least one prediction of each model (of any annotation type); items
        outside the test subset are not counted.

    Returns
    -------
    dict
        ``{"testItems", "previous": {"items", "coverage"}, "new": {...}, "gapPoints", "warning"}``;
        ``warning`` is ``None`` or the text the node logs and the report shows.

    Examples
    --------
    >>> cov = prediction_coverage(range(10), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [0, 1, 2, 3, 4, 5, 6, 7, 8])
    >>> cov["previous"]["coverage"], cov["new"]["coverage"], cov["warning"]
    (1.0, 0.9, None)
    >>> prediction_coverage(range(10), range(10), range(8))["warning"] is not None
    True
    """
    tests = set(test_item_ids)
    n = len(tests)
    counts = {"previous": len(tests.intersection(previous_items)), "new": len(tests.intersection(new_items))}
    gap = abs(counts["previous"] - counts["new"])
    out: dict[str, Any] = {"testItems": n}
    for who, count in counts.items():
        out[who] = {"items": count, "coverage": count / n if n else 0.0}
    out["gapPoints"] = 100.0 * gap / n if n else 0.0
    out["warning"] = None
    if n and 100 * gap > COVERAGE_WARNING_POINTS * n:
        out["warning"] = (
            f"coverage differs by {out['gapPoints']:.1f} percentage points (> {COVERAGE_WARNING_POINTS}): the previous "
            f"model has predictions on {counts['previous']} of {n} test items, the new model on {counts['new']}; "
            f"items without predictions count as misses, so check that Evaluate ran on the whole test subset for both"
        )
    return out


def check_tables(
    tables: dict[str, EvaluationTables],
    previous_label: str,
    new_label: str,
    dataset_label: str,
    n_test_items: int,
    predicted_items: dict[str, int] | None = None,
    skipped: dict[str, Sequence[dict]] | None = None,
) -> None:
    """Refuse to compare only what cannot be compared; every message says what to do.

    Raises ``ValueError`` when the test subset is empty, when it holds no ground truth, or
    when a model has no prediction on any test item (it was never evaluated: "run Evaluate
    ... first"). Models with predictions on different test items are compared: a test item
    without a model's predictions is one where it detected nothing.

    Parameters
    ----------
    tables : dict
        From ``annotation_tables``.
    previous_label, new_label, dataset_label : str
        Names for the messages.
    n_test_items : int
        Items matched by the test subset.
    predicted_items : dict, optional
        ``{"previous": n, "new": n}``: test items holding at least one prediction of each
        model, of any type and label (``prediction_coverage``). Default: counted from ``tables``.
    skipped : dict, optional
        ``{"previous": [...], "new": [...]}``: each model's malformed predictions that were left
        out (``records.read_annotations``); a model refused for having no prediction is told
        which of its annotations were skipped.

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
        if predicted_items is not None:
            count = predicted_items[attr]
        else:
            count = sum(len(getattr(t, attr)) for t in tables.values())
        if count == 0:
            bad = list((skipped or {}).get(attr) or [])
            if bad:
                raise ValueError(
                    f"{label} has no well-formed predictions on the {n_test_items} test-subset items of "
                    f"{dataset_label}: all {len(bad)} of its predictions there were malformed and skipped "
                    f"({skipped_examples(bad)}); fix or re-upload them (run Evaluate again for this model)"
                )
            raise ValueError(
                f"{label} has no predictions on any of the {n_test_items} test-subset items of {dataset_label}: "
                f"it was never evaluated there; run Evaluate on {dataset_label.removeprefix('dataset ')} first "
                f"(for this model)"
            )


def skipped_examples(skipped: Sequence[dict], limit: int = 3) -> str:
    """The first ``limit`` skipped annotations as ``annotation <id> on item <id>: <reason>`` (cut).

    Examples
    --------
    >>> skipped_examples([{"annotationId": f"a{i}", "itemId": "i1", "reason": "empty coordinates"} for i in range(5)])
    'annotation a0 on item i1: empty coordinates; annotation a1; annotation a2; ... and 2 more'
    """
    shown = [
        f"annotation {cut(entry.get('annotationId'), 40)} on item {cut(entry.get('itemId'), 40)}: "
        f"{cut(entry.get('reason'), 80)}"
        for entry in skipped[:1]
    ]
    shown += [f"annotation {cut(entry.get('annotationId'), 40)}" for entry in skipped[1:limit]]
    more = len(skipped) - min(len(skipped), limit)
    return "; ".join(shown) + (f"; ... and {more} more" if more else "")


def percentile_interval(delta: np.ndarray, confidence: float) -> tuple[float, float]:
    """Two-sided percentile interval of bootstrap deltas (NaN entries are left out).

    Examples
    --------
    >>> percentile_interval(np.array([1.0, 2.0, 3.0, 4.0, np.nan]), 0.5)
    (1.75, 3.25)
    """
    delta = np.asarray(delta, dtype=float)
    delta = delta[~np.isnan(delta)]
    if delta.size == 0:
        return (math.nan, math.nan)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(delta, [tail, 100.0 - tail])
    return (float(low), float(high))


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
    return percentile_interval(np.asarray(new, dtype=float) - np.asarray(previous, dtype=float), confidence)


#: Weights (resamples x items) generated and scored at once: 2**20 elements, 8 MiB per copy.
BOOTSTRAP_BLOCK_ELEMENTS = 2**20


def bootstrap_block_size(n_items: int, resamples: int) -> int:
    """Resamples per block so that one block of weights holds at most ``BOOTSTRAP_BLOCK_ELEMENTS``.

    Examples
    --------
    >>> bootstrap_block_size(1000, 100_000), bootstrap_block_size(10, 1000)
    (1048, 1000)
    """
    return max(1, min(resamples, BOOTSTRAP_BLOCK_ELEMENTS // max(1, n_items)))


def bootstrap_weight_blocks(n_items: int, resamples: int, seed: int, block: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(first resample, weights)`` blocks of :func:`bootstrap_weights`, ``block`` resamples each.

    One seeded generator draws the resamples in order, one multinomial row per resample, so the
    rows are the same whatever ``block`` is (memory is bounded by ``block * n_items``).

    Examples
    --------
    >>> [w.shape for _, w in bootstrap_weight_blocks(3, 5, 0, block=2)]
    [(2, 3), (2, 3), (1, 3)]
    """
    if block < 1:
        raise ValueError(f"bootstrap block: {block!r} is not a positive number of resamples")
    rng = np.random.default_rng(seed)
    probabilities = np.full(n_items, 1.0 / n_items)
    for start in range(0, resamples, block):
        yield start, rng.multinomial(n_items, probabilities, size=min(block, resamples - start))


def bootstrap_weights(n_items: int, resamples: int, seed: int) -> np.ndarray:
    """Multiplicities of ``n_items`` items in ``resamples`` resamples with replacement (seeded).

    Examples
    --------
    >>> bootstrap_weights(3, 2, 0).sum(axis=1).tolist()
    [3, 3]
    """
    blocks = [w for _, w in bootstrap_weight_blocks(n_items, resamples, seed, max(1, resamples))]
    return np.concatenate(blocks) if blocks else np.zeros((0, n_items), dtype=np.int64)


@dataclass(frozen=True)
class EvaluationOutcome:
    """Votes of the precision-recall comparison and what they were computed from."""

    votes: tuple[Vote, ...]
    evaluations: dict = field(default_factory=dict)  # geometry -> (previous evaluation, new evaluation)
    summary: dict = field(default_factory=dict)  # geometry -> per-label AP of both models (JSON)


def _label_positions(evaluation: metrics.DetectionEvaluation, labels: Sequence[Any]) -> np.ndarray:
    """Column of each label in ``evaluation.matches.labels`` (-1 when absent)."""
    return pd.Index(evaluation.matches.labels).get_indexer(pd.Index(labels))


def _bootstrap_deltas(
    previous_eval: metrics.DetectionEvaluation,
    new_eval: metrics.DetectionEvaluation,
    universe: pd.Index,
    gt_labels: Sequence[Any],
    targets: Sequence[tuple[str, list]],
    config: PrecisionRecallConfig,
    block: int | None = None,
) -> np.ndarray:
    """(resamples x votes) paired-bootstrap deltas ``new - previous``, computed block by block.

    Only the deltas are kept (8 bytes x resamples x votes); each block of weights is scored
    and dropped, so memory does not grow with ``resamples`` beyond the deltas.
    """
    resamples = config.resamples
    block = block or bootstrap_block_size(len(universe), resamples)
    label_index = {label: j for j, label in enumerate(gt_labels)}
    target_columns = [np.array([label_index[label] for label in labels]) for _, labels in targets]
    deltas = np.empty((resamples, len(targets)))
    models = []
    for evaluation in (previous_eval, new_eval):
        columns = universe.get_indexer(pd.Index(evaluation.matches.item_ids))
        models.append((evaluation.matches, columns, _label_positions(evaluation, gt_labels)))
    for start, weights in bootstrap_weight_blocks(len(universe), resamples, config.seed, block):
        per_model = []
        for matches, columns, positions in models:
            ap = metrics.average_precision_from_matches(
                matches, weights[:, columns], interpolation=config.interpolation
            )[:, :, 0]
            ap = np.where(positions >= 0, ap[:, np.maximum(positions, 0)], np.nan)  # (B, gt labels)
            per_model.append(ap)
        previous_ap, new_ap = per_model
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN resamples of rare labels
            for j, cols in enumerate(target_columns):
                prev_r = _mean_over_labels(previous_ap[:, cols], new_ap[:, cols], first=True)
                new_r = _mean_over_labels(previous_ap[:, cols], new_ap[:, cols], first=False)
                deltas[start : start + len(weights), j] = new_r - prev_r
    return deltas


def evaluation_votes(
    tables: dict[str, EvaluationTables],
    config: PrecisionRecallConfig,
    item_ids: Iterable[Any] | None = None,
    bootstrap_block: int | None = None,
) -> EvaluationOutcome:
    """Precision-recall votes: one per geometry (mean AP), or one per geometry and label.

    Every ground truth on the test items counts for both models: where a model has no
    prediction, its ground truth is a miss; predictions on items without ground truth are
    false positives. Classification is scored over the same items for both models.

    Parameters
    ----------
    tables : dict
        From ``annotation_tables`` (checked with ``check_tables``).
    config : PrecisionRecallConfig
    item_ids : iterable, optional
        The test-subset items: the population the paired bootstrap resamples (items without
        any annotation included). Default: the items holding ground truth or predictions.
    bootstrap_block : int, optional
        Resamples scored at once (default ``bootstrap_block_size``); the result does not
        depend on it.

    Returns
    -------
    EvaluationOutcome

    Examples
    --------
    >>> box = {"type": "box", "label": "cat", "left": 0, "top": 0, "right": 5, "bottom": 5}
    >>> records = [dict(box, item_id="i1", model_id=None),
    ...            dict(box, item_id="i1", model_id="old", confidence=0.9, right=1),
    ...            dict(box, item_id="i1", model_id="new", confidence=0.9)]
    >>> from nodes.compare_models.records import annotation_tables
    >>> outcome = evaluation_votes(annotation_tables(records, "old", "new"), PrecisionRecallConfig())
    >>> [(v.name, v.previous, v.new, v.won) for v in outcome.votes]
    [('precision_recall.box', 0.0, 1.0, True)]
    """
    test_items = None if item_ids is None else list(item_ids)
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
        annotated = set(table.ground_truth["item_id"]) | set(table.previous["item_id"]) | set(table.new["item_id"])
        previous_eval = _evaluate(table, table.previous, config, annotated)
        new_eval = _evaluate(table, table.new, config, annotated)
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
        name = f"precision_recall.{geometry}"
        if config.per_label:
            targets = [(f"{name}[{label}]", [label]) for label in gt_labels]
        else:
            targets = [(name, gt_labels)]
        deltas = None
        if config.confidence is not None:
            if geometry == "class":
                raise ValueError(
                    "compare_config.precision_recall.confidence: the paired bootstrap is available for box, polygon "
                    "and mask annotations only, and the test subset holds classification annotations; remove "
                    "'confidence' or compare detections"
                )
            universe = pd.Index(sorted(annotated | set(test_items or ())))
            deltas = _bootstrap_deltas(previous_eval, new_eval, universe, gt_labels, targets, config, bootstrap_block)
        for j, (vote_name, vote_labels) in enumerate(targets):
            if config.per_label:
                prev_value, new_value = float(previous_ap[vote_labels[0]]), float(new_ap[vote_labels[0]])
            else:  # mean over the labels with ground truth, as nodes.metrics defines mean_ap
                prev_value, new_value = previous_eval.mean_ap, new_eval.mean_ap
            interval = None if deltas is None else percentile_interval(deltas[:, j], config.confidence)
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


def _mean_over_labels(previous: np.ndarray, new: np.ndarray, first: bool) -> np.ndarray:
    """Per-resample mean AP over labels that have ground truth in that resample.

    In a resample a label either has ground truth (both models' AP defined; a model without
    predictions of it has AP 0) or not (NaN for both); NaN predictions-only APs become 0.
    """
    previous, new = np.asarray(previous, dtype=float), np.asarray(new, dtype=float)
    has_gt = ~(np.isnan(previous) & np.isnan(new))
    frame = previous if first else new
    values = np.where(has_gt, np.nan_to_num(frame, nan=0.0), np.nan)
    return np.nanmean(values, axis=1)
