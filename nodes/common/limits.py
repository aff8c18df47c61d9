"""Bounds on user-supplied JSON (node configs, model configurations) and on error messages.

:func:`check_json_value` refuses a config that is too deep, too large, not JSON, or holds NaN /
±inf, with a ``ValueError`` naming the path, walking it iteratively (never a ``RecursionError``).
:func:`shorten`, :func:`short_path` and :func:`join_path` keep the values and paths quoted in
messages short, so no message exceeds :data:`MAX_MESSAGE_CHARS`; :func:`no_duplicate_keys`
makes JSON text with a key given twice an error instead of "the last one wins"; :func:`loads_json_text`
parses user JSON text with that hook, the size bound and every parse error as a ``ValueError``.
:func:`check_visible_name` refuses a name that is not visible text (Unicode format characters
such as a right-to-left override, or nothing visible at all); :func:`reject_unknown_keys`
refuses a config key no one reads (a typo such as ``itemMetdata``), suggesting the nearest valid key.
"""

from __future__ import annotations

import difflib
import json
import math
import unicodedata
from collections.abc import Collection, Mapping
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
    "check_visible_name",
    "reject_unknown_keys",
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


#: Unicode categories never allowed in a name: controls, format characters (bidi overrides,
#: zero-width spaces, ...), surrogates and line / paragraph separators (unassigned code points pass:
#: a newer Unicode may assign them).
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def check_visible_name(path: str, value: Any, example: str = "") -> None:
    r"""Refuse a name that holds an invisible or format character, or has nothing visible.

    A name made of a right-to-left override (U+202E), zero-width spaces (U+200B) or other
    characters of Unicode category ``Cf`` (or controls, surrogates, line separators) looks
    different on screen from what it is, or looks empty; so does a name of spaces and combining
    marks only. Such a name is refused wherever a node builds one.

    Parameters
    ----------
    path : str
        The field in messages, e.g. ``"model_configuration.name"``.
    value : object
        The name; anything but a ``str`` is refused.
    example : str, optional
        Ends the message, e.g. ``'"name": "round-7"'``.

    Raises
    ------
    ValueError
        Naming ``path``, the first offending character (code point and Unicode name) and the fix.

    Examples
    --------
    >>> check_visible_name("name", "round 7")
    >>> check_visible_name("name", "abc\u202etxt.exe")
    Traceback (most recent call last):
    ...
    ValueError: name: 'abc\u202etxt.exe' holds U+202E (RIGHT-TO-LEFT OVERRIDE), an invisible or format character; use visible characters only
    >>> check_visible_name("name", " \u200b ")
    Traceback (most recent call last):
    ...
    ValueError: name: ' \u200b ' holds U+200B (ZERO WIDTH SPACE), an invisible or format character; use visible characters only
    >>> check_visible_name("name", "   ", example='"name": "v2"')
    Traceback (most recent call last):
    ...
    ValueError: name: '   ' has no visible character; use visible characters only, e.g. "name": "v2"
    """
    fix = "use visible characters only" + (f", e.g. {example}" if example else "")
    if not isinstance(value, str):
        raise ValueError(f"{path}: {shorten(value, 80)} is a {type(value).__name__}, not a text; {fix}")
    visible = False
    for char in value:
        category = unicodedata.category(char)
        if category in _INVISIBLE_CATEGORIES:
            name = unicodedata.name(char, "unnamed")
            raise ValueError(
                f"{path}: {shorten(value, 80)} holds U+{ord(char):04X} ({name}), an invisible or format character; {fix}"
            )
        visible = visible or category[0] not in "ZCM"
    if not visible:
        raise ValueError(f"{path}: {shorten(value, 80)} has no visible character; {fix}")


def reject_unknown_keys(path: str, raw: Any, allowed: Collection[str], platform_keys: Collection[str] = ()) -> None:
    """Refuse a key of ``raw`` that is neither ``allowed`` nor written by the platform itself.

    A misspelt key (``itemMetdata``) would otherwise be ignored and its default used without a
    word. ``platform_keys`` are keys the platform or its panel stores in the same object (a custom
    node config's ``name``, ``validation``, ``ports``...): accepted and not suggested.

    Parameters
    ----------
    path : str
        The object in messages, e.g. ``"customNodeConfig"`` or ``"customNodeConfig.groups[0]"``.
    raw : object
        The config as given; anything but a mapping is left to the caller's type check.
    allowed : collection of str
        The keys the node reads.
    platform_keys : collection of str
        Keys accepted without being read.

    Raises
    ------
    ValueError
        Naming the first unknown key, the nearest valid key (``difflib``) or the valid keys.

    Examples
    --------
    >>> reject_unknown_keys("cfg", {"seed": 1, "name": "x"}, ["seed", "itemMetadata"], ["name"])
    >>> reject_unknown_keys("cfg", {"itemMetdata": True}, ["seed", "itemMetadata"], ["name"])
    Traceback (most recent call last):
    ...
    ValueError: cfg.itemMetdata: unknown key; did you mean 'itemMetadata'? rename it (valid keys: itemMetadata, seed)
    >>> reject_unknown_keys("cfg", {"zzz": 1}, ["seed"])
    Traceback (most recent call last):
    ...
    ValueError: cfg.zzz: unknown key; remove it (valid keys: seed)
    """
    if not isinstance(raw, Mapping):
        return
    known = set(allowed) | set(platform_keys)
    unknown = [key for key in raw if key not in known]
    if not unknown:
        return
    key = unknown[0]
    text = key if isinstance(key, str) else repr(key)
    nearest = difflib.get_close_matches(text, sorted(allowed), n=1, cutoff=0.6)
    if not nearest:  # a case slip (ITEMMETADATA) is still the nearest key
        nearest = [k for k in sorted(allowed) if k.lower() == text.lower()][:1]
    valid = cut(", ".join(sorted(allowed)), 300)
    more = f" ({len(unknown) - 1} more unknown keys)" if len(unknown) > 1 else ""
    hint = f"did you mean {nearest[0]!r}? rename it" if nearest else "remove it"
    raise ValueError(f"{join_path(path, text)}: unknown key{more}; {hint} (valid keys: {valid})")
