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
class StrategyCurve:
    """Test mAP after each round for one selection strategy (round 0 is the base model)."""

    name: str
    labelled: tuple[int, ...]
    mean_ap: tuple[float, ...]


@dataclass(frozen=True)
class DemoSummary:
    """Everything the report shows; built by the demo, rendered by :func:`render_markdown`."""

    previous_model: str
    new_model: str
    decision: str
    rows: tuple[LabelRow, ...]
    previous_map: float
    new_map: float
    curves: tuple[StrategyCurve, ...]
    decisions: tuple[tuple[int, str, str, str], ...] = ()  # (round, strategy, new model, decision)
    method: str = "margin"
    budget: int = 0
    n_items: int = 0
    n_test: int = 0
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


def uncertainty_verdict(curves: Sequence[StrategyCurve]) -> str:
    """One honest sentence comparing the last round of the uncertainty and random curves.

    Examples
    --------
    >>> u = StrategyCurve("uncertainty", (100, 200), (0.8, 0.93))
    >>> r = StrategyCurve("random", (100, 200), (0.8, 0.90))
    >>> uncertainty_verdict([u, r])
    'Uncertainty sampling beat random selection with the same label budget: test mAP 0.930 vs 0.900 (+0.030).'
    """
    by_name = {c.name: c for c in curves}
    if "uncertainty" not in by_name or "random" not in by_name:
        return "No random-selection baseline was run."
    u, r = by_name["uncertainty"].mean_ap[-1], by_name["random"].mean_ap[-1]
    if u > r:
        return (
            "Uncertainty sampling beat random selection with the same label budget: "
            f"test mAP {u:.3f} vs {r:.3f} ({u - r:+.3f})."
        )
    return (
        "Uncertainty sampling did NOT beat random selection with the same label budget this time: "
        f"test mAP {u:.3f} vs {r:.3f} ({u - r:+.3f})."
    )


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
    """``report.md``: decision, per-label table, strategy comparison, links to the plots."""
    out = [
        "# Active learning demo report",
        "",
        f"**Decision: `{summary.decision}`** — Compare Models kept "
        f"`{summary.new_model if summary.decision == 'update model' else summary.previous_model}` "
        f"(previous `{summary.previous_model}`, new `{summary.new_model}`).",
        "",
        f"{summary.n_items} digit images, fixed test subset of {summary.n_test} items shared by every model; "
        f"{summary.budget} labels per round chosen by {summary.method} uncertainty or at random.",
        "",
        "## Previous vs new model (test subset, per-label AP)",
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
    out += ["", "## Uncertainty vs random selection (same label budget)", "", uncertainty_verdict(summary.curves), ""]
    if summary.curves:
        header = "| round | labelled | " + " | ".join(f"{c.name} mAP" for c in summary.curves) + " |"
        out += [header, "|---:|---:|" + "---:|" * len(summary.curves)]
        for i, labelled in enumerate(summary.curves[0].labelled):
            cells = " | ".join(_fmt(c.mean_ap[i]) for c in summary.curves)
            out.append(f"| {i} | {labelled} | {cells} |")
    if summary.decisions:
        out += [
            "",
            "## Compare Models decisions",
            "",
            "| round | strategy | new model | decision |",
            "|---:|---|---|---|",
        ]
        out += [f"| {r} | {s} | `{m}` | `{d}` |" for r, s, m, d in summary.decisions]
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


def plot_learning_curve(curves: Sequence[StrategyCurve], path: Path | str, title: str = "") -> Path:
    """Test mAP against number of labelled items, one line per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {"uncertainty": ("tab:blue", "o"), "random": ("tab:gray", "s")}
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for curve in curves:
        color, marker = styles.get(curve.name, (None, "^"))
        ax.plot(
            curve.labelled, curve.mean_ap, marker=marker, color=color, linewidth=2.2, label=f"{curve.name} selection"
        )
        ax.annotate(
            f"{curve.mean_ap[-1]:.3f}",
            (curve.labelled[-1], curve.mean_ap[-1]),
            textcoords="offset points",
            xytext=(6, 0),
            va="center",
            color=color,
            fontsize=10,
            fontweight="bold",
        )
    all_ap = [v for c in curves for v in c.mean_ap]
    if all_ap:
        low = min(all_ap)
        ax.set_ylim(max(0.0, low - 0.05), min(1.0, max(all_ap) + 0.03))
    if curves:
        ax.set_xticks(list(curves[0].labelled))
        xs = curves[0].labelled
        ax.set_xlim(xs[0] - 0.05 * max(1, xs[-1] - xs[0]), xs[-1] + 0.15 * max(1, xs[-1] - xs[0]))
    ax.set_xlabel("labelled items (round 0 = base model)")
    ax.set_ylabel("test mAP")
    ax.set_title(title or "Test mAP per round: uncertainty vs random selection")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
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
            ax.legend(loc="center left", fontsize=8, framealpha=0.95)
    for k in range(len(labels), rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.suptitle(title or "Precision-recall on the test subset: previous vs new model")
    fig.text(
        0.5,
        0.01,
        "Each model gives one label per image; the flat tail at low precision is the recall it can only "
        "reach by also taking the images it labelled otherwise. Higher and further right is better.",
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
