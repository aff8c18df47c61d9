"""The local platform's clock for cron triggers, and a 5-field cron matcher (pure functions).

Cron start nodes fire when the clock passes a minute their ``spec.cron`` matches; the clock only
moves when a test or the demo advances it (``LocalPlatform.advance_clock``), never with wall
time. Cron syntax: the standard five fields (minute, hour, day of month, month, day of week with
0 and 7 = Sunday), ``*``, lists, ranges and ``/`` steps, as in Dataloop's ``"0 0 * * *"``
(dtlpy ``entities/trigger.py`` ``CronTrigger``); when both day fields are restricted either may
match (the cron convention). Sources: emulator/README.md, "Pipelines".
"""

from __future__ import annotations

import datetime
import functools
import threading
from collections.abc import Iterator

_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))


class CronError(ValueError):
    """A cron expression that is not five valid fields (the message names the field)."""


def _field_values(text: str, name: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if body == "*":
                start, stop = low, high
            elif "-" in body:
                a, b = body.split("-", 1)
                start, stop = int(a), int(b)
            else:
                start = int(body)
                stop = high if step_text else start
        except ValueError:
            raise CronError(f"cron {name} field {text!r}: not a number, range, list or step") from None
        if step < 1 or not low <= start <= stop <= high:
            raise CronError(f"cron {name} field {text!r}: values must lie in {low}-{high}")
        values.update(range(start, stop + 1, step))
    return frozenset(values)


def parse_cron(expression: str) -> tuple[frozenset[int], ...]:
    """The allowed values of each of the five fields of ``expression``.

    Example
    -------
    >>> minutes, hours, days, months, weekdays = parse_cron("0 3 * * 6")
    >>> sorted(minutes), sorted(hours), sorted(weekdays)
    ([0], [3], [6])
    >>> parse_cron("61 * * * *")
    Traceback (most recent call last):
    ...
    emulator.engine.clock.CronError: cron minute field '61': values must lie in 0-59
    """
    if not isinstance(expression, str):
        raise CronError(f"cron: {expression!r} is not a string like '0 0 * * *'")
    return _parse_cron(expression)


@functools.lru_cache(maxsize=256)
def _parse_cron(expression: str) -> tuple[frozenset[int], ...]:
    parts = expression.split()
    if len(parts) != 5:
        raise CronError(f"cron {expression!r}: needs 5 fields (minute hour day month weekday), e.g. '0 0 * * *'")
    fields = [_field_values(p, *spec) for p, spec in zip(parts, _FIELDS, strict=True)]
    if 7 in fields[4]:
        fields[4] = fields[4] | {0}
    return tuple(fields)


def cron_matches(expression: str, moment: datetime.datetime) -> bool:
    """Does the minute of ``moment`` match ``expression``?

    Example
    -------
    >>> saturday = datetime.datetime(2026, 1, 3, 3, 0)
    >>> cron_matches("0 3 * * 6", saturday), cron_matches("0 3 * * 1", saturday)
    (True, False)
    """
    minutes, hours, days, months, weekdays = parse_cron(expression)
    weekday = (moment.weekday() + 1) % 7  # cron: 0 = Sunday; Python: 0 = Monday
    day_restricted = expression.split()[2] != "*"
    weekday_restricted = expression.split()[4] != "*"
    if day_restricted and weekday_restricted:
        day_ok = moment.day in days or weekday in weekdays
    else:
        day_ok = moment.day in days and weekday in weekdays
    return moment.minute in minutes and moment.hour in hours and moment.month in months and day_ok


def minutes_between(start: datetime.datetime, end: datetime.datetime) -> Iterator[datetime.datetime]:
    """Each whole minute ``m`` with ``start < m <= end``.

    Example
    -------
    >>> t = datetime.datetime(2026, 1, 1, 0, 0, 30)
    >>> [m.minute for m in minutes_between(t, t + datetime.timedelta(minutes=2))]
    [1, 2]
    """
    minute = start.replace(second=0, microsecond=0) + datetime.timedelta(minutes=1)
    while minute <= end:
        yield minute
        minute += datetime.timedelta(minutes=1)


def due_times(expression: str, start: datetime.datetime, end: datetime.datetime) -> list[datetime.datetime]:
    """The minutes in ``(start, end]`` at which a cron ``expression`` fires.

    Example
    -------
    >>> t = datetime.datetime(2026, 1, 1)
    >>> len(due_times("0 * * * *", t, t + datetime.timedelta(hours=3)))
    3
    """
    parse_cron(expression)
    return [m for m in minutes_between(start, end) if cron_matches(expression, m)]


class Clock:
    """A clock that moves only when told: starts at ``start`` (default: now, UTC, to the minute).

    Example
    -------
    >>> clock = Clock(datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC))
    >>> before, after = clock.advance(datetime.timedelta(days=7))
    >>> (after - before).days, clock.now() == after
    (7, True)
    """

    def __init__(self, start: datetime.datetime | None = None) -> None:
        moment = start or datetime.datetime.now(datetime.UTC)
        self._now = moment.replace(second=0, microsecond=0)
        self._lock = threading.Lock()

    def now(self) -> datetime.datetime:
        with self._lock:
            return self._now

    def advance(self, delta: datetime.timedelta) -> tuple[datetime.datetime, datetime.datetime]:
        """Move forward by ``delta`` (not negative); the ``(before, after)`` times."""
        if delta < datetime.timedelta(0):
            raise ValueError(f"advance: {delta} is negative; the clock only moves forward")
        with self._lock:
            before = self._now
            self._now = before + delta
            return before, self._now
