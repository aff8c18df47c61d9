"""nodes/dql.py: user DQL is checked as data before any request (subsets, test_subset)."""

from __future__ import annotations

import doctest

import pytest

from nodes.common import dql
from nodes.compare_models import CompareConfig
from nodes.create_new_model import normalize_subset_query


def test_docstring_examples():
    assert doctest.testmod(dql, raise_on_error=False).failed == 0


@pytest.mark.parametrize(
    ("condition", "path_in_message"),
    [
        ({"dir": {"$regexx": "^/a"}}, "f.dir.$regexx"),
        ({"$xor": [{"a": 1}]}, "f.$xor"),
        ({"$and": []}, "f.$and"),
        ({"$or": [{"a": {"$in": "x"}}]}, "f.$or[0].a.$in"),
        ({"metadata": {"system": {"tags": {"train": {"$exists": "yes"}}}}}, "f.metadata.system.tags.train.$exists"),
    ],
)
def test_bad_conditions_name_the_path(condition, path_in_message):
    with pytest.raises(ValueError, match=path_in_message.replace("$", r"\$").replace("[", r"\[").replace("]", r"\]")):
        dql.check_dql_condition(condition, "f")


def test_the_packaged_filters_and_platform_forms_pass():
    for condition in (
        {"$and": [{"hidden": False}, {"$or": [{"metadata": {"system": {"tags": {"train": True}}}}]}, {"type": "file"}]},
        {"metadata.user.model": {"$exists": False}, "label": {"$in": ["cat", "dog"]}},
        {"$not": {"dir": {"$match": "^/x"}}},
    ):
        dql.check_dql_condition(condition, "f")


def test_both_nodes_use_the_same_check():
    with pytest.raises(ValueError, match=r"train_subset\.filter\.dir\.\$regexx"):
        normalize_subset_query({"dir": {"$regexx": "a"}}, "train_subset")
    with pytest.raises(ValueError, match=r"precision_recall\.test_subset\.filter\.dir\.\$regexx"):
        CompareConfig.from_json({"precision_recall": {"test_subset": {"filter": {"dir": {"$regexx": "a"}}}}})
