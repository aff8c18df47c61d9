"""One demo run on a started local platform: set-up, rounds, outputs (see :mod:`demo.run`).

Every method talks to the platform through dtlpy; the platform runs the pipelines (trigger,
services, model operations, task nodes, cron) and the session only uploads, annotates, advances
the clock and reads back what was recorded.
"""

from __future__ import annotations

import contextlib
import io
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from demo import annotator, platform_setup, watch
from demo.data import encode_png
from demo.options import MARGIN, RANDOM, WAIT_S, DemoOptions
from demo.report import (
    DemoSummary,
    RoundResult,
    decision_rule,
    format_table,
    label_rows,
    labels_to_plot,
    plot_learning_curve,
    plot_pr_curves,
    render_markdown,
    round_lines,
    uncertainty_verdict,
)
from demo.tasks import ModelScore, get_task
from demo.template import TEMPLATE_PATH, fill_variables, load_template, node_named, set_node_config


@dataclass
class Arm:
    """One installed copy of the template and what happened to it."""

    name: str
    raw: object  # dl.Dataset
    ground_truth: object  # dl.Dataset
    pipeline: object = None  # dl.Pipeline
    tasks: dict = field(default_factory=dict)  # node name -> task id
    labelled: int = 0
    round_labelled: int = 0  # this round: items the annotator labelled
    round_waiting: int = 0  # this round: new items that reached the Labeling task
    rounds: list[RoundResult] = field(default_factory=list)
    seen_cycles: set = field(default_factory=set)
    last_compare: tuple | None = None  # (previous model, new model, comparison JSON)


@dataclass(frozen=True)
class DemoResult:
    """What the demo decided and wrote."""

    decision: str
    summary: DemoSummary
    report_path: Path
    pr_curves_path: Path
    learning_curve_path: Path
    elapsed_s: float
    request_counts: dict
    records: tuple = ()  # demo.watch.BranchRecord of every arm, round and branch
    best_models: dict = field(default_factory=dict)  # arm -> Best Model variable at the end
    cpu_s: float = 0.0  # CPU of the whole run: this process, the platform's workers, the study


class Steps:
    """One progress line per step: ``[n] what``, then ``done in s``."""

    def __init__(self, echo: Callable[[str], None]):
        self.echo = echo
        self.n = 0
        self.started = time.perf_counter()

    def start(self, text: str) -> float:
        self.n += 1
        self.echo(f"[{self.n:>2}] {text}")
        return time.perf_counter()

    def done(self, started: float, note: str = "") -> None:
        self.echo(f"     done in {time.perf_counter() - started:.1f} s" + (f": {note}" if note else ""))

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def upload_images(dataset, names, images: Mapping, bar) -> list:
    """Edge: upload each image as a PNG item (in-memory buffer), one at a time so ids follow the
    order; returns the items in order."""
    uploaded = []
    for name in names:
        buffer = io.BytesIO(encode_png(images[name]))
        buffer.name = name
        item = dataset.items.upload(local_path=buffer)
        if item is None or not hasattr(item, "id"):
            raise RuntimeError(f"upload of {name} failed; see dtlpy's log above")
        uploaded.append(item)
        bar.update(1)
    return uploaded


def tag_items(dataset, item_ids: list[str], tags: dict) -> None:
    """Edge: bulk-set system tags on ``item_ids`` (one query-with-update request per 1,000 ids)."""
    import dtlpy as dl

    for start in range(0, len(item_ids), 1000):
        filters = dl.Filters()
        filters.add(field="id", values=item_ids[start : start + 1000], operator=dl.FiltersOperations.IN)
        dataset.items.update(filters=filters, system_update_values={"tags": tags}, system_metadata=True)


def arm_template(template: dict, arm: str, raw_id: str, model_id: str, ground_truth_id: str, task, seed: int) -> dict:
    """The template body of one arm: its datasets and the base model in the variables, its name,
    and the Uncertainty Gate of the random arm scoring ``random`` with threshold 0 (every new
    item reaches Labeling, the annotator's ranking by that score is a seeded random order).

    Examples
    --------
    >>> from demo.classification import ClassificationTask
    >>> from demo.template import load_template
    >>> body = arm_template(load_template(), "random", "r", "m", "g", ClassificationTask(), 3)
    >>> from demo.template import node_named
    >>> node_named(body, "Uncertainty Gate")["metadata"]["customNodeConfig"]["strategy"], body["name"][-8:]
    ('random', '(random)')
    """
    body = fill_variables(
        template, {"Raw Dataset": raw_id, "Best Model": model_id, "Ground Truth Dataset": ground_truth_id}
    )
    body["name"] = f"{template['name']} ({arm})"
    changes = dict(task.gate_config) if arm == MARGIN else {"strategy": "random", "threshold": 0.0, "seed": seed}
    if changes:
        body = set_node_config(body, "Uncertainty Gate", changes)
    return body


def template_name(path: Path) -> str:
    """The template's path relative to the repository when it is inside it.

    Examples
    --------
    >>> template_name(TEMPLATE_PATH)
    'pipeline_configs/active_learning_pipeline.json'
    """
    path = Path(path).resolve()
    try:
        return str(path.relative_to(TEMPLATE_PATH.parent.parent))
    except ValueError:
        return str(path)


def _bar(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=f"     {desc}", unit="item", leave=False, disable=not enabled, file=sys.stderr)


def _comparison(model) -> dict:
    return ((model.metadata.get("user") or {}).get("activeLearning") or {}).get("comparison") or {}


class Session:
    """One demo run (edge: every method talks to the platform)."""

    def __init__(self, options: DemoOptions, platform, echo: Callable[[str], None], progress_bars: bool, study):
        self.options, self.platform, self.echo, self.progress_bars = options, platform, echo, progress_bars
        self.study = study
        self.steps = Steps(echo)
        self.task = get_task(options.task)
        self.scores: dict[str, ModelScore] = {}
        self.records: list[watch.BranchRecord] = []

    # ---------------------------------------------------------------- the story
    def run(self) -> DemoResult:
        import dtlpy as dl

        options = self.options
        self.data = self.task.load(
            options.items, options.seed, options.test_fraction, options.initial, options.rounds, options.arrivals
        )
        self.steps.start(f"local platform on {self.platform.url} (dtlpy {dl.__version__})")
        self.project = dl.projects.create(project_name="active-learning-demo")
        self._install_apps()
        arms = self._create_datasets()
        base = self._train_base(arms[MARGIN].ground_truth)
        self.template = load_template(options.template)
        t = self.steps.start(f"pipelines.create + install() of {template_name(options.template)}, once per arm")
        for arm in arms.values():
            body = arm_template(
                self.template, arm.name, arm.raw.id, base.id, arm.ground_truth.id, self.task, options.seed
            )
            arm.pipeline = platform_setup.install_pipeline(self.project, body)
            arm.tasks = platform_setup.task_ids(self.project, arm.pipeline)
        self.steps.done(t, ", ".join(f"{a.pipeline.name!r} ({a.pipeline.status})" for a in arms.values()))
        score = self._score(base)
        for arm in arms.values():
            arm.rounds.append(
                RoundResult(0, arm.labelled, score.primary, score.mean_ap, base.name, "base", model_id=base.id)
            )
        for round_no in range(1, options.rounds + 1):
            self._item_branch(arms, round_no)
            self._model_branch(arms, round_no)
        return self._write_outputs(arms)

    def _wait(self) -> None:
        if not self.platform.wait_pipelines_idle(WAIT_S):
            raise RuntimeError(f"the local platform was still busy after {WAIT_S:.0f} s")

    def _install_apps(self) -> None:
        t = self.steps.start(
            f"publishing and installing the app (dataloop.json) and the model app ({self.task.model_app_manifest})"
        )
        platform_setup.publish_and_install(self.project, platform_setup.APP_MANIFEST)
        self.model_app = platform_setup.publish_and_install(self.project, self.task.model_app_manifest)
        services = [s.name for s in self.project.services.list().all()]
        self.steps.done(t, f"services: {', '.join(sorted(services))}")

    def _create_datasets(self) -> dict[str, Arm]:
        from emulator import make_labels

        data, labels = self.data, list(self.task.labels)
        held = list(data.test) + list(data.initial)
        gt = self.project.datasets.create(dataset_name="ground-truth-margin", labels=make_labels(labels))
        t = self.steps.start(
            f"uploading {len(held)} labelled items (fixed test subset {len(data.test)} + initial pool "
            f"{len(data.initial)}) to the Ground Truth Dataset"
        )
        with _bar(len(held), f"upload to {gt.name}", self.progress_bars) as bar:
            items = upload_images(gt, held, data.images, bar)
        with _bar(len(items), "label", self.progress_bars) as bar:
            for item in items:
                self.task.annotate(item, data.truth[item.name], replace=False)
                bar.update(1)
        ids = {item.name: item.id for item in items}
        n_train = int(round(0.8 * len(data.initial)))
        tag_items(gt, [ids[n] for n in data.test], {"test": True})
        tag_items(gt, [ids[n] for n in data.initial[:n_train]], {"train": True})
        tag_items(gt, [ids[n] for n in data.initial[n_train:]], {"validation": True})
        self.initial_train = n_train
        gt_random = gt.clone(clone_name="ground-truth-random")
        arms = {}
        for name, ground_truth in ((MARGIN, gt), (RANDOM, gt_random)):
            raw = self.project.datasets.create(dataset_name=f"raw-{name}", labels=make_labels(labels))
            arms[name] = Arm(name, raw, ground_truth, labelled=len(data.initial))
        self.steps.done(
            t,
            f"test {len(data.test)}, train {n_train}, validation {len(data.initial) - n_train}; cloned for the random arm",
        )
        return arms

    def _train_base(self, dataset):
        t = self.steps.start(f"model.train() of the base model on the initial pool ({self.initial_train} train items)")
        base = platform_setup.create_base_model(self.project, self.task, self.model_app, dataset)
        execution = base.train()
        self._wait()
        execution = self.project.executions.get(execution_id=execution.id)
        if execution.latest_status["status"] != "success":
            raise RuntimeError(f"training the base model failed: {execution.latest_status}")
        base = self.project.models.get(model_id=base.id)
        score = self._score(base)
        self.steps.done(t, f"{base.status}; test {self._metrics(score)}")
        return base

    # ---------------------------------------------------------------- one round
    def _item_branch(self, arms: dict[str, Arm], round_no: int) -> None:
        data, options = self.data, self.options
        names = data.arrivals[round_no - 1]
        t = self.steps.start(
            f"round {round_no}: {len(names)} new raw items uploaded to each arm's Raw Dataset "
            "(its trigger starts a cycle per item: Predict, Uncertainty Gate, Labeling)"
        )
        arrived = {}
        for arm in arms.values():
            with _bar(len(names), f"upload to {arm.raw.name}", self.progress_bars) as bar:
                arrived[arm.name] = [item.id for item in upload_images(arm.raw, names, data.images, bar)]
        self._wait()
        waiting = {
            name: len(annotator.task_items(self.project, arm.tasks["Labeling"], arrived[name]))
            for name, arm in arms.items()
        }
        self.steps.done(t, ", ".join(f"{n}: {w} of {len(names)} reached Labeling" for n, w in waiting.items()))

        t = self.steps.start(
            f"round {round_no}: the annotator labels up to {options.budget} of the items waiting in each Labeling task "
            "(highest gate score first; the random arm as many as the margin arm), then Review approves them"
        )
        labelled, n = {}, min(options.budget, waiting[MARGIN])
        for name, arm in arms.items():
            done = annotator.label(self.project, arm.tasks["Labeling"], arrived[name], n, self._annotate, data.truth)
            labelled[name] = [item.id for item in done]
        self._wait()
        for name, arm in arms.items():
            annotator.approve(self.project, arm.tasks["Review"], labelled[name])
            arm.labelled += len(labelled[name])
            arm.round_labelled = len(labelled[name])
            arm.round_waiting = waiting[name]
        self._wait()
        for arm in arms.values():
            self._record(arm, round_no, "items")
        self.steps.done(t, ", ".join(f"{n}: {len(ids)} labelled" for n, ids in labelled.items()))

    def _annotate(self, item, truth) -> None:
        self.task.annotate(item, truth, replace=True)

    def _model_branch(self, arms: dict[str, Arm], round_no: int) -> None:
        import dtlpy as dl

        t = self.steps.start(
            f"round {round_no}: the platform clock moves a week; the cron start node runs Create New Model, Train, "
            "Evaluate x2, Compare Models, Update Variables"
        )
        before = {
            name: platform_setup.variable(self.project, arm.pipeline.id, "Best Model") for name, arm in arms.items()
        }
        started = set(self.platform.advance_clock(days=7))
        self._wait()
        notes = []
        for name, arm in arms.items():
            cycles = [c for c in watch.list_cycles(arm.pipeline) if c["id"] in started]
            if len(cycles) != 1:
                raise RuntimeError(f"{arm.pipeline.name}: the cron started {len(cycles)} cycles, not 1")
            cycle = cycles[0]
            if cycle["status"] != "success":
                raise RuntimeError(f"{arm.pipeline.name}: the model branch ended {cycle['status']}: {cycle}")
            create_node = node_named(self.template, "Create New Model")["id"]
            (create,) = (cycle.get("executions") or {}).get(create_node, [])
            new_id = self.project.executions.get(execution_id=create["id"]).output[0]
            new_model = dl.models.get(model_id=new_id if isinstance(new_id, str) else new_id["model_id"])
            comparison = _comparison(new_model)
            previous = dl.models.get(model_id=before[name])
            after = platform_setup.variable(self.project, arm.pipeline.id, "Best Model")
            score = self._score(new_model)
            arm.rounds.append(
                RoundResult(
                    round_no,
                    arm.labelled,
                    score.primary,
                    score.mean_ap,
                    new_model.name,
                    comparison.get("decision", "?"),
                    labelled_now=arm.round_labelled,
                    reached_labeling=arm.round_waiting,
                    arrivals=len(self.data.arrivals[round_no - 1]),
                    kappa=comparison.get("kappa"),
                    recommendation=comparison.get("recommendation"),
                    stopping_reason=(comparison.get("stopping") or {}).get("reason"),
                    rule=decision_rule(comparison),
                    best_model_changed=after != before[name],
                    model_id=new_model.id,
                )
            )
            arm.last_compare = (previous, new_model, comparison)
            self._record(arm, round_no, "model", cycle_ids={cycle["id"]})
            notes.append(
                f"{name}: {new_model.name} test {self._metrics(score)} -> {comparison.get('decision')}, "
                f"kappa {_number(comparison.get('kappa'))}, {comparison.get('recommendation')}; Best Model "
                f"{'is now the new model' if after == new_model.id else 'unchanged'}"
            )
        self.steps.done(t, "; ".join(notes))

    def _record(self, arm: Arm, round_no: int, branch: str, cycle_ids: set | None = None) -> None:
        cycles = watch.list_cycles(arm.pipeline)
        if cycle_ids is None:
            cycles = [c for c in cycles if c["id"] not in arm.seen_cycles]
        else:
            cycles = [c for c in cycles if c["id"] in cycle_ids]
        arm.seen_cycles.update(c["id"] for c in cycles)
        executions = watch.list_executions(self.project, arm.pipeline.id)
        order = [n["name"] for n in self.template["nodes"]]
        statuses, nodes = watch.tally(cycles, executions, order)
        self.records.append(watch.BranchRecord(arm.name, round_no, branch, statuses, nodes))

    def _score(self, model) -> ModelScore:
        if model.id not in self.scores:
            with contextlib.redirect_stdout(io.StringIO()):
                self.scores[model.id] = self.task.score(model, self.data)
        return self.scores[model.id]

    def _metrics(self, score: ModelScore) -> str:
        primary, mean = self.task.metric_names
        return f"{primary} {score.primary:.3f}, {mean} {score.mean_ap:.3f}"

    # ---------------------------------------------------------------- outputs
    def _write_outputs(self, arms: dict[str, Arm]) -> DemoResult:
        options, echo, out = self.options, self.echo, self.options.out
        study = None
        if self.study is not None:
            t = self.steps.start(f"multi-seed study ({options.study_seeds} seeds, in memory, second process)")
            study = self.study.result()
            self.steps.done(t, f"{study.seconds:.1f} s CPU in its own process")
        t = self.steps.start(f"writing {out / 'report.md'}, pr_curves.png and learning_curve.png")
        previous, new_model, comparison = arms[MARGIN].last_compare
        decision = comparison.get("decision", "?")
        previous_ap, new_ap = _per_label_ap(comparison, self._score(previous), self._score(new_model))
        rows = label_rows(previous_ap, new_ap)
        chosen = labels_to_plot(rows, n=3)
        pr_path = plot_pr_curves(
            {"previous": self._score(previous).curves, "new": self._score(new_model).curves},
            {"previous": previous_ap, "new": new_ap},
            chosen,
            out / "pr_curves.png",
            title=(f"Test-subset PR curves — decision: {decision}\nprevious: {previous.name}   new: {new_model.name}"),
            caption=getattr(self.task, "pr_caption", ""),
        )
        runs = {name: tuple(arm.rounds) for name, arm in arms.items()}
        lc_path = plot_learning_curve(runs, study, out / "learning_curve.png", seed=options.seed)
        elapsed = self.steps.elapsed()
        summary = DemoSummary(
            previous_model=previous.name,
            new_model=new_model.name,
            decision=decision,
            rows=rows,
            previous_map=_nanmean([r.previous_ap for r in rows]),
            new_map=_nanmean([r.new_ap for r in rows]),
            runs=runs,
            study=study,
            template=template_name(options.template),
            node_lines=tuple(line for record in self.records for line in record.lines()),
            budget=options.budget,
            n_items=options.items,
            n_test=len(self.data.test),
            seed=options.seed,
            elapsed_s=elapsed,
            comparison_votes=_votes(comparison),
            task=self.task.name,
            metric_names=tuple(self.task.metric_names),
            arrivals=tuple(len(a) for a in self.data.arrivals),
        )
        report_path = out / "report.md"
        report_text = render_markdown(summary)
        figure = getattr(self.task, "figure", None)  # a task's own picture (detection: test scenes with boxes)
        picture = figure(previous, new_model, self.data, str(out / "test_images.png")) if figure else None
        if picture:
            report_text += (
                f"\n## Test images: true boxes and each model's boxes\n\n![test images]({Path(picture).name})\n"
            )
        report_path.write_text(report_text, encoding="utf-8")
        self.steps.done(t)

        echo("")
        echo(
            f"Template run: {summary.template} (installed as {', '.join(repr(a.pipeline.name) for a in arms.values())})"
        )
        for line in round_lines(summary):
            echo(line)
        echo(uncertainty_verdict(runs, study, summary.metric_names[0]))
        echo("")
        echo(f"Last round ({MARGIN}): previous {previous.name!r} vs new {new_model.name!r}")
        echo(format_table(summary))
        echo("")
        echo(f"report: {report_path}   plots: {pr_path}, {lc_path}" + (f", {picture}" if picture else ""))
        counts = dict(self.platform.request_counts)
        workers = dict(self.platform.store.engine.counters)
        echo(
            f"the platform served {sum(counts.values()):,} requests and ran {workers.get('executions', 0):,} executions "
            f"in {workers.get('processes_started', 0)} worker processes"
        )
        best = {
            name: platform_setup.variable(self.project, arm.pipeline.id, "Best Model") for name, arm in arms.items()
        }
        return DemoResult(decision, summary, report_path, pr_path, lc_path, elapsed, counts, tuple(self.records), best)


def _number(value) -> str:
    return "n/a" if not isinstance(value, int | float) else f"{value:.3f}"


def _nanmean(values) -> float:
    import numpy as np

    finite = [v for v in values if v == v]
    return float(np.mean(finite)) if finite else float("nan")


def _votes(comparison: dict) -> tuple[str, ...]:
    return tuple(
        f"`{v['name']}`: previous {v['previous']:.3f}, new {v['new']:.3f} -> {'won' if v['won'] else 'lost'}"
        + (
            ""
            if not v.get("interval")
            else f" (interval of the gain {v['interval'][0]:+.3f} .. {v['interval'][1]:+.3f})"
        )
        for v in comparison.get("votes", [])
        if v.get("previous") is not None and v.get("new") is not None
    )


def _per_label_ap(comparison: dict, previous: ModelScore, new: ModelScore) -> tuple[dict, dict]:
    """Per-label AP of both models from the Compare Models report stored on the new model (the
    demo's own scoring of the fixed test items when the report has no per-label section)."""
    per_label = (comparison.get("details") or {}).get("perLabelAP", {}).get("class")
    if per_label:
        labels = per_label["labels"]
        return (
            dict(zip(labels, per_label["previous_ap"], strict=True)),
            dict(zip(labels, per_label["new_ap"], strict=True)),
        )
    return dict(previous.per_label_ap), dict(new.per_label_ap)
