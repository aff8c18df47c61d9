"""Model Data Split node: route each item to one subset (train / validation / test ...) and tag it.

Read in the order the data flows: :mod:`~nodes.data_split.config` (the panel's node config,
validated), :mod:`~nodes.data_split.assign` (pure per-item and whole-dataset decisions),
:mod:`~nodes.data_split.batch` (whole-dataset runs, bulk tag writes), :mod:`~nodes.data_split.node`
(the pipeline edge, ``main.ServiceRunner.data_split``) and :mod:`~nodes.data_split.cli`
(``python main.py split``).
"""

from nodes.data_split import cli
from nodes.data_split.assign import (
    CONFLICT_ORDER,
    MAX_SWAP_SIGNATURES,
    MAX_SWAPS,
    PIPELINE_SUBSETS,
    assign_exact,
    assign_grouped,
    assign_stratified,
    carries_model,
    conflict_winner,
    existing_subset,
    foreign_subset,
    ground_truth_metadata,
    known_subsets,
    largest_remainder,
    membership_tags,
    settle_after_write,
    strip_model_metadata,
    subset_for_item,
    tags_after_assignment,
    tags_changed,
    tags_patch,
    unit_hash,
)
from nodes.data_split.batch import (
    SplitSummary,
    batch_fingerprint,
    check_batch_options,
    decide_batch,
    lookup_field,
    plan_updates,
    run_mark_of,
    run_marker,
    split_dataset,
    summarize,
)
from nodes.data_split.cli import add_cli_arguments, run_cli
from nodes.data_split.config import (
    BULK_CHUNK,
    CONFIG_FIELD,
    DEFAULT_GROUPS,
    DEFAULT_NODE_NAME,
    MAX_GROUPS,
    MIN_GROUPS,
    RUN_MARK_PATH,
    SCHEMA_PATH,
    SplitConfig,
    SubsetShare,
    ecma_anchored,
    equal_shares,
)
from nodes.data_split.node import node_config_from_context, run_node

__all__ = [
    # config
    "BULK_CHUNK",
    "CONFIG_FIELD",
    "DEFAULT_GROUPS",
    "DEFAULT_NODE_NAME",
    "MAX_GROUPS",
    "MIN_GROUPS",
    "RUN_MARK_PATH",
    "SCHEMA_PATH",
    "SplitConfig",
    "SubsetShare",
    "ecma_anchored",
    "equal_shares",
    # assign
    "MAX_SWAPS",
    "MAX_SWAP_SIGNATURES",
    "PIPELINE_SUBSETS",
    "assign_exact",
    "assign_grouped",
    "assign_stratified",
    "CONFLICT_ORDER",
    "carries_model",
    "conflict_winner",
    "existing_subset",
    "foreign_subset",
    "ground_truth_metadata",
    "known_subsets",
    "largest_remainder",
    "membership_tags",
    "settle_after_write",
    "strip_model_metadata",
    "subset_for_item",
    "tags_after_assignment",
    "tags_changed",
    "tags_patch",
    "unit_hash",
    # batch
    "SplitSummary",
    "batch_fingerprint",
    "check_batch_options",
    "decide_batch",
    "lookup_field",
    "plan_updates",
    "run_mark_of",
    "run_marker",
    "split_dataset",
    "summarize",
    # node
    "node_config_from_context",
    "run_node",
    # cli
    "add_cli_arguments",
    "cli",
    "run_cli",
]
