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


def uncertainty_verdict(runs: Mapping[str, Sequence[RoundResult]], study=None) -> str:
    """Honest sentences: did margin selection beat random in this run, and over the study's seeds?

    Examples
    --------
    >>> m = (RoundResult(0, 100, .8, .9, "b", "base"), RoundResult(1, 200, .85, .93, "n", "update model"))
    >>> r = (RoundResult(0, 100, .8, .9, "b", "base"), RoundResult(1, 200, .86, .92, "n", "update model"))
    >>> uncertainty_verdict({"margin": m, "random": r})
    'This run: margin selection did NOT beat random selection with the same label budget: test accuracy 0.850 vs 0.860 (-0.010).'
    """
    sentences = []
    if "margin" in runs and "random" in runs and runs["margin"] and runs["random"]:
        u, r = runs["margin"][-1].accuracy, runs["random"][-1].accuracy
        verb = "beat" if u > r else "did NOT beat"
        sentences.append(
            f"This run: margin selection {verb} random selection with the same label budget: "
            f"test accuracy {u:.3f} vs {r:.3f} ({u - r:+.3f})."
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
                f"Over {study.seeds} seeds, {stats.name} {verdict}: it won {stats.wins}, tied {stats.ties} and lost "
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


def render_markdown(summary: DemoSummary) -> str:
    """``report.md``: the template run, the decision, the per-label table, this run's rounds, the
    multi-seed summary, links to the plots."""
    kept = summary.new_model if summary.decision == "update model" else summary.previous_model
    out = [
        "# Active learning demo report",
        "",
        f"Pipeline template run: `{summary.template}` (installed on the local platform once per arm, "
        "its nodes called in the order of its connections and actions).",
        "",
        f"**Decision of the last margin round: `{summary.decision}`** — Compare Models kept `{kept}` "
        f"(previous `{summary.previous_model}`, new `{summary.new_model}`).",
        "",
        f"{summary.n_items} digit images (seed {summary.seed}); a fixed test subset of {summary.n_test} items "
        f"shared by every model; {summary.budget} labels per round chosen by Select for Labeling with margin "
        "uncertainty or at random.",
        "",
        "## Previous vs new model (test subset, per-label AP from the top-3 class predictions)",
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
        out += ["", "Compare Models votes:", ""] + [f"- {v}" for v in summary.comparison_votes]
    out += [
        "",
        "## Margin vs random selection",
        "",
        uncertainty_verdict(summary.runs, summary.study),
        "",
        f"### This run: the full platform, seed {summary.seed}",
        "",
        "Each round: the new model's accuracy and mean AP on the fixed test subset, and Compare Models' decision.",
        "",
    ]
    if summary.runs:
        names = list(summary.runs)
        out.append(
            "| round | " + " | ".join(f"{n} labelled | {n} accuracy | {n} mAP | {n} decision" for n in names) + " |"
        )
        out.append("|---:|" + "---:|---:|---:|---|" * len(names))
        for i in range(max(len(r) for r in summary.runs.values())):
            cells = []
            for n in names:
                r = summary.runs[n][i] if i < len(summary.runs[n]) else None
                cells.append(
                    "| | | " if r is None else f"{r.labelled} | {r.accuracy:.3f} | {r.mean_ap:.3f} | `{r.decision}`"
                )
            out.append(f"| {i} | " + " | ".join(cells) + " |")
    study = summary.study
    if study is not None:
        out += [
            "",
            f"### Over {study.seeds} seeds: `benchmarks/bench_al_digits.py`'s study, in memory",
            "",
            f"scikit-learn digits, logistic regression, a fixed test split of {study.test_size}, {study.initial} random "
            f"initial labels + {study.rounds} rounds × {study.batch}, selection through `nodes/select_for_labeling` "
            "(no platform). Mean ± std over seeds.",
            "",
            "| strategy | labels | accuracy | mean AP | wins / ties / losses vs random (last round) |",
            "|---|---:|---:|---:|---|",
        ]
        for stats in study.strategies:
            for i, n in enumerate(stats.labelled):
                record = ""
                if i == len(stats.labelled) - 1 and stats.wins is not None:
                    record = f"{stats.wins} / {stats.ties} / {stats.losses} of {study.seeds}"
                out.append(
                    f"| {stats.name} | {n} | {stats.accuracy_mean[i]:.3f} ± {stats.accuracy_std[i]:.3f} | "
                    f"{stats.ap_mean[i]:.3f} ± {stats.ap_std[i]:.3f} | {record} |"
                )
    if summary.node_lines:
        out += ["", "## Node executions, in the order they ran", "", "```"] + list(summary.node_lines) + ["```"]
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
        for k, (attr, label) in enumerate((("accuracy", "test accuracy"), ("ap", "test mean AP"))):
            ax = axes[2 + k]
            for stats in study.strategies:
                xs = np.asarray(stats.labelled, dtype=float)
                mean = np.asarray(getattr(stats, f"{attr}_mean"))
                std = np.asarray(getattr(stats, f"{attr}_std"))
                color = colors.get(stats.name)
                record = "" if stats.wins is None else f", beat random {stats.wins}/{study.seeds}"
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
        "Each model uploads its three most likely labels per image with their probabilities; the curve ranks "
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
