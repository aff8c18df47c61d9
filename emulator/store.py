"""In-memory state of the local platform: projects, datasets, recipes, ontologies, items (and
their bytes), annotations, models, metrics and pipelines, as the JSON documents the Dataloop
REST API returns.

One re-entrant lock guards everything, so the threaded HTTP server (``emulator/server.py``)
can serve many dtlpy clients at once without lost updates. Ids are 24-hex strings that sort in
creation order, which dtlpy's keyset paging (``{"id": {"$gt": last_id}}``) relies on. Each
dataset keeps its item and annotation ids in sorted lists, so a query page costs
``O(log n + page size)``: the keyset bound is found with :mod:`bisect` and the filter is
evaluated lazily; the full match list of a filter (for ``totalItemsCount``) is cached per
dataset until the next write to that dataset. Errors are :class:`ApiError` (HTTP status and
message), raised before anything is changed.
"""

from __future__ import annotations

import bisect
import datetime
import functools
import io
import itertools
import json
import logging
import mimetypes
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from emulator import dql

logger = logging.getLogger(__name__)

CREATOR = "emulator@localhost"
#: Annotation types dtlpy lists by default (``Filters(resource=ANNOTATION)``).
ITEM_DEFAULTS = {"hidden": False, "type": "file", "dir": "/"}
_MATCH_CACHE_SIZE = 64


class ApiError(Exception):
    """An HTTP error answer: ``status`` and a message naming what was wrong.

    Example
    -------
    >>> ApiError(404, "item 'x' not found").status
    404
    """

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def clone(value: Any) -> Any:
    """Copy of a JSON value (dicts, lists, scalars): several times faster than ``copy.deepcopy``.

    Example
    -------
    >>> a = {"x": [1, {"y": 2}]}
    >>> b = clone(a)
    >>> b == a and b["x"][1] is not a["x"][1]
    True
    """
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    if isinstance(value, tuple):
        return [clone(v) for v in value]
    return value


def guess_mimetype(name: str) -> str:
    """Mimetype of a file name (``application/octet-stream`` when unknown).

    Example
    -------
    >>> guess_mimetype("a.png")
    'image/png'
    """
    return _mimetype_of_extension(os.path.splitext(name)[1].lower())


@functools.lru_cache(maxsize=256)
def _mimetype_of_extension(extension: str) -> str:
    return mimetypes.guess_type("file" + extension)[0] or "application/octet-stream"


def now_iso() -> str:
    """Current UTC time as the platform writes it (``2024-01-01T00:00:00.000Z``)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _merge_metadata(doc: dict, metadata: Any, system: bool, resource: str) -> None:
    """Deep-merge a PATCH/PUT body's ``metadata`` into ``doc``. Like the platform,
    ``metadata.system`` changes only when the request says ``?system=true``."""
    if metadata is None:
        return
    if not isinstance(metadata, Mapping):
        raise ApiError(400, f"{resource} 'metadata' must be an object")
    metadata = dict(metadata)
    system_part = metadata.pop("system", None)
    if system and isinstance(system_part, Mapping):
        deep_merge(doc.setdefault("metadata", {}).setdefault("system", {}), system_part)
    deep_merge(doc.setdefault("metadata", {}), metadata)


def deep_merge(target: dict, patch: Mapping[str, Any], *, none_deletes: bool = True) -> None:
    """Merge ``patch`` into ``target`` in place: dicts recursively, anything else replaced.

    A ``None`` value removes the key (what dtlpy's diff sends for a removed field).

    Example
    -------
    >>> d = {"a": {"b": 1, "c": 2}}
    >>> deep_merge(d, {"a": {"b": 5, "c": None}, "x": [1]})
    >>> d
    {'a': {'b': 5}, 'x': [1]}
    """
    for key, value in patch.items():
        if value is None and none_deletes:
            target.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            deep_merge(target[key], value, none_deletes=none_deletes)
        else:
            target[key] = clone(value)


class IdFactory:
    """24-hex ids that sort in creation order (8 hex of start time + 16 hex of a counter).

    Example
    -------
    >>> ids = IdFactory()
    >>> a, b = ids.new(), ids.new()
    >>> len(a), a < b
    (24, True)
    """

    def __init__(self, prefix: str | None = None) -> None:
        # a fixed ``prefix`` (8 hex digits) makes ids reproducible run to run, e.g. for the demo
        if prefix is not None and (len(prefix) != 8 or any(c not in "0123456789abcdef" for c in prefix)):
            raise ValueError(f"id prefix: {prefix!r} is not 8 lowercase hex digits; example: '00000000'")
        self._prefix = prefix if prefix is not None else f"{int(time.time()) & 0xFFFFFFFF:08x}"
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def new(self) -> str:
        with self._lock:
            return f"{self._prefix}{next(self._counter):016x}"


class _DatasetIndex:
    """Sorted id lists of one dataset plus a small cache of filter match lists."""

    def __init__(self) -> None:
        self.item_ids: list[str] = []
        self.annotation_ids: list[str] = []
        self.by_filename: dict[str, str] = {}
        self.version = 0
        self.match_cache: OrderedDict[tuple, list[str]] = OrderedDict()

    def touch(self) -> None:
        self.version += 1
        self.match_cache.clear()


def _insert_sorted(ids: list[str], new_id: str) -> None:
    if not ids or ids[-1] < new_id:
        ids.append(new_id)
    else:
        bisect.insort(ids, new_id)


def _remove_sorted(ids: list[str], old_id: str) -> None:
    position = bisect.bisect_left(ids, old_id)
    if position < len(ids) and ids[position] == old_id:
        del ids[position]


def _start_position(ids: list[str], bounds: Mapping[str, str]) -> tuple[int, int]:
    """Index range of ``ids`` allowed by keyset ``bounds`` (``$gt``/``$gte``/``$lt``/``$lte``)."""
    start, stop = 0, len(ids)
    if "$gt" in bounds:
        start = max(start, bisect.bisect_right(ids, bounds["$gt"]))
    if "$gte" in bounds:
        start = max(start, bisect.bisect_left(ids, bounds["$gte"]))
    if "$lt" in bounds:
        stop = min(stop, bisect.bisect_left(ids, bounds["$lt"]))
    if "$lte" in bounds:
        stop = min(stop, bisect.bisect_right(ids, bounds["$lte"]))
    return start, max(start, stop)


class Store:
    """All entities of one local platform, behind one lock.

    The public methods take and return plain JSON-able dicts (deep copies: callers may keep or
    change them). ``base_url`` is used to build the ``url`` / ``stream`` links of entities.

    Example
    -------
    >>> store = Store("http://127.0.0.1:1/api/v1")
    >>> project = store.create_project({"name": "p"})
    >>> store.get("projects", project["id"])["name"]
    'p'
    """

    def __init__(self, base_url: str = "http://127.0.0.1/api/v1") -> None:
        self.base_url = base_url
        self.lock = threading.RLock()
        self.ids = IdFactory()
        self.tables: dict[str, dict[str, dict]] = {
            "projects": {},
            "datasets": {},
            "recipes": {},
            "ontologies": {},
            "items": {},
            "annotations": {},
            "models": {},
            "pipelines": {},
            "metrics": {},
        }
        self.blobs: dict[str, bytes] = {}
        self.indexes: dict[str, _DatasetIndex] = {}
        self.item_annotations: dict[str, list[str]] = {}
        self.model_ids: list[str] = []
        self.metric_ids: list[str] = []
        #: GET /ml/models/{id} answers with status "cloning" this many times after a clone.
        self.clone_polls = 0
        self._cloning: dict[str, int] = {}

    # ------------------------------------------------------------------ generic
    def get(self, table: str, entity_id: str) -> dict:
        """Deep copy of one entity; :class:`ApiError` 404 when unknown."""
        with self.lock:
            return clone(self._get(table, entity_id))

    def _get(self, table: str, entity_id: str) -> dict:
        entity = self.tables[table].get(entity_id)
        if entity is None:
            singular = table[:-1] if table.endswith("s") else table
            raise ApiError(404, f"{singular} not found: {entity_id!r}")
        return entity

    def _base(self, resource: str, entity_id: str) -> dict:
        stamp = now_iso()
        return {
            "id": entity_id,
            "url": f"{self.base_url}/{resource}/{entity_id}",
            "createdAt": stamp,
            "updatedAt": stamp,
            "creator": CREATOR,
            "updatedBy": CREATOR,
        }

    # ------------------------------------------------------------------ projects
    def create_project(self, body: Mapping[str, Any]) -> dict:
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise ApiError(400, "project name is required: send {'name': '<project name>'}")
        with self.lock:
            if any(p["name"] == name for p in self.tables["projects"].values()):
                raise ApiError(409, f"project named {name!r} already exists")
            project_id = self.ids.new()
            project = self._base("projects", project_id)
            project.update(
                {
                    "name": name,
                    "org": {"id": "emulator-org", "name": "emulator"},
                    "role": "owner",
                    "accessLevel": "owner",
                    "contributors": [],
                    "isBlocked": False,
                    "featureConstraints": [],
                    "account": {"id": "emulator-account"},
                }
            )
            self.tables["projects"][project_id] = project
            return clone(project)

    def projects_by_name(self, name: str) -> list[dict]:
        """Projects named ``name`` (a list, as ``GET /projects/{name}/name`` answers)."""
        with self.lock:
            return [clone(p) for p in self.tables["projects"].values() if p["name"] == name]

    def list_projects(self) -> list[dict]:
        with self.lock:
            return clone(list(self.tables["projects"].values()))

    def delete_project(self, project_id: str) -> None:
        with self.lock:
            self._get("projects", project_id)
            del self.tables["projects"][project_id]

    # ------------------------------------------------------------------ datasets
    def create_dataset(self, body: Mapping[str, Any]) -> dict:
        name = body.get("name")
        projects = body.get("projects")
        if not isinstance(name, str) or not name:
            raise ApiError(400, "dataset name is required")
        if not isinstance(projects, list) or not projects:
            raise ApiError(400, "dataset 'projects' must be a list with the project id")
        with self.lock:
            for project_id in projects:
                self._get("projects", project_id)
            for dataset in self.tables["datasets"].values():
                if dataset["name"] == name and dataset["projects"][0] == projects[0]:
                    raise ApiError(409, f"dataset named {name!r} already exists in the project")
            dataset_id = self.ids.new()
            dataset = self._base("datasets", dataset_id)
            dataset.update(
                {
                    "name": name,
                    "projects": list(projects),
                    "driver": body.get("driver", "emulator-driver"),
                    "items": f"{self.base_url}/datasets/{dataset_id}/items",
                    "itemsCount": 0,
                    "annotated": 0,
                    "annotationsCount": 0,
                    "readableType": "dataset",
                    "accessLevel": "owner",
                    "readonly": False,
                    "metadata": {"system": {"recipes": []}},
                    "directoryTree": {"dirs": [], "url": f"{self.base_url}/datasets/{dataset_id}/directoryTree"},
                    "export": {},
                    "expirationOptions": body.get("expirationOptions"),
                    "indexDriver": body.get("indexDriver", "v2"),
                }
            )
            self.tables["datasets"][dataset_id] = dataset
            self.indexes[dataset_id] = _DatasetIndex()
            if body.get("createDefaultRecipe", False):
                ontology = self.create_ontology({"roots": [], "projectIds": list(projects)})
                recipe = self.create_recipe(
                    {"title": f"{name} Default Recipe", "projectIds": list(projects), "ontologyIds": [ontology["id"]]}
                )
                dataset["metadata"]["system"]["recipes"] = [recipe["id"]]
            return self._dataset_view(dataset)

    def _dataset_view(self, dataset: dict) -> dict:
        view = clone(dataset)
        index = self.indexes.get(dataset["id"])
        if index is not None:
            view["itemsCount"] = len(index.item_ids)
            view["annotationsCount"] = len(index.annotation_ids)
        return view

    def get_dataset(self, dataset_id: str) -> dict:
        with self.lock:
            return self._dataset_view(self._get("datasets", dataset_id))

    def list_datasets(self, project_id: str | None = None, name: str | None = None) -> list[dict]:
        with self.lock:
            return [
                self._dataset_view(d)
                for d in self.tables["datasets"].values()
                if (project_id is None or project_id in d["projects"]) and (name is None or d["name"] == name)
            ]

    def patch_dataset(self, dataset_id: str, body: Mapping[str, Any], system: bool) -> dict:
        with self.lock:
            dataset = self._get("datasets", dataset_id)
            patch = clone(dict(body))
            for key in ("id", "url", "createdAt", "creator", "items", "itemsCount", "annotationsCount", "projects"):
                patch.pop(key, None)
            metadata = patch.pop("metadata", None)
            for key, value in patch.items():
                dataset[key] = value
            if isinstance(metadata, Mapping):
                system_part = metadata.get("system")
                rest = {k: v for k, v in metadata.items() if k != "system"}
                dataset.setdefault("metadata", {}).update(clone(rest))
                if system and isinstance(system_part, Mapping):
                    dataset["metadata"]["system"] = clone(dict(system_part))
            dataset["updatedAt"] = now_iso()
            return self._dataset_view(dataset)

    def delete_dataset(self, dataset_id: str) -> None:
        with self.lock:
            self._get("datasets", dataset_id)
            index = self.indexes.pop(dataset_id)
            for item_id in index.item_ids:
                self.tables["items"].pop(item_id, None)
                self.blobs.pop(item_id, None)
                self.item_annotations.pop(item_id, None)
            for annotation_id in index.annotation_ids:
                self.tables["annotations"].pop(annotation_id, None)
            del self.tables["datasets"][dataset_id]

    # ------------------------------------------------------------------ recipes / ontologies
    def create_ontology(self, body: Mapping[str, Any]) -> dict:
        roots = body.get("roots", [])
        if not isinstance(roots, list):
            raise ApiError(400, "ontology 'roots' must be a list of labels")
        with self.lock:
            ontology_id = self.ids.new()
            ontology = self._base("ontologies", ontology_id)
            ontology.update(
                {
                    "title": body.get("title", ontology_id),
                    "roots": clone(roots),
                    "attributes": clone(body.get("attributes", [])),
                    "metadata": {"system": {"projectIds": list(body.get("projectIds") or [])}, "attributes": []},
                }
            )
            self.tables["ontologies"][ontology_id] = ontology
            return clone(ontology)

    def update_ontology(self, ontology_id: str, body: Mapping[str, Any]) -> dict:
        with self.lock:
            ontology = self._get("ontologies", ontology_id)
            for key in ("roots", "title", "attributes", "metadata"):
                if key in body:
                    ontology[key] = clone(body[key])
            ontology["updatedAt"] = now_iso()
            return clone(ontology)

    def create_recipe(self, body: Mapping[str, Any]) -> dict:
        ontology_ids = body.get("ontologyIds") or []
        with self.lock:
            for ontology_id in ontology_ids:
                self._get("ontologies", ontology_id)
            recipe_id = self.ids.new()
            recipe = self._base("recipes", recipe_id)
            recipe.update(
                {
                    "title": body.get("title", "Default Recipe"),
                    "projectIds": list(body.get("projectIds") or []),
                    "ontologyIds": list(ontology_ids),
                    "uiSettings": clone(body.get("uiSettings", {})),
                    "metadata": {"system": {}},
                    "customActions": [],
                    "instructions": [],
                    "examples": [],
                }
            )
            self.tables["recipes"][recipe_id] = recipe
            return clone(recipe)

    def patch_recipe(self, recipe_id: str, body: Mapping[str, Any]) -> dict:
        with self.lock:
            recipe = self._get("recipes", recipe_id)
            for key, value in body.items():
                if key not in ("id", "url", "createdAt", "creator"):
                    recipe[key] = clone(value)
            recipe["updatedAt"] = now_iso()
            return clone(recipe)

    def dataset_labels(self, dataset_id: str) -> list[str]:
        """Label tags of a dataset's (first) recipe ontology, children as ``parent.child``."""
        with self.lock:
            dataset = self._get("datasets", dataset_id)
            tags: list[str] = []
            for recipe_id in dataset.get("metadata", {}).get("system", {}).get("recipes", []):
                recipe = self.tables["recipes"].get(recipe_id)
                for ontology_id in (recipe or {}).get("ontologyIds", []):
                    ontology = self.tables["ontologies"].get(ontology_id)
                    for root in (ontology or {}).get("roots", []):
                        _collect_tags(root, "", tags)
            return tags

    # ------------------------------------------------------------------ items
    def _index(self, dataset_id: str) -> _DatasetIndex:
        self._get("datasets", dataset_id)
        return self.indexes[dataset_id]

    def upload_item(
        self,
        dataset_id: str,
        remote_path: str,
        data: bytes,
        metadata: Mapping[str, Any] | None = None,
        mode: str = "skip",
        description: str | None = None,
        item_type: str = "file",
    ) -> tuple[dict, str]:
        """Create (or skip / overwrite) the item ``remote_path`` holding ``data``.

        Returns the item JSON and the operation (``"create"``, ``"skip"`` or ``"overwrite"``).
        """
        with self.lock:
            item, op = self._put_item(dataset_id, remote_path, data, metadata, mode, description, item_type)
            return clone(item), op

    def _put_item(
        self,
        dataset_id: str,
        remote_path: str,
        data: bytes,
        metadata: Mapping[str, Any] | None,
        mode: str,
        description: str | None,
        item_type: str = "file",
    ) -> tuple[dict, str]:
        if not remote_path or not isinstance(remote_path, str):
            raise ApiError(400, "upload needs a 'path' form field with the remote file path")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise ApiError(400, "upload 'metadata' must be a JSON object")
        if mode not in ("skip", "overwrite"):
            raise ApiError(400, f"upload mode {mode!r} is not 'skip' or 'overwrite'")
        filename = "/" + remote_path.lstrip("/")
        directory, name = os.path.split(filename)
        with self.lock:
            index = self._index(dataset_id)
            existing_id = index.by_filename.get(filename)
            if existing_id is not None and mode == "skip":
                return self.tables["items"][existing_id], "skip"
            system = {
                "originalname": name,
                "size": len(data),
                "encoding": "7bit",
                "mimetype": guess_mimetype(name),
                "refs": [],
                "isBinary": True,
            }
            system.update(_image_size(data, system["mimetype"]))
            item_metadata: dict[str, Any] = clone(dict(metadata)) if metadata else {}
            user_system = item_metadata.get("system")
            item_metadata["system"] = {**(user_system if isinstance(user_system, Mapping) else {}), **system}
            if existing_id is not None:
                item = self.tables["items"][existing_id]
                item["metadata"] = item_metadata
                item["updatedAt"] = now_iso()
                if description is not None:
                    item["description"] = description
                self.blobs[existing_id] = bytes(data)
                index.touch()
                return item, "overwrite"
            item_id = self.ids.new()
            item = self._base("items", item_id)
            item.update(
                {
                    "datasetId": dataset_id,
                    "dataset": f"{self.base_url}/datasets/{dataset_id}",
                    "filename": filename,
                    "name": name,
                    "dir": directory or "/",
                    "type": item_type,
                    "hidden": False,
                    "metadata": item_metadata,
                    "annotated": False,
                    "annotationsCount": 0,
                    "annotations": f"{self.base_url}/items/{item_id}/annotations",
                    "stream": f"{self.base_url}/items/{item_id}/stream",
                    "thumbnail": f"{self.base_url}/items/{item_id}/thumbnail",
                    "spec": None,
                }
            )
            if description is not None:
                item["description"] = description
            self.tables["items"][item_id] = item
            self.blobs[item_id] = bytes(data)
            _insert_sorted(index.item_ids, item_id)
            index.by_filename[filename] = item_id
            index.touch()
            return item, "create"

    def bulk_create_items(self, dataset_id: str, entries: Iterable[Mapping[str, Any]]) -> list[str]:
        """Create many items at once without HTTP (for benchmarks and fixtures).

        Each entry: ``{"name": "a.jpg", "dir": "/", "metadata": {...}, "data": b"..."}``
        (everything optional but ``name``). Returns the new ids in order.
        """
        created: list[str] = []
        with self.lock:
            index = self._index(dataset_id)
            for entry in entries:
                directory = entry.get("dir", "/") or "/"
                path = f"{directory.rstrip('/')}/{entry['name']}"
                item, _ = self._put_item(
                    dataset_id, path, entry.get("data", b""), entry.get("metadata"), "overwrite", None
                )
                created.append(item["id"])
            index.touch()
        return created

    def get_item(self, item_id: str) -> dict:
        return self.get("items", item_id)

    def item_bytes(self, item_id: str) -> bytes:
        with self.lock:
            self._get("items", item_id)
            return self.blobs.get(item_id, b"")

    def patch_item(self, item_id: str, body: Mapping[str, Any], system: bool) -> dict:
        if not isinstance(body, Mapping):
            raise ApiError(400, "item patch body must be a JSON object")
        with self.lock:
            item = self._get("items", item_id)
            patch = clone(dict(body))
            for key in ("id", "url", "datasetId", "dataset", "createdAt", "creator", "stream", "annotations"):
                patch.pop(key, None)
            _merge_metadata(item, patch.pop("metadata", None), system, "item")
            index = self.indexes[item["datasetId"]]
            if "filename" in patch or "name" in patch or "dir" in patch:
                self._move_item(item, index, patch)
            for key, value in patch.items():
                if key in ("filename", "name", "dir"):
                    continue
                if value is None:
                    item.pop(key, None)
                else:
                    item[key] = value
            item["updatedAt"] = now_iso()
            index.touch()
            return clone(item)

    @staticmethod
    def _move_item(item: dict, index: _DatasetIndex, patch: Mapping[str, Any]) -> None:
        if "filename" in patch and isinstance(patch["filename"], str):
            filename = "/" + patch["filename"].lstrip("/")
        else:
            directory = patch.get("dir", item["dir"]) or "/"
            name = patch.get("name", item["name"])
            filename = f"{directory.rstrip('/')}/{name}"
        if filename != item["filename"]:
            if filename in index.by_filename:
                raise ApiError(409, f"an item named {filename!r} already exists in the dataset")
            del index.by_filename[item["filename"]]
            index.by_filename[filename] = item["id"]
        directory, name = os.path.split(filename)
        item.update({"filename": filename, "dir": directory or "/", "name": name})

    def delete_item(self, item_id: str) -> None:
        with self.lock:
            item = self._get("items", item_id)
            index = self.indexes[item["datasetId"]]
            for annotation_id in self.item_annotations.pop(item_id, []):
                self.tables["annotations"].pop(annotation_id, None)
                _remove_sorted(index.annotation_ids, annotation_id)
            _remove_sorted(index.item_ids, item_id)
            index.by_filename.pop(item["filename"], None)
            del self.tables["items"][item_id]
            self.blobs.pop(item_id, None)
            index.touch()

    # ------------------------------------------------------------------ queries
    def query_dataset(self, dataset_id: str, body: Mapping[str, Any], encoded: bool = False) -> dict | bytes:
        """``POST /datasets/{id}/query``: page, bulk update or bulk delete items or annotations.

        With ``encoded`` a page comes back as its JSON bytes, encoded under the lock (no copy of
        the documents: fewer allocations and garbage-collector pauses on big datasets).
        """
        if not isinstance(body, Mapping):
            raise ApiError(400, "query body must be a JSON object")
        resource = body.get("resource", "items")
        if resource not in ("items", "annotations"):
            raise ApiError(400, f"query resource {resource!r} is not 'items' or 'annotations'")
        page, page_size = _paging(body)
        raw_filter = body.get("filter") or {}
        try:
            rest, bounds = dql.split_id_keyset(raw_filter)
            predicate = dql.compile_filter(rest)
            sort_keys, id_only = dql.sort_key_function(body.get("sort"))
            join = body.get("join")
            join_predicate = dql.compile_filter(join.get("filter")) if isinstance(join, Mapping) else None
        except dql.DQLError as error:
            raise ApiError(400, f"invalid DQL: {error}") from None
        if "update" in body and not isinstance(body["update"], Mapping):
            raise ApiError(400, "query 'update' must be an object, e.g. {'metadata': {'user': {...}}}")
        with self.lock:
            index = self._index(dataset_id)
            if resource == "items":
                ids, table = index.item_ids, self.tables["items"]
            else:
                ids, table = index.annotation_ids, self.tables["annotations"]
            if join_predicate is not None and resource == "items":
                joined = {
                    a["itemId"]
                    for a in (self.tables["annotations"][i] for i in index.annotation_ids)
                    if join_predicate(a)
                }
                base_predicate = predicate

                def predicate(doc: Mapping[str, Any]) -> bool:
                    return doc["id"] in joined and base_predicate(doc)

            if "update" in body or body.get("delete") is True:
                matched = [table[i] for i in self._all_matches(index, resource, ids, table, rest, bounds, predicate)]
                if "update" in body:
                    return self._bulk_update(index, resource, matched, body)
                return self._bulk_delete(index, resource, matched)
            descending = bool(sort_keys) and id_only and sort_keys[0][1]
            if sort_keys and not id_only:
                matched_ids = self._all_matches(index, resource, ids, table, rest, bounds, predicate, join)
                docs = dql.sort_documents([table[i] for i in matched_ids], sort_keys)
                return _page_answer(docs[page * page_size : (page + 1) * page_size + 1], len(docs), page_size, encoded)
            return self._lazy_page(
                index, resource, ids, table, rest, bounds, predicate, join, page, page_size, descending, encoded
            )

    def _cache_key(self, resource: str, rest: Any, bounds: Mapping, join: Any) -> tuple:
        return (resource, json.dumps(rest, sort_keys=True, default=str), json.dumps(join, sort_keys=True, default=str))

    def _all_matches(
        self,
        index: _DatasetIndex,
        resource: str,
        ids: list[str],
        table: dict,
        rest: Any,
        bounds: Mapping[str, str],
        predicate: Callable[[Mapping[str, Any]], bool],
        join: Any = None,
    ) -> list[str]:
        """Ids (sorted) matching the filter within the keyset bounds; cached per filter and write.

        A filter that requires ``id $in [...]`` (a bulk update of chosen items) tests only those
        ids' documents (binary search in the dataset's sorted ids), not the whole dataset.
        """
        restriction = dql.id_restriction(rest)
        if restriction is not None:
            found = []
            for item_id in sorted(restriction):
                position = bisect.bisect_left(ids, item_id)
                if position < len(ids) and ids[position] == item_id and predicate(table[item_id]):
                    found.append(item_id)
            if bounds:
                start, stop = _start_position(found, bounds)
                return found[start:stop]
            return found
        key = self._cache_key(resource, rest, bounds, join)
        cached = index.match_cache.get(key)
        if cached is None:
            cached = [i for i in ids if predicate(table[i])]
            index.match_cache[key] = cached
            while len(index.match_cache) > _MATCH_CACHE_SIZE:
                index.match_cache.popitem(last=False)
        else:
            index.match_cache.move_to_end(key)
        if bounds:
            start, stop = _start_position(cached, bounds)
            return cached[start:stop]
        return list(cached)

    def _lazy_page(
        self,
        index: _DatasetIndex,
        resource: str,
        ids: list[str],
        table: dict,
        rest: Any,
        bounds: Mapping[str, str],
        predicate: Callable[[Mapping[str, Any]], bool],
        join: Any,
        page: int,
        page_size: int,
        descending: bool,
        encoded: bool = False,
    ) -> dict | bytes:
        key = self._cache_key(resource, rest, bounds, join)
        cached = index.match_cache.get(key)
        if cached is None:
            # first page of a new filter: scan once, cache the matches for the next pages and counts
            cached = self._all_matches(index, resource, ids, table, rest, {}, predicate, join)
        start, stop = _start_position(cached, bounds)
        window = cached[start:stop]
        if descending:
            window = window[::-1]
        total = len(window)
        chosen = window[page * page_size : (page + 1) * page_size + 1]
        return _page_answer([table[i] for i in chosen], total, page_size, encoded)

    def _bulk_update(self, index: _DatasetIndex, resource: str, docs: list[dict], body: Mapping[str, Any]) -> dict:
        update = clone(dict(body["update"]))
        system_space = bool(body.get("systemSpace"))
        metadata = update.get("metadata")
        if isinstance(metadata, Mapping) and "system" in metadata and not system_space:
            metadata = {k: v for k, v in metadata.items() if k != "system"}
            update["metadata"] = metadata
        protected = {"id", "datasetId", "url", "createdAt", "creator", "filename", "itemId"}
        bad = sorted(set(update) & protected)
        if bad:
            raise ApiError(400, f"bulk update cannot change {', '.join(bad)}")
        stamp = now_iso()
        for doc in docs:
            deep_merge(doc, update, none_deletes=False)
            doc["updatedAt"] = stamp
        if docs:
            index.touch()
        logger.debug("bulk update of %d %s", len(docs), resource)
        return {"totalItemsCount": len(docs), "updated": len(docs), "resource": resource}

    def _bulk_delete(self, index: _DatasetIndex, resource: str, docs: list[dict]) -> dict:
        for doc in list(docs):
            if resource == "items":
                self.delete_item(doc["id"])
            else:
                self.delete_annotation(doc["id"])
        index.touch()
        return {"totalItemsCount": len(docs), "deleted": len(docs), "resource": resource}

    # ------------------------------------------------------------------ annotations
    def create_annotations(self, item_id: str, body: Any) -> list[dict]:
        annotations = body if isinstance(body, list) else [body]
        for position, annotation in enumerate(annotations):
            if not isinstance(annotation, Mapping):
                raise ApiError(400, f"annotation [{position}] must be an object")
            if not isinstance(annotation.get("type"), str) or not annotation["type"]:
                raise ApiError(400, f"annotation [{position}] needs a 'type' (e.g. 'box')")
            if "label" in annotation and not isinstance(annotation["label"], str):
                raise ApiError(400, f"annotation [{position}] 'label' must be a string")
        with self.lock:
            item = self._get("items", item_id)
            index = self.indexes[item["datasetId"]]
            created = []
            for annotation in annotations:
                annotation_id = self.ids.new()
                doc = self._base("annotations", annotation_id)
                payload = clone(dict(annotation))
                for key in ("id", "url", "createdAt", "creator"):
                    payload.pop(key, None)
                doc.update(payload)
                metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
                metadata.setdefault("system", {})
                if not isinstance(metadata["system"], dict):
                    metadata["system"] = {}
                doc["metadata"] = metadata
                doc.update(
                    {
                        "itemId": item_id,
                        "datasetId": item["datasetId"],
                        "item": f"{self.base_url}/items/{item_id}",
                        "dataset": f"{self.base_url}/datasets/{item['datasetId']}",
                        "label": doc.get("label", ""),
                        "attributes": doc.get("attributes", []),
                        "source": doc.get("source", "sdk"),
                        "hash": annotation_id,
                    }
                )
                doc.setdefault("coordinates", None)
                self.tables["annotations"][annotation_id] = doc
                _insert_sorted(index.annotation_ids, annotation_id)
                self.item_annotations.setdefault(item_id, []).append(annotation_id)
                created.append(clone(doc))
            self._refresh_item_annotation_count(item)
            index.touch()
            return created

    def _refresh_item_annotation_count(self, item: dict) -> None:
        count = len(self.item_annotations.get(item["id"], []))
        item["annotationsCount"] = count
        item["annotated"] = count > 0

    def list_item_annotations(self, item_id: str) -> list[dict]:
        with self.lock:
            self._get("items", item_id)
            return [clone(self.tables["annotations"][i]) for i in self.item_annotations.get(item_id, [])]

    def update_annotation(self, annotation_id: str, body: Mapping[str, Any], system: bool) -> dict:
        if not isinstance(body, Mapping):
            raise ApiError(400, "annotation update body must be a JSON object")
        with self.lock:
            annotation = self._get("annotations", annotation_id)
            patch = clone(dict(body))
            for key in ("id", "url", "itemId", "datasetId", "createdAt", "creator", "item", "dataset"):
                patch.pop(key, None)
            _merge_metadata(annotation, patch.pop("metadata", None), system, "annotation")
            for key, value in patch.items():
                if isinstance(value, Mapping) and isinstance(annotation.get(key), dict):
                    deep_merge(annotation[key], value)
                else:
                    annotation[key] = value
            annotation["updatedAt"] = now_iso()
            self.indexes[annotation["datasetId"]].touch()
            return clone(annotation)

    def delete_annotation(self, annotation_id: str) -> None:
        with self.lock:
            annotation = self._get("annotations", annotation_id)
            index = self.indexes[annotation["datasetId"]]
            _remove_sorted(index.annotation_ids, annotation_id)
            siblings = self.item_annotations.get(annotation["itemId"], [])
            if annotation_id in siblings:
                siblings.remove(annotation_id)
            del self.tables["annotations"][annotation_id]
            item = self.tables["items"].get(annotation["itemId"])
            if item is not None:
                self._refresh_item_annotation_count(item)
            index.touch()

    # ------------------------------------------------------------------ models
    def create_model(self, body: Mapping[str, Any]) -> dict:
        name = body.get("name")
        project_id = body.get("projectId")
        if not isinstance(name, str) or not name:
            raise ApiError(400, "model 'name' is required")
        with self.lock:
            self._get("projects", project_id)
            if body.get("datasetId") is not None:
                self._get("datasets", body["datasetId"])
            for model in self.tables["models"].values():
                if model["name"] == name and model["context"]["project"] == project_id:
                    raise ApiError(409, f"a model named {name!r} already exists in the project")
            model_id = self.ids.new()
            model = self._base("ml/models", model_id)
            model.update(
                {
                    "name": name,
                    "projectId": project_id,
                    "context": {"project": project_id, "org": "emulator-org", "creator": CREATOR},
                    "packageId": body.get("packageId"),
                    "datasetId": body.get("datasetId"),
                    "labels": list(body.get("labels") or []),
                    "configuration": clone(body.get("configuration") or {}),
                    "status": body.get("status", "created"),
                    "description": body.get("description"),
                    "tags": list(body.get("tags") or []),
                    "metadata": clone(body.get("metadata") or {}),
                    "artifacts": clone(body.get("artifacts") or []),
                    "inputType": body.get("inputType", "image"),
                    "outputType": body.get("outputType", "box"),
                    "moduleName": body.get("moduleName", "model-adapter"),
                    "scope": body.get("scope", "project"),
                    "version": body.get("version", "1.0.0"),
                    "statusLogs": [],
                    "app": body.get("app"),
                }
            )
            model["metadata"].setdefault("system", {})
            self.tables["models"][model_id] = model
            _insert_sorted(self.model_ids, model_id)
            return clone(model)

    def get_model(self, model_id: str) -> dict:
        with self.lock:
            model = clone(self._get("models", model_id))
            remaining = self._cloning.get(model_id, 0)
            if remaining > 0:
                self._cloning[model_id] = remaining - 1
                model["status"] = "cloning"
            return model

    def clone_model(self, source_id: str, body: Mapping[str, Any]) -> dict:
        if not isinstance(body, Mapping):
            raise ApiError(400, "clone body must be a JSON object")
        with self.lock:
            source = self._get("models", source_id)
            name = body.get("name")
            if not isinstance(name, str) or not name:
                raise ApiError(400, "clone needs the new model 'name'")
            project_id = body.get("projectId") or source["context"]["project"]
            metadata = clone(source.get("metadata") or {})
            sent = body.get("metadata")
            if isinstance(sent, Mapping):
                # like the platform: each metadata.system key sent (subsets, annotationsSubsets...)
                # replaces the source's value for that key; other metadata is deep-merged
                deep_merge(metadata, {k: v for k, v in sent.items() if k != "system"}, none_deletes=False)
                if isinstance(sent.get("system"), Mapping):
                    if not isinstance(metadata.get("system"), dict):
                        metadata["system"] = {}
                    for key, value in sent["system"].items():
                        metadata["system"][key] = clone(value)
            configuration = clone(source.get("configuration") or {})
            if isinstance(body.get("configuration"), Mapping):
                configuration = clone(dict(body["configuration"]))
            new_body = {
                "name": name,
                "projectId": project_id,
                "packageId": body.get("packageId", source.get("packageId")),
                "datasetId": body.get("datasetId", source.get("datasetId")),
                "labels": body.get("labels", source.get("labels")),
                "configuration": configuration,
                "status": body.get("status", "created"),
                "description": body.get("description", source.get("description")),
                "tags": body.get("tags", source.get("tags")),
                "metadata": metadata,
                "artifacts": source.get("artifacts"),
                "inputType": body.get("inputType") or source.get("inputType"),
                "outputType": body.get("outputType") or source.get("outputType"),
                "moduleName": source.get("moduleName"),
                "scope": body.get("scope", source.get("scope")),
                "app": source.get("app"),
            }
            model = self.create_model(new_body)
            self.tables["models"][model["id"]]["metadata"].setdefault("system", {})["clonedFrom"] = source_id
            model = clone(self.tables["models"][model["id"]])
            if self.clone_polls > 0:
                self._cloning[model["id"]] = self.clone_polls
                model["status"] = "cloning"
            return model

    def patch_model(self, model_id: str, body: Mapping[str, Any], system: bool) -> dict:
        if not isinstance(body, Mapping):
            raise ApiError(400, "model patch body must be a JSON object")
        with self.lock:
            model = self._get("models", model_id)
            patch = clone(dict(body))
            for key in ("id", "url", "createdAt", "creator", "context", "projectId"):
                patch.pop(key, None)
            metadata = patch.pop("metadata", None)
            if "name" in patch and patch["name"] != model["name"]:
                for other in self.tables["models"].values():
                    if other["name"] == patch["name"] and other["context"]["project"] == model["context"]["project"]:
                        raise ApiError(409, f"a model named {patch['name']!r} already exists in the project")
            for key, value in patch.items():
                model[key] = value
            if isinstance(metadata, Mapping):
                metadata = clone(dict(metadata))
                system_part = metadata.pop("system", None)
                kept_system = model.get("metadata", {}).get("system", {})
                model["metadata"] = metadata
                model["metadata"]["system"] = (
                    system_part if system and isinstance(system_part, Mapping) else kept_system
                )
            model["updatedAt"] = now_iso()
            return clone(model)

    def delete_model(self, model_id: str) -> None:
        with self.lock:
            self._get("models", model_id)
            del self.tables["models"][model_id]
            _remove_sorted(self.model_ids, model_id)

    def query_models(self, body: Mapping[str, Any], encoded: bool = False) -> dict | bytes:
        return self._query_table(body, self.model_ids, self.tables["models"], encoded)

    # ------------------------------------------------------------------ metrics
    def publish_metrics(self, body: Any) -> list[dict]:
        samples = body if isinstance(body, list) else [body]
        for position, sample in enumerate(samples):
            if not isinstance(sample, Mapping):
                raise ApiError(400, f"metric sample [{position}] must be an object")
            if not sample.get("modelId"):
                raise ApiError(400, f"metric sample [{position}] needs 'modelId'")
            data = sample.get("data")
            if not isinstance(data, Mapping) or "x" not in data or "y" not in data:
                raise ApiError(400, f"metric sample [{position}] needs 'data': {{'x': ..., 'y': ...}}")
        with self.lock:
            for sample in samples:
                self._get("models", sample["modelId"])
            created = []
            for sample in samples:
                metric_id = self.ids.new()
                doc = {"id": metric_id, "createdAt": now_iso(), **clone(dict(sample))}
                self.tables["metrics"][metric_id] = doc
                self.metric_ids.append(metric_id)
                created.append(clone(doc))
            return created

    def query_metrics(self, body: Mapping[str, Any], encoded: bool = False) -> dict | bytes:
        return self._query_table(body, self.metric_ids, self.tables["metrics"], encoded)

    def query_documents(self, docs: list[dict], body: Mapping[str, Any], encoded: bool = False) -> dict | bytes:
        """Filter, sort and page a small list of documents (datasets) with a DQL body."""
        table = {d["id"]: d for d in docs}
        return self._query_table(body, sorted(table), table, encoded)

    def _query_table(self, body: Mapping[str, Any], ids: list[str], table: dict, encoded: bool = False) -> dict | bytes:
        if not isinstance(body, Mapping):
            raise ApiError(400, "query body must be a JSON object")
        page, page_size = _paging(body)
        try:
            rest, bounds = dql.split_id_keyset(body.get("filter") or {})
            predicate = dql.compile_filter(rest)
            sort_keys, id_only = dql.sort_key_function(body.get("sort"))
        except dql.DQLError as error:
            raise ApiError(400, f"invalid DQL: {error}") from None
        with self.lock:
            start, stop = _start_position(ids, bounds)
            docs = [table[i] for i in ids[start:stop] if predicate(table[i])]
            if sort_keys and not id_only:
                docs = dql.sort_documents(docs, sort_keys)
            elif sort_keys and sort_keys[0][1]:
                docs = docs[::-1]
            return _page_answer(docs[page * page_size : (page + 1) * page_size + 1], len(docs), page_size, encoded)

    # ------------------------------------------------------------------ pipelines
    def create_pipeline(self, body: Mapping[str, Any]) -> dict:
        with self.lock:
            pipeline_id = self.ids.new()
            pipeline = self._base("pipelines", pipeline_id)
            pipeline.update(clone(dict(body)))
            pipeline["id"] = pipeline_id
            self.tables["pipelines"][pipeline_id] = pipeline
            return clone(pipeline)

    # ------------------------------------------------------------------ snapshots
    def items_of(self, dataset_id: str) -> list[dict]:
        with self.lock:
            index = self._index(dataset_id)
            return [clone(self.tables["items"][i]) for i in index.item_ids]

    def annotations_of(self, dataset_id: str) -> list[dict]:
        with self.lock:
            index = self._index(dataset_id)
            return [clone(self.tables["annotations"][i]) for i in index.annotation_ids]


def _collect_tags(root: Mapping[str, Any], prefix: str, out: list[str]) -> None:
    value = root.get("value", root)
    tag = value.get("tag") or value.get("label_name")
    if tag is None:
        return
    full = f"{prefix}.{tag}" if prefix else tag
    out.append(full)
    for child in root.get("children") or []:
        _collect_tags(child, full, out)


def _paging(body: Mapping[str, Any]) -> tuple[int, int]:
    page = body.get("page", 0)
    page_size = body.get("pageSize", 1000)
    if isinstance(page, bool) or not isinstance(page, int) or page < 0:
        raise ApiError(400, f"query 'page' must be an integer >= 0, got {page!r}")
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 0:
        raise ApiError(400, f"query 'pageSize' must be an integer >= 0 (0: count only), got {page_size!r}")
    return page, page_size


def _page_answer(
    docs_plus_one: list[Mapping[str, Any]], total: int, page_size: int, encoded: bool = False
) -> dict | bytes:
    """A page answer from up to ``page_size + 1`` documents (the extra one means a next page).

    ``page_size`` 0 is a count query (dtlpy's ``items_count``, the adapter's item count): no
    items, only ``totalItemsCount``.
    """
    if page_size == 0:
        answer: dict[str, Any] = {"totalItemsCount": total, "totalPagesCount": 0, "hasNextPage": False, "items": []}
        return json.dumps(answer).encode("utf-8") if encoded else answer
    has_next = len(docs_plus_one) > page_size
    docs = docs_plus_one[:page_size]
    head = {
        "totalItemsCount": total,
        "totalPagesCount": (total + page_size - 1) // page_size,
        "hasNextPage": has_next,
    }
    if encoded:
        # one C-level encoding pass instead of copying every document (the caller holds the lock)
        return (json.dumps(head)[:-1] + ', "items": ' + json.dumps(docs) + "}").encode("utf-8")
    return {**head, "items": [clone(d) for d in docs]}


def _image_size(data: bytes, mimetype: str) -> dict[str, int]:
    if not mimetype.startswith("image/") or not data:
        return {}
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is a runtime requirement
        return {}
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except Exception:  # not a decodable image: the platform leaves the size out too
        return {}
    return {"width": int(width), "height": int(height)}


def iter_chunks(data: bytes, size: int = 65536) -> Iterator[bytes]:
    """Split ``data`` into chunks of ``size`` bytes (used to stream item bytes)."""
    for start in range(0, len(data), size):
        yield data[start : start + size]
