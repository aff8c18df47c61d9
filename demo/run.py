"""The demo's edge: the Active Learning pipeline template, installed and run on the embedded local
platform, round after round, for two arms (margin selection and a random baseline).

:func:`run_demo` uploads the digits, trains the base model, installs the template once per arm
and walks both branches with :class:`demo.pipeline_runner.PipelineRunner`; then it writes the
report with a multi-seed study. Why the arms, the fixed test subset and the budget are set up as
they are: docs/demo.md.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import importlib
import io
import logging
import math
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from demo.data import LABELS, N_DIGITS, encode_png, load_digits_images, plan_pools
from demo.report import (
    DemoSummary,
    RoundResult,
    format_table,
    label_rows,
    labels_to_plot,
    plot_learning_curve,
    plot_pr_curves,
    render_markdown,
    uncertainty_verdict,
)
from demo.template_graph import TEMPLATE_PATH, fill_variables, load_template, set_node_config

logger = logging.getLogger(__name__)

#: The whole demo should take less than this, wall time, on a 2-core machine.
DEMO_TARGET_SECONDS = 120

MARGIN, RANDOM = "margin", "random"
#: arm -> (Select for Labeling strategy, Uncertainty Gate config changes)
ARMS = {MARGIN: ("margin", {}), RANDOM: ("random", {"strategy": "random", "threshold": 0.0})}
MODEL_CONFIGURATION = {"C": 1.0, "max_iter": 300, "batch_size": 256}
STUDY_SEEDS = 10


@dataclass(frozen=True)
class DemoOptions:
    """Validated options of ``python main.py demo``."""

    seed: int = 0
    rounds: int = 2
    out: Path = Path("active_learning_demo")
    keep_running: bool = False
    items: int = N_DIGITS
    budget: int = 100
    initial: int = 100
    study_seeds: int = STUDY_SEEDS
    test_fraction: float = 0.2
    template: Path = TEMPLATE_PATH

    @classmethod
    def from_args(cls, args) -> DemoOptions:
        """Build from argparse results; errors name the option, the bad value and the fix.

        Examples
        --------
        >>> import argparse
        >>> DemoOptions.from_args(argparse.Namespace(rounds=0))
        Traceback (most recent call last):
        ...
        ValueError: --rounds: 0 is not an integer in [1, 10]; example: --rounds 2
        """
        values = {k: v for k, v in vars(args).items() if k in cls.__dataclass_fields__ and v is not None}

        def integer(name: str, low: int, high: int, example: str) -> None:
            if name in values:
                value = values[name]
                if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                    flag = name.replace("_", "-")
                    raise ValueError(
                        f"--{flag}: {value!r} is not an integer in [{low}, {high}]; example: --{flag} {example}"
                    )

        integer("seed", 0, 2**32 - 1, "0")
        integer("rounds", 1, 10, "2")
        integer("items", 50, N_DIGITS, "300")
        integer("budget", 1, N_DIGITS, "100")
        integer("initial", 10, N_DIGITS, "100")
        integer("study_seeds", 0, 100, "10")
        initial, items = values.get("initial", cls.initial), values.get("items", cls.items)
        if initial >= items:
            raise ValueError(
                f"--initial: {initial} labelled items leave no pool in --items {items}; "
                f"give fewer, e.g. --initial {max(10, items // 5)}"
            )
        for name in ("out", "template"):
            if name in values:
                # relative to where the user runs the command, whatever folder the program runs from
                values[name] = Path(values[name]).expanduser().absolute()
        return cls(**values)


@dataclass
class Arm:
    """One installed copy of the template and what happened to it."""

    name: str
    strategy: str
    raw: object  # dl.Dataset
    ground_truth: object  # dl.Dataset
    pool: list = field(default_factory=list)  # raw items not labelled yet
    labelled: int = 0
    pipeline: object = None  # InstalledPipeline
    runner: object = None  # PipelineRunner
    rounds: list[RoundResult] = field(default_factory=list)
    last_compare: tuple | None = None  # (previous model, new model as stored, decision)


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
    node_runs: tuple = ()  # demo.pipeline_runner.NodeRun of every execution group, in order
    best_models: dict = field(default_factory=dict)  # arm -> Best Model variable at the end


def subset_filter(tag: str) -> dict:
    """DQL of the items tagged ``tag`` (the packaged filters for train/validation/test).

    Examples
    --------
    >>> subset_filter("test")["filter"]["$and"][0]
    {'hidden': False}
    """
    from nodes.common.defaults import load_subset_filter

    return load_subset_filter(tag)


class Steps:
    """One progress line per step: ``[step n] what ... done (seconds)``."""

    def __init__(self, echo: Callable[[str], None]):
        self.echo = echo
        self.n = 0
        self.started = time.perf_counter()

    def start(self, text: str) -> float:
        self.n += 1
        self.echo(f"[{self.n:>2}] {text}")
        return time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def _bar(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=f"     {desc}", unit="item", leave=False, disable=not enabled, file=sys.stderr)


# -------------------------------------------------------------------------------------------- the run
def run_demo(options: DemoOptions, echo: Callable[[str], None] = print, progress_bars: bool = True) -> DemoResult:
    """Run the whole demo and write ``report.md``, ``pr_curves.png``, ``learning_curve.png``.

    Edge function: starts ``LocalPlatform`` (127.0.0.1 only) and drives it with dtlpy; the
    multi-seed study runs meanwhile in a second process (no platform).

    Examples
    --------
    >>> result = run_demo(DemoOptions(items=300, rounds=1))   # doctest: +SKIP
    >>> result.decision in ("update model", "discard")        # doctest: +SKIP
    True
    """
    from demo.study import start_study
    from emulator import LocalPlatform

    options.out.mkdir(parents=True, exist_ok=True)
    private = _private_paths()
    study = (
        start_study(options.study_seeds, options.rounds, options.budget, options.initial)
        if options.study_seeds
        else None
    )
    # fixed ids (seeded prefix + a counter) and an in-order upload make the run repeatable:
    # Model Data Split routes each item by a hash of its id
    platform = LocalPlatform(id_prefix=f"{options.seed % 2**32:08x}")
    try:
        platform.start()
        session = _Session(options, platform, echo, progress_bars, study)
        result = session.run()
        if options.keep_running:
            _keep_running(platform, echo)
        return result
    finally:
        platform.stop()
        if study is not None:
            study[1].shutdown(wait=False, cancel_futures=True)
        private.cleanup()


class _Session:
    """One demo run on a started platform (edge: every method talks to the platform)."""

    def __init__(self, options: DemoOptions, platform, echo: Callable[[str], None], progress_bars: bool, study):
        from main import ServiceRunner

        self.options, self.platform, self.echo, self.progress_bars = options, platform, echo, progress_bars
        self.study = study
        self.steps = Steps(echo)
        self.cpu_started = time.process_time()
        self.runner = ServiceRunner()
        self.image_cache: dict[str, np.ndarray] = {}
        self.adapters: dict[str, object] = {}
        self.predicted: set[tuple[str, str]] = set()  # (model id, item id) the Predict node ran on
        self.evaluated: set[tuple[str, str]] = set()  # (model id, dataset id) an Evaluate node ran on
        self.scores: dict[str, _Evaluation] = {}  # model id -> score on the fixed test subset

    # ---------------------------------------------------------------- the story
    def run(self) -> DemoResult:
        import dtlpy as dl

        options = self.options
        data = load_digits_images(options.items, seed=options.seed)
        plan = plan_pools(
            options.items, seed=options.seed, test_fraction=options.test_fraction, initial_size=options.initial
        )
        self.truth = dict(zip(data.names, data.labels, strict=True))
        self.images = dict(zip(data.names, data.images, strict=True))
        self.test_names = [data.names[i] for i in plan.test]
        self.steps.start(f"local platform on {self.platform.url} (dtlpy {dl.__version__})")
        arms = self._create_datasets(data, plan)
        base = self._train_base(arms[MARGIN].ground_truth)
        template = load_template(options.template)
        t = self.steps.start(f"installing the pipeline template {self._template_name()} once per arm")
        for arm in arms.values():
            self._install(arm, template, base)
        _done(self.echo, t, ", ".join(f"{a.pipeline.name!r} ({a.pipeline.entity.status})" for a in arms.values()))
        base_score = self.scores[base.id]
        for arm in arms.values():
            arm.rounds.append(RoundResult(0, arm.labelled, base_score.accuracy, base_score.mean_ap, base.name, "base"))
        for round_no in range(1, options.rounds + 1):
            for arm in arms.values():
                self._run_round(arm, round_no)
        return self._write_outputs(arms)

    def _template_name(self) -> str:
        path = Path(self.options.template).resolve()
        try:
            return str(path.relative_to(TEMPLATE_PATH.parent.parent))
        except ValueError:
            return str(path)

    def _create_datasets(self, data, plan) -> dict[str, Arm]:
        import dtlpy as dl

        from emulator import make_labels

        project = dl.projects.create(project_name="active-learning-demo")
        self.project = project
        labels = make_labels(list(LABELS))
        raw = project.datasets.create(dataset_name="digits-raw-margin", labels=labels)
        ground_truth = project.datasets.create(
            dataset_name="digits-ground-truth-margin", labels=make_labels(list(LABELS))
        )
        pool_names = [data.names[i] for i in plan.pool]
        held = [data.names[i] for i in plan.test] + [data.names[i] for i in plan.initial]
        t = self.steps.start(
            f"uploading {len(pool_names)} unlabelled digits to the Raw Dataset and {len(held)} labelled ones "
            "(test subset + initial pool) to the Ground Truth Dataset"
        )
        pool_items = _upload_items(raw, pool_names, self.images, self.progress_bars)
        held_items = _upload_items(ground_truth, held, self.images, self.progress_bars)
        _done(self.echo, t)

        t = self.steps.start("ground truth and subset tags of the test subset and the initial pool")
        from demo.pipeline_runner import Annotator

        annotator = Annotator(self.truth)
        with _bar(len(held_items), "label", self.progress_bars) as bar:
            for item in held_items:
                annotator.label(item)
                bar.update(1)
        by_name = {item.name: item for item in held_items}
        initial = [data.names[i] for i in plan.initial]
        n_train = int(round(0.8 * len(initial)))
        self.initial_train = n_train
        _tag(ground_truth, [by_name[n].id for n in self.test_names], {"test": True})
        _tag(ground_truth, [by_name[n].id for n in initial[:n_train]], {"train": True})
        _tag(ground_truth, [by_name[n].id for n in initial[n_train:]], {"validation": True})
        _done(self.echo, t, f"test: {len(self.test_names)}, train: {n_train}, validation: {len(initial) - n_train}")

        t = self.steps.start("cloning both datasets for the random-selection baseline (dataset.clone)")
        raw_random = raw.clone(clone_name="digits-raw-random")
        ground_truth_random = ground_truth.clone(clone_name="digits-ground-truth-random")
        random_pool = _list_items(raw_random)
        _done(self.echo, t, f"{len(random_pool)} + {len(_list_items(ground_truth_random))} items")
        arms = {
            MARGIN: Arm(MARGIN, ARMS[MARGIN][0], raw, ground_truth, pool=list(pool_items), labelled=len(initial)),
            RANDOM: Arm(
                RANDOM, ARMS[RANDOM][0], raw_random, ground_truth_random, pool=random_pool, labelled=len(initial)
            ),
        }
        return arms

    def _train_base(self, dataset):
        t = self.steps.start(f"training the base model on the initial pool ({self.initial_train} train items)")
        base = self.platform.create_model(
            self.project,
            name="digits-base",
            dataset=dataset,
            labels=list(LABELS),
            configuration=copy.deepcopy(MODEL_CONFIGURATION),
            status="created",
            inputType="image",
            outputType="class",
            metadata={
                "system": {"subsets": {"train": subset_filter("train"), "validation": subset_filter("validation")}}
            },
        )
        base = self._train(base)
        score = self._score(base)
        _done(self.echo, t, f"test accuracy {score.accuracy:.3f}, mAP {score.mean_ap:.3f}")
        return base

    def _install(self, arm: Arm, template: dict, base) -> None:
        from demo.pipeline_runner import Annotator, InstalledPipeline, PipelineRunner

        body = fill_variables(
            template,
            {"Raw Dataset": arm.raw.id, "Best Model": base.id, "Ground Truth Dataset": arm.ground_truth.id},
        )
        body["name"] = f"{template['name']} ({arm.name})"
        gate_changes = ARMS[arm.name][1]
        if gate_changes:
            body = set_node_config(body, "Uncertainty Gate", gate_changes)
        arm.pipeline = InstalledPipeline.install(self.project, body)
        arm.runner = PipelineRunner(
            arm.pipeline,
            self.runner,
            ml=lambda function, node, payloads, arm=arm: self._ml(arm, function, node, payloads),
            annotator=Annotator(self.truth),
            echo=self.echo,
            progress_bars=self.progress_bars,
        )

    def _run_round(self, arm: Arm, round_no: int) -> None:
        import dtlpy as dl

        t = self.steps.start(
            f"round {round_no}, {arm.name}: item branch of {arm.pipeline.name!r} on {len(arm.pool)} Raw Dataset items"
        )
        results = arm.runner.run_branch(
            "Raw Data",
            [{"item": item} for item in arm.pool],
            between={("Predict", "Uncertainty Gate"): lambda carried: self._select(arm, carried, round_no)},
        )
        labelled = {o.values["item"].id for o in results.get("Labeling", [])}
        arm.pool = [item for item in arm.pool if item.id not in labelled]
        arm.labelled += len(labelled)
        _done(self.echo, t, f"{len(labelled)} items labelled; {arm.labelled} labelled in all")

        t = self.steps.start(f"round {round_no}, {arm.name}: model branch (the weekly schedule, run now)")
        previous = dl.models.get(model_id=arm.pipeline.variable("Best Model"))
        results = arm.runner.run_branch("Create New Model", [{}])
        new_model = dl.models.get(model_id=results["Create New Model"][0].values["new_model"].id)
        decision = results["Compare Models"][0].action
        kept = arm.pipeline.variable("Best Model")
        score = self._score(new_model)
        arm.rounds.append(RoundResult(round_no, arm.labelled, score.accuracy, score.mean_ap, new_model.name, decision))
        arm.last_compare = (previous, new_model, decision)
        _done(
            self.echo,
            t,
            f"{new_model.name}: test accuracy {score.accuracy:.3f}, mAP {score.mean_ap:.3f} -> {decision}; "
            f"Best Model is now {'the new model' if kept == new_model.id else 'unchanged'}",
        )

    # ---------------------------------------------------------------- node executors
    def _select(self, arm: Arm, carried: list[dict], round_no: int) -> list[dict]:
        """Select for Labeling on the Predict -> Uncertainty Gate connection: ``budget`` items go on."""
        import dtlpy as dl

        from demo.pipeline_runner import NodeRun, RecordingProgress

        started = time.perf_counter()
        model = dl.models.get(model_id=arm.pipeline.variable("Best Model"))
        config = {"budget": self.options.budget, "strategy": arm.strategy, "seed": self.options.seed * 1000 + round_no}
        context = dl.Context(execution_dict={"id": uuid.uuid4().hex[:24]}, project=self.project)
        chosen = self.runner.select_items(
            model=model, dataset=arm.raw, selection_config=config, progress=RecordingProgress(), context=context
        )
        ids = {item.id for item in chosen}
        passed = [payload for payload in carried if payload["item"].id in ids]
        run = NodeRun(arm.pipeline.name, "Select for Labeling", "custom", "select_items", len(carried))
        run.actions = {f"{arm.strategy}, budget {self.options.budget}: chosen": len(passed)}
        run.seconds = time.perf_counter() - started
        arm.runner.history.append(run)
        self.echo(f"     {run.line()}")
        return passed

    def _ml(self, arm: Arm, function: str, node: Mapping, payloads: list[dict]) -> list:
        import dtlpy as dl

        from demo.pipeline_runner import Output

        if function == "predict":
            model = dl.models.get(model_id=arm.pipeline.variable(node["metadata"]["variableModel"]))
            items = [p["item"] for p in payloads]
            todo = [item for item in items if (model.id, item.id) not in self.predicted]
            if todo:
                _remove_stale_predictions(arm.raw, todo, model.id)
                adapter = self._adapter(model)
                with contextlib.redirect_stdout(io.StringIO()):  # dtlpy's own 'predicting' bar
                    adapter.predict_items(todo, batch_size=len(todo))
                self.predicted.update((model.id, item.id) for item in todo)
            return [Output({"item": item, "annotations": []}) for item in items]
        if function == "train":
            return [Output({"model": self._train(p["model"])}) for p in payloads]
        if function == "evaluate":
            from demo.adapter import list_items

            outputs = []
            for p in payloads:
                model, dataset = p["model"], p["dataset"]
                adapter = self._adapter(model)
                with contextlib.redirect_stdout(io.StringIO()):  # dtlpy's own 'predicting' bar
                    if (model.id, dataset.id) not in self.evaluated:
                        filters = dl.Filters(custom_filter=copy.deepcopy(p["filters"]))
                        adapter.evaluate_model(model=model, dataset=dataset, filters=filters)
                        self.predicted.update((model.id, item.id) for item in list_items(dataset, p["filters"]))
                    else:
                        # evaluated here before: predict only on the test items that joined since
                        # (Data Split routes some labelled items to test); the others carry its predictions
                        todo = [i for i in list_items(dataset, p["filters"]) if (model.id, i.id) not in self.predicted]
                        if todo:
                            adapter.predict_items(todo, batch_size=len(todo))
                            self.predicted.update((model.id, item.id) for item in todo)
                self.evaluated.add((model.id, dataset.id))
                self._score(model)
                outputs.append(Output({"model": model, "dataset": dataset}))
            return outputs
        raise ValueError(f"ml node {node['name']!r}: function {function!r} is not predict, train or evaluate")

    def _adapter(self, model):
        from demo.adapter import DigitsAdapter

        if model.id not in self.adapters:
            self.adapters[model.id] = DigitsAdapter(
                model_entity=model, image_cache=self.image_cache, replace_predictions=False
            )
        return self.adapters[model.id]

    def _train(self, model):
        import dtlpy as dl

        from demo.adapter import DigitsAdapter

        trained = DigitsAdapter(image_cache=self.image_cache).train_model(model)
        return dl.models.get(model_id=trained.id)

    def _score(self, model) -> _Evaluation:
        """The model's top-3 predictions on the fixed test subset, scored in memory (``nodes.metrics``)."""
        if model.id not in self.scores:
            self.scores[model.id] = _score_top_k(self._adapter(model), self.test_names, self.images, self.truth)
        return self.scores[model.id]

    # ---------------------------------------------------------------- outputs
    def _write_outputs(self, arms: dict[str, Arm]) -> DemoResult:
        options, echo, out = self.options, self.echo, self.options.out
        study = None
        if self.study is not None:
            t = self.steps.start(f"multi-seed study ({options.study_seeds} seeds, in memory, second process)")
            study = self.study[0].result()
            _done(echo, t, f"{study.seconds:.1f} s CPU in its own process")
        t = self.steps.start(f"writing {out / 'report.md'}, pr_curves.png and learning_curve.png")
        previous, new_model, decision = arms[MARGIN].last_compare
        comparison = (new_model.metadata.get("user", {}).get("activeLearning", {}) or {}).get("comparison", {})
        previous_ap, new_ap = _per_label_ap(comparison, self.scores[previous.id], self.scores[new_model.id])
        rows = label_rows(previous_ap, new_ap)
        votes = tuple(
            f"`{v['name']}`: previous {v['previous']:.3f}, new {v['new']:.3f} -> {'won' if v['won'] else 'lost'}"
            for v in comparison.get("votes", [])
            if v.get("previous") is not None and v.get("new") is not None
        )
        chosen_labels = labels_to_plot(rows, n=3)
        previous_key, new_key = "previous", "new"  # the long names go in the title
        pr_path = plot_pr_curves(
            {
                previous_key: _curves(self.scores[previous.id], chosen_labels),
                new_key: _curves(self.scores[new_model.id], chosen_labels),
            },
            {previous_key: previous_ap, new_key: new_ap},
            chosen_labels,
            out / "pr_curves.png",
            title=(
                f"Test-subset PR curves from the top-3 class predictions — decision: {decision}\n"
                f"previous: {previous.name}   new: {new_model.name}"
            ),
        )
        runs = {name: tuple(arm.rounds) for name, arm in arms.items()}
        lc_path = plot_learning_curve(runs, study, out / "learning_curve.png", seed=options.seed)
        elapsed = self.steps.elapsed()
        node_runs = tuple(run for arm in arms.values() for run in arm.runner.history)
        summary = DemoSummary(
            previous_model=previous.name,
            new_model=new_model.name,
            decision=decision,
            rows=rows,
            previous_map=float(np.nanmean([r.previous_ap for r in rows])),
            new_map=float(np.nanmean([r.new_ap for r in rows])),
            runs=runs,
            study=study,
            template=self._template_name(),
            node_lines=tuple(f"{run.pipeline}: {run.line()}" for run in node_runs),
            budget=options.budget,
            n_items=options.items,
            n_test=len(self.test_names),
            seed=options.seed,
            elapsed_s=elapsed,
            comparison_votes=votes,
        )
        report_path = out / "report.md"
        report_path.write_text(render_markdown(summary), encoding="utf-8")
        _done(echo, t)

        echo("")
        echo(
            f"Template run: {self._template_name()} (installed as {', '.join(repr(a.pipeline.name) for a in arms.values())})"
        )
        echo(
            f"This run (seed {options.seed}, {options.budget} labels per round), fixed test subset of {len(self.test_names)}:"
        )
        for i in range(len(arms[MARGIN].rounds)):
            cells = "   ".join(
                f"{name} acc {arm.rounds[i].accuracy:.3f} mAP {arm.rounds[i].mean_ap:.3f}"
                for name, arm in arms.items()
                if i < len(arm.rounds)
            )
            echo(f"  round {i}  labelled {arms[MARGIN].rounds[i].labelled:>5}   {cells}")
        echo(uncertainty_verdict(runs, study))
        echo("")
        echo(f"Last round ({MARGIN}): previous {previous.name!r} vs new {new_model.name!r}")
        echo(format_table(summary))
        echo("")
        echo(f"report: {report_path}   plots: {pr_path}, {lc_path}")
        cpu = time.process_time() - self.cpu_started
        verdict = "met" if elapsed < DEMO_TARGET_SECONDS else "MISSED"
        echo(
            f"elapsed: {elapsed:.1f} s wall, {cpu:.1f} s CPU "
            f"(target: under {DEMO_TARGET_SECONDS} s on 2 cores: {verdict})"
        )
        counts = dict(self.platform.request_counts)
        best = {name: arm.pipeline.variable("Best Model") for name, arm in arms.items()}
        return DemoResult(decision, summary, report_path, pr_path, lc_path, elapsed, counts, node_runs, best)


def _per_label_ap(comparison: dict, previous_eval, new_eval) -> tuple[dict, dict]:
    """Per-label AP of both models from the Compare Models report stored on the new model.

    Falls back to the demo's own scoring of the same predictions (``nodes.metrics``) if the
    report carries no per-label section.
    """
    per_label = (comparison.get("details") or {}).get("perLabelAP", {}).get("class")
    if per_label:
        labels = per_label["labels"]
        return (
            dict(zip(labels, per_label["previous_ap"], strict=True)),
            dict(zip(labels, per_label["new_ap"], strict=True)),
        )
    return previous_eval.per_label["ap"].to_dict(), new_eval.per_label["ap"].to_dict()


# -------------------------------------------------------------------------------------------- helpers (edge)
@dataclass
class _PrivatePaths:
    """dtlpy's DATALOOP_PATH and Python's temp folder, pointed into one temporary folder."""

    root: str
    saved_tempdir: str | None
    saved_dataloop_path: str | None
    owned: bool
    set_mplconfigdir: bool = False

    def cleanup(self) -> None:
        service_defaults = importlib.import_module("dtlpy.services.service_defaults")
        tempfile.tempdir = self.saved_tempdir
        if self.set_mplconfigdir:
            os.environ.pop("MPLCONFIGDIR", None)
        if self.saved_dataloop_path is not None:
            service_defaults.DATALOOP_PATH = self.saved_dataloop_path
        if self.owned:
            shutil.rmtree(self.root, ignore_errors=True)


def _private_paths() -> _PrivatePaths:
    """Make dtlpy's model downloads and temp files land in a temporary DATALOOP_PATH.

    When ``demo.isolation`` ran before dtlpy was imported, that folder is already in place;
    otherwise a fresh one is made for this run (dtlpy's import-time files then went to its
    default folder, which only the caller could have prevented).
    """
    from demo.isolation import ENV_MARKER

    service_defaults = importlib.import_module("dtlpy.services.service_defaults")

    isolated = os.environ.get(ENV_MARKER)
    if isolated and service_defaults.DATALOOP_PATH == isolated:
        root, owned, saved = isolated, False, None
    else:
        root, owned, saved = tempfile.mkdtemp(prefix="active-learning-demo-"), True, service_defaults.DATALOOP_PATH
        service_defaults.DATALOOP_PATH = root
        logger.warning("dtlpy was imported before the demo isolated DATALOOP_PATH; using %s for model files", root)
    saved_tempdir = tempfile.tempdir
    private_tmp = os.path.join(root, "tmp")
    os.makedirs(private_tmp, exist_ok=True)
    tempfile.tempdir = private_tmp
    set_mpl = "MPLCONFIGDIR" not in os.environ  # matplotlib's font cache would go to ~/.cache otherwise
    if set_mpl:
        os.environ["MPLCONFIGDIR"] = os.path.join(root, "matplotlib")
    return _PrivatePaths(root, saved_tempdir, saved, owned, set_mpl)


def _done(echo: Callable[[str], None], started: float, note: str = "") -> None:
    took = time.perf_counter() - started
    echo(f"     done in {took:.1f} s" + (f": {note}" if note else ""))


def _upload_items(dataset, names: list[str], images: Mapping[str, np.ndarray], progress_bars: bool) -> list:
    """Upload each image as a PNG item (in-memory buffer), one at a time so ids follow the order
    (dtlpy's batch upload costs the same CPU per item); returns the items in order."""
    uploaded = []
    with _bar(len(names), f"upload to {dataset.name}", progress_bars) as bar:
        for name in names:
            buffer = io.BytesIO(encode_png(images[name]))
            buffer.name = name
            item = dataset.items.upload(local_path=buffer)
            if item is None or not hasattr(item, "id"):
                raise RuntimeError(f"upload of {name} failed; see dtlpy's log above")
            uploaded.append(item)
            bar.update(1)
    return uploaded


def _list_items(dataset) -> list:
    """Every item of ``dataset`` in id order (paged by 1,000)."""
    import dtlpy as dl

    filters = dl.Filters()
    filters.page_size = 1000
    return [item for page in dataset.items.list(filters=filters) for item in page]


def _remove_stale_predictions(dataset, items: list, model_id: str) -> None:
    """Delete other models' predictions on ``items`` before the Best Model predicts on them.

    When Compare Models replaces the Best Model, the pool still carries the replaced model's
    predictions; the Uncertainty Gate without ``modelId`` refuses an item with predictions of two
    models, and they are stale anyway. One bulk delete request per 1,000 items.
    """
    import dtlpy as dl

    ids = [item.id for item in items]
    for start in range(0, len(ids), 1000):
        filters = dl.Filters(resource=dl.FiltersResource.ANNOTATION)
        filters.add(field="itemId", values=ids[start : start + 1000], operator=dl.FiltersOperations.IN)
        filters.add(field="metadata.user.model", values=True, operator=dl.FiltersOperations.EXISTS)
        filters.add(field="metadata.user.model.model_id", values=model_id, operator=dl.FiltersOperations.NOT_EQUAL)
        dataset.annotations.delete(filters=filters)


def _tag(dataset, item_ids: list[str], tags: dict) -> None:
    """Bulk-set system tags on ``item_ids`` (one query-with-update request per 1,000 ids)."""
    import dtlpy as dl

    for start in range(0, len(item_ids), 1000):
        filters = dl.Filters()
        filters.add(field="id", values=item_ids[start : start + 1000], operator=dl.FiltersOperations.IN)
        dataset.items.update(filters=filters, system_update_values={"tags": tags}, system_metadata=True)


@dataclass(frozen=True)
class _Evaluation:
    accuracy: float
    mean_ap: float
    per_label: pd.DataFrame
    evaluation: object


def top_k_records(probabilities: np.ndarray, item_ids: list[str], labels: list[str], k: int = 3) -> pd.DataFrame:
    """The prediction records a model adapter uploads: the ``k`` most likely labels per item.

    Examples
    --------
    >>> top_k_records(np.array([[0.7, 0.2, 0.1]]), ["i1"], ["a", "b", "c"], k=2)["label"].tolist()
    ['a', 'b']
    """
    from demo.adapter import top_k_indices

    rows = [
        (item_id, labels[j], float(row[j]))
        for item_id, row in zip(item_ids, probabilities, strict=True)
        for j in top_k_indices(row, k)
    ]
    return pd.DataFrame(rows, columns=["item_id", "label", "confidence"])


def _score_top_k(adapter, names: list[str], images: Mapping[str, np.ndarray], truth: Mapping[str, str]) -> _Evaluation:
    """Accuracy (top-1) and AP per label (``nodes.metrics``, every point, as Compare Models) of the
    model's top-3 predictions on the fixed test subset, computed in memory from the same adapter."""
    from demo.adapter import TOP_K
    from nodes import metrics

    probabilities = adapter.predict_proba([images[n] for n in names])
    labels = list(adapter.model_entity.labels)
    predictions = top_k_records(probabilities, names, labels, TOP_K)
    ground_truth = pd.DataFrame({"item_id": names, "label": [truth[n] for n in names]})
    evaluation = metrics.evaluate_classification(ground_truth, predictions, interpolation="every_point")
    accuracy = float(
        np.mean([labels[int(j)] == truth[n] for n, j in zip(names, probabilities.argmax(axis=1), strict=True)])
    )
    mean_ap = evaluation.mean_ap
    return _Evaluation(accuracy, float(mean_ap) if not math.isnan(mean_ap) else 0.0, evaluation.per_label, evaluation)


def _curves(evaluation: _Evaluation, labels: list[str]) -> dict:
    out = {}
    for label in labels:
        try:
            curve = evaluation.evaluation.curve(label)
        except ValueError:
            continue
        out[label] = (np.r_[0.0, curve.recall], np.r_[curve.precision[:1], curve.precision])
    return out


def _keep_running(platform, echo: Callable[[str], None]) -> None:
    """Leave the platform up and say how to point dtlpy and dlp at it, until Ctrl-C.

    The connection goes into a ``DATALOOP_PATH`` folder of its own (removed on exit): the user's
    ``~/.dataloop`` and their real login are neither read nor changed.
    """
    from emulator.serve import connection_lines, write_connection

    folder = tempfile.mkdtemp(prefix="active-learning-demo-connection-")
    atexit.register(shutil.rmtree, folder, True)
    write_connection(folder, platform.url, platform.alias, platform.token)
    echo("")
    echo("The local platform keeps running (Ctrl-C to stop). In another shell (your ~/.dataloop is untouched):")
    for line in connection_lines(folder, "active-learning-demo"):
        if not line.startswith("dlp app publish"):
            echo(f"    {line}")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        echo("stopping the local platform")
