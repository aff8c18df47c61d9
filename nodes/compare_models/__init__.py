"""Compare Models node: decide whether a newly trained model replaces the previous one.

Both models' predictions on the dataset's test subset (mean AP per annotation type, or per
label) and their training metrics each give votes; the new model wins when the fraction of
won votes is at least ``wins``. The report is stored on the new model, and the winner returned.

Modules, in the order data flows: ``config`` (parse and validate ``compare_config``),
``records`` (platform JSON -> records and DataFrames), ``votes`` (one vote and the ``wins``
rule), ``training`` / ``evaluation`` (training-metric / precision-recall votes), ``stopping``
(agreement, ledger, recommendation),
``report`` (the report and its renderings), ``node`` (the pipeline edge, ``run_node``),
``cli`` (``python main.py compare``).
"""

from nodes.compare_models.config import CompareConfig, PlotCheck, PrecisionRecallConfig, parse_wins
from nodes.compare_models.evaluation import (
    EvaluationOutcome,
    bootstrap_weight_blocks,
    bootstrap_weights,
    check_tables,
    evaluation_votes,
    paired_bootstrap_interval,
    percentile_interval,
    prediction_coverage,
)
from nodes.compare_models.node import (
    compare,
    list_metric_samples,
    list_test_annotations,
    list_test_item_ids,
    run_node,
    store_report,
)
from nodes.compare_models.records import (
    ANNOTATION_GEOMETRY,
    EvaluationTables,
    annotation_record,
    annotation_tables,
    read_annotations,
    record_problem,
    samples_frame,
    skipped_summary,
)
from nodes.compare_models.report import (
    ACTIONS,
    DISCARD,
    UPDATE_MODEL,
    Comparison,
    ComparisonReport,
    plot_pr_curves,
    updated_metadata,
)
from nodes.compare_models.stopping import (
    StopConfig,
    cohen_kappa,
    extend_ledger,
    latest_ledger,
    ledger_row,
    parse_stop,
    prediction_agreement,
    read_ledger,
    recommend_stop,
)
from nodes.compare_models.training import metric_value_at, numeric_values, training_votes
from nodes.compare_models.votes import Vote, judge_vote, new_model_wins, relative_change, wins_fraction

__all__ = [
    "recommend_stop",
    "read_ledger",
    "prediction_agreement",
    "parse_stop",
    "ledger_row",
    "latest_ledger",
    "extend_ledger",
    "cohen_kappa",
    "StopConfig",
    "ACTIONS",
    "ANNOTATION_GEOMETRY",
    "DISCARD",
    "UPDATE_MODEL",
    "CompareConfig",
    "Comparison",
    "ComparisonReport",
    "EvaluationOutcome",
    "EvaluationTables",
    "PlotCheck",
    "PrecisionRecallConfig",
    "Vote",
    "annotation_record",
    "annotation_tables",
    "bootstrap_weight_blocks",
    "bootstrap_weights",
    "check_tables",
    "compare",
    "evaluation_votes",
    "judge_vote",
    "list_metric_samples",
    "list_test_annotations",
    "list_test_item_ids",
    "metric_value_at",
    "new_model_wins",
    "numeric_values",
    "paired_bootstrap_interval",
    "parse_wins",
    "percentile_interval",
    "plot_pr_curves",
    "prediction_coverage",
    "read_annotations",
    "record_problem",
    "relative_change",
    "run_node",
    "samples_frame",
    "skipped_summary",
    "store_report",
    "training_votes",
    "updated_metadata",
    "wins_fraction",
]
