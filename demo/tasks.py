"""The demo's pluggable task: what the data are, which model app learns them, how the simulated
annotator labels an item, how a model is scored on the fixed test items, and what the report says.

``python main.py demo --task NAME`` picks one from :data:`TASKS` (classification by default); a task
is any object with the attributes and methods of :class:`DemoTask`, registered by a factory that
imports the task's module only when called.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from demo.task_data import ModelScore, TaskData  # re-exported for the task modules


class DemoTask(Protocol):
    """What the demo needs from a task (see :class:`demo.classification.ClassificationTask`)."""

    name: str
    labels: Sequence[str]
    model_app_manifest: str  # relative to the repository, published from the repository folder
    dpk_model_name: str
    model_configuration: Mapping[str, Any]
    metric_names: tuple[str, str]  # (primary, mean AP) as the report names them
    gate_config: Mapping[str, Any]  # the margin arm's Uncertainty Gate changes ({} keeps the template's)

    def load(self, items: int, seed: int, test_fraction: float, initial: int, rounds: int, arrivals: int) -> TaskData:
        """The run's data, split into test / initial / per-round arrivals."""

    def annotate(self, item: Any, truth: Any, replace: bool = True) -> None:
        """Edge: write the item's true annotations (``replace``: delete its model predictions first)."""

    def score(self, model: Any, data: TaskData) -> ModelScore:
        """Edge: the model (artifacts from the platform) on ``data.test``, in memory."""


def _classification() -> DemoTask:
    from demo.classification import ClassificationTask

    return ClassificationTask()


def _detection() -> DemoTask:
    from demo.detection.task import DetectionTask

    return DetectionTask()


#: task name -> a factory returning a :class:`DemoTask` (it imports the task's module when called)
TASKS: dict[str, Callable[[], DemoTask]] = {"classification": _classification, "detection": _detection}
#: options a task sets when the command line leaves them out (detection: a smaller run, no digits study)
TASK_OPTION_DEFAULTS: dict[str, dict[str, int]] = {
    "detection": {"items": 240, "initial": 40, "arrivals": 60, "budget": 20, "study_seeds": 0}
}
#: wall-time target of a task's whole demo on a 2-core machine, seconds (others: DEMO_TARGET_SECONDS)
TASK_TARGET_SECONDS: dict[str, int] = {"detection": 180}
DEFAULT_TASK = "classification"


def get_task(name: str) -> DemoTask:
    """The registered task ``name``.

    Examples
    --------
    >>> get_task("classification").name
    'classification'
    >>> get_task("segmentation")
    Traceback (most recent call last):
    ...
    ValueError: --task: 'segmentation' is not a demo task; one of classification, detection
    """
    if name not in TASKS:
        raise ValueError(f"--task: {name!r} is not a demo task; one of {', '.join(sorted(TASKS))}")
    return TASKS[name]()
