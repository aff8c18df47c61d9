"""Select for Labeling: the active-learning step — the model chooses what people label.

Read in the order the data flows: :mod:`~nodes.select_for_labeling.config` (the Uncertainty
Gate node config and ``selection_config``, validated), :mod:`~nodes.select_for_labeling.scores`
(prediction records → an uncertainty per item), :mod:`~nodes.select_for_labeling.diversity`
(k-means / k-center over feature vectors), :mod:`~nodes.select_for_labeling.select` (the
batch choice and the gate's route) — all pure — then the platform edges:
:mod:`~nodes.select_for_labeling.gate` (``run_gate``) and :mod:`~nodes.select_for_labeling.node`
(``run_selection``).
"""

from nodes.select_for_labeling.config import (
    AGGREGATIONS,
    DIVERSITIES,
    STRATEGIES,
    GateConfig,
    SelectionConfig,
    TaskConfig,
    default_pool_filter,
)
from nodes.select_for_labeling.diversity import check_features, cluster_round_robin, kcenter_greedy, kmeans_labels
from nodes.select_for_labeling.gate import (
    gate_record,
    list_item_annotations,
    node_config_from_context,
    run_gate,
    same_gate_record,
)
from nodes.select_for_labeling.node import (
    batch_ranking,
    chosen_items,
    feature_matrix,
    in_hidden_folder,
    item_record,
    list_feature_vectors,
    list_pool_annotations,
    list_pool_items,
    pool_request,
    ranked_ids,
    ranking_file_name,
    read_annotation_page,
    read_ranking,
    run_selection,
    with_own_items,
)
from nodes.select_for_labeling.scores import (
    ItemScores,
    class_score_matrix,
    entropy_uncertainty,
    least_confidence_uncertainty,
    margin_uncertainty,
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
    "check_features",
    "choose_items",
    "class_score_matrix",
    "cluster_round_robin",
    "default_pool_filter",
    "entropy_uncertainty",
    "kcenter_greedy",
    "kmeans_labels",
    "least_confidence_uncertainty",
    "margin_uncertainty",
    "prediction_model_ids",
    "predictions_frame",
    "predictions_from_annotations",
    "random_scores",
    "resolve_model_id",
    "route_item",
    "score_items",
    "select_most_uncertain",
    "select_pool",
    "select_random",
    "batch_ranking",
    "chosen_items",
    "feature_matrix",
    "gate_record",
    "in_hidden_folder",
    "item_record",
    "list_feature_vectors",
    "list_item_annotations",
    "list_pool_annotations",
    "list_pool_items",
    "node_config_from_context",
    "pool_request",
    "ranked_ids",
    "ranking_file_name",
    "read_annotation_page",
    "read_ranking",
    "recorded_selection",
    "run_gate",
    "run_selection",
    "same_gate_record",
    "selection_record",
    "tie_break_keys",
    "uncertainty_scores",
    "with_own_items",
]
