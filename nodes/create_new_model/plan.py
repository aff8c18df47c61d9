"""The new model's configuration, tags, records and metadata, decided from plain data.

:func:`build_clone_configuration` deep-merges the ``model_configuration`` override over a
copy of the base configuration; :func:`clone_tags` and :func:`created_by` mark the new model
with the execution that made it, so a retried execution finds that model instead of
cloning again. The platform's clone copies the base model's metadata, so :func:`own_metadata`
gives the new model records of its own (no inherited ``activeLearning`` records, no inherited
decision tag) and :func:`is_finished` tells whether that was already written;
:func:`kept_model_id` picks the one model overlapping runs of an execution keep. Pure: no
platform calls, no argument is modified.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

#: Configuration keys dtlpy drops when a clone takes the dataset's labels.
LABEL_MAP_KEYS = ("id_to_label_map", "label_to_id_map")
#: Where the new model records which execution created it.
CREATED_BY_FIELD = "metadata.user.activeLearning.createdBy"
# Model tag that records the creating execution atomically with the clone request itself, so a
# retry recognises the model even when the createdBy update after the clone failed.
EXECUTION_TAG_PREFIX = "active-learning-execution:"
#: The decision tags Compare Models writes (``metadata.system.tags``); a new model never inherits them.
DECISION_TAGS = ("update model", "discard")
#: The key under ``metadata.user`` of the records the Active Learning nodes keep on a model.
ACTIVE_LEARNING_KEY = "activeLearning"


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
    the base (it would make that run's lookup find two models) and any decision tag
    (:data:`DECISION_TAGS`, a verdict on the base, not on the new model), plus this execution's.

    Examples
    --------
    >>> clone_tags(["yolo", "active-learning-execution:e0", "update model"], "e1")
    ['yolo', 'active-learning-execution:e1']
    """
    tags = [
        tag for tag in (base_tags or []) if not str(tag).startswith(EXECUTION_TAG_PREFIX) and tag not in DECISION_TAGS
    ]
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


def own_metadata(
    clone_metadata: Mapping[str, Any] | None,
    record: Mapping[str, Any],
    subsets: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """The metadata the new model must have, from the metadata its clone came back with.

    The platform's clone copies the base model's metadata, so the clone starts with the base's
    records and verdict. The result is a new dict where

    - ``metadata.user.activeLearning`` is exactly ``{"createdBy": record}`` (the base's
      ``createdBy``, ``comparison`` and any other record are dropped);
    - ``metadata.system.tags`` has no :data:`DECISION_TAGS` (other tags stay);
    - ``metadata.system.subsets.train`` / ``.validation`` are exactly ``subsets``;
    - everything else (the user's own metadata, ``clonedFrom``, ...) is kept.

    Examples
    --------
    >>> inherited = {"user": {"activeLearning": {"createdBy": {"executionId": "e0"}, "comparison": {}}},
    ...              "system": {"tags": {"update model": True, "x": True}}}
    >>> meta = own_metadata(inherited, {"executionId": "e1"}, {"train": {"filter": {}}, "validation": {"filter": {}}})
    >>> meta["user"]["activeLearning"], meta["system"]["tags"]
    ({'createdBy': {'executionId': 'e1'}}, {'x': True})
    """
    out = copy.deepcopy(dict(clone_metadata)) if isinstance(clone_metadata, Mapping) else {}
    if not isinstance(out.get("user"), dict):
        out["user"] = {}
    out["user"][ACTIVE_LEARNING_KEY] = {"createdBy": copy.deepcopy(dict(record))}
    if not isinstance(out.get("system"), dict):
        out["system"] = {}
    system = out["system"]
    if isinstance(system.get("tags"), dict):
        system["tags"] = {key: value for key, value in system["tags"].items() if key not in DECISION_TAGS}
    if not isinstance(system.get("subsets"), dict):
        system["subsets"] = {}
    for name in ("train", "validation"):
        system["subsets"][name] = copy.deepcopy(dict(subsets[name]))
    return out


def is_finished(metadata: Any, record: Mapping[str, Any]) -> bool:
    """True when a model's ``createdBy`` is ``record``: :func:`own_metadata` was written.

    ``own_metadata`` is written in one update, so a model whose ``createdBy`` is this run's
    record already has its own records; anything else (no record, or the base model's record
    copied by the clone) means the update after the clone did not happen.

    Examples
    --------
    >>> is_finished({"user": {"activeLearning": {"createdBy": {"executionId": "e1"}}}}, {"executionId": "e1"})
    True
    >>> is_finished({"user": {"activeLearning": {"createdBy": {"executionId": "e0"}}}}, {"executionId": "e1"})
    False
    """
    user = metadata.get("user") if isinstance(metadata, Mapping) else None
    records = user.get(ACTIVE_LEARNING_KEY) if isinstance(user, Mapping) else None
    return isinstance(records, Mapping) and records.get("createdBy") == dict(record)


def kept_model_id(models: list[tuple[str, str]]) -> str:
    """Of the ``(createdAt, id)`` of the models one execution created, the id to keep: the oldest.

    Every run of the execution sees the same order (creation time, then id), so overlapping
    runs agree on the model to keep and each deletes only its own duplicate.

    Examples
    --------
    >>> kept_model_id([("2025-01-02T00:00:00Z", "b"), ("2025-01-01T00:00:00Z", "c"), ("2025-01-01T00:00:00Z", "a")])
    'a'
    """
    if not models:
        raise ValueError("kept_model_id: no models")
    return min(models, key=lambda model: (str(model[0]), str(model[1])))[1]
