"""The people of the Labeling and Review tasks, simulated through dtlpy's task API.

Labeling: of this round's items waiting in the task, the ``n`` the Uncertainty Gate scored highest
(its record ``metadata.user.activeLearning.selection.score``; ties by file name) get their
predictions replaced by the truth and the status ``completed``; the others stay in the task.
Review: every item labelled this round is ``approved``. The budget rule is docs/demo.md's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any


def gate_score(metadata: Mapping[str, Any] | None) -> float:
    """The Uncertainty Gate's score recorded on an item's metadata (``-inf`` when none).

    Examples
    --------
    >>> gate_score({"user": {"activeLearning": {"selection": {"score": 0.7}}}})
    0.7
    >>> gate_score({})
    -inf
    """
    selection = (((metadata or {}).get("user") or {}).get("activeLearning") or {}).get("selection") or {}
    score = selection.get("score")
    return float(score) if isinstance(score, int | float) else float("-inf")


def choose_for_labeling(waiting: Sequence[tuple[str, str, float]], n: int) -> list[str]:
    """Ids of the ``n`` highest-scored ``(id, name, score)`` rows (ties: file name, then id).

    Examples
    --------
    >>> choose_for_labeling([("a", "x", .2), ("b", "y", .9), ("c", "z", .9)], 2)
    ['b', 'c']
    """
    ranked = sorted(waiting, key=lambda row: (-row[2], row[1], row[0]))
    return [row[0] for row in ranked[: max(0, n)]]


def task_items(project, task_id: str, ids: Iterable[str]) -> list:
    """Edge: the items of task ``task_id`` among ``ids`` (the task's items, paged)."""
    wanted = set(ids)
    task = project.tasks.get(task_id=task_id)
    return [item for item in task.get_items().all() if item.id in wanted]


def label(project, task_id: str, arrived: Iterable[str], n: int, annotate: Callable, truth: Mapping[str, Any]) -> list:
    """Edge: label the ``n`` highest-scored items of ``arrived`` waiting in the Labeling task;
    returns them (their status is now ``completed``)."""
    waiting = task_items(project, task_id, arrived)
    chosen = set(choose_for_labeling([(i.id, i.name, gate_score(i.metadata)) for i in waiting], n))
    done = []
    for item in waiting:
        if item.id in chosen:
            annotate(item, truth[item.name])
            item.update_status(status="completed", task_id=task_id)
            done.append(item)
    return done


def approve(project, task_id: str, ids: Iterable[str]) -> int:
    """Edge: approve the items of ``ids`` waiting in the Review task; how many."""
    waiting = task_items(project, task_id, ids)
    for item in waiting:
        item.update_status(status="approved", task_id=task_id)
    return len(waiting)
