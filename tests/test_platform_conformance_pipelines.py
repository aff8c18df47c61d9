"""Documented pipeline execution behaviours on the local platform, through the real dtlpy client
and real executions: an app's functions run as custom nodes of pipelines created with
``project.pipelines.create(pipeline_json=...)`` and ``install()``-ed. Each test names its source
(PIPELINE_FACTS.md sections; the behave tests of dtlpy that run against the real platform).
"""

from __future__ import annotations

import json
import textwrap
import uuid

import dtlpy as dl
import pytest

from emulator import LocalPlatform

APP_CODE = textwrap.dedent(
    """
    import dtlpy as dl


    class ServiceRunner(dl.BaseServiceRunner):
        def first(self, item: dl.Item, progress: dl.Progress = None):
            progress.update(action="first-output")
            return item

        def mark(self, item: dl.Item):
            item.metadata.setdefault("user", {})["marked"] = True
            item.update()
            return item

        def split(self, item: dl.Item):
            return [i for i in item.dataset.items.list().all() if i.name.startswith("s")][:10]

        def boom(self, item: dl.Item):
            raise ValueError("boom on " + item.name)

        def compare(self, previous_model: dl.Model, candidate: dl.Model, progress: dl.Progress = None):
            progress.update(action="update model")
            return candidate

        def tick(self):
            return None
    """
)

FUNCTIONS = {
    "first": ([("item", "Item")], [("item", "Item", ["first-output", "second-output"])]),
    "mark": ([("item", "Item")], [("item", "Item", None)]),
    "split": ([("item", "Item")], [("items", "Item[]", None)]),
    "boom": ([("item", "Item")], [("item", "Item", None)]),
    "compare": (
        [("previous_model", "Model"), ("candidate", "Model")],
        [("winner", "Model", ["update model", "discard"])],
    ),
    "tick": ([], [("out", "Json", None)]),
}
DPK = "pipeline-conformance-app"


def manifest() -> dict:
    functions = [
        {
            "name": name,
            "input": [{"name": n, "type": t} for n, t in inputs],
            "output": [{"name": n, "type": t, **({"actions": a} if a else {})} for n, t, a in outputs],
        }
        for name, (inputs, outputs) in FUNCTIONS.items()
    ]
    return {
        "name": DPK,
        "version": "1.0.0",
        "displayName": "Pipeline Conformance App",
        "scope": "project",
        "components": {
            "computeConfigs": [{"name": "pipeline-nodes", "runtime": {"concurrency": 4}}],
            "modules": [
                {
                    "name": "nodes",
                    "entryPoint": "main.py",
                    "className": "ServiceRunner",
                    "computeConfig": "pipeline-nodes",
                    "functions": functions,
                }
            ],
        },
    }


@pytest.fixture(scope="module")
def app(_platform_session: LocalPlatform, tmp_path_factory):
    project = dl.projects.create(project_name=f"pipeline-conformance-{uuid.uuid4().hex[:6]}")
    source = tmp_path_factory.mktemp("pipeline-app")
    (source / "dataloop.json").write_text(json.dumps(manifest()))
    (source / "main.py").write_text(APP_CODE)
    dpk = project.dpks.publish(manifest_filepath=str(source / "dataloop.json"), local_path=str(source))
    project.apps.install(dpk=dpk)
    dataset = project.datasets.create(dataset_name="pipeline-data")
    return {"project": project, "dataset": dataset}


def _port(name, kind, actions=None, variable=None):
    port = {"portId": str(uuid.uuid4()), "name": name, "displayName": name, "type": kind}
    if actions:
        port["actions"] = actions
    if variable:
        port["variableName"] = variable
    return port


def custom(function: str, name: str | None = None, variables: dict | None = None) -> dict:
    inputs, outputs = FUNCTIONS[function]
    return {
        "id": str(uuid.uuid4()),
        "name": name or function,
        "type": "custom",
        "namespace": {
            "functionName": function,
            "moduleName": "nodes",
            "serviceName": "pipeline-nodes",
            "packageName": DPK,
        },
        "dpkName": DPK,
        "inputs": [_port(n, t, variable=(variables or {}).get(n)) for n, t in inputs],
        "outputs": [_port(n, t, a) for n, t, a in outputs],
        "metadata": {"position": {"x": 0, "y": 0, "z": 0}},
    }


def task_node(name: str, dataset_id: str, task_type: str, actions: list[str]) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "name": name,
        "type": "task",
        "namespace": {"functionName": "move_to_task", "serviceName": "pipeline-utils", "packageName": "pipeline-utils"},
        "inputs": [_port("item", "Item")],
        "outputs": [_port("item", "Item", actions)],
        "metadata": {"position": {"x": 0, "y": 0, "z": 0}, "taskType": task_type, "datasetId": dataset_id},
    }


def update_variable(variable: str, kind: str) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "name": "Update Variables",
        "type": "updateVariable",
        "namespace": {
            "functionName": "update_variable",
            "serviceName": "pipeline-utils",
            "packageName": "pipeline-utils",
        },
        "inputs": [_port(variable, kind)],
        "outputs": [_port(variable, kind)],
        "metadata": {"position": {"x": 0, "y": 0, "z": 0}},
    }


def link(src: dict, tgt: dict, action: str | None = None, tgt_port: int = 0) -> dict:
    connection = {
        "src": {"nodeId": src["id"], "portId": src["outputs"][0]["portId"]},
        "tgt": {"nodeId": tgt["id"], "portId": tgt["inputs"][tgt_port]["portId"]},
        "condition": "{}",
    }
    if action:
        connection["action"] = action
    return connection


def install(project: dl.Project, nodes, connections, variables=(), trigger=None) -> dl.Pipeline:
    start = {"nodeId": nodes[0]["id"], "type": "root", "id": str(uuid.uuid4())}
    if trigger:
        start["trigger"] = trigger
    body = {
        "name": f"pipe-{uuid.uuid4().hex[:8]}",
        "nodes": nodes,
        "connections": connections,
        "startNodes": [start],
        "variables": list(variables),
    }
    pipeline = project.pipelines.create(pipeline_json=body)
    pipeline.install()
    return project.pipelines.get(pipeline_id=pipeline.id)


def settle(platform: LocalPlatform, pipeline: dl.Pipeline, cycle_id: str) -> dl.PipelineExecution:
    assert platform.wait_pipelines_idle(180)
    return pipeline.pipeline_executions.get(pipeline_execution_id=cycle_id)


def node_statuses(cycle: dl.PipelineExecution) -> dict:
    return {n.name: n.status for n in cycle.nodes}


def executions_of(cycle: dl.PipelineExecution, node: dict) -> list[dict]:
    return cycle.executions.get(node["id"], [])


def test_install_answers_installed_and_pipeline_executions_list_answers_cycles(platform, app):
    """``pipeline.install()`` → status ``Installed`` (CompositionStatus; behave
    test_pipeline_install); ``pipeline_executions.list()`` sends ``POST /pipelines/query`` with a
    ``pipelineState`` filter on ``pipelineId`` and answers that pipeline's cycles only
    (dtlpy repositories/pipeline_executions.py)."""
    project, dataset = app["project"], app["dataset"]
    item = dataset.items.upload(local_path=__file__, remote_name="listing.py")
    first, other = install(project, [custom("mark")], []), install(project, [custom("mark")], [])
    assert first.status == "Installed"
    cycles = [first.execute(execution_input={"item": item.id}) for _ in range(2)]
    other.execute(execution_input={"item": item.id})
    assert cycles[0].status in ("pending", "in-progress")
    assert platform.wait_pipelines_idle(180)
    listed = first.pipeline_executions.list()
    assert sorted(c.id for c in listed.all()) == sorted(c.id for c in cycles)
    assert {c.status for c in listed.all()} == {"success"}


def test_the_action_a_function_sets_routes_to_the_matching_connection_only(platform, app):
    """PIPELINE_FACTS §2 "Action routing (test-verified)": node 1 calls
    ``progress.update(action="first-output")``; of the two connections leaving its port only the
    one with ``action="first-output"`` runs (2 successful executions per cycle; behave
    test_pipeline_actions.feature)."""
    project, dataset = app["project"], app["dataset"]
    item = dataset.items.upload(local_path=__file__, remote_name="action.py")
    first, second, third = custom("first"), custom("mark", "second"), custom("boom", "third")
    pipeline = install(
        project, [first, second, third], [link(first, second, "first-output"), link(first, third, "second-output")]
    )
    cycle = settle(platform, pipeline, pipeline.execute(execution_input={"item": item.id}).id)
    assert cycle.status == "success"
    assert node_statuses(cycle) == {"first": "success", "second": "success", "third": "pending"}
    executions = [e for node_executions in cycle.executions.values() for e in node_executions]
    assert len(executions) == 2 and {e["latestStatus"]["status"] for e in executions} == {"success"}
    assert dl.items.get(item_id=item.id).metadata["user"]["marked"] is True


def test_a_failing_node_fails_its_cycle(platform, app):
    """PIPELINE_FACTS §1: cycle ``success`` needs every node execution to succeed; a failing
    function fails the cycle (behave pipeline_node_input_handling.feature); the execution is
    ``failed`` with the error in its status message."""
    project, dataset = app["project"], app["dataset"]
    item = dataset.items.upload(local_path=__file__, remote_name="failing.py")
    boom, after = custom("boom"), custom("mark", "after")
    pipeline = install(project, [boom, after], [link(boom, after)])
    cycle = settle(platform, pipeline, pipeline.execute(execution_input={"item": item.id}).id)
    assert cycle.status == "failed"
    assert node_statuses(cycle) == {"boom": "failed", "after": "pending"}
    (execution,) = executions_of(cycle, boom)
    assert execution["latestStatus"]["status"] == "failed"


def test_a_ten_item_list_fans_out_into_a_task_and_the_cycle_waits_for_every_status(platform, app):
    """PIPELINE_FACTS §2 "List output → single-item input = FAN-OUT": a code node returning 10
    items (``Item[]``) feeds a task node (``Item``): all 10 land in the task (behave
    pipeline_output_list.feature). §1: the cycle stays ``in-progress`` until every item that
    entered the task has a status, downstream runs per completed item, then ``success`` (behave
    test_pipeline_task_node.feature DAT-73857). ``item.update_status('complete')`` routes along
    the ``completed`` connection (assumption: both spellings, §4)."""
    project = app["project"]
    dataset = project.datasets.create(dataset_name=f"fan-out-{uuid.uuid4().hex[:6]}")
    items = [dataset.items.upload(local_path=__file__, remote_name=f"s{i:02d}.py") for i in range(10)]
    split, after = custom("split"), custom("mark", "after")
    labeling = task_node("Labeling", dataset.id, "annotation", ["completed", "discard"])
    pipeline = install(project, [split, labeling, after], [link(split, labeling), link(labeling, after, "completed")])
    task_id = project.compositions.get(composition_id=pipeline.composition_id)["tasks"][0]["state"]["taskId"]
    task = project.tasks.get(task_id=task_id)
    cycle = settle(platform, pipeline, pipeline.execute(execution_input={"item": items[0].id}).id)
    assert cycle.status == "in-progress" and node_statuses(cycle)["Labeling"] == "in-progress"
    in_task = task.get_items().all()
    assert sorted(i.id for i in in_task) == sorted(i.id for i in items)
    for item in items[:9]:
        item.update_status(status="complete", task_id=task.id)
    cycle = settle(platform, pipeline, cycle.id)
    assert cycle.status == "in-progress" and len(executions_of(cycle, after)) == 9
    items[9].update_status(status=dl.ItemStatus.COMPLETED, task_id=task.id)
    cycle = settle(platform, pipeline, cycle.id)
    assert cycle.status == "success"
    assert node_statuses(cycle) == {"split": "success", "Labeling": "success", "after": "success"}
    assert dl.items.get(item_id=items[9].id).status(task_id=task.id) == "completed"


def test_a_variable_updated_by_update_variables_is_seen_by_the_next_cycle(platform, app):
    """PIPELINE_FACTS §3: an ``updateVariable`` node fed on action ``update model`` writes the
    value into the pipeline variable named like its port; the next cycle's node bound to that
    variable (``variableName``) gets the new value (persistence is an assumption: UNDOCUMENTED)."""
    project, dataset = app["project"], app["dataset"]
    old, new = (platform.create_model(project, f"m-{uuid.uuid4().hex[:6]}", dataset=dataset) for _ in range(2))
    compare = custom("compare", variables={"previous_model": "Best Model", "candidate": "Candidate"})
    update = update_variable("Best Model", "Model")
    variables = [
        {"name": "Best Model", "type": "Model", "value": old.id},
        {"name": "Candidate", "type": "Model", "value": new.id},
    ]
    pipeline = install(project, [compare, update], [link(compare, update, "update model")], variables)
    first = settle(platform, pipeline, pipeline.execute().id)
    assert first.status == "success"
    assert executions_of(first, compare)[0]["input"]["previous_model"] == old.id
    best = {v.name: v.value for v in project.pipelines.get(pipeline_id=pipeline.id).variables}["Best Model"]
    assert best == new.id
    second = settle(platform, pipeline, pipeline.execute().id)
    assert executions_of(second, compare)[0]["input"]["previous_model"] == new.id


def test_a_cron_start_node_fires_only_when_the_platform_clock_is_advanced(platform, app):
    """PIPELINE_FACTS §3: a ``Cron`` trigger of ``startNodes`` becomes live at install and fires on
    its schedule (``spec.cron``, 5 fields); here on the platform's clock, which moves only when
    advanced (``LocalPlatform.advance_clock``), never with wall time."""
    project = app["project"]
    tick = custom("tick")
    pipeline = install(project, [tick], [], trigger={"type": "Cron", "spec": {"cron": "0 3 * * 6"}})

    def own(cycle_ids: list[str]) -> list[str]:  # the session's other pipelines may have crons too
        return [c for c in cycle_ids if platform.store.get_pipeline_execution(c)["pipelineId"] == pipeline.id]

    assert platform.wait_pipelines_idle(60)
    assert pipeline.pipeline_executions.list().items_count == 0
    started = own(platform.advance_clock(days=7))  # any 7-day window holds one Saturday 03:00
    assert len(started) == 1
    cycle = settle(platform, pipeline, started[0])
    assert cycle.status == "success" and len(executions_of(cycle, tick)) == 1
    pipeline.pause()
    assert own(platform.advance_clock(days=7)) == []
    assert pipeline.pipeline_executions.list().items_count == 1


def test_statistics_count_cycles_and_node_executions_until_reset(platform, app):
    """``pipeline.stats()`` → ``GET /pipelines/{id}/statistics`` (dtlpy ``PipelineStats``:
    ``pipelineExecutionCounters``, ``nodeExecutionsCounters``); ``pipeline.reset()`` → ``POST
    /pipelines/{id}/reset``, "Resets pipeline counters" (dtlpy ``repositories/pipelines.py``)."""
    project, dataset = app["project"], app["dataset"]
    item = dataset.items.upload(local_path=__file__, remote_name="counted.py")
    mark = custom("mark")
    pipeline = install(project, [mark], [])
    for _ in range(2):
        pipeline.execute(execution_input={"item": item.id})
    assert platform.wait_pipelines_idle(180)
    stats = pipeline.stats()
    assert [(c.status, c.count) for c in stats.pipeline_counters] == [("success", 2)]
    (node_counter,) = stats.node_counters
    assert node_counter.node_id == mark["id"] and [(c.status, c.count) for c in node_counter.counters] == [
        ("success", 2)
    ]
    assert pipeline.reset() is True
    assert pipeline.stats().pipeline_counters == []
    assert pipeline.pipeline_executions.list().items_count == 2  # the cycles stay readable
