"""The engine's own contract (emulator/engine/__init__.py), used by pipelines and the demo:
``engine.submit`` with ``pipeline`` and ``on_done``, warm worker processes, folders removed when a
service stops. Documented behaviour: ``tests/test_platform_conformance_execution*.py``.
"""

from __future__ import annotations

import json
import os
import threading

import dtlpy as dl
import pytest

from emulator import LocalPlatform
from tests.test_platform_conformance_execution import APP_CODE, manifest, publish


@pytest.fixture(scope="module")
def basic(_platform_session: LocalPlatform, tmp_path_factory):
    """One installed app with one module (``basic``, concurrency 4) and an item."""
    project = dl.projects.create(project_name="engine-contract")
    dataset = project.datasets.create(dataset_name="engine-contract-data")
    app_manifest = manifest("engine-contract-app")
    app_manifest["components"]["modules"] = app_manifest["components"]["modules"][:1]
    source = tmp_path_factory.mktemp("contract-app")
    (source / "dataloop.json").write_text(json.dumps(app_manifest))
    (source / "main.py").write_text(APP_CODE)
    dpk = publish(project, source)
    project.apps.install(dpk=dpk)
    (service,) = project.services.list().all()
    item = dataset.items.upload(local_path=str(source / "main.py"), remote_name="contract.py")
    return {"project": project, "service": service, "item": item}


def test_submit_reports_the_final_execution_to_on_done_off_the_calling_thread(platform, basic):
    """``on_done(execution_json)`` gets the final JSON (status, output, action) from another thread;
    ``pipeline`` is recorded on the execution."""
    engine = platform.store.engine
    calls: list[tuple[dict, int]] = []
    pipeline = {"id": "a" * 24, "nodeId": "n1", "executionId": "b" * 24}
    created = engine.submit(
        basic["service"].id,
        "touch",
        {"item": basic["item"].id},
        pipeline=pipeline,
        on_done=lambda execution: calls.append((execution, threading.get_ident())),
    )
    assert created["latestStatus"]["status"] == "created" and created["pipeline"] == pipeline
    assert engine.wait_idle(120)
    ((final, thread),) = calls
    assert thread != threading.get_ident()
    assert final["id"] == created["id"] and final["latestStatus"]["status"] == "success"
    assert final["output"] == basic["item"].id and final["action"] == "seen"
    assert final["pipeline"] == pipeline


def test_on_done_also_reports_failures(platform, basic):
    engine = platform.store.engine
    calls: list[dict] = []
    engine.submit(basic["service"].id, "boom", {"config": 1}, on_done=calls.append)
    assert engine.wait_idle(120)
    assert (
        calls[0]["latestStatus"]["status"] == "failed" and "ValueError: boom: 1" in calls[0]["latestStatus"]["message"]
    )


def test_warm_executions_share_one_process(platform, basic):
    """Executions of a service reuse its warm process: no process starts per execution."""
    engine = platform.store.engine
    engine.submit(basic["service"].id, "pid", {})
    assert engine.wait_idle(120)
    started = engine.counters["processes_started"]
    for _ in range(5):
        engine.submit(basic["service"].id, "pid", {})
    assert engine.wait_idle(120)
    assert engine.counters["processes_started"] == started


def test_an_unknown_service_or_model_operation_is_refused(platform, basic):
    from emulator.store import ApiError

    with pytest.raises(ApiError, match="service not found"):
        platform.store.engine.submit("0" * 24, "touch", {})
    with pytest.raises(ApiError, match="not one of"):
        platform.store.engine.run_model_operation("0" * 24, "dance", {})


def test_a_new_service_takes_the_spare_process_and_leaves_no_folder_when_deleted(platform, basic, tmp_path):
    """A new service's first execution runs on the spare process (dtlpy already imported) and a
    new spare is spawned; deleting the service stops its processes and removes its folder."""
    project = basic["project"]
    app_manifest = manifest("engine-delete-app")
    app_manifest["displayName"] = "Engine Delete App"
    app_manifest["components"]["modules"] = app_manifest["components"]["modules"][:1]
    app_manifest["components"]["computeConfigs"][0]["name"] = "basic-delete"
    app_manifest["components"]["modules"][0]["computeConfig"] = "basic-delete"
    (tmp_path / "dataloop.json").write_text(json.dumps(app_manifest))
    (tmp_path / "main.py").write_text(APP_CODE)
    dpk = publish(project, tmp_path)
    app = project.apps.install(dpk=dpk)
    service = project.services.get(service_name="basic-delete")
    engine = platform.store.engine
    engine.submit(basic["service"].id, "pid", {})
    assert engine.wait_idle(120)  # the basic service's process is up and a spare was spawned
    spawned = engine.counters["processes_started"]
    engine.submit(service.id, "pid", {})
    assert engine.wait_idle(120)
    assert engine.counters["processes_started"] == spawned + 1  # took the spare; spawned the next one
    folder = platform.store.engine._runtimes[service.id].folder
    assert os.path.isdir(folder)
    project.apps.uninstall(app_id=app.id)
    assert not os.path.exists(folder) and service.id not in platform.store.engine._runtimes


def test_stopping_a_service_ends_its_running_and_queued_executions(platform, basic, tmp_path):
    """Uninstalling the app while executions run or wait ends them ``failed`` (nothing is left
    ``created`` or ``in-progress``, so ``wait_idle`` returns) and starts no process afterwards."""
    project = basic["project"]
    app_manifest = manifest("engine-stop-app")
    app_manifest["displayName"] = "Engine Stop App"
    app_manifest["components"]["modules"] = app_manifest["components"]["modules"][:1]
    app_manifest["components"]["computeConfigs"][0] = {"name": "one-at-a-time", "runtime": {"concurrency": 1}}
    app_manifest["components"]["modules"][0]["computeConfig"] = "one-at-a-time"
    (tmp_path / "dataloop.json").write_text(json.dumps(app_manifest))
    (tmp_path / "main.py").write_text(APP_CODE)
    dpk = publish(project, tmp_path)
    app = project.apps.install(dpk=dpk)
    service = project.services.get(service_name="one-at-a-time")
    engine = platform.store.engine
    running = engine.submit(service.id, "wait_for_kill", {"config": {}})
    queued = [engine.submit(service.id, "pid", {}) for _ in range(2)]
    for _ in range(1000):
        if platform.store.get_execution(running["id"])["latestStatus"]["status"] == "in-progress":
            break
        engine.wait_idle(0.05)
    project.apps.uninstall(app_id=app.id)
    started = engine.counters["processes_started"]
    assert engine.wait_idle(60)
    statuses = [platform.store.get_execution(e["id"])["latestStatus"] for e in [running, *queued]]
    assert [s["status"] for s in statuses] == ["failed"] * 3
    assert all("stopped before the execution ran" in s["message"] for s in statuses[1:])
    assert engine.counters["processes_started"] == started
