"""Decisions of the Compare Models node, as data: votes, the ``wins`` rule, the report.

Pure functions over plain values and DataFrames, no dtlpy. A *vote* is one
sub-comparison (one precision-recall quantity, or one training-metric check); the new
model wins the comparison when the fraction of won votes is at least ``wins``.
``ComparisonReport`` is what the node logs as a table, stores on the new model under
``metadata.user.activeLearning.comparison`` and writes as ``report.md`` from the CLI.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from nodes.compare_config import CompareConfig, PlotCheck

logger = logging.getLogger(__name__)

UPDATE_MODEL = "update model"
DISCARD = "discard"
ACTIONS = (UPDATE_MODEL, DISCARD)
METRIC_COLUMNS = ("figure", "legend", "x", "y")


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
        As returned by ``nodes.compare_config.parse_wins``.

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


def samples_frame(records: Sequence[dict]) -> pd.DataFrame:
    """Metric samples ``[{"figure", "legend", "x", "y"}, ...]`` as a DataFrame (x numeric when possible).

    Examples
    --------
    >>> samples_frame([{"figure": "f", "legend": "l", "x": "1", "y": 2}])["x"].tolist()
    [1]
    """
    frame = pd.DataFrame(list(records), columns=list(METRIC_COLUMNS))
    numeric = pd.to_numeric(frame["x"], errors="coerce")
    if not numeric.isna().any():
        frame["x"] = numeric
    frame["y"] = pd.to_numeric(frame["y"], errors="coerce")
    return frame


@dataclass(frozen=True)
class ComparisonReport:
    """Everything the decision was made from.

    Examples
    --------
    >>> config = CompareConfig.from_json({"checks": [{"legend": "val", "figure": "map"}]})
    >>> report = ComparisonReport.decide([judge_vote("plot.val.map", .4, .5, 0)], config, "p1", "n1")
    >>> report.decision, report.new_model_wins
    ('update model', True)
    """

    votes: tuple[Vote, ...]
    wins: str | float
    new_model_wins: bool
    decision: str
    config: dict
    previous_model_id: str
    new_model_id: str
    dataset_id: str | None = None
    details: dict = field(default_factory=dict)

    @classmethod
    def decide(
        cls,
        votes: Sequence[Vote],
        config: CompareConfig,
        previous_model_id: str,
        new_model_id: str,
        dataset_id: str | None = None,
        details: dict | None = None,
    ) -> ComparisonReport:
        """Apply ``config.wins`` to ``votes`` and record the decision."""
        wins = new_model_wins([v.won for v in votes], config.wins)
        return cls(
            votes=tuple(votes),
            wins=config.wins,
            new_model_wins=wins,
            decision=UPDATE_MODEL if wins else DISCARD,
            config=config.to_json(),
            previous_model_id=previous_model_id,
            new_model_id=new_model_id,
            dataset_id=dataset_id,
            details=dict(details or {}),
        )

    @property
    def won_fraction(self) -> float:
        """Fraction of votes the new model won (0 with no votes)."""
        return sum(v.won for v in self.votes) / len(self.votes) if self.votes else 0.0

    def to_json(self) -> dict:
        """The JSON stored on the new model under ``metadata.user.activeLearning.comparison``."""
        return {
            "decision": self.decision,
            "newModelWins": self.new_model_wins,
            "wins": self.wins,
            "wonVotes": int(sum(v.won for v in self.votes)),
            "totalVotes": len(self.votes),
            "votes": [v.to_json() for v in self.votes],
            "previousModelId": self.previous_model_id,
            "newModelId": self.new_model_id,
            "datasetId": self.dataset_id,
            "config": self.config,
            "details": self.details,
        }

    def table(self) -> str:
        """The votes as a fixed-width text table (for the log).

        Examples
        --------
        >>> config = CompareConfig.from_json({"checks": [{"legend": "val", "figure": "map"}]})
        >>> print(ComparisonReport.decide([], config, "p", "n").table().splitlines()[0].split())
        ['vote', 'previous', 'new', 'delta', 'interval', 'won']
        """
        rows = [("vote", "previous", "new", "delta", "interval", "won")]
        for v in self.votes:
            rows.append(
                (
                    v.name,
                    _fmt(v.previous),
                    _fmt(v.new),
                    _fmt(v.delta, signed=True),
                    _fmt_interval(v.interval),
                    "yes" if v.won else "no",
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
        won = sum(v.won for v in self.votes)
        lines.append(f"won {won} of {len(self.votes)} votes; wins={self.wins!r} -> {self.decision}")
        return "\n".join(lines)

    def markdown(self, previous_name: str = "previous", new_name: str = "new") -> str:
        """A Markdown report (the CLI's ``report.md``)."""
        won = sum(v.won for v in self.votes)
        lines = [
            "# Model comparison",
            "",
            f"- previous model: {previous_name} (`{self.previous_model_id}`)",
            f"- new model: {new_name} (`{self.new_model_id}`)",
        ]
        if self.dataset_id:
            lines.append(f"- dataset: `{self.dataset_id}`")
        lines += [
            f"- decision: **{self.decision}** (new model won {won} of {len(self.votes)} votes; wins = `{self.wins}`)",
            "",
            "| vote | previous | new | delta | relative | interval | won | reason |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for v in self.votes:
            relative = "" if v.relative_change is None else f"{v.relative_change:+.2%}"
            lines.append(
                f"| {v.name} | {_fmt(v.previous)} | {_fmt(v.new)} | {_fmt(v.delta, signed=True)} | {relative} | "
                f"{_fmt_interval(v.interval)} | {'yes' if v.won else 'no'} | {v.reason} |"
            )
        lines += ["", "## Configuration used", "", "```json", _json_dumps(self.config), "```", ""]
        return "\n".join(lines)


def _json_dumps(value: Any) -> str:
    import json

    return json.dumps(value, indent=2, sort_keys=True)


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "nan"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def _fmt_interval(interval: tuple[float, float] | None) -> str:
    if interval is None:
        return "-"
    return f"[{interval[0]:+.4f}, {interval[1]:+.4f}]"
