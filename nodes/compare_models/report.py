"""Compare Models report: the decision and everything it was made from, and its renderings.

``ComparisonReport`` is logged as a text table, stored on the new model under
``metadata.user.activeLearning.comparison`` (``updated_metadata``, with the decision tag
when asked) and written by the CLI as ``report.md``; ``plot_pr_curves`` draws both models'
precision-recall curves. Pure, no dtlpy.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nodes.compare_models.config import CompareConfig
from nodes.compare_models.evaluation import EvaluationOutcome
from nodes.compare_models.votes import Vote, new_model_wins

logger = logging.getLogger(__name__)

UPDATE_MODEL = "update model"
DISCARD = "discard"
ACTIONS = (UPDATE_MODEL, DISCARD)
REPORT_KEY = "activeLearning"
MAX_PLOTTED_LABELS = 12


@dataclass(frozen=True)
class ComparisonReport:
    """Everything the decision was made from.

    Examples
    --------
    >>> from nodes.compare_models.votes import judge_vote
    >>> config = CompareConfig.from_json({"checks": [{"legend": "val", "figure": "map"}]})
    >>> report = ComparisonReport.decide([judge_vote("plot.val.map", .4, .5, 0)], config, "p1", "n1")
    >>> report.decision, report.new_model_wins
    ('update model', True)
    """

    votes: tuple[Vote, ...]
    wins: str | float
    new_model_wins: bool
    decision: str
    config: dict
    previous_model_id: str
    new_model_id: str
    dataset_id: str | None = None
    details: dict = field(default_factory=dict)
    agreement: dict | None = None
    stopping: dict | None = None

    @classmethod
    def decide(
        cls,
        votes: Sequence[Vote],
        config: CompareConfig,
        previous_model_id: str,
        new_model_id: str,
        dataset_id: str | None = None,
        details: dict | None = None,
        agreement: dict | None = None,
    ) -> ComparisonReport:
        """Apply ``config.wins`` to ``votes`` and record the decision (and the models' agreement)."""
        wins = new_model_wins([v.won for v in votes], config.wins)
        return cls(
            votes=tuple(votes),
            wins=config.wins,
            new_model_wins=wins,
            decision=UPDATE_MODEL if wins else DISCARD,
            config=config.to_json(),
            previous_model_id=previous_model_id,
            new_model_id=new_model_id,
            dataset_id=dataset_id,
            details=dict(details or {}),
            agreement=None if agreement is None else dict(agreement),
        )

    def with_stopping(self, stopping: dict | None) -> ComparisonReport:
        """This report with the stopping signal (``nodes.compare_models.node.stopping_signal``)."""
        return dataclasses.replace(self, stopping=None if stopping is None else dict(stopping))

    @property
    def kappa(self) -> float | None:
        """Cohen's kappa between both models' test predictions (``None`` without ``precision_recall``)."""
        return None if self.agreement is None else self.agreement.get("kappa")

    @property
    def recommendation(self) -> str | None:
        """``"stop"`` / ``"continue"`` (``None`` when the stopping signal is switched off)."""
        return None if self.stopping is None else self.stopping.get("recommendation")

    @property
    def round(self) -> int | None:
        """This comparison's round in the model lineage (``None`` when the signal is off)."""
        ledger = (self.stopping or {}).get("ledger") or []
        return ledger[-1]["round"] if ledger else None

    @property
    def won_fraction(self) -> float:
        """Fraction of votes the new model won (0 with no votes)."""
        return sum(v.won for v in self.votes) / len(self.votes) if self.votes else 0.0

    def to_json(self) -> dict:
        """The JSON stored on the new model under ``metadata.user.activeLearning.comparison``."""
        return {
            "decision": self.decision,
            "newModelWins": self.new_model_wins,
            "wins": self.wins,
            "wonVotes": int(sum(v.won for v in self.votes)),
            "totalVotes": len(self.votes),
            "votes": [v.to_json() for v in self.votes],
            "previousModelId": self.previous_model_id,
            "newModelId": self.new_model_id,
            "datasetId": self.dataset_id,
            "config": self.config,
            "details": self.details,
            "kappa": self.kappa,
            "round": self.round,
            "recommendation": self.recommendation,
            "agreement": self.agreement,
            "stopping": self.stopping,
        }

    def table(self) -> str:
        """The votes as a fixed-width text table (for the log).

        Examples
        --------
        >>> config = CompareConfig.from_json({"checks": [{"legend": "val", "figure": "map"}]})
        >>> print(ComparisonReport.decide([], config, "p", "n").table().splitlines()[0].split())
        ['vote', 'previous', 'new', 'delta', 'interval', 'won']
        """
        rows = [("vote", "previous", "new", "delta", "interval", "won")]
        for v in self.votes:
            rows.append(
                (
                    v.name,
                    _fmt(v.previous),
                    _fmt(v.new),
                    _fmt(v.delta, signed=True),
                    _fmt_interval(v.interval),
                    "yes" if v.won else "no",
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
        won = sum(v.won for v in self.votes)
        lines += self.data_lines()
        lines.append(f"won {won} of {len(self.votes)} votes; wins={self.wins!r} -> {self.decision}")
        return "\n".join(lines)

    def data_lines(self) -> list[str]:
        """What the votes were computed on: each model's coverage of the test items, skipped annotations.

        Examples
        --------
        >>> config = CompareConfig.from_json({"checks": [{"legend": "v", "figure": "f"}]})
        >>> coverage = {"testItems": 4, "previous": {"items": 4, "coverage": 1.0},
        ...             "new": {"items": 3, "coverage": 0.75}, "gapPoints": 25.0, "warning": "differs"}
        >>> ComparisonReport.decide([], config, "p", "n", details={"coverage": coverage}).data_lines()
        ['coverage (test items with >= 1 prediction): previous 4/4 (100.0 %), new 3/4 (75.0 %)', 'WARNING: differs']
        """
        lines = []
        coverage = self.details.get("coverage")
        if coverage:
            n = coverage["testItems"]
            lines.append(
                f"coverage (test items with >= 1 prediction): previous {coverage['previous']['items']}/{n} "
                f"({coverage['previous']['coverage']:.1%}".replace("%", " %")
                + f"), new {coverage['new']['items']}/{n} ({coverage['new']['coverage']:.1%}".replace("%", " %")
                + ")"
            )
            if coverage.get("warning"):
                lines.append(f"WARNING: {coverage['warning']}")
        skipped = self.details.get("skippedAnnotations")
        if skipped and skipped.get("count"):
            reasons = "; ".join(f"{reason}: {count}" for reason, count in skipped["byReason"].items())
            lines.append(f"skipped {skipped['count']} malformed annotation(s) ({reasons})")
        lines += self.stopping_lines()
        return lines

    def stopping_lines(self) -> list[str]:
        """The agreement and the stopping signal, one line each (none when absent).

        Examples
        --------
        >>> config = CompareConfig.from_json({"checks": [{"legend": "v", "figure": "f"}]})
        >>> report = ComparisonReport.decide([], config, "p", "n", agreement={"kappa": 0.5, "decisions": 8})
        >>> report.with_stopping({"ledger": [{"round": 2}], "recommendation": "continue", "reason": "r"}).stopping_lines()
        ['agreement: kappa 0.500 over 8 test decisions', 'stopping signal (round 2): continue (r)']
        """
        lines = []
        if self.agreement is not None:
            kappa = self.kappa
            shown = "n/a" if kappa is None else f"{kappa:.3f}"
            lines.append(f"agreement: kappa {shown} over {self.agreement.get('decisions', 0)} test decisions")
        if self.stopping is not None:
            reason = self.stopping.get("reason", "")
            lines.append(f"stopping signal (round {self.round}): {self.recommendation} ({reason})")
        return lines

    def ledger_markdown(self) -> list[str]:
        """The ledger as a Markdown table (empty without the stopping signal)."""
        ledger = (self.stopping or {}).get("ledger") or []
        if not ledger:
            return []
        lines = [
            "## Stopping signal",
            "",
            f"**{self.recommendation}**: {self.stopping.get('reason', '')}",
            "",
            "| round | model | train items | metric | value | gain | interval | kappa | decision |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in ledger:
            interval = row.get("interval")
            lines.append(
                f"| {row.get('round')} | `{row.get('modelId') or ''}` | {_blank(row.get('labels'))} | "
                f"{row.get('metricName') or ''} | {_dash(row.get('metric'))} | {_dash(row.get('gain'), signed=True)} | "
                f"{_fmt_interval(interval) if interval else '-'} | {_dash(row.get('kappa'))} | {row.get('decision') or ''} |"
            )
        return [*lines, ""]

    def markdown(self, previous_name: str = "previous", new_name: str = "new") -> str:
        """A Markdown report (the CLI's ``report.md``)."""
        won = sum(v.won for v in self.votes)
        lines = [
            "# Model comparison",
            "",
            f"- previous model: {previous_name} (`{self.previous_model_id}`)",
            f"- new model: {new_name} (`{self.new_model_id}`)",
        ]
        if self.dataset_id:
            lines.append(f"- dataset: `{self.dataset_id}`")
        lines += [
            f"- decision: **{self.decision}** (new model won {won} of {len(self.votes)} votes; wins = `{self.wins}`)",
            "",
            *[f"- {line}" for line in self.data_lines()],
            "",
            "| vote | previous | new | delta | relative | interval | won | reason |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for v in self.votes:
            relative = "" if v.relative_change is None else f"{v.relative_change:+.2%}"
            lines.append(
                f"| {v.name} | {_fmt(v.previous)} | {_fmt(v.new)} | {_fmt(v.delta, signed=True)} | {relative} | "
                f"{_fmt_interval(v.interval)} | {'yes' if v.won else 'no'} | {v.reason} |"
            )
        lines += [
            "",
            *self.ledger_markdown(),
            "## Configuration used",
            "",
            "```json",
            _json_dumps(self.config),
            "```",
            "",
        ]
        return "\n".join(lines)


def _json_dumps(value: Any) -> str:
    import json

    return json.dumps(value, indent=2, sort_keys=True)


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "nan"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def _dash(value: Any, signed: bool = False) -> str:
    return "-" if value is None else _fmt(value, signed=signed)


def _blank(value: Any) -> str:
    return "" if value is None else str(value)


def _fmt_interval(interval: tuple[float, float] | None) -> str:
    if interval is None:
        return "-"
    return f"[{interval[0]:+.4f}, {interval[1]:+.4f}]"


@dataclass(frozen=True)
class Comparison:
    """What ``compare`` found: the report and the evaluation behind it (for plots)."""

    report: ComparisonReport
    evaluation: EvaluationOutcome | None = None


def updated_metadata(metadata: dict | None, report: ComparisonReport, tag_decision: bool) -> dict:
    """A new metadata dict for the new model: the report, and the decision tag if asked.

    The input is not modified. The tag of the other action is removed, so re-running a
    comparison that now decides differently leaves exactly one decision tag.

    Examples
    --------
    >>> config = CompareConfig.from_json({"checks": [{"legend": "v", "figure": "f"}]})
    >>> report = ComparisonReport.decide([], config, "p", "n")
    >>> meta = updated_metadata({"system": {"tags": {"update model": True}}}, report, True)
    >>> meta["system"]["tags"], meta["user"]["activeLearning"]["comparison"]["decision"]
    ({'discard': True}, 'discard')
    """
    out = copy.deepcopy(metadata) if isinstance(metadata, dict) else {}
    if not isinstance(out.get("user"), dict):
        out["user"] = {}
    if not isinstance(out["user"].get(REPORT_KEY), dict):
        out["user"][REPORT_KEY] = {}
    out["user"][REPORT_KEY]["comparison"] = report.to_json()
    if tag_decision:
        if not isinstance(out.get("system"), dict):
            out["system"] = {}
        if not isinstance(out["system"].get("tags"), dict):
            out["system"]["tags"] = {}
        for action in ACTIONS:
            out["system"]["tags"].pop(action, None)
        out["system"]["tags"][report.decision] = True
    return out


def plot_pr_curves(outcome: EvaluationOutcome | None, path: Path, previous_name: str, new_name: str) -> None:
    """Both models' precision-recall curves, one panel per (geometry, label), to ``path`` (PNG).

    Examples
    --------
    >>> # plot_pr_curves(comparison.evaluation, Path("out/pr_curves.png"), "previous", "new")
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []
    if outcome is not None:
        for geometry, (previous_eval, new_eval) in outcome.evaluations.items():
            for label in outcome.summary[geometry]["labels"][:MAX_PLOTTED_LABELS]:
                panels.append((geometry, label, previous_eval, new_eval))
    n = max(1, len(panels))
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 4 * rows), squeeze=False)
    for ax in axes.ravel()[len(panels) :]:
        ax.axis("off")
    if not panels:
        axes[0, 0].text(0.5, 0.5, "no precision-recall comparison\n(training metrics only)", ha="center", va="center")
    for ax, (geometry, label, previous_eval, new_eval) in zip(axes.ravel(), panels, strict=False):
        for evaluation, name, style in ((previous_eval, previous_name, "--"), (new_eval, new_name, "-")):
            try:
                curve = evaluation.curve(label)
            except ValueError:
                continue
            ax.step(np.r_[0.0, curve.recall], np.r_[1.0, curve.precision], style, where="post", label=name)
        ax.set_title(f"{geometry}: {label}")
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
        ax.legend(loc="lower left", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
