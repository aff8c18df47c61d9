"""Items: files uploaded into a dataset under a remote path (unique per dataset; ``skip`` or
``overwrite`` on re-upload), their bytes, ``metadata.system`` (size, mimetype, original name,
image width/height), patches, moves and deletes (with their annotations)."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

from emulator.store.base import (
    ApiError,
    DatasetIndex,
    StoreBase,
    clone,
    guess_mimetype,
    insert_sorted,
    now_iso,
    remove_sorted,
)


class ItemsMixin(StoreBase):
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

        Returns the item JSON and the operation, the ``x-item-op`` answer header: ``"created"``,
        ``"skip"`` or ``"overwrite"`` (dtlpy ``repositories/uploader.py`` uploads an item's
        annotations file only when the header is ``created`` or ``overwrite``).
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
            shebang = _shebang(data, system["mimetype"])
            if shebang is not None:
                system["shebang"] = shebang
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
            if directory not in ("", "/") and directory not in index.by_filename:
                # a folder's directory item comes with the first upload into it (dtlpy
                # repositories/codebases.py ``list`` finds codebases by their ``type: dir`` items)
                self._put_item(dataset_id, directory, b"", None, "skip", None, "dir")
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
                    "hidden": in_hidden_folder(filename if item_type == "dir" else directory),
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
            insert_sorted(index.item_ids, item_id)
            index.by_filename[filename] = item_id
            index.touch()
            if item_type == "file":
                self.on_item_created(item)  # event triggers of installed pipelines (store/pipelines.py)
            return item, "created"

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
        read_only = ("id", "url", "datasetId", "dataset", "createdAt", "creator", "stream", "annotations")
        with self.lock:
            item, patch = self._patch_target("items", item_id, body, read_only, system, "item patch")
            index = self.indexes[item["datasetId"]]
            if "filename" in patch or "name" in patch or "dir" in patch:
                self._move_item(item, index, patch)
                if item["dir"] != "/" and item["dir"] not in index.by_filename:  # the new folder's dir item
                    self._put_item(item["datasetId"], item["dir"], b"", None, "skip", None, "dir")
            for key, value in patch.items():
                if key in ("filename", "name", "dir"):
                    continue
                if value is None and self.null_deletes:
                    item.pop(key, None)
                else:
                    item[key] = value
            item["updatedAt"] = now_iso()
            index.touch()
            return clone(item)

    @staticmethod
    def _move_item(item: dict, index: DatasetIndex, patch: Mapping[str, Any]) -> None:
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
                remove_sorted(index.annotation_ids, annotation_id)
            remove_sorted(index.item_ids, item_id)
            index.by_filename.pop(item["filename"], None)
            del self.tables["items"][item_id]
            self.blobs.pop(item_id, None)
            index.touch()

    def items_of(self, dataset_id: str) -> list[dict]:
        with self.lock:
            index = self._index(dataset_id)
            items = (self.tables["items"][i] for i in index.item_ids)
            return [clone(item) for item in items if item.get("type") != "dir"]  # files: directories left out


def _shebang(data: bytes, mimetype: str) -> dict | None:
    """The ``metadata`` of a Dataloop JSON item (``{"shebang": "dataloop", "metadata": {...}}``):
    link items (``dl.UrlLink``: ``dltype: link`` with ``linkInfo`` ``{type, ref, mimetype}``),
    prompt items... The platform keeps it as ``metadata.system.shebang``, where dtlpy reads a
    link item's URL (``entities/item.py``: ``system.shebang.linkInfo.ref`` is its stream;
    ``repositories/uploader.py`` ``link`` builds the file)."""
    if mimetype != "application/json" or not data.lstrip().startswith(b"{") or b"dataloop" not in data[:4096]:
        return None
    try:
        document = json.loads(data)
    except ValueError:
        return None
    if not isinstance(document, dict) or document.get("shebang") != "dataloop":
        return None
    metadata = document.get("metadata")
    return clone(metadata) if isinstance(metadata, dict) else None


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


def in_hidden_folder(directory: str) -> bool:
    """Items under a folder whose name starts with ``.`` are hidden. Sources: dtlpy-documentation's
    DQL cookbook ("Working with Hidden Items": a hidden directory ``/part1/.something/`` is read
    with ``hidden: true``) and dtlpymetrics, which stores model scores under ``/.modelscores`` and
    finds them with ``Filters(field="hidden", values=True)``.

    >>> in_hidden_folder("/.modelscores"), in_hidden_folder("/a/.b/c"), in_hidden_folder("/a.b")
    (True, True, False)
    """
    return any(part.startswith(".") for part in directory.split("/") if part)
