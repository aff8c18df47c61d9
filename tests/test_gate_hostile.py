"""Hostile inputs of the Uncertainty Gate (issue 23), counted in the hostile suite's totals.

Each case calls ``main.ServiceRunner.score_item`` as a pipeline does (a context from
``platform.make_context``) and is judged by the hostile suite's own rule (``test_hostile._judge``:
the right result, or a ``ValueError`` naming the field and the fix, under 1 kB, with nothing
written before it); the cases add to the same ``hostile: N tried, N as documented, 0 writes
before a refusal`` line.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dtlpy as dl
import pytest
import test_hostile as hostile  # the suite's judge and totals (tests/ is on sys.path under pytest)

import emulator
from emulator import RecordingProgress
from main import ServiceRunner

Case, Refused, Result = hostile.Case, hostile.Refused, hostile.Result
TOTALS = hostile.TOTALS


@pytest.fixture(scope="module", autouse=True)
def _print_totals(request):
    TOTALS.print_at_end(request.config, "hostile-totals")


@dataclass
class GateWorld:
    platform: Any
    project: Any
    dataset: Any
    model: Any  # a model with 3 labels
    counter: list = field(default_factory=lambda: [0])


@pytest.fixture(scope="module")
def gate_world(_platform_session) -> GateWorld:
    platform = _platform_session
    project = dl.projects.create(project_name="hostile-gate-project")
    dataset = project.datasets.create(dataset_name="hostile-gate", labels=emulator.make_labels(["cat", "dog", "owl"]))
    model = platform.create_model(project, "gate-model", dataset=dataset, labels=["cat", "dog", "owl"])
    return GateWorld(platform, project, dataset, model)


class GateCtx:
    """What a case builds with; ``platform`` and ``state`` are what the judge and checks read."""

    def __init__(self, world: GateWorld, platform) -> None:
        self.w = world
        self.platform = platform
        self.progress = RecordingProgress()
        self.state: dict[str, Any] = {}

    def item(self, predictions: list[dict] | None = None) -> dl.Item:
        self.w.counter[0] += 1
        buffer = io.BytesIO(f"gate item {self.w.counter[0]}".encode())
        buffer.name = f"g{self.w.counter[0]}.jpg"
        item = self.w.dataset.items.upload(local_path=buffer)
        if predictions:
            self.platform.store.create_annotations(item.id, predictions)
        self.state["item_id"] = item.id
        return item

    def gate(self, item: Any, node_config: dict | None = None, execution_id: str | None = None):
        context = self.platform.make_context(node_config or {}, execution_id=execution_id, project=self.w.project)
        return lambda: ServiceRunner().score_item(item=item, progress=self.progress, context=context)

    def record(self) -> dict:
        doc = self.platform.get_json("items", self.state["item_id"])
        return doc["metadata"]["user"]["activeLearning"]["selection"]


def prediction(model_id: str, label: str = "cat", confidence: float = 0.7, **extra: Any) -> dict:
    info = {"name": f"model-{model_id}", "model_id": model_id, "confidence": confidence, **extra}
    return {"type": "class", "label": label, "metadata": {"user": {"model": info}}}


# --------------------------------------------------------------------------- builders


def _other_models(*model_ids: str) -> Callable[[GateCtx], Callable[[], Any]]:
    def build(ctx: GateCtx):
        item = ctx.item([prediction(m) for m in model_ids])
        return ctx.gate(item, {"modelId": ctx.w.model.id})

    return build


def _no_prediction_with_model_id(ctx: GateCtx):
    return ctx.gate(ctx.item(), {"modelId": ctx.w.model.id, "threshold": 0.9})


def _vector(vector: Any) -> Callable[[GateCtx], Callable[[], Any]]:
    def build(ctx: GateCtx):
        item = ctx.item([prediction(ctx.w.model.id, scores=vector)])
        return ctx.gate(item)

    return build


def _wrong_item(kind: str) -> Callable[[GateCtx], Callable[[], Any]]:
    def build(ctx: GateCtx):
        item = ctx.item([prediction(ctx.w.model.id)])
        wrong = {"id": item.id, "json": item.to_json(), "dataset": ctx.w.dataset, "model": ctx.w.model}[kind]
        return ctx.gate(wrong)

    return build


def _rerun_later(ctx: GateCtx):
    item = ctx.item([prediction(ctx.w.model.id, "cat", 0.6), prediction(ctx.w.model.id, "dog", 0.3)])
    ctx.gate(item, execution_id="exec-later")()
    fresh = ctx.w.dataset.items.get(item_id=item.id)  # the first run's record, seconds earlier
    fresh.metadata["user"]["activeLearning"]["selection"]["selectedAt"] = "2000-01-01T00:00:00Z"
    fresh.update()
    return ctx.gate(item, execution_id="exec-later")


def _rerun_changed(ctx: GateCtx):
    item = ctx.item([prediction(ctx.w.model.id, "cat", 0.6), prediction(ctx.w.model.id, "dog", 0.3)])
    ctx.gate(item, execution_id="exec-changed")()
    [dog] = [a for a in item.annotations.list() if a.label == "dog"]
    dog.delete()
    ctx.platform.store.create_annotations(item.id, [prediction(ctx.w.model.id, "dog", 0.05)])
    return ctx.gate(item, execution_id="exec-changed")


def _top_1_upload(model: str) -> Callable[[GateCtx], Callable[[], Any]]:
    def build(ctx: GateCtx):
        model_id = ctx.w.model.id if model == "known" else "not-a-model-of-this-platform"
        return ctx.gate(ctx.item([prediction(model_id, "cat", 0.7)]), {"strategy": "margin"})

    return build


# --------------------------------------------------------------------------- checks


def empty_score_skipped(value: Any, ctx: GateCtx) -> None:
    record = ctx.record()  # emptyScore 0 by default (docs/detection.md)
    assert record["score"] == 0.0 and ctx.progress.actions == ["skip"], (record, ctx.progress.actions)


def nothing_written(value: Any, ctx: GateCtx) -> None:
    assert ctx.platform.write_count() == 0, ctx.platform.request_counts
    assert ctx.record()["selectedAt"] == "2000-01-01T00:00:00Z"


def new_score_recorded(value: Any, ctx: GateCtx) -> None:
    record = ctx.record()
    # cat 0.6, dog 0.05, the missing 0.35 on owl (K = 3): margin 1 - (0.6 - 0.35)
    assert abs(record["score"] - 0.75) < 1e-9 and ctx.platform.write_count() == 1, record


def completed_margin(value: Any, ctx: GateCtx) -> None:
    record = ctx.record()
    assert abs(record["score"] - (1 - (0.7 - 0.15))) < 1e-9, record  # K = 3: p2 = 0.3 / 2
    assert (record["strategy"], record["requested"], record["nClasses"]) == ("margin", "margin", 3), record


def says_least_confidence(value: Any, ctx: GateCtx) -> None:
    record = ctx.record()
    assert abs(record["score"] - 0.3) < 1e-9 and record["fallback"] is True, record
    assert (record["strategy"], record["requested"], record["nClasses"]) == ("least_confidence", "margin", None)


VECTOR = ("metadata.user.model.scores",)
ITEM = ("item", "dl.items.get")

CASES = [
    Case("gate/modelId-predicted-by-another-model", _other_models("m-other"), Refused(("modelId", "m-other"))),
    Case("gate/modelId-predicted-by-two-others", _other_models("m-a", "m-b"), Refused(("modelId", "m-a", "m-b"))),
    Case("gate/modelId-item-without-prediction", _no_prediction_with_model_id, Result(empty_score_skipped)),
    Case("gate/scores-string", _vector("0.7,0.2,0.1"), Refused(VECTOR)),
    Case("gate/scores-nested-list", _vector([[0.7, 0.2], [0.1]]), Refused(VECTOR)),
    Case("gate/scores-object", _vector({"cat": 0.7, "dog": 0.3}), Refused(VECTOR)),
    Case("gate/scores-list-of-strings", _vector(["0.7", "0.3"]), Refused(VECTOR)),
    Case("gate/scores-booleans", _vector([True, False]), Refused(VECTOR)),
    Case("gate/scores-number", _vector(0.7), Refused(VECTOR)),
    Case("gate/scores-out-of-range", _vector([0.7, 1.3]), Refused(VECTOR)),
    Case("gate/scores-empty-list", _vector([]), Refused(VECTOR)),
    Case("gate/item-id-string", _wrong_item("id"), Refused(ITEM)),
    Case("gate/item-dict", _wrong_item("json"), Refused(ITEM)),
    Case("gate/item-dataset", _wrong_item("dataset"), Refused(ITEM)),
    Case("gate/item-model", _wrong_item("model"), Refused(ITEM)),
    Case("gate/rerun-same-execution-later", _rerun_later, Result(nothing_written)),
    Case("gate/rerun-after-predictions-changed", _rerun_changed, Result(new_score_recorded)),
    Case("gate/top-1-upload-k-known", _top_1_upload("known"), Result(completed_margin)),
    Case("gate/top-1-upload-k-unknown", _top_1_upload("unknown"), Result(says_least_confidence)),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_gate_hostile_input_ends_as_documented(case: Case, gate_world: GateWorld, platform, capsys):
    TOTALS.tried += 1
    ctx = GateCtx(gate_world, platform)
    call = case.build(ctx)
    platform.reset_counts()
    outcome = hostile._judge(case, call, ctx, capsys)
    if outcome.refused:
        TOTALS.writes += len(outcome.writes)
    TOTALS.ok += int(outcome.documented)
    assert outcome.documented, f"{case.id}: {outcome.detail}"


def test_every_gate_bullet_has_a_case():
    prefixes = {case.id.split("-")[0] for case in CASES}
    assert {"gate/modelId", "gate/scores", "gate/item", "gate/rerun", "gate/top"} <= prefixes
