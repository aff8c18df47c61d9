"""What every resource of the local platform shares: the tables behind one re-entrant lock,
24-hex ids laid out as MongoDB ObjectIds (creation time first) that sort in creation order, the :class:`ApiError` answer, the common fields of an
entity, and the JSON copy / merge helpers PATCH and PUT bodies go through.

Ids sort in creation order because dtlpy's keyset paging (``{"id": {"$gt": last_id}}``) relies
on it; each dataset keeps its item and annotation ids in sorted lists (:class:`DatasetIndex`)
so a keyset bound is a binary search.
"""

from __future__ import annotations

import bisect
import datetime
import functools
import itertools
import mimetypes
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

CREATOR = "emulator@localhost"


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


def patch_of(body: Any, read_only: tuple[str, ...], what: str) -> dict:
    """A copy of a PATCH/PUT body without the fields a client may not change.

    Example
    -------
    >>> patch_of({"id": "x", "name": "n"}, ("id",), "item patch")
    {'name': 'n'}
    """
    if not isinstance(body, Mapping):
        raise ApiError(400, f"{what} body must be a JSON object")
    patch = clone(dict(body))
    for key in read_only:
        patch.pop(key, None)
    return patch


def merge_metadata(doc: dict, metadata: Any, system: bool, resource: str, *, none_deletes: bool = True) -> None:
    """Deep-merge a PATCH/PUT body's ``metadata`` into ``doc``. Like the platform,
    ``metadata.system`` changes only when the request says ``?system=true``. ``none_deletes``:
    the reading of ``null`` (see :attr:`StoreBase.null_deletes`)."""
    if metadata is None:
        return
    if not isinstance(metadata, Mapping):
        raise ApiError(400, f"{resource} 'metadata' must be an object")
    metadata = dict(metadata)
    system_part = metadata.pop("system", None)
    if system and isinstance(system_part, Mapping):
        target = doc.setdefault("metadata", {})
        if not isinstance(target.get("system"), dict):  # a stored null (or junk) is replaced by the object sent
            target["system"] = {}
        deep_merge(target["system"], system_part, none_deletes=none_deletes)
    deep_merge(doc.setdefault("metadata", {}), metadata, none_deletes=none_deletes)


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
    """24-hex ids laid out as MongoDB ObjectIds: 4 bytes of creation time in seconds, 5 bytes
    of a per-factory random value, 3 bytes of an increasing counter.

    Source: the MongoDB ObjectId specification (https://www.mongodb.com/docs/manual/reference/method/ObjectId/);
    Dataloop entity ids are ObjectIds (24 hex, e.g. ``5f4d3b2a...``, dtlpy ``entities/*.py``).
    Creation time (clamped to never go back) leads, then the counter, so ids sort in creation
    order, which dtlpy's keyset paging (``{"id": {"$gt": last_id}}``) relies on. The counter
    starts at 0 rather than at a random value (an assumption: only its order matters) and
    carries into the random part instead of wrapping, so the order holds past 2**24 ids.

    With a fixed ``prefix`` (8 hex digits, e.g. for the reproducible demo) the time part is the
    prefix and the rest a plain 16-hex counter.

    Example
    -------
    >>> ids = IdFactory()
    >>> a, b = ids.new(), ids.new()
    >>> len(a), a < b, abs(IdFactory.created_at(a) - time.time()) < 5
    (24, True, True)
    """

    def __init__(self, prefix: str | None = None) -> None:
        if prefix is not None and (len(prefix) != 8 or any(c not in "0123456789abcdef" for c in prefix)):
            raise ValueError(f"id prefix: {prefix!r} is not 8 lowercase hex digits; example: '00000000'")
        self._prefix = prefix
        self._random = int.from_bytes(os.urandom(5), "big") >> 1  # room for the counter's carry
        self._counter = itertools.count(1)
        self._last_seconds = 0
        self._lock = threading.Lock()

    def new(self) -> str:
        with self._lock:
            count = next(self._counter)
            if self._prefix is not None:
                return f"{self._prefix}{count:016x}"
            seconds = max(self._last_seconds, int(time.time()) & 0xFFFFFFFF)
            self._last_seconds = seconds
            tail = (self._random << 24) + count
            return f"{seconds:08x}{tail:016x}"

    @staticmethod
    def created_at(entity_id: str) -> int:
        """The creation time (Unix seconds) an ObjectId carries in its first 4 bytes."""
        return int(entity_id[:8], 16)


class DatasetIndex:
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


def insert_sorted(ids: list[str], new_id: str) -> None:
    if not ids or ids[-1] < new_id:
        ids.append(new_id)
    else:
        bisect.insort(ids, new_id)


def remove_sorted(ids: list[str], old_id: str) -> None:
    position = bisect.bisect_left(ids, old_id)
    if position < len(ids) and ids[position] == old_id:
        del ids[position]


def start_position(ids: list[str], bounds: Mapping[str, str]) -> tuple[int, int]:
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


class StoreBase:
    """The shared state of all resources: tables of JSON documents by id, behind one lock.

    Resource mixins (``emulator/store/<resource>.py``) add the public methods; they take and
    return plain JSON-able dicts (deep copies: callers may keep or change them). ``base_url``
    is used to build the ``url`` / ``stream`` links of entities.
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
            "commands": {},
            "dpks": {},
            "apps": {},
            "packages": {},
            "executions": {},
            "tasks": {},
            "feature_sets": {},
            "features": {},
        }
        self.blobs: dict[str, bytes] = {}
        self.indexes: dict[str, DatasetIndex] = {}
        self.item_annotations: dict[str, list[str]] = {}
        self.model_ids: list[str] = []
        self.metric_ids: list[str] = []
        #: a clone answers "cloning" and finishes later, as on the platform (dtlpy then polls);
        #: False finishes it in the clone request (faster tests; not the platform's behaviour)
        self.clone_async = True
        #: GET /ml/models/{id} answers with status "cloning" this many times before the copy ends
        self.clone_polls = 0
        #: The reading of ``null`` in a single-entity PATCH (``PATCH /items/{id}``, annotation
        #: updates): ``True`` deletes the key (the assumption: dtlpy's ``item.update()`` sends
        #: ``None`` for a removed key, ``miscellaneous/dict_differ.py``); ``False`` stores ``null``
        #: as a value (Dataloop's item docs list Null among the metadata types). Undocumented
        #: either way: the nodes must give the same results under both (tests/conftest.py
        #: ``--null-reading``).
        self.null_deletes = True
        #: The reading of ``null`` in a bulk update (``POST /datasets/{id}/query`` with ``update``):
        #: ``False`` (the assumption) stores it; ``True`` deletes the key.
        self.bulk_null_deletes = False
        self._cloning: dict[str, dict] = {}

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

    def _index(self, dataset_id: str) -> DatasetIndex:
        self._get("datasets", dataset_id)
        return self.indexes[dataset_id]

    def _patch_target(
        self, table: str, entity_id: str, body: Any, read_only: tuple[str, ...], system: bool, what: str
    ) -> tuple[dict, dict]:
        """The stored entity a PATCH/PUT body changes, with the body's ``metadata`` merged into it
        (:func:`merge_metadata`), and the rest of the body. Take the lock first.

        ``what`` names the request in errors (``"item patch"``); its first word is the resource.
        """
        patch = patch_of(body, read_only, what)
        entity = self._get(table, entity_id)
        merge_metadata(entity, patch.pop("metadata", None), system, what.split()[0], none_deletes=self.null_deletes)
        return entity, patch

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
