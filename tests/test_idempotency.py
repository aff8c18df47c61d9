"""Reruns are harmless: any sequence of node executions in which some executions are repeated
(a pipeline retrying an execution: same inputs, same execution id, possibly later and
interleaved with others) leaves the platform exactly as the same sequence without the
repeats. Checked with hypothesis on LocalPlatform, through ``main.ServiceRunner``.

The platform state compared: every item's ``metadata.system.tags`` (by item name), and the
project's models (name, status, configuration, subsets, ``metadata.user``), with entity ids
replaced by names so that two projects can be compared.
"""

from __future__ import annotations

import itertools
import json

import dtlpy as dl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import main
from emulator import LocalPlatform, RecordingProgress, make_labels

N_ITEMS = 4
SPLIT_CONFIG = {
    "groups": [
        {"name": "train", "distribution": 50},
        {"name": "validation", "distribution": 25},
        {"name": "test", "distribution": 25},
    ],
    "itemMetadata": True,
}
CREATE_CONFIG = {"createModel": "Create New Model", "modelName": "{base_model.name}-next"}
COMPARE_CONFIG = {"checks": [{"type": "plot", "figure": "loss", "legend": "val", "maximize": False}], "wins": "all"}
MODEL_INFO = {"name": "old", "model_id": "old-model", "confidence": 0.7}

#: Every execution a sequence may contain, each with its own execution id.
EXECUTIONS = (
    [("split", k) for k in range(N_ITEMS)] + [("create", k) for k in range(2)] + [("compare", k) for k in range(2)]
)
_names = itertools.count(1)


class World:
    """One fresh project: items (one already tagged, one with a prediction), a trained base
    model, and two models with training metrics for the comparison."""

    def __init__(self, platform) -> None:
        self.platform = platform
        self.project = dl.projects.create(project_name=f"idempotency-{next(_names)}")
        self.dataset = self.project.datasets.create(dataset_name="d", labels=make_labels(["cat", "dog"]))
        entries = []
        for k in range(N_ITEMS):
            metadata = {"system": {"tags": {"test": True, "reviewed": True}}} if k == 0 else {}
            entries.append({"name": f"item-{k}.jpg", "metadata": metadata})
        self.item_ids = platform.add_items(self.dataset, entries)
        box = {"type": "box", "label": "cat", "coordinates": [{"x": 1, "y": 1, "z": 0}, {"x": 9, "y": 9, "z": 0}]}
        platform.store.create_annotations(self.item_ids[1], [dict(box, metadata={"user": {"model": MODEL_INFO}})])
        platform.add_items(
            self.dataset, [{"name": "train-0.jpg", "metadata": {"system": {"tags": {"train": True}}}}]
        )  # so the default train subset selects something
        self.base = platform.create_model(self.project, "base", dataset=self.dataset, configuration={"epochs": 2})
        self.previous = platform.create_model(self.project, "previous", dataset=self.dataset)
        self.new = platform.create_model(self.project, "new", dataset=self.dataset)
        for model, losses in ((self.previous, [1.0, 0.7]), (self.new, [0.9, 0.4])):
            samples = [dl.PlotSample(figure="loss", legend="val", x=x, y=y) for x, y in enumerate(losses)]
            model.metrics.create(samples=samples, dataset_id=self.dataset.id)

    def run(self, execution: tuple[str, int]) -> str:
        kind, k = execution
        execution_id = f"{kind}-{k}"
        runner = main.ServiceRunner()
        progress = RecordingProgress()
        if kind == "split":
            item = self.dataset.items.get(item_id=self.item_ids[k])
            context = self.platform.make_context(SPLIT_CONFIG, execution_id=execution_id, project=self.project)
            runner.data_split(item=item, progress=progress, context=context)
        elif kind == "create":
            context = self.platform.make_context(CREATE_CONFIG, execution_id=execution_id, project=self.project)
            new_model, _ = runner.create_new_model(base_model=self.base, dataset=self.dataset, context=context)
            return new_model.name
        else:
            context = self.platform.make_context(
                {"itemMetadata": True}, execution_id=execution_id, project=self.project
            )
            runner.compare_models(
                previous_model=dl.models.get(model_id=self.previous.id),
                new_model=dl.models.get(model_id=self.new.id),
                compare_config=json.loads(json.dumps(COMPARE_CONFIG)),
                dataset=self.dataset,
                progress=progress,
                context=context,
            )
        return ",".join(progress.actions)

    def state(self) -> dict:
        store = self.platform.store
        names = {self.project.id: "project", self.dataset.id: "dataset"}
        models = [m for m in store.tables["models"].values() if m["context"]["project"] == self.project.id]
        names.update({m["id"]: m["name"] for m in models})
        names.update({i["id"]: i["name"] for i in self.platform.items_json(self.dataset.id)})
        tags = {
            item["name"]: (item["metadata"].get("system") or {}).get("tags")
            for item in self.platform.items_json(self.dataset.id)
        }
        annotations = sorted(
            json.dumps(a.get("metadata", {}).get("user") or {}, sort_keys=True)
            for a in self.platform.annotations_json(self.dataset.id)
        )
        model_rows = sorted(
            (
                m["name"],
                m["status"],
                json.dumps(m.get("configuration"), sort_keys=True),
                json.dumps((m.get("metadata") or {}).get("system", {}).get("subsets"), sort_keys=True),
                json.dumps((m.get("metadata") or {}).get("user"), sort_keys=True),
                json.dumps((m.get("metadata") or {}).get("system", {}).get("tags"), sort_keys=True),
            )
            for m in models
        )
        text = json.dumps({"tags": tags, "annotations": annotations, "models": model_rows}, sort_keys=True)
        for entity_id, name in sorted(names.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(entity_id, f"<{name}>")
        return json.loads(text)


@st.composite
def sequences(draw) -> tuple[list, list]:
    """A sequence of distinct executions, and the same with repeats inserted after the original."""
    distinct = draw(st.lists(st.sampled_from(EXECUTIONS), unique=True, min_size=1, max_size=6))
    with_repeats = list(distinct)
    for execution in draw(st.lists(st.sampled_from(distinct), min_size=1, max_size=6)):
        first = with_repeats.index(execution)
        position = draw(st.integers(first + 1, len(with_repeats)))
        with_repeats.insert(position, execution)
    return distinct, with_repeats


FIXED_ID_PREFIX = "6b000000"


def run_world(executions: list[tuple[str, int]]) -> tuple[dict, list[str]]:
    """Run ``executions`` on a fresh LocalPlatform (nested in the session's) whose ids start
    from the same value every time, so both runs of a comparison get the same item ids (the
    split routes by a hash of the item id)."""
    # clones answer at once (dtlpy would sleep ~2 s polling each); see tests/conftest.py
    with LocalPlatform(alias=f"idempotency-{next(_names)}", clone_async=False) as platform:
        platform.store.ids._prefix = FIXED_ID_PREFIX  # same ids for the same creation order
        world = World(platform)
        outputs = [world.run(execution) for execution in executions]
        return world.state(), outputs


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=sequences())
def test_repeated_executions_leave_the_platform_as_a_single_run(platform, plan):
    distinct, with_repeats = plan

    state_once, outputs_once = run_world(distinct)
    state_repeated, outputs_repeated = run_world(with_repeats)

    assert state_repeated == state_once
    answer = dict(zip(distinct, outputs_once, strict=True))
    for execution, output in zip(with_repeats, outputs_repeated, strict=True):
        assert output == answer[execution], execution  # a retried execution answers what the first one did


def test_every_kind_of_execution_is_in_the_universe():
    assert {kind for kind, _ in EXECUTIONS} == {"split", "create", "compare"}


@pytest.mark.parametrize("kind", ["split", "create", "compare"])
def test_a_rerun_of_each_node_makes_no_write(platform, kind):
    world = World(platform)
    execution = (kind, 1)  # split: the item carrying a prediction, so the first run writes twice
    platform.reset_counts()
    world.run(execution)
    assert platform.write_count() > 0
    before = world.state()
    platform.reset_counts()

    world.run(execution)

    wrote = [f"{r.method} {r.route}" for r in platform.requests if r.wrote]
    expected = {"split": [], "create": [], "compare": ["PATCH /ml/models/{id}"]}[kind]
    assert wrote == expected  # compare stores the same report again (an idempotent overwrite)
    assert world.state() == before
