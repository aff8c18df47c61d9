"""Field validators of the Select for Labeling configs: each raises ``ValueError`` naming the field,
the bad value (cut short) and the fix, with an example; unknown keys get the nearest valid key
(difflib); task names and due dates are checked here too. Pure; used by
:mod:`~nodes.select_for_labeling.config`.
"""

from __future__ import annotations

import difflib
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from nodes.common.limits import shorten

_TAG_EXAMPLE = '"to_label"'
#: Largest seed: scikit-learn's ``random_state`` (k-means) takes 0 to 2**32 - 1.
MAX_SEED = 2**32 - 1
#: Longest task name (dtlpy and the Dataloop docs state no limit; ours, as for model names).
MAX_TASK_NAME_CHARS = 256
#: Unicode categories a task name may not hold: control (Cc), format (Cf: RLO, zero-width space, ...),
#: surrogate (Cs), private use (Co), line / paragraph separator (Zl, Zp).
FORBIDDEN_TASK_NAME_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
#: Latest task due date accepted, in days from now (a later one is a typo, e.g. seconds given as ms).
MAX_DUE_DAYS = 3660

# whole-string patterns: always used with fullmatch (``$`` would also match before a trailing newline)
_TAG_RE = re.compile(r"[A-Za-z0-9_]{1,64}")
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
#: Longest email address (RFC 5321's path limit).
_MAX_EMAIL_CHARS = 254


def _fail(path: str, value: Any, problem: str, example: str) -> ValueError:
    """The house-style error: field, bad value, what is expected, an example."""
    return ValueError(f"{path}: {shorten(value)} {problem}; example: {example}")


def _listed(names: list[str], allowed: Iterable[str] | None = None) -> str:
    """Up to 5 names, each cut, for a message: ``'a', 'b' and 3 more``; with ``allowed``, each
    followed by the nearest allowed name to rename it to (difflib), or ``(remove it)``."""
    more = f" and {len(names) - 5} more" if len(names) > 5 else ""
    if allowed is None:
        return ", ".join(shorten(name, 60) for name in names[:5]) + more
    return ", ".join(f"{shorten(name, 60)} {_suggestion(name, allowed)}" for name in names[:5]) + more


def _suggestion(key: str, allowed: Iterable[str]) -> str:
    """``(rename it to 'budget')`` for the nearest known key (difflib), else ``(remove it)``."""
    near = difflib.get_close_matches(key[:200], list(allowed), n=1, cutoff=0.6)
    return f"(rename it to {near[0]!r})" if near else "(remove it)"


def _reject_unknown(path: str, raw: Mapping, allowed: tuple[str, ...]) -> None:
    """Refuse keys not in ``allowed``, each with the nearest known key suggested.

    Examples
    --------
    >>> _reject_unknown("selection_config", {"budgt": 1}, ("budget", "seed"))
    Traceback (most recent call last):
    ...
    ValueError: selection_config: unknown key(s) 'budgt' (rename it to 'budget'); known keys are budget, seed
    """
    unknown = sorted(str(k) for k in raw if k not in allowed)
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {_listed(unknown, allowed)}; known keys are {', '.join(allowed)}")


def _choice(path: str, value: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise _fail(
            path,
            value,
            f"is not one of {', '.join(map(repr, allowed))}",
            f'"{path.rsplit(".", 1)[-1]}": "{allowed[0]}"',
        )
    return value


def _unit_number(path: str, value: Any, example: str) -> float:
    """A finite number in [0, 1] (booleans are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(path, value, "is not a finite number in [0, 1]", example)
    if not 0.0 <= value <= 1.0:
        raise _fail(path, value, "is outside [0, 1]", example)
    return float(value)


def _integer(path: str, value: Any, example: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """An ``int`` (not a bool, not ``3.0``), in [``minimum``, ``maximum``] when given."""
    if isinstance(value, bool) or not isinstance(value, int):
        what = "a positive integer" if minimum == 1 else "an integer"
        raise _fail(path, value, f"is not {what}", example)
    if minimum is not None and value < minimum:
        raise _fail(path, value, f"is less than {minimum}", example)
    if maximum is not None and value > maximum:
        raise _fail(path, value, f"is more than {maximum}", example)
    return int(value)


def _seed(path: str, value: Any) -> int:
    """A seed: an integer from 0 to 2**32 - 1 (what NumPy's and scikit-learn's generators take)."""
    return _integer(path, value, '"seed": 0', minimum=0, maximum=MAX_SEED)


def _optional_text(path: str, value: Any, example: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, value, "is not a non-empty string (or null)", example)
    return value.strip()


def _tag(path: str, value: Any) -> str:
    if not isinstance(value, str) or not _TAG_RE.fullmatch(value):
        raise _fail(path, value, "is not a tag name of 1 to 64 letters, digits or underscores", _TAG_EXAMPLE)
    return value


def _as_mapping(path: str, raw: Any, example: str) -> Mapping:
    if not isinstance(raw, Mapping):
        raise _fail(path, raw, "is not an object", example)
    return raw


def _task_name(path: str, value: Any) -> str:
    """A task name: text with a visible character, no control or format character, ≤ 256 characters.

    Refused: control characters (category Cc: newline, tab, NUL, ...), format characters (Cf: the
    right-to-left override U+202E, the zero-width space U+200B, ...), surrogates, private-use
    characters, line / paragraph separators, and names with no letter, digit, punctuation or symbol.

    Examples
    --------
    >>> _task_name("task.name", " label round 1 ")
    'label round 1'
    >>> _task_name("task.name", "round\u202e1")
    Traceback (most recent call last):
    ...
    ValueError: task.name: 'round\u202e1' holds U+202E (a control or format character) at position 5; remove it; example: "name": "label round 1"
    """
    example = '"name": "label round 1"'
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, value, "is not a non-empty string", example)
    text = value.strip()
    for position, char in enumerate(text):
        if unicodedata.category(char) in FORBIDDEN_TASK_NAME_CATEGORIES:
            problem = f"holds U+{ord(char):04X} (a control or format character) at position {position}; remove it"
            raise _fail(path, value, problem, example)
    if not any(unicodedata.category(char)[0] in "LNPS" for char in text):
        raise _fail(path, value, "has no visible character (letter, digit, punctuation or symbol)", example)
    if len(text) > MAX_TASK_NAME_CHARS:
        raise _fail(
            path, value, f"is {len(text):,} characters long, more than {MAX_TASK_NAME_CHARS}; shorten it", example
        )
    return text


def _due_date(path: str, value: Any, now: datetime | None = None) -> float | None:
    """ISO date / datetime (naive means UTC) or epoch milliseconds → epoch seconds, after ``now``
    (default: the current time) and at most :data:`MAX_DUE_DAYS` days later."""
    example = '"dueDate": "2030-01-31" (or "2030-01-31T18:00:00+00:00", or epoch ms 1896048000000)'
    if value is None:
        return None
    if isinstance(value, bool):
        raise _fail(path, value, "is not a date", example)
    if isinstance(value, int | float):
        if not math.isfinite(value) or value <= 0:
            raise _fail(path, value, "is not a positive epoch time in milliseconds", example)
        return _due_in_range(path, value, float(value) / 1000.0, now, example)
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                parsed = datetime.combine(date.fromisoformat(text), datetime.min.time())
            else:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise _fail(path, value, "is not an ISO date or datetime", example) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return _due_in_range(path, value, parsed.timestamp(), now, example)
    raise _fail(path, value, "is not a date", example)


def _due_in_range(path: str, value: Any, seconds: float, now: datetime | None, example: str) -> float:
    """``seconds`` when it is after ``now`` and at most :data:`MAX_DUE_DAYS` days later."""
    now = now or datetime.now(UTC)
    if seconds <= now.timestamp():
        when = "" if seconds > 1e11 else " (epoch times are milliseconds)"
        raise _fail(
            path,
            value,
            f"is in the past (now is {now.isoformat(timespec='seconds')}){when}; give a later date",
            example,
        )
    latest = now + timedelta(days=MAX_DUE_DAYS)
    if seconds > latest.timestamp():
        raise _fail(
            path,
            value,
            f"is after {latest.date().isoformat()} ({MAX_DUE_DAYS} days from now); give a nearer date",
            example,
        )
    return seconds
