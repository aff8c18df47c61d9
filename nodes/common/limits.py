"""Bounds on user-supplied JSON (node configs, model configurations) and on error messages.

:func:`check_json_value` refuses a config that is too deep, too large, not JSON, or holds NaN /
±inf, with a ``ValueError`` naming the path, walking it iteratively (never a ``RecursionError``).
:func:`shorten`, :func:`short_path` and :func:`join_path` keep the values and paths quoted in
messages short, so no message exceeds :data:`MAX_MESSAGE_CHARS`; :func:`no_duplicate_keys`
makes JSON text with a key given twice an error instead of "the last one wins"; :func:`loads_json_text`
parses user JSON text with that hook, the size bound and every parse error as a ``ValueError``.
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
#: Longest object key kept whole in a path (``a.<key>.b``); longer keys are cut with ``...``.
MAX_KEY_CHARS = 64
#: Longest path quoted in an error message (its start and its end are kept).
MAX_PATH_CHARS = 2 * MAX_QUOTE_CHARS
#: Longest error message a validator raises (a path, a quoted value and a fixed text with an example).
MAX_MESSAGE_CHARS = 1000

__all__ = [
    "cut",
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_INT_BITS",
    "MAX_KEY_CHARS",
    "MAX_MESSAGE_CHARS",
    "MAX_PATH_CHARS",
    "MAX_QUOTE_CHARS",
    "DuplicateKeyError",
    "check_json_value",
    "join_path",
    "loads_json_text",
    "no_duplicate_keys",
    "short_path",
    "shorten",
]


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
    return cut(text, limit)


def cut(text: Any, limit: int = MAX_QUOTE_CHARS) -> str:
    """``str(text)`` cut to ``limit`` characters with ``...`` (unquoted, for ids and names).

    Examples
    --------
    >>> cut("abcdefghij", limit=6), cut("abc", limit=6)
    ('abc...', 'abc')
    """
    text = str(text)
    return text if len(text) <= limit else text[: max(limit - 3, 0)] + "..."


def short_path(path: str, limit: int = MAX_PATH_CHARS) -> str:
    """A path for a message: its start and its end, cut in the middle with ``...`` when long.

    Examples
    --------
    >>> short_path("cfg.a.b")
    'cfg.a.b'
    >>> short_path("cfg." + "k" * 50 + ".end", limit=21)
    'cfg.kkkkk...kkkkk.end'
    """
    if len(path) <= limit:
        return path
    half = (limit - 3) // 2
    return f"{path[:half]}...{path[-half:]}"


def join_path(path: str, key: Any) -> str:
    """``path[key]`` for an index, ``path.key`` otherwise; the key and the result are kept short.

    A key longer than :data:`MAX_KEY_CHARS` is cut with ``...`` and the joined path is
    :func:`short_path`-ed, so a path stays short however long the keys or deep the nesting.

    Examples
    --------
    >>> join_path("cfg", "a"), join_path("cfg.a", 3)
    ('cfg.a', 'cfg.a[3]')
    >>> len(join_path("cfg", "k" * 300_000))
    68
    """
    if isinstance(key, int) and not isinstance(key, bool):
        return short_path(f"{path}[{key}]")
    text = key if isinstance(key, str) else shorten(key, MAX_KEY_CHARS)
    if len(text) > MAX_KEY_CHARS:
        text = text[: MAX_KEY_CHARS - 3] + "..."
    return short_path(f"{path}.{text}")


class DuplicateKeyError(ValueError):
    """JSON text gives one object the same key twice (:func:`no_duplicate_keys`)."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(
            f"key {shorten(key, MAX_KEY_CHARS)} is given twice in one object; keep one (JSON text would "
            "silently use the last)"
        )


def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for ``json.loads``: an object, or :class:`DuplicateKeyError`.

    Python's ``json`` keeps the last of two equal keys without a word; a config edited by
    hand that says ``"min_delta"`` twice would then use a value its author may not mean.

    Examples
    --------
    >>> import json
    >>> json.loads('{"a": 1, "b": {"c": 2}}', object_pairs_hook=no_duplicate_keys)
    {'a': 1, 'b': {'c': 2}}
    >>> json.loads('{"a": 1, "a": 2}', object_pairs_hook=no_duplicate_keys)
    Traceback (most recent call last):
    ...
    nodes.common.limits.DuplicateKeyError: key 'a' is given twice in one object; keep one (JSON text would silently use the last)
    """
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKeyError(key)
        result[key] = value
    return result


def loads_json_text(text: str, field: str, *, hint: str = "", max_bytes: int | None = MAX_BYTES) -> Any:
    """User JSON text parsed, or a ``ValueError`` naming ``field`` (size, duplicate key, syntax, depth).

    ``hint`` (e.g. ``"example: {...}"``) ends every message; ``max_bytes=None`` skips the size bound
    (for text whose size the caller already bounded). The value is not checked: use
    :func:`check_json_value` on it.

    Examples
    --------
    >>> loads_json_text('{"lr": 0.01}', "model_configuration")
    {'lr': 0.01}
    >>> loads_json_text('{"a": 1, "a": 2}', "cfg", hint="keep the first")
    Traceback (most recent call last):
    ...
    ValueError: cfg: key 'a' is given twice in one object; keep one (JSON text would silently use the last); keep the first
    """
    tail = f"; {hint}" if hint else ""
    size = len(text.encode("utf-8", errors="surrogatepass")) if max_bytes is not None else 0
    if max_bytes is not None and size > max_bytes:
        raise ValueError(
            f"{field}: {size:,} bytes of JSON text is over the {max_bytes:,}-byte limit; "
            f"keep large data (weights, lists of ids) out of the configuration{tail}"
        )
    try:
        return json.loads(text, object_pairs_hook=no_duplicate_keys)
    except DuplicateKeyError as error:
        raise ValueError(f"{field}: {error}{tail}") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{field}: {shorten(text, 80)} is not valid JSON ({error}){tail}") from None
    except RecursionError:
        raise ValueError(
            f"{field}: nested too deeply to read (nested deeper than {MAX_DEPTH} levels); flatten the "
            f"configuration (at most {MAX_DEPTH} levels of objects and arrays){tail}"
        ) from None


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
        current, path, depth = stack.pop()
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
                    stack.append((child, join_path(path, key), depth + 1))
            else:
                stack.extend((child, join_path(path, i), depth + 1) for i, child in enumerate(current))
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
