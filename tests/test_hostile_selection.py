"""Hostile suite, selection part (issue 23): what a careless or malicious user can give Select for
Labeling and the Uncertainty Gate, each ending as documented (docs/failure-behaviour.md) and judged
exactly as tests/test_hostile.py judges its cases (its ``_judge``): a refusal is a ``ValueError``
naming the field and a fix, under 1 kB, with no write accepted before it; a result is checked on
the platform's state. The counts join the suite's line
``hostile: N tried, N as documented, 0 writes before a refusal``.
"""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import dtlpy as dl
import numpy as np
import pytest

import emulator
import main
from emulator import RecordingProgress
from tests.test_hostile import TOTALS, Case, Refused, Result, _judge

LABELS = ("cat", "dog", "bird")
OK = {"budget": 2}


@pytest.fixture(scope="module", autouse=True)
def _print_totals(request):
    TOTALS.print_at_end(request.config, "hostile-totals")  # the same line as tests/test_hostile.py


def _class(label: str, model: Any, confidence: float) -> dict:
    return {
        "type": "class",
        "label": label,
        "coordinates": [],
        "metadata": {"user": {"model": {"model_id": model.id, "name": model.name, "confidence": confidence}}},
    }


@dataclass
class World:
    platform: Any
    project: Any
    model: Any
    counter: list = field(default_factory=lambda: [0])

    def name(self, prefix: str) -> str:
        self.counter[0] += 1
        return f"{prefix}-{self.counter[0]}"


@pytest.fixture(scope="module")
def world(_platform_session) -> World:
    platform = _platform_session
    project = dl.projects.create(project_name="hostile-selection-project")
    seed_dataset = platform.create_dataset(project, "hostile-selection-models", labels=list(LABELS))
    model = platform.create_model(project, "scorer", dataset=seed_dataset, labels=list(LABELS))
    return World(platform, project, model)


class Ctx:
    """Builders over the world for one case; each case gets a fresh dataset (setup is not counted)."""

    def __init__(self, world: World, platform) -> None:
        self.w = world
        self.platform = platform
        self.runner = main.ServiceRunner()
        self.progress = RecordingProgress()
        self.state: dict[str, Any] = {}

    def dataset(self, n: int = 8, tagged: dict[str, int] | None = None) -> Any:
        """A dataset with ``n`` predicted items, plus ``tagged[tag]`` predicted items carrying ``tag``."""
        dataset = self.platform.create_dataset(self.w.project, self.w.name("sel"), labels=list(LABELS))
        rng = np.random.default_rng(len(self.state))
        entries = [{"name": f"p{k}.jpg"} for k in range(n)]
        for tag, count in (tagged or {}).items():
            entries += [{"name": f"{tag}{k}.jpg", "metadata": {"system": {"tags": {tag: True}}}} for k in range(count)]
        ids = self.platform.add_items(dataset, entries)
        for item_id in ids:
            p = rng.dirichlet(np.ones(3))
            self.platform.store.create_annotations(
                item_id, [_class(LABELS[k], self.w.model, float(round(p[k], 4))) for k in range(3)]
            )
        self.state.update(dataset=dataset, ids=ids)
        return dataset

    def context(self, node_config: Any = None, split_groups: list[str] | None = None, execution_id: str | None = None):
        """A pipeline context: the selection node (carrying ``node_config``) and, with
        ``split_groups``, a Model Data Split node whose groups have those names."""
        project = self.w.project
        node = {
            "id": self.w.name("node"),
            "name": "Select for Labeling",
            "type": "custom",
            "namespace": {"functionName": "select_items", "projectName": "", "serviceName": "select-for-labeling"},
            "projectId": project.id,
            "inputs": [],
            "outputs": [],
            "metadata": {"position": {"x": 0, "y": 0, "z": 0}},
            "config": {},
        }
        if node_config is not None:
            node["metadata"]["customNodeConfig"] = copy.deepcopy(node_config)
        nodes = [node]
        if split_groups is not None:
            share = 100 / len(split_groups)
            split = copy.deepcopy(node)
            split.update(id=self.w.name("split"), name="Model Data Split")
            split["namespace"] = {"functionName": "data_split", "projectName": "", "serviceName": "model-data-split"}
            split["metadata"]["customNodeConfig"] = {
                "groups": [{"name": g, "distribution": share} for g in split_groups]
            }
            nodes.append(split)
        pipeline = self.platform.create_pipeline(project, nodes, name=self.w.name("pipeline"))
        execution = {
            "id": execution_id or self.w.name("exec"),
            "pipeline": {"id": pipeline["id"], "nodeId": node["id"], "executionId": "pe"},
        }
        return dl.Context(execution_dict=execution, project=project)

    def select(self, config: Any = None, model: Any = "model", dataset: Any = "new", context: Any = None, **kw):
        model = self.w.model if model == "model" else model
        dataset = self.dataset(**kw) if dataset == "new" else dataset
        return lambda: self.runner.select_items(
            model=model, dataset=dataset, selection_config=config, progress=self.progress, context=context
        )

    def gate(self, node_config: Any):
        dataset = self.dataset(n=1)
        item = dataset.items.get(item_id=self.state["ids"][0])
        context = self.platform.make_context(node_config, project=self.w.project)
        return lambda: self.runner.score_item(item=item, progress=self.progress, context=context)

    def tags(self, item_id: str) -> dict:
        return ((self.platform.get_json("items", item_id).get("metadata") or {}).get("system") or {}).get("tags") or {}


# ------------------------------------------------------------------------------------------
# Result checks
# ------------------------------------------------------------------------------------------


def nothing_chosen(value: Any, ctx: Ctx) -> None:
    assert value == [], f"chose {[i.id for i in value]}"
    assert not any(ctx.tags(i).get("to_label") for i in ctx.state["ids"])


def chosen(n: int):
    def check(value: Any, ctx: Ctx) -> None:
        assert len(value) == n and all(ctx.tags(i.id).get("to_label") is True for i in value)
        assert not any(ctx.tags(i.id).get("test") for i in value)

    return check


def disjoint_batches(value: Any, ctx: Ctx) -> None:
    first, second = ([i.id for i in items] for items in value)
    assert len(first) == len(second) == 3, (first, second)
    assert not set(first) & set(second), "two runs at the same time chose the same items"


def two_runs_at_once(ctx: Ctx):
    dataset = ctx.dataset(n=12)
    contexts = [ctx.context(execution_id=ctx.w.name("par")) for _ in range(2)]

    def call():
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = [
                pool.submit(
                    ctx.runner.select_items,
                    model=ctx.w.model,
                    dataset=dataset,
                    selection_config={"budget": 3},
                    progress=RecordingProgress(),
                    context=c,
                )
                for c in contexts
            ]
            return [f.result() for f in futures]

    return call


# ------------------------------------------------------------------------------------------
# The cases
# ------------------------------------------------------------------------------------------

SEL = ("selection_config",)
LONG = "n" * 300_000


def _cases() -> list[Case]:
    refuse = Refused
    return [
        # a selection tag that is a subset tag (today {"tag": "train"} puts unlabelled items into training)
        *(
            Case(
                f"select/tag-{tag}",
                lambda c, t=tag: c.select({"budget": 2, "tag": t}),
                refuse(("selection_config.tag",)),
            )
            for tag in ("train", "validation", "test")
        ),
        Case(
            "select/tag-holdout-test-subset",
            lambda c: c.select({"budget": 2, "tag": "holdout", "testSubsetTags": ["holdout"]}),
            refuse(("selection_config.tag",)),
        ),
        Case(
            "select/node-tag-train",
            lambda c: c.select(None, context=c.context({"budget": 2, "tag": "train"})),
            refuse(("customNodeConfig.tag",)),
        ),
        Case(
            "select/tag-pipeline-group",
            lambda c: c.select({"budget": 2, "tag": "gold"}, context=c.context(split_groups=["gold", "rest"])),
            refuse(("selection_config.tag", "gold")),
        ),
        Case(
            "select/node-tag-pipeline-group",
            lambda c: c.select(None, context=c.context({"budget": 2, "tag": "silver"}, ["gold", "silver"])),
            refuse(("customNodeConfig.tag", "silver")),
        ),
        Case(
            "select/pipeline-group-left-out-of-pool",
            lambda c: c.select({"budget": 20}, context=c.context(split_groups=["gold"]), n=2, tagged={"gold": 3}),
            Result(chosen(2)),
        ),
        # held-out items
        Case(
            "select/test-subset-tags-empty",
            lambda c: c.select({"budget": 2, "testSubsetTags": []}),
            refuse(("testSubsetTags",)),
        ),
        Case(
            "select/pool-names-only-test-items",
            lambda c: c.select(
                {"budget": 5, "pool": {"filter": {"name": {"$match": "test"}}}}, n=0, tagged={"test": 4}
            ),
            Result(nothing_chosen),
        ),
        Case(
            "select/pool-names-test-items-other-held-out-tag",
            lambda c: c.select(
                {"budget": 5, "testSubsetTags": ["holdout"], "pool": {"filter": {"type": "file"}}},
                n=0,
                tagged={"test": 2, "holdout": 2},
            ),
            Result(nothing_chosen),
        ),
        Case(
            "select/pool-keeps-test-items",
            lambda c: c.select({"budget": 50, "pool": {"filter": {"type": "file"}}}, n=3, tagged={"test": 3}),
            Result(chosen(3)),
        ),
        # two runs at the same time
        Case("select/two-runs-at-once", two_runs_at_once, Result(disjoint_batches)),
        # entities of the wrong type
        Case("select/model-id-string", lambda c: c.select(OK, model=c.w.model.id), refuse(("model", "Model"))),
        Case("select/model-dict", lambda c: c.select(OK, model={"id": c.w.model.id}), refuse(("model",))),
        Case("select/model-is-a-dataset", lambda c: c.select(OK, model=c.dataset()), refuse(("model",))),
        Case("select/model-none", lambda c: c.select(OK, model=None), refuse(("model",))),
        Case("select/dataset-is-a-model", lambda c: c.select(OK, dataset=c.w.model), refuse(("dataset",))),
        Case(
            "select/dataset-id-string", lambda c: c.select(OK, dataset=c.dataset().id), refuse(("dataset", "Dataset"))
        ),
        Case("select/dataset-none", lambda c: c.select(OK, dataset=None), refuse(("dataset",))),
        # seeds
        Case("select/seed-negative", lambda c: c.select({"budget": 2, "seed": -1}), refuse(("selection_config.seed",))),
        Case("select/seed-huge", lambda c: c.select({"budget": 2, "seed": 2**64}), refuse(("selection_config.seed",))),
        Case(
            "select/node-seed-negative",
            lambda c: c.select(None, context=c.context({"budget": 2, "seed": -7})),
            refuse(("customNodeConfig.seed",)),
        ),
        Case("gate/seed-negative", lambda c: c.gate({"seed": -1}), refuse(("customNodeConfig.seed",))),
        # task due dates and names
        Case(
            "select/task-due-past",
            lambda c: c.select({"budget": 2, "task": {"name": "t", "dueDate": "2001-01-01"}}),
            refuse(("task.dueDate",)),
        ),
        Case(
            "select/task-due-seconds",
            lambda c: c.select({"budget": 2, "task": {"name": "t", "dueDate": 1_896_048_000}}),
            refuse(("task.dueDate", "milliseconds")),
        ),
        Case(
            "select/task-due-absurd",
            lambda c: c.select({"budget": 2, "task": {"name": "t", "dueDate": "9999-12-31"}}),
            refuse(("task.dueDate",)),
        ),
        Case(
            "select/task-due-huge-number",
            lambda c: c.select({"budget": 2, "task": {"name": "t", "dueDate": 1e300}}),
            refuse(("task.dueDate",)),
        ),
        *(
            Case(
                f"select/task-name-{label}",
                lambda c, n=name: c.select({"budget": 2, "task": {"name": n}}),
                refuse(("task.name",)),
            )
            for label, name in (
                ("newline", "round\n1"),
                ("nul", "round\x001"),
                ("rlo", "invoice\u202egpj.exe"),
                ("zero-width-space", "round\u200b1"),
                ("only-zero-width", "\u200b\u200b"),
                ("only-combining-marks", "\u0301\u0302"),
                ("only-spaces", "\u3000\u00a0 "),
                ("bidi-isolate", "\u2066round\u2069"),
                ("long", LONG),
            )
        ),
        # identifiers of any length: messages stay under 1 kB
        Case(
            "select/feature-set-long-name",
            lambda c: c.select({"budget": 2, "featureSet": LONG}),
            refuse(("featureSet",)),
        ),
        Case("select/tag-long", lambda c: c.select({"budget": 2, "tag": LONG}), refuse(("selection_config.tag",))),
        Case("select/unknown-key-long", lambda c: c.select({"budget": 2, LONG: 1}), refuse(("selection_config",))),
        Case(
            "select/test-subset-tag-long",
            lambda c: c.select({"budget": 2, "testSubsetTags": [LONG]}),
            refuse(("testSubsetTags",)),
        ),
        # unknown keys, with the nearest valid key
        Case("select/unknown-key", lambda c: c.select({"budget": 2, "budgte": 3}), refuse(("budgte", "'budget'"))),
        Case(
            "select/unknown-key-test-subset-tag",
            lambda c: c.select({"budget": 2, "testSubsetTag": ["x"]}),
            refuse(("'testSubsetTags'",)),
        ),
        Case(
            "select/unknown-task-key",
            lambda c: c.select({"budget": 2, "task": {"nmae": "t"}}),
            refuse(("task", "'name'")),
        ),
        Case(
            "select/unknown-pool-key",
            lambda c: c.select({"budget": 2, "pool": {"filter": {"dir": "/"}, "jion": {}}}),
            refuse(("pool", "'join'")),
        ),
        Case(
            "select/unknown-node-key",
            lambda c: c.select(None, context=c.context({"budget": 2, "featureset": "x"})),
            refuse(("customNodeConfig", "'featureSet'")),
        ),
        Case(
            "select/unknown-node-key-far",
            lambda c: c.select(None, context=c.context({"budget": 2, "colour": "x"})),
            refuse(("customNodeConfig", "colour")),
        ),
        Case("gate/unknown-key", lambda c: c.gate({"treshold": 0.5}), refuse(("customNodeConfig", "'threshold'"))),
        Case("gate/unknown-key-model", lambda c: c.gate({"modelid": "m"}), refuse(("customNodeConfig", "'modelId'"))),
        Case(
            "select/platform-node-keys-accepted",
            lambda c: c.select(
                None, context=c.context({"name": "Select", "validation": {"valid": True, "errors": []}, "budget": 2})
            ),
            Result(chosen(2)),
        ),
    ]


CASES = _cases()


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id) for case in CASES])
def test_hostile_selection_input_ends_as_documented(case: Case, world: World, platform, capsys):
    TOTALS.tried += 1
    ctx = Ctx(world, platform)
    call = case.build(ctx)
    platform.reset_counts()
    outcome = _judge(case, call, ctx, capsys)
    if outcome.refused:
        TOTALS.writes += len(outcome.writes)
    TOTALS.ok += int(outcome.documented)
    assert outcome.documented, f"{case.id}: {outcome.detail}"
    if outcome.refused:
        assert platform.write_count() == 0, f"{case.id}: wrote before refusing"


def test_every_selection_bullet_of_issue_23_has_a_case():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    for part in (
        "tag-train",
        "test-subset-tags-empty",
        "two-runs-at-once",
        "model-id-string",
        "dataset-is-a-model",
        "seed-negative",
        "task-due-past",
        "task-name-rlo",
        "task-name-only-zero-width",
        "feature-set-long-name",
        "unknown-key",
        "platform-node-keys-accepted",
        "pipeline-group",
    ):
        assert any(part in i for i in ids), part


def test_the_local_platform_makes_the_labels_used_here():
    assert emulator.make_labels(list(LABELS))
