"""The code a service runs: the codebase its app (DPK) or package holds — the zip dtlpy packed
and uploaded at publish (``codebases.pack`` uploads it as an item of the project's ``Binaries``
dataset and the manifest names it in ``codebase: {type: "item", itemId}``) — unpacked into the
service's own folder; and the manifest's module and function definitions the runner needs.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Mapping
from typing import Any

from emulator.store.base import ApiError


def unpack_zip(data: bytes, target: str) -> list[str]:
    """Extract a codebase zip into ``target``; a member that would land outside it is refused.

    Example
    -------
    >>> import tempfile
    >>> buffer = io.BytesIO()
    >>> with zipfile.ZipFile(buffer, "w") as z:
    ...     z.writestr("main.py", "x = 1")
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     unpack_zip(buffer.getvalue(), folder)
    ['main.py']
    """
    root = os.path.realpath(target)
    names = []
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise ApiError(400, "the codebase is not a zip file") from None
    with archive:
        for member in archive.infolist():
            destination = os.path.realpath(os.path.join(root, member.filename))
            if destination != root and not destination.startswith(root + os.sep):
                raise ApiError(400, f"codebase member {member.filename!r} would unpack outside the service folder")
            names.append(member.filename)
        archive.extractall(root)
    return names


def codebase_item_id(owner: Mapping[str, Any], what: str) -> str:
    """The item id of an app's / package's ``codebase`` (``{"type": "item", "itemId": ...}``)."""
    codebase = owner.get("codebase")
    if not isinstance(codebase, Mapping) or codebase.get("type") != "item" or not codebase.get("itemId"):
        raise ApiError(
            400,
            f"{what} has no codebase to run (codebase {codebase!r}); publish it with dtlpy, which packs the "
            "code (dpks.publish / packages.push)",
        )
    return str(codebase["itemId"])


def find_module(owner: Mapping[str, Any], module_name: str | None, what: str) -> dict:
    """The module definition (``name``, ``entryPoint``, ``className``, ``initInputs``,
    ``functions``) of a DPK (``components.modules``) or a FaaS package (``modules``).

    Example
    -------
    >>> find_module({"components": {"modules": [{"name": "m", "functions": []}]}}, "m", "app")["name"]
    'm'
    """
    modules = (owner.get("components") or {}).get("modules")
    if modules is None:
        modules = owner.get("modules") or []
    for module in modules:
        if isinstance(module, Mapping) and (module_name is None or module.get("name") == module_name):
            found = dict(module)
            found.setdefault("entryPoint", "main.py")
            found.setdefault("className", "ServiceRunner")
            found.setdefault("initInputs", [])
            found.setdefault("functions", [])
            return found
    names = [m.get("name") for m in modules if isinstance(m, Mapping)]
    raise ApiError(404, f"{what} has no module {module_name!r}; its modules: {names}")


def find_function(module: Mapping[str, Any], function_name: str) -> dict:
    """A module's function definition by name, or an empty one (inputs passed as they are)."""
    for function in module.get("functions") or []:
        if isinstance(function, Mapping) and function.get("name") == function_name:
            return dict(function)
    return {"name": function_name, "input": [], "output": []}


def compute_config(dpk: Mapping[str, Any], module: Mapping[str, Any]) -> dict:
    """The compute config a module's service runs with (``components.computeConfigs`` entry the
    module names; dtlpy ``entities/dpk.py`` ``DpkComputeConfig``), ``{}`` when none."""
    name = module.get("computeConfig")
    for config in (dpk.get("components") or {}).get("computeConfigs") or []:
        if isinstance(config, Mapping) and config.get("name") == name:
            return dict(config)
    return {}


def service_name_of(module: Mapping[str, Any]) -> str:
    """The name of the service an app module runs in: its compute config's name (what pipeline
    nodes name in ``namespace.serviceName``, e.g. ``select-for-labeling``), else the module name
    in lowercase with ``_`` → ``-`` (assumption).

    Example
    -------
    >>> service_name_of({"name": "model_data_split"}), service_name_of({"name": "m", "computeConfig": "c-1"})
    ('model-data-split', 'c-1')
    """
    name = module.get("computeConfig") or module.get("name") or "default-module"
    return str(name).lower().replace("_", "-")
