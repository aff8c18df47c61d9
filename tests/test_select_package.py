"""The Select for Labeling package exports its two entry points and its public pure functions
(issue 20): no platform helper (a function whose docstring starts with ``EDGE``) is re-exported,
and every platform helper is importable from its own module."""

from __future__ import annotations

import inspect

import nodes.select_for_labeling as package
from nodes.select_for_labeling import claim, node, pool, records

ENTRY_POINTS = {"run_gate", "run_selection"}


def test_the_package_exports_entry_points_and_pure_functions_only():
    exported = {name: getattr(package, name) for name in package.__all__}
    assert ENTRY_POINTS <= set(exported)
    edges = sorted(
        name
        for name, value in exported.items()
        if inspect.isfunction(value) and name not in ENTRY_POINTS and (value.__doc__ or "").startswith("EDGE")
    )
    assert edges == []
    assert not {"list_pool_items", "list_pool_annotations", "list_feature_vectors", "read_ranking"} & set(exported)


def test_the_platform_helpers_live_in_their_modules():
    for module, names in (
        (pool, ("list_pool_items", "list_pool_annotations", "list_feature_vectors", "list_labelled_ids")),
        (records, ("upload_ranking", "read_ranking", "chosen_items", "create_task")),
        (claim, ("write_claimed", "held_ids")),
        (node, ("run_selection",)),
    ):
        for name in names:
            function = getattr(module, name)
            assert name in module.__all__
            assert name == "run_selection" or function.__doc__.startswith("EDGE"), name
