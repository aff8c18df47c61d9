"""Configs of the Select for Labeling module, parsed once into frozen dataclasses.

:class:`GateConfig` is the Uncertainty Gate node's ``customNodeConfig``;
:class:`SelectionConfig` is the ``selection_config`` input of Select for Labeling (with its
optional :class:`TaskConfig`), over the defaults of that node's config
(:func:`merge_selection_config`). Both are built before any request, never modify the caller's
dict, and raise ``ValueError`` naming the field, the bad value and the fix, with an example, at
most ``nodes.common.limits.MAX_MESSAGE_CHARS`` long.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nodes.common.dql import QUERY_PARTS, check_dql_query
from nodes.common.limits import check_json_value
from nodes.select_for_labeling.fields import (
    _EMAIL_RE,
    _MAX_EMAIL_CHARS,
    _TAG_RE,
    _as_mapping,
    _choice,
    _due_date,
    _fail,
    _integer,
    _listed,
    _optional_text,
    _reject_unknown,
    _seed,
    _tag,
    _task_name,
    _unit_number,
)

#: Scoring strategies; ``random`` is the baseline that ignores predictions.
STRATEGIES = ("least_confidence", "margin", "entropy", "random")
#: How instance (box, polygon, segment...) uncertainties roll up into one item score.
AGGREGATIONS = ("max", "mean", "sum")
#: Diversity methods of a batch selection.
DIVERSITIES = ("none", "cluster", "kcenter")
#: Subset tags written by Model Data Split; the default pool excludes items carrying any of them.
SUBSET_TAGS = ("train", "validation", "test")
DEFAULT_STRATEGY = "margin"
DEFAULT_AGGREGATION = "max"
#: Score of an item with no prediction: last, not first (benchmarks/bench_al_detection.py, docs/detection.md)
DEFAULT_EMPTY_SCORE = 0.0
DEFAULT_TAG = "to_label"
DEFAULT_TEST_SUBSET_TAGS = ("test",)

#: Where a custom node's config lives (the platform's ``customNodeConfig``): the prefix of its errors.
NODE_ROOT = "customNodeConfig"
GATE_ROOT = NODE_ROOT
SELECTION_ROOT = "selection_config"
#: Keys of the Uncertainty Gate node config (``nodeName`` is the node's display name field).
GATE_KEYS = ("nodeName", "strategy", "threshold", "aggregation", "modelId", "emptyScore", "seed")
#: Keys the platform writes into every custom node's ``customNodeConfig`` (the node's name and the
#: config panel's ``validation`` state; the published Active Learning template and the Data Split panel's
#: node state ``{name, ..., validation: {valid, errors}}``): accepted and ignored.
PLATFORM_NODE_KEYS = ("name", "validation")
SELECTION_KEYS = (
    "budget",
    "strategy",
    "aggregation",
    "pool",
    "diversity",
    "featureSet",
    "perLabelQuota",
    "tag",
    "seed",
    "task",
    "testSubsetTags",
    "emptyScore",
)
TASK_KEYS = ("name", "assignees", "dueDate")
QUERY_KEYS = QUERY_PARTS  # filter, join, intersect, except (nodes.common.dql)

_POOL_EXAMPLE = '"pool": {"filter": {"$and": [{"dir": "/incoming"}, {"metadata.system.tags.test": {"$ne": true}}]}}'


# ---------------------------------------------------------------------------------------------
# Uncertainty Gate
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateConfig:
    """The Uncertainty Gate node config: route an item to labelling when its score ≥ ``threshold``.

    Parameters
    ----------
    strategy : {"least_confidence", "margin", "entropy", "random"}
    threshold : float
        In [0, 1]; the item goes out on action ``label`` when its score is at least this.
    aggregation : {"max", "mean", "sum"}
        Roll-up of instance uncertainties (detection / segmentation).
    model_id : str or None
        Whose predictions to score; ``None``: the only model that predicted on the item.
    empty_score : float
        Score of an item with no prediction (default 0: ranked last; docs/detection.md).
    seed : int
        Seed of the ``random`` strategy and of tie-breaking.
    node_name : str or None
        The node's display name (informational).

    Examples
    --------
    >>> GateConfig.from_node_config({"strategy": "entropy", "threshold": 0.3}).threshold
    0.3
    >>> GateConfig.from_node_config({"name": "gate", "validation": {"valid": True}, "modelId": ""}).model_id is None
    True
    >>> GateConfig.from_node_config({"threshold": 1.5})
    Traceback (most recent call last):
    ...
    ValueError: customNodeConfig.threshold: 1.5 is outside [0, 1]; example: "threshold": 0.5
    """

    strategy: str = DEFAULT_STRATEGY
    threshold: float = 0.5
    aggregation: str = DEFAULT_AGGREGATION
    model_id: str | None = None
    empty_score: float = DEFAULT_EMPTY_SCORE
    seed: int = 0
    node_name: str | None = None

    @classmethod
    def from_node_config(cls, raw: Mapping[str, Any] | None, source: str = GATE_ROOT) -> GateConfig:
        """Validate the node's ``customNodeConfig``; ``None`` or ``{}`` gives the defaults.

        The keys the platform writes on every custom node (``name``, ``validation``) are ignored,
        and ``modelId: ""`` (the config field's empty default in the UI) means "not set".

        Raises
        ------
        ValueError
            Naming the field (``customNodeConfig.<key>``), the bad value and the fix.
        """
        if raw is None:
            return cls()
        check_json_value(_as_mapping(source, raw, '{"strategy": "margin", "threshold": 0.5}'), source)
        raw = copy.deepcopy(dict(raw))  # checked first: depth, size, NaN / ±inf, by path
        for key in PLATFORM_NODE_KEYS:
            raw.pop(key, None)
        _reject_unknown(source, raw, GATE_KEYS)
        if isinstance(raw.get("modelId"), str) and not raw["modelId"].strip():
            raw["modelId"] = None  # the UI stores the empty default of an optional text field as ""
        defaults = cls()
        return cls(
            strategy=_choice(f"{source}.strategy", raw.get("strategy", defaults.strategy), STRATEGIES),
            threshold=_unit_number(f"{source}.threshold", raw.get("threshold", defaults.threshold), '"threshold": 0.5'),
            aggregation=_choice(f"{source}.aggregation", raw.get("aggregation", defaults.aggregation), AGGREGATIONS),
            model_id=_optional_text(f"{source}.modelId", raw.get("modelId"), '"modelId": "65f0c2..."'),
            empty_score=_unit_number(
                f"{source}.emptyScore", raw.get("emptyScore", DEFAULT_EMPTY_SCORE), '"emptyScore": 0'
            ),
            seed=_seed(f"{source}.seed", raw.get("seed", 0)),
            node_name=_optional_text(f"{source}.nodeName", raw.get("nodeName"), '"nodeName": "Uncertainty Gate"'),
        )


# ---------------------------------------------------------------------------------------------
# Select for Labeling
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskConfig:
    """The optional annotation task created with the chosen items.

    Parameters
    ----------
    name : str
    assignees : tuple of str
        Assignee emails (may be empty: the platform's default assignment applies).
    due_date : float or None
        Epoch **seconds**, as ``dtlpy``'s ``tasks.create(due_date=...)`` takes it.

    Examples
    --------
    >>> TaskConfig.from_json({"name": "round 1", "dueDate": "2030-01-01"}, "task").due_date
    1893456000.0
    """

    name: str
    assignees: tuple[str, ...] = ()
    due_date: float | None = None

    @classmethod
    def from_json(cls, raw: Any, path: str, now: datetime | None = None) -> TaskConfig:
        """Validate the ``task`` object: ``name`` (required), ``assignees`` (emails), ``dueDate``
        (after ``now``, the current time by default, and at most :data:`MAX_DUE_DAYS` days later)."""
        example = '"task": {"name": "label round 1", "assignees": ["ann@example.com"], "dueDate": "2030-01-31"}'
        raw = _as_mapping(path, raw, example)
        _reject_unknown(path, raw, TASK_KEYS)
        if "name" not in raw:
            raise ValueError(f"{path}.name: missing; a task needs a name; example: {example}")
        name = _task_name(f"{path}.name", raw["name"])
        assignees = raw.get("assignees", [])
        if assignees is None:
            assignees = []
        if not isinstance(assignees, list):
            raise _fail(f"{path}.assignees", assignees, "is not a list of emails", '"assignees": ["ann@example.com"]')
        for index, email in enumerate(assignees):
            if not isinstance(email, str) or len(email) > _MAX_EMAIL_CHARS or not _EMAIL_RE.fullmatch(email):
                raise _fail(f"{path}.assignees[{index}]", email, "is not an email address", '"ann@example.com"')
        due = _due_date(f"{path}.dueDate", raw.get("dueDate"), now)
        return cls(name=name, assignees=tuple(assignees), due_date=due)


def check_selection_tag(
    path: str, tag: str, test_tags: Iterable[str] = DEFAULT_TEST_SUBSET_TAGS, subset_tags: Iterable[str] = ()
) -> str:
    """``tag`` when it is not a subset tag; the tag a selection writes must never move items into a subset.

    Refused: a test-subset tag (``test_tags``), a default Model Data Split subset
    (:data:`SUBSET_TAGS`: ``train``, ``validation``, ``test``) and any other ``subset_tags`` (the
    group names of the pipeline's Model Data Split nodes): unlabelled items would join that subset.

    Examples
    --------
    >>> check_selection_tag("selection_config.tag", "round_2")
    'round_2'
    >>> check_selection_tag("selection_config.tag", "train")
    Traceback (most recent call last):
    ...
    ValueError: selection_config.tag: 'train' is a subset tag of Model Data Split; the chosen, unlabelled items would join the 'train' subset; give a tag of its own; example: "tag": "to_label"
    """
    if tag in tuple(test_tags):
        problem = "is also a test-subset tag; chosen items would leak into the test set; give a tag of its own"
        raise _fail(path, tag, problem, f'"tag": "{DEFAULT_TAG}"')
    if tag in SUBSET_TAGS or tag in tuple(subset_tags):
        problem = (
            f"is a subset tag of Model Data Split; the chosen, unlabelled items would join the {tag!r} subset; "
            "give a tag of its own"
        )
        raise _fail(path, tag, problem, f'"tag": "{DEFAULT_TAG}"')
    return tag


def default_pool_filter(tag: str = DEFAULT_TAG, subset_tags: tuple[str, ...] = SUBSET_TAGS) -> dict[str, Any]:
    """The default pool: visible files with no subset tag and not already chosen (no ``tag``).

    ``$ne: true`` also matches items where the tag is absent (DQL treats a missing field as
    not equal to anything). "No ground truth" cannot be written as item DQL (annotations are
    a separate resource), so the platform edge drops items that carry annotations without
    ``metadata.user.model`` after listing the pool.

    Examples
    --------
    >>> default_pool_filter(subset_tags=("test",))["filter"]["$and"][2]
    {'metadata.system.tags.test': {'$ne': True}}
    """
    conditions: list[dict[str, Any]] = [{"hidden": False}, {"type": "file"}]
    for name in dict.fromkeys((*subset_tags, tag)):  # ordered, without duplicates
        conditions.append({f"metadata.system.tags.{name}": {"$ne": True}})
    return {"filter": {"$and": conditions}}


def _pool_query(path: str, value: Any) -> dict[str, Any] | None:
    """A user pool DQL: ``{"filter": ...}`` (optionally ``join``) or a bare filter (wrapped)."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or not value:
        raise _fail(path, value, "is not a non-empty DQL object", _POOL_EXAMPLE)
    query = copy.deepcopy(dict(value)) if "filter" in value else {"filter": copy.deepcopy(dict(value))}
    if query.get("resource", "items") != "items":
        raise _fail(f"{path}.resource", query["resource"], "is not 'items': a pool is a set of items", _POOL_EXAMPLE)
    # a full query (as Create New Model's subsets are written) is accepted; the node sets paging and sort
    query = {k: v for k, v in query.items() if k not in ("resource", "sort", "page", "pageSize")}
    extra = sorted(str(k) for k in query if k not in QUERY_KEYS)
    if extra:
        raise ValueError(
            f"{path}: unknown query key(s) {_listed(extra, (*QUERY_KEYS, 'resource', 'sort', 'page', 'pageSize'))}; a pool has 'filter' (and optionally "
            f"'join', 'intersect', 'except'); paging and sorting are set by the node; example: {_POOL_EXAMPLE}"
        )
    if not isinstance(query["filter"], Mapping) or not query["filter"]:
        raise _fail(f"{path}.filter", query["filter"], "is not a non-empty DQL object", _POOL_EXAMPLE)
    if "join" in query:
        _as_mapping(f"{path}.join", query["join"], '"join": {"filter": {"label": "cat"}}')
    check_dql_query(query, path)
    return query


@dataclass(frozen=True)
class SelectionConfig:
    """The ``selection_config`` input of Select for Labeling, validated.

    Parameters
    ----------
    budget : int
        Items to choose (≥ 1); a budget larger than the pool takes the whole pool.
    strategy : {"least_confidence", "margin", "entropy", "random"}
    aggregation : {"max", "mean", "sum"}
    pool : dict or None
        The user's item DQL (``{"filter": ...}``); ``None`` means :func:`default_pool_filter`.
    diversity : {"none", "cluster", "kcenter"}
    feature_set : str or None
        Name of the platform feature set to cluster on; ``None``: the predicted class scores.
    per_label_quota : int or None
        At most this many chosen items per predicted label.
    tag : str
        Tag written on each chosen item (``metadata.system.tags.<tag>``).
    seed : int
    task : TaskConfig or None
    test_subset_tags : tuple of str
        Items carrying any of these tags are never selected, whatever the pool says.
    empty_score : float
        Score of a pool item with no prediction.

    Examples
    --------
    >>> config = SelectionConfig.from_json({"budget": 100, "diversity": "cluster"})
    >>> config.budget, config.strategy, config.tag
    (100, 'margin', 'to_label')
    >>> SelectionConfig.from_json({"budget": 3.0})
    Traceback (most recent call last):
    ...
    ValueError: selection_config.budget: 3.0 is not a positive integer; example: "budget": 100
    """

    budget: int
    strategy: str = DEFAULT_STRATEGY
    aggregation: str = DEFAULT_AGGREGATION
    pool: dict[str, Any] | None = None
    diversity: str = "none"
    feature_set: str | None = None
    per_label_quota: int | None = None
    tag: str = DEFAULT_TAG
    seed: int = 0
    task: TaskConfig | None = None
    test_subset_tags: tuple[str, ...] = DEFAULT_TEST_SUBSET_TAGS
    empty_score: float = DEFAULT_EMPTY_SCORE

    @classmethod
    def from_json(cls, raw: Mapping[str, Any] | None, source: str = SELECTION_ROOT) -> SelectionConfig:
        """Validate ``selection_config`` (``budget`` is required); the input is not modified.

        Raises
        ------
        ValueError
            Naming the field (``selection_config.<key>``), the bad value and the fix.
        """
        example = '{"budget": 100, "strategy": "margin", "diversity": "cluster"}'
        if raw is None:
            raise ValueError(f"{source}: missing; give at least a budget; example: {example}")
        check_json_value(_as_mapping(source, raw, example), source)
        raw = copy.deepcopy(dict(raw))  # checked first: depth, size, NaN / ±inf, by path
        _reject_unknown(source, raw, SELECTION_KEYS)
        if "budget" not in raw:
            raise ValueError(f"{source}.budget: missing; say how many items to choose; example: {example}")
        quota = raw.get("perLabelQuota")
        tags = raw.get("testSubsetTags", list(DEFAULT_TEST_SUBSET_TAGS))
        if not isinstance(tags, list):
            raise _fail(f"{source}.testSubsetTags", tags, "is not a list of tag names", '"testSubsetTags": ["test"]')
        if not tags:
            raise _fail(
                f"{source}.testSubsetTags",
                tags,
                "is empty: the held-out test items would be chosen for labelling; leave it out (default "
                '["test"]) or name the held-out subset tags',
                '"testSubsetTags": ["test"]',
            )
        test_tags = tuple(dict.fromkeys(_tag(f"{source}.testSubsetTags[{i}]", t) for i, t in enumerate(tags)))
        tag = check_selection_tag(f"{source}.tag", _tag(f"{source}.tag", raw.get("tag", DEFAULT_TAG)), test_tags)
        task = raw.get("task")
        strategy = _choice(f"{source}.strategy", raw.get("strategy", DEFAULT_STRATEGY), STRATEGIES)
        diversity = _choice(f"{source}.diversity", raw.get("diversity", "none"), DIVERSITIES)
        if strategy == "random" and diversity != "none":
            # measured (benchmarks/bench_al.py, docs/benchmarks.md): diversity over random scores has
            # nothing to spread and ended below plain random on 4 of 5 data sets, so it is not offered
            raise _fail(
                f"{source}.diversity",
                diversity,
                "spreads the most uncertain items, and strategy 'random' scores none; it measured below plain "
                "random (docs/benchmarks.md). Use diversity 'none' with 'random', or an uncertainty strategy",
                '"strategy": "margin", "diversity": "cluster"',
            )
        return cls(
            budget=_integer(f"{source}.budget", raw["budget"], '"budget": 100', minimum=1),
            strategy=strategy,
            aggregation=_choice(f"{source}.aggregation", raw.get("aggregation", DEFAULT_AGGREGATION), AGGREGATIONS),
            pool=_pool_query(f"{source}.pool", raw.get("pool")),
            diversity=diversity,
            feature_set=_optional_text(
                f"{source}.featureSet", raw.get("featureSet"), '"featureSet": "clip-embeddings"'
            ),
            per_label_quota=None
            if quota is None
            else _integer(f"{source}.perLabelQuota", quota, '"perLabelQuota": 20', 1),
            tag=tag,
            seed=_seed(f"{source}.seed", raw.get("seed", 0)),
            task=None if task is None else TaskConfig.from_json(task, f"{source}.task"),
            test_subset_tags=test_tags,
            empty_score=_unit_number(
                f"{source}.emptyScore", raw.get("emptyScore", DEFAULT_EMPTY_SCORE), '"emptyScore": 0'
            ),
        )

    @property
    def held_out_tags(self) -> tuple[str, ...]:
        """The tags of items never chosen: ``test_subset_tags`` and always ``test``.

        Examples
        --------
        >>> SelectionConfig(budget=1, test_subset_tags=("holdout",)).held_out_tags
        ('holdout', 'test')
        """
        return tuple(dict.fromkeys((*self.test_subset_tags, *DEFAULT_TEST_SUBSET_TAGS)))

    def pool_query(self, subset_tags: Iterable[str] = ()) -> dict[str, Any]:
        """The item DQL the edge lists: the pool, always ANDed with "no test-subset tag".

        A fresh copy on every call. The default pool also excludes the other subset tags (the
        defaults, and ``subset_tags``: the group names of the pipeline's Model Data Split nodes
        that are tag names) and items already carrying ``tag``.

        Examples
        --------
        >>> q = SelectionConfig(budget=5, pool={"filter": {"dir": "/new"}}).pool_query()
        >>> q["filter"]["$and"]
        [{'dir': '/new'}, {'metadata.system.tags.test': {'$ne': True}}]
        """
        groups = tuple(t for t in subset_tags if isinstance(t, str) and _TAG_RE.fullmatch(t))
        base = (
            self.pool
            if self.pool is not None
            else default_pool_filter(self.tag, (*SUBSET_TAGS, *groups, *self.held_out_tags))
        )
        query = copy.deepcopy(base)
        guards = [{f"metadata.system.tags.{t}": {"$ne": True}} for t in self.held_out_tags]
        existing = query["filter"].get("$and", []) if set(query["filter"]) == {"$and"} else [query["filter"]]
        query["filter"] = {"$and": [*existing, *(g for g in guards if g not in existing)]}
        return query


# ---------------------------------------------------------------------------------------------
# Select for Labeling: node config (the defaults) + the selection_config input (the overrides)
# ---------------------------------------------------------------------------------------------

#: Fields of the Select for Labeling node config (``nodeName`` is the node's display name field);
#: each one is the default of the ``selection_config`` key of the same name.
SELECTION_NODE_KEYS = ("nodeName", "budget", "strategy", "aggregation", "diversity", "tag", "seed", "featureSet")
_BUDGET_EXAMPLE = '"budget": 100'


def _node_selection_values(node_config: Any, node_source: str) -> dict[str, Any]:
    """The Select for Labeling node config, validated field by field (``node_source.<key>``).

    Drops the platform's ``name`` / ``validation`` keys, ``nodeName`` (after checking it) and an
    empty ``featureSet`` (the UI stores the empty default of an optional text field as ``""``).
    """
    if node_config is None:
        return {}
    check_json_value(_as_mapping(node_source, node_config, '{"budget": 100, "strategy": "margin"}'), node_source)
    raw = copy.deepcopy(dict(node_config))
    for key in PLATFORM_NODE_KEYS:
        raw.pop(key, None)
    _reject_unknown(node_source, raw, SELECTION_NODE_KEYS)
    _optional_text(f"{node_source}.nodeName", raw.pop("nodeName", None), '"nodeName": "Select for Labeling"')
    feature_set = raw.pop("featureSet", None)
    if isinstance(feature_set, str) and not feature_set.strip():
        feature_set = None
    checks = {
        "budget": lambda path, v: _integer(path, v, _BUDGET_EXAMPLE, minimum=1),
        "strategy": lambda path, v: _choice(path, v, STRATEGIES),
        "aggregation": lambda path, v: _choice(path, v, AGGREGATIONS),
        "diversity": lambda path, v: _choice(path, v, DIVERSITIES),
        "tag": _tag,
        "seed": _seed,
    }
    values = {key: checks[key](f"{node_source}.{key}", value) for key, value in raw.items()}
    if feature_set is not None:
        values["featureSet"] = _optional_text(
            f"{node_source}.featureSet", feature_set, '"featureSet": "clip-embeddings"'
        )
    return values


def merge_selection_config(
    node_config: Mapping[str, Any] | None,
    selection_config: Mapping[str, Any] | None,
    node_source: str = NODE_ROOT,
    source: str = SELECTION_ROOT,
) -> dict[str, Any]:
    """The raw ``selection_config`` that :meth:`SelectionConfig.from_json` parses: the node
    config's fields as defaults, the keys present in ``selection_config`` over them.

    A shallow merge: a key of ``selection_config`` replaces the node's value whole (``pool`` and
    ``task`` exist only in ``selection_config``). ``selection_config`` may be ``None`` or ``{}``
    (a node configured in its panel needs no JSON). The platform's ``name`` / ``validation`` keys
    and ``nodeName`` of the node config are ignored, and an empty ``featureSet`` (``""``, the
    UI's empty default) is "not set": dropped from the node config, ``None`` in
    ``selection_config`` (which also clears a node's feature set). Neither dict is modified.

    The node's values are validated here, so a bad one is reported as ``customNodeConfig.<key>``
    (the node config); a bad input value is reported as ``selection_config.<key>`` by
    :meth:`SelectionConfig.from_json`.

    Parameters
    ----------
    node_config : dict or None
        The node's ``customNodeConfig`` (``None`` outside a pipeline).
    selection_config : dict or None
        The node's ``selection_config`` input.
    node_source, source : str
        The field prefixes of errors.

    Returns
    -------
    dict
        A fresh dict (deep-copied values).

    Raises
    ------
    ValueError
        Naming the field, where it came from (``customNodeConfig.<key>`` or
        ``selection_config.<key>``), the bad value and the fix.

    Examples
    --------
    >>> node = {"name": "select", "nodeName": "Select for Labeling", "budget": 100, "featureSet": ""}
    >>> merge_selection_config(node, {"budget": 5, "diversity": "cluster"})
    {'budget': 5, 'diversity': 'cluster'}
    >>> SelectionConfig.from_json(merge_selection_config({"budget": 20, "tag": "round_2"}, None)).tag
    'round_2'
    >>> merge_selection_config({"budget": 0}, {})
    Traceback (most recent call last):
    ...
    ValueError: customNodeConfig.budget: 0 is less than 1; example: "budget": 100
    """
    node = _node_selection_values(node_config, node_source)
    if selection_config is None:
        given: dict[str, Any] = {}
    else:
        check_json_value(_as_mapping(source, selection_config, '{"budget": 100, "diversity": "cluster"}'), source)
        given = copy.deepcopy(dict(selection_config))
    if isinstance(given.get("featureSet"), str) and not given["featureSet"].strip():
        given["featureSet"] = None
    merged = {**node, **given}
    if "budget" not in merged:
        raise ValueError(
            f"{source}.budget: missing; set the node's budget field ({node_source}.budget) or give "
            f"{source} a budget; example: {_BUDGET_EXAMPLE}"
        )
    tags = merged.get("testSubsetTags", list(DEFAULT_TEST_SUBSET_TAGS))
    if "tag" in node and "tag" not in given:
        held_out = [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []
        check_selection_tag(f"{node_source}.tag", node["tag"], held_out or DEFAULT_TEST_SUBSET_TAGS)
    return merged
