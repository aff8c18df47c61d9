"""Model names of Create New Model: the ``modelName`` template language and free names.

:func:`parse_name_template` splits a template into literal text and a fixed set of
placeholders (nothing is ever evaluated), :func:`render_model_name` fills them from the
entities and the time, and :func:`numbered_names` lists the ``name-2``, ``name-3`` ...
fallbacks for a name already taken. :func:`execution_time` is the moment the time
placeholders show: the execution's creation time when the context has it, so every run of one
execution renders the same name. Pure: no platform calls.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nodes.common.limits import check_visible_name, shorten

#: The manifest's default for the node config field ``modelName``.
DEFAULT_NAME_TEMPLATE = "{base_model.name}_{datetime.datetime.now().strftime('%Y_%m_%d-T%H_%M_%S')}"
#: Where the template comes from, for error messages.
NAME_TEMPLATE_FIELD = "customNodeConfig.modelName"
#: Longest model name, checked on the rendered name. dtlpy and the Dataloop docs state no limit
#: for model names; this is our documented bound (docs/failure-behaviour.md), long enough for
#: any template and its ``-N`` suffix, short enough for the UI and file names of artifacts.
MAX_NAME_LENGTH = 256
#: Unicode categories no name may hold: control characters (C0 such as newline, tab and NUL,
#: DEL, C1), surrogates, and the line / paragraph separators U+2028 / U+2029.
FORBIDDEN_NAME_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
#: A taken name gets ``-2``, ``-3``, ... up to ``-MAX_NAME_TRIES``.
MAX_NAME_TRIES = 100

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
        f"{NAME_TEMPLATE_FIELD}: {shorten(template)} {problem}; allowed placeholders: "
        f"{', '.join(ALLOWED_PLACEHOLDERS)}; example: "
        f'"modelName": "{{base_model.name}}_{{now:%Y_%m_%d-T%H_%M_%S}}"'
    )


def _control_character(text: str) -> int | None:
    """The position of the first character of :data:`FORBIDDEN_NAME_CATEGORIES` in ``text``, else ``None``.

    Examples
    --------
    >>> _control_character("model\\n"), _control_character("модель-✓")
    (5, None)
    """
    for position, char in enumerate(text):
        if unicodedata.category(char) in FORBIDDEN_NAME_CATEGORIES:
            return position
    return None


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
            f'{NAME_TEMPLATE_FIELD}: {shorten(template)} is not a string; example: "modelName": "{DEFAULT_NAME_TEMPLATE}"'
        )
    bad = _control_character(template)
    if bad is not None:
        raise _template_error(
            template,
            f"has the control character {template[bad]!r} at position {bad}; remove it "
            "(a name is one line of printable text)",
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
        raise _template_error(template, f"has an unclosed placeholder {shorten(bad)}")
    raise _template_error(template, f"uses the placeholder {shorten(bad)}, which is not allowed")


def _format_time(moment: datetime, token: _Time, template: str) -> str:
    if token.utc:
        # Like datetime.utcnow(): UTC wall-clock time; a naive `now` is taken as local time.
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    try:
        return moment.strftime(token.fmt)
    except ValueError as error:
        raise _template_error(
            template, f"has the time format {shorten(token.source)} that strftime rejects ({shorten(str(error))})"
        ) from None


def check_model_name(name: str, field: str = "model name") -> str:
    """Check a rendered name and return it: not blank, no ``/``, at most
    :data:`MAX_NAME_LENGTH` characters, no control character (:data:`FORBIDDEN_NAME_CATEGORIES`),
    all checked on the whole string.

    Examples
    --------
    >>> check_model_name("yolo_2025")
    'yolo_2025'
    """
    if not name.strip():
        raise ValueError(f"{field}: {shorten(name)} is empty; give {NAME_TEMPLATE_FIELD} some text or placeholders")
    if "/" in name:
        raise ValueError(
            f"{field}: {shorten(name)} contains '/', which model names may not; remove it from the template"
        )
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(
            f"{field}: {name[:40]!r}... is {len(name)} characters long, more than {MAX_NAME_LENGTH}; shorten the template"
        )
    bad = _control_character(name)
    if bad is not None:
        raise ValueError(
            f"{field}: {shorten(name)} has the control character {name[bad]!r} at position {bad}; remove it from "
            f"the template, or rename the entity whose name brings it (a name is one line of printable text)"
        )
    try:  # format characters (right-to-left override, zero-width space, ...) or nothing visible
        check_visible_name(field, name)
    except ValueError as error:
        raise ValueError(f"{error}; remove it from the template, or rename the entity whose name brings it") from None
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


def execution_time(execution: Mapping[str, Any] | None) -> datetime | None:
    """The execution's ``createdAt`` as a local-time ``datetime``, ``None`` when absent or unreadable.

    The name template's time placeholders show this moment instead of the clock, so a rerun of
    the same execution (even one overlapping the first) renders the same name, and the
    platform's name uniqueness refuses the second clone.

    Examples
    --------
    >>> execution_time({"createdAt": "2025-01-31T12:05:09.123Z"}).astimezone(UTC).isoformat()
    '2025-01-31T12:05:09.123000+00:00'
    >>> execution_time({"id": "e1"}) is None, execution_time(None) is None
    (True, True)
    """
    created = execution.get("createdAt") if isinstance(execution, Mapping) else None
    if not isinstance(created, str) or not created:
        return None
    try:
        moment = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:  # the platform's times are UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone()
