"""In-memory state of the local platform, one module per resource, as the JSON documents the
Dataloop REST API returns: projects, datasets, recipes and ontologies, items (and their bytes),
annotations, models, metrics, pipelines and executions, apps (DPKs, installed apps, packages,
commands), annotation tasks and feature sets / vectors, plus the DQL queries over them (``queries``).

:class:`Store` composes the resource mixins over the shared state of :mod:`.base`. One
re-entrant lock guards everything, so the threaded HTTP server (``emulator/server.py``) can
serve many dtlpy clients at once without lost updates. Errors are :class:`ApiError` (HTTP
status and message), raised before anything is changed.
"""

from emulator.store.annotations import AnnotationsMixin
from emulator.store.apps import AppsMixin
from emulator.store.base import ApiError, IdFactory, clone, deep_merge, guess_mimetype, now_iso
from emulator.store.clones import ClonesMixin
from emulator.store.datasets import DatasetsMixin
from emulator.store.features import FeaturesMixin
from emulator.store.items import ItemsMixin
from emulator.store.metrics import MetricsMixin
from emulator.store.models import ModelOperationsMixin, ModelsMixin
from emulator.store.pipelines import PipelinesMixin
from emulator.store.projects import ProjectsMixin
from emulator.store.queries import QueriesMixin
from emulator.store.recipes import RecipesMixin
from emulator.store.services import ServicesMixin
from emulator.store.tasks import TasksMixin


class Store(
    ServicesMixin,
    ProjectsMixin,
    DatasetsMixin,
    RecipesMixin,
    ItemsMixin,
    AnnotationsMixin,
    ModelsMixin,
    ModelOperationsMixin,
    MetricsMixin,
    PipelinesMixin,
    AppsMixin,
    TasksMixin,
    FeaturesMixin,
    ClonesMixin,
    QueriesMixin,
):
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


__all__ = ["ApiError", "IdFactory", "Store", "clone", "deep_merge", "guess_mimetype", "now_iso"]
