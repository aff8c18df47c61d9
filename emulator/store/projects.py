"""Projects: created by name (unique on the platform), listed, found by name, deleted."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.store.base import ApiError, StoreBase, clone


class ProjectsMixin(StoreBase):
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

    def get_project(self, project_id: str) -> dict:
        return self.get("projects", project_id)

    def projects_by_name(self, name: str) -> list[dict]:
        """Projects named ``name`` (a list, as ``GET /projects/{name}/name`` answers); 404 when none."""
        with self.lock:
            found = [clone(p) for p in self.tables["projects"].values() if p["name"] == name]
        if not found:
            raise ApiError(404, f"project not found: name {name!r}")
        return found

    def list_projects(self) -> list[dict]:
        with self.lock:
            return clone(list(self.tables["projects"].values()))

    def delete_project(self, project_id: str) -> None:
        with self.lock:
            self._get("projects", project_id)
            del self.tables["projects"][project_id]
