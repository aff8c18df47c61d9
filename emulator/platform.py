"""``LocalPlatform``: start the emulator server and point the real dtlpy client at it.

Entering the context starts :class:`emulator.server.EmulatorServer` on 127.0.0.1, gives dtlpy
its own cookie file, environment alias and the bearer token the server requires; leaving it
restores dtlpy's previous state and stops the server. Test helpers (request counts, fault
injection, state built through the REST API's own rules, JSON snapshots): emulator/README.md.
"""

from __future__ import annotations

import base64
import copy
import datetime
import json
import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import dtlpy as dl
from dtlpy.services.cookie import CookieIO

from emulator.responses import Request
from emulator.routes import Router
from emulator.server import EmulatorServer, LoggedRequest, RequestLog
from emulator.store import ApiError, IdFactory, Store

logger = logging.getLogger(__name__)

_STACK: list[LocalPlatform] = []
_STACK_LOCK = threading.Lock()
# ApiClient attributes that live in (or are cached from) the cookie file; swapped per session
_CLIENT_STATE = (
    "cookie_io",
    "_environments",
    "_environment",
    "_token",
    "_ApiClient__gate_url_for_requests",
    "_verbose",
    "_error_suppression",
    "_cache_state",
    "_attributes_mode",
    "_sdk_cache",
    "_fetch_entities",
    "cache",
    "refresh_token_active",
    "_login_domain",
)


def unsigned_token(email: str = "emulator@localhost", lifetime_s: int = 10 * 365 * 24 * 3600) -> str:
    """An unsigned JWT (``alg: none``) with ``email`` and a far ``exp``, which dtlpy accepts.

    Example
    -------
    >>> token = unsigned_token()
    >>> token.count(".")
    2
    """

    def part(obj: Mapping[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    # ``jti``: a random id, so each LocalPlatform issues its own token (another one answers 401)
    payload = {
        "email": email,
        "sub": email,
        "exp": int(time.time()) + lifetime_s,
        "iat": int(time.time()),
        "jti": secrets.token_hex(8),
    }
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


_PALETTE = [
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
]


def make_labels(tags: Iterable[str]) -> list[dl.Label]:
    """``dl.Label`` objects (with colours) for ``tags``: the only label form dtlpy 1.126.5's
    ``project.datasets.create(labels=...)`` accepts (a list of strings or dicts crashes in
    ``Dataset.serialize_labels``, and labels without a colour crash in ``labels_to_roots``).

    Example
    -------
    >>> [label.tag for label in make_labels(["cat", "dog"])]
    ['cat', 'dog']
    """
    return [dl.Label(tag=tag, color=_PALETTE[i % len(_PALETTE)]) for i, tag in enumerate(tags)]


class RecordingProgress(dl.Progress):
    """A ``dl.Progress`` that records every ``update()`` call (dtlpy's is a no-op off-platform).

    Attributes
    ----------
    updates : list of dict
        The keyword arguments of each call (``status``, ``progress``, ``message``, ``output``,
        ``duration``, ``action``), with ``None`` values left out.
    actions : list of str
        The ``action`` of each call that set one, in order.

    Example
    -------
    >>> progress = RecordingProgress()
    >>> progress.update(action="update model")
    >>> progress.actions
    ['update model']
    """

    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []
        self.actions: list[str] = []

    def update(self, status=None, progress=0, message=None, output=None, duration=None, action=None):  # noqa: D102
        call = {
            "status": status,
            "progress": progress,
            "message": message,
            "output": output,
            "duration": duration,
            "action": action,
        }
        self.updates.append({k: v for k, v in call.items() if v is not None})
        if action is not None:
            self.actions.append(action)


class LocalPlatform:
    """A local Dataloop platform the real dtlpy client talks to (use as a context manager).

    Platforms may be nested (``with`` inside ``with``): each one saves dtlpy's state when it
    starts and restores it when it stops, so stop them in reverse order.

    Parameters
    ----------
    alias : str, optional
        dtlpy environment alias to register (default ``"emulator-<port>"``).
    clone_polls : int
        How many ``GET /ml/models/{id}`` answers still say ``"cloning"`` after a clone; the next
        one has the final status (dtlpy polls while ``cloning``, sleeping ~2.2 s per poll).
    clone_async : bool
        ``True`` (the platform's behaviour): ``POST /ml/models/{id}/clone`` answers ``cloning``
        and dtlpy's ``model.clone()`` polls once at least. ``False``: the clone answers the final
        status (no poll, ~2.2 s faster; a divergence kept for speed).
    null_deletes : bool
        The undocumented reading of ``null`` in a single-entity PATCH: ``True`` deletes the key,
        ``False`` stores ``null`` (``store.null_deletes``; emulator/README.md, assumptions).

    Example
    -------
    >>> import dtlpy as dl
    >>> with LocalPlatform() as platform:                      # doctest: +SKIP
    ...     project = dl.projects.create("p")
    ...     dataset = project.datasets.create("d", labels=["cat", "dog"])
    ...     platform.request_counts["POST /datasets"]
    1
    """

    def __init__(
        self,
        alias: str | None = None,
        clone_polls: int = 0,
        id_prefix: str | None = None,
        clone_async: bool = True,
        null_deletes: bool = True,
    ) -> None:
        self.store = Store()
        if id_prefix is not None:  # reproducible ids (8 hex digits + a counter), e.g. for the demo
            self.store.ids = IdFactory(id_prefix)
        self.log = RequestLog()
        self.server: EmulatorServer | None = None
        self._alias = alias
        self.alias: str | None = None
        self.store.clone_polls = clone_polls
        self.store.clone_async = clone_async
        self.store.null_deletes = bool(null_deletes)
        self._saved: dict[str, Any] | None = None
        self._tmpdir: str | None = None
        self.token = unsigned_token()
        self._router = Router()

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> LocalPlatform:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalPlatform:
        """Start the server and point dtlpy at it (what ``with`` does)."""
        if self.server is not None:
            raise RuntimeError("LocalPlatform already started")
        try:
            self.server = EmulatorServer(self.store, self.log, token=self.token).start()
            self._point_dtlpy()
            self.store.engine.start(self.url, self.token, workdir=self._tmpdir)
        except BaseException:
            if self.server is not None:
                self.server.stop()
                self.server = None
            raise
        with _STACK_LOCK:
            _STACK.append(self)
        logger.info("local Dataloop platform on %s (alias %s)", self.url, self.alias)
        return self

    def stop(self) -> None:
        """Restore dtlpy's previous state and stop the server."""
        if self.server is None:
            return
        with _STACK_LOCK:
            if _STACK and _STACK[-1] is not self:
                logger.warning("LocalPlatform stopped out of order: dtlpy gets the state saved when it started")
            if self in _STACK:
                _STACK.remove(self)
        try:
            self.store.engine.stop()
            self.store.pipeline_runtime.stop()  # the pipelines' dispatcher thread
            self._restore_dtlpy()
        finally:
            self.server.stop()
            self.server = None

    @property
    def url(self) -> str:
        """Base URL of the API, e.g. ``http://127.0.0.1:53211/api/v1``."""
        if self.server is None:
            raise RuntimeError("LocalPlatform is not started")
        return self.server.base_url

    def _point_dtlpy(self) -> None:
        api = dl.client_api
        self._saved = {name: getattr(api, name, None) for name in _CLIENT_STATE}
        self._saved["__verbose_cookie__"] = dl.verbose.cookie
        self._saved["__verbose_state__"] = (
            dl.verbose.disable_progress_bar,
            dict(dl.verbose._progress_bar_settings) if hasattr(dl.verbose, "_progress_bar_settings") else None,
        )
        self._tmpdir = tempfile.mkdtemp(prefix="dtlpy-emulator-")
        cookie = CookieIO(path=os.path.join(self._tmpdir, "cookie.json"))
        api.cookie_io = cookie
        for name in _CLIENT_STATE[1:]:
            if name == "refresh_token_active":
                continue
            setattr(api, name, None)
        dl.verbose.cookie = cookie
        self.alias = self._alias or f"emulator-{self.server.port}"
        api.add_environment(
            environment=self.url,
            alias=self.alias,
            gate_url=self.url,
            url=self.url.rsplit("/api/v1", 1)[0] + "/",
            verify_ssl=False,
            token=self.token,
        )
        api.setenv(self.alias)
        api.token = self.token
        dl.verbose.disable_progress_bar = True
        api._verbose = dl.verbose

    def _restore_dtlpy(self) -> None:
        api = dl.client_api
        saved = self._saved or {}
        disable, settings = saved.get("__verbose_state__", (None, None))
        if disable is not None:
            dl.verbose.disable_progress_bar = disable
        if settings is not None:
            dl.verbose._progress_bar_settings = settings
        dl.verbose.cookie = saved.get("__verbose_cookie__", dl.verbose.cookie)
        for name in _CLIENT_STATE:
            if name in saved:
                setattr(api, name, saved[name])
        self._saved = None
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    # ------------------------------------------------------------------ requests
    @property
    def request_counts(self) -> Counter:
        """Served requests by ``"METHOD /route/{id}/template"`` (no query string); a copy.

        Example: ``platform.request_counts["POST /datasets/{id}/query"]``.
        """
        return self.log.counts()

    @property
    def requests(self) -> list[LoggedRequest]:
        """Every served request in order: ``(method, route, status, wrote, path)``."""
        return self.log.entries()

    def reset_counts(self) -> None:
        """Forget the served requests (counts, log and write count)."""
        self.log.reset()

    def write_count(self) -> int:
        """How many served requests changed server state (creates, updates, deletes, clone, publish)."""
        return self.log.write_count()

    def fail_next(
        self, method: str, path_regex: str, status: int | None = 503, times: int = 1, delay_s: float = 0
    ) -> None:
        """Make the next ``times`` requests matching ``method`` and ``path_regex`` fail.

        Parameters
        ----------
        method : str
            HTTP method (``"*"`` for any).
        path_regex : str
            Searched in the path after ``/api/v1`` (with its query string) and in the full path.
        status : int or None
            Status to answer (dtlpy retries 501-511, not 500). ``None``: only delay, then serve.
        times : int
            Number of matching requests to fail.
        delay_s : float
            Sleep before answering (simulates a slow platform / timeouts).

        Example
        -------
        >>> platform.fail_next("PATCH", r"/items/", status=503, times=1)   # doctest: +SKIP
        """
        self.log.fail_next(method, path_regex, status=status, times=times, delay_s=delay_s)

    def clear_failures(self) -> None:
        """Drop the fault-injection rules not used yet."""
        self.log.clear_failures()

    @property
    def clone_async(self) -> bool:
        """Clones answer ``cloning`` and finish later, as on the platform (default ``True``);
        ``False`` finishes them in the clone request (dtlpy then does not poll)."""
        return self.store.clone_async

    @clone_async.setter
    def clone_async(self, value: bool) -> None:
        self.store.clone_async = bool(value)

    @property
    def clone_polls(self) -> int:
        return self.store.clone_polls

    @clone_polls.setter
    def clone_polls(self, value: int) -> None:
        self.store.clone_polls = int(value)

    # ------------------------------------------------------------------ helpers
    def create_model(
        self,
        project: dl.Project | str,
        name: str,
        dataset: dl.Dataset | str | None = None,
        labels: Iterable[str] | None = None,
        configuration: Mapping[str, Any] | None = None,
        status: str = "trained",
        **fields: Any,
    ) -> dl.Model:
        """Create a model the way the REST API allows (from a package) and get it with dtlpy.

        The platform only creates a model from a package (``POST /ml/models`` needs an existing
        ``packageId``; dtlpy's ``project.models.create`` sends its app's DPK id). This helper makes
        the project's package ``emulator-model-adapter`` once (``POST /packages``, as
        ``project.packages.push`` does) and then the model (``POST /ml/models``), both through the
        emulator's route table in-process: the same handlers and rules as over HTTP, not counted
        in ``request_counts``. A ``status`` outside the documented enum is refused (400).

        Parameters
        ----------
        project : dl.Project or str
            The project (or its id).
        name : str
            Model name (unique in the project).
        dataset : dl.Dataset or str, optional
            The model's dataset (or id).
        labels : list of str, optional
            Model labels; default: the dataset's labels when a dataset is given.
        configuration : dict, optional
            Model configuration (copied).
        status : str
            Model status, one of dtlpy's ``ModelStatus``, e.g. ``"trained"`` or ``"created"``.
        **fields
            Other model JSON fields (``metadata``, ``packageId`` of an existing package,
            ``outputType``, ``artifacts``...).

        Returns
        -------
        dl.Model
            Fetched through ``dl.models.get`` (one ``GET /ml/models/{id}``).

        Example
        -------
        >>> model = platform.create_model(project, "m", dataset=dataset, labels=["cat"])  # doctest: +SKIP
        """
        project_id = project if isinstance(project, str) else project.id
        dataset_id = dataset if isinstance(dataset, str) or dataset is None else dataset.id
        if labels is None and dataset_id is not None:
            labels = self.store.dataset_labels(dataset_id)
        package_id = fields.pop("packageId", None) or self._model_package(project_id)
        body = {
            "name": name,
            "projectId": project_id,
            "datasetId": dataset_id,
            "labels": list(labels or []),
            "configuration": copy.deepcopy(dict(configuration or {})),
            "status": status,
            "packageId": package_id,
        }
        body.update(copy.deepcopy(fields))
        model = self.call("POST", "/ml/models", body)
        return dl.models.get(model_id=model["id"])

    def _model_package(self, project_id: str) -> str:
        """The project's ``emulator-model-adapter`` package id, created on first use."""
        with self.store.lock:
            for package in self.store.tables["packages"].values():
                if package["name"] == "emulator-model-adapter" and package["projectId"] == project_id:
                    return package["id"]
            package = self.call(
                "POST",
                "/packages",
                {
                    "name": "emulator-model-adapter",
                    "projectId": project_id,
                    "type": "ml",
                    "modules": [{"name": "model-adapter", "entryPoint": "adapter.py", "className": "Adapter"}],
                },
            )
            return package["id"]

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """Serve one REST request in-process through the route table (same handlers and rules as
        over HTTP; not counted, no fault injection) and return its JSON answer.

        Raises
        ------
        emulator.store.ApiError
            The error answer (status and message) the platform would send.

        Example
        -------
        >>> platform.call("GET", f"/projects/{project.id}")["name"]  # doctest: +SKIP
        'p'
        """
        route, params, _ = self._router.resolve(method.upper(), path)
        if route is None:
            raise ApiError(404, f"no route for {method.upper()} {path}")
        return route.handler(self.store, Request(params, {}, body)).body

    def create_dataset(self, project: dl.Project, name: str, labels: Iterable[str] = ()) -> dl.Dataset:
        """``project.datasets.create(name, labels=...)`` through dtlpy, with label names as strings.

        Example
        -------
        >>> dataset = platform.create_dataset(project, "d", labels=["cat", "dog"])  # doctest: +SKIP
        """
        labels = list(labels)
        return project.datasets.create(dataset_name=name, labels=make_labels(labels) if labels else None)

    def create_pipeline(
        self,
        project: dl.Project | str,
        nodes: list[Mapping[str, Any]],
        name: str = "pipeline",
        variables: list[Mapping[str, Any]] | None = None,
    ) -> dict:
        """Create a pipeline JSON server-side (``GET /pipelines/{id}`` serves it); returns it."""
        project_id = project if isinstance(project, str) else project.id
        body = {
            "name": name,
            "projectId": project_id,
            "orgId": "emulator-org",
            "nodes": [copy.deepcopy(dict(n)) for n in nodes],
            "connections": [],
            "startNodes": [{"nodeId": nodes[0]["id"], "type": "root"}] if nodes else [],
            "variables": [copy.deepcopy(dict(v)) for v in variables or []],
            "status": "Installed",
            "settings": {},
        }
        return self.store.create_pipeline(body)

    def make_context(
        self,
        node_config: Mapping[str, Any] | None = None,
        execution_id: str | None = None,
        project: dl.Project | str | None = None,
        node_name: str = "node",
        pipeline_variables: list[Mapping[str, Any]] | None = None,
    ) -> dl.Context:
        """A real ``dl.Context`` of a pipeline execution whose node carries ``node_config``.

        The pipeline is created in the emulator; ``context.pipeline`` / ``context.node`` resolve
        through ``GET /pipelines/{id}`` like on the platform, and
        ``context.node.metadata["customNodeConfig"] == node_config`` (absent when ``None``).

        Example
        -------
        >>> context = platform.make_context({"modelName": "m"}, execution_id="exec-1")  # doctest: +SKIP
        >>> context.node.metadata["customNodeConfig"]                                  # doctest: +SKIP
        {'modelName': 'm'}
        """
        if project is None:
            projects = self.store.list_projects()
            if not projects:
                raise ValueError("make_context: project: no project exists; pass project=<dl.Project>")
            project_id = projects[-1]["id"]
        else:
            project_id = project if isinstance(project, str) else project.id
        node_id = f"node-{self.store.ids.new()[-8:]}"
        metadata: dict[str, Any] = {"position": {"x": 0, "y": 0, "z": 0}}
        if node_config is not None:
            metadata["customNodeConfig"] = copy.deepcopy(dict(node_config))
        node = {
            "id": node_id,
            "name": node_name,
            "type": "custom",
            "namespace": {"functionName": node_name, "projectName": "", "serviceName": node_name},
            "projectId": project_id,
            "inputs": [],
            "outputs": [],
            "metadata": metadata,
            "config": {},
        }
        pipeline = self.create_pipeline(project_id, [node], name=f"pipeline-{node_id}", variables=pipeline_variables)
        execution_id = execution_id or self.store.ids.new()
        self.store.record_execution(execution_id, project_id, pipeline, node)
        execution = {
            "id": execution_id,
            "pipeline": {"id": pipeline["id"], "nodeId": node_id, "executionId": f"pexec-{execution_id}"},
        }
        project_entity = project if isinstance(project, dl.Project) else None
        return dl.Context(execution_dict=execution, project=project_entity)

    def add_items(self, dataset: dl.Dataset | str, entries: Iterable[Mapping[str, Any]]) -> list[str]:
        """Create many items server-side without HTTP (fast fixtures and benchmarks).

        Each entry: ``{"name": "a.jpg", "dir": "/", "metadata": {...}, "data": b"..."}``.
        Returns the new item ids in order. Not counted in ``request_counts``.
        """
        dataset_id = dataset if isinstance(dataset, str) else dataset.id
        return self.store.bulk_create_items(dataset_id, entries)

    # ------------------------------------------------------------------ snapshots (no requests)
    def items_json(self, dataset_id: str) -> list[dict]:
        """Deep copies of a dataset's item JSONs in id order (not counted as requests)."""
        return self.store.items_of(dataset_id)

    def annotations_json(self, dataset_id: str) -> list[dict]:
        """Deep copies of a dataset's annotation JSONs in id order (not counted as requests)."""
        return self.store.annotations_of(dataset_id)

    def get_json(self, resource: str, entity_id: str) -> dict:
        """Deep copy of one entity JSON; ``resource`` in projects, datasets, recipes, ontologies,
        items, annotations, models, pipelines, metrics. Raises ``KeyError`` when unknown."""
        if resource not in self.store.tables:
            raise KeyError(f"unknown resource {resource!r}; one of {sorted(self.store.tables)}")
        try:
            if resource == "datasets":
                return self.store.get_dataset(entity_id)
            return self.store.get(resource, entity_id)
        except ApiError as error:
            raise KeyError(error.message) from None

    # ------------------------------------------------------------------ pipelines' clock (no requests)
    def clock_now(self) -> datetime.datetime:
        """The platform clock cron triggers follow (UTC); it moves only with :meth:`advance_clock`."""
        return self.store.pipeline_runtime.clock.now()

    def advance_clock(
        self, delta: datetime.timedelta | None = None, *, days: float = 0, hours: float = 0, minutes: float = 0
    ) -> list[str]:
        """Move the platform clock forward; each cron trigger of an installed pipeline fires once
        for every minute passed that its ``spec.cron`` matches. Returns the started cycle ids.

        Example
        -------
        >>> cycles = platform.advance_clock(days=7)   # a weekly cron start node fires once  # doctest: +SKIP
        """
        delta = (delta or datetime.timedelta(0)) + datetime.timedelta(days=days, hours=hours, minutes=minutes)
        return self.store.pipeline_runtime.advance_clock(delta)

    def run_cron(self, pipeline: dl.Pipeline | str | None = None) -> list[str]:
        """Fire the cron triggers of one installed pipeline (or all) now, whatever their schedule;
        the clock does not move. Returns the started cycle ids."""
        pipeline_id = pipeline if isinstance(pipeline, str) or pipeline is None else pipeline.id
        return self.store.pipeline_runtime.run_cron(pipeline_id)

    def wait_pipelines_idle(self, timeout: float = 120.0) -> bool:
        """Block until no pipeline event is pending and no execution is queued or running (items
        waiting in task nodes do not count); ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        runtime = self.store.pipeline_runtime
        while time.monotonic() < deadline:
            if not runtime.wait_idle(max(0.0, deadline - time.monotonic())):
                return False
            if not self.store.engine.wait_idle(max(0.0, deadline - time.monotonic())):
                return False
            if runtime.idle():
                return True
        return False

    def metrics_json(self, model_id: str) -> list[dict]:
        """Published metric samples of a model, in publish order (not counted as requests)."""
        with self.store.lock:
            return [
                copy.deepcopy(m)
                for i in self.store.metric_ids
                if (m := self.store.tables["metrics"][i]).get("modelId") == model_id
            ]
