"""Compare Models votes: one vote (``judge_vote``) and the ``wins`` rule over all of them.

A *vote* is won when ``new - previous > min_delta`` (strict), the relative change is at least
``min_relative_change`` (if set) and the paired-bootstrap lower bound is ``> min_delta`` (if
``confidence`` is set); the new model wins when the fraction of won votes is at least ``wins``
(``new_model_wins``). Every boundary is compared exactly, on the decimals the numbers are written
as (:func:`decimal_value`), never after a float rounding. The votes come from
``nodes.compare_models.training`` (training metrics) and ``nodes.compare_models.evaluation``
(precision-recall on the test subset, with the bootstrap). Pure, no dtlpy.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

from nodes.common.limits import shorten

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
