"""Bounds on user-supplied JSON (node configs, model configurations) and on error messages.

A config arrives from a pipeline variable or a node input: it may be nested without end, huge,
or carry NaN / ±inf (which JSON does not allow and ``requests`` refuses only after the node has
read the platform). :func:`check_json_value` refuses such a value with a ``ValueError`` that
names the path, before anything else looks at it; it walks the value iteratively, so a hostile
depth can never raise ``RecursionError``. :func:`shorten` keeps values quoted in messages short.
"""

from __future__ import annotations

import json
import math
from typing import Any

#: Deepest nesting a config may have (objects and arrays count one level each).
MAX_DEPTH = 64
#: Largest config, as compact JSON.
MAX_BYTES = 1_000_000
#: Largest integer magnitude accepted, in bits (about 1.8e308, the float range).
MAX_INT_BITS = 1024
#: Longest value quoted in an error message.
MAX_QUOTE_CHARS = 200

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_INT_BITS", "MAX_QUOTE_CHARS", "check_json_value", "shorten"]


def shorten(value: Any, limit: int = MAX_QUOTE_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters with ``...``, for error messages.

    Examples
    --------
    >>> shorten("x" * 500, limit=12)
    "'xxxxxxxx..."
    >>> shorten(0.5)
    '0.5'
    """
    try:
        text = repr(value)
    except RecursionError:  # a self-referencing or absurdly deep value
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: max(limit - 3, 0)] + "..."


def _join(path: str, key: Any) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}"


def _short_path(path: str, limit: int = 2 * MAX_QUOTE_CHARS) -> str:
    """A path for a message: its start and its end when it is long (long keys, deep nesting)."""
    if len(path) <= limit:
        return path
    half = (limit - 3) // 2
    return f"{path[:half]}...{path[-half:]}"


def check_json_value(
    value: Any,
    field: str,
    *,
    max_depth: int = MAX_DEPTH,
    max_bytes: int = MAX_BYTES,
) -> None:
    """Refuse a JSON value that is too deep, too large, not JSON, or holds NaN / ±inf.

    Parameters
    ----------
    value : object
        The parsed config (dicts, lists, str, int, float, bool, None).
    field : str
        Its name in messages, e.g. ``"model_configuration"``.
    max_depth, max_bytes : int
        Limits; defaults :data:`MAX_DEPTH` and :data:`MAX_BYTES`.

    Raises
    ------
    ValueError
        Naming the path of the first offending value and what to do instead.

    Examples
    --------
    >>> check_json_value({"lr": 0.01, "sizes": [1, 2]}, "model_configuration")
    >>> check_json_value({"lr": float("nan")}, "model_configuration")
    Traceback (most recent call last):
    ...
    ValueError: model_configuration.lr: nan is not a JSON number; use a finite number or remove the key
    """
    stack: list[tuple[Any, str, int]] = [(value, field, 0)]
    while stack:
        current, full_path, depth = stack.pop()
        path = _short_path(full_path)
        if isinstance(current, bool) or current is None or isinstance(current, str):
            continue
        if isinstance(current, int):
            # beyond float range no JSON reader keeps it exact; past ~4,300 digits Python cannot print it
            if current.bit_length() > MAX_INT_BITS:
                raise ValueError(
                    f"{path}: an integer of {current.bit_length()} bits is too large; use a number below 1e308"
                )
            continue
        if isinstance(current, float):
            if not math.isfinite(current):
                raise ValueError(f"{path}: {current} is not a JSON number; use a finite number or remove the key")
            continue
        if isinstance(current, (dict, list, tuple)):
            if depth >= max_depth:
                raise ValueError(
                    f"{path}: nested deeper than {max_depth} levels; flatten the configuration "
                    f"(at most {max_depth} levels of objects and arrays)"
                )
            if isinstance(current, dict):
                for key, child in current.items():
                    if not isinstance(key, str):
                        raise ValueError(f"{path}: key {shorten(key)} is not a string; JSON object keys are strings")
                    stack.append((child, _join(full_path, key), depth + 1))
            else:
                stack.extend((child, _join(full_path, i), depth + 1) for i, child in enumerate(current))
            continue
        raise ValueError(
            f"{path}: a {type(current).__name__} ({shorten(current)}) is not JSON; "
            "use objects, arrays, strings, numbers, true/false or null"
        )
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    if size > max_bytes:
        raise ValueError(
            f"{field}: {size:,} bytes of JSON is over the {max_bytes:,}-byte limit; "
            "keep large data (weights, lists of ids) out of the configuration"
        )
