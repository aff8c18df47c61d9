"""Run the pipeline template on the local platform: install it, then call its nodes as its
connections and actions say.

:class:`InstalledPipeline` creates and installs the template with dtlpy and gives each node a
``dl.Context`` of this pipeline, so ``context.node`` is the template's node with its
``customNodeConfig``. :class:`PipelineRunner` walks a branch, one execution group per node:
custom nodes through ``main.ServiceRunner``, ml nodes through the demo's model adapter, task nodes
by :class:`Annotator`, dataset nodes by item clone, Update Variables by ``pipeline.update()``
(docs/demo.md).
"""

from __future__ import annotations

import copy
import logging
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dtlpy as dl

from demo.template_graph import TemplateGraph

logger = logging.getLogger(__name__)

THREADS = 8
MANY = 20  # more items than this in one execution group: a progress bar


# -------------------------------------------------------------------------------------------- install
class InstalledPipeline:
    """The template created and installed on the platform, with its variables.

    Edge class: every method talks to the platform through dtlpy.

    Examples
    --------
    >>> pipeline = InstalledPipeline.install(project, body)     # doctest: +SKIP
    >>> pipeline.variable("Best Model")                          # doctest: +SKIP
    '6650...'
    """

    def __init__(self, project: dl.Project, entity: dl.Pipeline):
        self.project = project
        self.entity = entity
        self.graph = TemplateGraph.from_json(entity.to_json())

    @classmethod
    def install(cls, project: dl.Project, body: Mapping[str, Any]) -> InstalledPipeline:
        """``project.pipelines.create(pipeline_json=body)`` then ``pipeline.install()``."""
        created = project.pipelines.create(pipeline_json=copy.deepcopy(dict(body)))
        if created is None:
            raise RuntimeError(f"creating pipeline {body.get('name')!r} failed (dtlpy logged the error above)")
        installed = created.install()
        if installed is None:
            raise RuntimeError(f"installing pipeline {created.name!r} failed (dtlpy logged the error above)")
        return cls(project, dl.pipelines.get(pipeline_id=created.id))

    @property
    def id(self) -> str:
        return self.entity.id

    @property
    def name(self) -> str:
        return self.entity.name

    def variable(self, name: str) -> Any:
        """The current value of pipeline variable ``name`` (as stored on the platform)."""
        for variable in self.entity.variables:
            if variable.name == name:
                return variable.value
        raise KeyError(f"pipeline {self.name!r} has no variable {name!r}")

    def set_variable(self, name: str, value: Any) -> None:
        """Update pipeline variable ``name`` on the platform (``pipeline.update()``) and re-read the pipeline."""
        fresh = dl.pipelines.get(pipeline_id=self.id)
        found = [v for v in fresh.variables if v.name == name]
        if not found:
            raise KeyError(f"pipeline {self.name!r} has no variable {name!r}")
        found[0].value = value
        updated = fresh.update()
        if updated is None:
            raise RuntimeError(f"updating variable {name!r} of pipeline {self.name!r} failed (see dtlpy's log)")
        self.entity = dl.pipelines.get(pipeline_id=self.id)
        if self.variable(name) != value:
            raise RuntimeError(f"pipeline {self.name!r}: variable {name!r} is {self.variable(name)!r}, not {value!r}")

    def context(self, node_id: str, execution_id: str | None = None) -> dl.Context:
        """A ``dl.Context`` of an execution of node ``node_id`` of this pipeline.

        ``context.pipeline`` / ``context.node`` resolve lazily through ``GET /pipelines/{id}``, as
        in a pipeline execution, so the node seen is the installed one with its ``customNodeConfig``.
        """
        execution_id = execution_id or uuid.uuid4().hex[:24]
        execution = {
            "id": execution_id,
            "createdAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "pipeline": {"id": self.id, "nodeId": node_id, "executionId": f"pexec-{execution_id}"},
        }
        return dl.Context(execution_dict=execution, project=self.project)


# -------------------------------------------------------------------------------------------- the walk
@dataclass
class NodeRun:
    """What one execution group of a node did: the console line's content, kept for the report."""

    pipeline: str
    node: str
    node_type: str
    function: str
    inputs: int
    actions: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    per_item: bool = True

    def line(self) -> str:
        """One console line, e.g. ``Model Data Split [custom data_split] 100 items -> train 81, test 9``."""
        acts = ", ".join(f"{k} {v}" for k, v in self.actions.items()) or "-"
        unit = ("item" if self.per_item else "execution") + ("" if self.inputs == 1 else "s")
        return f"{self.node} [{self.node_type} {self.function}] {self.inputs} {unit} -> {acts} ({self.seconds:.1f} s)"


@dataclass
class Output:
    """One execution's result: output port name -> value, and the action it took (or ``None``)."""

    values: dict[str, Any]
    action: str | None = None


class RecordingProgress(dl.Progress):
    """The ``progress`` a pipeline passes a node: records the actions it reports."""

    def __init__(self) -> None:
        self.actions: list[str] = []

    def update(self, status=None, progress=0, message=None, output=None, duration=None, action=None):  # noqa: D102
        if action is not None:
            self.actions.append(action)


class PipelineRunner:
    """Walk branches of an :class:`InstalledPipeline`, one execution group per node.

    Parameters
    ----------
    pipeline : InstalledPipeline
    runner : main.ServiceRunner
        Executes the custom nodes.
    ml : callable
        ``ml(function, node, inputs) -> list[Output]`` for ``ml`` nodes, ``inputs`` a list of dicts.
    annotator : Annotator
        Executes the task nodes.
    echo : callable
        Receives one line per execution group.
    progress_bars : bool
        Show a progress bar for groups of many items.
    """

    def __init__(
        self,
        pipeline: InstalledPipeline,
        runner,
        ml: Callable[[str, Mapping[str, Any], list[dict]], list[Output]],
        annotator: Annotator,
        echo: Callable[[str], None] = print,
        progress_bars: bool = True,
    ):
        self.pipeline, self.runner, self.ml, self.annotator = pipeline, runner, ml, annotator
        self.echo, self.progress_bars = echo, progress_bars
        self.history: list[NodeRun] = []

    @property
    def graph(self) -> TemplateGraph:
        return self.pipeline.graph

    def run_branch(
        self,
        start: str,
        inputs: Sequence[Mapping[str, Any]],
        between: Mapping[tuple[str, str], Callable[[list[dict]], list[dict]]] | None = None,
    ) -> dict[str, list[Output]]:
        """Run the branch that starts at node ``start`` (a name) on ``inputs`` (one dict per execution).

        ``between`` maps ``(source name, target name)`` of a connection to a function that
        receives everything the connection carries in this walk and returns what goes on (the
        demo's labelling budget sits on the Predict -> Uncertainty Gate connection). Returns each
        node's outputs by node name.
        """
        graph = self.graph
        start_id = graph.node_named(start)["id"]
        pending: dict[str, list[dict]] = {start_id: [dict(i) for i in inputs]}
        results: dict[str, list[Output]] = {}
        for node_id in graph.branch_order(start_id):
            payloads = pending.pop(node_id, [])
            if not payloads:
                continue
            node = graph.nodes[node_id]
            outputs = self._execute(node, payloads)
            results[node["name"]] = outputs
            forward: dict[tuple[str, str], list[dict]] = {}
            for output in outputs:
                for port_name, value in output.values.items():
                    for target, target_port in graph.targets(node_id, output.action, port=port_name):
                        forward.setdefault((target, target_port), []).append({target_port: value})
            for (target, _), carried in forward.items():
                hook = (between or {}).get((node["name"], graph.nodes[target]["name"]))
                if hook is not None:
                    carried = hook(carried)
                pending.setdefault(target, []).extend(carried)
        return results

    # ---------------------------------------------------------------- one execution group
    def _execute(self, node: Mapping[str, Any], payloads: list[dict]) -> list[Output]:
        node_type = node["type"]
        function = (node.get("namespace") or {}).get("functionName", "")
        per_item = [p["name"] for p in node.get("inputs", [])] == ["item"]
        run = NodeRun(self.pipeline.name, node["name"], node_type, function, len(payloads), per_item=per_item)
        started = time.perf_counter()
        payloads = [self._with_variables(node, p) for p in payloads]
        if node_type == "custom":
            outputs = self._custom(node, function, payloads)
        elif node_type == "ml":
            outputs = self.ml(function, node, payloads)
        elif node_type == "task":
            outputs = self.annotator.run_task(node, payloads, self._bar)
        elif node_type == "storage":
            outputs = self._dataset_node(node, payloads)
        elif node_type == "updateVariable":
            outputs = self._update_variables(node, payloads)
        else:
            raise ValueError(f"node {node['name']!r}: type {node_type!r} is not one the demo can run")
        run.seconds = time.perf_counter() - started
        for output in outputs:
            key = output.action or next(iter(output.values), "output")
            run.actions[key] = run.actions.get(key, 0) + 1
        self.history.append(run)
        self.echo(f"     {run.line()}")
        return outputs

    def _with_variables(self, node: Mapping[str, Any], payload: dict) -> dict:
        """Fill the inputs no connection fed from the pipeline variables the ports name."""
        full = dict(payload)
        for port in node.get("inputs", []):
            name, variable = port["name"], port.get("variableName")
            if name in full or not variable:
                continue
            full[name] = self._entity(port["type"], self.pipeline.variable(variable))
        return full

    @staticmethod
    def _entity(port_type: str, value: Any) -> Any:
        if value is None or port_type not in ("Model", "Dataset", "Item"):
            return copy.deepcopy(value)
        if port_type == "Model":
            return dl.models.get(model_id=value)
        if port_type == "Dataset":
            return dl.datasets.get(dataset_id=value)
        return dl.items.get(item_id=value)

    def _bar(self, total: int, desc: str):
        from tqdm import tqdm

        enabled = self.progress_bars and total > MANY
        return tqdm(total=total, desc=f"     {desc}", unit="item", leave=False, disable=not enabled, file=sys.stderr)

    def _custom(self, node: Mapping[str, Any], function: str, payloads: list[dict]) -> list[Output]:
        """``ServiceRunner.<functionName>(**inputs, progress=..., context=...)`` per execution.

        Per-item nodes share one context per group, resolved once before the threads use it (every
        execution of a node reads the same node config); others get a context each.
        """
        method = getattr(self.runner, function)
        output_names = [p["name"] for p in node.get("outputs", [])]
        per_item = [p["name"] for p in node.get("inputs", [])] == ["item"]
        shared = self.pipeline.context(node["id"]) if per_item else None
        if shared is not None:
            shared.node  # noqa: B018 - resolve the lazy node once, before the threads share the context

        def one(payload: dict) -> Output:
            progress = RecordingProgress()
            context = shared if shared is not None else self.pipeline.context(node["id"])
            returned = method(**payload, progress=progress, context=context)
            values = returned if isinstance(returned, tuple) else (returned,)
            return Output(
                dict(zip(output_names, values, strict=False)), progress.actions[-1] if progress.actions else None
            )

        if not per_item:
            return [one(p) for p in payloads]
        return map_in_threads(one, payloads, self._bar(len(payloads), node["name"]))

    def _dataset_node(self, node: Mapping[str, Any], payloads: list[dict]) -> list[Output]:
        """Dataset node: items of another dataset are cloned into the node's dataset (with annotations
        and metadata); items already there pass (a start node's items arrive in its own dataset)."""
        dataset_id = self.pipeline.variable(node["metadata"]["variableDataset"])

        def one(payload: dict) -> Output:
            item = payload["item"]
            if item.dataset_id == dataset_id:
                return Output({"item": item})
            cloned = item.clone(dst_dataset_id=dataset_id, with_annotations=True, with_metadata=True)
            if cloned is None or getattr(cloned, "dataset_id", None) != dataset_id:
                raise RuntimeError(f"cloning item {item.id} into dataset {dataset_id} failed (see dtlpy's log)")
            return Output({"item": cloned})

        return map_in_threads(one, payloads, self._bar(len(payloads), node["name"]))

    def _update_variables(self, node: Mapping[str, Any], payloads: list[dict]) -> list[Output]:
        """Update Variables: each input port names a pipeline variable; it takes the input's id."""
        outputs = []
        for payload in payloads:
            for name, value in payload.items():
                self.pipeline.set_variable(name, getattr(value, "id", value))
            outputs.append(Output(dict(payload)))
        return outputs


# -------------------------------------------------------------------------------------------- tasks
def map_in_threads(function: Callable[[Any], Any], values: list, bar: Any) -> list:
    """``[function(v) for v in values]`` on ``THREADS`` threads, in order, ticking ``bar`` per value
    (the executions of a node run side by side, as on the platform)."""
    with bar, ThreadPoolExecutor(THREADS) as pool:
        results = []
        for result in pool.map(function, values):
            results.append(result)
            bar.update(1)
    return results


class Annotator:
    """The people of the Labeling and Review tasks, simulated.

    Labeling (``taskType`` ``annotation``): the item's hidden ground truth is revealed, i.e. the
    model's pre-annotations on the item are replaced by one class annotation with the true label
    (what an annotator does when correcting pre-annotations); action ``completed``. Review
    (``qa``): approves; action ``approved``.

    Parameters
    ----------
    truth : mapping
        ``file name -> label`` of every item the annotator may be asked about.
    """

    def __init__(self, truth: Mapping[str, str]):
        self.truth = truth

    def run_task(self, node: Mapping[str, Any], payloads: list[dict], bar) -> list[Output]:
        task_type = node["metadata"].get("taskType")
        if task_type == "qa":
            return [Output({"item": p["item"]}, "approved") for p in payloads]
        if task_type != "annotation":
            raise ValueError(f"node {node['name']!r}: task type {task_type!r} is not annotation or qa")
        labelled = map_in_threads(self.label, [p["item"] for p in payloads], bar(len(payloads), node["name"]))
        return [Output({"item": item}, "completed") for item in labelled]

    def label(self, item: dl.Item) -> dl.Item:
        """Replace the item's pre-annotations by its true class (1 bulk delete + 1 upload)."""
        label = self.truth[item.name]
        predictions = dl.Filters(resource=dl.FiltersResource.ANNOTATION)
        predictions.add(field="metadata.user.model", values=True, operator=dl.FiltersOperations.EXISTS)
        item.annotations.delete(filters=predictions)
        builder = item.annotations.builder()
        builder.add(annotation_definition=dl.Classification(label=label))
        if not item.annotations.upload(builder):
            raise RuntimeError(f"labelling item {item.id} failed (dtlpy logged the error above)")
        return item
