"""Compare Models stopping signal: agreement (Cohen's kappa), the lineage's ledger, a recommendation.

``prediction_agreement`` measures how much the new model's test-subset predictions agree with the
previous model's (the "stabilizing predictions" criterion of Bloodgood & Vijay-Shanker 2009,
small-text's ``KappaAverage``); ``ledger_row`` / ``extend_ledger`` keep one row per round of a model
lineage; ``recommend_stop`` says ``stop`` or ``continue`` from the last ``StopConfig.rounds`` rows.
``compare_config.stop`` is parsed by ``parse_stop``. Pure, no dtlpy; docs/nodes.md ("Stopping signal").
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from nodes.common.limits import shorten
from nodes.compare_models.records import EvaluationTables

#: Rows a ledger keeps (the oldest are dropped): also the largest ``stop.rounds``.
MAX_LEDGER_ROWS = 50
STOP = "stop"
CONTINUE = "continue"
STOP_KEYS = ("enabled", "kappa", "rounds", "score_threshold")
#: Category of an item to which a model gave no class (classification agreement).
NO_CLASS = "<none>"


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """Cohen's kappa of two raters' labels for the same items: ``(p_o - p_e) / (1 - p_e)``.

    Equals ``sklearn.metrics.cohen_kappa_score(a, b)`` (unweighted); where sklearn divides 0 by 0
    (both raters gave every item the same single label, ``p_e = 1``) the agreement is perfect and
    the kappa is 1.0. Labels are compared as dict keys (``1`` and ``"1"`` differ, ``1`` and ``1.0`` do not).

    Parameters
    ----------
    a, b : sequence of hashable
        One label per item, in the same item order.

    Returns
    -------
    float
        In [-1, 1]; NaN when there are no items.

    Raises
    ------
    ValueError
        When the lengths differ.

    Examples
    --------
    >>> cohen_kappa(["cat", "dog", "cat", "cat"], ["cat", "dog", "dog", "cat"])
    0.5
    >>> cohen_kappa([1, 1, 1], [1, 1, 1])
    1.0
    """
    a, b = list(a), list(b)
    if len(a) != len(b):
        raise ValueError(f"cohen_kappa: {len(a)} labels against {len(b)}; give one label per item from each rater")
    n = len(a)
    if n == 0:
        return math.nan
    categories = {label: i for i, label in enumerate(dict.fromkeys([*a, *b]))}
    if len(categories) == 1:
        return 1.0
    codes_a = np.fromiter((categories[x] for x in a), dtype=np.int64, count=n)
    codes_b = np.fromiter((categories[x] for x in b), dtype=np.int64, count=n)
    k = len(categories)
    confusion = np.bincount(codes_a * k + codes_b, minlength=k * k).reshape(k, k).astype(float)
    observed = np.trace(confusion) / n
    expected = float(confusion.sum(axis=1) @ confusion.sum(axis=0)) / (n * n)
    if expected >= 1.0:  # only when both raters used one and the same label
        return 1.0
    return float((observed - expected) / (1.0 - expected))


@dataclass(frozen=True)
class StopConfig:
    """``compare_config.stop``: when the comparison recommends to stop buying labels.

    ``stop`` when the kappa of every one of the last ``rounds`` comparisons is ``>= kappa``, or
    the interval of the gated metric's gain included 0 in each of them. ``score_threshold`` is the
    confidence at or above which a detection / segmentation model "predicts" a label on an item
    (the agreement's cut-off). ``enabled=False`` (``"stop": false``) records no ledger.

    Examples
    --------
    >>> parse_stop({"kappa": 0.95}).rounds, parse_stop(False).enabled
    (3, False)
    """

    enabled: bool = True
    kappa: float = 0.99
    rounds: int = 3
    score_threshold: float = 0.5

    def to_json(self) -> dict:
        """Plain-JSON form (all fields)."""
        return {
            "enabled": self.enabled,
            "kappa": self.kappa,
            "rounds": self.rounds,
            "score_threshold": self.score_threshold,
        }


def _stop_error(path: str, value: Any, problem: str, example: str) -> ValueError:
    return ValueError(f"{path}: {shorten(value)} {problem}; example: {example}")


def _unit_number(path: str, value: Any, example: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise _stop_error(path, value, "is not a finite number", example)
    if not 0.0 <= float(value) <= 1.0:
        raise _stop_error(path, value, "is not in [0, 1]", example)
    return float(value)


def parse_stop(raw: Any, path: str = "compare_config.stop") -> StopConfig:
    """Validate ``compare_config.stop``: ``null`` / absent / ``true`` (defaults), ``false``, or an object.

    Object keys: ``enabled`` (bool), ``kappa`` (in [0, 1], default 0.99), ``rounds`` (an integer
    from 1 to :data:`MAX_LEDGER_ROWS`, default 3), ``score_threshold`` (in [0, 1], default 0.5).

    Raises
    ------
    ValueError
        Naming the field, the bad value and the fix.

    Examples
    --------
    >>> parse_stop(None) == StopConfig(), parse_stop({"enabled": False}).enabled
    (True, False)
    >>> parse_stop({"rounds": 0})
    Traceback (most recent call last):
    ...
    ValueError: compare_config.stop.rounds: 0 is not an integer from 1 to 50; example: "rounds": 3
    """
    example = '"stop": {"kappa": 0.99, "rounds": 3} (or "stop": false to switch it off)'
    if raw is None or raw is True:
        return StopConfig()
    if raw is False:
        return StopConfig(enabled=False)
    if not isinstance(raw, Mapping):
        raise _stop_error(path, raw, "is not true, false or an object", example)
    unknown = sorted(str(k) for k in raw if k not in STOP_KEYS)
    if unknown:
        listed = ", ".join(shorten(k, 60) for k in unknown[:5])
        raise ValueError(
            f"{path}: unknown key(s) {listed}; allowed keys are {', '.join(STOP_KEYS)}; example: {example}"
        )
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise _stop_error(f"{path}.enabled", enabled, "is not true or false", '"enabled": false')
    rounds = raw.get("rounds", 3)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or not 1 <= rounds <= MAX_LEDGER_ROWS:
        raise _stop_error(f"{path}.rounds", rounds, f"is not an integer from 1 to {MAX_LEDGER_ROWS}", '"rounds": 3')
    return StopConfig(
        enabled=enabled,
        kappa=_unit_number(f"{path}.kappa", raw.get("kappa", 0.99), '"kappa": 0.99'),
        rounds=rounds,
        score_threshold=_unit_number(
            f"{path}.score_threshold", raw.get("score_threshold", 0.5), '"score_threshold": 0.5'
        ),
    )


def _top_labels(predictions: pd.DataFrame, items: Sequence[Any]) -> list[Any]:
    """Each item's top label (highest confidence; ties: the smallest label), ``NO_CLASS`` if none."""
    if predictions.empty:
        return [NO_CLASS] * len(items)
    ordered = predictions.assign(label=predictions["label"].astype(str)).sort_values(
        ["item_id", "confidence", "label"], ascending=[True, False, True], kind="mergesort"
    )
    top = ordered.drop_duplicates("item_id").set_index("item_id")["label"]
    return [top.get(item, NO_CLASS) for item in items]


def _predicted_pairs(predictions: pd.DataFrame, threshold: float) -> set[tuple[Any, str]]:
    if predictions.empty:
        return set()
    kept = predictions[predictions["confidence"] >= threshold]
    return set(zip(kept["item_id"], kept["label"].astype(str), strict=True))


def prediction_agreement(
    tables: Mapping[str, EvaluationTables], item_ids: Sequence[Any], score_threshold: float = 0.5
) -> dict:
    """Cohen's kappa between the previous and the new model's predictions on the test items.

    - ``class``: one decision per test item, the model's top label (highest confidence, ties by
      label name; ``<none>`` when the model gave the item no class);
    - ``box`` / ``polygon`` / ``mask``: one yes / no decision per test item and label (the labels
      of the ground truth and of either model's predictions of that geometry): does the model
      predict that label on that item with confidence ``>= score_threshold``?

    ``kappa`` pools every decision of every geometry (each geometry's categories kept apart);
    ``byGeometry`` has each geometry's own kappa and number of decisions.

    Returns
    -------
    dict
        ``{"kappa", "decisions", "scoreThreshold", "byGeometry": {geometry: {"kappa", "decisions"}}}``;
        ``kappa`` is ``None`` when there is nothing to compare.

    Examples
    --------
    >>> frame = lambda rows: pd.DataFrame(rows, columns=["item_id", "label", "confidence"])
    >>> t = EvaluationTables("class", frame([]), frame([("a", "cat", .9), ("b", "dog", .8)]),
    ...                      frame([("a", "cat", .7), ("b", "cat", .6)]))
    >>> prediction_agreement({"class": t}, ["a", "b"])["kappa"]
    0.0
    """
    items = list(dict.fromkeys(item_ids))
    pooled_previous: list[Any] = []
    pooled_new: list[Any] = []
    by_geometry: dict[str, dict] = {}
    for geometry, table in sorted(tables.items()):
        if geometry == "class":
            previous = [(geometry, x) for x in _top_labels(table.previous, items)]
            new = [(geometry, x) for x in _top_labels(table.new, items)]
        else:
            labels = sorted(
                {str(v) for frame in (table.ground_truth, table.previous, table.new) for v in frame["label"]}
            )
            previous_pairs = _predicted_pairs(table.previous, score_threshold)
            new_pairs = _predicted_pairs(table.new, score_threshold)
            keys = [(item, label) for item in items for label in labels]
            previous = [(geometry, key in previous_pairs) for key in keys]
            new = [(geometry, key in new_pairs) for key in keys]
        if previous:
            by_geometry[geometry] = {"kappa": _none_if_nan(cohen_kappa(previous, new)), "decisions": len(previous)}
        pooled_previous += previous
        pooled_new += new
    return {
        "kappa": _none_if_nan(cohen_kappa(pooled_previous, pooled_new)),
        "decisions": len(pooled_previous),
        "scoreThreshold": score_threshold,
        "byGeometry": by_geometry,
    }


def _none_if_nan(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def gated_vote(votes: Sequence[Mapping]) -> Mapping | None:
    """The vote whose metric the ledger follows: the first precision-recall vote, else the first vote.

    Examples
    --------
    >>> gated_vote([{"name": "plot.val.loss"}, {"name": "precision_recall.box"}])["name"]
    'precision_recall.box'
    """
    for vote in votes:
        if str(vote.get("name", "")).startswith("precision_recall"):
            return vote
    return votes[0] if votes else None


def ledger_row(
    votes: Sequence[Mapping],
    kappa: float | None,
    labels: int | None,
    model_id: str | None = None,
    decision: str | None = None,
) -> dict:
    """This round's ledger row from the comparison's votes (``Vote.to_json`` dicts).

    ``metric`` is the new model's value of the gated vote (:func:`gated_vote`), ``gain`` its
    delta over the previous model and ``interval`` the bootstrap interval of that gain (``None``
    without ``precision_recall.confidence``); ``round`` is set by :func:`extend_ledger`.

    Examples
    --------
    >>> vote = {"name": "precision_recall.box", "new": 0.8, "delta": 0.1, "interval": [-0.02, 0.2]}
    >>> row = ledger_row([vote], 0.9, 120)
    >>> row["metric"], row["gain"], row["interval"], row["kappa"], row["labels"]
    (0.8, 0.1, [-0.02, 0.2], 0.9, 120)
    """
    vote = gated_vote(votes)
    interval = None if vote is None else vote.get("interval")
    if interval is not None and (len(interval) != 2 or any(_number_or_none(v) is None for v in interval)):
        interval = None
    return {
        "round": None,
        "modelId": model_id,
        "labels": labels,
        "metricName": None if vote is None else vote.get("name"),
        "metric": None if vote is None else _number_or_none(vote.get("new")),
        "gain": None if vote is None else _number_or_none(vote.get("delta")),
        "interval": None if interval is None else [float(interval[0]), float(interval[1])],
        "kappa": _number_or_none(kappa),
        "decision": decision,
    }


def _number_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        return None
    return float(value)


def read_ledger(record: Any) -> list[dict]:
    """The ledger rows stored in a comparison record (``comparison.stopping.ledger``), or ``[]``.

    Tolerant: a missing or ``null`` record, stopping or ledger, and rows that are not objects or
    have no integer ``round``, read as absent (the record may predate the ledger or be damaged).

    Examples
    --------
    >>> read_ledger({"stopping": {"ledger": [{"round": 1, "kappa": 0.5}, None, {"round": "x"}]}})
    [{'round': 1, 'kappa': 0.5}]
    >>> read_ledger(None), read_ledger({"stopping": None})
    ([], [])
    """
    stopping = record.get("stopping") if isinstance(record, Mapping) else None
    rows = stopping.get("ledger") if isinstance(stopping, Mapping) else None
    if not isinstance(rows, list):
        return []
    return [
        dict(row)
        for row in rows
        if isinstance(row, Mapping) and isinstance(row.get("round"), int) and not isinstance(row.get("round"), bool)
    ]


def latest_ledger(records: Sequence[Any], exclude_model_id: str | None = None) -> list[dict]:
    """Of the lineage's stored comparison records, the ledger that reaches the latest round.

    ``records`` are the comparisons found for the lineage (the previous model's own, and those of
    the models compared against it); the one whose last row has the highest ``round`` wins (ties:
    the first given). A record of ``exclude_model_id`` (this comparison, when rerun) is skipped.

    Examples
    --------
    >>> a = {"newModelId": "m1", "stopping": {"ledger": [{"round": 1}]}}
    >>> b = {"newModelId": "m2", "stopping": {"ledger": [{"round": 1}, {"round": 2}]}}
    >>> [r["round"] for r in latest_ledger([a, b])], latest_ledger([a, b], exclude_model_id="m2")
    ([1, 2], [{'round': 1}])
    """
    best: list[dict] = []
    for record in records:
        if (
            isinstance(record, Mapping)
            and exclude_model_id is not None
            and record.get("newModelId") == exclude_model_id
        ):
            continue
        rows = read_ledger(record)
        if rows and (not best or rows[-1]["round"] > best[-1]["round"]):
            best = rows
    return best


def extend_ledger(earlier: Sequence[Mapping], row: Mapping, max_rows: int = MAX_LEDGER_ROWS) -> list[dict]:
    """``earlier`` rows plus ``row`` numbered as the next round; at most ``max_rows`` (newest kept).

    Examples
    --------
    >>> [r["round"] for r in extend_ledger([{"round": 1}, {"round": 2}], {"kappa": 1.0}, max_rows=2)]
    [2, 3]
    """
    rows = [dict(r) for r in earlier]
    last = rows[-1]["round"] if rows else 0
    rows.append({**dict(row), "round": last + 1})
    return rows[-max_rows:]


def _interval_includes_zero(interval: Any) -> bool:
    if not isinstance(interval, Sequence) or isinstance(interval, str) or len(interval) != 2:
        return False
    low, high = (_number_or_none(v) for v in interval)
    return low is not None and high is not None and low <= 0.0 <= high


def recommend_stop(ledger: Sequence[Mapping], config: StopConfig) -> dict:
    """``stop`` or ``continue`` from the ledger's last ``config.rounds`` rows.

    ``stop`` when each of them has ``kappa >= config.kappa`` (the predictions stabilized), or each
    has a gain ``interval`` that includes 0 (``low <= 0 <= high``: the last rounds bought no
    measurable gain); else ``continue`` (also with fewer rows than ``config.rounds``, and when
    ``config.enabled`` is False). A row without kappa / interval does not count toward that rule.

    Returns
    -------
    dict
        ``{"recommendation": "stop" | "continue", "reason": str}``.

    Examples
    --------
    >>> rows = [{"round": r, "kappa": k, "interval": None} for r, k in ((1, .9), (2, .995), (3, .991), (4, 1.0))]
    >>> recommend_stop(rows, StopConfig())["recommendation"]
    'stop'
    >>> recommend_stop(rows[:3], StopConfig())["recommendation"]
    'continue'
    """
    if not config.enabled:
        return {"recommendation": CONTINUE, "reason": "the stopping signal is switched off (compare_config.stop)"}
    rows = list(ledger)[-config.rounds :] if ledger else []
    if len(rows) < config.rounds:
        return {
            "recommendation": CONTINUE,
            "reason": f"{len(rows)} of the {config.rounds} rounds the rule needs (compare_config.stop.rounds)",
        }
    kappas = [_number_or_none(row.get("kappa")) for row in rows]
    if all(k is not None and k >= config.kappa for k in kappas):
        shown = ", ".join(f"{k:.3f}" for k in kappas)
        return {
            "recommendation": STOP,
            "reason": f"kappa >= {config.kappa:g} in each of the last {config.rounds} rounds ({shown}): "
            f"the predictions stabilized",
        }
    if all(_interval_includes_zero(row.get("interval")) for row in rows):
        return {
            "recommendation": STOP,
            "reason": f"the metric gain's interval included 0 in each of the last {config.rounds} rounds: "
            f"more labels bought no measurable gain",
        }
    last = kappas[-1]
    shown = "unknown" if last is None else f"{last:.3f}"
    return {
        "recommendation": CONTINUE,
        "reason": f"kappa {shown} (needs >= {config.kappa:g} in each of the last {config.rounds} rounds) and the "
        f"gain's interval did not include 0 in each of them",
    }
