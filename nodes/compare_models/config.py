"""The Compare Models node's configuration: parsed once, validated, frozen.

``CompareConfig.from_json`` turns the pipeline's ``compare_config`` (an object, JSON text or
``None`` for ``pipeline_configs/compare_configurations.json``) into frozen dataclasses before the
node makes any request, never modifying the caller's dict. Every error is a ``ValueError`` naming
the field (dotted path from ``compare_config``), the bad value and the fix, at most
``nodes.common.limits.MAX_MESSAGE_CHARS`` long; the whole value first passes
``nodes.common.limits.check_json_value`` (depth, size, NaN / ±inf). The keys, their defaults and
meaning are in docs/nodes.md ("Compare Models").
"""

from __future__ import annotations

import copy
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nodes.common.defaults import load_default_compare_config, load_subset_filter
from nodes.common.dql import QUERY_PARTS, check_dql_query
from nodes.common.limits import check_json_value, loads_json_text, shorten
from nodes.compare_models.stopping import StopConfig, parse_stop

logger = logging.getLogger(__name__)

ROOT = "compare_config"
INTERPOLATIONS = ("every_point", "coco", "11_point")
MIN_RESAMPLES = 1000
#: Upper bound of ``resamples``: the bootstrap keeps 8 bytes per resample and vote, and scores
#: resamples in blocks (``nodes.compare_models.evaluation.bootstrap_block_size``).
MAX_RESAMPLES = 100_000
TOP_LEVEL_KEYS = ("precision_recall", "wins", "checks", "verbose", "stop")
HOISTABLE_KEYS = ("wins", "checks", "verbose")
PRECISION_RECALL_KEYS = (
    "iou_threshold",
    "min_delta",
    "interpolation",
    "per_label",
    "min_relative_change",
    "confidence",
    "resamples",
    "seed",
    "labels",
    "test_subset",
)
CHECK_KEYS = ("type", "legend", "figure", "x_index", "maximize", "min_delta")
WINS_WORDS = ("any", "all")


def _fail(path: str, value: Any, problem: str, example: str) -> ValueError:
    """Build the house-style error: field, bad value, what is expected, an example."""
    return ValueError(f"{path}: {shorten(value)} {problem}; example: {example}")


def _cut(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters with ``...`` (for names joined into a message)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _number(path: str, value: Any, example: str) -> float:
    """A finite real number (bools are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(path, value, "is not a finite number", example)
    return float(value)


def _margin(path: str, value: Any, example: str, fix: str = "use 0 (any improvement) or a positive number") -> float:
    """A finite number >= 0: a required improvement. A negative one would let a worse model win the vote."""
    number = _number(path, value, example)
    if number < 0:
        raise _fail(path, value, f"is negative: it is the improvement the new model must show; {fix}", example)
    return number


def _boolean(path: str, value: Any, example: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, value, "is not true or false", example)
    return value


def _integer(path: str, value: Any, example: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(path, value, "is not an integer", example)
    return int(value)


def _text(path: str, value: Any, example: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, value, "is not a non-empty string", example)
    return value


def _reject_unknown(path: str, raw: Mapping, allowed: tuple[str, ...], hint: str = "") -> None:
    unknown = sorted(str(k) for k in raw if k not in allowed)
    if unknown:
        listed = ", ".join(shorten(k, 60) for k in unknown[:5]) + (
            f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        )
        raise ValueError(f"{path}: unknown key(s) {listed}; allowed keys are {', '.join(allowed)}{hint}")


def parse_wins(value: Any, path: str = f"{ROOT}.wins") -> str | float:
    """Normalise a ``wins`` setting to ``"any"``, ``"all"`` or a float in (0, 1].

    Numeric strings (``"0.6"``, as the original app's documentation writes them) and the
    integer ``1`` are accepted; ``0``, negatives, numbers above 1, NaN, booleans and other
    strings are rejected.

    Parameters
    ----------
    value : str, int or float
        The raw setting.
    path : str
        Dotted field name used in the error message.

    Returns
    -------
    str or float

    Raises
    ------
    ValueError
        If ``value`` is none of the accepted forms.

    Examples
    --------
    >>> parse_wins("0.6"), parse_wins(1), parse_wins("ANY")
    (0.6, 1.0, 'any')
    """
    problem = "is not 'any', 'all' or a number in (0, 1]"
    example = '"wins": 0.6'
    if isinstance(value, str):
        word = value.strip().lower()
        if word in WINS_WORDS:
            return word
        try:
            number = float(word)
        except ValueError:
            raise _fail(path, value, problem, example) from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an int beyond float range is far above 1
            raise _fail(path, value, problem, example) from None
    else:
        raise _fail(path, value, problem, example)
    if not math.isfinite(number) or not 0.0 < number <= 1.0:
        raise _fail(path, value, problem, example)
    return number


@dataclass(frozen=True)
class PlotCheck:
    """One training-metric check: compare the value of ``figure``/``legend`` at ``x_index``.

    The model's samples of that figure and legend are sorted by x; the y at position
    ``x_index`` (default -1, the last epoch) is compared. With ``maximize`` the new model
    wins when ``new - previous > min_delta``; otherwise when ``previous - new > min_delta``.

    Examples
    --------
    >>> PlotCheck.from_json({"legend": "val", "figure": "box_loss", "maximize": False}, "c").name
    'plot.val.box_loss'
    """

    legend: str
    figure: str
    x_index: int = -1
    maximize: bool = True
    min_delta: float = 0.0
    type: str = "plot"

    @property
    def name(self) -> str:
        """The vote name, ``plot.<legend>.<figure>`` as the original app's docs call checks."""
        return f"{self.type}.{self.legend}.{self.figure}"

    @classmethod
    def from_json(cls, raw: Any, path: str) -> PlotCheck:
        """Validate one entry of ``checks``; ``path`` is its dotted name for messages."""
        example = '{"type": "plot", "legend": "val", "figure": "box_loss", "x_index": -1, "maximize": false}'
        if not isinstance(raw, Mapping):
            raise _fail(path, raw, "is not an object", example)
        hint = "" if "x_value" not in raw else " ('x_value' is not supported: select the sample with 'x_index')"
        _reject_unknown(path, raw, CHECK_KEYS, hint)
        check_type = raw.get("type", "plot")
        if check_type != "plot":
            raise _fail(f"{path}.type", check_type, "is not 'plot' (the only kind of check)", '"type": "plot"')
        for key in ("legend", "figure"):
            if key not in raw:
                raise ValueError(
                    f"{path}.{key}: missing; every check names the metric by figure and legend; example: {example}"
                )
        return cls(
            legend=_text(f"{path}.legend", raw["legend"], '"legend": "val"'),
            figure=_text(f"{path}.figure", raw["figure"], '"figure": "box_loss"'),
            x_index=_integer(f"{path}.x_index", raw.get("x_index", -1), '"x_index": -1 (the last epoch)'),
            maximize=_boolean(f"{path}.maximize", raw.get("maximize", True), '"maximize": false for a loss'),
            min_delta=_margin(f"{path}.min_delta", raw.get("min_delta", 0), '"min_delta": 0.01'),
            type="plot",
        )

    def to_json(self) -> dict:
        """Plain-JSON form (all fields, defaults filled in)."""
        return {
            "type": self.type,
            "legend": self.legend,
            "figure": self.figure,
            "x_index": self.x_index,
            "maximize": self.maximize,
            "min_delta": self.min_delta,
        }


@dataclass(frozen=True)
class PrecisionRecallConfig:
    """How to compare both models' predictions on the test subset (see the module doc).

    Examples
    --------
    >>> PrecisionRecallConfig.from_json({"iou_threshold": 0.75}, "pr").interpolation
    'every_point'
    """

    iou_threshold: float = 0.5
    min_delta: float = 0.0
    interpolation: str = "every_point"
    per_label: bool = False
    min_relative_change: float | None = None
    confidence: float | None = None
    resamples: int = MIN_RESAMPLES
    seed: int = 0
    labels: tuple[str, ...] | None = None
    test_subset: Mapping = field(default_factory=lambda: load_subset_filter("test"))

    @classmethod
    def from_json(cls, raw: Any, path: str) -> PrecisionRecallConfig:
        """Validate the ``precision_recall`` object (without hoistable keys)."""
        if not isinstance(raw, Mapping):
            raise _fail(path, raw, "is not an object", '"precision_recall": {"iou_threshold": 0.5, "min_delta": 0}')
        _reject_unknown(path, raw, PRECISION_RECALL_KEYS)
        iou = _number(f"{path}.iou_threshold", raw.get("iou_threshold", 0.5), '"iou_threshold": 0.5')
        if not 0.0 < iou <= 1.0:
            raise _fail(f"{path}.iou_threshold", raw["iou_threshold"], "is not in (0, 1]", '"iou_threshold": 0.5')
        interpolation = raw.get("interpolation", "every_point")
        if interpolation not in INTERPOLATIONS:
            raise _fail(
                f"{path}.interpolation",
                interpolation,
                f"is not one of {', '.join(repr(i) for i in INTERPOLATIONS)}",
                '"interpolation": "every_point"',
            )
        relative = raw.get("min_relative_change")
        if relative is not None:
            relative = _margin(
                f"{path}.min_relative_change",
                relative,
                '"min_relative_change": 0.05 (5 %)',
                "use 0 or a positive fraction (0.05 = 5 %), or null for no relative check",
            )
        confidence = raw.get("confidence")
        if confidence is not None:
            confidence = _number(f"{path}.confidence", confidence, '"confidence": 0.95')
            if not 0.0 < confidence < 1.0:
                raise _fail(f"{path}.confidence", raw["confidence"], "is not in (0, 1)", '"confidence": 0.95')
        resamples = _integer(f"{path}.resamples", raw.get("resamples", MIN_RESAMPLES), '"resamples": 1000')
        if resamples < MIN_RESAMPLES:
            raise _fail(f"{path}.resamples", resamples, f"is below {MIN_RESAMPLES}", f'"resamples": {MIN_RESAMPLES}')
        if resamples > MAX_RESAMPLES:
            raise _fail(
                f"{path}.resamples",
                resamples,
                f"is above {MAX_RESAMPLES:,} (the bootstrap's bound; 1,000 to 10,000 is usual)",
                '"resamples": 10000',
            )
        seed = _integer(f"{path}.seed", raw.get("seed", 0), '"seed": 0')
        if seed < 0:
            raise _fail(f"{path}.seed", seed, "is negative", '"seed": 0')
        labels = raw.get("labels")
        if labels is not None:
            if not isinstance(labels, list | tuple) or not labels:
                raise _fail(f"{path}.labels", labels, "is not a non-empty list of label names", '"labels": ["cat"]')
            labels = tuple(_text(f"{path}.labels[{i}]", v, '"labels": ["cat"]') for i, v in enumerate(labels))
        return cls(
            iou_threshold=iou,
            min_delta=_margin(f"{path}.min_delta", raw.get("min_delta", 0), '"min_delta": 0'),
            interpolation=interpolation,
            per_label=_boolean(f"{path}.per_label", raw.get("per_label", False), '"per_label": true'),
            min_relative_change=relative,
            confidence=confidence,
            resamples=resamples,
            seed=seed,
            labels=labels,
            test_subset=_parse_test_subset(f"{path}.test_subset", raw.get("test_subset")),
        )

    def test_subset_query(self) -> dict:
        """A fresh copy of the test-subset item DQL, always in ``{"filter": {...}}`` form."""
        return copy.deepcopy(dict(self.test_subset))

    def to_json(self) -> dict:
        """Plain-JSON form (all fields, defaults filled in)."""
        return {
            "iou_threshold": self.iou_threshold,
            "min_delta": self.min_delta,
            "interpolation": self.interpolation,
            "per_label": self.per_label,
            "min_relative_change": self.min_relative_change,
            "confidence": self.confidence,
            "resamples": self.resamples,
            "seed": self.seed,
            "labels": list(self.labels) if self.labels is not None else None,
            "test_subset": self.test_subset_query(),
        }


def _parse_test_subset(path: str, raw: Any) -> dict:
    """An item DQL dict; a bare filter (no ``"filter"`` key) is wrapped, as dtlpy does."""
    example = '"test_subset": {"filter": {"$and": [{"metadata.system.tags.test": true}]}}'
    if raw is None:
        return load_subset_filter("test")
    if not isinstance(raw, Mapping) or not raw:
        raise _fail(path, raw, "is not a non-empty DQL object", example)
    query = copy.deepcopy(dict(raw))
    if "filter" not in query:
        query = {"filter": query}
    if not isinstance(query["filter"], Mapping) or not query["filter"]:
        raise _fail(f"{path}.filter", query["filter"], "is not a non-empty DQL object", example)
    extra = sorted(k for k in query if k not in QUERY_PARTS)
    if extra:
        raise ValueError(
            f"{path}: unknown key(s) {_cut(', '.join(shorten(k, 60) for k in extra))}; a subset is an item query with "
            f"'filter' (and optionally 'join', 'intersect', 'except'); paging and sorting are set by the node; "
            f"example: {example}"
        )
    join = query.get("join")
    if join is not None and not isinstance(join, Mapping):
        raise _fail(f"{path}.join", join, "is not an object", '"join": {"filter": {"label": "cat"}}')
    check_dql_query(query, path)  # filter, join, intersect, except as documented (nodes.common.dql)
    return query


@dataclass(frozen=True)
class CompareConfig:
    """The validated ``compare_config`` of the Compare Models node.

    Every precision-recall sub-comparison and every check is one vote; the new model
    wins when the fraction of won votes is at least ``wins`` (see ``nodes.compare_models.votes``).

    Examples
    --------
    >>> config = CompareConfig.from_json(None)          # the packaged default
    >>> config.precision_recall.iou_threshold, config.wins, config.checks
    (0.5, 'all', ())
    >>> CompareConfig.from_json({"wins": "0.6", "checks": [{"legend": "val", "figure": "loss",
    ...                          "maximize": False}]}).wins
    0.6
    """

    precision_recall: PrecisionRecallConfig | None = None
    checks: tuple[PlotCheck, ...] = ()
    wins: str | float = "all"
    verbose: bool = False
    stop: StopConfig = field(default_factory=StopConfig)

    @property
    def needs_dataset(self) -> bool:
        """True when the precision-recall comparison (on the dataset's test subset) is configured."""
        return self.precision_recall is not None

    @classmethod
    def from_json(cls, raw: Any) -> CompareConfig:
        """Parse and validate the node's ``compare_config`` input.

        Parameters
        ----------
        raw : dict, str or None
            ``None`` selects the packaged default (``pipeline_configs/compare_configurations.json``).
            A JSON string holding an object is decoded first. ``{}`` is an error: it
            compares nothing.

        Returns
        -------
        CompareConfig

        Raises
        ------
        ValueError
            Naming the field, the bad value and the fix.

        Examples
        --------
        >>> CompareConfig.from_json({"precision_recall": {"per_label": True}}).precision_recall.per_label
        True
        """
        example = '{"precision_recall": {"iou_threshold": 0.5, "min_delta": 0}}'
        if raw is None:
            raw = load_default_compare_config()
            logger.info("compare_config not given; using the packaged default %s", json.dumps(raw))
        elif isinstance(raw, str):
            raw = loads_json_text(raw, ROOT, hint=f"example: {example}")
        check_json_value(raw, ROOT)  # depth, size, NaN / inf: before anything else looks at the value
        if not isinstance(raw, Mapping):
            raise _fail(ROOT, raw, "is not a JSON object", example)
        if not raw:
            raise ValueError(
                f"{ROOT}: {{}} compares nothing; give 'precision_recall' and/or 'checks', or pass null for the "
                f"default; example: {example}"
            )
        raw = copy.deepcopy(dict(raw))  # never touch the caller's dict
        _reject_unknown(ROOT, raw, TOP_LEVEL_KEYS)
        precision_raw = raw.get("precision_recall")
        if isinstance(precision_raw, Mapping):
            precision_raw = dict(precision_raw)
            for key in HOISTABLE_KEYS:
                if key in precision_raw:
                    if key in raw:
                        raise ValueError(
                            f"{ROOT}.precision_recall.{key}: also given at {ROOT}.{key}; keep only the top-level "
                            f'one; example: {{"{key}": ..., "precision_recall": {{"iou_threshold": 0.5}}}}'
                        )
                    logger.warning(
                        "%s.precision_recall.%s belongs at the top level (%s.%s); using it from there",
                        ROOT,
                        key,
                        ROOT,
                        key,
                    )
                    raw[key] = precision_raw.pop(key)
        precision = None
        if "precision_recall" in raw:
            if precision_raw is None:
                raise _fail(
                    f"{ROOT}.precision_recall", None, "is not an object", '"precision_recall": {"iou_threshold": 0.5}'
                )
            precision = PrecisionRecallConfig.from_json(precision_raw, f"{ROOT}.precision_recall")
        checks_raw = raw.get("checks", [])
        if not isinstance(checks_raw, list | tuple):
            raise _fail(
                f"{ROOT}.checks",
                checks_raw,
                "is not a list of checks",
                '"checks": [{"type": "plot", "legend": "val", "figure": "box_loss", "maximize": false}]',
            )
        checks = tuple(PlotCheck.from_json(c, f"{ROOT}.checks[{i}]") for i, c in enumerate(checks_raw))
        names = [c.name for c in checks]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(
                f"{ROOT}.checks: {_cut(', '.join(duplicates))} checked more than once; keep one check per figure and "
                f'legend; example: [{{"legend": "val", "figure": "box_loss"}}]'
            )
        if precision is None and not checks:
            raise ValueError(
                f"{ROOT}: {shorten(json.dumps(raw))} compares nothing; add 'precision_recall' (evaluation on the test "
                f"subset) or at least one entry in 'checks'; example: {example}"
            )
        return cls(
            precision_recall=precision,
            checks=checks,
            wins=parse_wins(raw["wins"]) if "wins" in raw else "all",
            verbose=_boolean(f"{ROOT}.verbose", raw.get("verbose", False), '"verbose": true'),
            stop=parse_stop(raw.get("stop"), f"{ROOT}.stop"),
        )

    def to_json(self) -> dict:
        """Plain-JSON form with every default filled in (stored in the comparison report)."""
        out: dict[str, Any] = {"wins": self.wins, "verbose": self.verbose}
        if self.precision_recall is not None:
            out["precision_recall"] = self.precision_recall.to_json()
        out["checks"] = [c.to_json() for c in self.checks]
        out["stop"] = self.stop.to_json()
        return out
