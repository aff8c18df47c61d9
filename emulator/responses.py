"""The endpoint handlers of the emulator: read a request (path id, query flags, JSON or
multipart body), call the :class:`~emulator.store.Store`, render the platform's answer.

Endpoints that share one shape (create, read, write, delete or query one resource) are served
by the generic handlers :func:`create`, :func:`read`, :func:`write`, :func:`delete` and
:func:`query`, parameterised by the resource's store method; the others are written out.
``emulator/routes.py`` maps each endpoint to its handler.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from emulator.store import ApiError, Store


@dataclass
class Answer:
    """What a handler returns: status, a JSON-able body or raw bytes, extra headers, write flag."""

    status: int = 200
    body: Any = None
    raw: bytes | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    wrote: bool = False


@dataclass(frozen=True)
class Request:
    """A routed request: path parameters, parsed query string and decoded body.

    The body is ``None`` (empty), a decoded JSON value, or ``{"__form__": {name: (filename,
    bytes)}}`` for ``multipart/form-data``.

    Example
    -------
    >>> Request({"id": "x"}, {"system": ["true"]}, None).flag("system")
    True
    """

    params: dict[str, str]
    query: dict[str, list[str]]
    body: Any

    @property
    def id(self) -> str:
        return self.params["id"]

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The last value of query argument ``name``."""
        return self.query.get(name, [default])[-1]

    def flag(self, name: str) -> bool:
        """A ``?name=true`` query flag (``false`` when absent)."""
        return str(self.arg(name, "false")).lower() == "true"

    def object(self) -> dict:
        """The body as a JSON object (``{}`` when empty); 400 for anything else."""
        if self.body is None:
            return {}
        if not isinstance(self.body, dict) or "__form__" in self.body:
            raise ApiError(400, "request body must be a JSON object")
        return self.body


Handler = Callable[[Store, Request], Answer]
#: A store method taken from the class (``Store.get_dataset``), called with the store first.
Action = Callable[..., Any]


def _page(result: dict | bytes, wrote: bool = False) -> Answer:
    """An answer from a store query result: pre-encoded JSON bytes or a JSON-able dict."""
    if isinstance(result, bytes):
        return Answer(raw=result, wrote=wrote)
    return Answer(body=result, wrote=wrote)


# ---------------------------------------------------------------- generic handlers
def create(action: Action) -> Handler:
    """``POST /<resource>``: a JSON object body makes a new entity, answered."""

    def handler(store: Store, request: Request) -> Answer:
        return Answer(body=action(store, request.object()), wrote=True)

    return handler


def read(action: Action) -> Handler:
    """``GET /<resource>/{id}[/<part>]``: the entity (or its part) by id."""

    def handler(store: Store, request: Request) -> Answer:
        return Answer(body=action(store, request.id))

    return handler


def write(action: Action, system: bool = False) -> Handler:
    """``PATCH`` / ``PUT`` / ``POST /<resource>/{id}[/<verb>]`` with a JSON object body; with
    ``system`` the action also gets the ``?system=true`` flag (may ``metadata.system`` change)."""

    def handler(store: Store, request: Request) -> Answer:
        flags = (request.flag("system"),) if system else ()
        return Answer(body=action(store, request.id, request.object(), *flags), wrote=True)

    return handler


def delete(action: Action) -> Handler:
    """``DELETE /<resource>/{id}``: answers ``true``."""

    def handler(store: Store, request: Request) -> Answer:
        action(store, request.id)
        return Answer(body=True, wrote=True)

    return handler


def query(action: Action) -> Handler:
    """``POST /<resource>/query``: a DQL page of the resource."""

    def handler(store: Store, request: Request) -> Answer:
        return _page(action(store, request.object(), encoded=True))

    return handler


# ---------------------------------------------------------------- endpoints of their own shape
def list_projects(store: Store, request: Request) -> Answer:
    return Answer(body=store.list_projects())


def project_by_name(store: Store, request: Request) -> Answer:
    return Answer(body=store.projects_by_name(unquote(request.id)))


def list_datasets(store: Store, request: Request) -> Answer:
    project = request.arg("projects", request.arg("projectId"))
    return Answer(body=store.list_datasets(project_id=project, name=request.arg("name")))


def query_dataset(store: Store, request: Request) -> Answer:
    """``POST /datasets/{id}/query``: a page, or a bulk update / delete (a write)."""
    body = request.object()
    wrote = "update" in body or body.get("delete") is True
    return _page(store.query_dataset(request.id, body, encoded=True), wrote=wrote)


def list_dataset_items(store: Store, request: Request) -> Answer:
    return Answer(body=store.query_dataset(request.id, {"filter": {}, "pageSize": 1000}))


def upload_item(store: Store, request: Request) -> Answer:
    """``POST /datasets/{id}/items?mode=skip|overwrite``: multipart ``file``, ``path``,
    optional ``metadata`` (JSON) and ``description``; the ``x-item-op`` header says what happened."""
    body = request.body
    if isinstance(body, dict) and "__form__" not in body and body.get("type") == "dir":
        # dtlpy/repositories/items.py make_dir: form-urlencoded {"type": "dir", "path": directory}
        item, op = store.upload_item(request.id, str(body.get("path") or ""), b"", mode="skip", item_type="dir")
        return Answer(body=item, headers={"x-item-op": op}, wrote=op != "skip")
    if not isinstance(body, dict) or "__form__" not in body:
        raise ApiError(400, "item upload must be multipart/form-data with 'file' and 'path' fields")
    form = body["__form__"]
    if "file" not in form:
        raise ApiError(400, "item upload is missing the 'file' part")
    metadata = None
    if "metadata" in form:
        try:
            metadata = json.loads(form["metadata"][1].decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise ApiError(400, "upload 'metadata' field is not valid JSON") from None
    path = form.get("path", (None, b""))[1].decode("utf-8")
    if not path:
        path = "/" + (form["file"][0] or "file")
    description = form["description"][1].decode("utf-8") if "description" in form else None
    item, op = store.upload_item(
        request.id, path, form["file"][1], metadata=metadata, mode=request.arg("mode", "skip"), description=description
    )
    return Answer(body=item, headers={"x-item-op": op}, wrote=op != "skip")


def item_stream(store: Store, request: Request) -> Answer:
    item = store.get_item(request.id)
    data = store.item_bytes(request.id)
    mimetype = item.get("metadata", {}).get("system", {}).get("mimetype", "application/octet-stream")
    return Answer(raw=data, content_type=mimetype)


def create_annotations(store: Store, request: Request) -> Answer:
    if not isinstance(request.body, (list, dict)):
        raise ApiError(400, "annotations upload body must be a JSON list of annotations")
    return Answer(body=store.create_annotations(request.id, request.body), wrote=True)


def publish_metrics(store: Store, request: Request) -> Answer:
    if not isinstance(request.body, (list, dict)):
        raise ApiError(400, "metrics publish body must be a JSON list of samples")
    return Answer(body=store.publish_metrics(request.body), wrote=True)


def command(action: Action) -> Handler:
    """``POST /<resource>/{id}/<verb>`` answered with a command (a write): dtlpy polls
    ``GET /commands/{id}`` and reads the result from the command's ``spec``."""

    def handler(store: Store, request: Request) -> Answer:
        return Answer(body=action(store, request.id, request.object()), wrote=True)

    return handler


def create_command(action: Action) -> Handler:
    """``POST /<resource>`` answered with a command (a write), e.g. ``POST /annotationtasks``."""

    def handler(store: Store, request: Request) -> Answer:
        return Answer(body=action(store, request.object()), wrote=True)

    return handler


def create_many(action: Action) -> Handler:
    """``POST /<resource>`` with a JSON list (or one object) of new entities, answered as a list."""

    def handler(store: Store, request: Request) -> Answer:
        if not isinstance(request.body, (list, dict)) or (
            isinstance(request.body, dict) and "__form__" in request.body
        ):
            raise ApiError(400, "body must be a JSON list of objects")
        return Answer(body=action(store, request.body), wrote=True)

    return handler


def dpk_by_name(store: Store, request: Request) -> Answer:
    return Answer(body=store.dpk_by_name(unquote(request.id), request.arg("version")))


def not_implemented(store: Store, request: Request) -> Answer:
    """A documented Dataloop route the emulator does not serve: 501 naming it (never a guess).
    The server adds the method and path to the message."""
    raise ApiError(501, "not implemented by the emulator")


def me(store: Store, request: Request) -> Answer:
    return Answer(body={"id": "emulator-user", "email": "emulator@localhost", "username": "emulator"})
