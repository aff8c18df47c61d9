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
    command,
    create,
    create_annotations,
    create_command,
    create_many,
    delete,
    dpk_by_name,
    item_stream,
    list_dataset_items,
    list_datasets,
    list_projects,
    me,
    not_implemented,
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
    ("POST", "/datasets/{id}/clone", command(Store.clone_dataset)),
    ("POST", "/datasets/{id}/export", command(Store.export_dataset)),
    ("GET", "/datasets/{id}/items", list_dataset_items),
    ("POST", "/ontologies", create(Store.create_ontology)),
    ("GET", "/ontologies/{id}", read(Store.get_ontology)),
    ("PUT", "/ontologies/{id}", write(Store.update_ontology)),
    ("PATCH", "/ontologies/{id}/labels", write(Store.upsert_labels)),
    ("PATCH", "/ontologies/{id}/addLabels", write(Store.add_labels)),
    ("POST", "/recipes", create(Store.create_recipe)),
    ("GET", "/recipes/{id}", read(Store.get_recipe)),
    ("PATCH", "/recipes/{id}", write(Store.patch_recipe)),
    ("GET", "/items/{id}", read(Store.get_item)),
    ("PATCH", "/items/{id}", write(Store.patch_item, system=True)),
    ("DELETE", "/items/{id}", delete(Store.delete_item)),
    ("GET", "/items/{id}/stream", item_stream),
    ("POST", "/items/{id}/clone", command(Store.clone_item)),
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
    ("POST", "/ml/models/{id}/deploy", write(Store.deploy_model)),
    ("POST", "/ml/models/{id}/train", write(Store.train_model)),
    ("POST", "/ml/models/{id}/evaluate", write(Store.evaluate_model)),
    ("POST", "/ml/models/{id}/predict", write(Store.predict_model)),
    ("POST", "/ml/models/{id}/embed", write(Store.embed_model)),
    ("POST", "/ml/metrics/publish", publish_metrics),
    ("POST", "/ml/metrics/query", query(Store.query_metrics)),
    ("POST", "/pipelines", create(Store.create_pipeline)),
    ("POST", "/pipelines/query", query(Store.query_pipelines)),
    ("GET", "/pipelines/{id}", read(Store.get_pipeline)),
    ("PATCH", "/pipelines/{id}", write(Store.patch_pipeline)),
    ("DELETE", "/pipelines/{id}", delete(Store.delete_pipeline)),
    ("POST", "/pipelines/{id}/install", write(Store.install_pipeline)),
    ("POST", "/pipelines/{id}/uninstall", write(Store.uninstall_pipeline)),
    ("POST", "/pipelines/{id}/execute", write(Store.execute_pipeline)),
    ("POST", "/pipelines/{id}/reset", write(Store.reset_pipeline)),
    ("GET", "/pipelines/{id}/statistics", read(Store.pipeline_statistics)),
    ("GET", "/pipelines/{pipeline}/executions/{id}", read(Store.get_pipeline_execution)),
    ("POST", "/pipelines/{id}/executions/rerun", not_implemented),
    ("GET", "/compositions/{id}", read(Store.get_composition)),
    ("POST", "/assignments/items/tasks/{id}/status", write(Store.set_item_status)),
    ("PATCH", "/pipelines/{id}/variables", write(Store.patch_pipeline_variables)),
    ("GET", "/executions/{id}", read(Store.get_execution)),
    ("POST", "/query/faas", query(Store.query_faas)),
    ("POST", "/executions/rerun", not_implemented),
    ("POST", "/executions/{id}", write(Store.execute)),  # {id}: the service
    ("PATCH", "/executions/{id}", not_implemented),
    ("POST", "/executions/{id}/rerun", write(Store.rerun_execution)),
    ("POST", "/executions/{id}/terminate", write(Store.terminate_execution)),
    ("POST", "/executions/{id}/progress", not_implemented),
    ("POST", "/executions/{id}/attempts", not_implemented),
    ("GET", "/piper-misc/naming/packages/{id}", read(Store.check_package_name)),
    ("POST", "/services", create(Store.create_service)),
    ("POST", "/services/logs", query(Store.service_logs)),
    ("GET", "/services/{id}", read(Store.get_service)),
    ("PATCH", "/services/{id}", write(Store.patch_service)),
    ("DELETE", "/services/{id}", delete(Store.delete_service)),
    ("GET", "/commands/{id}", read(Store.get_command)),
    ("POST", "/app-registry", create(Store.publish_dpk)),
    ("POST", "/app-registry/query", query(Store.query_dpks)),
    ("GET", "/app-registry/{id:path}/name", dpk_by_name),
    ("GET", "/app-registry/{id}", read(Store.get_dpk)),
    ("DELETE", "/app-registry/{id}", delete(Store.delete_dpk)),
    ("PATCH", "/app-registry/{id}", not_implemented),
    ("POST", "/apps", create(Store.install_app)),
    ("POST", "/apps/query", query(Store.query_apps)),
    ("GET", "/apps/{id}", read(Store.get_app)),
    ("DELETE", "/apps/{id}", delete(Store.uninstall_app)),
    ("PUT", "/apps/{id}", not_implemented),
    ("POST", "/packages", create(Store.create_package)),
    ("GET", "/packages/{id}", read(Store.get_package)),
    ("POST", "/annotationtasks", create_command(Store.create_task)),
    ("POST", "/annotationtasks/query", query(Store.query_tasks)),
    ("GET", "/annotationtasks/{id}", read(Store.get_task)),
    ("DELETE", "/annotationtasks/{id}", delete(Store.delete_task)),
    ("POST", "/annotationtasks/{id}/addToTask", command(Store.add_to_task)),
    ("POST", "/annotationtasks/{id}/removeFromTask", not_implemented),
    ("POST", "/features/sets", create(Store.create_feature_set)),
    ("POST", "/features/sets/query", query(Store.query_feature_sets)),
    ("GET", "/features/sets/{id}", read(Store.get_feature_set)),
    ("DELETE", "/features/sets/{id}", delete(Store.delete_feature_set)),
    ("POST", "/features/vectors", create_many(Store.create_features)),
    ("POST", "/features/vectors/query", query(Store.query_features)),
    ("GET", "/features/vectors/{id}", read(Store.get_feature)),
    ("DELETE", "/features/vectors/{id}", delete(Store.delete_feature)),
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
