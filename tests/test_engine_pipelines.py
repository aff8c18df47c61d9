"""The pipeline runtime of the local platform over its store, with a small fake executor in
place of the services engine (the routing, fan-out, task-node and trigger rules; the
end-to-end runs with real executions are in tests/test_platform_conformance_pipelines*.py)."""

from __future__ import annotations

import datetime
import threading
import uuid

import pytest

from emulator.engine import routing
from emulator.engine.clock import Clock, cron_matches, due_times
from emulator.engine.pipelines import PipelineRuntime
from emulator.store import ApiError, Store


class FakeExecutor:
    """Runs node functions as plain Python callables ``(inputs) -> (output, action)`` on a thread."""

    def __init__(self, store: Store, functions: dict):
        self.store = store
        self.functions = functions
        self.calls: list[tuple[str, dict]] = []

    def ensure_module_service(self, project_id, app, module_name):
        return {"id": f"svc-{module_name}"}

    def _run(self, name, inputs, pipeline, on_done):
        execution_id = self.store.ids.new()
        execution = {
            "id": execution_id,
            "functionName": name,
            "input": dict(inputs),
            "pipeline": pipeline,
            "latestStatus": {"status": "in-progress"},
            "output": None,
            "action": None,
        }
        with self.store.lock:
            self.store.tables["executions"][execution_id] = execution
        self.calls.append((name, dict(inputs)))

        def work():
            try:
                output, action = self.functions[name](inputs)
                done = {"latestStatus": {"status": "success"}, "output": output, "action": action}
            except Exception as error:  # noqa: BLE001 - the fake reports any failure as the platform does
                done = {"latestStatus": {"status": "failed", "message": str(error)}}
            with self.store.lock:
                execution.update(done)
            on_done(dict(execution))

        threading.Thread(target=work, daemon=True).start()
        return dict(execution)

    def submit(self, service_id, function_name, inputs, *, pipeline=None, on_done=None):
        return self._run(function_name, inputs, pipeline, on_done)

    def run_model_operation(self, model_id, operation, inputs, *, pipeline=None, on_done=None):
        return self._run(operation, {**inputs, "model_id": model_id}, pipeline, on_done)


def port(name, kind, actions=None, variable=None):
    p = {"portId": str(uuid.uuid4()), "name": name, "type": kind}
    if actions:
        p["actions"] = actions
    if variable:
        p["variableName"] = variable
    return p


def node(name, kind, inputs, outputs, function=None, metadata=None):
    return {
        "id": str(uuid.uuid4()),
        "name": name,
        "type": kind,
        "namespace": {"functionName": function or name, "moduleName": "m", "packageName": "fake-app"},
        "inputs": inputs,
        "outputs": outputs,
        "metadata": {"position": {"x": 0, "y": 0, "z": 0}, **(metadata or {})},
    }


def connect(src, tgt, action=None, condition="{}", src_port=0, tgt_port=0):
    c = {
        "src": {"nodeId": src["id"], "portId": src["outputs"][src_port]["portId"]},
        "tgt": {"nodeId": tgt["id"], "portId": tgt["inputs"][tgt_port]["portId"]},
        "condition": condition,
    }
    if action:
        c["action"] = action
    return c


@pytest.fixture()
def world():
    store = Store()
    project = store.create_project({"name": "p"})
    dataset = store.create_dataset({"name": "d", "projects": [project["id"]]})
    store.tables["apps"]["app"] = {"id": "app", "projectId": project["id"], "dpkName": "fake-app", "name": "fake-app"}
    functions: dict = {}
    executor = FakeExecutor(store, functions)
    runtime = PipelineRuntime(store, executor=executor, clock=Clock(datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)))
    store.__dict__["_pipeline_runtime"] = runtime
    yield store, project, dataset, functions, executor, runtime
    runtime.stop()


def make_pipeline(store, project, nodes, connections, start=None, variables=(), trigger=None):
    start_node = {"nodeId": (start or nodes[0])["id"], "type": "root"}
    if trigger:
        start_node["trigger"] = trigger
    body = {
        "name": f"pipe-{uuid.uuid4().hex[:6]}",
        "projectId": project["id"],
        "nodes": nodes,
        "connections": connections,
        "startNodes": [start_node],
        "variables": list(variables),
    }
    pipeline = store.create_pipeline(body)
    return store.install_pipeline(pipeline["id"], {})


def run(store, runtime, pipeline, inputs):
    cycle = store.execute_pipeline(pipeline["id"], {"pipeline": {"input": inputs}})
    assert runtime.wait_idle(20)
    return store.get_pipeline_execution(cycle["id"])


def statuses(cycle):
    return {n["name"]: n["status"] for n in cycle["nodes"]}


def items(store, dataset, count):
    return store.bulk_create_items(dataset["id"], [{"name": f"{i}.jpg"} for i in range(count)])


def test_action_routes_to_the_matching_connection_only(world):
    store, project, dataset, functions, executor, runtime = world
    functions.update(
        {
            "first": lambda i: (i["item"], "first-output"),
            "two": lambda i: (i["item"], None),
            "three": lambda i: (0, None),
        }
    )
    a = node("first", "custom", [port("item", "Item")], [port("item", "Item", ["first-output", "second-output"])])
    b = node("two", "custom", [port("item", "Item")], [port("item", "Item")])
    c = node("three", "custom", [port("item", "Item")], [port("item", "Item")])
    pipeline = make_pipeline(store, project, [a, b, c], [connect(a, b, "first-output"), connect(a, c, "second-output")])
    (item_id,) = items(store, dataset, 1)
    cycle = run(store, runtime, pipeline, {"item": item_id})
    assert cycle["status"] == "success"
    assert statuses(cycle) == {"first": "success", "two": "success", "three": "pending"}
    assert [name for name, _ in executor.calls] == ["first", "two"]
    assert sum(len(v) for v in cycle["executions"].values()) == 2


def test_connection_without_action_fires_whatever_the_action(world):
    store, project, dataset, functions, executor, runtime = world
    functions.update({"a": lambda i: (i["item"], "anything"), "b": lambda i: (None, None)})
    a = node("a", "custom", [port("item", "Item")], [port("item", "Item", ["anything"])])
    b = node("b", "custom", [port("item", "Item")], [port("item", "Item")])
    pipeline = make_pipeline(store, project, [a, b], [connect(a, b)])
    (item_id,) = items(store, dataset, 1)
    assert statuses(run(store, runtime, pipeline, {"item": item_id}))["b"] == "success"


def test_ten_item_list_fans_out_into_a_task_and_the_cycle_waits_for_every_status(world):
    store, project, dataset, functions, executor, runtime = world
    ids = items(store, dataset, 10)
    functions.update({"split": lambda i: (ids, None), "done": lambda i: (i["item"], None)})
    split = node("split", "custom", [port("item", "Item")], [port("items", "Item[]")])
    task = node("Labeling", "task", [port("item", "Item")], [port("item", "Item", ["completed", "discard"])])
    task["metadata"].update({"taskType": "annotation", "datasetId": dataset["id"]})
    done = node("done", "custom", [port("item", "Item")], [port("item", "Item")])
    pipeline = make_pipeline(
        store, project, [split, task, done], [connect(split, task), connect(task, done, "completed")]
    )
    task_id = store.get_composition(pipeline["compositionId"])["tasks"][0]["state"]["taskId"]
    assert store.get_task(task_id)["datasetId"] == dataset["id"]
    cycle = run(store, runtime, pipeline, {"item": ids[0]})
    assert cycle["status"] == "in-progress" and statuses(cycle)["Labeling"] == "in-progress"
    referred = [i for i in ids if any(r["id"] == task_id for r in store.get_item(i)["metadata"]["system"]["refs"])]
    assert referred == ids
    for item_id in ids[:9]:
        store.set_item_status(
            task_id, {"itemIds": [item_id], "statusPayload": {"operation": "create", "status": "complete"}}
        )
    assert runtime.wait_idle(20)
    cycle = store.get_pipeline_execution(cycle["id"])
    assert cycle["status"] == "in-progress" and len(cycle["executions"][done["id"]]) == 9
    store.set_item_status(
        task_id, {"itemIds": [ids[9]], "statusPayload": {"operation": "create", "status": "completed"}}
    )
    assert runtime.wait_idle(20)
    cycle = store.get_pipeline_execution(cycle["id"])
    assert cycle["status"] == "success"
    assert statuses(cycle) == {"split": "success", "Labeling": "success", "done": "success"}
    assert len(cycle["executions"][task["id"]]) == 10 and len(cycle["executions"][done["id"]]) == 10
    refs = store.get_item(ids[9])["metadata"]["system"]["refs"]
    assert [r["metadata"]["status"] for r in refs if r["id"] == task_id] == ["completed"]


def test_discard_status_ends_the_branch(world):
    store, project, dataset, functions, executor, runtime = world
    functions.update({"after": lambda i: (None, None)})
    task = node("Review", "task", [port("item", "Item")], [port("item", "Item", ["approved", "discard"])])
    task["metadata"].update({"taskType": "qa", "datasetId": dataset["id"]})
    after = node("after", "custom", [port("item", "Item")], [port("item", "Item")])
    pipeline = make_pipeline(store, project, [task, after], [connect(task, after, "approved")])
    (item_id,) = items(store, dataset, 1)
    cycle = run(store, runtime, pipeline, {"item": item_id})
    task_id = store.get_composition(pipeline["compositionId"])["tasks"][0]["state"]["taskId"]
    store.set_item_status(
        task_id, {"itemIds": [item_id], "statusPayload": {"operation": "create", "status": "discard"}}
    )
    assert runtime.wait_idle(20)
    cycle = store.get_pipeline_execution(cycle["id"])
    assert cycle["status"] == "success" and statuses(cycle)["after"] == "pending"


def test_a_failing_node_fails_its_cycle(world):
    store, project, dataset, functions, executor, runtime = world

    def boom(inputs):
        raise RuntimeError("no luck")

    functions.update({"boom": boom, "next": lambda i: (None, None)})
    a = node("boom", "custom", [port("item", "Item")], [port("item", "Item")])
    b = node("next", "custom", [port("item", "Item")], [port("item", "Item")])
    pipeline = make_pipeline(store, project, [a, b], [connect(a, b)])
    (item_id,) = items(store, dataset, 1)
    cycle = run(store, runtime, pipeline, {"item": item_id})
    assert cycle["status"] == "failed"
    assert statuses(cycle) == {"boom": "failed", "next": "pending"}
    assert "no luck" in cycle["errors"][0]


def test_update_variables_is_seen_by_the_next_cycle(world):
    store, project, dataset, functions, executor, runtime = world
    seen = []

    def compare(inputs):
        seen.append(inputs["previous_model"])
        return f"model-{len(seen)}", "update model"

    functions.update({"compare": compare})
    compare_node = node(
        "compare",
        "custom",
        [port("previous_model", "Model", variable="Best Model")],
        [port("winner", "Model", ["update model", "discard"])],
    )
    update = node("Update Variables", "updateVariable", [port("Best Model", "Model")], [port("Best Model", "Model")])
    pipeline = make_pipeline(
        store,
        project,
        [compare_node, update],
        [connect(compare_node, update, "update model")],
        variables=[{"name": "Best Model", "type": "Model", "value": "model-0"}],
    )
    assert run(store, runtime, pipeline, {})["status"] == "success"
    assert run(store, runtime, pipeline, {})["status"] == "success"
    assert seen == ["model-0", "model-1"]
    variables = store.get_pipeline(pipeline["id"])["variables"]
    assert [v["value"] for v in variables] == ["model-2"]


def test_cron_fires_only_when_the_clock_is_advanced(world):
    store, project, dataset, functions, executor, runtime = world
    functions.update({"tick": lambda i: (None, None)})
    tick = node("tick", "custom", [], [port("out", "Json")])
    pipeline = make_pipeline(store, project, [tick], [], trigger={"type": "Cron", "spec": {"cron": "0 3 * * 6"}})
    assert runtime.wait_idle(5) and executor.calls == []
    assert runtime.advance_clock(datetime.timedelta(days=1)) == []  # Thursday -> Friday
    started = runtime.advance_clock(datetime.timedelta(days=1, hours=6))  # passes Saturday 03:00
    assert len(started) == 1
    assert len(runtime.advance_clock(datetime.timedelta(days=14))) == 2
    store.uninstall_pipeline(pipeline["id"], {})
    assert runtime.advance_clock(datetime.timedelta(days=7)) == []
    assert runtime.wait_idle(20) and len(executor.calls) == 3


def test_item_created_event_starts_a_cycle_for_matching_items_of_the_start_dataset(world):
    store, project, dataset, functions, executor, runtime = world
    other = store.create_dataset({"name": "other", "projects": [project["id"]]})
    functions.update({"seen": lambda i: (None, None)})
    raw = node("Raw", "storage", [port("item", "Item")], [port("item", "Item")], function="clone_item")
    raw["metadata"]["variableDataset"] = "Raw Dataset"
    seen = node("seen", "custom", [port("item", "Item")], [port("item", "Item")])
    trigger = {
        "type": "Event",
        "spec": {"resource": "Item", "actions": ["Created"], "filter": {"$and": [{"hidden": False}, {"type": "file"}]}},
    }
    make_pipeline(
        store,
        project,
        [raw, seen],
        [connect(raw, seen)],
        trigger=trigger,
        variables=[{"name": "Raw Dataset", "type": "Dataset", "value": dataset["id"]}],
    )
    store.upload_item(dataset["id"], "/a.jpg", b"x")
    store.upload_item(dataset["id"], "/.hidden/b.jpg", b"x")
    store.upload_item(other["id"], "/c.jpg", b"x")
    assert runtime.wait_idle(20)
    assert [inputs["item"] for _, inputs in executor.calls] == [store.items_of(dataset["id"])[0]["id"]]


def test_storage_node_clones_into_its_dataset_and_an_item_already_there_passes(world):
    store, project, dataset, functions, executor, runtime = world
    target = store.create_dataset({"name": "gt", "projects": [project["id"]]})
    functions.update({"src": lambda i: (i["item"], None)})
    src = node("src", "custom", [port("item", "Item")], [port("item", "Item")])
    gt = node("GT", "storage", [port("item", "Item")], [port("item", "Item")], function="clone_item")
    gt["metadata"]["datasetId"] = target["id"]
    pipeline = make_pipeline(store, project, [src, gt], [connect(src, gt)])
    (item_id,) = items(store, dataset, 1)
    for _ in range(2):
        assert run(store, runtime, pipeline, {"item": item_id})["status"] == "success"
    assert [i["filename"] for i in store.items_of(target["id"])] == ["/0.jpg"]


def test_lists_of_different_lengths_fail_the_cycle(world):
    store, project, dataset, functions, executor, runtime = world
    ids = items(store, dataset, 3)
    functions.update({"two": lambda i: ([ids[:2], ids], None), "pair": lambda i: (None, None)})
    two = node("two", "custom", [port("item", "Item")], [port("a", "Item[]"), port("b", "Item[]")])
    pair = node("pair", "custom", [port("a", "Item"), port("b", "Item")], [port("out", "Json")])
    pipeline = make_pipeline(
        store, project, [two, pair], [connect(two, pair), connect(two, pair, src_port=1, tgt_port=1)]
    )
    cycle = run(store, runtime, pipeline, {"item": ids[0]})
    assert cycle["status"] == "failed" and "different lengths" in cycle["errors"][0]


def test_connection_condition_filters_items(world):
    store, project, dataset, functions, executor, runtime = world
    ids = store.bulk_create_items(dataset["id"], [{"name": "a.jpg", "dir": "/keep"}, {"name": "b.jpg", "dir": "/drop"}])
    functions.update({"all": lambda i: (ids, None), "kept": lambda i: (None, None)})
    a = node("all", "custom", [port("item", "Item")], [port("items", "Item[]")])
    b = node("kept", "custom", [port("item", "Item")], [port("item", "Item")])
    pipeline = make_pipeline(store, project, [a, b], [connect(a, b, condition='{"dir": "/keep"}')])
    run(store, runtime, pipeline, {"item": ids[0]})
    assert [inputs["item"] for name, inputs in executor.calls if name == "kept"] == [ids[0]]


def test_execute_refuses_a_pipeline_not_installed(world):
    store, project, dataset, functions, executor, runtime = world
    a = node("a", "custom", [port("item", "Item")], [port("item", "Item")])
    pipeline = store.create_pipeline({"name": "x", "projectId": project["id"], "nodes": [a], "startNodes": []})
    with pytest.raises(ApiError) as error:
        store.execute_pipeline(pipeline["id"], {"pipeline": {}})
    assert error.value.status == 400 and "not installed" in error.value.message


def test_cycles_are_listed_by_pipeline_with_dtlpys_filter(world):
    store, project, dataset, functions, executor, runtime = world
    functions.update({"a": lambda i: (None, None)})
    a = node("a", "custom", [port("item", "Item")], [port("item", "Item")])
    first = make_pipeline(store, project, [a], [])
    second = make_pipeline(store, project, [dict(a, id=str(uuid.uuid4()))], [])
    (item_id,) = items(store, dataset, 1)
    for pipeline in (first, first, second):
        run(store, runtime, pipeline, {"item": item_id})
    body = {"filter": {"$and": [{"pipelineId": first["id"]}]}, "page": 0, "pageSize": 100, "resource": "pipelineState"}
    page = store.query_pipelines(body)
    assert page["totalItemsCount"] == 2 and {c["pipelineId"] for c in page["items"]} == {first["id"]}
    stats = store.pipeline_statistics(first["id"])
    assert stats["pipelineExecutionCounters"] == [{"status": "success", "count": 2}]


def test_pure_routing_helpers():
    assert routing.task_action("approve", ["approved", "discard"]) == "approved"
    assert routing.expand_inputs([{"name": "x", "type": "Item"}], {"x": []}) == []
    assert cron_matches("*/15 * * * *", datetime.datetime(2026, 1, 1, 0, 45))
    start = datetime.datetime(2026, 1, 1)
    assert len(due_times("0 9 * * 1", start, start + datetime.timedelta(days=28))) == 4


@pytest.mark.parametrize(("repeatable", "runs"), [(True, 2), (False, 1)])
def test_a_repeatable_task_node_re_emits_an_item_whose_status_is_set_again(world, repeatable, runs):
    """Behave pipeline_recomplete_status.feature: with ``repeatable`` a status removed and set
    again sends the item downstream again (4 executions against 3 without)."""
    store, project, dataset, functions, executor, runtime = world
    functions.update({"after": lambda i: (None, None)})
    task = node("Labeling", "task", [port("item", "Item")], [port("item", "Item", ["complete", "discard"])])
    task["metadata"].update({"taskType": "annotation", "datasetId": dataset["id"], "repeatable": repeatable})
    after = node("after", "custom", [port("item", "Item")], [port("item", "Item")])
    pipeline = make_pipeline(store, project, [task, after], [connect(task, after, "complete")])
    (item_id,) = items(store, dataset, 1)
    cycle = run(store, runtime, pipeline, {"item": item_id})
    task_id = store.get_composition(pipeline["compositionId"])["tasks"][0]["state"]["taskId"]
    for operation in ("create", "delete", "create"):
        body = {"itemIds": [item_id], "statusPayload": {"operation": operation, "status": "complete"}}
        assert list(store.set_item_status(task_id, body)) == [item_id]
        assert runtime.wait_idle(20)
    cycle = store.get_pipeline_execution(cycle["id"])
    assert cycle["status"] == "success" and len(cycle["executions"][after["id"]]) == runs
    assert len(cycle["executions"][task["id"]]) == runs


def test_a_status_for_an_item_outside_the_task_is_left_out_of_the_answer(world):
    store, project, dataset, functions, executor, runtime = world
    task = store.create_task({"name": "t", "datasetId": dataset["id"], "projectId": project["id"]})
    (item_id,) = items(store, dataset, 1)
    body = {"itemIds": [item_id], "statusPayload": {"operation": "create", "status": "completed"}}
    assert store.set_item_status(task["spec"]["createdTaskId"], body) == {}
    with pytest.raises(ApiError):
        store.set_item_status(task["spec"]["createdTaskId"], {"itemIds": "x"})


# ------------------------------------------------------------------ properties of the pure parts
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@given(st.lists(st.text(min_size=1, max_size=4), max_size=12), st.dictionaries(st.text(max_size=3), st.integers()))
def test_fan_out_runs_once_per_element_and_keeps_the_other_inputs(elements, extra):
    ports = [{"name": "item", "type": "Item"}] + [{"name": f"x{k}", "type": "Json"} for k in extra]
    values = {"item": elements, **{f"x{k}": v for k, v in extra.items()}}
    runs = routing.expand_inputs(ports, values)
    assert [r["item"] for r in runs] == elements
    assert all({k: r[k] for k in r if k != "item"} == {f"x{k}": v for k, v in extra.items()} for r in runs)


@given(st.lists(st.sampled_from(["a", "b", "c", None]), max_size=8), st.sampled_from(["a", "b", "c", None]))
def test_a_connection_fires_iff_it_has_no_action_or_the_action_set(actions, emitted):
    connections = [
        {"src": {"nodeId": "n", "portId": "o"}, "tgt": {"nodeId": str(i)}, **({"action": a} if a else {})}
        for i, a in enumerate(actions)
    ]
    fired = {c["tgt"]["nodeId"] for c in routing.firing_connections(connections, "n", {"o": "v"}, emitted)}
    assert fired == {str(i) for i, a in enumerate(actions) if a is None or a == emitted}


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=59), st.integers(min_value=1, max_value=72))
def test_an_hourly_cron_fires_once_per_hour_passed(minute, hours):
    start = datetime.datetime(2026, 3, 1, 0, minute)
    assert len(due_times(f"{minute} * * * *", start, start + datetime.timedelta(hours=hours))) == hours
