"""Bad-input matrix: every node (through ``main.ServiceRunner``) and the CLI (``main.main``)
given broken configs, hostile strings, missing or empty entities must fail with the right
error type, a message that names the offending field, and no write request at all.

Each row of ``CASES`` builds its input on a fresh project/dataset of the session's
LocalPlatform, resets the request counts, runs, and checks
``platform.write_count() == 0``. The totals are printed in pytest's terminal summary
(``bad inputs: N tried, N rejected, 0 writes``) by a tiny plugin this module registers.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dtlpy as dl
import pytest

import main
from benchmarks.bench_load import NODE_CONFIG as SPLIT_OK
from emulator import RecordingProgress
from tests.helpers import Totals, box

# ------------------------------------------------------------------------------------------
# Totals, printed at the end of the run
# ------------------------------------------------------------------------------------------

TOTALS = Totals("bad inputs: {tried} tried, {ok} rejected, {writes} writes")


@pytest.fixture(scope="module", autouse=True)
def _print_totals(request):
    TOTALS.print_at_end(request.config, "bad-input-totals")


# ------------------------------------------------------------------------------------------
# Inputs
# ------------------------------------------------------------------------------------------

TEST_TAG = {"system": {"tags": {"test": True}}}
TRAIN_TAG = {"system": {"tags": {"train": True}}}


def _split(**changes: Any) -> dict:
    config = copy.deepcopy(SPLIT_OK)
    config.update(changes)
    return config


def _groups(*pairs: tuple[Any, Any]) -> dict:
    return _split(groups=[{"name": n, "distribution": d} for n, d in pairs])


def _box(label: str, left: float, model: Any = None) -> dict:
    return box(label, left, 10, size=30, model=model, confidence=0.9)


class Env:
    """Builders over the test's platform, project and dataset (setup writes happen before the
    request counts are reset, so only the call under test is measured)."""

    def __init__(self, platform, project, dataset, tmp_path) -> None:
        self.platform = platform
        self.project = project
        self.dataset = dataset
        self.tmp_path = tmp_path
        self.runner = main.ServiceRunner()

    def items(self, n: int = 3, metadata: dict | None = None) -> list[str]:
        entries = [{"name": f"img-{i}.jpg", "metadata": copy.deepcopy(metadata or {})} for i in range(n)]
        return self.platform.add_items(self.dataset, entries)

    def item(self) -> dl.Item:
        [item_id] = self.platform.add_items(self.dataset, [{"name": "one.jpg", "metadata": {}}])
        return self.dataset.items.get(item_id=item_id)

    def context(self, node_config: Any = None, has_config: bool = True) -> dl.Context:
        """A real ``dl.Context`` whose node's ``customNodeConfig`` is ``node_config`` verbatim
        (any JSON value, not only objects)."""
        metadata: dict[str, Any] = {"position": {"x": 0, "y": 0, "z": 0}}
        if has_config:
            metadata["customNodeConfig"] = copy.deepcopy(node_config)
        node = {
            "id": "node-bad-input",
            "name": "node",
            "type": "custom",
            "namespace": {"functionName": "node", "projectName": "", "serviceName": "node"},
            "projectId": self.project.id,
            "inputs": [],
            "outputs": [],
            "metadata": metadata,
            "config": {},
        }
        pipeline = self.platform.create_pipeline(self.project, [node], name="bad-input")
        execution = {"id": "exec-bad", "pipeline": {"id": pipeline["id"], "nodeId": node["id"], "executionId": "pe"}}
        return dl.Context(execution_dict=execution, project=self.project)

    def model(self, name: str = "base", status: str = "trained", **fields: Any) -> dl.Model:
        return self.platform.create_model(
            self.project, name, dataset=self.dataset, labels=["cat", "dog"], status=status, **fields
        )

    def models(self) -> tuple[dl.Model, dl.Model]:
        return self.model("previous"), self.model("new")

    def annotated_test_items(self, models: tuple = (), ground_truth: bool = True, n: int = 3) -> list[str]:
        ids = self.items(n, TEST_TAG)
        for item_id in ids:
            annotations = [_box("cat", 10)] if ground_truth else []
            annotations += [_box("cat", 11, model=m) for m in models]
            if annotations:
                self.platform.store.create_annotations(item_id, annotations)
        return ids

    def config_file(self, text: str) -> str:
        path = self.tmp_path / "compare_config.json"
        path.write_text(text, encoding="utf-8")
        return str(path)

    # the three nodes, called as the runner calls them
    def split(self, node_config: Any = None, item: Any = "new", has_config: bool = True) -> Callable[[], Any]:
        item = self.item() if item == "new" else item
        context = self.context(node_config, has_config=has_config)
        return lambda: self.runner.data_split(item=item, progress=RecordingProgress(), context=context)

    def create(self, node_config: Any = None, base: Any = "new", dataset: Any = "same", **inputs: Any):
        if base == "new":
            self.items(2, TRAIN_TAG)
            base = self.model()
        dataset = self.dataset if dataset == "same" else dataset
        if node_config is None:
            node_config = {"createModel": "Create New Model", "modelName": "{base_model.name}-next"}
        context = self.context(node_config)
        return lambda: self.runner.create_new_model(
            base_model=base, dataset=dataset, progress=RecordingProgress(), context=context, **inputs
        )

    def compare(self, compare_config: Any, models: Any = "new", dataset: Any = "same", seed: bool = True):
        previous, new = self.models() if models == "new" else models
        if seed:
            self.annotated_test_items(models=(previous, new))
        dataset = self.dataset if dataset == "same" else dataset
        return lambda: self.runner.compare_models(
            previous_model=previous,
            new_model=new,
            compare_config=compare_config,
            dataset=dataset,
            progress=RecordingProgress(),
            context=None,
        )

    def cli(self, *argv: str) -> Callable[[], Any]:
        return lambda: main.main(list(argv))


@dataclass(frozen=True)
class Case:
    """One bad input: ``build(env)`` returns the call; the call must raise ``error`` (or, for
    the CLI, exit with code 2) with every string of ``names`` in the message (case-insensitive)."""

    id: str
    build: Callable[[Env], Callable[[], Any]]
    error: type[BaseException] | None
    names: tuple[str, ...]
    xfail: str | None = None


def _split_cli(env: Env, *extra: str) -> Callable[[], Any]:
    env.items(2)
    return env.cli("split", "--project", env.project.name, "--dataset", env.dataset.name, "--no-progress", *extra)


def _compare_cli(env: Env, *extra: str, seed: bool = True) -> Callable[[], Any]:
    previous, new = env.models()
    if seed:
        env.annotated_test_items(models=(previous, new))
    out = str(env.tmp_path / "report")
    return env.cli("compare", "--previous", previous.id, "--new", new.id, "--out", out, *extra)


CLI = None  # ``error`` of CLI rows: exit code 2 with the message on stderr
NODE_CONFIG = "customNodeConfig"
NAN = float("nan")
HOSTILE_TEMPLATES = [
    "{base_model.__class__.__init__.__globals__}",
    "{__import__('os').system('touch /tmp/pwned')}",
    "{base_model._client_api.token}",
    "{datetime.datetime.now().strftime('%Y'); import os}",
    "{base_model.name",
    "../../{base_model.name}",
]

CASES: list[Case] = [
    # ---------------------------------------------------------------- Model Data Split node
    Case("split/config-not-object", lambda e: e.split("train=80,test=20"), ValueError, (NODE_CONFIG,)),
    Case("split/config-list", lambda e: e.split([{"name": "train"}]), ValueError, (NODE_CONFIG,)),
    Case("split/groups-missing", lambda e: e.split({"itemMetadata": True}), ValueError, (NODE_CONFIG, "groups")),
    Case("split/groups-wrong-type", lambda e: e.split(_split(groups="train,test")), ValueError, ("groups",)),
    Case(
        "split/distribution-negative",
        lambda e: e.split(_groups(("train", 110), ("test", -10))),
        ValueError,
        ("groups[1].distribution",),
    ),
    Case(
        "split/distribution-over-100",
        lambda e: e.split(_groups(("train", 150), ("test", 0))),
        ValueError,
        ("groups[0].distribution",),
    ),
    Case(
        "split/distribution-nan-number",
        lambda e: e.split(_groups(("train", NAN), ("test", 100))),
        ValueError,
        ("groups[0].distribution",),
    ),
    Case(
        "split/distribution-nan-string",
        lambda e: e.split(_groups(("train", "NaN"), ("test", 100))),
        ValueError,
        ("distribution",),
    ),
    Case(
        "split/distribution-bool",
        lambda e: e.split(_groups(("train", True), ("test", 99))),
        ValueError,
        ("groups[0].distribution",),
    ),
    Case(
        "split/sum-not-100",
        lambda e: e.split(_groups(("train", 60), ("test", 30))),
        ValueError,
        ("distribution", "100"),
    ),
    Case(
        "split/duplicate-names",
        lambda e: e.split(_groups(("train", 50), ("train", 50))),
        ValueError,
        ("groups[1].name",),
    ),
    Case(
        "split/unsafe-name-path",
        lambda e: e.split(_groups(("../train", 50), ("test", 50))),
        ValueError,
        ("groups[0].name",),
    ),
    Case(
        "split/unsafe-name-dql",
        lambda e: e.split(_groups(("train", 50), ('test": {"$ne": null}', 50))),
        ValueError,
        ("groups[1].name",),
    ),
    Case("split/empty-name", lambda e: e.split(_groups(("", 50), ("test", 50))), ValueError, ("groups[0].name",)),
    Case("split/one-group", lambda e: e.split(_groups(("train", 100))), ValueError, ("groups",)),
    Case(
        "split/six-groups",
        lambda e: e.split(_groups(*[(f"g{i}", 100 / 6) for i in range(6)])),
        ValueError,
        ("groups",),
    ),
    Case("split/itemMetadata-string", lambda e: e.split(_split(itemMetadata="yes")), ValueError, ("itemMetadata",)),
    Case("split/seed-negative", lambda e: e.split(_split(seed=-1)), ValueError, ("seed",)),
    Case(
        "split/item-none",
        lambda e: e.split(SPLIT_OK, item=None),
        ValueError,
        ("item",),
    ),
    Case("split/item-string", lambda e: e.split(SPLIT_OK, item="6650f0c1"), ValueError, ("item", "Item")),
    Case("split/item-dataset", lambda e: e.split(SPLIT_OK, item=e.dataset), ValueError, ("item", "Item")),
    Case("split/unknown-key", lambda e: e.split(_split(itemMetdata=True)), ValueError, ("itemMetdata", "itemMetadata")),
    Case(
        "split/unknown-group-key",
        lambda e: e.split(
            _split(groups=[{"name": "a", "distribution": 50, "share": 1}, {"name": "b", "distribution": 50}])
        ),
        ValueError,
        ("groups[0].share",),
    ),
    Case(
        "split/group-name-zero-width",
        lambda e: e.split(_groups(("\u200b", 50), ("b", 50))),
        ValueError,
        ("groups[0].name",),
    ),
    # ---------------------------------------------------------------- split CLI
    Case("cli-split/group-by-written", lambda e: _split_cli(e, "--group-by", "metadata.user"), CLI, ("group_by",)),
    Case("cli-split/subsets-not-number", lambda e: _split_cli(e, "--subsets", "train=80,test=x"), CLI, ("--subsets",)),
    Case("cli-split/subsets-no-equals", lambda e: _split_cli(e, "--subsets", "train"), CLI, ("--subsets",)),
    Case("cli-split/subsets-over-100", lambda e: _split_cli(e, "--subsets", "train=150,test=-50"), CLI, ("--subsets",)),
    Case("cli-split/seed-negative", lambda e: _split_cli(e, "--seed", "-1"), CLI, ("--seed",)),
    Case("cli-split/group-by-unsafe", lambda e: _split_cli(e, "--group-by", "metadata.$where"), CLI, ("group_by",)),
    Case("cli-split/stratify-unknown", lambda e: _split_cli(e, "--stratify-by", "colour"), CLI, ("--stratify-by",)),
    Case(
        "cli-split/project-missing",
        lambda e: e.cli("split", "--project", "no-such-project", "--dataset", "d", "--no-progress"),
        CLI,
        ("--project", "no-such-project"),
    ),
    Case(
        "cli-split/dataset-missing",
        lambda e: e.cli("split", "--project", e.project.name, "--dataset", "no-such-dataset", "--no-progress"),
        CLI,
        ("--dataset", "no-such-dataset"),
    ),
    # ---------------------------------------------------------------- Create New Model node
    Case("create/base-model-none", lambda e: e.create(base=None), ValueError, ("base_model",)),
    Case("create/train-subset-list", lambda e: e.create(train_subset=[]), ValueError, ("train_subset",)),
    Case(
        "create/validation-subset-blank", lambda e: e.create(validation_subset="  "), ValueError, ("validation_subset",)
    ),
    Case(
        "create/same-train-and-validation",
        lambda e: e.create(train_subset={"dir": "/"}, validation_subset={"dir": "/"}),
        ValueError,
        ("validation_subset", "train_subset", "allowSameTrainAndValidation"),
    ),
    Case(
        "create/config-unknown-key",
        lambda e: e.create(node_config={"modelName": "x", "modelNmae": "y"}),
        ValueError,
        ("modelNmae", "modelName"),
    ),
    Case("create/name-rlo", lambda e: e.create(node_config={"modelName": "\u202ex"}), ValueError, ("modelName",)),
    Case("create/dataset-none", lambda e: e.create(dataset=None), ValueError, ("dataset",)),
    Case(
        "create/base-not-trained",
        lambda e: e.create(base=e.model(status="created")),
        ValueError,
        ("base_model.status",),
    ),
    Case("create/config-not-object", lambda e: e.create(node_config=["modelName"]), ValueError, (NODE_CONFIG,)),
    Case("create/template-not-string", lambda e: e.create(node_config={"modelName": 123}), ValueError, ("modelName",)),
    *[
        Case(f"create/hostile-template-{i}", lambda e, t=t: e.create({"modelName": t}), ValueError, ("modelName",))
        for i, t in enumerate(HOSTILE_TEMPLATES)
    ],
    Case("create/train-subset-bad-json", lambda e: e.create(train_subset='{"dir": '), ValueError, ("train_subset",)),
    Case(
        "create/train-subset-unknown-operator",
        lambda e: e.create(train_subset={"dir": {"$where": "sleep(1000)"}}),
        ValueError,
        ("train_subset.filter.dir.$where",),
    ),
    Case(
        "create/validation-subset-unknown-logical",
        lambda e: e.create(validation_subset={"$xor": [{"dir": "/a"}, {"dir": "/b"}]}),
        ValueError,
        ("validation_subset.filter.$xor",),
    ),
    Case(
        "create/train-subset-annotations",
        lambda e: e.create(train_subset={"filter": {"label": "cat"}, "resource": "annotations"}),
        ValueError,
        ("train_subset.resource",),
    ),
    Case("create/train-subset-wrong-type", lambda e: e.create(train_subset=["train"]), ValueError, ("train_subset",)),
    Case(
        "create/train-subset-matches-nothing",
        lambda e: e.create(train_subset={"dir": "/nowhere"}),
        ValueError,
        ("train_subset", "matches no items"),
    ),
    Case(
        "create/model-configuration-list",
        lambda e: e.create(model_configuration=[1, 2]),
        ValueError,
        ("model_configuration",),
    ),
    Case(
        "create/model-configuration-bad-json",
        lambda e: e.create(model_configuration="{epochs: 5}"),
        ValueError,
        ("model_configuration",),
    ),
    Case(
        "create/empty-dataset",
        lambda e: e.create(base=e.model(), dataset=e.dataset),
        ValueError,
        ("train_subset", "matches no items"),
    ),
    # ---------------------------------------------------------------- Compare Models node
    Case("compare/config-bad-json", lambda e: e.compare('{"wins": '), ValueError, ("compare_config",)),
    Case("compare/config-list", lambda e: e.compare(["precision_recall"]), ValueError, ("compare_config",)),
    Case("compare/config-empty", lambda e: e.compare({}), ValueError, ("compare_config",)),
    Case("compare/unknown-key", lambda e: e.compare({"precison_recall": {}}), ValueError, ("compare_config",)),
    Case("compare/wins-unknown", lambda e: e.compare({"wins": "0.6x", "precision_recall": {}}), ValueError, ("wins",)),
    Case("compare/wins-zero", lambda e: e.compare({"wins": 0, "precision_recall": {}}), ValueError, ("wins",)),
    Case("compare/wins-above-1", lambda e: e.compare({"wins": 1.5, "precision_recall": {}}), ValueError, ("wins",)),
    Case("compare/wins-negative", lambda e: e.compare({"wins": "-0.2", "precision_recall": {}}), ValueError, ("wins",)),
    Case("compare/wins-bool", lambda e: e.compare({"wins": True, "precision_recall": {}}), ValueError, ("wins",)),
    Case(
        "compare/check-unknown-type",
        lambda e: e.compare({"checks": [{"type": "table", "figure": "loss", "legend": "val"}]}),
        ValueError,
        ("checks[0].type",),
    ),
    Case(
        "compare/check-missing-figure",
        lambda e: e.compare({"checks": [{"legend": "val"}]}),
        ValueError,
        ("checks[0].figure",),
    ),
    Case(
        "compare/check-missing-legend",
        lambda e: e.compare({"checks": [{"figure": "loss"}]}),
        ValueError,
        ("checks[0].legend",),
    ),
    Case(
        "compare/check-unknown-metric",
        lambda e: e.compare({"checks": [{"figure": "loss", "legend": "val"}]}),
        ValueError,
        ("compare_config.checks", "loss"),
    ),
    Case(
        "compare/iou-zero",
        lambda e: e.compare({"precision_recall": {"iou_threshold": 0}}),
        ValueError,
        ("precision_recall.iou_threshold",),
    ),
    Case(
        "compare/iou-above-1",
        lambda e: e.compare({"precision_recall": {"iou_threshold": 1.5}}),
        ValueError,
        ("precision_recall.iou_threshold",),
    ),
    Case(
        "compare/iou-nan",
        lambda e: e.compare({"precision_recall": {"iou_threshold": NAN}}),
        ValueError,
        ("precision_recall.iou_threshold",),
    ),
    Case(
        "compare/test-subset-unknown-operator",
        lambda e: e.compare({"precision_recall": {"test_subset": {"filter": {"dir": {"$regexx": "^/a"}}}}}),
        ValueError,
        ("precision_recall.test_subset", "$regexx"),
    ),
    Case(
        "compare/previous-none", lambda e: e.compare(None, models=(None, e.model("n"))), ValueError, ("previous_model",)
    ),
    Case("compare/new-none", lambda e: e.compare(None, models=(e.model("p"), None)), ValueError, ("new_model",)),
    Case(
        "compare/same-model",
        lambda e: (lambda m: e.compare(None, models=(m, m)))(e.model("same")),
        ValueError,
        ("new_model",),
    ),
    Case("compare/dataset-none", lambda e: e.compare(None, dataset=None), ValueError, ("dataset",)),
    Case(
        "compare/no-predictions",
        lambda e: (lambda ms: (e.annotated_test_items(models=()), e.compare(None, models=ms, seed=False))[1])(
            e.models()
        ),
        ValueError,
        ("no predictions",),
    ),
    Case(
        "compare/no-ground-truth",
        lambda e: (
            lambda ms: (e.annotated_test_items(models=ms, ground_truth=False), e.compare(None, models=ms, seed=False))[
                1
            ]
        )(e.models()),
        ValueError,
        ("no ground truth", "test_subset"),
    ),
    Case(
        "compare/empty-dataset",
        lambda e: e.compare(None, seed=False),
        ValueError,
        ("compare_config.precision_recall.test_subset", "0 items"),
    ),
    # ---------------------------------------------------------------- compare CLI
    Case(
        "cli-compare/config-bad-json",
        lambda e: _compare_cli(e, "--config", e.config_file('{"wins": ')),
        CLI,
        ("compare_config.json",),
    ),
    Case(
        "cli-compare/config-wins-unknown",
        lambda e: _compare_cli(e, "--config", e.config_file(json.dumps({"wins": "most", "precision_recall": {}}))),
        CLI,
        ("compare_config.wins",),
    ),
    Case(
        "cli-compare/config-file-missing",
        lambda e: _compare_cli(e, "--config", str(e.tmp_path / "absent.json")),
        CLI,
        ("absent.json",),
    ),
    Case(
        "cli-compare/dataset-none-with-precision-recall",
        lambda e: _compare_cli(e),
        CLI,
        ("dataset",),
    ),
    Case(
        "cli-compare/previous-id-missing",
        lambda e: e.cli("compare", "--previous", "no-such-model", "--new", e.model().id, "--out", str(e.tmp_path)),
        CLI,
        ("--previous", "no-such-model"),
    ),
    Case("cli/unknown-command", lambda e: e.cli("train", "--all"), CLI, ("invalid choice",)),
    Case("cli/split-missing-dataset", lambda e: e.cli("split", "--project", "p"), CLI, ("--dataset",)),
]


def _ids() -> list[str]:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    return ids


def _params() -> list:
    out = []
    for case in CASES:
        marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
        out.append(pytest.param(case, id=case.id, marks=marks))
    return out


@pytest.fixture
def env(platform, project, dataset, tmp_path) -> Env:
    return Env(platform, project, dataset, tmp_path)


def _run(case: Case, env: Env, capsys) -> tuple[bool, str]:
    """Run one case; returns (rejected as expected, message)."""
    call = case.build(env)
    capsys.readouterr()
    env.platform.reset_counts()
    if case.error is CLI:
        try:
            code = call()
        except SystemExit as exit_:  # argparse
            code = exit_.code
        message = capsys.readouterr().err
        return code == 2, message
    try:
        call()
    except case.error as error:
        return True, str(error)
    return False, "no error raised"


@pytest.mark.parametrize("case", _params())
def test_bad_input_is_rejected_with_a_named_field_and_writes_nothing(case: Case, env: Env, capsys):
    TOTALS.tried += 1
    rejected, message = False, ""
    writes = 0
    try:
        rejected, message = _run(case, env, capsys)
    finally:
        writes = env.platform.write_count()
        TOTALS.writes += writes
        named = all(name.lower() in message.lower() for name in case.names)
        TOTALS.ok += int(rejected and named and writes == 0)
    assert rejected, f"{case.id}: expected {getattr(case.error, '__name__', 'exit code 2')}; got: {message}"
    for name in case.names:
        assert name.lower() in message.lower(), f"{case.id}: the message does not name {name!r}: {message}"
    wrote = [f"{r.method} {r.route}" for r in env.platform.requests if r.wrote]
    assert writes == 0, f"{case.id}: bad input made write requests {wrote}"
    assert not [r for r in env.platform.requests if r.method in ("PUT", "PATCH", "DELETE")]


def test_the_table_is_big_enough_and_covers_every_entry_point():
    assert len(CASES) >= 40
    prefixes = {case.id.split("/")[0] for case in CASES}
    assert {"split", "cli-split", "create", "compare", "cli-compare"} <= prefixes


def test_nan_distribution_is_not_silently_accepted_by_the_pure_parser():
    from nodes.data_split import SplitConfig

    with pytest.raises(ValueError, match=r"groups\[0\]\.distribution"):
        SplitConfig.from_node_config(_groups(("a", math.nan), ("b", 100)))
