"""What a demo task hands the demo: the run's items (:class:`TaskData`) and a model's score on the
fixed test items (:class:`ModelScore`). Plain data, no platform; :mod:`demo.tasks` re-exports both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TaskData:
    """The items of one demo run: file names, in-memory images, the hidden truth, and which
    names are the fixed test subset, the initial labelled pool and each round's arrivals."""

    names: tuple[str, ...]
    images: Mapping[str, np.ndarray]
    truth: Mapping[str, Any]  # file name -> what the annotator writes (a label, boxes, ...)
    test: tuple[str, ...]
    initial: tuple[str, ...]
    arrivals: tuple[tuple[str, ...], ...]  # per round: the new raw items


@dataclass(frozen=True)
class ModelScore:
    """A model on the fixed test items: the report's two numbers and what the plots need."""

    primary: float  # e.g. accuracy (classification), AP@0.5 (detection)
    mean_ap: float
    per_label_ap: Mapping[str, float]
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # label -> (recall, precision)
