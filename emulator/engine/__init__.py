"""The runtime of the local platform: services run executions in worker processes, models run
their adapters, pipelines run cycles. ``store.engine`` is the :class:`Engine` of a store (made
with it; ``LocalPlatform`` starts and stops it).

Engine API (helper modules: ``services``, ``runtime``, ``executions``, ``codebase``, ``models``)
--------------------------------------------------------------------------------------------
- ``Engine(store)``; ``engine.start(url, token, workdir=None)`` / ``engine.stop()``.
- ``engine.ensure_module_service(project_id, app_or_dpk, module_name) -> service_json``: the
  service of an app's module (``apps.install`` calls it for every module). Its ``name`` is the
  module's compute config name (what ``namespace.serviceName`` of a custom node says, e.g.
  ``select-for-labeling``), else the module name with ``_`` → ``-``.
- ``engine.submit(service_id, function_name, inputs, *, pipeline=None, on_done=None, model=None,
  trigger_id=None, event=None) -> execution_json`` (status ``created``). ``pipeline`` =
  ``{"id", "nodeId", "executionId"}`` is stored as ``execution.pipeline`` and reaches
  ``dl.Context`` (``pipeline_id``, ``node_id``, ``pipeline_execution_id``); ``event`` becomes
  ``context.event``. Inputs are ids (``{"item": "<id>"}``; ``{"item_id": ...}`` dicts too) and
  JSON; the worker fetches entities by the function's declared input types.
  ``on_done(execution_json)`` runs off the request thread when the execution ends; the JSON has
  ``latestStatus.status`` (``success`` / ``failed`` / ``terminated``), ``output`` (entities as
  their ids, lists element-wise, several return values as a list by output position) and
  ``action`` (the last ``progress.update(action=...)``; a top-level field of the execution:
  an assumption, the platform's place for it is undocumented).
- ``engine.run_model_operation(model_id, operation, inputs, *, pipeline=None, on_done=None,
  service_config=None) -> execution_json`` for ``predict`` / ``embed`` (``items``: ids, or
  ``item``), ``train``, ``evaluate`` (``dataset``, ``filters``), on the model's ``deploy`` /
  ``train`` / ``evaluate`` service (created on first use; a deploy service is recorded in
  ``metadata.system.deploy.services``). Outputs as the adapter returns them: predict
  ``[item ids, annotation ids]``, train the model id, evaluate ``[model id, dataset id]``;
  ``execution.model`` = ``{"modelId", "operation"}``.
- ``engine.terminate(execution_id)``, ``engine.rerun(execution_id)``,
  ``engine.wait_idle(timeout) -> bool`` (True when nothing is queued or running),
  ``engine.peak_concurrency(service_id)``, ``engine.stop_service(service_id)``.
- ``engine.logs[execution_id]`` lines ``{timestamp, level, message}``; ``engine.counters``
  (``processes_started``, ``executions``, ``attempts``).
"""

import emulator.store  # noqa: F401 - first: the store's modules import engine helpers (no cycle)
from emulator.engine.services import Engine

__all__ = ["Engine"]
