"""Annotation tasks (``/annotationtasks``): created on a dataset from an item query, items added
to them, read and listed; a task's items carry ``{"type": "task", "id": <task id>}`` in
``metadata.system.refs``, which is how DQL finds them. Sources and assumptions:
emulator/README.md, "Sources by module".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from emulator.store.base import ApiError, StoreBase, clone, now_iso

TASK_TYPES = ("annotation", "qa")  # dtlpy repositories/tasks.py create: task_type check


def _query_of(body: Mapping[str, Any]) -> dict:
    raw = body.get("query")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise ApiError(400, "task 'query' is not a JSON item filter") from None
    if raw is None:
        raw = {"filter": {}}
    if not isinstance(raw, Mapping):
        raise ApiError(400, "task 'query' must be an item filter object")
    return dict(raw)


class TasksMixin(StoreBase):
    def create_task(self, body: Mapping[str, Any]) -> dict:
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise ApiError(400, "task 'name' is required")
        spec = body.get("spec") if isinstance(body.get("spec"), Mapping) else {}
        task_type = spec.get("type", "annotation")
        if task_type not in TASK_TYPES:
            raise ApiError(400, f"task spec.type {task_type!r} is not one of {list(TASK_TYPES)}")
        query = _query_of(body)
        with self.lock:
            dataset = self._get("datasets", body.get("datasetId"))
            project_id = body.get("projectId") or dataset["projects"][0]
            self._get("projects", project_id)
            recipe_id = body.get("recipeId")
            if recipe_id is not None:
                self._get("recipes", recipe_id)
            for task in self.tables["tasks"].values():
                if task["name"] == name and task["projectId"] == project_id:
                    raise ApiError(409, f"a task named {name!r} already exists in the project")
            item_ids = self._task_item_ids(dataset["id"], query)
            task_id = self.ids.new()
            task = self._base("annotationtasks", task_id)
            task.update(
                {
                    "name": name,
                    "projectId": project_id,
                    "datasetId": dataset["id"],
                    "recipeId": recipe_id,
                    "taskOwner": body.get("taskOwner"),
                    "spec": clone(dict(spec)) or {"type": task_type},
                    "dueDate": body.get("dueDate"),
                    "query": body.get("query") if isinstance(body.get("query"), str) else json.dumps(query),
                    "assignmentIds": list(body.get("assignmentIds") or []),
                    "availableActions": clone(body.get("availableActions") or []),
                    "priority": body.get("priority"),
                    "metadata": clone(body.get("metadata") or {}),
                    "status": "open",
                    "progress": 0,
                    "itemStatus": {},
                    "annotationStatus": [],
                    "forReview": False,
                    "issues": False,
                }
            )
            task["metadata"].setdefault("system", {})
            self.tables["tasks"][task_id] = task
            self._refer_items(task_id, item_ids)
            return self._command("CreateTask", {"createTaskPayload": clone(dict(body)), "createdTaskId": task_id})

    def _task_item_ids(self, dataset_id: str, query: Mapping[str, Any]) -> list[str]:
        """Ids of the dataset's items the task's item query matches (all pages)."""
        ids: list[str] = []
        page_number = 0
        while True:
            body = {**query, "resource": "items", "page": page_number, "pageSize": 1000}
            page = self.query_dataset(dataset_id, body)
            ids.extend(item["id"] for item in page["items"])
            if not page.get("hasNextPage"):
                return ids
            page_number += 1

    def _refer_items(self, task_id: str, item_ids: list[str]) -> int:
        """Add the task reference to each item's ``metadata.system.refs`` (once); the count added."""
        added = 0
        for item_id in item_ids:
            item = self.tables["items"][item_id]
            refs = item.setdefault("metadata", {}).setdefault("system", {}).setdefault("refs", [])
            if not any(r.get("type") == "task" and r.get("id") == task_id for r in refs):
                refs.append({"type": "task", "id": task_id, "metadata": {"status": None}})
                item["updatedAt"] = now_iso()
                added += 1
            self.indexes[item["datasetId"]].touch()
        return added

    def add_to_task(self, task_id: str, body: Mapping[str, Any]) -> dict:
        query = _query_of(body)
        with self.lock:
            task = self._get("tasks", task_id)
            item_ids = self._task_item_ids(task["datasetId"], query)
            added = self._refer_items(task_id, item_ids)
            task["updatedAt"] = now_iso()
            # dtlpy tasks.add_items reads spec.addToTaskPayload after waiting on the command
            spec = {"addToTaskPayload": clone(dict(body)), "taskId": task_id, "itemsCount": added}
            return self._command("BulkAddToTask", spec)

    def set_item_status(self, task_id: str, body: Mapping[str, Any]) -> dict:
        """``POST /assignments/items/tasks/{taskId}/status`` (dtlpy ``tasks.set_status``, sent by
        ``item.update_status``): ``{itemIds, statusPayload: {operation: create|delete, status}}``.
        The status goes to the item's task reference (``metadata.system.refs[].metadata.status``,
        which ``item.status(task_id)`` reads); a pipeline's task node routes the item on. Answers
        ``{itemId: {status, operation, taskId}}`` (dtlpy reads the keys as the updated items)."""
        item_ids = body.get("itemIds")
        payload = body.get("statusPayload") if isinstance(body.get("statusPayload"), Mapping) else {}
        operation = payload.get("operation", "create")
        status = payload.get("status")
        if not isinstance(item_ids, list) or not all(isinstance(i, str) for i in item_ids):
            raise ApiError(400, "item status: 'itemIds' must be a list of item ids")
        if operation not in ("create", "delete"):
            raise ApiError(400, f"item status: statusPayload.operation {operation!r} is not 'create' or 'delete'")
        if operation == "create" and (not isinstance(status, str) or not status):
            raise ApiError(400, "item status: statusPayload.status is required, e.g. 'completed'")
        answer: dict[str, Any] = {}
        with self.lock:
            task = self._get("tasks", task_id)
            changed = []
            for item_id in item_ids:
                item = self.tables["items"].get(item_id)
                refs = (item or {}).get("metadata", {}).get("system", {}).get("refs") or []
                ref = next((r for r in refs if r.get("type") == "task" and r.get("id") == task_id), None)
                if ref is None:
                    continue  # not in the task: left out of the answer, as dtlpy expects
                ref.setdefault("metadata", {})["status"] = status if operation == "create" else None
                item["updatedAt"] = now_iso()
                self.indexes[item["datasetId"]].touch()
                answer[item_id] = {"status": ref["metadata"]["status"], "operation": operation, "taskId": task_id}
                changed.append(item_id)
            task["updatedAt"] = now_iso()
            runtime = self.__dict__.get("_pipeline_runtime")
            if runtime is not None:
                for item_id in changed:
                    runtime.on_item_status(task_id, item_id, status, operation)
        return answer

    def get_task(self, task_id: str) -> dict:
        return self.get("tasks", task_id)

    def query_tasks(self, body: Mapping[str, Any], encoded: bool = False) -> dict | bytes:
        """``POST /annotationtasks/query``: the filter over the tasks of ``context.projectIds``.

        dtlpy's ``tasks.list(project_ids=...)`` (repositories/tasks.py) puts the projects it searches
        in ``filters.context = {"projectIds": [...]}``, defaulting to the repository's project: only
        tasks of those projects are listed.
        """
        table = self.tables["tasks"]
        context = body.get("context") if isinstance(body, Mapping) else None
        projects = context.get("projectIds") if isinstance(context, Mapping) else None
        if projects is not None and not isinstance(projects, list):
            raise ApiError(400, "task query 'context.projectIds' must be a list of project ids")
        with self.lock:
            ids = [i for i in table if projects is None or table[i].get("projectId") in projects]
        return self._query_table(body, ids, table, encoded)

    def delete_task(self, task_id: str) -> None:
        with self.lock:
            self._get("tasks", task_id)
            for item in self.tables["items"].values():
                refs = item.get("metadata", {}).get("system", {}).get("refs")
                if refs:
                    kept = [r for r in refs if not (r.get("type") == "task" and r.get("id") == task_id)]
                    if len(kept) != len(refs):
                        item["metadata"]["system"]["refs"] = kept
                        self.indexes[item["datasetId"]].touch()
            del self.tables["tasks"][task_id]
