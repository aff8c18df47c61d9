"""Inputs and node config of Create New Model, validated before any request.

:class:`CreateModelConfig` is the node config (its ``modelName`` template is parsed by
:mod:`nodes.create_new_model.naming`); :func:`parse_model_configuration` reads the
``model_configuration`` input; :func:`resolve_subsets` picks each subset from the input, else the
base model, else the packaged defaults; :func:`check_base_model_status` and
:func:`check_base_model` refuse base models the node cannot clone. Errors are ``ValueError``s
naming the field, the bad value (cut short) and the fix.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nodes.common.defaults import load_subset_filter
from nodes.common.dql import QUERY_PARTS, check_dql_condition, check_dql_query
from nodes.common.limits import (
    check_json_value,
    check_visible_name,
    cut,
    loads_json_text,
    reject_unknown_keys,
    shorten,
)
from nodes.create_new_model.naming import DEFAULT_NAME_TEMPLATE, NameValues, parse_name_template, render_model_name

#: Base model statuses that can be cloned into a new version.
CLONEABLE_STATUSES = ("trained", "deployed", "pre-trained")

#: Top-level keys of a full query (``{"filter": ...}`` form).
#: Keys of a subset query: the DQL parts (nodes.common.dql.QUERY_PARTS) and paging / order.
QUERY_KEYS = frozenset({*QUERY_PARTS, "resource", "page", "pageSize", "sort"})
SUBSET_SOURCES = ("input", "base model", "packaged default")
#: The node config key that allows the same query for the train and the validation subset.
ALLOW_SAME_SUBSETS_KEY = "allowSameTrainAndValidation"
#: Keys of the node config the node reads (``createModel`` is the node's display name field).
CONFIG_KEYS = ("modelName", "createModel", ALLOW_SAME_SUBSETS_KEY)
#: Keys the platform writes into every custom node's config (accepted, not read).
PLATFORM_CONFIG_KEYS = ("name", "validation")
_DQL_EXAMPLE = '{"filter": {"metadata.system.tags.train": true}}'


@dataclass(frozen=True)
class CreateModelConfig:
    """The node config of Create New Model (``customNodeConfig``), validated.

    ``modelName`` is the name template (``createModel`` is the node's display name); a missing
    or ``null`` ``modelName`` means the manifest default :data:`DEFAULT_NAME_TEMPLATE`.
    ``allowSameTrainAndValidation: true`` accepts a validation subset equal to the train subset
    (refused otherwise: validating on the training items measures nothing). The keys the
    platform writes on every custom node (``name``, ``validation``) are accepted; any other key
    is refused with the nearest valid one (a typo such as ``modelNmae`` would silently use the
    default name). The whole config is bounded like every user JSON value
    (:func:`nodes.common.limits.check_json_value`: at most 64 levels deep, 1 MB, no NaN / ±inf).

    Examples
    --------
    >>> config = CreateModelConfig.from_json({"createModel": "Create New Model", "modelName": "{now:%Y}"})
    >>> config.name_template, config.allow_same_subsets
    ('{now:%Y}', False)
    >>> CreateModelConfig.from_json(None).name_template == DEFAULT_NAME_TEMPLATE
    True
    >>> CreateModelConfig.from_json({"modelNmae": "v2"})
    Traceback (most recent call last):
    ...
    ValueError: customNodeConfig.modelNmae: unknown key; did you mean 'modelName'? rename it (valid keys: allowSameTrainAndValidation, createModel, modelName)
    """

    name_template: str = DEFAULT_NAME_TEMPLATE
    allow_same_subsets: bool = False

    @classmethod
    def from_json(cls, node_config: Mapping[str, Any] | None) -> CreateModelConfig:
        """Validate ``customNodeConfig`` (the template is parsed here, before any request)."""
        if node_config is None:
            return cls()
        if not isinstance(node_config, Mapping):
            raise ValueError(
                f"customNodeConfig: {shorten(node_config)} is not an object; "
                f'example: {{"modelName": "{DEFAULT_NAME_TEMPLATE}"}}'
            )
        check_json_value(node_config, "customNodeConfig")
        reject_unknown_keys("customNodeConfig", node_config, CONFIG_KEYS, PLATFORM_CONFIG_KEYS)
        allow_same = node_config.get(ALLOW_SAME_SUBSETS_KEY)
        if allow_same is not None and not isinstance(allow_same, bool):
            raise ValueError(
                f"customNodeConfig.{ALLOW_SAME_SUBSETS_KEY}: {shorten(allow_same)} is not true or false; "
                f'example: "{ALLOW_SAME_SUBSETS_KEY}": true (only to validate on the training items on purpose)'
            )
        template = node_config.get("modelName")
        if template is None:
            return cls(allow_same_subsets=bool(allow_same))
        parse_name_template(template)
        check_visible_name("customNodeConfig.modelName", template, example='"modelName": "{base_model.name}-v2"')
        return cls(name_template=template, allow_same_subsets=bool(allow_same))

    def render(self, values: NameValues, now: datetime) -> str:
        """The new model's name; see :func:`render_model_name`."""
        return render_model_name(self.name_template, values, now)


def parse_model_configuration(value: Any, field: str = "model_configuration") -> dict[str, Any]:
    """Validate the ``model_configuration`` input: ``None``/empty, a JSON object or its text.

    Examples
    --------
    >>> parse_model_configuration('{"epochs": 5}')
    {'epochs': 5}
    >>> parse_model_configuration(None)
    {}
    """
    value = _parse_json_text(value, field)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(
            f'{field}: {shorten(value)} is not a JSON object; give the keys to change, example: {{"epochs": 10}}'
        )
    check_json_value(value, field)
    return copy.deepcopy(dict(value))


@dataclass(frozen=True)
class ResolvedSubset:
    """One subset's query and where it came from (``input``, ``base model``, ``packaged default``)."""

    query: dict[str, Any]
    source: str


@dataclass(frozen=True)
class ResolvedSubsets:
    """The train and validation subsets the new model gets.

    Examples
    --------
    >>> resolve_subsets(None, None, {}).train.source
    'packaged default'
    """

    train: ResolvedSubset
    validation: ResolvedSubset

    def sources(self) -> str:
        """``train from <source>, validation from <source>`` for the log line."""
        return f"train from {self.train.source}, validation from {self.validation.source}"


def _parse_json_text(value: Any, field: str) -> Any:
    """JSON text parsed (within the size bound), ``None`` for blank text, else ``value``."""
    if isinstance(value, str):
        return loads_json_text(value, field) if value.strip() else None
    return value


def is_empty_subset(value: Any) -> bool:
    """``True`` for a missing subset: ``None``, ``""``, ``{}``, ``{"filter": {}}`` or ``{"filter": None}``.

    Only an empty object or ``null`` filter counts as missing: ``{"filter": []}`` or
    ``{"filter": ""}`` is a filter of the wrong type, refused by :func:`normalize_subset_query`.

    Examples
    --------
    >>> is_empty_subset({"filter": {}}), is_empty_subset({"dir": "/a"}), is_empty_subset({"filter": []})
    (True, False, False)
    """
    if value is None or (isinstance(value, str | Mapping | list) and len(value) == 0):
        return True
    if isinstance(value, str):
        return not value.strip()
    if not (isinstance(value, Mapping) and set(value) == {"filter"}):
        return False
    condition = value["filter"]
    return condition is None or (isinstance(condition, Mapping) and not condition)


def normalize_subset_query(value: Any, field: str) -> dict[str, Any]:
    """Validate a DQL subset and return it as the full query dtlpy's ``Filters`` sends.

    Like ``dl.Filters(custom_filter=value).prepare()``: a dict without ``"filter"`` is a bare
    filter and gets wrapped; ``resource`` (must be ``"items"``), ``page`` (0) and
    ``pageSize`` (1000) are filled in when absent. The input is not modified.

    Parameters
    ----------
    value : dict or str
        ``{"filter": {...}, ...}``, a bare filter, or either as JSON text.
    field : str
        Dotted name for error messages, e.g. ``"train_subset"``.

    Raises
    ------
    ValueError
        Naming the field (with the path inside the filter), the bad value and the fix.

    Examples
    --------
    >>> normalize_subset_query({"dir": "/a"}, "train_subset")
    {'filter': {'dir': '/a'}, 'resource': 'items', 'page': 0, 'pageSize': 1000}
    """
    value = _parse_json_text(value, field)
    if not isinstance(value, Mapping):
        raise ValueError(f"{field}: {shorten(value)} is not a DQL object; example: {_DQL_EXAMPLE}")
    check_json_value(value, field)
    if "filter" in value:
        query = copy.deepcopy(dict(value))
        unknown = sorted(set(query) - QUERY_KEYS, key=str)
        if unknown:
            raise ValueError(
                f"{field}: unknown query key {shorten(unknown[0])}; a query has {', '.join(sorted(QUERY_KEYS))} "
                f"(or give a bare filter); example: {_DQL_EXAMPLE}"
            )
    else:
        query = {"filter": copy.deepcopy(dict(value))}
    check_dql_condition(query["filter"], f"{field}.filter")
    query.setdefault("resource", "items")
    if query["resource"] != "items":
        raise ValueError(f"{field}.resource: {shorten(query['resource'])} is not 'items'; a subset selects items")
    query.setdefault("page", 0)
    query.setdefault("pageSize", 1000)
    for key in ("page", "pageSize"):
        if not isinstance(query[key], int) or isinstance(query[key], bool) or query[key] < 0:
            raise ValueError(f"{field}.{key}: {shorten(query[key])} is not a non-negative integer; example: 0")
    if "join" in query:
        join = query["join"]
        if not isinstance(join, Mapping):
            raise ValueError(
                f'{field}.join: {shorten(join)} is not an object; example: {{"filter": {{"label": "cat"}}}}'
            )
    check_dql_query({k: v for k, v in query.items() if k in QUERY_PARTS}, field)
    return query


def _base_subset(base_model_subsets: Mapping[str, Any] | None, name: str) -> Any:
    if not isinstance(base_model_subsets, Mapping):
        return None
    return base_model_subsets.get(name)


def resolve_subsets(
    train_subset: Any,
    validation_subset: Any,
    base_model_subsets: Mapping[str, Any] | None,
) -> ResolvedSubsets:
    """Choose the train and validation queries of the new model.

    Each subset comes from the input when it is given, else from the base model's
    ``metadata.system.subsets`` when it has one, else from the packaged default filter of
    ``pipeline_configs/`` (items tagged ``train`` / ``validation``). Every choice is
    validated and normalized by :func:`normalize_subset_query`.

    Parameters
    ----------
    train_subset, validation_subset : dict, str or None
        The node inputs (``{"filter": ...}`` or a bare filter).
    base_model_subsets : dict or None
        The base model's ``metadata.system.subsets``.

    Returns
    -------
    ResolvedSubsets

    Examples
    --------
    >>> chosen = resolve_subsets({"dir": "/train"}, None, {"validation": {"filter": {"dir": "/val"}}})
    >>> chosen.train.source, chosen.validation.source, chosen.validation.query["filter"]
    ('input', 'base model', {'dir': '/val'})
    """
    chosen = {}
    for name, given in (("train", train_subset), ("validation", validation_subset)):
        field = f"{name}_subset"
        from_base = _base_subset(base_model_subsets, name)
        if isinstance(given, str) and given.strip():
            given = _parse_json_text(given, field)  # JSON text: "null" and "{}" are null and {}
        if isinstance(given, list) or (isinstance(given, str) and not given.strip()):
            # only null and {} mean "not given": [] or blank text is a mistake, not a request for the fallback
            raise ValueError(
                f"{field}: {shorten(given)} is not a DQL object; leave it out (null or {{}}) to use the base "
                f"model's subset or the packaged default, or give a query, example: {_DQL_EXAMPLE}"
            )
        if not is_empty_subset(given):
            chosen[name] = ResolvedSubset(normalize_subset_query(given, field), "input")
        elif not is_empty_subset(from_base):
            query = normalize_subset_query(from_base, f"base_model.metadata.system.subsets.{name}")
            chosen[name] = ResolvedSubset(query, "base model")
        else:
            chosen[name] = ResolvedSubset(normalize_subset_query(load_subset_filter(name), field), "packaged default")
    return ResolvedSubsets(train=chosen["train"], validation=chosen["validation"])


def check_distinct_subsets(subsets: ResolvedSubsets, allow_same: bool = False) -> None:
    """Refuse a validation subset whose query is the train subset's, unless ``allow_same``.

    Validating on the very items the model trains on measures nothing and hides overfitting (a
    leak); a pipeline that wants it says so with ``customNodeConfig.allowSameTrainAndValidation``.

    Examples
    --------
    >>> same = resolve_subsets({"dir": "/a"}, {"filter": {"dir": "/a"}}, None)
    >>> check_distinct_subsets(same, allow_same=True)
    >>> check_distinct_subsets(same)
    Traceback (most recent call last):
    ...
    ValueError: validation_subset: {"dir": "/a"} (from input) selects the same items as train_subset (from input): validating on the training items measures nothing; give a validation subset of other items, e.g. {"filter": {"metadata.system.tags.validation": true}}, or set "allowSameTrainAndValidation": true in the node config
    """
    if allow_same or subsets.train.query != subsets.validation.query:
        return
    import json

    shown = cut(json.dumps(subsets.validation.query.get("filter"), sort_keys=True), 120)
    raise ValueError(
        f"validation_subset: {shown} (from {subsets.validation.source}) selects the same items as train_subset "
        f"(from {subsets.train.source}): validating on the training items measures nothing; give a validation "
        'subset of other items, e.g. {"filter": {"metadata.system.tags.validation": true}}, '
        f'or set "{ALLOW_SAME_SUBSETS_KEY}": true in the node config'
    )


def check_base_model_status(status: Any) -> None:
    """Refuse to clone a base model that is not trained.

    Examples
    --------
    >>> check_base_model_status("trained")
    """
    if status not in CLONEABLE_STATUSES:
        raise ValueError(
            f"base_model.status: {shorten(status)} is not one of {', '.join(map(repr, CLONEABLE_STATUSES))}; "
            "train the base model first or connect a trained model version"
        )


def _base_fix(path: str) -> str:
    """How to repair the base model field at ``path`` (``base_model.metadata...``), for errors."""
    target = "model.metadata" + "".join(f"[{part!r}]" for part in path.split(".")[2:])
    return f"fix the base model (e.g. {target} = {{}}; model.update(system_metadata=True)) or connect another model version"


@dataclass(frozen=True)
class BaseModelFacts:
    """What the node reads from the base model, checked by :func:`check_base_model`.

    ``subsets`` is ``metadata.system.subsets`` (``None`` when absent), ``configuration`` a
    copy of the configuration (``{}`` when absent) and ``tags`` the model tags.
    """

    subsets: dict[str, Any] | None
    configuration: dict[str, Any]
    tags: list[str]


def _object_or_absent(parent: Mapping[str, Any], key: str, path: str) -> dict[str, Any] | None:
    """``parent[key]`` when it is an object, ``None`` when the key is absent or ``null``; else a ValueError.

    ``null`` reads as absent: where the platform stores the ``null`` that removing a key sends
    (Dataloop's item docs list Null as a metadata type), a record a node removed stays behind as
    ``null``, and the node must give the same result as where the key is gone.
    """
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(
            f"{path}: {shorten(value)} is not an object; set it to an object ({{}}) or remove the key: "
            + _base_fix(path)
        )
    return dict(value)


def check_base_model(metadata: Any, configuration: Any, tags: Any) -> BaseModelFacts:
    """Check every base model field the node or dtlpy's clone reads, before the clone.

    ``metadata`` must be an object (or absent); ``metadata.user``,
    ``metadata.user.activeLearning``, ``metadata.system`` and ``metadata.system.subsets`` /
    ``annotationsSubsets`` / ``tags`` must each be an object or absent (``null`` reads as absent:
    the new model's own metadata replaces what the clone copied); ``configuration`` an
    object (or absent) within the JSON bounds, without NaN / ±inf; ``tags`` a list of strings.

    Raises
    ------
    ValueError
        Naming the field (``base_model.metadata.user.activeLearning``, ...), the value and the fix.

    Examples
    --------
    >>> check_base_model({"system": {"subsets": {"train": {}}}}, {"epochs": 1}, ["yolo"]).subsets
    {'train': {}}
    >>> check_base_model({"user": {"activeLearning": None}}, None, None).subsets is None  # null reads as absent
    True
    >>> check_base_model({"user": {"activeLearning": []}}, None, None)
    Traceback (most recent call last):
    ...
    ValueError: base_model.metadata.user.activeLearning: [] is not an object; set it to an object ({}) or remove the key: fix the base model (e.g. model.metadata['user']['activeLearning'] = {}; model.update(system_metadata=True)) or connect another model version
    """
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, Mapping):
        raise ValueError(
            f"base_model.metadata: {shorten(metadata)} is not an object; " + _base_fix("base_model.metadata")
        )
    user = _object_or_absent(metadata, "user", "base_model.metadata.user")
    if user is not None:
        _object_or_absent(user, "activeLearning", "base_model.metadata.user.activeLearning")
    system = _object_or_absent(metadata, "system", "base_model.metadata.system") or {}
    subsets = _object_or_absent(system, "subsets", "base_model.metadata.system.subsets")
    for key in ("annotationsSubsets", "tags"):
        _object_or_absent(system, key, f"base_model.metadata.system.{key}")
    if configuration is None:
        configuration = {}
    if not isinstance(configuration, Mapping):
        raise ValueError(
            f"base_model.configuration: {shorten(configuration)} is not an object; give the base model a "
            'configuration object (e.g. {"epochs": 10}) or connect another model version'
        )
    check_json_value(configuration, "base_model.configuration")
    if tags is None:
        tags = []
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise ValueError(
            f"base_model.tags: {shorten(tags)} is not a list of strings; fix the base model's tags "
            '(e.g. model.tags = ["yolo"]; model.update()) or connect another model version'
        )
    return BaseModelFacts(subsets=subsets, configuration=copy.deepcopy(dict(configuration)), tags=list(tags))
