"""The checks ``POST /app-registry`` makes on an app manifest (``dataloop.json``) before it
publishes a DPK: the top-level fields, the component keys, and that what components reference
exists (modules' compute configs, ``pipelineNodes`` ``invoke`` namespaces, panels, pod types).
Refused with 400 on the first problem, naming the field (assumption). Sources:
emulator/README.md, "Sources by module".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dtlpy.entities.service import InstanceCatalog

from emulator.store.base import ApiError

#: ``components`` keys of a manifest (dtlpy ``entities/dpk.py`` ``Components`` properties).
COMPONENT_KEYS = frozenset(
    {
        "panels",
        "modules",
        "services",
        "triggers",
        "pipelineNodes",
        "toolbars",
        "models",
        "computeConfigs",
        "channels",
        "pipelineTemplates",
        "integrations",
    }
)
#: ``runtime.podType`` values (dtlpy ``entities/service.py`` ``InstanceCatalog``).
POD_TYPES = frozenset(member.value for member in InstanceCatalog)
# Dataloop docs, "Manifest": the app name is lowercase letters, digits and hyphens; version semver
_NAME = re.compile(r"\A[a-z0-9][a-z0-9-]*\Z")
_SEMVER = re.compile(r"\A\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?\Z")


def _fail(field: str, problem: str) -> ApiError:
    return ApiError(400, f"invalid app manifest: {field}: {problem}")


def _named(entries: Any, field: str) -> dict[str, Mapping[str, Any]]:
    """A component list as ``{name: entry}``; 400 for a non-list, an unnamed or a repeated entry."""
    if entries is None:
        return {}
    if not isinstance(entries, list):
        raise _fail(field, "must be a list")
    named: dict[str, Mapping[str, Any]] = {}
    for position, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str) or not entry["name"]:
            raise _fail(f"{field}[{position}]", "needs a 'name'")
        if entry["name"] in named:
            raise _fail(f"{field}[{position}].name", f"{entry['name']!r} is repeated")
        named[entry["name"]] = entry
    return named


def _check_runtime(entry: Mapping[str, Any], field: str) -> None:
    runtime = entry.get("runtime")
    if runtime is None:
        return
    if not isinstance(runtime, Mapping):
        raise _fail(f"{field}.runtime", "must be an object")
    pod_type = runtime.get("podType")
    if pod_type is not None and pod_type not in POD_TYPES:
        raise _fail(f"{field}.runtime.podType", f"{pod_type!r} is not one of {sorted(POD_TYPES)}")
    for key in ("concurrency", "numReplicas"):
        if key in runtime and (not isinstance(runtime[key], int) or runtime[key] < 0):
            raise _fail(f"{field}.runtime.{key}", f"{runtime[key]!r} is not a non-negative integer")
    autoscaler = runtime.get("autoscaler")
    if isinstance(autoscaler, Mapping):
        low, high = autoscaler.get("minReplicas", 0), autoscaler.get("maxReplicas", 0)
        if isinstance(low, int) and isinstance(high, int) and low > high:
            raise _fail(f"{field}.runtime.autoscaler", f"minReplicas {low} > maxReplicas {high}")


def check_manifest(manifest: Any) -> None:
    """Refuse (400 naming the field) a manifest the platform would not publish.

    Example
    -------
    >>> check_manifest({"name": "app", "version": "1.0.0", "components": {}})
    >>> check_manifest({"name": "app", "version": "1.0.0", "components": {"widgets": []}})
    Traceback (most recent call last):
    ...
    emulator.store.base.ApiError: invalid app manifest: components.widgets: is not a component key; ...
    """
    if not isinstance(manifest, Mapping):
        raise _fail("manifest", "must be a JSON object")
    name = manifest.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _fail("name", f"{name!r} is not lowercase letters, digits and hyphens")
    version = manifest.get("version")
    if not isinstance(version, str) or not _SEMVER.match(version):
        raise _fail("version", f"{version!r} is not a semantic version like '1.0.0'")
    components = manifest.get("components") or {}
    if not isinstance(components, Mapping):
        raise _fail("components", "must be an object")
    for key in components:
        if key == "pipelines" and components[key] == []:
            # dtlpy entities/dpk.py: the default of ``pipelineNodes`` also writes ``components.pipelines: []``
            continue
        if key not in COMPONENT_KEYS:
            raise _fail(f"components.{key}", f"is not a component key; one of {sorted(COMPONENT_KEYS)}")
    compute = _named(components.get("computeConfigs"), "components.computeConfigs")
    for config_name, config in compute.items():
        _check_runtime(config, f"components.computeConfigs[{config_name}]")
    services = _named(components.get("services"), "components.services")
    for service_name, service in services.items():
        _check_runtime(service, f"components.services[{service_name}]")
    panels = _named(components.get("panels"), "components.panels")
    modules = _named(components.get("modules"), "components.modules")
    functions: dict[str, set[str]] = {}
    for module_name, module in modules.items():
        field = f"components.modules[{module_name}]"
        config_name = module.get("computeConfig")
        if config_name is not None and config_name not in compute:
            raise _fail(f"{field}.computeConfig", f"{config_name!r} is not a components.computeConfigs name")
        functions[module_name] = set(_named(module.get("functions"), f"{field}.functions"))
    for service_name, service in services.items():
        module_name = service.get("moduleName")
        if module_name is not None and module_name not in modules:
            raise _fail(f"components.services[{service_name}].moduleName", f"{module_name!r} is not a module")
        for panel in service.get("panelNames") or []:
            if panel not in panels:
                raise _fail(f"components.services[{service_name}].panelNames", f"{panel!r} is not a panel")
    for node_name, node in _named(components.get("pipelineNodes"), "components.pipelineNodes").items():
        field = f"components.pipelineNodes[{node_name}]"
        panel = node.get("panel")
        if panel is not None and panel not in panels:
            raise _fail(f"{field}.panel", f"{panel!r} is not a components.panels name")
        config_name = node.get("computeConfig")
        if config_name is not None and config_name not in compute:
            raise _fail(f"{field}.computeConfig", f"{config_name!r} is not a components.computeConfigs name")
        invoke = node.get("invoke")
        if not isinstance(invoke, Mapping):
            raise _fail(f"{field}.invoke", "needs {'type': 'function', 'namespace': '<service>.<module>.<function>'}")
        namespace = invoke.get("namespace")
        parts = namespace.split(".") if isinstance(namespace, str) else []
        if len(parts) != 3:
            raise _fail(f"{field}.invoke.namespace", f"{namespace!r} is not '<service>.<module>.<function>'")
        service_name, module_name, function_name = parts
        if service_name not in compute and service_name not in services:
            raise _fail(
                f"{field}.invoke.namespace", f"service {service_name!r} is not a compute config or service name"
            )
        if module_name not in modules:
            raise _fail(f"{field}.invoke.namespace", f"module {module_name!r} is not a components.modules name")
        if function_name not in functions[module_name]:
            raise _fail(
                f"{field}.invoke.namespace", f"function {function_name!r} is not a function of module {module_name!r}"
            )
