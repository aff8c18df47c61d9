"""Compare Models training-metric votes: one vote per ``compare_config.checks`` entry.

``metric_value_at`` reads the y of a figure / legend at ``x_index`` from a model's metric samples
(``numeric_values`` reads numbers and numeric strings, anything else is NaN); ``training_votes``
judges each check with ``nodes.compare_models.votes.judge_vote``. Pure, no dtlpy.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from nodes.common.limits import shorten
from nodes.compare_models.config import PlotCheck
from nodes.compare_models.votes import Vote, _cut, judge_vote

logger = logging.getLogger(__name__)


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
