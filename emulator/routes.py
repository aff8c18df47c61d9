"""The route table of the emulator's REST API (paths under ``/api/v1``): one row per endpoint,
``(method, path pattern, handler)``, tried in order. In a pattern ``{id}`` matches one path
segment and ``{id:path}`` any text, slashes included (a project name). The pattern without
its converters (``/projects/{id}/name``) is the route template requests are counted by.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from emulator.responses import (
    Handler,
    create,
    create_annotations,
    delete,
    item_stream,
    list_dataset_items,
    list_datasets,
    list_projects,
    me,
    project_by_name,
    publish_metrics,
    query,
    query_dataset,
    read,
    upload_item,
    write,
)
from emulator.store import Store

ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", "/projects", create(Store.create_project)),
    ("GET", "/projects", list_projects),
    ("GET", "/projects/{id:path}/name", project_by_name),
    ("GET", "/projects/{id}", read(Store.get_project)),
    ("DELETE", "/projects/{id}", delete(Store.delete_project)),
    ("POST", "/datasets", create(Store.create_dataset)),
    ("GET", "/datasets", list_datasets),
    ("POST", "/datasets/query", query(Store.query_datasets)),
    ("GET", "/datasets/{id}", read(Store.get_dataset)),
    ("PATCH", "/datasets/{id}", write(Store.patch_dataset, system=True)),
    ("DELETE", "/datasets/{id}", delete(Store.delete_dataset)),
    ("POST", "/datasets/{id}/query", query_dataset),
    ("POST", "/datasets/{id}/items", upload_item),
    ("GET", "/datasets/{id}/items", list_dataset_items),
    ("POST", "/ontologies", create(Store.create_ontology)),
    ("GET", "/ontologies/{id}", read(Store.get_ontology)),
    ("PUT", "/ontologies/{id}", write(Store.update_ontology)),
    ("POST", "/recipes", create(Store.create_recipe)),
    ("GET", "/recipes/{id}", read(Store.get_recipe)),
    ("PATCH", "/recipes/{id}", write(Store.patch_recipe)),
    ("GET", "/items/{id}", read(Store.get_item)),
    ("PATCH", "/items/{id}", write(Store.patch_item, system=True)),
    ("DELETE", "/items/{id}", delete(Store.delete_item)),
    ("GET", "/items/{id}/stream", item_stream),
    ("POST", "/items/{id}/annotations", create_annotations),
    ("GET", "/items/{id}/annotations", read(Store.list_item_annotations)),
    ("GET", "/annotations/{id}", read(Store.get_annotation)),
    ("PUT", "/annotations/{id}", write(Store.update_annotation, system=True)),
    ("DELETE", "/annotations/{id}", delete(Store.delete_annotation)),
    ("POST", "/ml/models", create(Store.create_model)),
    ("POST", "/ml/models/query", query(Store.query_models)),
    ("GET", "/ml/models/{id}", read(Store.get_model)),
    ("PATCH", "/ml/models/{id}", write(Store.patch_model, system=True)),
    ("DELETE", "/ml/models/{id}", delete(Store.delete_model)),
    ("POST", "/ml/models/{id}/clone", write(Store.clone_model)),
    ("POST", "/ml/metrics/publish", publish_metrics),
    ("POST", "/ml/metrics/query", query(Store.query_metrics)),
    ("GET", "/pipelines/{id}", read(Store.get_pipeline)),
    ("GET", "/users/me", me),
]

_PLACEHOLDER = re.compile(r"\{(\w+)(?::(\w+))?\}")
_CONVERTERS = {None: "[^/?#]+", "path": ".+"}


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    regex: re.Pattern[str]
    handler: Handler


def compile_route(method: str, pattern: str, handler: Handler) -> Route:
    """A table row as a :class:`Route`: its template and its anchored regex.

    Example
    -------
    >>> route = compile_route("GET", "/projects/{id:path}/name", None)
    >>> route.template, route.regex.match("/projects/a/b/name")["id"]
    ('/projects/{id}/name', 'a/b')
    """
    regex, template, position = "", "", 0
    for found in _PLACEHOLDER.finditer(pattern):
        name, converter = found.groups()
        if converter not in _CONVERTERS:
            raise ValueError(f"route {pattern!r}: unknown converter {converter!r}; one of {{id}}, {{id:path}}")
        literal = pattern[position : found.start()]
        regex += re.escape(literal) + f"(?P<{name}>{_CONVERTERS[converter]})"
        template += literal + "{" + name + "}"
        position = found.end()
    regex += re.escape(pattern[position:])
    template += pattern[position:]
    return Route(method, template, re.compile(regex + r"\Z"), handler)


class Router:
    """The compiled route table: finds the route of a method and path."""

    def __init__(self, table: list[tuple[str, str, Handler]] = ROUTES) -> None:
        self.routes = [compile_route(*row) for row in table]

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
