"""Select for Labeling: the active-learning step — the model chooses what people label.

Read in the order the data flows: :mod:`~nodes.select_for_labeling.config` (node configs,
validated), :mod:`~nodes.select_for_labeling.scores` (predictions → an uncertainty per item),
:mod:`~nodes.select_for_labeling.diversity` and :mod:`~nodes.select_for_labeling.coldstart`
(feature vectors), :mod:`~nodes.select_for_labeling.select` (the batch choice, the gate's route) —
all pure — then the platform edges: :mod:`~nodes.select_for_labeling.gate` (``run_gate``) and
:mod:`~nodes.select_for_labeling.node` (``run_selection``, with its listings in ``pool``, records in
``records`` and the claim in ``claim``). This package exports the two entry points and the public
pure functions; the platform helpers are imported from their modules.
"""

from nodes.select_for_labeling.claim import claim_groups, claim_of
from nodes.select_for_labeling.coldstart import typiclust
from nodes.select_for_labeling.config import (
    AGGREGATIONS,
    DIVERSITIES,
    STRATEGIES,
    GateConfig,
    SelectionConfig,
    TaskConfig,
    check_selection_tag,
    default_pool_filter,
    merge_selection_config,
)
from nodes.select_for_labeling.diversity import check_features, cluster_round_robin, kcenter_coreset, kmeans_labels
from nodes.select_for_labeling.gate import gate_record, run_gate, same_gate_record
from nodes.select_for_labeling.node import replaced_selection, run_selection
from nodes.select_for_labeling.pool import (
    feature_matrix,
    in_hidden_folder,
    labelled_matrix,
    pool_request,
    read_annotation_page,
    with_own_items,
)
from nodes.select_for_labeling.records import batch_ranking, item_record, ranked_ids, ranking_file_name
from nodes.select_for_labeling.scores import (
    ItemScores,
    class_score_matrix,
    entropy_uncertainty,
    least_confidence_uncertainty,
    margin_uncertainty,
    model_class_count,
    prediction_model_ids,
    predictions_frame,
    predictions_from_annotations,
    random_scores,
    resolve_model_id,
    score_items,
    select_most_uncertain,
    select_random,
    tie_break_keys,
    uncertainty_scores,
)
from nodes.select_for_labeling.select import (
    Selection,
    choose_items,
    recorded_selection,
    route_item,
    select_pool,
    selection_record,
)

__all__ = [
    "AGGREGATIONS",
    "DIVERSITIES",
    "STRATEGIES",
    "GateConfig",
    "ItemScores",
    "Selection",
    "SelectionConfig",
    "TaskConfig",
    "batch_ranking",
    "check_features",
    "check_selection_tag",
    "choose_items",
    "claim_groups",
    "claim_of",
    "class_score_matrix",
    "cluster_round_robin",
    "default_pool_filter",
    "entropy_uncertainty",
    "feature_matrix",
    "gate_record",
    "in_hidden_folder",
    "item_record",
    "kcenter_coreset",
    "kmeans_labels",
    "labelled_matrix",
    "least_confidence_uncertainty",
    "margin_uncertainty",
    "merge_selection_config",
    "model_class_count",
    "pool_request",
    "prediction_model_ids",
    "predictions_frame",
    "predictions_from_annotations",
    "random_scores",
    "ranked_ids",
    "ranking_file_name",
    "read_annotation_page",
    "recorded_selection",
    "replaced_selection",
    "resolve_model_id",
    "route_item",
    "run_gate",
    "run_selection",
    "same_gate_record",
    "score_items",
    "select_most_uncertain",
    "select_pool",
    "select_random",
    "selection_record",
    "tie_break_keys",
    "typiclust",
    "uncertainty_scores",
    "with_own_items",
]
