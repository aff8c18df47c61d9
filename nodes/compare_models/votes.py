"""Compare Models decisions, as data: every vote, the ``wins`` rule and bootstrap confidence.

Pure functions over plain values and DataFrames, no dtlpy; all metric math is ``nodes.metrics``.
A *vote* (the mean AP per geometry, or each label's AP: ``evaluation_votes``; a training metric:
``training_votes``) is won when ``new - previous > min_delta`` (strict), the relative change is at
least ``min_relative_change`` (if set) and the paired-bootstrap lower bound is ``> min_delta`` (if
``confidence`` is set); the new model wins when the fraction of won votes is at least ``wins``
(``new_model_wins``). Every boundary is compared exactly, on the decimals the numbers are written
as (:func:`decimal_value`), never after a float rounding. ``check_tables`` refuses only what cannot
be compared; the evaluated items and coverage are described in docs/nodes.md ("Compare Models").
"""

from __future__ import annotations

import logging
import math
import numbers
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd

from nodes import metrics
from nodes.common.limits import shorten
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


def _cut(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _finite_or_none(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def decimal_value(value: float) -> Fraction | float:
    """The exact value of the decimal a float is written as (its ``repr``); ±inf / NaN unchanged.

    A float stands for the shortest decimal that reads back as it, as ``wins_fraction`` reads
    ``wins``: ``0.1`` is 1/10, so ``0.4 - 0.3`` is exactly 1/10 and a boundary written in a config
    is decided as written, never by a binary rounding. Non-finite values stay floats, which a
    ``Fraction`` compares correctly (``Fraction(1) < inf``; any comparison with NaN is false).

    Examples
    --------
    >>> decimal_value(0.4) - decimal_value(0.3) == decimal_value(0.1), 0.4 - 0.3 == 0.1
    (True, False)
    >>> decimal_value(float("inf"))
    inf
    """
    number = float(value)
    return Fraction(repr(number)) if math.isfinite(number) else number


def relative_change(previous: float, new: float) -> float:
    """``(new - previous) / |previous|`` on the decimals written; ``+inf`` from 0 to a larger value.

    The value :func:`judge_vote` compares with ``min_relative_change`` (exactly, before this
    conversion to a float).

    Examples
    --------
    >>> relative_change(0.5, 0.55), relative_change(0.8, 0.88)
    (0.1, 0.1)
    >>> relative_change(0.0, 0.1)
    inf
    """
    previous, new = float(previous), float(new)
    if not (math.isfinite(previous) and math.isfinite(new)):
        delta = new - previous
        return delta / abs(previous) if previous else math.copysign(math.inf, delta) if delta else 0.0
    return float(_exact_relative(decimal_value(new) - decimal_value(previous), previous))


def _exact_relative(exact_delta: Fraction, previous: float) -> Fraction | float:
    """``exact_delta / |previous|`` exactly; from 0, ±inf (or 0 for no change)."""
    base = abs(decimal_value(previous))
    if base:
        return exact_delta / base
    return math.inf if exact_delta > 0 else (-math.inf if exact_delta < 0 else 0.0)


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
    lower is better). Every comparison is exact on the decimals written
    (:func:`decimal_value` of the values, the thresholds and the interval bound), as ``wins``
    is: ``0.3 -> 0.4`` is a delta of exactly 0.1, not above ``min_delta`` 0.1, and ``0.8 ->
    0.88`` a relative change of exactly 10 %, enough for ``min_relative_change`` 0.1. A value
    that is NaN or ±inf (either model's) loses the vote: the new model does not win it, and a
    warning is logged.

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
    >>> judge_vote("ap", 0.3, 0.4, min_delta=0.1).reason   # exactly min_delta: strict
    'delta +0.1 is not > min_delta 0.1'
    """
    previous, new = float(previous), float(new)
    broken = [f"{who} {value}" for who, value in (("previous", previous), ("new", new)) if not math.isfinite(value)]
    if broken:
        delta = (new - previous) if higher_is_better else (previous - new)
        reason = f"{' and '.join(broken)} is not a finite number; a NaN or infinite value loses the vote"
        logger.warning("%s: %s", name, reason)
        return Vote(name, previous, new, delta, False, reason, None, interval)
    # exact, on the decimals written (0.4 - 0.3 is 1/10, not 0.10000000000000003): see decimal_value
    exact_delta = decimal_value(new) - decimal_value(previous)
    if not higher_is_better:
        exact_delta = -exact_delta
    delta = float(exact_delta)
    margin = decimal_value(min_delta)
    exact_relative = None if min_relative_change is None else _exact_relative(exact_delta, previous)
    relative = None if exact_relative is None else float(exact_relative)
    if not exact_delta > margin:
        reason = "delta {} is not > min_delta {}".format(*_compared(exact_delta, min_delta))
        return Vote(name, previous, new, delta, False, reason, relative, interval)
    if exact_relative is not None and not exact_relative >= decimal_value(min_relative_change):
        reason = "relative change {} is below min_relative_change {}".format(
            *_compared(exact_relative, min_relative_change, percent=True)
        )
        return Vote(name, previous, new, delta, False, reason, relative, interval)
    if interval is not None and not decimal_value(interval[0]) > margin:
        lower, limit = _compared(decimal_value(interval[0]), min_delta)
        reason = f"interval lower bound {lower} is not > min_delta {limit} (not significant)"
        return Vote(name, previous, new, delta, False, reason, relative, interval)
    reason = "delta {} > min_delta {}".format(*_compared(exact_delta, min_delta))
    return Vote(name, previous, new, delta, True, reason, relative, interval)


def _compared(value: Fraction | float, threshold: float, percent: bool = False) -> tuple[str, str]:
    """``value`` and ``threshold`` for a reason: 4 significant digits (2 decimals of a percentage),
    all the digits when fewer would show two different numbers as equal."""
    if percent:
        shown = f"{float(value):+.2%}", f"{threshold:.2%}"
    else:
        shown = f"{float(value):+.4g}", f"{threshold:g}"
    exact = decimal_value(threshold)
    if shown[0].lstrip("+") != shown[1] or not isinstance(value, Fraction) or not isinstance(exact, Fraction):
        return shown
    scale, unit = (100, "%") if percent else (1, "")
    with localcontext() as context:
        context.prec = 40
        texts = [Decimal(f.numerator) * scale / Decimal(f.denominator) for f in (value, exact)]
    return f"{texts[0].normalize():+f}{unit}", f"{texts[1].normalize():f}{unit}"


def wins_fraction(wins: Any) -> Fraction:
    """The numeric ``wins`` as an exact fraction: the decimal number it was written as.

    A float stands for the shortest decimal that reads back as it (``repr``), so ``0.1`` is
    exactly 1/10 and ``2 / 3`` (0.6666666666666666) is just below 2/3: "at least 0.1" accepts
    1 vote in 10, "at least 2/3" accepts 2 votes in 3. No tolerance is added.

    Raises
    ------
    ValueError
        If ``wins`` is not a finite number in (0, 1].

    Examples
    --------
    >>> wins_fraction(0.1), wins_fraction("0.6"), wins_fraction(1)
    (Fraction(1, 10), Fraction(3, 5), Fraction(1, 1))
    """
    problem = f"wins: {shorten(wins)} is not 'any', 'all' or a number in (0, 1]; example: \"wins\": 0.6"
    if isinstance(wins, bool) or not isinstance(wins, numbers.Real | str):
        raise ValueError(problem)
    try:
        if isinstance(wins, Fraction):
            value = wins
        elif isinstance(wins, numbers.Integral):
            value = Fraction(int(wins))
        else:
            number = float(wins)
            if not math.isfinite(number):
                raise ValueError(problem)
            value = Fraction(wins.strip()) if isinstance(wins, str) else Fraction(repr(number))
    except (ValueError, ZeroDivisionError):
        raise ValueError(problem) from None
    if not 0 < value <= 1:
        raise ValueError(problem)
    return value


def new_model_wins(won: Sequence[bool], wins: str | float) -> bool:
    """Apply the ``wins`` rule to the votes.

    ``"all"``: every vote won; ``"any"``: at least one; a number ``w`` in (0, 1]: the
    fraction of won votes is **at least** ``w`` (``>=``, as the original docs say "at
    least"), compared exactly as fractions (``Fraction(won, votes) >= wins_fraction(w)``,
    no tolerance). A new model that won no vote is never promoted, whatever the rule
    (also with no votes at all: there is no evidence it is better).

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
    >>> new_model_wins([], "all"), new_model_wins([False, False], 1e-9)
    (False, False)
    """
    won = [bool(w) for w in won]
    if isinstance(wins, str) and wins in ("all", "any"):
        rule: str | Fraction = wins
    else:
        rule = wins_fraction(wins)
    won_votes = sum(won)
    if won_votes == 0:  # never promote without a single won vote
        return False
    if rule == "all":
        return won_votes == len(won)
    if rule == "any":
        return True
    return Fraction(won_votes, len(won)) >= rule


def numeric_values(values: Iterable[Any]) -> np.ndarray:
    """Values as floats; NaN for anything that is not a finite number.

    Numbers and numeric strings (``"3"``) count; ``None``, booleans, other strings, NaN and
    ±inf become NaN.

    Examples
    --------
    >>> numeric_values([3, "2.5", None, True, "x", float("inf")]).tolist()
    [3.0, 2.5, nan, nan, nan, nan]
    """
    out = []
    for value in values:
        number = math.nan
        if isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
        out.append(number if math.isfinite(number) else math.nan)
    return np.asarray(out, dtype=float)


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
        have = ", ".join(f"{shorten(f, 60)}/{shorten(lg, 60)}" for f, lg in pairs) or "no metrics at all"
        if len(have) > 400:
            have = have[:397] + "..."
        raise ValueError(
            f"{_cut(check.name, 150)}: {model_label} has no metric with figure {shorten(check.figure, 60)} and "
            f"legend {shorten(check.legend, 60)}; it has (figure/legend): {have}; fix compare_config.checks to name "
            f"one of these"
        )
    x = numeric_values(rows["x"])
    usable = ~np.isnan(x)
    if not usable.any():
        raise ValueError(
            f"{_cut(check.name, 150)}: {model_label} has {len(rows)} samples of this metric but none with a numeric x "
            f"(e.g. x={shorten(rows['x'].iloc[0], 40)}); publish the samples with the epoch as x"
        )
    if not usable.all():
        logger.warning(
            "%s: %s: ignored %d of %d samples whose x is null or not a finite number",
            check.name,
            model_label,
            int((~usable).sum()),
            len(rows),
        )
    rows = rows[usable].assign(x=x[usable]).sort_values("x", kind="mergesort")
    if not -len(rows) <= check.x_index < len(rows):
        raise ValueError(
            f"{_cut(check.name, 150)}: x_index {check.x_index} is out of range for {model_label}, which has {len(rows)} "
            f"samples of this metric; use an index in [-{len(rows)}, {len(rows) - 1}], e.g. -1 for the last"
        )
    return float(numeric_values([rows["y"].iloc[check.x_index]])[0])


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
            raise ValueError(
                f"{label} has no predictions on any of the {n_test_items} test-subset items of {dataset_label}: "
                f"it was never evaluated there; run Evaluate on {dataset_label.removeprefix('dataset ')} first "
                f"(for this model)"
            )


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
