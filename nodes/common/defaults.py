"""Packaged defaults: the JSON files under ``pipeline_configs/``.

Paths are resolved relative to this package, never the current directory. Every loader returns a
fresh copy, so callers may modify what they get without touching the next call's defaults.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

PIPELINE_CONFIGS_DIR = Path(__file__).resolve().parents[2] / "pipeline_configs"
SUBSET_NAMES = ("train", "validation", "test")


@cache
def _read_json(name: str) -> Any:
    with open(PIPELINE_CONFIGS_DIR / name, encoding="utf-8") as f:
        return json.load(f)


def load_default_compare_config() -> dict:
    """Return a copy of ``pipeline_configs/compare_configurations.json``.

    Examples
    --------
    >>> load_default_compare_config()["precision_recall"]["iou_threshold"]
    0.5
    """
    return copy.deepcopy(_read_json("compare_configurations.json"))


def load_subset_filter(subset: str) -> dict:
    """Return a copy of the packaged DQL filter that selects items tagged ``subset``.

    Parameters
    ----------
    subset : {"train", "validation", "test"}

    Examples
    --------
    >>> load_subset_filter("train")["filter"]["$and"][0]
    {'hidden': False}
    """
    if subset not in SUBSET_NAMES:
        raise ValueError(f"subset: {subset!r} has no packaged filter; use one of {', '.join(SUBSET_NAMES)}")
    return copy.deepcopy(_read_json(f"{subset}_subset_filter.json"))
