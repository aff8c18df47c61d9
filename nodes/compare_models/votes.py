"""Compare Models decisions, as data: every vote, the ``wins`` rule and bootstrap confidence.

Pure functions over plain values and DataFrames, no dtlpy; all metric math is ``nodes.metrics``.
A *vote* is one sub-comparison, won when ``new - previous > min_delta`` (strict), and, if set,
the relative change is at least ``min_relative_change`` and the lower bound of the
paired-bootstrap interval of the difference is ``> min_delta``:

- precision-recall votes (``evaluation_votes``): per geometry, the mean AP over the labels that
  have ground truth (one vote per geometry), or each label's AP with ``per_label``;
- training-metric votes (``training_votes``): the value of a figure/legend at ``x_index``;
- the new model wins when the fraction of won votes is at least ``wins`` (``new_model_wins``).

``check_tables`` refuses an unfair evaluation: both models must have predictions on exactly the
same test items (a model's evaluated items are those holding at least one of its predictions).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from nodes import metrics
from nodes.compare_models.config import PlotCheck, PrecisionRecallConfig
from nodes.compare_models.records import EvaluationTables

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Vote:
    """One sub-comparison between the previous and the new model.

    ``delta`` is always oriented so that positive means "the new model is better"
    (for a minimised training metric it is ``previous - new``).

    Examples
    --------
    >>> judge_vote("precision_recall", 0.5, 0.6, min_delta=0.0).won
    True
    """

    name: str
    previous: float
    new: float
    delta: float
    won: bool
    reason: str
    relative_change: float | None = None
    interval: tuple[float, float] | None = None

    def to_json(self) -> dict:
        """Plain-JSON form (NaN and infinities become ``None``)."""
        return {
            "name": self.name,
            "previous": _finite_or_none(self.previous),
            "new": _finite_or_none(self.new),
            "delta": _finite_or_none(self.delta),
            "relative_change": _finite_or_none(self.relative_change),
            "interval": None if self.interval is None else [_finite_or_none(v) for v in self.interval],
            "won": self.won,
            "reason": self.reason,
        }


def _finite_or_none(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def relative_change(previous: float, new: float) -> float:
    """``(new - previous) / |previous|``; ``+inf`` when ``previous`` is 0 and ``new`` is larger.

    Examples
    --------
    >>> relative_change(0.5, 0.55)
    0.10000000000000009
    >>> relative_change(0.0, 0.1)
    inf
    """
    delta = new - previous
    if previous == 0:
        return math.inf if delta > 0 else (-math.inf if delta < 0 else 0.0)
    return delta / abs(previous)


def judge_vote(
    name: str,
    previous: float,
    new: float,
    min_delta: float,
    min_relative_change: float | None = None,
    interval: tuple[float, float] | None = None,
    higher_is_better: bool = True,
) -> Vote:
    """Decide one vote.

    The new model wins the vote when ``delta > min_delta`` (strict: a tie never wins, as
    the original app), and, if ``min_relative_change`` is set, ``delta / |previous| >=
    min_relative_change``, and, if a bootstrap ``interval`` of the delta is given, its
    lower bound is ``> min_delta``. ``delta = new - previous`` (``previous - new`` when
    lower is better). A NaN value never wins.

    Parameters
    ----------
    name : str
        The vote's name in the report.
    previous, new : float
        The quantity for each model.
    min_delta : float
        Required margin.
    min_relative_change : float, optional
        Required relative improvement (0.05 = 5 %).
    interval : (float, float), optional
        Confidence interval of ``delta`` (paired bootstrap).
    higher_is_better : bool
        False for losses.

    Returns
    -------
    Vote

    Examples
    --------
    >>> judge_vote("loss", 0.30, 0.25, min_delta=0.01, higher_is_better=False).won
    True
    >>> judge_vote("ap", 0.5, 0.5, min_delta=0.0).won      # a tie is not an improvement
    False
    """
    previous, new = float(previous), float(new)
    delta = (new - previous) if higher_is_better else (previous - new)
    relative = None
    if min_relative_change is not None:
        relative = relative_change(previous, new) if higher_is_better else relative_change(-previous, -new)
    if math.isnan(delta):
        return Vote(name, previous, new, delta, False, "a value is missing (NaN)", relative, interval)
    if not delta > min_delta:
        reason = f"delta {delta:+.4g} is not > min_delta {min_delta:g}"
        return Vote(name, previous, new, delta, False, reason, relative, interval)
    if relative is not None and not relative >= min_relative_change:
        reason = f"relative change {relative:+.2%} is below min_relative_change {min_relative_change:.2%}"
        return Vote(name, previous, new, delta, False, reason, relative, interval)
    if interval is not None and not interval[0] > min_delta:
        reason = f"interval lower bound {interval[0]:+.4g} is not > min_delta {min_delta:g} (not significant)"
        return Vote(name, previous, new, delta, False, reason, relative, interval)
    return Vote(name, previous, new, delta, True, f"delta {delta:+.4g} > min_delta {min_delta:g}", relative, interval)


def new_model_wins(won: Sequence[bool], wins: str | float) -> bool:
    """Apply the ``wins`` rule to the votes.

    ``"all"``: every vote won; ``"any"``: at least one; a number ``w`` in (0, 1]: the
    fraction of won votes is **at least** ``w`` (``>=``, as the original docs say
    "at least"; 2 of 3 votes pass ``0.6`` and ``2/3``). With no votes at all the new
    model does not win, whatever the rule: there is no evidence it is better.

    Parameters
    ----------
    won : sequence of bool
        One entry per vote.
    wins : {"any", "all"} or float
        As returned by ``nodes.compare_models.config.parse_wins``.

    Returns
    -------
    bool

    Examples
    --------
    >>> new_model_wins([True, True, False], 0.6), new_model_wins([True, False], "all")
    (True, False)
    >>> new_model_wins([], "all")
    False
    """
    won = [bool(w) for w in won]
    if not won:
        return False
    if wins == "all":
        return all(won)
    if wins == "any":
        return any(won)
    if isinstance(wins, str) or isinstance(wins, bool):
        raise ValueError(f"wins: {wins!r} is not 'any', 'all' or a number in (0, 1]; example: \"wins\": 0.6")
    # Compare counts, not floats: sum/len >= w  <=>  sum >= w * len, with a tolerance so that
    # 2 of 3 votes pass wins = 2/3 written as 0.6666666666666666.
    return sum(won) >= float(wins) * len(won) - 1e-9


def metric_value_at(samples: pd.DataFrame, check: PlotCheck, model_label: str) -> float:
    """The y of ``check.figure``/``check.legend`` at ``check.x_index`` after sorting by x.

    Parameters
    ----------
    samples : DataFrame
        A model's metric samples with columns ``figure``, ``legend``, ``x``, ``y`` (all pages).
    check : PlotCheck
    model_label : str
        ``"previous model <name>"`` / ``"new model <name>"``, for the error message.

    Raises
    ------
    ValueError
        When the model has no such figure/legend (the message lists the pairs it has) or
        ``x_index`` is out of range.

    Examples
    --------
    >>> df = pd.DataFrame({"figure": ["loss"] * 3, "legend": ["val"] * 3, "x": [2, 0, 1], "y": [.1, .3, .2]})
    >>> metric_value_at(df, PlotCheck(legend="val", figure="loss"), "new model m")
    0.1
    """
    rows = samples[(samples["figure"] == check.figure) & (samples["legend"] == check.legend)]
    if rows.empty:
        pairs = sorted({(str(f), str(lg)) for f, lg in zip(samples["figure"], samples["legend"], strict=True)})
        have = ", ".join(f"{f!r}/{lg!r}" for f, lg in pairs) or "no metrics at all"
        raise ValueError(
            f"{check.name}: {model_label} has no metric with figure {check.figure!r} and legend {check.legend!r}; "
            f"it has (figure/legend): {have}; fix compare_config.checks to name one of these"
        )
    rows = rows.sort_values("x", kind="mergesort")
    if not -len(rows) <= check.x_index < len(rows):
        raise ValueError(
            f"{check.name}: x_index {check.x_index} is out of range for {model_label}, which has {len(rows)} "
            f"samples of this metric; use an index in [-{len(rows)}, {len(rows) - 1}], e.g. -1 for the last"
        )
    return float(rows["y"].iloc[check.x_index])


def training_votes(
    previous: pd.DataFrame,
    new: pd.DataFrame,
    checks: Sequence[PlotCheck],
    previous_label: str = "previous model",
    new_label: str = "new model",
) -> list[Vote]:
    """One vote per training-metric check (strict comparison with each check's ``min_delta``).

    Examples
    --------
    >>> prev = pd.DataFrame({"figure": ["map"], "legend": ["val"], "x": [0], "y": [0.4]})
    >>> new = pd.DataFrame({"figure": ["map"], "legend": ["val"], "x": [0], "y": [0.5]})
    >>> training_votes(prev, new, [PlotCheck(legend="val", figure="map")])[0].won
    True
    """
    votes = []
    for check in checks:
        votes.append(
            judge_vote(
                check.name,
                metric_value_at(previous, check, previous_label),
                metric_value_at(new, check, new_label),
                min_delta=check.min_delta,
                higher_is_better=check.maximize,
            )
        )
    return votes


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
    >>> from nodes.compare_models.records import annotation_tables
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
