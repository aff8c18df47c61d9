"""Entity inputs of a node (a model, a dataset, an item), checked for their kind before any request.

A pipeline connects entities to a node's inputs; code calling a node directly may pass an id
string, a dict or the wrong entity instead. :func:`check_entity_input` refuses those with a
``ValueError`` that names the input and says what to connect (and, for code, how to get the
entity), instead of an ``AttributeError`` from deep inside or a request made with the wrong id.
The one place this touches dtlpy is the ``isinstance`` check (dtlpy is imported on call).
"""

from __future__ import annotations

from typing import Any

from nodes.common.limits import shorten

#: What each kind of input must be: (dtlpy entity class name, how to get one in code).
ENTITY_KINDS = {
    "model": ("Model", "dl.models.get(model_id=...)"),
    "dataset": ("Dataset", "dl.datasets.get(dataset_id=...)"),
    "item": ("Item", "dl.items.get(item_id=...)"),
}

__all__ = ["ENTITY_KINDS", "check_entity_input"]


def check_entity_input(value: Any, field: str, kind: str, node: str, what: str) -> None:
    """Refuse a node input that is ``None`` or not a dtlpy entity of ``kind``.

    Parameters
    ----------
    value : object
        The input as the node received it.
    field : str
        The input's name, e.g. ``"base_model"``.
    kind : {"model", "dataset", "item"}
        The entity the input must be (``dl.Model`` / ``dl.Dataset`` / ``dl.Item``).
    node : str
        The node's display name, e.g. ``"Create New Model"``.
    what : str
        What to connect, e.g. ``"the model to clone"``.

    Raises
    ------
    ValueError
        Naming ``field``, the value received (cut short) and what to connect.

    Examples
    --------
    >>> check_entity_input("6650f0c1", "base_model", "model", "Create New Model", "the model to clone")
    Traceback (most recent call last):
    ...
    ValueError: base_model: '6650f0c1' is a str, not a model; connect the model to clone to the Create New Model node's base_model input (in code: dl.models.get(model_id=...))
    """
    import dtlpy as dl

    class_name, getter = ENTITY_KINDS[kind]
    article = "an" if kind[0] in "aeiou" else "a"
    if value is None:
        raise ValueError(f"{field}: None is not {article} {kind}; connect {what} to the {node} node's {field} input")
    if not isinstance(value, getattr(dl, class_name)) or not isinstance(getattr(value, "id", None), str):
        raise ValueError(
            f"{field}: {shorten(value, 80)} is a {type(value).__name__}, not {article} {kind}; connect {what} to the "
            f"{node} node's {field} input (in code: {getter})"
        )
