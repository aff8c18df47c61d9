"""The demo's outcome as data, text and pictures: table, ``report.md``, PR curves, learning curve.

Pure functions over plain data (dicts of per-label AP, lists of per-round mAP, arrays of
precision/recall). No AP is computed here: the numbers come from ``nodes/metrics.py``
(through the Compare Models report or the demo's own evaluation of its predictions).
Plots use matplotlib's non-interactive ``Agg`` backend and are written only where asked.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelRow:
    """One row of the final table: a label's AP for both models."""

    label: str
    previous_ap: float
    new_ap: float

    @property
    def delta(self) -> float:
        return self.new_ap - self.previous_ap

    @property
    def new_wins(self) -> bool:
        return bool(self.delta > 0)


@dataclass(frozen=True)
class RoundResult:
    """One round of one arm of the full-platform run (round 0 is the base model)."""

    round: int
    labelled: int
    accuracy: float
    mean_ap: float
    model: str
    decision: str  # Compare Models' action, or "base"
    labelled_now: int = 0  # items the annotator labelled in this round
    reached_labeling: int = 0  # new items the Uncertainty Gate sent to Labeling in this round
    arrivals: int = 0  # new raw items of this round
    kappa: float | None = None  # Compare Models' agreement of the previous and the new model
    recommendation: str | None = None  # the stopping signal: "stop" / "continue" (None: switched off)
    stopping_reason: str | None = None
    rule: str = ""  # the decision rule Compare Models applied (decision_rule)
    best_model_changed: bool = False
    model_id: str = ""


@dataclass(frozen=True)
class DemoSummary:
    """Everything the report shows; built by the demo, rendered by :func:`render_markdown`."""

    previous_model: str
    new_model: str
    decision: str
    rows: tuple[LabelRow, ...]
    previous_map: float
    new_map: float
    runs: Mapping[str, tuple[RoundResult, ...]] = field(default_factory=dict)  # arm -> rounds
    study: object = None  # demo.study.StudySummary, or None when no study ran
    template: str = ""
    node_lines: tuple[str, ...] = ()
    budget: int = 0
    n_items: int = 0
    n_test: int = 0
    seed: int = 0
    elapsed_s: float = 0.0
    comparison_votes: tuple[str, ...] = field(default_factory=tuple)
    task: str = "classification"
    metric_names: tuple[str, str] = ("accuracy", "mAP")
    arrivals: tuple[int, ...] = ()  # new raw items per round


def decision_rule(comparison: Mapping) -> str:
    """The rule Compare Models applied, from the comparison it stored on the new model.

    Examples
    --------
    >>> decision_rule({"config": {"precision_recall": {"iou_threshold": 0.5, "min_delta": 0}, "wins": "all"}})
    'new mAP - previous mAP > min_delta 0 (point estimate, no interval); votes needed: all'
    >>> decision_rule({"config": {"precision_recall": {"min_delta": 0.01, "confidence": 0.95}}})
    'lower end of the 95% bootstrap interval of (new mAP - previous mAP) > min_delta 0.01'
    >>> decision_rule({})
    'unknown (no comparison recorded)'
    """
    config = (comparison or {}).get("config") or {}
    pr = config.get("precision_recall")
    parts = []
    if isinstance(pr, Mapping):
        delta = pr.get("min_delta", 0)
        if pr.get("confidence"):
            parts.append(
                f"lower end of the {float(pr['confidence']):.0%} bootstrap interval of (new mAP - previous mAP) "
                f"> min_delta {delta:g}"
            )
        else:
            parts.append(f"new mAP - previous mAP > min_delta {delta:g} (point estimate, no interval)")
    for check in config.get("checks") or []:
        if isinstance(check, Mapping):
            parts.append(f"{check.get('legend')}/{check.get('figure')} gain > min_delta {check.get('min_delta', 0):g}")
    if not parts:
        return "unknown (no comparison recorded)"
    wins = config.get("wins")
    return "; ".join(parts) + ("" if wins is None else f"; votes needed: {wins}")


def round_lines(summary: DemoSummary) -> list[str]:
    """This run's rounds as terminal lines: labels bought, the metrics, the decision, kappa and
    the stopping signal per arm."""
    primary, mean = summary.metric_names
    lines = [f"This run (seed {summary.seed}), fixed test subset of {summary.n_test} items:"]
    for name, rounds in summary.runs.items():
        for r in rounds:
            extra = ""
            if r.round:
                kappa = "n/a" if r.kappa is None else f"{r.kappa:.3f}"
                extra = (
                    f"  +{r.labelled_now} labels ({r.reached_labeling} of {r.arrivals} reached Labeling)  "
                    f"{r.decision}  kappa {kappa}  stop signal: {r.recommendation or 'off'}"
                )
            lines.append(
                f"  {name:<7} round {r.round}  labelled {r.labelled:>5}  {primary} {r.accuracy:.3f}  "
                f"{mean} {r.mean_ap:.3f}{extra}"
            )
    return lines


def label_rows(previous_ap: Mapping[str, float], new_ap: Mapping[str, float]) -> tuple[LabelRow, ...]:
    """Join two ``label -> AP`` maps into table rows (labels sorted; missing AP counts as NaN).

    Examples
    --------
    >>> [r.delta for r in label_rows({"a": 0.5}, {"a": 0.75})]
    [0.25]
    """
    labels = sorted(set(previous_ap) | set(new_ap), key=_label_key)
    return tuple(
        LabelRow(label, float(previous_ap.get(label, math.nan)), float(new_ap.get(label, math.nan))) for label in labels
    )


def _label_key(label: str) -> tuple[int, object]:
    return (0, int(label)) if str(label).isdigit() else (1, str(label))


def uncertainty_verdict(runs: Mapping[str, Sequence[RoundResult]], study=None, metric: str = "accuracy") -> str:
    """Honest sentences: what each arm labelled, did margin selection beat random in this run (at
    equal labels, or saying they differ), and over the study's seeds, per metric?

    Examples
    --------
    >>> m = (RoundResult(0, 100, .8, .9, "b", "base"), RoundResult(1, 200, .85, .93, "n", "update model"))
    >>> r = (RoundResult(0, 100, .8, .9, "b", "base"), RoundResult(1, 200, .86, .92, "n", "update model"))
    >>> uncertainty_verdict({"margin": m, "random": r})
    'This run: margin labelled 200 items, random 200: at equal labels margin selection did NOT beat random selection: test accuracy 0.850 vs 0.860 (-0.010).'
    """
    sentences = []
    if "margin" in runs and "random" in runs and runs["margin"] and runs["random"]:
        m, r = runs["margin"][-1], runs["random"][-1]
        verb = "beat" if m.accuracy > r.accuracy else "did NOT beat"
        labels = f"margin labelled {m.labelled} items, random {r.labelled}"
        when = "at equal labels" if m.labelled == r.labelled else "with DIFFERENT label counts (not a fair comparison)"
        sentences.append(
            f"This run: {labels}: {when} margin selection {verb} random selection: "
            f"test {metric} {m.accuracy:.3f} vs {r.accuracy:.3f} ({m.accuracy - r.accuracy:+.3f})."
        )
    else:
        sentences.append("No random-selection baseline was run.")
    if study is not None:
        for stats in study.strategies:
            if stats.wins is None:
                continue
            if stats.wins > stats.losses:
                verdict = "beat random"
            elif stats.wins == stats.losses:
                verdict = "did NOT beat random (as many wins as losses)"
            else:
                verdict = "did NOT beat random (more losses than wins)"
            sentences.append(
                f"Over {study.seeds} seeds at equal labels, {stats.name} {verdict} on accuracy: it won {stats.wins}, "
                f"tied {stats.ties} and lost "
                f"{stats.losses} at {stats.labelled[-1]} labels (test accuracy {stats.accuracy_mean[-1]:.3f} ± "
                f"{stats.accuracy_std[-1]:.3f} vs random {study.strategy('random').accuracy_mean[-1]:.3f} ± "
                f"{study.strategy('random').accuracy_std[-1]:.3f})."
            )
    return " ".join(sentences)


def _fmt(value: float) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def format_table(summary: DemoSummary) -> str:
    """The final table as fixed-width text (what the terminal shows).

    Examples
    --------
    >>> s = DemoSummary("base", "new", "update model", label_rows({"0": 0.5}, {"0": 0.7}), 0.5, 0.7, ())
    >>> print(format_table(s).splitlines()[2])
    0           0.500    0.700   +0.200  new
    """
    lines = [
        f"{'label':<8} {'previous':>8} {'new':>8} {'delta':>8}  wins",
        "-" * 42,
    ]
    for row in summary.rows:
        delta = "n/a" if math.isnan(row.delta) else f"{row.delta:+.3f}"
        winner = "new" if row.new_wins else ("tie" if row.delta == 0 else "previous")
        lines.append(f"{row.label:<8} {_fmt(row.previous_ap):>8} {_fmt(row.new_ap):>8} {delta:>8}  {winner}")
    lines.append("-" * 42)
    n_wins = sum(r.new_wins for r in summary.rows)
    mean_delta = summary.new_map - summary.previous_map
    lines.append(
        f"{'mAP':<8} {_fmt(summary.previous_map):>8} {_fmt(summary.new_map):>8} {mean_delta:>+8.3f}  "
        f"new wins {n_wins}/{len(summary.rows)} labels"
    )
    lines.append(f"decision: {summary.decision}")
    return "\n".join(lines)


BUDGET_RULE = (
    "**How the label budget works under a running pipeline.** New raw items arrive each round (uploaded "
    "into the Raw Dataset; its trigger starts one cycle per item). Predict and the Uncertainty Gate run on "
    "each; the gate sends the ones scoring at least its threshold to the Labeling task (the margin arm keeps "
    "the template's gate, margin ≥ 0.5; the random arm's gate scores `random` with threshold 0, so all of them "
    "arrive, in a seeded random order). The annotators label the `budget` items of this round's arrivals the "
    "gate scored highest (the task's priority order) and leave the rest in the task, unlabelled; the random "
    "arm labels exactly as many as the margin arm did that round, so both arms are compared at equal labels. "
    "Review approves every labelled item; Model Data Split sends it to train, validation or test (80/10/10) "
    "in the Ground Truth Dataset, where the weekly model branch trains the next model."
)


def _rounds_table(summary: DemoSummary) -> list[str]:
    primary, mean = summary.metric_names
    out = [
        f"| arm | round | new raw items | reached Labeling | labelled this round | labelled in all | {primary} | "
        f"{mean} | decision | decision rule | kappa | stopping signal | Best Model |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---|---|",
    ]
    for name, rounds in summary.runs.items():
        for r in rounds:
            if r.round == 0:
                out.append(
                    f"| {name} | 0 (base) | | | | {r.labelled} | {r.accuracy:.3f} | {r.mean_ap:.3f} | | | | | `{r.model}` |"
                )
                continue
            kappa = "n/a" if r.kappa is None else f"{r.kappa:.3f}"
            signal = (
                "off"
                if r.recommendation is None
                else f"`{r.recommendation}`" + (f": {r.stopping_reason}" if r.stopping_reason else "")
            )
            best = f"`{r.model}` (changed)" if r.best_model_changed else "unchanged"
            out.append(
                f"| {name} | {r.round} | {r.arrivals} | {r.reached_labeling} | {r.labelled_now} | {r.labelled} | "
                f"{r.accuracy:.3f} | {r.mean_ap:.3f} | `{r.decision}` | {r.rule} | {kappa} | {signal} | {best} |"
            )
    return out


def render_markdown(summary: DemoSummary) -> str:
    """``report.md``: the template run, the budget rule, the last decision and its per-label table,
    each round (labels bought, metrics, decision with its rule, kappa, stopping signal), the
    multi-seed study, and the cycles and executions the platform recorded."""
    kept = summary.new_model if summary.decision == "update model" else summary.previous_model
    primary, mean = summary.metric_names
    margin_rounds = summary.runs.get("margin") or ()
    last_rule = margin_rounds[-1].rule if margin_rounds else ""
    out = [
        "# Active learning demo report",
        "",
        f"Pipeline template run: `{summary.template}`, created with `pipelines.create` and `install()`ed on the "
        "local platform once per arm; the platform ran every node (trigger, services, model operations, task "
        "nodes, the cron start node on its clock), the demo uploaded items, worked the tasks and watched.",
        "",
        f"**Decision of the last margin round: `{summary.decision}`** (rule: {last_rule or 'n/a'}) — Compare "
        f"Models kept `{kept}` (previous `{summary.previous_model}`, new `{summary.new_model}`).",
        "",
        f"Task: {summary.task}. {summary.n_items} items (seed {summary.seed}); a fixed test subset of "
        f"{summary.n_test} items shared by every model; new raw items per round: "
        f"{', '.join(map(str, summary.arrivals)) or 'n/a'}; label budget {summary.budget} per round.",
        "",
        BUDGET_RULE,
        "",
        "## Each round: labels bought, the new model, the decision, kappa and the stopping signal",
        "",
        f"{primary} and {mean} on the fixed test subset; decision, rule, kappa (Cohen's kappa of the previous "
        "and the new model's test predictions) and the stopping signal as Compare Models recorded them on the "
        "new model (`metadata.user.activeLearning.comparison`).",
        "",
        *_rounds_table(summary),
        "",
        "## Margin vs random selection",
        "",
        uncertainty_verdict(summary.runs, summary.study, summary.metric_names[0]),
        "",
        f"## Previous vs new model of the last margin round (test subset, per-label AP) — decision `{summary.decision}`",
        "",
        "| label | previous AP | new AP | delta | wins |",
        "|---|---:|---:|---:|---|",
    ]
    for row in summary.rows:
        delta = "n/a" if math.isnan(row.delta) else f"{row.delta:+.3f}"
        winner = "new" if row.new_wins else ("tie" if row.delta == 0 else "previous")
        out.append(f"| {row.label} | {_fmt(row.previous_ap)} | {_fmt(row.new_ap)} | {delta} | {winner} |")
    n_wins = sum(r.new_wins for r in summary.rows)
    out.append(
        f"| **mAP** | **{_fmt(summary.previous_map)}** | **{_fmt(summary.new_map)}** | "
        f"**{summary.new_map - summary.previous_map:+.3f}** | new wins {n_wins}/{len(summary.rows)} labels |"
    )
    if summary.comparison_votes:
        out += ["", f"Compare Models votes (rule: {last_rule or 'n/a'}):", ""] + [
            f"- {v}" for v in summary.comparison_votes
        ]
        out += [
            "",
            "Compare Models scores both models on the Ground Truth Dataset's test subset as it is when the model "
            "branch runs: the fixed test items and the labelled items Model Data Split sent to `test`; the table "
            "above and the learning curve use the fixed test items only, so rounds and arms stay comparable.",
        ]
    study = summary.study
    if study is not None:
        out += [
            "",
            f"## Over {study.seeds} seeds: `benchmarks/bench_al.py`'s digits study, in memory",
            "",
            f"scikit-learn digits, logistic regression, a fixed test split of {study.test_size}, {study.initial} random "
            f"initial labels + {study.rounds} rounds × {study.batch}, selection through `nodes/select_for_labeling` "
            "(no platform); every strategy at the same labels. Mean ± std over seeds; wins / ties / losses against "
            "random at the last round, counted on each metric separately.",
            "",
            "| strategy | labels | accuracy | mean AP | accuracy: wins / ties / losses | mean AP: wins / ties / losses |",
            "|---|---:|---:|---:|---|---|",
        ]
        for stats in study.strategies:
            for i, n in enumerate(stats.labelled):
                last = i == len(stats.labelled) - 1 and stats.wins is not None
                acc = f"{stats.wins} / {stats.ties} / {stats.losses} of {study.seeds}" if last else ""
                ap = (
                    f"{stats.ap_wins} / {stats.ap_ties} / {stats.ap_losses} of {study.seeds}"
                    if last and stats.ap_wins is not None
                    else ""
                )
                out.append(
                    f"| {stats.name} | {n} | {stats.accuracy_mean[i]:.3f} ± {stats.accuracy_std[i]:.3f} | "
                    f"{stats.ap_mean[i]:.3f} ± {stats.ap_std[i]:.3f} | {acc} | {ap} |"
                )
    if summary.node_lines:
        out += [
            "",
            "## What the platform recorded: cycles and node executions",
            "",
            "Per arm, round and branch: the cycles (`pipeline.pipeline_executions`) with their statuses, and per "
            "node its status in those cycles and the executions it ran (`project.executions`, by status, with "
            "their summed run time). Items left in the Labeling task keep their cycle `in-progress`.",
            "",
            "```",
            *summary.node_lines,
            "```",
        ]
    out += [
        "",
        "![PR curves](pr_curves.png)",
        "",
        "![Learning curve](learning_curve.png)",
        "",
        f"Elapsed: {summary.elapsed_s:.1f} s.",
        "",
    ]
    return "\n".join(out)


def plot_learning_curve(
    runs: Mapping[str, Sequence[RoundResult]], study, path: Path | str, seed: int = 0, title: str = ""
) -> Path:
    """Test accuracy and mean AP against labelled items: this run's arms (lines) and, when a study ran,
    its mean ± std per strategy (shaded bands)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"margin": "tab:blue", "margin+cluster": "tab:green", "random": "tab:gray"}
    panels = [("accuracy", "test accuracy"), ("mean_ap", "test mean AP")]
    columns = 2 if study is None else 4
    fig, axes = plt.subplots(1, columns, figsize=(4.3 * columns, 4.2), dpi=110, squeeze=False)
    axes = axes[0]
    for k, (attr, label) in enumerate(panels):
        ax = axes[k]
        for name, rounds in runs.items():
            xs = [r.labelled for r in rounds]
            ys = [getattr(r, attr) for r in rounds]
            ax.plot(xs, ys, marker="o", color=colors.get(name), linewidth=2, label=f"{name} (this run)")
            ax.annotate(f"{ys[-1]:.3f}", (xs[-1], ys[-1]), textcoords="offset points", xytext=(5, 0), fontsize=9)
        ax.set_title(f"Full platform, seed {seed}: {label}", fontsize=10)
        ax.set_xlabel("labelled items")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    if study is not None:
        for k, (attr, label, won) in enumerate(
            (("accuracy", "test accuracy", "wins"), ("ap", "test mean AP", "ap_wins"))
        ):
            ax = axes[2 + k]
            for stats in study.strategies:
                xs = np.asarray(stats.labelled, dtype=float)
                mean = np.asarray(getattr(stats, f"{attr}_mean"))
                std = np.asarray(getattr(stats, f"{attr}_std"))
                color = colors.get(stats.name)
                wins = getattr(stats, won, None)  # each panel counts the wins on its own metric
                record = "" if wins is None else f", beat random on {label[5:]} {wins}/{study.seeds}"
                ax.plot(xs, mean, marker="o", color=color, linewidth=2, label=f"{stats.name}{record}")
                ax.fill_between(xs, mean - std, mean + std, color=color, alpha=0.18)
            ax.set_title(f"{study.seeds} seeds, mean ± std: {label}", fontsize=10)
            ax.set_xlabel("labelled items")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(title or "Margin vs random selection: this run on the platform, and over many seeds")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_pr_curves(
    curves: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]],
    ap: Mapping[str, Mapping[str, float]],
    labels: Sequence[str],
    path: Path | str,
    title: str = "",
    caption: str = "",
) -> Path:
    """Precision-recall curves of both models for a few labels, one panel per label.

    Parameters
    ----------
    curves : ``model name -> label -> (recall, precision)``
    ap : ``model name -> label -> AP`` (shown in the legend)
    labels : the labels to draw (one panel each)
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(1, len(labels))
    cols = min(n, 3)
    rows = int(math.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.8 * rows), dpi=110, squeeze=False)
    colors = ["tab:gray", "tab:blue", "tab:orange", "tab:green"]
    for k, label in enumerate(labels):
        ax = axes[k // cols][k % cols]
        for m, (model, by_label) in enumerate(curves.items()):
            if label not in by_label:
                continue
            recall, precision = by_label[label]
            value = ap.get(model, {}).get(label, math.nan)
            ax.step(
                recall,
                precision,
                where="pre",
                color=colors[m % len(colors)],
                linewidth=2,
                label=f"{model} (AP {_fmt(value)})",
            )
        ax.set_title(f"label {label}")
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.grid(alpha=0.3)
        if ax.get_lines():
            ax.legend(loc="lower left", fontsize=8, framealpha=0.95)
    for k in range(len(labels), rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.suptitle(title or "Precision-recall on the test subset: previous vs new model")
    fig.text(
        0.5,
        0.01,
        caption
        or "Each model uploads its three most likely labels per image with their probabilities; the curve ranks "
        "every image-label pair by probability. Higher and further right is better.",
        ha="center",
        fontsize=8.5,
        color="dimgray",
    )
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def labels_to_plot(rows: Sequence[LabelRow], n: int = 3) -> list[str]:
    """The ``n`` labels whose AP changed most (ties by label), for the PR-curve figure.

    Examples
    --------
    >>> labels_to_plot(label_rows({"0": .9, "1": .5, "2": .7}, {"0": .9, "1": .8, "2": .6}), n=2)
    ['1', '2']
    """
    ranked = sorted(rows, key=lambda r: (-abs(0.0 if math.isnan(r.delta) else r.delta), _label_key(r.label)))
    return [r.label for r in ranked[:n]]
