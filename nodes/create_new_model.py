"""Create New Model node: clone a trained base model into a new version ready to fine-tune.

The pure part of this module decides everything from plain data: the new model's name
(:func:`render_model_name`, a small template formatter that never evaluates anything),
its configuration (:func:`deep_merge` over a copy of the base configuration) and its
train / validation subsets (:func:`resolve_subsets`: the inputs, else the base model's
subsets, else the packaged defaults of ``pipeline_configs/``). The edge, :func:`run_node`
and the helpers below the "platform edge" line, reads the entities, checks that the train
subset selects items, finds the model a retried execution already created, picks a free
name and clones. All input is validated before the first write request; the base model and
the pipeline variables are never modified.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nodes.common.defaults import load_subset_filter
from nodes.common.dql import check_dql_condition

logger = logging.getLogger(__name__)

#: The manifest's default for the node config field ``modelName``.
DEFAULT_NAME_TEMPLATE = "{base_model.name}_{datetime.datetime.now().strftime('%Y_%m_%d-T%H_%M_%S')}"
#: Where the template comes from, for error messages.
NAME_TEMPLATE_FIELD = "customNodeConfig.modelName"
#: The platform's rule for entity names, checked on the rendered name.
MAX_NAME_LENGTH = 256
#: A taken name gets ``-2``, ``-3``, ... up to ``-MAX_NAME_TRIES``.
MAX_NAME_TRIES = 100
#: Base model statuses that can be cloned into a new version (C7 of the original).
CLONEABLE_STATUSES = ("trained", "deployed", "pre-trained")
#: Configuration keys dtlpy drops when a clone takes the dataset's labels.
LABEL_MAP_KEYS = ("id_to_label_map", "label_to_id_map")
#: Where the new model records which execution created it.
CREATED_BY_FIELD = "metadata.user.activeLearning.createdBy"
# Model tag that records the creating execution atomically with the clone request itself, so a
# retry recognises the model even when the createdBy update after the clone failed.
EXECUTION_TAG_PREFIX = "active-learning-execution:"

ALLOWED_PLACEHOLDERS = (
    "{base_model.name}",
    "{base_model.id}",
    "{dataset.name}",
    "{dataset.id}",
    "{project.name}",
    "{datetime.datetime.now().strftime('<format>')}",
    "{datetime.datetime.utcnow().strftime('<format>')}",
    "{now:<format>}",
    "{{ and }} for literal braces",
)

_FIELD_PLACEHOLDERS = {
    "base_model.name": "base_model_name",
    "base_model.id": "base_model_id",
    "dataset.name": "dataset_name",
    "dataset.id": "dataset_id",
    "project.name": "project_name",
}
# The time forms users already have in saved pipelines; the format is a quoted literal
# without braces, quotes or backslashes, so nothing but the format string is ever "run".
_STRFTIME_PLACEHOLDER = re.compile(
    r"\{datetime\.datetime\.(?P<clock>now|utcnow)\(\)\.strftime\("
    r"(?:'(?P<single>[^'\"\\{}]*)'|\"(?P<double>[^'\"\\{}]*)\")\)\}"
)
_SHORT_TIME_PLACEHOLDER = re.compile(r"\{now:(?P<fmt>[^{}]*)\}")
_FIELD_PLACEHOLDER = re.compile(r"\{(?P<field>[a-z_]+\.[a-z_]+)\}")


@dataclass(frozen=True)
class NameValues:
    """The entity fields a name template may use.

    Examples
    --------
    >>> NameValues(base_model_name="yolo", base_model_id="m1", dataset_name="d",
    ...            dataset_id="d1", project_name="p").base_model_name
    'yolo'
    """

    base_model_name: str
    base_model_id: str
    dataset_name: str
    dataset_id: str
    project_name: str


@dataclass(frozen=True)
class _Literal:
    text: str


@dataclass(frozen=True)
class _Field:
    attribute: str


@dataclass(frozen=True)
class _Time:
    fmt: str
    utc: bool
    source: str


_Token = _Literal | _Field | _Time


def _template_error(template: str, problem: str) -> ValueError:
    return ValueError(
        f"{NAME_TEMPLATE_FIELD}: {template!r} {problem}; allowed placeholders: "
        f"{', '.join(ALLOWED_PLACEHOLDERS)}; example: "
        f'"modelName": "{{base_model.name}}_{{now:%Y_%m_%d-T%H_%M_%S}}"'
    )


def _placeholder_at(template: str, start: int) -> str:
    """The text of the (bad) placeholder that opens at ``start``, for error messages."""
    end = template.find("}", start)
    return template[start:] if end < 0 else template[start : end + 1]


def parse_name_template(template: str) -> tuple[_Token, ...]:
    """Split a model name template into literal text and allowed placeholders.

    The template is only tokenized, never evaluated: every ``{...}`` must be exactly one
    of :data:`ALLOWED_PLACEHOLDERS`; ``{{`` and ``}}`` stand for literal braces.

    Parameters
    ----------
    template : str
        The node config value ``modelName``.

    Returns
    -------
    tuple
        Tokens for :func:`render_model_name`.

    Raises
    ------
    ValueError
        Naming ``customNodeConfig.modelName``, quoting the bad placeholder and listing the
        allowed ones, for unknown names, calls, attribute chains, nested or unbalanced braces.

    Examples
    --------
    >>> len(parse_name_template("{base_model.name}-v2"))
    2
    """
    if not isinstance(template, str):
        raise ValueError(
            f'{NAME_TEMPLATE_FIELD}: {template!r} is not a string; example: "modelName": "{DEFAULT_NAME_TEMPLATE}"'
        )
    tokens: list[_Token] = []
    literal: list[str] = []
    i = 0
    while i < len(template):
        char = template[i]
        if template.startswith("{{", i) or template.startswith("}}", i):
            literal.append(char)
            i += 2
            continue
        if char == "}":
            raise _template_error(template, f"has a '}}' at position {i} without a matching '{{' (write '}}}}')")
        if char != "{":
            literal.append(char)
            i += 1
            continue
        token, end = _match_placeholder(template, i)
        if literal:
            tokens.append(_Literal("".join(literal)))
            literal = []
        tokens.append(token)
        i = end
    if literal:
        tokens.append(_Literal("".join(literal)))
    return tuple(tokens)


def _match_placeholder(template: str, start: int) -> tuple[_Token, int]:
    match = _FIELD_PLACEHOLDER.match(template, start)
    if match and match.group("field") in _FIELD_PLACEHOLDERS:
        return _Field(_FIELD_PLACEHOLDERS[match.group("field")]), match.end()
    match = _STRFTIME_PLACEHOLDER.match(template, start)
    if match:
        fmt = match.group("single") if match.group("single") is not None else match.group("double")
        return _Time(fmt, utc=match.group("clock") == "utcnow", source=match.group(0)), match.end()
    match = _SHORT_TIME_PLACEHOLDER.match(template, start)
    if match:
        if not match.group("fmt"):
            raise _template_error(template, "has '{now:}' without a format (e.g. '{now:%Y_%m_%d}')")
        return _Time(match.group("fmt"), utc=False, source=match.group(0)), match.end()
    bad = _placeholder_at(template, start)
    if "}" not in bad:
        raise _template_error(template, f"has an unclosed placeholder {bad!r}")
    raise _template_error(template, f"uses the placeholder {bad!r}, which is not allowed")


def _format_time(moment: datetime, token: _Time, template: str) -> str:
    if token.utc:
        # Like datetime.utcnow(): UTC wall-clock time; a naive `now` is taken as local time.
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    try:
        return moment.strftime(token.fmt)
    except ValueError as error:
        raise _template_error(
            template, f"has the time format {token.source!r} that strftime rejects ({error})"
        ) from None


def check_model_name(name: str, field: str = "model name") -> str:
    """Check a rendered name against the platform's name rules and return it.

    Examples
    --------
    >>> check_model_name("yolo_2025")
    'yolo_2025'
    """
    if not name.strip():
        raise ValueError(f"{field}: {name!r} is empty; give {NAME_TEMPLATE_FIELD} some text or placeholders")
    if "/" in name:
        raise ValueError(f"{field}: {name!r} contains '/', which model names may not; remove it from the template")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(
            f"{field}: {name[:40]!r}... is {len(name)} characters long, more than {MAX_NAME_LENGTH}; shorten the template"
        )
    return name


def render_model_name(template: str, values: NameValues, now: datetime) -> str:
    """Render a model name template safely (never ``eval``).

    Placeholders (exactly these, see :data:`ALLOWED_PLACEHOLDERS`):
    ``{base_model.name}``, ``{base_model.id}``, ``{dataset.name}``, ``{dataset.id}``,
    ``{project.name}``, ``{datetime.datetime.now().strftime('<fmt>')}`` and
    ``{now:<fmt>}`` (``now`` formatted as given), ``{datetime.datetime.utcnow().strftime('<fmt>')}``
    (``now`` in UTC; a naive ``now`` is local time). ``{{``/``}}`` are literal braces.
    Substituted text is never scanned again, so a model named ``{x}`` stays ``{x}``.

    Parameters
    ----------
    template : str
        The node config ``modelName``.
    values : NameValues
        Entity names and ids.
    now : datetime
        The moment the time placeholders show.

    Returns
    -------
    str
        The name, checked by :func:`check_model_name`.

    Raises
    ------
    ValueError
        For a template with anything but the allowed placeholders, or a bad rendered name.

    Examples
    --------
    >>> values = NameValues("yolo", "m1", "images", "d1", "proj")
    >>> render_model_name("{base_model.name}_{now:%Y}", values, datetime(2025, 1, 31))
    'yolo_2025'
    """
    parts = []
    for token in parse_name_template(template):
        if isinstance(token, _Literal):
            parts.append(token.text)
        elif isinstance(token, _Field):
            parts.append(str(getattr(values, token.attribute)))
        else:
            parts.append(_format_time(now, token, template))
    return check_model_name("".join(parts), field=f"{NAME_TEMPLATE_FIELD} rendered")


def numbered_names(name: str, tries: int | None = None) -> list[str]:
    """Candidate names for a taken ``name``: itself, then ``name-2`` ... ``name-<tries>``.

    Examples
    --------
    >>> numbered_names("m", 3)
    ['m', 'm-2', 'm-3']
    """
    tries = MAX_NAME_TRIES if tries is None else tries
    candidates = [name] + [f"{name}-{n}" for n in range(2, tries + 1)]
    return [candidate for candidate in candidates if len(candidate) <= MAX_NAME_LENGTH] or [name]


@dataclass(frozen=True)
class CreateModelConfig:
    """The node config of Create New Model (``customNodeConfig``), validated.

    Only ``modelName`` matters here (``createModel`` is the node's display name); a missing
    or ``null`` ``modelName`` means the manifest default :data:`DEFAULT_NAME_TEMPLATE`.

    Examples
    --------
    >>> config = CreateModelConfig.from_json({"createModel": "Create New Model", "modelName": "{now:%Y}"})
    >>> config.name_template
    '{now:%Y}'
    >>> CreateModelConfig.from_json(None).name_template == DEFAULT_NAME_TEMPLATE
    True
    """

    name_template: str = DEFAULT_NAME_TEMPLATE

    @classmethod
    def from_json(cls, node_config: Mapping[str, Any] | None) -> CreateModelConfig:
        """Validate ``customNodeConfig`` (the template is parsed here, before any request)."""
        if node_config is None:
            return cls()
        if not isinstance(node_config, Mapping):
            raise ValueError(
                f'customNodeConfig: {node_config!r} is not an object; example: {{"modelName": "{DEFAULT_NAME_TEMPLATE}"}}'
            )
        template = node_config.get("modelName")
        if template is None:
            return cls()
        parse_name_template(template)
        return cls(name_template=template)

    def render(self, values: NameValues, now: datetime) -> str:
        """The new model's name; see :func:`render_model_name`."""
        return render_model_name(self.name_template, values, now)


# --------------------------------------------------------------------------------------
# configuration


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Return a new dict: ``override`` merged over ``base``.

    Nested dicts are merged key by key; every other value (lists included) in
    ``override`` replaces the one in ``base``. Neither argument is modified and the
    result shares no mutable value with them.

    Examples
    --------
    >>> deep_merge({"a": {"x": 1, "y": 2}, "l": [1, 2]}, {"a": {"y": 3}, "l": [9]})
    {'a': {'x': 1, 'y': 3}, 'l': [9]}
    """
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(merged.get(key), dict) and isinstance(value, Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def changed_keys(before: Mapping[str, Any], after: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of the keys whose values differ between two nested dicts, sorted.

    Examples
    --------
    >>> changed_keys({"a": {"x": 1}, "b": 2}, {"a": {"x": 5}, "b": 2, "c": 0})
    ['a.x', 'c']
    """
    paths = []
    for key in sorted(set(before) | set(after), key=str):
        path = f"{prefix}{key}"
        old, new = before.get(key, _MISSING), after.get(key, _MISSING)
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            paths.extend(changed_keys(old, new, prefix=f"{path}."))
        elif old is _MISSING or new is _MISSING or old != new:
            paths.append(path)
    return paths


_MISSING = object()


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
        raise ValueError(f'{field}: {value!r} is not a JSON object; give the keys to change, example: {{"epochs": 10}}')
    return copy.deepcopy(dict(value))


def build_clone_configuration(base_configuration: Mapping[str, Any] | None, override: Mapping[str, Any]) -> dict:
    """The configuration of the new model: ``override`` deep-merged over the base's.

    The new model takes the dataset's labels, so the base model's label maps
    (:data:`LABEL_MAP_KEYS`) are dropped as dtlpy's clone does; give them in ``override``
    to keep them.

    Examples
    --------
    >>> build_clone_configuration({"epochs": 1, "id_to_label_map": {"0": "cat"}}, {"lr": 0.1})
    {'epochs': 1, 'lr': 0.1}
    """
    base = {k: v for k, v in (base_configuration or {}).items() if k not in LABEL_MAP_KEYS}
    return deep_merge(base, override)


# --------------------------------------------------------------------------------------
# subsets

#: Top-level keys of a full query (``{"filter": ...}`` form).
QUERY_KEYS = frozenset({"filter", "resource", "page", "pageSize", "sort", "join"})
SUBSET_SOURCES = ("input", "base model", "packaged default")
_DQL_EXAMPLE = '{"filter": {"metadata.system.tags.train": true}}'


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
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            return json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(f"{field}: {value[:80]!r} is not valid JSON ({error})") from None
    return value


def is_empty_subset(value: Any) -> bool:
    """``True`` for a missing subset: ``None``, ``""``, ``{}``, ``{"filter": {}}`` or ``{"filter": None}``.

    Examples
    --------
    >>> is_empty_subset({"filter": {}}), is_empty_subset({"dir": "/a"})
    (True, False)
    """
    if value is None or (isinstance(value, str | Mapping | list) and len(value) == 0):
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, Mapping) and set(value) == {"filter"} and not value["filter"]


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
        raise ValueError(f"{field}: {value!r} is not a DQL object; example: {_DQL_EXAMPLE}")
    if "filter" in value:
        query = copy.deepcopy(dict(value))
        unknown = sorted(set(query) - QUERY_KEYS, key=str)
        if unknown:
            raise ValueError(
                f"{field}: unknown query key {unknown[0]!r}; a query has {', '.join(sorted(QUERY_KEYS))} "
                f"(or give a bare filter); example: {_DQL_EXAMPLE}"
            )
    else:
        query = {"filter": copy.deepcopy(dict(value))}
    check_dql_condition(query["filter"], f"{field}.filter")
    query.setdefault("resource", "items")
    if query["resource"] != "items":
        raise ValueError(f"{field}.resource: {query['resource']!r} is not 'items'; a subset selects items")
    query.setdefault("page", 0)
    query.setdefault("pageSize", 1000)
    for key in ("page", "pageSize"):
        if not isinstance(query[key], int) or isinstance(query[key], bool) or query[key] < 0:
            raise ValueError(f"{field}.{key}: {query[key]!r} is not a non-negative integer; example: 0")
    if "join" in query:
        join = query["join"]
        if not isinstance(join, Mapping):
            raise ValueError(f'{field}.join: {join!r} is not an object; example: {{"filter": {{"label": "cat"}}}}')
        if "filter" in join:
            check_dql_condition(join["filter"], f"{field}.join.filter")
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
        if not is_empty_subset(given):
            chosen[name] = ResolvedSubset(normalize_subset_query(given, field), "input")
        elif not is_empty_subset(from_base):
            query = normalize_subset_query(from_base, f"base_model.metadata.system.subsets.{name}")
            chosen[name] = ResolvedSubset(query, "base model")
        else:
            chosen[name] = ResolvedSubset(normalize_subset_query(load_subset_filter(name), field), "packaged default")
    return ResolvedSubsets(train=chosen["train"], validation=chosen["validation"])


def check_base_model_status(status: Any) -> None:
    """Refuse to clone a base model that is not trained (C7 of the original).

    Examples
    --------
    >>> check_base_model_status("trained")
    """
    if status not in CLONEABLE_STATUSES:
        raise ValueError(
            f"base_model.status: {status!r} is not one of {', '.join(map(repr, CLONEABLE_STATUSES))}; "
            "train the base model first or connect a trained model version"
        )


def execution_tag(execution_id: str) -> str:
    """The model tag that marks the model created by ``execution_id``.

    Examples
    --------
    >>> execution_tag("exec-1")
    'active-learning-execution:exec-1'
    """
    return f"{EXECUTION_TAG_PREFIX}{execution_id}"


def clone_tags(base_tags: list[str] | None, execution_id: str | None) -> list[str]:
    """Tags of the new model: the base model's, minus the execution tag of the run that made
    the base (it would make that run's lookup find two models), plus this execution's.

    Examples
    --------
    >>> clone_tags(["yolo", "active-learning-execution:e0"], "e1")
    ['yolo', 'active-learning-execution:e1']
    """
    tags = [tag for tag in (base_tags or []) if not str(tag).startswith(EXECUTION_TAG_PREFIX)]
    if execution_id is not None:
        tags.append(execution_tag(execution_id))
    return tags


def created_by(execution_id: str | None, base_model_id: str) -> dict[str, Any]:
    """The ``metadata.user.activeLearning.createdBy`` record of a new model.

    Examples
    --------
    >>> created_by("exec-1", "m1")
    {'executionId': 'exec-1', 'baseModelId': 'm1'}
    """
    return {"executionId": execution_id, "baseModelId": base_model_id}


# --------------------------------------------------------------------------------------
# platform edge: everything below talks to dtlpy


def node_config_from_context(context: Any) -> Any:
    """The node's ``customNodeConfig`` (edge: reads ``context.node``), ``None`` outside a pipeline.

    Examples
    --------
    >>> node_config_from_context(None) is None
    True
    """
    node = getattr(context, "node", None) if context is not None else None
    metadata = getattr(node, "metadata", None)
    return metadata.get("customNodeConfig") if isinstance(metadata, Mapping) else None


def run_node(
    base_model: Any,
    dataset: Any,
    train_subset: Any = None,
    validation_subset: Any = None,
    model_configuration: Any = None,
    progress: Any = None,
    context: Any = None,
    now: datetime | None = None,
) -> tuple[Any, Any]:
    """Clone ``base_model`` into a new model version on ``dataset`` (the node's edge).

    Order: validate every input (template, base status, subsets, configuration); return the
    model a previous run of the same execution created, if any (one models query); check
    that the train subset selects items (one count query); pick a free name (one models
    query); clone (status ``created``, the dataset's project, merged configuration, the
    resolved subsets); record ``metadata.user.activeLearning.createdBy`` (one update, which
    also restores the exact subsets if the platform merged them with the base model's).

    Parameters
    ----------
    base_model : dl.Model
        A trained, deployed or pre-trained model; never modified.
    dataset : dl.Dataset
        The dataset the new model trains on.
    train_subset, validation_subset : dict, optional
        DQL of the subsets; see :func:`resolve_subsets` for the fallbacks.
    model_configuration : dict, optional
        Keys deep-merged over the base configuration.
    progress : dl.Progress, optional
        Unused; the node has a single output.
    context : dl.Context, optional
        Gives the node config ``modelName`` and the execution id.
    now : datetime, optional
        The time the name template shows (default: the local time now).

    Returns
    -------
    tuple
        ``(new_model, base_model)``.

    Examples
    --------
    >>> new_model, base = run_node(base_model=model, dataset=dataset,
    ...                            context=context)  # doctest: +SKIP
    """
    if base_model is None:
        raise ValueError("base_model: None is not a model; connect the model to clone to the node's base_model input")
    if dataset is None:
        raise ValueError("dataset: None is not a dataset; connect the dataset to train on to the node's dataset input")
    config = CreateModelConfig.from_json(node_config_from_context(context))
    check_base_model_status(base_model.status)
    base_system = (base_model.metadata or {}).get("system") or {}
    subsets = resolve_subsets(train_subset, validation_subset, base_system.get("subsets"))
    override = parse_model_configuration(model_configuration)
    base_configuration = copy.deepcopy(base_model.configuration or {})
    configuration = build_clone_configuration(base_configuration, override)
    execution_id = getattr(context, "execution_id", None) if context is not None else None
    project = dataset.project

    existing = _find_created_model(project, execution_id)
    if existing is not None:
        record = ((existing.metadata or {}).get("user") or {}).get("activeLearning", {}).get("createdBy")
        if record is None:  # the clone went through but its createdBy update did not: finish it now
            existing = _finish_new_model(existing, created_by(execution_id, base_model.id), subsets)
        logger.info(
            "execution %s already created model %r (%s) from %r; returning it without cloning",
            execution_id, existing.name, existing.id, base_model.name,
        )  # fmt: skip
        return existing, base_model

    _check_train_subset_has_items(dataset, subsets.train.query)
    values = NameValues(
        base_model_name=base_model.name,
        base_model_id=base_model.id,
        dataset_name=dataset.name,
        dataset_id=dataset.id,
        project_name=project.name,
    )
    name = config.render(values, now if now is not None else datetime.now().astimezone())
    tags = clone_tags(getattr(base_model, "tags", None), execution_id)
    new_model = _clone_with_free_name(base_model, dataset, project, name, configuration, subsets, tags, execution_id)
    new_model = _finish_new_model(new_model, created_by(execution_id, base_model.id), subsets)
    logger.info(
        "created model %r (%s) from %r (%s); subsets: %s; configuration keys changed: %s",
        new_model.name, new_model.id, base_model.name, base_model.id, subsets.sources(),
        ", ".join(changed_keys(base_configuration, configuration)) or "none",
    )  # fmt: skip
    return new_model, base_model


def _models_filter(project: Any, field: str, values: Any, operator: Any = None) -> Any:
    import dtlpy as dl

    filters = dl.Filters(resource=dl.FiltersResource.MODEL)
    filters.add(field="projectId", values=project.id)
    filters.add(field=field, values=values, operator=operator)
    return filters


def _find_created_model(project: Any, execution_id: str | None) -> Any:
    """Edge: the model this execution already created (one models query), or ``None``."""
    if execution_id is None:
        logger.info("no execution id in the context; a retried run cannot be recognized and will clone again")
        return None
    filters = _models_filter(project, "tags", execution_tag(execution_id))
    try:
        found = list(project.models.list(filters=filters).items)
    except Exception as error:
        raise RuntimeError(f"looking up the model created by execution {execution_id} failed: {error}") from error
    if len(found) > 1:
        logger.warning(
            "execution %s created %d models (%s); returning the oldest",
            execution_id, len(found), ", ".join(m.id for m in found),
        )  # fmt: skip
    return min(found, key=lambda m: (str(m.created_at), m.id)) if found else None


def _check_train_subset_has_items(dataset: Any, query: dict[str, Any]) -> None:
    """Edge: one count query; a train subset without items would train on nothing."""
    import dtlpy as dl

    count_query = copy.deepcopy(query)
    count_query["page"] = 0
    count_query["pageSize"] = 1
    try:
        count = dataset.items.list(filters=dl.Filters(custom_filter=count_query)).items_count
    except Exception as error:
        raise RuntimeError(f"counting the train subset items of dataset {dataset.name!r} failed: {error}") from error
    if not count:
        raise ValueError(
            f"train_subset: {json.dumps(query['filter'])} matches no items in dataset {dataset.name!r} "
            f"({dataset.id}); tag items for training (Model Data Split) or pass a train_subset that selects items"
        )


def _clone_with_free_name(
    base_model: Any,
    dataset: Any,
    project: Any,
    name: str,
    configuration: dict[str, Any],
    subsets: ResolvedSubsets,
    tags: list[str],
    execution_id: str | None = None,
) -> Any:
    """Edge: clone under ``name`` or the first free ``name-N`` (one names query, then the clone)."""
    import dtlpy as dl

    candidates = numbered_names(name)
    taken = _taken_names(project, candidates)
    for candidate in candidates:
        if candidate in taken:
            continue
        try:
            return _clone(base_model, dataset, project, candidate, configuration, subsets, tags)
        except (dl.exceptions.BadRequest, dl.exceptions.Conflict) as error:
            # Our own clone may have gone through while its answer was lost (dtlpy then resends
            # and meets the name it just took): that model carries this execution's tag.
            ours = _find_created_model(project, execution_id) if execution_id is not None else None
            if ours is not None:
                logger.info("the clone %r (%s) went through before the error; using it", ours.name, ours.id)
                return ours
            # A model of that name may have appeared since the names query; anything else is fatal.
            if candidate not in _taken_names(project, [candidate]):
                raise RuntimeError(
                    f"cloning model {base_model.name!r} ({base_model.id}) as {candidate!r} was refused: {error}"
                ) from error
            logger.info("model name %r was taken meanwhile; trying the next one", candidate)
    raise ValueError(
        f"{NAME_TEMPLATE_FIELD}: the names {candidates[0]!r} to {candidates[-1]!r} are all taken in project "
        f"{project.name!r}; change the template (e.g. add {{now:%Y_%m_%d-T%H_%M_%S}}) or delete old versions"
    )


def _taken_names(project: Any, candidates: list[str]) -> set[str]:
    filters = _models_filter(project, "name", list(candidates), operator="in")
    try:
        page = project.models.list(filters=filters)  # at most MAX_NAME_TRIES models: one page
        return {model.name for model in page.items}
    except Exception as error:
        raise RuntimeError(f"looking up model names in project {project.name!r} failed: {error}") from error


def _clone(
    base_model: Any,
    dataset: Any,
    project: Any,
    name: str,
    configuration: dict[str, Any],
    subsets: ResolvedSubsets,
    tags: list[str],
) -> Any:
    """Edge: one clone request. dtlpy edits the source entity's configuration in memory
    while cloning, so the request is made from a detached copy of the base model."""
    import dtlpy as dl

    source = dl.Model.from_json(
        _json=copy.deepcopy(base_model.to_json()),
        client_api=base_model._client_api,
        project=base_model.project,
        package=base_model._package,
    )
    new_model = source.clone(
        model_name=name,
        project_id=project.id,
        dataset=dataset,
        configuration=copy.deepcopy(configuration),
        status="created",
        tags=list(tags),
        train_filter=dl.Filters(custom_filter=copy.deepcopy(subsets.train.query)),
        validation_filter=dl.Filters(custom_filter=copy.deepcopy(subsets.validation.query)),
    )
    if new_model is None:
        raise RuntimeError(f"cloning model {base_model.name!r} ({base_model.id}) as {name!r} returned nothing")
    return new_model


def _finish_new_model(new_model: Any, record: dict[str, Any], subsets: ResolvedSubsets) -> Any:
    """Edge: one update of the new model (ours to change): record its creator and make sure
    its subsets are exactly the resolved queries (a clone may merge them with the source's)."""
    metadata = new_model.metadata if isinstance(new_model.metadata, dict) else {}
    metadata.setdefault("user", {}).setdefault("activeLearning", {})["createdBy"] = record
    stored = metadata.setdefault("system", {}).setdefault("subsets", {})
    fix_subsets = any(stored.get(name) != getattr(subsets, name).query for name in ("train", "validation"))
    if fix_subsets:
        logger.info("the clone of %r did not keep the subsets as sent; setting them exactly", new_model.name)
        for name in ("train", "validation"):
            stored[name] = copy.deepcopy(getattr(subsets, name).query)
    new_model.metadata = metadata
    try:
        updated = new_model.update(system_metadata=fix_subsets)
    except Exception as error:
        raise RuntimeError(
            f"model {new_model.name!r} ({new_model.id}) was created but recording {CREATED_BY_FIELD} failed: {error}; "
            "a retry of this execution finds the model by its execution tag and records it then"
        ) from error
    return updated if updated is not None else new_model
