"""Documented service and execution behaviour (FaaS), through the real dtlpy client on the local
platform: an app published with ``dpks.publish`` and installed with ``apps.install`` runs its own
packed code in worker processes. Each test names its source (Dataloop docs, dtlpy 1.126.5's
source, /work/shared/PIPELINE_FACTS.md); the rules and assumptions are in emulator/README.md,
"Services, executions, models". Engine internals: ``tests/test_engine_services*.py``.
"""

from __future__ import annotations

import json
import os
import textwrap

import dtlpy as dl
import pytest

from emulator import LocalPlatform

APP_CODE = textwrap.dedent(
    """
    import os
    import time

    import dtlpy as dl


    class ServiceRunner(dl.BaseServiceRunner):
        def __init__(self, greeting="hi"):
            self.greeting = greeting

        def touch(self, item: dl.Item, progress: dl.Progress = None, context: dl.Context = None):
            print(self.greeting, item.name)
            progress.update(progress=50, message="half way", action="seen")
            return item

        def describe(self, dataset, model, items, config, context: dl.Context = None):
            return {
                "types": [type(dataset).__name__, type(model).__name__, [type(i).__name__ for i in items]],
                "ids": [dataset.id, model.id, [i.id for i in items]],
                "config": config,
                "context": {
                    "execution": context.execution_id,
                    "service": context.service.name,
                    "project": context.project.id,
                    "pipeline": context.pipeline_id,
                    "node": context.node_id,
                    "cycle": context.pipeline_execution_id,
                },
            }

        def two(self, item: dl.Item):
            return item, [item, item]

        def boom(self, config):
            raise ValueError("boom: " + str(config))

        def crash_once(self, config):
            marker = os.path.join(os.getcwd(), "crashed-" + config["key"])
            if not os.path.exists(marker):
                open(marker, "w").close()
                os._exit(3)
            return "second attempt"

        def crash(self, config):
            os._exit(4)

        def sleep(self, config):
            time.sleep(config["seconds"])
            return "woke"

        def wait_for_kill(self, config):
            while True:
                self.kill_event()
                time.sleep(0.02)

        def pid(self):
            return os.getpid()
    """
)


def _functions(*specs):
    return [
        {
            "name": name,
            "input": [{"name": n, "type": t} for n, t in inputs],
            "output": [{"name": "out", "type": "Json"}],
        }
        for name, inputs in specs
    ]


FUNCTIONS = _functions(
    ("touch", [("item", "Item")]),
    ("describe", [("dataset", "Dataset"), ("model", "Model"), ("items", "Item[]"), ("config", "Json")]),
    ("two", [("item", "Item")]),
    ("boom", [("config", "Json")]),
    ("crash_once", [("config", "Json")]),
    ("crash", [("config", "Json")]),
    ("sleep", [("config", "Json")]),
    ("wait_for_kill", [("config", "Json")]),
    ("pid", []),
)


def manifest(name: str = "engine-test-app") -> dict:
    def module(module_name, config):
        return {
            "name": module_name,
            "entryPoint": "main.py",
            "className": "ServiceRunner",
            "computeConfig": config,
            "initInputs": [{"name": "greeting", "type": "Json", "value": "hello"}],
            "functions": FUNCTIONS,
        }

    return {
        "name": name,
        "version": "1.0.0",
        "displayName": "Engine Test App",
        "scope": "project",
        "components": {
            "computeConfigs": [
                {"name": "basic", "runtime": {"concurrency": 4}},
                {"name": "fragile", "runtime": {"concurrency": 2}, "onReset": "rerun", "maxAttempts": 3},
                {"name": "slow", "runtime": {"concurrency": 2}, "executionTimeout": 2},
                {"name": "isolated", "runtime": {"concurrency": 2}, "runExecutionAsProcess": True},
            ],
            "modules": [
                module("basic_module", "basic"),
                module("fragile_module", "fragile"),
                module("slow_module", "slow"),
                module("isolated_module", "isolated"),
            ],
        },
    }


def publish(project: dl.Project, folder) -> dl.Dpk:
    """``dpks.publish`` of ``folder`` from inside it (dtlpy packs into ``<cwd>/.dataloop``)."""
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        return project.dpks.publish(manifest_filepath=str(folder / "dataloop.json"), local_path=str(folder))
    finally:
        os.chdir(cwd)


@pytest.fixture(scope="module")
def installed(_platform_session: LocalPlatform, tmp_path_factory):
    project = dl.projects.create(project_name="engine-services")
    dataset = project.datasets.create(dataset_name="engine-data")
    source = tmp_path_factory.mktemp("app")
    (source / "dataloop.json").write_text(json.dumps(manifest()))
    (source / "main.py").write_text(APP_CODE)
    dpk = publish(project, source)
    app = project.apps.install(dpk=dpk)
    items = [dataset.items.upload(local_path=str(source / "main.py"), remote_name=f"f{i}.py") for i in range(3)]
    services = {s.name: s for s in project.services.list().all()}
    return {"project": project, "dataset": dataset, "app": app, "items": items, "services": services}


def _run(platform: LocalPlatform, service: dl.Service, function: str, inputs: dict) -> dl.Execution:
    execution = service.execute(execution_input=inputs, function_name=function)
    assert platform.store.engine.wait_idle(120)
    return execution.wait()


def test_install_deploys_one_service_per_module_named_by_its_compute_config(installed):
    """``apps.install`` deploys the manifest's modules as services (PIPELINE_FACTS §7: custom nodes
    name the service ``namespace.serviceName`` = the module's compute config, e.g.
    ``select-for-labeling``); the service carries the compute config's runtime settings
    (dtlpy ``entities/dpk.py`` ``DpkComputeConfig``; defaults from ``entities/service.py``)."""
    services = installed["services"]
    assert set(services) == {"basic", "fragile", "slow", "isolated"}
    assert services["basic"].module_name == "basic_module"
    assert services["basic"].runtime.concurrency == 4
    assert services["fragile"].on_reset == "rerun" and services["fragile"].max_attempts == 3
    assert services["slow"].execution_timeout == 2
    assert services["isolated"].run_execution_as_process is True
    assert services["basic"].init_input == {"greeting": "hello"}


def test_an_execution_runs_the_app_code_and_ends_success(platform, installed):
    """``service.execute`` → ``POST /executions/{serviceId}`` answers a ``created`` execution
    (dtlpy ``repositories/executions.py`` ``create``); it then goes ``in-progress`` → ``success``
    (``ExecutionStatus``), every change in ``statusLog``, the last one in ``latestStatus``; the
    output is the returned entity's id; ``progress.update(action=...)`` is kept as ``action``."""
    item = installed["items"][0]
    service = installed["services"]["basic"]
    created = service.execute(execution_input={"item": item.id}, function_name="touch")
    assert created.latest_status["status"] == "created"
    assert platform.store.engine.wait_idle(120)
    execution = created.wait()
    assert [s["status"] for s in execution.status_log] == ["created", "in-progress", "success"]
    assert execution.latest_status["status"] == "success" and execution.latest_status["percentComplete"] == 100
    assert execution.output == item.id and execution.attempts == 1 and execution.max_attempts == 3
    assert execution.function_name == "touch" and execution.service_id == service.id
    assert platform.store.get_execution(execution.id)["action"] == "seen"
    lines = [line["message"] for line in platform.store.engine.logs[execution.id]]
    assert f"hello {item.name}" in lines  # initParams reached the constructor; print() is a log line


def test_inputs_are_resolved_by_type_and_the_context_names_the_execution(platform, installed):
    """Entity inputs are passed by id and fetched by their declared type (Dataloop docs "FaaS
    execution": "The input of Dataloop type ... should be passed with an ID"; ``X[]`` a list;
    ``Json`` as is; dtlpy ``LocalServiceRunner``); ``context`` is a ``dl.Context`` naming the
    service, execution, project and, in a pipeline, pipeline / node / cycle
    (``utilities/base_package_runner.py``)."""
    project, dataset, items = installed["project"], installed["dataset"], installed["items"]
    model = platform.create_model(project, "described", dataset=dataset)
    service = installed["services"]["basic"]
    inputs = {
        "dataset": dataset.id,
        "model": {"model_id": model.id},
        "items": [items[0].id, items[1].id],
        "config": {"a": [1, 2]},
    }
    execution = _run(platform, service, "describe", inputs)
    assert execution.latest_status["status"] == "success", execution.latest_status
    out = execution.output
    assert out["types"] == ["Dataset", "Model", ["Item", "Item"]]
    assert out["ids"] == [dataset.id, model.id, [items[0].id, items[1].id]]
    assert out["config"] == {"a": [1, 2]}
    assert out["context"] == {
        "execution": execution.id,
        "service": "basic",
        "project": project.id,
        "pipeline": None,
        "node": None,
        "cycle": None,
    }
    pipeline = {"id": "p" * 24, "nodeId": "node-1", "executionId": "c" * 24}
    submitted = platform.store.engine.submit(service.id, "describe", inputs, pipeline=pipeline)
    assert platform.store.engine.wait_idle(120)
    done = dl.executions.get(execution_id=submitted["id"])
    assert done.pipeline == pipeline
    assert done.output["context"]["pipeline"] == pipeline["id"]
    assert done.output["context"]["node"] == "node-1" and done.output["context"]["cycle"] == "c" * 24


def test_several_return_values_are_the_output_by_position(platform, installed):
    """A function returning several values (``predict_items`` returns ``(items, annotations)``)
    gives an output list by port position (PIPELINE_FACTS §2, inferred), entities as ids."""
    item = installed["items"][0]
    execution = _run(platform, installed["services"]["basic"], "two", {"item": item.id})
    assert execution.output == [item.id, [item.id, item.id]]


def test_an_exception_fails_the_execution_with_its_traceback_in_the_logs(platform, installed):
    """An exception in the function fails the execution (``failed``) with the traceback in its logs
    (``execution.logs()`` → ``POST /services/logs``); it is not retried (``maxAttempts`` counts
    retries "in-case of a service reset", dtlpy ``repositories/services.py``)."""
    execution = _run(platform, installed["services"]["basic"], "boom", {"config": {"x": 1}})
    assert execution.latest_status["status"] == "failed" and execution.attempts == 1
    assert "ValueError: boom" in execution.latest_status["message"]
    logs = dl.services.log(service=installed["services"]["basic"], execution_id=execution.id, view=False, follow=False)
    text = "\n".join(logs)
    assert "Traceback (most recent call last)" in text and "ValueError: boom: {'x': 1}" in text


def test_a_crash_fails_the_execution_and_never_the_platform(platform, installed):
    """A worker process that dies fails its execution (``onReset`` ``failed``, the default, dtlpy
    ``entities/service.py``) with the exit in its logs; the next execution runs on a new process."""
    service = installed["services"]["basic"]
    execution = _run(platform, service, "crash", {"config": {}})
    assert execution.latest_status["status"] == "failed"
    assert "exit code 4" in execution.latest_status["message"]
    assert _run(platform, service, "boom", {"config": 2}).latest_status["status"] == "failed"
    assert _run(platform, service, "two", {"item": installed["items"][0].id}).latest_status["status"] == "success"


def test_a_reset_reruns_the_execution_counting_attempts(platform, installed):
    """With ``onReset: rerun`` an execution whose service was reset (its process died) runs again
    while ``attempts < maxAttempts`` (Dataloop docs "execution control"; dtlpy ``max_attempts``:
    "maximum execution retries in-case of a service reset"); ``attempts`` counts the tries."""
    execution = _run(platform, installed["services"]["fragile"], "crash_once", {"config": {"key": "a"}})
    assert execution.latest_status["status"] == "success" and execution.output == "second attempt"
    assert execution.attempts == 2
    assert [s["status"] for s in execution.status_log] == [
        "created",
        "in-progress",
        "created",
        "in-progress",
        "success",
    ]
    always = _run(platform, installed["services"]["fragile"], "crash", {"config": {}})
    assert always.latest_status["status"] == "failed" and always.attempts == always.max_attempts == 3


def test_an_execution_over_its_timeout_fails(platform, installed):
    """``executionTimeout`` (seconds) ends an execution that runs longer: it fails (``onReset``
    ``failed``) naming the timeout, and the service keeps serving."""
    service = installed["services"]["slow"]
    execution = _run(platform, service, "sleep", {"config": {"seconds": 60}})
    assert execution.latest_status["status"] == "failed"
    assert "timed out after 2 s" in execution.latest_status["message"]
    text = "\n".join(line["message"] for line in platform.store.engine.logs[execution.id])
    assert 'time.sleep(config["seconds"])' in text  # where it was when its time ran out
    assert _run(platform, service, "sleep", {"config": {"seconds": 0}}).output == "woke"


def test_terminate_stops_a_running_execution(platform, installed):
    """``execution.terminate()`` → ``POST /executions/{id}/terminate``: the function's
    ``self.kill_event()`` raises (dtlpy ``BaseServiceRunner``) and the execution ends
    ``terminated``."""
    service = installed["services"]["basic"]
    execution = service.execute(execution_input={"config": {}}, function_name="wait_for_kill")
    for _ in range(500):
        if dl.executions.get(execution_id=execution.id).latest_status["status"] == "in-progress":
            break
        platform.store.engine.wait_idle(0.02)
    execution.terminate()
    assert platform.store.engine.wait_idle(60)
    assert dl.executions.get(execution_id=execution.id).latest_status["status"] == "terminated"


def test_run_execution_as_process_uses_a_new_process_each_time(platform, installed):
    """``runExecutionAsProcess`` runs every execution in its own process (dtlpy
    ``entities/service.py``); other services keep one warm process."""
    isolated, basic = installed["services"]["isolated"], installed["services"]["basic"]
    pids = {_run(platform, isolated, "pid", {}).output for _ in range(2)}
    assert len(pids) == 2
    warm = {_run(platform, basic, "pid", {}).output for _ in range(2)}
    assert len(warm) == 1


def test_a_service_runs_at_most_concurrency_executions_at_once(platform, installed):
    """``runtime.concurrency`` is the number of parallel executions per replica (dtlpy
    ``entities/service.py`` ``KubernetesRuntime``); the rest wait in the queue and all end."""
    service = installed["services"]["slow"]  # concurrency 2
    executions = [
        service.execute(execution_input={"config": {"seconds": 0.5}}, function_name="sleep") for _ in range(5)
    ]
    assert platform.store.engine.wait_idle(120)
    assert [e.wait().output for e in executions] == ["woke"] * 5
    assert platform.store.engine.peak_concurrency(service.id) == 2


def test_executions_are_listed_and_counted_by_dtlpy(platform, installed):
    """``service.executions.list()`` → ``POST /query/faas`` with ``resource: executions``."""
    service = installed["services"]["basic"]
    before = service.executions.list().items_count
    _run(platform, service, "two", {"item": installed["items"][1].id})
    assert service.executions.list().items_count == before + 1


def test_a_bad_execute_is_refused_and_writes_nothing(platform, installed):
    """An unknown function is refused (400 naming the functions); nothing is created."""
    service = installed["services"]["basic"]
    before = len(platform.store.tables["executions"])
    with pytest.raises(dl.exceptions.BadRequest, match="no function 'nope'"):
        service.execute(execution_input={}, function_name="nope")
    assert len(platform.store.tables["executions"]) == before


def test_project_services_deploy_of_a_package_runs_it(platform, installed, tmp_path, monkeypatch):
    """``project.packages.push`` (packs the folder, ``GET /piper-misc/naming/packages/{name}``,
    ``POST /packages``) then ``package.services.deploy`` (``POST /services``) deploy a FaaS
    package's module, which then executes (dtlpy ``repositories/packages.py``,
    ``repositories/services.py``)."""
    monkeypatch.chdir(tmp_path)  # dtlpy packs into <cwd>/.dataloop
    (tmp_path / "main.py").write_text(APP_CODE)
    project = installed["project"]
    module = dl.PackageModule(
        name="default_module",
        entry_point="main.py",
        class_name="ServiceRunner",
        functions=[dl.PackageFunction(name="touch", inputs=[dl.FunctionIO(type="Item", name="item")])],
    )
    package = project.packages.push(package_name="engine-package", src_path=str(tmp_path), modules=[module])
    service = package.services.deploy(service_name="engine-package-service", module_name="default_module")
    assert service.package_id == package.id
    execution = _run(platform, service, "touch", {"item": installed["items"][2].id})
    assert execution.latest_status["status"] == "success" and execution.output == installed["items"][2].id
    with pytest.raises(dl.exceptions.BadRequest, match="lowercase"):
        project.packages.push(package_name="Bad_Name", src_path=str(tmp_path), modules=[module])


def test_an_execution_carries_the_documented_fields(platform, installed):
    """``GET /executions/{id}`` answers the fields dtlpy's ``Execution.from_json`` reads (dtlpy
    ``entities/execution.py``; PIPELINE_FACTS §5 "Execution fields"), ``pipeline`` null outside a
    pipeline, ``latestStatus.status`` one of ``ExecutionStatus``."""
    execution = _run(platform, installed["services"]["basic"], "pid", {})
    raw = platform.call("GET", f"/executions/{execution.id}")
    documented = {
        "id", "url", "creator", "createdAt", "updatedAt", "input", "output", "feedbackQueue", "status",
        "statusLog", "syncReplyTo", "latestStatus", "functionName", "duration", "attempts", "maxAttempts",
        "toTerminate", "triggerId", "serviceId", "projectId", "serviceVersion", "packageId", "packageName",
        "packageRevision", "pipeline", "model", "app", "driverId",
    }  # fmt: skip
    assert documented <= set(raw)
    assert raw["pipeline"] is None and raw["projectId"] == installed["project"].id
    assert raw["latestStatus"]["status"] in {s.value for s in dl.ExecutionStatus}
    assert raw["status"] == raw["statusLog"] and isinstance(raw["duration"], float)
