"""Apps: DPKs published to the app registry (``/app-registry``), apps installed from them in a
project (``/apps``), FaaS packages (``/packages``) and the commands (``/commands``) the platform
answers long operations with. Sources and assumptions: emulator/README.md, "Sources by module".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.store.base import ApiError, StoreBase, clone
from emulator.store.manifest import check_manifest


class AppsMixin(StoreBase):
    # ------------------------------------------------------------------ commands
    def _command(self, command_type: str, spec: Mapping[str, Any]) -> dict:
        """A finished command (take the lock first). dtlpy's ``Command.wait`` polls
        ``GET /commands/{id}`` until ``status`` is not in progress, then reads ``spec``."""
        command_id = self.ids.new()
        command = self._base("commands", command_id)
        command.update(
            {
                "type": command_type,
                "status": "success",
                "progress": 100,
                "spec": clone(dict(spec)),
                "error": None,
                "url": f"{self.base_url}/commands/{command_id}",
            }
        )
        self.tables["commands"][command_id] = command
        return clone(command)

    def get_command(self, command_id: str) -> dict:
        return self.get("commands", command_id)

    # ------------------------------------------------------------------ app registry (DPKs)
    def publish_dpk(self, body: Mapping[str, Any]) -> dict:
        check_manifest(body)
        context = body.get("context") if isinstance(body.get("context"), Mapping) else {}
        project_id = context.get("project")
        with self.lock:
            if project_id is not None:
                self._get("projects", project_id)
            versions = [d for d in self.tables["dpks"].values() if d["name"] == body["name"]]
            if any(d["version"] == body["version"] for d in versions):
                # dtlpy dpks.publish docs: publishing needs a new version (bump it in dataloop.json)
                raise ApiError(409, f"dpk {body['name']!r} version {body['version']!r} is already published")
            codebase = body.get("codebase")
            if isinstance(codebase, Mapping) and codebase.get("type") == "item":
                self._get("items", codebase.get("itemId"))
            dpk_id = self.ids.new()
            dpk = self._base("app-registry", dpk_id)
            dpk.update(clone(dict(body)))
            dpk.update(
                {
                    "id": dpk_id,
                    "baseId": versions[0]["baseId"] if versions else dpk_id,
                    "latest": True,
                    "context": {"project": project_id, **clone(dict(context))},
                    "createdAt": dpk["createdAt"],
                }
            )
            for older in versions:
                older["latest"] = False
            self.tables["dpks"][dpk_id] = dpk
            return clone(dpk)

    def get_dpk(self, dpk_id: str) -> dict:
        return self.get("dpks", dpk_id)

    def dpk_by_name(self, name: str, version: str | None = None) -> dict:
        """``GET /app-registry/{name}/name[?version=]``-style lookup: the version, else the latest."""
        with self.lock:
            found = [d for d in self.tables["dpks"].values() if d["name"] == name]
            if version is not None:
                found = [d for d in found if d["version"] == version]
            if not found:
                raise ApiError(404, f"dpk not found: name {name!r}" + (f" version {version!r}" if version else ""))
            return clone(found[-1])

    def query_dpks(self, body: Mapping[str, Any], encoded: bool = False) -> dict | bytes:
        table = self.tables["dpks"]
        return self._query_table(body, list(table), table, encoded)

    def delete_dpk(self, dpk_id: str) -> None:
        with self.lock:
            dpk = self._get("dpks", dpk_id)
            if any(a["dpkName"] == dpk["name"] for a in self.tables["apps"].values()):
                raise ApiError(409, f"dpk {dpk['name']!r} is installed; uninstall its apps first")
            del self.tables["dpks"][dpk_id]

    # ------------------------------------------------------------------ apps
    def install_app(self, body: Mapping[str, Any]) -> dict:
        project_id = body.get("projectId")
        dpk_name = body.get("dpkName")
        if not isinstance(dpk_name, str) or not dpk_name:
            raise ApiError(400, "app install needs 'dpkName'")
        with self.lock:
            self._get("projects", project_id)
            dpk = self.dpk_by_name(dpk_name, body.get("dpkVersion"))
            name = body.get("name") or dpk.get("displayName") or dpk_name
            for app in self.tables["apps"].values():
                if app["projectId"] == project_id and app["name"] == name:
                    raise ApiError(409, f"an app named {name!r} is already installed in the project")
            app_id = self.ids.new()
            app = self._base("apps", app_id)
            app.update(
                {
                    "name": name,
                    "projectId": project_id,
                    "orgId": body.get("orgId"),
                    "dpkName": dpk["name"],
                    "dpkVersion": dpk["version"],
                    "dpkId": dpk["id"],
                    "scope": body.get("scope") or "project",
                    "status": "Installed",  # dtlpy entities/pipeline.py CompositionStatus.INSTALLED
                    "customInstallation": clone(body.get("customInstallation") or {}),
                    "integrations": clone(body.get("integrations") or []),
                    "settings": {},
                    "routes": {},
                    "compositionId": None,
                    "metadata": {"system": {}},
                    # dtlpy entities/app.py ``App.from_json`` reads the app's DPK from ``dpk``
                    # (``app.dpk.components.models`` is what ``models.create(app=...)`` looks in)
                    "dpk": clone(dpk),
                }
            )
            self.tables["apps"][app_id] = app
            # one service per module of the manifest (emulator/README.md, "Services, executions, models")
            try:
                for module in (dpk.get("components") or {}).get("modules") or []:
                    self.ensure_module_service(project_id, app, module["name"])
                for entry in (dpk.get("components") or {}).get("models") or []:
                    self._install_model(project_id, app, dpk, entry)
            except ApiError:
                del self.tables["apps"][app_id]
                for service_id in self.services_of_app(app_id):
                    del self.tables["services"][service_id]
                raise
            return clone(app)

    def _install_model(self, project_id: str, app: Mapping[str, Any], dpk: Mapping[str, Any], entry: Any) -> None:
        """A ``components.models`` entry becomes a model of the project (dtlpy tests: "Model object
        with the same name should be exist" after install; fields as dtlpy ``models.create`` with
        ``app`` sends them). A model of that name already there is kept (assumption)."""
        if not isinstance(entry, Mapping) or not entry.get("name"):
            raise ApiError(400, "components.models entries need a 'name'")
        if any(
            m["name"] == entry["name"] and m["context"]["project"] == project_id for m in self.tables["models"].values()
        ):
            return
        self.create_model(
            {
                "name": entry["name"],
                "projectId": project_id,
                "packageId": dpk["id"],
                "moduleName": entry.get("moduleName"),
                "labels": list(entry.get("labels") or []),
                "configuration": clone(entry.get("configuration") or {}),
                "status": entry.get("status", "pre-trained"),
                "description": entry.get("description"),
                "tags": list(entry.get("tags") or []),
                "inputType": entry.get("inputType", "image"),
                "outputType": entry.get("outputType", "box"),
                "metadata": clone(entry.get("metadata") or {}),
                "app": {
                    "id": app["id"],
                    "componentName": entry["name"],
                    "dpkName": dpk["name"],
                    "dpkVersion": dpk["version"],
                    "dpkId": dpk.get("baseId", dpk["id"]),
                },
            }
        )

    def get_app(self, app_id: str) -> dict:
        return self.get("apps", app_id)

    def query_apps(self, body: Mapping[str, Any], encoded: bool = False) -> dict | bytes:
        table = self.tables["apps"]
        return self._query_table(body, list(table), table, encoded)

    def uninstall_app(self, app_id: str) -> None:
        with self.lock:
            self._get("apps", app_id)
            del self.tables["apps"][app_id]
        for service_id in self.services_of_app(app_id):
            self.delete_service(service_id)

    # ------------------------------------------------------------------ FaaS packages
    def create_package(self, body: Mapping[str, Any]) -> dict:
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise ApiError(400, "package 'name' is required")
        project_id = body.get("projectId")
        with self.lock:
            self._get("projects", project_id)
            for package in self.tables["packages"].values():
                if package["name"] == name and package["projectId"] == project_id:
                    raise ApiError(409, f"a package named {name!r} already exists in the project")
            package_id = self.ids.new()
            package = self._base("packages", package_id)
            package.update(
                {
                    "name": name,
                    "projectId": project_id,
                    "modules": clone(body.get("modules") or []),
                    "slots": clone(body.get("slots") or []),
                    "codebase": clone(body.get("codebase")),
                    "type": body.get("type", "faas"),
                    "version": body.get("version", "1.0.0"),
                    "metadata": clone(body.get("metadata") or {}),
                    "requirements": clone(body.get("requirements") or []),
                    "isGlobal": bool(body.get("isGlobal", False)),
                }
            )
            self.tables["packages"][package_id] = package
            return clone(package)

    def get_package(self, package_id: str) -> dict:
        return self.get("packages", package_id)

    def _require_package(self, package_id: Any) -> None:
        """A model's ``packageId`` names a published DPK or a FaaS package (take the lock first).

        Source: the REST API's model create body requires ``packageId`` (dtlpy
        ``repositories/models.py`` ``create`` always sends ``dpk.id``)."""
        if not isinstance(package_id, str) or not package_id:
            raise ApiError(400, "model 'packageId' is required: a model is created from a package (dpk)")
        if package_id not in self.tables["dpks"] and package_id not in self.tables["packages"]:
            raise ApiError(404, f"package not found: {package_id!r}")
