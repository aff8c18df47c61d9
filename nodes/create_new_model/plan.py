"""The new model's configuration, tags and creator record, decided from plain data.

:func:`build_clone_configuration` deep-merges the ``model_configuration`` override over a
copy of the base configuration; :func:`clone_tags` and :func:`created_by` mark the new model
with the execution that made it, so a retried execution finds that model instead of
cloning again. Pure: no platform calls, no argument is modified.
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
