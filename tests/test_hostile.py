"""Hostile suite: inputs and situations a careless or malicious user can produce, each of which
must end *as documented* (docs/failure-behaviour.md, "Hostile suite").

Every case calls one entry point the way it is called in production: the three nodes through
``main.ServiceRunner`` (with a pipeline context from ``platform.make_context``), both command
lines through ``main.main([...])``, and the local platform with raw HTTP requests. A case ends as
documented when it gives

- the right result (checked on the platform's state), or
- a refusal: a ``ValueError`` (command line: exit code 2) whose message names the field or
  option and the fix, at most ~1 kB, with no write request accepted before it (or, for
  platform-state cases such as a deleted entity, the platform's own error, nothing written), or
- for raw HTTP, the documented status within a second, nothing written.

Writes are counted from ``platform.requests``: any POST/PUT/PATCH/DELETE other than a query
that the platform accepted, plus anything the platform marks as a state change (a bulk update
through a query). The totals are printed in pytest's terminal summary as
``hostile: N tried, N as documented, 0 writes before a refusal``.

Cases whose node still misbehaves are listed in ``KNOWN_FAILING`` with the observed behaviour
(strict xfail: a fixed case fails the run until it is removed from the list).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dtlpy as dl
import pytest
import requests

import emulator
import main
from benchmarks.bench_load import NODE_CONFIG as SPLIT_OK
from emulator import RecordingProgress
from tests.helpers import Totals, box

# ------------------------------------------------------------------------------------------
# Cases whose owner has not fixed the behaviour yet: id -> observed behaviour
# ------------------------------------------------------------------------------------------

KNOWN_FAILING: dict[str, str] = {
    # Create New Model (nodes/create_new_model)
    # local platform (emulator/)
}

# ------------------------------------------------------------------------------------------
# Totals, printed at the end of the run
# ------------------------------------------------------------------------------------------

TOTALS = Totals("hostile: {tried} tried, {ok} as documented, {writes} writes before a refusal")


@pytest.fixture(scope="module", autouse=True)
def _print_totals(request):
    TOTALS.print_at_end(request.config, "hostile-totals")


# ------------------------------------------------------------------------------------------
# What "as documented" means for one case
# ------------------------------------------------------------------------------------------

MAX_MESSAGE = 1024
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: A refusal says what to do: one of these words (or an example) must be in the message.
FIX_WORDS = re.compile(
    r"\b(e\.g\.|example|use|give|run|check|connect|set|remove|rename|fix|pass|choose|leave|save|copy|add|"
    r"tag|label|evaluate|select|put|keep|one of|allowed|required|expected|compare|flatten|shorten|annotate|"
    r"point|cut|drop|delete|replace|write|provide|split|merge|avoid|limit|log ?in|retry)\b",
    re.IGNORECASE,
)
Names = tuple  # each entry: a string, or a tuple of alternatives (any one must be named)


@dataclass(frozen=True)
class Refused:
    """A refusal naming every entry of ``names`` (``error`` for nodes; exit 2 for the CLIs)."""

    names: Names = ()
    error: type[BaseException] = ValueError
    needs_fix: bool = True


@dataclass(frozen=True)
class Result:
    """A normal return; ``check(value, ctx)`` asserts it is the right one."""

    check: Callable[[Any, Ctx], None]


@dataclass(frozen=True)
class Either:
    """The right result, or a refusal naming ``names`` (where the docs allow both)."""

    check: Callable[[Any, Ctx], None]
    names: Names = ()


@dataclass(frozen=True)
class Status:
    """Raw HTTP: one of ``codes``, and nothing written (how fast is the benchmarks' business: no
    case depends on the machine's speed; the request timeout only bounds a hang)."""

    codes: tuple[int, ...]
    names: tuple[str, ...] = ()


Expect = Refused | Result | Either | Status


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[Ctx], Callable[[], Any]]
    expect: Expect
    cli: bool = False


def _named(message: str, names: Names) -> list[str]:
    """The entries of ``names`` the message does not name (case-insensitive)."""
    low = message.lower()
    missing = []
    for entry in names:
        options = entry if isinstance(entry, tuple) else (entry,)
        if not any(option.lower() in low for option in options):
            missing.append("/".join(options))
    return missing


def _refusal_problems(message: str, names: Names, needs_fix: bool) -> list[str]:
    problems = [f"does not name {m!r}" for m in _named(message, names)]
    if len(message) > MAX_MESSAGE:
        problems.append(f"is {len(message)} characters (> {MAX_MESSAGE})")
    if needs_fix and not FIX_WORDS.search(message):
        problems.append("says no fix")
    return problems


def _writes(platform) -> list[str]:
    return [
        f"{r.method} {r.route} -> {r.status}"
        for r in platform.requests
        if r.wrote or (r.method in WRITE_METHODS and not r.route.endswith("/query") and r.status < 400)
    ]


@dataclass
class Outcome:
    documented: bool
    detail: str
    refused: bool
    writes: list[str] = field(default_factory=list)


def _cli_message(stderr: str) -> str:
    """The error part of a command line's stderr (argparse's usage lines left out)."""
    at = stderr.find("error:")
    return stderr[at:].strip() if at >= 0 else stderr.strip()


def _judge(case: Case, call: Callable[[], Any], ctx: Ctx, capsys) -> Outcome:
    expect = case.expect
    platform = ctx.platform
    if isinstance(expect, Status):
        try:
            status, text = call()
        except requests.Timeout:
            return Outcome(False, "no answer (hung)", False, _writes(platform))
        writes = _writes(platform)
        problems = []
        if status not in expect.codes:
            problems.append(f"status {status} not in {expect.codes}: {text[:300]}")
        problems += [f"body does not name {m!r}" for m in _named(text, expect.names)]
        if writes:
            problems.append(f"wrote {writes}")
        return Outcome(not problems, "; ".join(problems) or "ok", status >= 400, writes)
    if case.cli:
        capsys.readouterr()
        try:
            code = call()
        except SystemExit as exit_:  # argparse
            code = exit_.code
        captured = capsys.readouterr()
        writes = _writes(platform)
        if code == 0:
            if isinstance(expect, Refused):
                return Outcome(False, f"exit 0, expected exit 2; stdout: {captured.out[-300:]}", False, writes)
            try:
                expect.check(captured.out, ctx)
            except AssertionError as error:
                return Outcome(False, f"exit 0 but wrong result: {error}", False, writes)
            return Outcome(True, "ok", False, writes)
        message = _cli_message(captured.err)
        if isinstance(expect, Result) or code != 2:
            return Outcome(False, f"exit {code!r}: {message[:500]}", True, writes)
        needs_fix = expect.needs_fix if isinstance(expect, Refused) else True
        problems = _refusal_problems(message, expect.names, needs_fix)
        if writes:
            problems.append(f"wrote before refusing: {writes}")
        return Outcome(not problems, f"message {message[:400]!r}: " + "; ".join(problems), True, writes)
    try:
        value = call()
    except Exception as error:  # noqa: BLE001 - any exception is judged below
        writes = _writes(platform)
        message = str(error)
        wanted = expect.error if isinstance(expect, Refused) else ValueError
        if isinstance(expect, Result) or not isinstance(error, wanted):
            return Outcome(False, f"raised {type(error).__name__}: {message[:500]}", True, writes)
        needs_fix = expect.needs_fix if isinstance(expect, Refused) else True
        problems = _refusal_problems(message, expect.names, needs_fix and wanted is ValueError)
        if writes:
            problems.append(f"wrote before refusing: {writes}")
        return Outcome(not problems, f"message {message[:400]!r}: " + "; ".join(problems), True, writes)
    if isinstance(expect, Refused):
        return Outcome(False, f"returned {value!r}, expected {expect.error.__name__}", False, _writes(platform))
    try:
        expect.check(value, ctx)
    except AssertionError as error:
        return Outcome(False, f"wrong result: {error}", False, _writes(platform))
    return Outcome(True, "ok", False, _writes(platform))


# ------------------------------------------------------------------------------------------
# The shared world (one project per group; writes are not expected where it is shared)
# ------------------------------------------------------------------------------------------

TEST_TAG = {"system": {"tags": {"test": True}}}
TRAIN_TAG = {"system": {"tags": {"train": True}}}
CREATE_OK = {"createModel": "Create New Model", "modelName": "{base_model.name}-next"}
NAN, INF = float("nan"), float("inf")


def _box(label: str, left: float, model: Any = None, confidence: Any = 0.9) -> dict:
    return box(label, left, 10, size=30, model=model, confidence=confidence)


def _nested(depth: int, leaf: Any = 1) -> dict:
    value: Any = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


def _nested_text(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


BIG = "x" * (2 * 1024 * 1024)  # 2 MB
LONG_NAME = "k" * 300_000  # a field or operator name: cut in every message


@dataclass
class World:
    platform: Any
    project: Any
    dataset: Any  # test items with ground truth and both models' predictions
    split_dataset: Any  # items the split cases route (never tagged test in ``dataset``)
    previous: Any
    new: Any
    base: Any
    other_project: Any
    other_dataset: Any
    other_model: Any
    counter: list = field(default_factory=lambda: [0])

    def name(self, prefix: str) -> str:
        self.counter[0] += 1
        return f"{prefix}-{self.counter[0]}"


@pytest.fixture(scope="module")
def world(_platform_session) -> World:
    platform = _platform_session
    project = dl.projects.create(project_name="hostile-project")
    dataset = project.datasets.create(dataset_name="hostile", labels=emulator.make_labels(["cat", "dog", "bird"]))
    split_dataset = project.datasets.create(dataset_name="hostile-split", labels=emulator.make_labels(["cat"]))
    previous = platform.create_model(project, "previous", dataset=dataset, labels=["cat", "dog"])
    new = platform.create_model(project, "new", dataset=dataset, labels=["cat", "dog"])
    base = platform.create_model(project, "base", dataset=dataset, labels=["cat", "dog"])
    for item_id in platform.add_items(dataset, [{"name": f"t{i}.jpg", "metadata": TEST_TAG} for i in range(3)]):
        platform.store.create_annotations(item_id, [_box("cat", 10), _box("cat", 40, previous), _box("cat", 10, new)])
    platform.add_items(dataset, [{"name": f"tr{i}.jpg", "metadata": TRAIN_TAG} for i in range(2)])
    other_project = dl.projects.create(project_name="hostile-other-project")
    other_dataset = other_project.datasets.create(dataset_name="hostile", labels=emulator.make_labels(["cat"]))
    other_model = platform.create_model(other_project, "other", dataset=other_dataset, labels=["cat"])
    platform.add_items(other_dataset, [{"name": "o.jpg", "metadata": TEST_TAG}])
    return World(
        platform, project, dataset, split_dataset, previous, new, base, other_project, other_dataset, other_model
    )


class Ctx:
    """Builders over the shared world for one case (setup happens before the counts are reset)."""

    def __init__(self, world: World, platform, tmp_path) -> None:
        self.w = world
        self.platform = platform
        self.tmp_path = tmp_path
        self.runner = main.ServiceRunner()
        self.progress = RecordingProgress()
        self.state: dict[str, Any] = {}

    # ---------------------------------------------------------------- contexts
    def context(self, node_config: Any = None, has_config: bool = True, project: Any = None) -> dl.Context:
        """A pipeline context whose node carries ``node_config`` verbatim (any JSON value)."""
        project = project or self.w.project
        if has_config and isinstance(node_config, dict):
            return self.platform.make_context(node_config, project=project)
        if not has_config:
            return self.platform.make_context(None, project=project)
        node = {
            "id": f"node-{self.w.name('n')}",
            "name": "node",
            "type": "custom",
            "namespace": {"functionName": "node", "projectName": "", "serviceName": "node"},
            "projectId": project.id,
            "inputs": [],
            "outputs": [],
            "metadata": {"position": {"x": 0, "y": 0, "z": 0}, "customNodeConfig": copy.deepcopy(node_config)},
            "config": {},
        }
        pipeline = self.platform.create_pipeline(project, [node], name=self.w.name("hostile"))
        execution = {
            "id": self.w.name("exec"),
            "pipeline": {"id": pipeline["id"], "nodeId": node["id"], "executionId": "pe"},
        }
        return dl.Context(execution_dict=execution, project=project)

    # ---------------------------------------------------------------- Model Data Split
    def split_item(self, metadata: Any = None, name: str | None = None) -> dl.Item:
        entry = {"name": name or f"{self.w.name('s')}.jpg", "metadata": copy.deepcopy(metadata or {})}
        [item_id] = self.platform.add_items(self.w.split_dataset, [entry])
        return self.w.split_dataset.items.get(item_id=item_id)

    def split(self, node_config: Any = SPLIT_OK, item: Any = "new", has_config: bool = True, **item_kw):
        item = self.split_item(**item_kw) if item == "new" else item
        if isinstance(item, dl.Item):
            self.state["item_id"] = item.id
        context = self.context(node_config, has_config=has_config)
        return lambda: self.runner.data_split(item=item, progress=self.progress, context=context)

    # ---------------------------------------------------------------- Create New Model
    def model(self, project: Any = None, dataset: Any = None, **fields: Any) -> dl.Model:
        project = project or self.w.project
        dataset = dataset or self.w.dataset
        fields.setdefault("labels", ["cat", "dog"])
        return self.platform.create_model(project, self.w.name("m"), dataset=dataset, **fields)

    def create(self, node_config: Any = CREATE_OK, base: Any = "shared", dataset: Any = "same", **inputs: Any):
        base = self.w.base if base == "shared" else base
        dataset = self.w.dataset if dataset == "same" else dataset
        context = self.context(node_config)
        self.state["base"] = base
        return lambda: self.runner.create_new_model(
            base_model=base, dataset=dataset, progress=self.progress, context=context, **inputs
        )

    # ---------------------------------------------------------------- Compare Models
    def compare(self, compare_config: Any = None, previous: Any = "shared", new: Any = "shared", dataset: Any = "same"):
        previous = self.w.previous if previous == "shared" else previous
        new = self.w.new if new == "shared" else new
        dataset = self.w.dataset if dataset == "same" else dataset
        return lambda: self.runner.compare_models(
            previous_model=previous,
            new_model=new,
            compare_config=compare_config,
            dataset=dataset,
            progress=self.progress,
            context=None,
        )

    def evaluated(self, extra: Callable[[Ctx, list[str], Any, Any], None] | None = None, n: int = 3, **new_fields):
        """A fresh dataset with ``n`` test items (ground truth cat box; previous 0.5 off by one px,
        new 0.9 exact), then ``extra(ctx, item_ids, previous, new)`` adds the hostile part."""
        dataset = self.platform.create_dataset(self.w.project, self.w.name("eval"), labels=["cat", "dog"])
        previous = self.model(dataset=dataset)
        new = self.model(dataset=dataset, **new_fields)
        ids = self.platform.add_items(dataset, [{"name": f"e{i}.jpg", "metadata": TEST_TAG} for i in range(n)])
        for item_id in ids:
            self.platform.store.create_annotations(
                item_id, [_box("cat", 10), _box("cat", 40, previous, 0.5), _box("cat", 10, new, 0.9)]
            )
        self.state.update(previous=previous, new=new, dataset=dataset, item_ids=ids)
        if extra is not None:
            extra(self, ids, previous, new)
        return dataset, previous, new

    def compare_evaluated(self, compare_config: Any = None, extra=None, **kw):
        dataset, previous, new = self.evaluated(extra, **kw)
        return self.compare(compare_config, previous=previous, new=new, dataset=dataset)

    # ---------------------------------------------------------------- command lines
    def cli(self, *argv: str) -> Callable[[], Any]:
        return lambda: main.main(list(argv))

    def split_cli(self, *extra: str, project: str | None = None, dataset: str | None = None):
        return self.cli(
            "split",
            "--project",
            project if project is not None else self.w.project.name,
            "--dataset",
            dataset if dataset is not None else self.w.split_dataset.name,
            "--no-progress",
            "--dry-run",
            *extra,
        )

    def compare_cli(self, *extra: str, previous: str | None = None, new: str | None = None, out: Any = "tmp"):
        out = str(self.tmp_path / "report") if out == "tmp" else out
        argv = ["compare", "--previous", previous if previous is not None else self.w.previous.id]
        argv += ["--new", new if new is not None else self.w.new.id]
        if out is not None:
            argv += ["--out", out]
        return self.cli(*argv, *extra)

    def file(self, name: str, data: bytes | str) -> str:
        path = self.tmp_path / name
        if isinstance(data, str):
            data = data.encode("utf-8")
        path.write_bytes(data)
        return str(path)

    # ---------------------------------------------------------------- raw HTTP
    def http(self, method: str, path: str, token: Any = "own", body: Any = None, raw: bytes | None = None, **headers):
        url = self.platform.url + path
        if token == "own":
            headers["Authorization"] = f"Bearer {self.platform.token}"
        elif token is not None:
            headers["Authorization"] = token
        if raw is None and body is not None:
            raw = json.dumps(body).encode("utf-8")
            headers.setdefault("Content-Type", "application/json")
        elif raw is not None:
            headers.setdefault("Content-Type", "application/json")

        def call() -> tuple[int, str]:
            answer = requests.request(method, url, data=raw, headers=headers, timeout=60)  # a hang bound
            return answer.status_code, answer.text

        return call


# ------------------------------------------------------------------------------------------
# Result checks
# ------------------------------------------------------------------------------------------


def _split_tags(ctx: Ctx) -> dict:
    doc = ctx.platform.get_json("items", ctx.state["item_id"])
    return ((doc.get("metadata") or {}).get("system") or {}).get("tags") or {}


def split_routed(*subsets: str) -> Callable[[Any, Ctx], None]:
    """The item is in exactly one of ``subsets`` (tag exactly ``true``) and the action names it."""

    def check(value: Any, ctx: Ctx) -> None:
        tags = _split_tags(ctx)
        chosen = [name for name in subsets if tags.get(name) is True]
        assert len(chosen) == 1, f"tags {tags}: not in exactly one of {subsets}"
        assert ctx.progress.actions == chosen, f"action {ctx.progress.actions}, tags {tags}"
        assert value is not None and value.id == ctx.state["item_id"]

    return check


def split_kept(subset: str, normalised: bool = True) -> Callable[[Any, Ctx], None]:
    def check(value: Any, ctx: Ctx) -> None:
        tags = _split_tags(ctx)
        assert ctx.progress.actions == [subset], f"action {ctx.progress.actions}, tags {tags}"
        if normalised:
            assert tags.get(subset) is True, f"tag {subset} not normalised to true: {tags}"

    return check


def split_only(subset: str) -> Callable[[Any, Ctx], None]:
    """Routed to ``subset``, which is the item's only subset tag that is ``true``."""

    def check(value: Any, ctx: Ctx) -> None:
        tags = _split_tags(ctx)
        assert ctx.progress.actions == [subset], f"action {ctx.progress.actions}, tags {tags}"
        members = [name for name in ("train", "validation", "test") if tags.get(name) is True]
        assert members == [subset], f"tags {tags}: not only in {subset}"

    return check


def created_clean(value: Any, ctx: Ctx) -> None:
    """A new model, not the base, without the base's records or decision tags."""
    new_model, base_model = value
    assert new_model.id != base_model.id == ctx.state["base"].id
    doc = ctx.platform.get_json("models", new_model.id)
    tags = doc.get("tags") or []
    assert "update model" not in tags and "discard" not in tags, tags
    active = ((doc.get("metadata") or {}).get("user") or {}).get("activeLearning") or {}
    assert "comparison" not in active, active
    created_by = active.get("createdBy") or {}
    assert created_by.get("executionId") != "old-execution", created_by


def created(value: Any, ctx: Ctx) -> None:
    new_model, base_model = value
    assert new_model.id != base_model.id and ctx.platform.get_json("models", new_model.id)


def created_in_dataset_project(value: Any, ctx: Ctx) -> None:
    """dtlpy's ``Models.clone`` makes the new model in the dataset's project; the base stays where it is."""
    new_model, base_model = value
    assert new_model.id != base_model.id
    assert ctx.platform.get_json("models", new_model.id)["projectId"] == ctx.w.project.id
    assert ctx.platform.get_json("models", base_model.id)["projectId"] == ctx.w.other_project.id


def _report(ctx: Ctx) -> dict:
    doc = ctx.platform.get_json("models", ctx.state["new"].id)
    return doc["metadata"]["user"]["activeLearning"]["comparison"]


def compared(winner: str | None = None, skipped: int | None = None) -> Callable[[Any, Ctx], None]:
    """A decision with a stored report; ``winner`` ``"new"``/``"previous"``; skipped annotations counted."""

    def check(value: Any, ctx: Ctx) -> None:
        report = _report(ctx)
        assert report.get("decision") in ("update model", "discard"), report
        if winner is not None:
            assert value.id == ctx.state[winner].id, f"winner {value.id}, wanted the {winner} model"
            assert ctx.progress.actions == ["update model" if winner == "new" else "discard"]
        if skipped is not None:
            text = json.dumps(report.get("details", {}).get("skippedAnnotations"))
            assert str(skipped) in text, f"skipped annotations not counted: {text}"

    return check


def shared_compared(winner: str) -> Callable[[Any, Ctx], None]:
    def check(value: Any, ctx: Ctx) -> None:
        wanted = {"new": ctx.w.new, "previous": ctx.w.previous}[winner]
        assert value.id == wanted.id, f"winner {value.id}, wanted the {winner} model"

    return check


def exit_ok(out: str, ctx: Ctx) -> None:  # noqa: ARG001 - a check's signature
    assert out.strip(), "nothing printed"


def compare_cli_wrote(out: str, ctx: Ctx) -> None:
    folder = ctx.state["out"]
    assert (folder / "report.md").read_text(encoding="utf-8").strip(), out


# ------------------------------------------------------------------------------------------
# Builders of the hostile parts
# ------------------------------------------------------------------------------------------


def _groups(*pairs: tuple[Any, Any], **changes: Any) -> dict:
    config = copy.deepcopy(SPLIT_OK)
    config["groups"] = [{"name": n, "distribution": d} for n, d in pairs]
    config.update(changes)
    return config


def _split_with(**changes: Any) -> dict:
    config = copy.deepcopy(SPLIT_OK)
    config.update(changes)
    return config


def _pr(**fields: Any) -> dict:
    return {"precision_recall": fields}


def _check(**fields: Any) -> dict:
    check = {"type": "plot", "legend": "val", "figure": "loss", "maximize": False}
    check.update(fields)
    return {"checks": [check]}


def _add(annotation_of: Callable[[Any, Any], dict], item: int = 0):
    """An ``extra`` that adds one annotation (built from the two models) to test item ``item``."""

    def extra(ctx: Ctx, ids: list[str], previous: Any, new: Any) -> None:
        ctx.platform.store.create_annotations(ids[item], [annotation_of(previous, new)])

    return extra


def _prediction(model: Any, **changes: Any) -> dict:
    annotation = _box("cat", 10, model)
    annotation.update(changes)
    return annotation


def _publish(previous_ys: list, new_ys: list, xs: list | None = None):
    def extra(ctx: Ctx, ids: list[str], previous: Any, new: Any) -> None:  # noqa: ARG001
        for model, ys in ((previous, previous_ys), (new, new_ys)):
            xs_ = xs if xs is not None else list(range(len(ys)))
            ctx.platform.store.publish_metrics(
                [
                    {"modelId": model.id, "figure": "loss", "legend": "val", "data": {"x": x, "y": y}}
                    for x, y in zip(xs_, ys, strict=True)
                ]
            )

    return extra


def _deleted_model(ctx: Ctx) -> dl.Model:
    model = ctx.model()
    ctx.platform.store.delete_model(model.id)
    return model


def _deleted_item(ctx: Ctx) -> dl.Item:
    item = ctx.split_item()
    ctx.platform.store.delete_item(item.id)
    return item


def _base(ctx: Ctx, **fields: Any) -> dl.Model:
    return ctx.model(**fields)


def _renamed_base(ctx: Ctx, name: str) -> dl.Model:
    """A base model whose stored name is ``name`` (set in the store: the REST API may refuse it)."""
    model = ctx.model()
    ctx.platform.store.tables["models"][model.id]["name"] = name
    return dl.models.get(model_id=model.id)


def _compare_cli_out_dir(ctx: Ctx) -> Callable[[], Any]:
    folder = ctx.tmp_path / "existing"
    folder.mkdir()
    (folder / "report.md").write_text("old report", encoding="utf-8")
    ctx.state["out"] = folder
    dataset, previous, new = ctx.evaluated()
    return ctx.compare_cli("--dataset", dataset.id, previous=previous.id, new=new.id, out=str(folder))


def _compare_cli_store(ctx: Ctx) -> Callable[[], Any]:
    ctx.state["out"] = ctx.tmp_path / "stored"
    dataset, previous, new = ctx.evaluated()
    return ctx.compare_cli(
        "--dataset", dataset.id, "--store", previous=previous.id, new=new.id, out=str(ctx.state["out"])
    )


def _query(ctx: Ctx, body: dict, **kw: Any) -> Callable[[], Any]:
    return ctx.http("POST", f"/datasets/{ctx.w.dataset.id}/query", body=body, **kw)


def _items_query(dql_filter: Any, **changes: Any) -> dict:
    body = {"resource": "items", "filter": dql_filter, "page": 0, "pageSize": 100}
    body.update(changes)
    return body


# ------------------------------------------------------------------------------------------
# The cases
# ------------------------------------------------------------------------------------------

NODE = "customNodeConfig"
ROUTED = split_routed("train", "validation", "test")
ROUTED_ABC = split_routed("a", "b", "c")
S = Case  # short alias for the tables below


def _split_cases() -> list[Case]:
    cases = [
        # node config of the wrong type
        S("split/config-int", lambda c: c.split(42), Refused((NODE,))),
        S("split/config-true", lambda c: c.split(True), Refused((NODE,))),
        S("split/config-empty-string", lambda c: c.split(""), Refused((NODE,))),
        S("split/config-empty-list", lambda c: c.split([]), Refused((NODE,))),
        S("split/config-json-text", lambda c: c.split(json.dumps(SPLIT_OK)), Refused((NODE,))),
        # groups of the wrong type
        S("split/groups-null", lambda c: c.split(_split_with(groups=None)), Refused(("groups",))),
        S(
            "split/groups-object",
            lambda c: c.split(_split_with(groups={"train": 80, "test": 20})),
            Refused(("groups",)),
        ),
        S("split/groups-empty", lambda c: c.split(_split_with(groups=[])), Refused(("groups",))),
        S("split/groups-of-null", lambda c: c.split(_split_with(groups=[None, None])), Refused(("groups[0]",))),
        S("split/groups-of-strings", lambda c: c.split(_split_with(groups=["train", "test"])), Refused(("groups[0]",))),
        S(
            "split/group-without-name",
            lambda c: c.split(_split_with(groups=[{"distribution": 50}, {"name": "test", "distribution": 50}])),
            Refused(("groups[0]", "name")),
        ),
        S(
            "split/group-without-distribution",
            lambda c: c.split(_split_with(groups=[{"name": "train"}, {"name": "test", "distribution": 100}])),
            Refused(("groups[0]", "distribution")),
        ),
        # names
        S("split/name-null", lambda c: c.split(_groups((None, 50), ("test", 50))), Refused(("groups[0].name",))),
        S("split/name-int", lambda c: c.split(_groups((5, 50), ("test", 50))), Refused(("groups[0].name",))),
        S(
            "split/name-trailing-newline",
            lambda c: c.split(_groups(("train\n", 50), ("test", 50))),
            Refused(("groups[0].name",)),
        ),
        S("split/name-nul", lambda c: c.split(_groups(("tr\x00ain", 50), ("test", 50))), Refused(("groups[0].name",))),
        S("split/name-unicode", lambda c: c.split(_groups(("tråin", 50), ("test", 50))), Refused(("groups[0].name",))),
        S("split/name-cjk", lambda c: c.split(_groups(("训练", 50), ("test", 50))), Refused(("groups[0].name",))),
        S(
            "split/name-leading-space",
            lambda c: c.split(_groups((" train", 50), ("test", 50))),
            Refused(("groups[0].name",)),
        ),
        S("split/name-dot", lambda c: c.split(_groups(("train.x", 50), ("test", 50))), Refused(("groups[0].name",))),
        S("split/name-dollar", lambda c: c.split(_groups(("$train", 50), ("test", 50))), Refused(("groups[0].name",))),
        S(
            "split/name-1000-chars",
            lambda c: c.split(_groups(("a" * 1000, 50), ("test", 50))),
            Refused(("groups[0].name",)),
        ),
        S(
            "split/node-name-trailing-newline",
            lambda c: c.split(_split_with(name="Model Data Split\n")),
            Refused(("name",)),
        ),
        # distributions
        S(
            "split/dist-null",
            lambda c: c.split(_groups(("train", None), ("test", 100))),
            Refused(("groups[0].distribution",)),
        ),
        S(
            "split/dist-list",
            lambda c: c.split(_groups(("train", [80]), ("test", 20))),
            Refused(("groups[0].distribution",)),
        ),
        S(
            "split/dist-object",
            lambda c: c.split(_groups(("train", {"v": 80}), ("test", 20))),
            Refused(("groups[0].distribution",)),
        ),
        S(
            "split/dist-percent-sign",
            lambda c: c.split(_groups(("train", "80%"), ("test", 20))),
            Refused(("groups[0].distribution",)),
        ),
        S(
            "split/dist-1e309-string",
            lambda c: c.split(_groups(("train", "1e309"), ("test", 0))),
            Refused(("groups[0].distribution",)),
        ),
        S(
            "split/dist-inf",
            lambda c: c.split(_groups(("train", INF), ("test", 0))),
            Refused(("groups[0].distribution",)),
        ),
        S(
            "split/dist-minus-inf",
            lambda c: c.split(_groups(("train", -INF), ("test", 100))),
            Refused(("groups[0].distribution",)),
        ),
        S(
            "split/dist-huge-int",
            lambda c: c.split(_groups(("train", 10**100), ("test", 0))),
            Refused(("groups[0].distribution",)),
        ),
        S(
            "split/dist-empty-string",
            lambda c: c.split(_groups(("train", ""), ("test", 100))),
            Refused(("groups[0].distribution",)),
        ),
        S(
            "split/dist-hex-string",
            lambda c: c.split(_groups(("train", "0x50"), ("test", 20))),
            Refused(("groups[0].distribution",)),
        ),
        S(
            "split/dist-false",
            lambda c: c.split(_groups(("train", False), ("test", 100))),
            Refused(("groups[0].distribution",)),
        ),
        S(
            "split/dist-negative-pair",
            lambda c: c.split(_groups(("train", -20), ("test", 120))),
            Refused(("distribution",)),
        ),
        S(
            "split/sum-99.9",
            lambda c: c.split(_groups(("train", 50), ("test", 49.9))),
            Refused(("distribution", "100")),
        ),
        S(
            "split/sum-99-thirds",
            lambda c: c.split(_groups(("a", 33), ("b", 33), ("c", 33))),
            Refused(("distribution", "100")),
        ),
        S(
            "split/duplicate-names-3",
            lambda c: c.split(_groups(("a", 40), ("b", 20), ("a", 40))),
            Refused(("groups[2].name",)),
        ),
        # other fields
        S("split/seed-string", lambda c: c.split(_split_with(seed="1")), Refused(("seed",))),
        S("split/seed-float", lambda c: c.split(_split_with(seed=1.5)), Refused(("seed",))),
        S("split/seed-bool", lambda c: c.split(_split_with(seed=True)), Refused(("seed",))),
        S("split/seed-2-pow-32", lambda c: c.split(_split_with(seed=2**32)), Refused(("seed",))),
        S("split/seed-huge", lambda c: c.split(_split_with(seed=10**30)), Refused(("seed",))),
        S("split/seed-nan", lambda c: c.split(_split_with(seed=NAN)), Refused(("seed",))),
        S("split/itemMetadata-int", lambda c: c.split(_split_with(itemMetadata=1)), Refused(("itemMetadata",))),
        S("split/itemMetadata-null", lambda c: c.split(_split_with(itemMetadata="true")), Refused(("itemMetadata",))),
        # unknown keys: refused with the nearest valid key; the panel's own keys are accepted
        S("split/unknown-key-refused", lambda c: c.split(_split_with(grups=[])), Refused(("grups", "groups"))),
        S(
            "split/unknown-key-itemMetdata",
            lambda c: c.split(_split_with(itemMetdata=False)),
            Refused(("itemMetdata", "itemMetadata")),
        ),
        S(
            "split/unknown-group-key",
            lambda c: c.split(
                _split_with(groups=[{"name": "train", "distrbution": 80}, {"name": "test", "distribution": 20}])
            ),
            Refused(("groups[0].distrbution", "distribution")),
        ),
        S(
            "split/panel-keys-accepted",
            lambda c: c.split(
                _split_with(
                    ports=[{"portId": "p", "action": "train", "name": "item", "type": "Item", "portPercentage": 80}],
                    groups=[
                        {"id": "g1", "name": "train", "distribution": 80},
                        {"id": "g2", "name": "test", "distribution": 20},
                    ],
                )
            ),
            Result(split_routed("train", "test")),
        ),
        # shares: exactly 100 as written
        S(
            "split/sum-99.995",
            lambda c: c.split(_groups(("a", 33.33), ("b", 33.33), ("c", 33.335))),
            Refused(("distribution", "100")),
        ),
        S(
            "split/sum-float-rounding",
            lambda c: c.split(_groups(("a", 0.1), ("b", 0.2), ("c", 99.7))),
            Result(ROUTED_ABC),
        ),
        # names of format characters or with nothing visible
        S("split/node-name-spaces", lambda c: c.split(_split_with(name="   ")), Refused(("name",))),
        S("split/node-name-rlo", lambda c: c.split(_split_with(name="\u202e")), Refused(("name",))),
        S(
            "split/name-zero-width",
            lambda c: c.split(_groups(("\u200b", 50), ("test", 50))),
            Refused(("groups[0].name",)),
        ),
        S("split/deep-config", lambda c: c.split(_split_with(extra=_nested(200))), Refused((NODE,))),
        S("split/2mb-config", lambda c: c.split(_split_with(name=BIG)), Refused((NODE,))),
        # items
        S("split/item-id-string", lambda c: c.split(item=c.split_item().id), Refused(("item",))),
        S("split/item-dict", lambda c: c.split(item={"id": "x", "metadata": {}}), Refused(("item",))),
        S("split/item-is-a-dataset", lambda c: c.split(item=c.w.split_dataset), Refused(("item",))),
        S("split/item-is-a-model", lambda c: c.split(item=c.w.base), Refused(("item", "Item"))),
        S("split/item-json", lambda c: c.split(item=c.split_item().to_json()), Refused(("item", "Item"))),
        S(
            "split/item-deleted",
            lambda c: c.split(item=_deleted_item(c)),
            Refused((), error=dl.exceptions.NotFound, needs_fix=False),
        ),
        # right results on odd but valid input
        S(
            "split/numeric-strings",
            lambda c: c.split(_groups(("train", "80"), ("test", "20"))),
            Result(split_routed("train", "test")),
        ),
        S(
            "split/thirds-sum-100",
            lambda c: c.split(_groups(("a", 33.3), ("b", 33.3), ("c", 33.4))),
            Result(split_routed("a", "b", "c")),
        ),
        S(
            "split/zero-share-group",
            lambda c: c.split(_groups(("train", 100), ("test", 0))),
            Result(split_routed("train")),
        ),
        S("split/no-custom-config", lambda c: c.split(has_config=False), Result(ROUTED)),
        S("split/item-metadata-system-null", lambda c: c.split(metadata={"system": None}), Result(ROUTED)),
        S("split/item-tags-null", lambda c: c.split(metadata={"system": {"tags": None}}), Result(ROUTED)),
        S("split/item-tags-list", lambda c: c.split(metadata={"system": {"tags": ["test"]}}), Result(ROUTED)),
        S("split/item-user-null", lambda c: c.split(metadata={"user": None}), Result(ROUTED)),
        S("split/item-tag-train-1", lambda c: c.split(metadata={"system": {"tags": {"train": 1}}}), Result(ROUTED)),
        S(
            "split/item-tag-train-string",
            lambda c: c.split(metadata={"system": {"tags": {"train": "true"}}}),
            Result(ROUTED),
        ),
        S(
            "split/item-tag-test-true-kept",
            lambda c: c.split(metadata={"system": {"tags": {"test": True}}}),
            Result(split_kept("test")),
        ),
        # tagged train and test: held-out wins (a test item trained on leaks the evaluation)
        S(
            "split/item-tagged-train-and-test",
            lambda c: c.split(metadata={"system": {"tags": {"train": True, "test": True}}}),
            Result(split_only("test")),
        ),
        S(
            "split/item-tagged-train-and-validation",
            lambda c: c.split(metadata={"system": {"tags": {"validation": True, "train": True}}}),
            Result(split_only("validation")),
        ),
        # a null tag reads as absent (a platform that stores the null a removal sends)
        S(
            "split/item-tag-null-is-absent",
            lambda c: c.split(metadata={"system": {"tags": {"train": None, "test": True}}}),
            Result(split_kept("test")),
        ),
        S("split/item-unicode-name", lambda c: c.split(name="图像 \u202e.jpg"), Result(ROUTED)),
    ]
    return cases


def _create_cases() -> list[Case]:
    MC = "model_configuration"
    return [
        # entity inputs of the wrong type
        S("create/base-id-string", lambda c: c.create(base=c.w.base.id), Refused(("base_model",))),
        S("create/base-dict", lambda c: c.create(base={"id": c.w.base.id}), Refused(("base_model",))),
        S("create/base-is-a-dataset", lambda c: c.create(base=c.w.dataset), Refused(("base_model",))),
        S("create/dataset-id-string", lambda c: c.create(dataset=c.w.dataset.id), Refused(("dataset",))),
        S("create/dataset-is-a-model", lambda c: c.create(dataset=c.w.base), Refused(("dataset",))),
        S(
            "create/base-of-another-project",
            lambda c: c.create(base=c.w.other_model),
            Result(created_in_dataset_project),
        ),
        S(
            "create/base-deleted",
            lambda c: c.create(base=_deleted_model(c)),
            Refused((), error=dl.exceptions.NotFound, needs_fix=False),
        ),
        # base model fields the node reads
        S(
            "create/base-metadata-null",
            lambda c: c.create(base=_base(c, metadata=None)),
            Either(created, ("base_model.metadata",)),
        ),
        S(
            "create/base-metadata-list",
            lambda c: c.create(base=_base_with(c, metadata=[1])),
            Refused(("base_model.metadata",)),
        ),
        S(
            "create/base-user-null",
            lambda c: c.create(base=_base(c, metadata={"user": None})),
            Either(created, ("base_model.metadata.user",)),
        ),
        S(
            "create/base-user-string",
            lambda c: c.create(base=_base(c, metadata={"user": "x"})),
            Refused(("metadata.user",)),
        ),
        S(
            "create/base-activeLearning-null",
            lambda c: c.create(base=_base(c, metadata={"user": {"activeLearning": None}})),
            Result(created_clean),  # null reads as absent
        ),
        S(
            "create/base-activeLearning-list",
            lambda c: c.create(base=_base(c, metadata={"user": {"activeLearning": []}})),
            Refused(("activeLearning",)),
        ),
        S(
            "create/base-configuration-list",
            lambda c: c.create(base=_base_with(c, configuration=["not", "an", "object"])),
            Refused(("configuration",)),
        ),
        S("create/base-tags-string", lambda c: c.create(base=_base_with(c, tags="update model")), Refused(("tags",))),
        S(
            "create/base-status-null",
            lambda c: c.create(base=_base_with(c, status=None)),
            Refused(("base_model.status",)),
        ),
        S(
            "create/base-status-failed",
            lambda c: c.create(base=_base(c, status="failed")),
            Refused(("base_model.status",)),
        ),
        S("create/base-status-int", lambda c: c.create(base=_base_with(c, status=5)), Refused(("base_model.status",))),
        S(
            "create/base-records-not-inherited",
            lambda c: c.create(
                base=_base(
                    c,
                    tags=["update model"],
                    metadata={
                        "user": {
                            "activeLearning": {
                                "createdBy": {"executionId": "old-execution"},
                                "comparison": {"decision": "update model"},
                            }
                        }
                    },
                )
            ),
            Result(created_clean),
        ),
        # node config
        S("create/config-int", lambda c: c.create(node_config=7), Refused((NODE,))),
        S("create/config-string", lambda c: c.create(node_config="{base_model.name}"), Refused((NODE,))),
        S(
            "create/config-deep",
            lambda c: c.create(node_config={"modelName": "x", "deep": _nested(200)}),
            Refused((NODE,)),
        ),
        S("create/config-2mb", lambda c: c.create(node_config={"modelName": "x", "pad": BIG}), Refused((NODE,))),
        S("create/name-null-default", lambda c: c.create(node_config={"modelName": None}), Result(created)),
        S("create/name-empty", lambda c: c.create(node_config={"modelName": ""}), Refused(("modelName",))),
        S("create/name-blank", lambda c: c.create(node_config={"modelName": "   "}), Refused(("modelName",))),
        S("create/name-slash", lambda c: c.create(node_config={"modelName": "a/b"}), Refused(("modelName",))),
        S("create/name-newline", lambda c: c.create(node_config={"modelName": "model\n"}), Refused(("modelName",))),
        S("create/name-nul", lambda c: c.create(node_config={"modelName": "mo\x00del"}), Refused(("modelName",))),
        S("create/name-10k", lambda c: c.create(node_config={"modelName": "m" * 10_000}), Refused(("modelName",))),
        S("create/name-rlo", lambda c: c.create(node_config={"modelName": "\u202eledom"}), Refused(("modelName",))),
        S("create/name-zero-width", lambda c: c.create(node_config={"modelName": "\u200b"}), Refused(("modelName",))),
        S(
            "create/base-name-bidi-isolate",
            lambda c: c.create(node_config={"modelName": "{base_model.name}"}, base=_renamed_base(c, "\u2066\u2069")),
            Refused(("modelName",)),
        ),
        S(
            "create/config-unknown-key",
            lambda c: c.create(node_config={**CREATE_OK, "modelNmae": "x"}),
            Refused(("modelNmae", "modelName")),
        ),
        S(
            "create/config-platform-keys",
            lambda c: c.create(node_config={**CREATE_OK, "name": "Create New Model", "validation": {"valid": True}}),
            Result(created),
        ),
        S("create/name-empty-braces", lambda c: c.create(node_config={"modelName": "{}"}), Refused(("modelName",))),
        S("create/name-positional", lambda c: c.create(node_config={"modelName": "{0}"}), Refused(("modelName",))),
        S(
            "create/name-conversion",
            lambda c: c.create(node_config={"modelName": "{base_model.name!r}"}),
            Refused(("modelName",)),
        ),
        S(
            "create/name-date-slash",
            lambda c: c.create(node_config={"modelName": "{now:%Y/%m}"}),
            Refused(("modelName",)),
        ),
        S("create/name-list", lambda c: c.create(node_config={"modelName": ["a"]}), Refused(("modelName",))),
        S(
            "create/name-unicode",
            lambda c: c.create(node_config={"modelName": "модель-{base_model.name}-✓"}),
            Result(created),
        ),
        # model_configuration
        S("create/mc-nan", lambda c: c.create(model_configuration={"lr": NAN}), Refused((MC, "lr"))),
        S("create/mc-inf-in-list", lambda c: c.create(model_configuration={"sizes": [1, INF]}), Refused((MC, "sizes"))),
        S("create/mc-nan-json-text", lambda c: c.create(model_configuration='{"lr": NaN}'), Refused((MC,))),
        S("create/mc-1e309-json-text", lambda c: c.create(model_configuration='{"lr": 1e309}'), Refused((MC,))),
        S("create/mc-deep-10000", lambda c: c.create(model_configuration=_nested(10_000)), Refused((MC,))),
        S("create/mc-deep-10000-text", lambda c: c.create(model_configuration=_nested_text(10_000)), Refused((MC,))),
        S("create/mc-2mb", lambda c: c.create(model_configuration={"pad": BIG}), Refused((MC,))),
        S("create/mc-int", lambda c: c.create(model_configuration=5), Refused((MC,))),
        S("create/mc-true", lambda c: c.create(model_configuration=True), Refused((MC,))),
        S("create/mc-list-text", lambda c: c.create(model_configuration="[1]"), Refused((MC,))),
        S("create/mc-empty-ok", lambda c: c.create(model_configuration={}), Result(created)),
        # subsets
        S("create/train-subset-deep", lambda c: c.create(train_subset=_nested(10_000)), Refused(("train_subset",))),
        S(
            "create/train-subset-nan",
            lambda c: c.create(train_subset={"filter": {"x": NAN}}),
            Refused(("train_subset",)),
        ),
        S(
            "create/train-subset-filter-null",
            lambda c: c.create(train_subset={"filter": None}),
            Either(created, ("train_subset",)),
        ),
        S(
            "create/train-subset-filter-list",
            lambda c: c.create(train_subset={"filter": []}),
            Refused(("train_subset",)),
        ),
        S(
            "create/train-subset-and-string",
            lambda c: c.create(train_subset={"filter": {"$and": "x"}}),
            Refused(("train_subset",)),
        ),
        S(
            "create/train-subset-page-size-negative",
            lambda c: c.create(train_subset={"filter": {"dir": "/"}, "pageSize": -1}),
            Refused(("train_subset.pageSize",)),
        ),
        S(
            "create/train-subset-page-string",
            lambda c: c.create(train_subset={"filter": {"dir": "/"}, "page": "a"}),
            Refused(("train_subset.page",)),
        ),
        S("create/validation-subset-int", lambda c: c.create(validation_subset=5), Refused(("validation_subset",))),
        S(
            "create/validation-subset-deep-text",
            lambda c: c.create(validation_subset=_nested_text(10_000)),
            Refused(("validation_subset",)),
        ),
        # only null and {} mean "not given"
        S("create/train-subset-empty-string", lambda c: c.create(train_subset=""), Refused(("train_subset",))),
        S("create/train-subset-blank", lambda c: c.create(train_subset=" \n "), Refused(("train_subset",))),
        S(
            "create/validation-subset-empty-list",
            lambda c: c.create(validation_subset=[]),
            Refused(("validation_subset",)),
        ),
        S("create/subsets-empty-object", lambda c: c.create(train_subset={}, validation_subset=None), Result(created)),
        # the same train and validation subset is a leak, unless the node config allows it
        S(
            "create/same-train-and-validation",
            lambda c: c.create(train_subset={"dir": "/"}, validation_subset={"filter": {"dir": "/"}}),
            Refused(("validation_subset", "train_subset", "allowSameTrainAndValidation")),
        ),
        S(
            "create/same-subsets-allowed",
            lambda c: c.create(
                node_config={**CREATE_OK, "allowSameTrainAndValidation": True},
                train_subset={"dir": "/"},
                validation_subset={"dir": "/"},
            ),
            Result(created),
        ),
        S(
            "create/subset-long-operator",
            lambda c: c.create(train_subset={"filter": {"$" + LONG_NAME: 1}}),
            Refused(("train_subset.filter.$kkk",)),
        ),
        S(
            "create/subset-long-field",
            lambda c: c.create(validation_subset={LONG_NAME: {"$regexx": "a"}}),
            Refused(("validation_subset.filter.kkk", "$regexx")),
        ),
    ]


def _base_with(ctx: Ctx, **attributes: Any) -> dl.Model:
    """A base model entity whose attributes were changed in memory (shapes the platform refuses to store)."""
    model = ctx.model()
    for name, value in attributes.items():
        setattr(model, name, value)
    return model


def _compare_cases() -> list[Case]:
    PR = "precision_recall"
    return [
        # the config's type and size
        S("compare/config-int", lambda c: c.compare(5), Refused(("compare_config",))),
        S("compare/config-true", lambda c: c.compare(True), Refused(("compare_config",))),
        S("compare/config-empty-string", lambda c: c.compare(""), Refused(("compare_config",))),
        S("compare/config-json-list-text", lambda c: c.compare("[]"), Refused(("compare_config",))),
        S(
            "compare/config-nan-json-text",
            lambda c: c.compare('{"wins": NaN, "precision_recall": {}}'),
            Refused(("compare_config",)),
        ),
        S("compare/config-deep-10000", lambda c: c.compare(_nested(10_000)), Refused(("compare_config",))),
        S("compare/config-deep-10000-text", lambda c: c.compare(_nested_text(10_000)), Refused(("compare_config",))),
        S(
            "compare/config-2mb",
            lambda c: c.compare({"precision_recall": {}, "pad": BIG}),
            Refused(("compare_config",)),
        ),
        S("compare/pr-null-only", lambda c: c.compare({PR: None}), Refused(("compare_config",))),
        S("compare/pr-list", lambda c: c.compare({PR: []}), Refused((PR,))),
        S("compare/pr-string", lambda c: c.compare({PR: "yes"}), Refused((PR,))),
        S("compare/pr-unknown-key", lambda c: c.compare(_pr(iou=0.5)), Refused((PR, "iou"))),
        # wins
        S("compare/wins-nan", lambda c: c.compare({"wins": NAN, PR: {}}), Refused(("wins",))),
        S("compare/wins-inf", lambda c: c.compare({"wins": INF, PR: {}}), Refused(("wins",))),
        S("compare/wins-1e309-string", lambda c: c.compare({"wins": "1e309", PR: {}}), Refused(("wins",))),
        S("compare/wins-empty-string", lambda c: c.compare({"wins": "", PR: {}}), Refused(("wins",))),
        S("compare/wins-list", lambda c: c.compare({"wins": [0.6], PR: {}}), Refused(("wins",))),
        S("compare/wins-null", lambda c: c.compare({"wins": None, PR: {}}), Either(shared_compared("new"), ("wins",))),
        S("compare/wins-nan-string", lambda c: c.compare({"wins": "nan", PR: {}}), Refused(("wins",))),
        S("compare/wins-huge-int", lambda c: c.compare({"wins": 10**400, PR: {}}), Refused(("wins",))),
        # precision_recall fields
        S("compare/iou-one-ok", lambda c: c.compare(_pr(iou_threshold=1)), Result(shared_compared("new"))),
        S("compare/iou-negative", lambda c: c.compare(_pr(iou_threshold=-1)), Refused(("iou_threshold",))),
        S("compare/iou-inf", lambda c: c.compare(_pr(iou_threshold=INF)), Refused(("iou_threshold",))),
        S("compare/iou-string", lambda c: c.compare(_pr(iou_threshold="0.5")), Refused(("iou_threshold",))),
        S("compare/iou-bool", lambda c: c.compare(_pr(iou_threshold=True)), Refused(("iou_threshold",))),
        S("compare/min-delta-inf", lambda c: c.compare(_pr(min_delta=INF)), Refused(("min_delta",))),
        S("compare/min-delta-minus-inf", lambda c: c.compare(_pr(min_delta=-INF)), Refused(("min_delta",))),
        S("compare/min-delta-nan", lambda c: c.compare(_pr(min_delta=NAN)), Refused(("min_delta",))),
        S("compare/min-delta-string", lambda c: c.compare(_pr(min_delta="0")), Refused(("min_delta",))),
        S("compare/resamples-1e9", lambda c: c.compare(_pr(confidence=0.95, resamples=10**9)), Refused(("resamples",))),
        S("compare/resamples-999", lambda c: c.compare(_pr(confidence=0.95, resamples=999)), Refused(("resamples",))),
        S(
            "compare/resamples-float",
            lambda c: c.compare(_pr(confidence=0.95, resamples=1000.5)),
            Refused(("resamples",)),
        ),
        S("compare/resamples-bool", lambda c: c.compare(_pr(resamples=True)), Refused(("resamples",))),
        S("compare/confidence-zero", lambda c: c.compare(_pr(confidence=0)), Refused(("confidence",))),
        S("compare/confidence-one", lambda c: c.compare(_pr(confidence=1)), Refused(("confidence",))),
        S("compare/confidence-nan", lambda c: c.compare(_pr(confidence=NAN)), Refused(("confidence",))),
        S("compare/seed-negative", lambda c: c.compare(_pr(seed=-1)), Refused(("seed",))),
        S("compare/seed-float", lambda c: c.compare(_pr(seed=1.5)), Refused(("seed",))),
        S("compare/labels-empty", lambda c: c.compare(_pr(labels=[])), Refused(("labels",))),
        S("compare/labels-string", lambda c: c.compare(_pr(labels="cat")), Refused(("labels",))),
        S("compare/labels-null-entry", lambda c: c.compare(_pr(labels=[None])), Refused(("labels[0]",))),
        S("compare/labels-int-entry", lambda c: c.compare(_pr(labels=["cat", 5])), Refused(("labels[1]",))),
        S("compare/interpolation-case", lambda c: c.compare(_pr(interpolation="COCO")), Refused(("interpolation",))),
        S("compare/interpolation-null", lambda c: c.compare(_pr(interpolation=None)), Refused(("interpolation",))),
        S("compare/per-label-string", lambda c: c.compare(_pr(per_label="true")), Refused(("per_label",))),
        S("compare/per-label-int", lambda c: c.compare(_pr(per_label=1)), Refused(("per_label",))),
        S(
            "compare/relative-change-nan",
            lambda c: c.compare(_pr(min_relative_change=NAN)),
            Refused(("min_relative_change",)),
        ),
        S("compare/test-subset-list", lambda c: c.compare(_pr(test_subset=[])), Refused(("test_subset",))),
        S("compare/test-subset-deep", lambda c: c.compare(_pr(test_subset=_nested(500))), Refused(("compare_config",))),
        S(
            "compare/test-subset-where",
            lambda c: c.compare(_pr(test_subset={"filter": {"$where": "1"}})),
            Refused(("test_subset", "$where")),
        ),
        S(
            "compare/test-subset-long-field",
            lambda c: c.compare(_pr(test_subset={"filter": {LONG_NAME: {"$regexx": "a"}}})),
            Refused(("test_subset.filter.kkk", "$regexx")),
        ),
        S(
            "compare/test-subset-long-operator",
            lambda c: c.compare(_pr(test_subset={"$" + LONG_NAME: [{"dir": "/"}]})),
            Refused(("test_subset.filter.$kkk",)),
        ),
        S("compare/min-delta-negative", lambda c: c.compare(_pr(min_delta=-0.01)), Refused(("min_delta", "negative"))),
        S(
            "compare/relative-change-negative",
            lambda c: c.compare(_pr(min_relative_change=-0.05)),
            Refused(("min_relative_change", "negative")),
        ),
        S(
            "compare/config-duplicate-key-text",
            lambda c: c.compare('{"precision_recall": {"min_delta": 0, "min_delta": 0.5}}'),
            Refused(("compare_config", "min_delta")),
        ),
        S("compare/verbose-string", lambda c: c.compare({"verbose": "yes", PR: {}}), Refused(("verbose",))),
        # checks
        S("compare/checks-string", lambda c: c.compare({"checks": "loss"}), Refused(("checks",))),
        S("compare/checks-null-entry", lambda c: c.compare({"checks": [None]}), Refused(("checks[0]",))),
        S("compare/checks-empty-figure", lambda c: c.compare(_check(figure="")), Refused(("checks[0].figure",))),
        S("compare/checks-x-index-string", lambda c: c.compare(_check(x_index="last")), Refused(("x_index",))),
        S("compare/checks-x-index-float", lambda c: c.compare(_check(x_index=1.5)), Refused(("x_index",))),
        S("compare/checks-maximize-string", lambda c: c.compare(_check(maximize="no")), Refused(("maximize",))),
        S("compare/checks-min-delta-nan", lambda c: c.compare(_check(min_delta=NAN)), Refused(("min_delta",))),
        S(
            "compare/checks-min-delta-negative",
            lambda c: c.compare(_check(min_delta=-1)),
            Refused(("checks[0].min_delta",)),
        ),
        S("compare/checks-unknown-key", lambda c: c.compare(_check(extra=1)), Refused(("checks[0]", "extra"))),
        S("compare/checks-x-value", lambda c: c.compare(_check(x_value=3)), Refused(("x_index",))),
        # entity inputs
        S("compare/previous-id-string", lambda c: c.compare(previous=c.w.previous.id), Refused(("previous_model",))),
        S("compare/new-dict", lambda c: c.compare(new={"id": c.w.new.id}), Refused(("new_model",))),
        S("compare/previous-is-a-dataset", lambda c: c.compare(previous=c.w.dataset), Refused(("previous_model",))),
        S("compare/dataset-id-string", lambda c: c.compare(dataset=c.w.dataset.id), Refused(("dataset",))),
        S("compare/dataset-is-a-model", lambda c: c.compare(dataset=c.w.base), Refused(("dataset",))),
        S(
            "compare/previous-of-another-project",
            lambda c: c.compare(previous=c.w.other_model),
            Refused((("previous", "project"),)),
        ),
        S("compare/dataset-of-another-project", lambda c: c.compare(dataset=c.w.other_dataset), Refused(("dataset",))),
        # evaluations
        S("compare/baseline-new-wins", lambda c: c.compare_evaluated(), Result(compared("new"))),
        S(
            "compare/new-without-predictions",
            lambda c: c.compare(new=c.model(), previous=c.w.previous),
            Refused(("new model", "no predictions")),
        ),
        S(
            "compare/new-predicts-some-items",
            lambda c: c.compare_evaluated(extra=_drop_predictions_of("new", keep=1), n=4),
            Result(compared()),
        ),
        S(
            "compare/empty-test-subset",
            lambda c: c.compare(dataset=c.platform.create_dataset(c.w.project, c.w.name("empty"), labels=["cat"])),
            Refused(("test_subset",)),
        ),
        S(
            "compare/wins-tiny-no-vote-won",
            lambda c: c.compare_evaluated({"wins": 1e-300, PR: {"min_delta": 1}}),
            Result(compared("previous")),
        ),
        S("compare/wins-all-string", lambda c: c.compare_evaluated({"wins": " ALL ", PR: {}}), Result(compared("new"))),
        S(
            "compare/string-confidence",
            lambda c: c.compare_evaluated(extra=_add(lambda p, n: _box("cat", 200, n, confidence="0.9"))),
            Either(compared(skipped=1), ("annotation",)),
        ),
        S(
            "compare/null-confidence",
            lambda c: c.compare_evaluated(extra=_add(lambda p, n: _box("cat", 200, n, confidence=None))),
            Either(compared(), ("annotation",)),
        ),
        S(
            "compare/polygon-two-points",
            lambda c: c.compare_evaluated(
                extra=_add(
                    lambda p, n: _prediction(n, type="segment", coordinates=[[{"x": 1, "y": 1}, {"x": 5, "y": 5}]])
                )
            ),
            Either(compared(skipped=1), ("annotation",)),
        ),
        S(
            "compare/box-empty-coordinates",
            lambda c: c.compare_evaluated(extra=_add(lambda p, n: _prediction(n, coordinates=[]))),
            Either(compared(skipped=1), ("annotation",)),
        ),
        S(
            "compare/box-null-coordinate",
            lambda c: c.compare_evaluated(
                extra=_add(lambda p, n: _prediction(n, coordinates=[{"x": None, "y": 1}, {"x": 5, "y": 5}]))
            ),
            Either(compared(skipped=1), ("annotation",)),
        ),
        S(
            "compare/ground-truth-metadata-null",
            lambda c: c.compare_evaluated(extra=_add(lambda p, n: dict(_box("cat", 300), metadata=None))),
            Result(compared("new")),
        ),
        S(
            "compare/prediction-on-item-without-ground-truth",
            lambda c: c.compare_evaluated(extra=_item_without_ground_truth),
            Result(compared("new")),
        ),
        S(
            "compare/new-model-metadata-user-null",
            lambda c: c.compare_evaluated(metadata={"user": None}),
            Result(compared("new")),
        ),
        S(
            "compare/check-samples-x-null",
            lambda c: c.compare_evaluated(_check(), extra=_publish([1.0, 0.5], [1.0, 0.1], xs=[0, None])),
            Either(compared(), ("x",)),
        ),
        S(
            "compare/check-new-loss-nan",
            lambda c: c.compare_evaluated(_check(), extra=_publish([1.0, 0.5], [1.0, NAN])),
            Result(compared("previous")),
        ),
        S(
            "compare/check-new-loss-minus-inf",
            lambda c: c.compare_evaluated(_check(), extra=_publish([1.0, 0.5], [1.0, -INF])),
            Result(compared("previous")),
        ),
    ]


def _drop_predictions_of(which: str, keep: int):
    def extra(ctx: Ctx, ids: list[str], previous: Any, new: Any) -> None:
        model = {"new": new, "previous": previous}[which]
        for item_id in ids[keep:]:
            for annotation_id in list(ctx.platform.store.item_annotations.get(item_id, [])):
                doc = ctx.platform.store.tables["annotations"][annotation_id]
                owner = (((doc.get("metadata") or {}).get("user") or {}).get("model") or {}).get("model_id")
                if owner == model.id:
                    ctx.platform.store.delete_annotation(annotation_id)

    return extra


def _item_without_ground_truth(ctx: Ctx, ids: list[str], previous: Any, new: Any) -> None:  # noqa: ARG001
    [item_id] = ctx.platform.add_items(ctx.state["dataset"], [{"name": "fp.jpg", "metadata": TEST_TAG}])
    ctx.platform.store.create_annotations(item_id, [_box("cat", 50, previous, 0.9), _box("cat", 50, new, 0.1)])


def _split_cli_cases() -> list[Case]:
    C = "--seed"

    def cli(case_id: str, build, expect) -> Case:
        return Case(case_id, build, expect, cli=True)

    return [
        cli("cli-split/seed-abc", lambda c: c.split_cli("--seed", "abc"), Refused((C,))),
        cli("cli-split/seed-1e3", lambda c: c.split_cli("--seed", "1e3"), Refused((C,))),
        cli("cli-split/seed-2-pow-32", lambda c: c.split_cli("--seed", str(2**32)), Refused((C,))),
        cli("cli-split/seed-huge", lambda c: c.split_cli("--seed", "9" * 40), Refused((C,))),
        cli("cli-split/seed-empty", lambda c: c.split_cli("--seed", ""), Refused((C,))),
        cli("cli-split/seed-hex", lambda c: c.split_cli("--seed", "0x10"), Refused((C,))),
        cli("cli-split/seed-float", lambda c: c.split_cli("--seed", "1.0"), Refused((C,))),
        cli("cli-split/seed-arabic-digit", lambda c: c.split_cli("--seed", "٣"), Refused((C,))),
        cli("cli-split/seed-padded-ok", lambda c: c.split_cli("--seed", " 7 "), Result(exit_ok)),
        cli(
            "cli-split/subsets-trailing-comma",
            lambda c: c.split_cli("--subsets", "train=80,test=20,"),
            Refused(("--subsets",)),
        ),
        cli("cli-split/subsets-no-name", lambda c: c.split_cli("--subsets", "=50,test=50"), Refused(("--subsets",))),
        cli(
            "cli-split/subsets-1e309", lambda c: c.split_cli("--subsets", "train=1e309,test=0"), Refused(("--subsets",))
        ),
        cli("cli-split/subsets-nan", lambda c: c.split_cli("--subsets", "train=nan,test=100"), Refused(("--subsets",))),
        cli(
            "cli-split/subsets-negative",
            lambda c: c.split_cli("--subsets", "train=-10,test=110"),
            Refused(("--subsets",)),
        ),
        cli(
            "cli-split/subsets-duplicate",
            lambda c: c.split_cli("--subsets", "train=50,train=50"),
            Refused(("--subsets",)),
        ),
        cli(
            "cli-split/subsets-six",
            lambda c: c.split_cli("--subsets", ",".join(f"g{i}=10" for i in range(5)) + ",g5=50"),
            Refused(("--subsets",)),
        ),
        cli(
            "cli-split/subsets-unicode-name",
            lambda c: c.split_cli("--subsets", "tråin=80,test=20"),
            Refused(("--subsets",)),
        ),
        cli(
            "cli-split/subsets-semicolons",
            lambda c: c.split_cli("--subsets", "train=80;test=20"),
            Refused(("--subsets",)),
        ),
        cli(
            "cli-split/subsets-10k",
            lambda c: c.split_cli("--subsets", "a" * 10_000 + "=50,b=50"),
            Refused(("--subsets",)),
        ),
        cli("cli-split/group-by-empty", lambda c: c.split_cli("--group-by", ""), Refused(("--group-by",))),
        # grouping by what the split itself writes would give an interrupted split's rerun other groups
        cli(
            "cli-split/group-by-written-object",
            lambda c: c.split_cli("--group-by", "metadata.user"),
            Refused(("--group-by", "metadata.user")),
        ),
        cli(
            "cli-split/group-by-subset-tag",
            lambda c: c.split_cli("--group-by", "metadata.system.tags.train"),
            Refused(("--group-by",)),
        ),
        cli(
            "cli-split/group-by-updated-at", lambda c: c.split_cli("--group-by", "updatedAt"), Refused(("--group-by",))
        ),
        cli(
            "cli-split/group-by-trailing-dot",
            lambda c: c.split_cli("--group-by", "metadata.user."),
            Refused(("--group-by",)),
        ),
        cli(
            "cli-split/group-by-space",
            lambda c: c.split_cli("--group-by", "metadata.user.a b"),
            Refused(("--group-by",)),
        ),
        cli(
            "cli-split/group-by-run-marker",
            lambda c: c.split_cli("--group-by", "metadata.user.activeLearning.split"),
            Refused(("--group-by",)),
        ),
        cli(
            "cli-split/stratify-and-group",
            lambda c: c.split_cli("--stratify-by", "label", "--group-by", "metadata.user.p"),
            Refused(("--stratify-by", "--group-by")),
        ),
        cli("cli-split/project-empty", lambda c: c.split_cli(project=""), Refused(("--project",))),
        cli("cli-split/project-nul", lambda c: c.split_cli(project="pro\x00ject"), Refused(("--project",))),
        cli("cli-split/project-newline", lambda c: c.split_cli(project="hostile-project\n"), Refused(("--project",))),
        cli("cli-split/project-traversal", lambda c: c.split_cli(project="../../projects"), Refused(("--project",))),
        cli(
            "cli-split/dataset-of-another-project-by-name",
            lambda c: c.split_cli(dataset="no-such-in-this-project"),
            Refused(("--dataset",)),
        ),
        cli(
            "cli-split/dataset-of-another-project-by-id",
            lambda c: c.split_cli(dataset=c.w.other_dataset.id),
            Refused(("--dataset",)),
        ),
        cli("cli-split/dataset-slash", lambda c: c.split_cli(dataset="a/b"), Refused(("--dataset",))),
        cli("cli-split/dry-run-ok", lambda c: c.split_cli("--subsets", "train=70,test=30"), Result(exit_ok)),
    ]


def _compare_cli_cases() -> list[Case]:
    def cli(case_id: str, build, expect) -> Case:
        return Case(case_id, build, expect, cli=True)

    def out_file(c: Ctx) -> str:
        return c.file("existing.txt", "not a folder")

    def out_under_file(c: Ctx) -> str:
        return out_file(c) + "/sub"

    def report_is_dir(c: Ctx) -> str:
        (c.tmp_path / "r" / "report.md").mkdir(parents=True)
        return str(c.tmp_path / "r")

    return [
        cli(
            "cli-compare/out-existing-file",
            lambda c: c.compare_cli("--dataset", c.w.dataset.id, out=out_file(c)),
            Refused(("--out",)),
        ),
        cli(
            "cli-compare/out-under-a-file",
            lambda c: c.compare_cli("--dataset", c.w.dataset.id, out=out_under_file(c)),
            Refused(("--out",)),
        ),
        cli("cli-compare/out-empty", lambda c: c.compare_cli("--dataset", c.w.dataset.id, out=""), Refused(("--out",))),
        cli(
            "cli-compare/out-report-md-is-a-folder",
            lambda c: c.compare_cli("--dataset", c.w.dataset.id, out=report_is_dir(c)),
            Refused(("--out",)),
        ),
        cli("cli-compare/out-existing-folder-ok", _compare_cli_out_dir, Result(compare_cli_wrote)),
        cli("cli-compare/store-ok", _compare_cli_store, Result(compare_cli_wrote)),
        cli("cli-compare/previous-slash", lambda c: c.compare_cli(previous="a/b"), Refused(("--previous",))),
        cli(
            "cli-compare/previous-traversal",
            lambda c: c.compare_cli(previous="../../projects"),
            Refused(("--previous",)),
        ),
        cli("cli-compare/previous-empty", lambda c: c.compare_cli(previous=""), Refused(("--previous",))),
        cli("cli-compare/previous-space", lambda c: c.compare_cli(previous="a b"), Refused(("--previous",))),
        cli("cli-compare/previous-nul", lambda c: c.compare_cli(previous="a\x00b"), Refused(("--previous",))),
        cli("cli-compare/previous-query", lambda c: c.compare_cli(previous="x?a=1"), Refused(("--previous",))),
        cli("cli-compare/new-long", lambda c: c.compare_cli(new="a" * 1000), Refused(("--new",))),
        cli("cli-compare/new-unicode", lambda c: c.compare_cli(new="моdel"), Refused(("--new",))),
        cli(
            "cli-compare/new-same-as-previous",
            lambda c: c.compare_cli("--dataset", c.w.dataset.id, new=c.w.previous.id),
            Refused(("new_model",)),
        ),
        cli("cli-compare/dataset-slash", lambda c: c.compare_cli("--dataset", "a/b"), Refused(("--dataset",))),
        cli("cli-compare/dataset-missing", lambda c: c.compare_cli("--dataset", "0" * 24), Refused(("--dataset",))),
        cli(
            "cli-compare/dataset-of-another-project",
            lambda c: c.compare_cli("--dataset", c.w.other_dataset.id),
            Refused(("--dataset",)),
        ),
        cli(
            "cli-compare/dataset-not-of-project-option",
            lambda c: c.compare_cli("--dataset", c.w.other_dataset.id, "--project", c.w.project.name),
            Refused(("--dataset", "--project")),
        ),
        cli(
            "cli-compare/models-not-of-project-option",
            lambda c: c.compare_cli("--dataset", c.w.other_dataset.id, "--project", c.w.other_project.name),
            Refused(("--previous", "--project")),
        ),
        cli(
            "cli-compare/project-unknown",
            lambda c: c.compare_cli("--project", "no-such-project"),
            Refused(("--project",)),
        ),
        cli("cli-compare/config-folder", lambda c: c.compare_cli("--config", str(c.tmp_path)), Refused(("--config",))),
        cli(
            "cli-compare/config-not-utf8",
            lambda c: c.compare_cli("--config", c.file("c.json", b"\xff\xfe{")),
            Refused(("--config",)),
        ),
        cli(
            "cli-compare/config-deep",
            lambda c: c.compare_cli("--config", c.file("c.json", "[" * 100_000 + "]" * 100_000)),
            Refused(("--config",)),
        ),
        cli(
            "cli-compare/config-3mb",
            lambda c: c.compare_cli("--config", c.file("c.json", json.dumps({"pad": "x" * 3_000_000}))),
            Refused(("--config",)),
        ),
        cli(
            "cli-compare/config-nan",
            lambda c: c.compare_cli("--config", c.file("c.json", '{"wins": NaN, "precision_recall": {}}')),
            Refused(("wins",)),
        ),
        cli(
            "cli-compare/config-test-subset-long-field",
            lambda c: c.compare_cli(
                "--config", c.file("c.json", json.dumps(_pr(test_subset={"filter": {LONG_NAME: {"$regexx": "a"}}})))
            ),
            Refused(("test_subset.filter.kkk", "$regexx")),
        ),
        cli(
            "cli-compare/config-list",
            lambda c: c.compare_cli("--config", c.file("c.json", "[]")),
            Refused(("compare_config",)),
        ),
        cli(
            "cli-compare/config-empty-file",
            lambda c: c.compare_cli("--config", c.file("c.json", "")),
            Refused(("--config",)),
        ),
        cli("cli-compare/missing-new", lambda c: c.cli("compare", "--previous", c.w.previous.id), Refused(("--new",))),
    ]


def _http_cases() -> list[Case]:
    def http(case_id: str, build, expect) -> Case:
        return Case(case_id, build, expect)

    def project_body(c: Ctx) -> dict:
        return {"name": c.w.name("should-not-exist")}

    return [
        http("http/no-token-read", lambda c: c.http("GET", f"/projects/{c.w.project.id}", token=None), Status((401,))),
        http(
            "http/no-token-write",
            lambda c: c.http("POST", "/projects", token=None, body=project_body(c)),
            Status((401,)),
        ),
        http(
            "http/other-token",
            lambda c: c.http("GET", "/projects", token="Bearer " + emulator.unsigned_token("mallory@x")),
            Status((401,)),
        ),
        http("http/empty-bearer", lambda c: c.http("GET", "/projects", token="Bearer "), Status((401,))),
        http("http/basic-auth", lambda c: c.http("GET", "/projects", token="Basic YTpi"), Status((401,))),
        http(
            "http/malformed-json",
            lambda c: c.http("POST", "/projects", raw=b'{"name": '),
            Status((400,), names=("json",)),
        ),
        http("http/json-list-body", lambda c: c.http("POST", "/datasets", body=[1, 2]), Status((400,))),
        http("http/invalid-utf8-body", lambda c: c.http("POST", "/projects", raw=b'{"name": "\xff"}'), Status((400,))),
        http(
            "http/deep-json-body",
            lambda c: _query(c, None, raw=("[" * 100_000 + "]" * 100_000).encode()),
            Status((400,)),
        ),
        http(
            "http/nan-in-filter",
            lambda c: c.http(
                "POST", f"/datasets/{c.w.dataset.id}/query", raw=b'{"resource": "items", "filter": {"x": NaN}}'
            ),
            Status((200, 400)),
        ),
        http(
            "http/unknown-route", lambda c: c.http("GET", "/no/such/route"), Status((404,), names=("/no/such/route",))
        ),
        http(
            "http/wrong-method",
            lambda c: c.http("PUT", f"/projects/{c.w.project.id}", body={}),
            Status((405,), names=("PUT",)),
        ),
        http("http/put-users-me", lambda c: c.http("PUT", "/users/me", body={}), Status((405,))),
        http("http/unknown-id", lambda c: c.http("GET", "/items/" + "0" * 24), Status((404,))),
        http("http/id-with-dots", lambda c: c.http("GET", "/items/..%2F..%2Fprojects"), Status((404,))),
        http("http/huge-page-size", lambda c: _query(c, _items_query({}, pageSize=10**9)), Status((200, 400))),
        http("http/negative-page-size", lambda c: _query(c, _items_query({}, pageSize=-1)), Status((400,))),
        http("http/string-page-size", lambda c: _query(c, _items_query({}, pageSize="abc")), Status((400,))),
        http("http/negative-page", lambda c: _query(c, _items_query({}, page=-1)), Status((400,))),
        http(
            "http/unknown-operator",
            lambda c: _query(c, _items_query({"dir": {"$where": "1"}})),
            Status((400,), names=("$where",)),
        ),
        http(
            "http/catastrophic-match",
            lambda c: _query(c, _items_query({"name": {"$match": "^(a+)+$"}})),
            Status((400,), names=("$match",)),
        ),
        http(
            "http/catastrophic-match-nested",
            lambda c: _query(c, _items_query({"$or": [{"dir": {"$match": "(x*)*y"}}]})),
            Status((400,), names=("$match",)),
        ),
        http(
            "http/invalid-regex",
            lambda c: _query(c, _items_query({"name": {"$match": "(("}})),
            Status((400,), names=("$match",)),
        ),
        http("http/query-unknown-resource", lambda c: _query(c, _items_query({}, resource="secrets")), Status((400,))),
        http(
            "http/patch-unknown-item",
            lambda c: c.http("PATCH", "/items/" + "0" * 24, body={"name": "x"}),
            Status((404,)),
        ),
    ]


CASES: list[Case] = [
    *_split_cases(),
    *_create_cases(),
    *_compare_cases(),
    *_split_cli_cases(),
    *_compare_cli_cases(),
    *_http_cases(),
]


def _params() -> list:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    unknown = set(KNOWN_FAILING) - set(ids)
    assert not unknown, f"KNOWN_FAILING names no case: {unknown}"
    return [
        pytest.param(
            case,
            id=case.id,
            marks=[pytest.mark.xfail(strict=True, reason=KNOWN_FAILING[case.id])] if case.id in KNOWN_FAILING else [],
        )
        for case in CASES
    ]


@pytest.mark.parametrize("case", _params())
def test_hostile_input_ends_as_documented(case: Case, world: World, platform, tmp_path, capsys):
    TOTALS.tried += 1
    ctx = Ctx(world, platform, tmp_path)
    call = case.build(ctx)
    platform.reset_counts()
    outcome = _judge(case, call, ctx, capsys)
    if outcome.refused:
        TOTALS.writes += len(outcome.writes)
    TOTALS.ok += int(outcome.documented)
    assert outcome.documented, f"{case.id}: {outcome.detail}"


def test_the_hostile_suite_is_big_and_covers_every_entry_point():
    assert len(CASES) >= 150
    prefixes = {case.id.split("/")[0] for case in CASES}
    assert prefixes == {"split", "create", "compare", "cli-split", "cli-compare", "http"}
