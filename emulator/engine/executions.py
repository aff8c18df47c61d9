"""Execution documents as the platform keeps them: a new execution, its status changes
(``created`` → ``in-progress`` → ``success`` / ``failed`` / ``terminated``, each appended to
``statusLog``, the last one also ``latestStatus``) and the counters (``attempts``, ``duration``).

Plain functions over the execution JSON (dtlpy ``entities/execution.py`` ``from_json`` names
the fields); the caller holds the store's lock. Sources and assumptions: emulator/README.md,
"Services, executions, models".
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

#: dtlpy 1.126.5 entities/execution.py ``ExecutionStatus``.
EXECUTION_STATUSES = (
    "created",
    "in-progress",
    "success",
    "failed",
    "terminated",
    "aborted",
    "canceled",
    "system-failure",
)
#: statuses after which an execution never changes (``Execution.in_progress()`` is false)
FINAL_STATUSES = frozenset(EXECUTION_STATUSES) - {"created", "in-progress"}


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def new_execution(
    base: Mapping[str, Any],
    service: Mapping[str, Any],
    function_name: str,
    inputs: Mapping[str, Any],
    *,
    pipeline: Mapping[str, Any] | None = None,
    model: Mapping[str, Any] | None = None,
    trigger_id: str | None = None,
    event: Mapping[str, Any] | None = None,
) -> dict:
    """A new ``created`` execution of ``function_name`` on ``service``.

    ``base`` carries ``id``, ``url``, ``createdAt``, ``updatedAt``, ``creator``.

    Example
    -------
    >>> ex = new_execution({"id": "e1"}, {"id": "s1", "name": "svc", "projectId": "p"}, "run", {"item": "i1"})
    >>> ex["latestStatus"]["status"], ex["attempts"], ex["maxAttempts"], ex["input"]
    ('created', 0, 3, {'item': 'i1'})
    """
    execution = dict(base)
    app = service.get("app")
    execution.update(
        {
            "projectId": service.get("projectId"),
            "serviceId": service.get("id"),
            "serviceName": service.get("name"),
            "serviceVersion": service.get("version", "1.0.0"),
            "packageId": service.get("packageId"),
            "packageName": service.get("packageName"),
            "packageRevision": service.get("packageRevision"),
            "driverId": service.get("driverId"),
            "functionName": function_name,
            "input": dict(inputs),
            "output": None,
            "action": None,
            "statusLog": [],
            "status": [],
            "latestStatus": None,
            "attempts": 0,
            "maxAttempts": int(service.get("maxAttempts") or 3),
            "toTerminate": False,
            "triggerId": trigger_id,
            "syncReplyTo": None,
            "feedbackQueue": None,
            "duration": None,
            "pipeline": dict(pipeline) if pipeline else None,
            "model": dict(model) if model else None,
            "app": dict(app) if isinstance(app, Mapping) else None,
            "eventContext": dict(event) if event else None,
        }
    )
    set_status(execution, "created", percent=0)
    return execution


def set_status(
    execution: dict, status: str, *, percent: float | None = None, message: str | None = None, **extra: Any
) -> None:
    """Append a status entry; ``latestStatus`` is the entry, ``status`` mirrors ``statusLog``.

    Example
    -------
    >>> ex = {"statusLog": [], "status": []}
    >>> set_status(ex, "in-progress", percent=0)
    >>> set_status(ex, "success", percent=100)
    >>> [s["status"] for s in ex["statusLog"]], ex["latestStatus"]["percentComplete"]
    (['in-progress', 'success'], 100)
    """
    if status not in EXECUTION_STATUSES:
        raise ValueError(f"execution status {status!r} is not one of {EXECUTION_STATUSES}")
    stamp = now_iso()
    entry: dict[str, Any] = {"status": status, "timestamp": stamp}
    previous = execution.get("latestStatus") or {}
    entry["percentComplete"] = previous.get("percentComplete", 0) if percent is None else percent
    if message is not None:
        entry["message"] = message
    entry.update({k: v for k, v in extra.items() if v is not None})
    execution["statusLog"].append(entry)
    execution["status"] = list(execution["statusLog"])
    execution["latestStatus"] = dict(entry)
    execution["updatedAt"] = stamp


def update_progress(execution: dict, percent: Any = None, message: Any = None) -> None:
    """A ``progress.update()`` while in progress: ``latestStatus`` takes the percent / message
    (no new ``statusLog`` entry: the status did not change).

    Example
    -------
    >>> ex = {"latestStatus": {"status": "in-progress", "percentComplete": 0}}
    >>> update_progress(ex, 40, "half")
    >>> ex["latestStatus"]["percentComplete"], ex["latestStatus"]["message"]
    (40, 'half')
    """
    latest = execution.get("latestStatus") or {}
    if latest.get("status") != "in-progress":
        return
    if isinstance(percent, (int, float)) and not isinstance(percent, bool):
        latest["percentComplete"] = max(0, min(100, percent))
    if isinstance(message, str):
        latest["message"] = message
    execution["updatedAt"] = now_iso()


def status_of(execution: Mapping[str, Any]) -> str:
    """The current status (``latestStatus.status``)."""
    return (execution.get("latestStatus") or {}).get("status", "created")


def is_final(execution: Mapping[str, Any]) -> bool:
    """True when the execution will not change any more.

    Example
    -------
    >>> is_final({"latestStatus": {"status": "failed"}}), is_final({"latestStatus": {"status": "created"}})
    (True, False)
    """
    return status_of(execution) in FINAL_STATUSES


def seconds_between(start_iso: str, end_iso: str) -> float:
    """Seconds between two platform timestamps (``duration``)."""
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
    start = datetime.datetime.strptime(start_iso, fmt)
    end = datetime.datetime.strptime(end_iso, fmt)
    return round((end - start).total_seconds(), 3)
