"""HTTP front of the local platform: a stdlib ``ThreadingHTTPServer`` bound to 127.0.0.1 that
speaks the part of the Dataloop REST API (under ``/api/v1``) that dtlpy 1.126.5 sends for the
app's nodes, tests and demo.

Each request is routed by method and path to a handler over :class:`emulator.store.Store`,
counted as ``"METHOD /route/{id}/template"`` (see :class:`RequestLog`) and may be failed or
delayed on purpose by fault-injection rules (:meth:`RequestLog.fail_next`). Errors are JSON
``{"message": ..., "status": ...}`` bodies with the platform's status codes (400 bad body or
DQL, 404 unknown id or route, 409 name conflict), which dtlpy turns into its own
``BadRequest`` / ``NotFound`` / ... exceptions.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from emulator.store import ApiError, Store

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
ID = r"(?P<id>[^/?#]+)"


@dataclass
class Answer:
    """What a handler returns: status, a JSON-able body or raw bytes, extra headers, write flag."""

    status: int = 200
    body: Any = None
    raw: bytes | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    wrote: bool = False


@dataclass
class Route:
    method: str
    template: str
    regex: re.Pattern[str]
    handler: Callable[..., Answer]


@dataclass
class FailureRule:
    method: str
    path_regex: re.Pattern[str]
    status: int | None
    times: int
    delay_s: float
    message: str


@dataclass(frozen=True)
class LoggedRequest:
    """One served request: method, templated route, status, whether it changed server state."""

    method: str
    route: str
    status: int
    wrote: bool
    path: str


class RequestLog:
    """Counts of served requests and the fault-injection rules, shared by all handler threads.

    Example
    -------
    >>> log = RequestLog()
    >>> log.record(LoggedRequest("GET", "/items/{id}", 200, False, "/items/x"))
    >>> log.counts()["GET /items/{id}"]
    1
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[LoggedRequest] = []
        self._rules: list[FailureRule] = []

    def record(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._entries.append(entry)

    def counts(self) -> Counter:
        with self._lock:
            return Counter(f"{e.method} {e.route}" for e in self._entries)

    def entries(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._entries)

    def write_count(self) -> int:
        with self._lock:
            return sum(1 for e in self._entries if e.wrote)

    def reset(self) -> None:
        with self._lock:
            self._entries.clear()

    def fail_next(
        self, method: str, path_regex: str, status: int | None = 503, times: int = 1, delay_s: float = 0
    ) -> None:
        if times < 1:
            raise ValueError(f"fail_next times: {times!r} must be >= 1; example: times=1")
        if delay_s < 0:
            raise ValueError(f"fail_next delay_s: {delay_s!r} must be >= 0; example: delay_s=0.5")
        if status is not None and not 100 <= int(status) <= 599:
            raise ValueError(f"fail_next status: {status!r} is not an HTTP status; example: status=503")
        rule = FailureRule(
            method=method.upper(),
            path_regex=re.compile(path_regex),
            status=None if status is None else int(status),
            times=int(times),
            delay_s=float(delay_s),
            message=f"injected failure for {method.upper()} {path_regex}",
        )
        with self._lock:
            self._rules.append(rule)

    def clear_failures(self) -> None:
        with self._lock:
            self._rules.clear()

    def take_failure(self, method: str, path: str) -> FailureRule | None:
        """The first rule matching this request (its remaining count decremented), else None."""
        full = API_PREFIX + path
        with self._lock:
            for rule in self._rules:
                if rule.method in (method, "*") and (rule.path_regex.search(path) or rule.path_regex.search(full)):
                    rule.times -= 1
                    if rule.times <= 0:
                        self._rules.remove(rule)
                    return rule
        return None

    def pending_failures(self) -> int:
        with self._lock:
            return sum(rule.times for rule in self._rules)


def _flag(query: dict[str, list[str]], name: str) -> bool:
    return query.get(name, ["false"])[-1].lower() == "true"


class Api:
    """The routes: one method per endpoint, each returning an :class:`Answer`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.routes: list[Route] = []
        add = self._add
        add("POST", "/projects", self.create_project)
        add("GET", "/projects", self.list_projects)
        add("GET", "/projects/{id}/name", self.project_by_name, regex=r"/projects/(?P<id>.+)/name")
        add("GET", "/projects/{id}", self.get_project)
        add("DELETE", "/projects/{id}", self.delete_project)
        add("POST", "/datasets", self.create_dataset)
        add("GET", "/datasets", self.list_datasets)
        add("POST", "/datasets/query", self.query_datasets)
        add("GET", "/datasets/{id}", self.get_dataset)
        add("PATCH", "/datasets/{id}", self.patch_dataset)
        add("DELETE", "/datasets/{id}", self.delete_dataset)
        add("POST", "/datasets/{id}/query", self.query_dataset)
        add("POST", "/datasets/{id}/items", self.upload_item)
        add("GET", "/datasets/{id}/items", self.list_dataset_items)
        add("POST", "/ontologies", self.create_ontology)
        add("GET", "/ontologies/{id}", lambda m, q, b: Answer(body=self.store.get("ontologies", m["id"])))
        add("PUT", "/ontologies/{id}", self.update_ontology)
        add("POST", "/recipes", self.create_recipe)
        add("GET", "/recipes/{id}", lambda m, q, b: Answer(body=self.store.get("recipes", m["id"])))
        add("PATCH", "/recipes/{id}", self.patch_recipe)
        add("GET", "/items/{id}", lambda m, q, b: Answer(body=self.store.get_item(m["id"])))
        add("PATCH", "/items/{id}", self.patch_item)
        add("DELETE", "/items/{id}", self.delete_item)
        add("GET", "/items/{id}/stream", self.item_stream)
        add("POST", "/items/{id}/annotations", self.create_annotations)
        add("GET", "/items/{id}/annotations", self.list_item_annotations)
        add("GET", "/annotations/{id}", lambda m, q, b: Answer(body=self.store.get("annotations", m["id"])))
        add("PUT", "/annotations/{id}", self.update_annotation)
        add("DELETE", "/annotations/{id}", self.delete_annotation)
        add("POST", "/ml/models", self.create_model)
        add("POST", "/ml/models/query", self.query_models)
        add("GET", "/ml/models/{id}", lambda m, q, b: Answer(body=self.store.get_model(m["id"])))
        add("PATCH", "/ml/models/{id}", self.patch_model)
        add("DELETE", "/ml/models/{id}", self.delete_model)
        add("POST", "/ml/models/{id}/clone", self.clone_model)
        add("POST", "/ml/metrics/publish", self.publish_metrics)
        add("POST", "/ml/metrics/query", self.query_metrics)
        add("GET", "/pipelines/{id}", lambda m, q, b: Answer(body=self.store.get("pipelines", m["id"])))
        add("GET", "/users/me", self.me)

    def _add(self, method: str, template: str, handler: Callable[..., Answer], regex: str | None = None) -> None:
        if regex is None:
            regex = re.escape(template).replace(re.escape("{id}"), ID)
        self.routes.append(Route(method, template, re.compile(regex + r"\Z"), handler))

    def resolve(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """The route for ``method`` ``path`` and its parameters; the flag says the path exists."""
        path_known = False
        for route in self.routes:
            found = route.regex.match(path)
            if found:
                path_known = True
                if route.method == method:
                    return route, found.groupdict(), True
        return None, {}, path_known

    # ---------------------------------------------------------------- projects
    def create_project(self, m: dict, q: dict, body: Any) -> Answer:
        return Answer(body=self.store.create_project(_object(body)), wrote=True)

    def list_projects(self, m: dict, q: dict, body: Any) -> Answer:
        return Answer(body=self.store.list_projects())

    def project_by_name(self, m: dict, q: dict, body: Any) -> Answer:
        found = self.store.projects_by_name(unquote(m["id"]))
        if not found:
            raise ApiError(404, f"project not found: name {unquote(m['id'])!r}")
        return Answer(body=found)

    def get_project(self, m: dict, q: dict, body: Any) -> Answer:
        return Answer(body=self.store.get("projects", m["id"]))

    def delete_project(self, m: dict, q: dict, body: Any) -> Answer:
        self.store.delete_project(m["id"])
        return Answer(body=True, wrote=True)

    # ---------------------------------------------------------------- datasets
    def create_dataset(self, m: dict, q: dict, body: Any) -> Answer:
        return Answer(body=self.store.create_dataset(_object(body)), wrote=True)

    def list_datasets(self, m: dict, q: dict, body: Any) -> Answer:
        project = q.get("projects", q.get("projectId", [None]))[-1]
        name = q.get("name", [None])[-1]
        return Answer(body=self.store.list_datasets(project_id=project, name=name))

    def query_datasets(self, m: dict, q: dict, body: Any) -> Answer:
        body = _object(body)
        context = body.get("context") or {}
        projects = context.get("projects") if isinstance(context, dict) else None
        self._ensure_binaries_dataset(body, projects)
        docs = [
            d
            for d in self.store.list_datasets()
            if not projects or any(project_id in d["projects"] for project_id in projects)
        ]
        return _answer(self.store.query_documents(docs, body, encoded=True))

    def _ensure_binaries_dataset(self, body: dict, projects: Any) -> None:
        """dtlpy finds a project's model artifacts in its hidden ``Binaries`` dataset, looked up by a
        system-space datasets query on the name; the platform makes it with the project, the
        emulator on that first lookup (so ordinary dataset listings of other tests are unchanged)."""
        if not body.get("systemSpace") or not isinstance(projects, list) or len(projects) != 1:
            return
        if '"Binaries"' not in json.dumps(body.get("filter") or {}):
            return
        if not self.store.list_datasets(project_id=projects[0], name="Binaries"):
            try:
                self.store.create_dataset({"name": "Binaries", "projects": [projects[0]]})
            except ApiError as error:
                if error.status != 409:  # 409: created meanwhile by a concurrent lookup
                    raise

    def get_dataset(self, m: dict, q: dict, body: Any) -> Answer:
        return Answer(body=self.store.get_dataset(m["id"]))

    def patch_dataset(self, m: dict, q: dict, body: Any) -> Answer:
        return Answer(body=self.store.patch_dataset(m["id"], _object(body), _flag(q, "system")), wrote=True)

    def delete_dataset(self, m: dict, q: dict, body: Any) -> Answer:
        self.store.delete_dataset(m["id"])
        return Answer(body=True, wrote=True)

    def query_dataset(self, m: dict, q: dict, body: Any) -> Answer:
        body = _object(body)
        wrote = "update" in body or body.get("delete") is True
        return _answer(self.store.query_dataset(m["id"], body, encoded=True), wrote=wrote)

    def list_dataset_items(self, m: dict, q: dict, body: Any) -> Answer:
        return Answer(body=self.store.query_dataset(m["id"], {"filter": {}, "pageSize": 1000}))

    def upload_item(self, m: dict, q: dict, body: Any) -> Answer:
        if not isinstance(body, dict) or "__form__" not in body:
            raise ApiError(400, "item upload must be multipart/form-data with 'file' and 'path' fields")
        form = body["__form__"]
        if "file" not in form:
            raise ApiError(400, "item upload is missing the 'file' part")
        metadata = None
        if "metadata" in form:
            try:
                metadata = json.loads(form["metadata"][1].decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                raise ApiError(400, "upload 'metadata' field is not valid JSON") from None
        path = form.get("path", (None, b""))[1].decode("utf-8")
        if not path:
            path = "/" + (form["file"][0] or "file")
        description = form["description"][1].decode("utf-8") if "description" in form else None
        item, op = self.store.upload_item(
            m["id"],
            path,
            form["file"][1],
            metadata=metadata,
            mode=q.get("mode", ["skip"])[-1],
            description=description,
        )
        return Answer(body=item, headers={"x-item-op": op}, wrote=op != "skip")

    # ---------------------------------------------------------------- recipes / ontologies
    def create_ontology(self, m: dict, q: dict, body: Any) -> Answer:
        return Answer(body=self.store.create_ontology(_object(body)), wrote=True)

    def update_ontology(self, m: dict, q: dict, body: Any) -> Answer:
        return Answer(body=self.store.update_ontology(m["id"], _object(body)), wrote=True)

    def create_recipe(self, m: dict, q: dict, body: Any) -> Answer:
        return Answer(body=self.store.create_recipe(_object(body)), wrote=True)

    def patch_recipe(self, m: dict, q: dict, body: Any) -> Answer:
        return Answer(body=self.store.patch_recipe(m["id"], _object(body)), wrote=True)

    # ---------------------------------------------------------------- items
    def patch_item(self, m: dict, q: dict, body: Any) -> Answer:
        return Answer(body=self.store.patch_item(m["id"], _object(body), _flag(q, "system")), wrote=True)

    def delete_item(self, m: dict, q: dict, body: Any) -> Answer:
        self.store.delete_item(m["id"])
        return Answer(body=True, wrote=True)

    def item_stream(self, m: dict, q: dict, body: Any) -> Answer:
        item = self.store.get_item(m["id"])
        data = self.store.item_bytes(m["id"])
        mimetype = item.get("metadata", {}).get("system", {}).get("mimetype", "application/octet-stream")
        return Answer(raw=data, content_type=mimetype)

    def create_annotations(self, m: dict, q: dict, body: Any) -> Answer:
        if not isinstance(body, (list, dict)):
            raise ApiError(400, "annotations upload body must be a JSON list of annotations")
        return Answer(body=self.store.create_annotations(m["id"], body), wrote=True)

    def list_item_annotations(self, m: dict, q: dict, body: Any) -> Answer:
        return Answer(body=self.store.list_item_annotations(m["id"]))

    def update_annotation(self, m: dict, q: dict, body: Any) -> Answer:
        return Answer(body=self.store.update_annotation(m["id"], _object(body), _flag(q, "system")), wrote=True)

    def delete_annotation(self, m: dict, q: dict, body: Any) -> Answer:
        self.store.delete_annotation(m["id"])
        return Answer(body=True, wrote=True)

    # ---------------------------------------------------------------- models & metrics
    def create_model(self, m: dict, q: dict, body: Any) -> Answer:
        return Answer(body=self.store.create_model(_object(body)), wrote=True)

    def query_models(self, m: dict, q: dict, body: Any) -> Answer:
        return _answer(self.store.query_models(_object(body), encoded=True))

    def patch_model(self, m: dict, q: dict, body: Any) -> Answer:
        return Answer(body=self.store.patch_model(m["id"], _object(body), _flag(q, "system")), wrote=True)

    def delete_model(self, m: dict, q: dict, body: Any) -> Answer:
        self.store.delete_model(m["id"])
        return Answer(body=True, wrote=True)

    def clone_model(self, m: dict, q: dict, body: Any) -> Answer:
        return Answer(body=self.store.clone_model(m["id"], _object(body)), wrote=True)

    def publish_metrics(self, m: dict, q: dict, body: Any) -> Answer:
        if not isinstance(body, (list, dict)):
            raise ApiError(400, "metrics publish body must be a JSON list of samples")
        return Answer(body=self.store.publish_metrics(body), wrote=True)

    def query_metrics(self, m: dict, q: dict, body: Any) -> Answer:
        return _answer(self.store.query_metrics(_object(body), encoded=True))

    def me(self, m: dict, q: dict, body: Any) -> Answer:
        return Answer(body={"id": "emulator-user", "email": "emulator@localhost", "username": "emulator"})


def _answer(result: dict | bytes, wrote: bool = False) -> Answer:
    """An answer from a store result: pre-encoded JSON bytes or a JSON-able dict."""
    if isinstance(result, bytes):
        return Answer(raw=result, wrote=wrote)
    return Answer(body=result, wrote=wrote)


def _object(body: Any) -> dict:
    if body is None:
        return {}
    if not isinstance(body, dict) or "__form__" in body:
        raise ApiError(400, "request body must be a JSON object")
    return body


def parse_multipart(content_type: str, data: bytes) -> dict[str, tuple[str | None, bytes]]:
    """Fields of a ``multipart/form-data`` body: ``{name: (filename or None, bytes)}``.

    Example
    -------
    >>> body = b'--b\\r\\nContent-Disposition: form-data; name="path"\\r\\n\\r\\n/a.txt\\r\\n--b--\\r\\n'
    >>> parse_multipart('multipart/form-data; boundary=b', body)
    {'path': (None, b'/a.txt')}
    """
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\nMIME-Version: 1.0\r\n\r\n" + data
    )
    if not message.is_multipart():
        raise ApiError(400, "malformed multipart/form-data body")
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True)
        fields[str(name)] = (part.get_filename(), payload if payload is not None else b"")
    return fields


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY: headers and body go out as separate writes; with Nagle on, each
    # keep-alive response waits ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True
    server_version = "DataloopEmulator/1.0"
    api: Api
    log: RequestLog

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("%s - %s", self.address_string(), format % args)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size_line = self.rfile.readline().strip()
                size = int(size_line.split(b";")[0], 16) if size_line else 0
                if size == 0:
                    # trailers until an empty line
                    while self.rfile.readline().strip():
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        method = self.command
        raw = self._read_body()
        split = urlsplit(self.path)
        path = split.path
        if path.startswith(API_PREFIX):
            path = path[len(API_PREFIX) :]
        path = path.rstrip("/") or "/"
        query = parse_qs(split.query)
        route, params, path_known = self.api.resolve(method, path)
        template = route.template if route else _template_of(path)
        rule = self.log.take_failure(method, path + (f"?{split.query}" if split.query else ""))
        if rule is not None:
            if rule.delay_s:
                time.sleep(rule.delay_s)
            if rule.status is not None:
                # Count before answering: a client that has its answer must see the request counted.
                self.log.record(LoggedRequest(method, template, rule.status, False, path))
                self._send(Answer(status=rule.status, body={"message": rule.message, "status": rule.status}))
                return
        try:
            if route is None:
                status = 405 if path_known else 404
                raise ApiError(status, f"no route for {method} {path}")
            body = self._decode(raw)
            answer = route.handler(params, query, body)
        except ApiError as error:
            answer = Answer(status=error.status, body={"message": error.message, "status": error.status})
        except Exception as error:  # a bug in the emulator: answer 500 (not retried by dtlpy) and log it
            logger.exception("emulator error on %s %s", method, path)
            answer = Answer(status=500, body={"message": f"emulator error: {error!r}", "status": 500})
        self.log.record(LoggedRequest(method, template, answer.status, answer.wrote, path))
        self._send(answer)

    def _decode(self, raw: bytes) -> Any:
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("multipart/form-data"):
            return {"__form__": parse_multipart(content_type, raw)}
        if not raw:
            return None
        if content_type.startswith("application/x-www-form-urlencoded"):
            return {k: v[-1] for k, v in parse_qs(raw.decode("utf-8")).items()}
        try:
            return json.loads(raw)
        except ValueError:
            raise ApiError(400, "request body is not valid JSON") from None

    def _send(self, answer: Answer) -> None:
        if answer.raw is not None:
            payload = answer.raw
        else:
            payload = json.dumps(answer.body).encode("utf-8")
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in answer.headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = _handle
    do_POST = _handle
    do_PUT = _handle
    do_PATCH = _handle
    do_DELETE = _handle


_ID_SEGMENT = re.compile(r"\A[0-9a-fA-F]{24}\Z")


def _template_of(path: str) -> str:
    """Route template of an unknown path: 24-hex segments become ``{id}``."""
    return "/".join("{id}" if _ID_SEGMENT.match(seg) else seg for seg in path.split("/"))


class EmulatorServer:
    """The threaded HTTP server on 127.0.0.1 (a free port) serving one :class:`Store`.

    Example
    -------
    >>> server = EmulatorServer(Store()).start()
    >>> server.base_url.startswith("http://127.0.0.1:")
    True
    >>> server.stop()
    """

    def __init__(self, store: Store, log: RequestLog | None = None) -> None:
        self.store = store
        self.log = log or RequestLog()
        handler = type("Handler", (_Handler,), {"api": Api(store), "log": self.log})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}{API_PREFIX}"
        self.store.base_url = self.base_url
        self._thread: threading.Thread | None = None

    def start(self) -> EmulatorServer:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="dataloop-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
