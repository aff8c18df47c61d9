"""The demo's edge: one active-learning run on the embedded local platform.

Everything here talks to the platform through the real dtlpy client, and the three nodes
are called exactly as a pipeline calls them: ``main.ServiceRunner().data_split(item=...,
progress=..., context=...)``, ``.create_new_model(...)``, ``.compare_models(...)``, each with a
pipeline context from ``LocalPlatform.make_context`` and a recording progress object.

Design (so that models are compared fairly):

- A **fixed test subset** (20% of the items) is tagged ``test`` once, before any model
  exists, and never routed again; every model is evaluated on it.
- The **initial labelled pool** (100 items) is tagged ``train``/``validation`` (80/20);
  the base model trains on ``train``.
- The **unlabelled pool** has no annotations on the platform: its ground truth lives only
  in the demo's memory until an item is "labelled" (revealed as a classification
  annotation), as a Labeling/Review task would do.
- Two strategies run side by side on the same dataset with the same label budget per
  round: **uncertainty** (margin sampling, ``nodes/uncertainty.py``) routes newly labelled
  items with a Data Split config whose groups are ``train``/``validation`` (the packaged
  subset filters); **random** uses groups ``random_train``/``random_validation`` and its
  own subset DQL, so the two never see each other's labels.
"""

from __future__ import annotations

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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from demo.data import LABELS, N_DIGITS, encode_png, load_digits_images, plan_pools
from demo.report import (
    DemoSummary,
    StrategyCurve,
    format_table,
    label_rows,
    labels_to_plot,
    plot_learning_curve,
    plot_pr_curves,
    render_markdown,
    uncertainty_verdict,
)

logger = logging.getLogger(__name__)

UNCERTAINTY, RANDOM = "uncertainty", "random"
STRATEGY_GROUPS = {UNCERTAINTY: ("train", "validation"), RANDOM: ("random_train", "random_validation")}
MODEL_CONFIGURATION = {"C": 1.0, "max_iter": 300, "batch_size": 256}
THREADS = 8


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
    method: str = "margin"
    test_fraction: float = 0.2

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
                    raise ValueError(
                        f"--{name}: {value!r} is not an integer in [{low}, {high}]; example: --{name} {example}"
                    )

        integer("seed", 0, 2**32 - 1, "0")
        integer("rounds", 1, 10, "2")
        integer("items", 50, N_DIGITS, "300")
        integer("budget", 1, N_DIGITS, "100")
        integer("initial", 10, N_DIGITS, "100")
        if values.get("method", "margin") not in ("margin", "entropy", "least_confidence"):
            raise ValueError(
                f"--method: {values['method']!r} is not margin, entropy or least_confidence; example: --method margin"
            )
        if "out" in values:
            values["out"] = Path(values["out"])
        return cls(**values)


@dataclass
class Arm:
    """The state of one selection strategy."""

    name: str
    model: object  # dl.Model currently kept
    labelled: list[str] = field(default_factory=list)
    unlabelled: list[str] = field(default_factory=list)
    labelled_counts: list[int] = field(default_factory=list)
    mean_ap: list[float] = field(default_factory=list)


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


def split_node_config(strategy: str) -> dict:
    """The Data Split node config of a strategy (as the panel would save it).

    Examples
    --------
    >>> [g["name"] for g in split_node_config("random")["groups"]]
    ['random_train', 'random_validation']
    """
    train, validation = STRATEGY_GROUPS[strategy]
    return {
        "name": "Model Data Split",
        "distributeEqually": False,
        "groups": [
            {"id": f"{strategy}-train", "name": train, "distribution": 80},
            {"id": f"{strategy}-validation", "name": validation, "distribution": 20},
        ],
        "itemMetadata": True,
        "validation": {"valid": True, "errors": []},
    }


def subset_filter(tag: str) -> dict:
    """DQL of the items tagged ``tag`` (the packaged filters for train/validation/test).

    Examples
    --------
    >>> subset_filter("random_train")["filter"]["$and"][1]
    {'metadata.system.tags.random_train': True}
    """
    from nodes.common.defaults import SUBSET_NAMES, load_subset_filter

    if tag in SUBSET_NAMES:
        return load_subset_filter(tag)
    return {"filter": {"$and": [{"hidden": False}, {f"metadata.system.tags.{tag}": True}, {"type": "file"}]}}


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

    Edge function: starts ``LocalPlatform`` (127.0.0.1 only) and drives it with dtlpy.

    Examples
    --------
    >>> result = run_demo(DemoOptions(items=300, rounds=1))   # doctest: +SKIP
    >>> result.decision in ("update model", "discard")        # doctest: +SKIP
    True
    """
    from emulator import LocalPlatform

    options.out.mkdir(parents=True, exist_ok=True)
    private = _private_paths()
    # fixed ids (seeded prefix + a counter) and an in-order upload make the run repeatable:
    # Model Data Split routes each item by a hash of its id
    platform = LocalPlatform(id_prefix=f"{options.seed % 2**32:08x}")
    try:
        platform.start()
        session = _Session(options, platform, echo, progress_bars)
        result = session.run()
        if options.keep_running:
            _keep_running(platform, echo)
        return result
    finally:
        platform.stop()
        private.cleanup()


class _Session:
    """One demo run on a started platform (edge: every method talks to the platform)."""

    def __init__(self, options: DemoOptions, platform, echo: Callable[[str], None], progress_bars: bool):
        from main import ServiceRunner

        self.options, self.platform, self.echo, self.progress_bars = options, platform, echo, progress_bars
        self.steps = Steps(echo)
        self.cpu_started = time.process_time()
        self.runner = ServiceRunner()
        self.image_cache: dict[str, np.ndarray] = {}
        self.evaluations: dict[str, _Evaluation] = {}
        self.revealed: set[str] = set()
        self.routed_once: set[str] = set()
        self.decisions: list[tuple[int, str, str, str]] = []
        self.last: tuple | None = None  # (previous, new model as stored, decision) of the last uncertainty round

    # ---------------------------------------------------------------- the story
    def run(self) -> DemoResult:
        import dtlpy as dl

        options = self.options
        data = load_digits_images(options.items, seed=options.seed)
        plan = plan_pools(
            options.items, seed=options.seed, test_fraction=options.test_fraction, initial_size=options.initial
        )
        self.steps.start(f"local platform on {self.platform.url} (dtlpy {dl.__version__})")
        self._create_dataset(data, plan)
        base = self._train_base()
        arms = {
            name: Arm(
                name=name,
                model=base,
                labelled=list(self.initial_ids),
                unlabelled=list(self.pool_ids),
                labelled_counts=[len(self.initial_ids)],
                mean_ap=[self.evaluations[base.id].mean_ap],
            )
            for name in (UNCERTAINTY, RANDOM)
        }
        for round_no in range(1, options.rounds + 1):
            for arm in arms.values():
                self._run_round(arm, round_no)
        return self._write_outputs(arms)

    def _create_dataset(self, data, plan) -> None:
        import dtlpy as dl

        from emulator import make_labels

        project = dl.projects.create(project_name="active-learning-demo")
        self.project = project
        self.dataset = project.datasets.create(dataset_name="digits", labels=make_labels(list(LABELS)))
        t = self.steps.start(f"uploading {self.options.items} digit images as PNG items")
        items = _upload_items(self.dataset, data, self.progress_bars)
        ids = [items[name].id for name in data.names]
        self.by_id = {item.id: item for item in items.values()}
        self.truth = {ids[i]: data.labels[i] for i in range(len(ids))}  # hidden until revealed
        _done(self.echo, t)

        self.test_ids = [ids[i] for i in plan.test]
        self.initial_ids = [ids[i] for i in plan.initial]
        self.pool_ids = [ids[i] for i in plan.pool]
        t = self.steps.start(
            f"ground truth for the test subset ({len(self.test_ids)}) and the initial pool "
            f"({len(self.initial_ids)}); {len(self.pool_ids)} items stay unlabelled"
        )
        self._label(self.test_ids + self.initial_ids)
        _tag(self.dataset, self.test_ids, {"test": True})
        n_train = int(round(0.8 * len(self.initial_ids)))
        _tag(self.dataset, self.initial_ids[:n_train], {"train": True, "random_train": True})
        _tag(self.dataset, self.initial_ids[n_train:], {"validation": True, "random_validation": True})
        self.n_initial_train = n_train
        _done(
            self.echo,
            t,
            f"tagged test: {len(self.test_ids)}, train: {n_train}, validation: {len(self.initial_ids) - n_train}",
        )

    def _train_base(self):
        t = self.steps.start(f"training the base model on the initial pool ({self.n_initial_train} train items)")
        base = self.platform.create_model(
            self.project,
            name="digits-base",
            dataset=self.dataset,
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
        _done(self.echo, t)
        t = self.steps.start(f"evaluating the base model on the test subset ({len(self.test_ids)} items)")
        self._evaluate(base)
        _done(self.echo, t, f"mAP {self.evaluations[base.id].mean_ap:.3f}")
        return base

    def _run_round(self, arm: Arm, round_no: int) -> None:
        budget = min(self.options.budget, len(arm.unlabelled))
        if budget == 0:
            self.echo(f"     round {round_no} {arm.name}: no unlabelled items left")
            return
        prefix = f"round {round_no}, {arm.name}"
        t = self.steps.start(f"{prefix}: selecting {budget} items to label")
        picked = self._select(arm, budget, round_no)
        self._label(picked)
        _done(self.echo, t, f"labelled {len(picked)} (Labeling/Review simulated)")

        t = self.steps.start(f"{prefix}: Model Data Split on the {len(picked)} new items")
        routed = self._split(arm, picked, round_no)
        _done(self.echo, t, ", ".join(f"{k}: {v}" for k, v in sorted(routed.items())))

        t = self.steps.start(f"{prefix}: Create New Model from {arm.model.name!r}")
        new_model = self._create_new_model(arm, round_no)
        _done(self.echo, t, f"{new_model.name} ({new_model.id})")

        t = self.steps.start(f"{prefix}: training {new_model.name} on its train subset")
        new_model = self._train(new_model)
        _done(self.echo, t)

        t = self.steps.start(f"{prefix}: evaluating both models on the test subset")
        for model in (arm.model, new_model):
            self._evaluate(model)
        previous_ap, new_ap = self.evaluations[arm.model.id].mean_ap, self.evaluations[new_model.id].mean_ap
        _done(self.echo, t, f"mAP previous {previous_ap:.3f}, new {new_ap:.3f}")

        t = self.steps.start(f"{prefix}: Compare Models (default compare config)")
        decision = self._compare(arm, new_model, round_no)
        _done(self.echo, t, f"-> {decision}")

    # ---------------------------------------------------------------- steps
    def _select(self, arm: Arm, budget: int, round_no: int) -> list[str]:
        from demo.adapter import DigitsAdapter
        from nodes.select_for_labeling.scores import select_most_uncertain, select_random

        if arm.name == UNCERTAINTY:
            adapter = DigitsAdapter(model_entity=arm.model, image_cache=self.image_cache)
            images = _images(adapter, [self.by_id[i] for i in arm.unlabelled], self.progress_bars)
            chosen = select_most_uncertain(adapter.predict_proba(images), budget, self.options.method)
        else:
            chosen = select_random(len(arm.unlabelled), budget, seed=self.options.seed * 1000 + round_no)
        picked = [arm.unlabelled[i] for i in chosen]
        picked_set = set(picked)
        arm.unlabelled = [i for i in arm.unlabelled if i not in picked_set]
        arm.labelled += picked
        return picked

    def _label(self, item_ids: list[str]) -> None:
        todo = [i for i in item_ids if i not in self.revealed]
        _reveal(self.dataset, [self.by_id[i] for i in todo], self.truth, self.progress_bars)
        self.revealed.update(todo)

    def _split(self, arm: Arm, picked: list[str], round_no: int) -> dict[str, int]:
        import dtlpy as dl

        from emulator import RecordingProgress

        context = self.platform.make_context(
            split_node_config(arm.name),
            execution_id=f"split-{arm.name}-{round_no}",
            project=self.project,
            node_name="data_split",
        )
        # items the other strategy already routed carry tags now: hand the node a fresh entity
        batch = [dl.items.get(item_id=i) if i in self.routed_once else self.by_id[i] for i in picked]
        routed = _split_items(self.runner, batch, context, RecordingProgress, self.progress_bars)
        self.routed_once.update(picked)
        return routed

    def _create_new_model(self, arm: Arm, round_no: int):
        from emulator import RecordingProgress

        train_tag, validation_tag = STRATEGY_GROUPS[arm.name]
        context = self.platform.make_context(
            {"createModel": "Create New Model", "modelName": f"digits-{arm.name}-round{round_no}"},
            execution_id=f"create-{arm.name}-{round_no}",
            project=self.project,
            node_name="create_new_model",
        )
        new_model, _ = self.runner.create_new_model(
            base_model=arm.model,
            dataset=self.dataset,
            train_subset=subset_filter(train_tag),
            validation_subset=subset_filter(validation_tag),
            model_configuration={},
            progress=RecordingProgress(),
            context=context,
        )
        return new_model

    def _train(self, model):
        import dtlpy as dl

        from demo.adapter import DigitsAdapter

        trained = DigitsAdapter(image_cache=self.image_cache).train_model(model)
        return dl.models.get(model_id=trained.id)

    def _evaluate(self, model) -> None:
        if model.id not in self.evaluations:  # each model is evaluated once
            self.evaluations[model.id] = _evaluate(model, self.dataset, self.test_ids, self.truth, self.image_cache)

    def _compare(self, arm: Arm, new_model, round_no: int) -> str:
        import dtlpy as dl

        from emulator import RecordingProgress
        from nodes.common.defaults import load_default_compare_config

        progress = RecordingProgress()
        context = self.platform.make_context(
            {"compareNode": "Compare Models"},
            execution_id=f"compare-{arm.name}-{round_no}",
            project=self.project,
            node_name="compare_models",
        )
        previous = arm.model
        winner = self.runner.compare_models(
            previous_model=previous,
            new_model=new_model,
            compare_config=load_default_compare_config(),
            dataset=self.dataset,
            progress=progress,
            context=context,
        )
        decision = progress.actions[-1]
        self.decisions.append((round_no, arm.name, new_model.name, decision))
        if arm.name == UNCERTAINTY:
            self.last = (previous, dl.models.get(model_id=new_model.id), decision)
        arm.model = winner if decision == "update model" else previous
        arm.labelled_counts.append(len(arm.labelled))
        arm.mean_ap.append(self.evaluations[new_model.id].mean_ap)
        return decision

    # ---------------------------------------------------------------- outputs
    def _write_outputs(self, arms: dict[str, Arm]) -> DemoResult:
        options, echo, out = self.options, self.echo, self.options.out
        t = self.steps.start(f"writing {out / 'report.md'}, pr_curves.png and learning_curve.png")
        previous, new_model, decision = self.last
        comparison = new_model.metadata["user"]["activeLearning"]["comparison"]
        previous_ap, new_ap = _per_label_ap(comparison, self.evaluations[previous.id], self.evaluations[new_model.id])
        rows = label_rows(previous_ap, new_ap)
        curves = tuple(StrategyCurve(a.name, tuple(a.labelled_counts), tuple(a.mean_ap)) for a in arms.values())
        votes = tuple(
            f"`{v['name']}`: previous {v['previous']:.3f}, new {v['new']:.3f} -> {'won' if v['won'] else 'lost'}"
            for v in comparison.get("votes", [])
            if v.get("previous") is not None and v.get("new") is not None
        )
        chosen_labels = labels_to_plot(rows, n=3)
        previous_key, new_key = f"previous: {previous.name}", f"new: {new_model.name}"
        pr_path = plot_pr_curves(
            {
                previous_key: _curves(self.evaluations[previous.id], chosen_labels),
                new_key: _curves(self.evaluations[new_model.id], chosen_labels),
            },
            {previous_key: previous_ap, new_key: new_ap},
            chosen_labels,
            out / "pr_curves.png",
            title=f"Test-subset PR curves, labels whose AP changed most — decision: {decision}",
        )
        lc_path = plot_learning_curve(curves, out / "learning_curve.png")
        elapsed = self.steps.elapsed()
        summary = DemoSummary(
            previous_model=previous.name,
            new_model=new_model.name,
            decision=decision,
            rows=rows,
            previous_map=float(np.nanmean([r.previous_ap for r in rows])),
            new_map=float(np.nanmean([r.new_ap for r in rows])),
            curves=curves,
            decisions=tuple(self.decisions),
            method=options.method,
            budget=options.budget,
            n_items=options.items,
            n_test=len(self.test_ids),
            elapsed_s=elapsed,
            comparison_votes=votes,
        )
        report_path = out / "report.md"
        report_path.write_text(render_markdown(summary), encoding="utf-8")
        _done(echo, t)

        echo("")
        echo(f"Uncertainty vs random (test mAP, {options.budget} labels per round):")
        for i, labelled in enumerate(arms[UNCERTAINTY].labelled_counts):
            cells = "   ".join(f"{a.name} {a.mean_ap[i]:.3f}" for a in arms.values() if i < len(a.mean_ap))
            echo(f"  round {i}  labelled {labelled:>5}   {cells}")
        echo(uncertainty_verdict(curves))
        echo("")
        echo(f"Last round ({UNCERTAINTY}): previous {previous.name!r} vs new {new_model.name!r}")
        echo(format_table(summary))
        echo("")
        echo(f"report: {report_path}   plots: {pr_path}, {lc_path}")
        cpu = time.process_time() - self.cpu_started
        echo(f"elapsed: {elapsed:.1f} s wall, {cpu:.1f} s CPU (target: under 120 s on 2 cores)")
        counts = dict(self.platform.request_counts)
        return DemoResult(decision, summary, report_path, pr_path, lc_path, elapsed, counts)


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


def _split_items(runner, items: list, context, progress_type, progress_bars: bool) -> dict[str, int]:
    """Model Data Split on each item, as the pipeline runs the node's executions (10 at a time).

    One context serves the batch: the node reads its config from ``context.node`` once,
    as every execution of that node would. Returns ``subset -> count`` from the actions.
    """

    def one(item) -> str:
        progress = progress_type()
        runner.data_split(item=item, progress=progress, context=context)
        return progress.actions[-1]

    routed: dict[str, int] = {}
    context.node  # noqa: B018 - resolve the lazy node once, before the threads share the context
    with _bar(len(items), "split", progress_bars) as bar, ThreadPoolExecutor(THREADS) as pool:
        for subset in pool.map(one, items):
            routed[subset] = routed.get(subset, 0) + 1
            bar.update(1)
    return routed


def _upload_items(dataset, data, progress_bars: bool) -> dict:
    """Upload every image as a PNG item (in-memory buffer), one at a time so ids follow the
    data order; returns ``name -> item``. (dtlpy's batch upload costs the same CPU per item.)"""
    uploaded = {}
    with _bar(len(data.names), "upload", progress_bars) as bar:
        for image, name in zip(data.images, data.names, strict=True):
            buffer = io.BytesIO(encode_png(image))
            buffer.name = name
            item = dataset.items.upload(local_path=buffer)
            if item is None or not hasattr(item, "id"):
                raise RuntimeError(f"upload of {name} failed; see dtlpy's log above")
            uploaded[item.name] = item
            bar.update(1)
    return uploaded


def _reveal(dataset, items: list, truth: dict, progress_bars: bool) -> None:
    """Upload the hidden ground truth of ``items`` as classification annotations (a labeller's work)."""
    import dtlpy as dl

    def one(item):
        builder = item.annotations.builder()
        builder.add(annotation_definition=dl.Classification(label=truth[item.id]))
        uploaded = item.annotations.upload(builder)
        if not uploaded:
            raise RuntimeError(f"labelling item {item.id} failed (dtlpy logged the error above)")
        return item.id

    with _bar(len(items), "label", progress_bars) as bar, ThreadPoolExecutor(THREADS) as pool:
        for _ in pool.map(one, items):
            bar.update(1)


def _tag(dataset, item_ids: list[str], tags: dict) -> None:
    """Bulk-set system tags on ``item_ids`` (one query-with-update request per 1,000 ids)."""
    import dtlpy as dl

    for start in range(0, len(item_ids), 1000):
        filters = dl.Filters()
        filters.add(field="id", values=item_ids[start : start + 1000], operator=dl.FiltersOperations.IN)
        dataset.items.update(filters=filters, system_update_values={"tags": tags}, system_metadata=True)


def _images(adapter, items: list, progress_bars: bool) -> list[np.ndarray]:
    """Images of ``items`` through the adapter (downloaded once per run, then cached)."""
    missing = [item for item in items if item.id not in adapter.image_cache]
    if missing:
        with _bar(len(missing), "download", progress_bars) as bar, ThreadPoolExecutor(THREADS) as pool:
            for _ in pool.map(adapter.prepare_item_func, missing):
                bar.update(1)
    return [adapter.image_cache[item.id] for item in items]


@dataclass(frozen=True)
class _Evaluation:
    mean_ap: float
    per_label: pd.DataFrame
    evaluation: object


def _evaluate(model, dataset, test_ids: list[str], truth: dict, image_cache: dict) -> _Evaluation:
    """The platform's Evaluate: predictions on the test subset uploaded with the model's identity.

    Runs dtlpy's ``evaluate_model`` (predict + upload, one annotation per item with
    ``metadata.user.model``); the same predictions are scored here with
    ``nodes.metrics.evaluate_classification`` (every_point, as Compare Models) for the
    learning curve and the PR plots.
    """
    from demo.adapter import DigitsAdapter
    from nodes import metrics

    adapter = DigitsAdapter(image_cache=image_cache, replace_predictions=False)  # each model is evaluated once
    adapter.evaluate_model(model=model, dataset=dataset, filters=dl_filters(subset_filter("test")))
    images = [image_cache[i] for i in test_ids]
    probabilities = adapter.predict_proba(images)
    labels = list(model.labels)
    best = probabilities.argmax(axis=1)
    predictions = pd.DataFrame(
        {
            "item_id": test_ids,
            "label": [labels[b] for b in best],
            "confidence": probabilities[np.arange(len(best)), best],
        }
    )
    ground_truth = pd.DataFrame({"item_id": test_ids, "label": [truth[i] for i in test_ids]})
    evaluation = metrics.evaluate_classification(ground_truth, predictions, interpolation="every_point")
    mean_ap = evaluation.mean_ap
    return _Evaluation(float(mean_ap) if not math.isnan(mean_ap) else 0.0, evaluation.per_label, evaluation)


def dl_filters(dql: dict):
    """A ``dl.Filters`` from a DQL dict (a copy; the dict is not kept)."""
    import dtlpy as dl

    return dl.Filters(custom_filter=copy.deepcopy(dql))


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
    """Leave the platform up and say how to point dtlpy at it, until Ctrl-C."""
    base = platform.url
    echo("")
    echo("The local platform keeps running (Ctrl-C to stop). From another Python process:")
    echo("    import dtlpy as dl")
    echo(
        f"    dl.add_environment(environment={base!r}, alias={platform.alias!r}, gate_url={base!r}, "
        f"url={base.rsplit('/api/v1', 1)[0] + '/'!r}, verify_ssl=False)"
    )
    echo(f"    dl.setenv({platform.alias!r})")
    echo(f"    dl.client_api.token = {platform.token!r}")
    echo("    dl.projects.get(project_name='active-learning-demo').datasets.get(dataset_name='digits').items.list()")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        echo("stopping the local platform")
