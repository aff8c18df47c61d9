"""The platform edge of Create New Model: :func:`run_node` and the dtlpy calls it makes.

``run_node`` validates every input and every base model field it reads
(:mod:`nodes.create_new_model.config`), returns the model a previous run of the same execution
created, checks that the train subset selects items, picks a free name
(:mod:`nodes.create_new_model.naming`), clones with the configuration and tags of
:mod:`nodes.create_new_model.plan`, keeps one model when runs of the execution overlap, and
gives the new model records of its own in one update. The base model and the pipeline
variables are never modified.
"""

from __future__ import annotations

import copy
import json
import logging
from datetime import datetime
from typing import Any

from nodes.common.context import node_config_from_context
from nodes.common.entities import check_entity_input
from nodes.common.limits import cut, shorten
from nodes.common.paging import build_entities, count_matches, offset_pages
from nodes.create_new_model.config import (
    CreateModelConfig,
    ResolvedSubsets,
    check_base_model,
    check_base_model_status,
    check_distinct_subsets,
    parse_model_configuration,
    resolve_subsets,
)
from nodes.create_new_model.naming import NAME_TEMPLATE_FIELD, NameValues, execution_time, numbered_names
from nodes.create_new_model.plan import (
    CREATED_BY_FIELD,
    build_clone_configuration,
    changed_keys,
    clone_tags,
    created_by,
    execution_tag,
    is_finished,
    kept_model_id,
    own_metadata,
)

logger = logging.getLogger(__name__)
#: The node's display name (``dataloop.json``), for messages.
NODE_NAME = "Create New Model"
#: Longest platform error quoted in a message.
_ERROR_CHARS = 300


def _error_text(error: BaseException) -> str:
    return shorten(str(error), _ERROR_CHARS)


def run_node(
    base_model: Any,
    dataset: Any,
    train_subset: Any = None,
    validation_subset: Any = None,
    model_configuration: Any = None,
    progress: Any = None,
    context: Any = None,
    now: datetime | None = None,
) -> tuple[Any, Any]:
    """Clone ``base_model`` into a new model version on ``dataset`` (the node's edge).

    Order: validate every input (``base_model`` a ``dl.Model`` and ``dataset`` a
    ``dl.Dataset``, template, base status, every base model field read, subsets,
    configuration bounds); return the model a previous run of the same execution
    created, if any (one models query); check that the train subset selects items (one count
    query); pick a free name (one models query; a name held by this execution's model returns
    that model); clone (status ``created``, the dataset's project, merged configuration, the
    resolved subsets, the execution tag); look for an overlapping run's clone (one models
    query; the newer duplicate deletes itself); give the new model records of its own (one
    update: ``createdBy``, no inherited ``activeLearning`` record or decision tag, exact
    subsets). Nothing is written before the clone.

    Parameters
    ----------
    base_model : dl.Model
        A trained, deployed or pre-trained model; never modified. It may belong to another
        project (a public pre-trained model): like dtlpy's ``Models.clone``, the new model is
        made in the dataset's project.
    dataset : dl.Dataset
        The dataset the new model trains on; its project holds the new model.
    train_subset, validation_subset : dict, optional
        DQL of the subsets; see :func:`resolve_subsets` for the fallbacks.
    model_configuration : dict, optional
        Keys deep-merged over the base configuration.
    progress : dl.Progress, optional
        Unused; the node has a single output.
    context : dl.Context, optional
        Gives the node config ``modelName`` and the execution id.
    now : datetime, optional
        The time the name template shows (default: the execution's ``createdAt`` when the
        context has it, else the local time now).

    Returns
    -------
    tuple
        ``(new_model, base_model)``.

    Examples
    --------
    >>> new_model, base = run_node(base_model=model, dataset=dataset,
    ...                            context=context)  # doctest: +SKIP
    """
    check_entity_input(base_model, "base_model", "model", NODE_NAME, "the model to clone")
    check_entity_input(dataset, "dataset", "dataset", NODE_NAME, "the dataset to train on")
    # Checks that need no request come first: a bad value is refused before the node reads anything.
    check_base_model_status(base_model.status)
    base = check_base_model(base_model.metadata, base_model.configuration, getattr(base_model, "tags", None))
    override = parse_model_configuration(model_configuration)
    subsets = resolve_subsets(train_subset, validation_subset, base.subsets)
    configuration = build_clone_configuration(base.configuration, override)
    config = CreateModelConfig.from_json(node_config_from_context(context))  # reads the pipeline node
    check_distinct_subsets(subsets, config.allow_same_subsets)
    execution_id = getattr(context, "execution_id", None) if context is not None else None
    record = created_by(execution_id, base_model.id)
    project = dataset.project

    existing = _find_created_model(project, execution_id)
    if existing is not None:
        existing = _finish_new_model(existing, record, subsets)
        logger.info(
            "execution %s already created model %r (%s) from %r; returning it without cloning",
            execution_id, existing.name, existing.id, base_model.name,
        )  # fmt: skip
        return existing, base_model

    _check_train_subset_has_items(dataset, subsets.train.query)
    values = NameValues(
        base_model_name=base_model.name,
        base_model_id=base_model.id,
        dataset_name=dataset.name,
        dataset_id=dataset.id,
        project_name=project.name,
    )
    if now is None:
        now = execution_time(getattr(context, "execution_dict", None)) or datetime.now().astimezone()
    name = config.render(values, now)
    tags = clone_tags(base.tags, execution_id)
    new_model, cloned = _clone_with_free_name(
        base_model, dataset, project, name, configuration, subsets, tags, execution_id
    )
    if cloned:
        new_model = _keep_one_model(project, execution_id, new_model)
    new_model = _finish_new_model(new_model, record, subsets)
    logger.info(
        "created model %r (%s) from %r (%s); subsets: %s; configuration keys changed: %s",
        new_model.name, new_model.id, base_model.name, base_model.id, subsets.sources(),
        ", ".join(changed_keys(base.configuration, configuration)) or "none",
    )  # fmt: skip
    return new_model, base_model


def _models_filter(project: Any, field: str, values: Any, operator: Any = None) -> Any:
    import dtlpy as dl

    filters = dl.Filters(resource=dl.FiltersResource.MODEL)
    filters.add(field="projectId", values=project.id)
    filters.add(field=field, values=values, operator=operator)
    return filters


def _list_models(project: Any, filters: Any) -> list[Any]:
    """Edge: the models ``filters`` matches, every page (the requests of ``project.models.list``).

    Unlike ``project.models.list``, a query the platform refuses raises ``RuntimeError`` naming
    it instead of reading as "no models" (``nodes.common.paging.offset_pages``).
    """
    return [model for page in offset_pages(project.models, filters) for model in build_entities(project.models, page)]


def _find_created_model(project: Any, execution_id: str | None) -> Any:
    """Edge: the model this execution already created (one models query), or ``None``."""
    if execution_id is None:
        logger.info("no execution id in the context; a retried run cannot be recognized and will clone again")
        return None
    found = _models_of_execution(project, execution_id)
    if len(found) > 1:
        logger.warning(
            "execution %s created %d models (%s); returning the oldest",
            execution_id, len(found), ", ".join(m.id for m in found),
        )  # fmt: skip
    if not found:
        return None
    kept = kept_model_id([(str(m.created_at), m.id) for m in found])
    return next(m for m in found if m.id == kept)


def _models_of_execution(project: Any, execution_id: str) -> list[Any]:
    filters = _models_filter(project, "tags", execution_tag(execution_id))
    try:
        return _list_models(project, filters)
    except Exception as error:
        raise RuntimeError(
            f"looking up the model created by execution {cut(execution_id, 100)} failed: {_error_text(error)}"
        ) from error


def _check_train_subset_has_items(dataset: Any, query: dict[str, Any]) -> None:
    """Edge: one count query; a train subset without items would train on nothing."""
    import dtlpy as dl

    count_query = copy.deepcopy(query)
    count_query["page"] = 0
    count_query["pageSize"] = 1
    try:
        # not items.list(...).items_count: dtlpy reads a refused (400) query as 0 items
        count = count_matches(dataset.items, dl.Filters(custom_filter=count_query))
    except Exception as error:
        raise RuntimeError(
            f"counting the train subset items of dataset {dataset.name!r} failed: {_error_text(error)}"
        ) from error
    if not count:
        raise ValueError(
            f"train_subset: {shorten(json.dumps(query['filter']))} matches no items in dataset {dataset.name!r} "
            f"({dataset.id}); tag items for training (Model Data Split) or pass a train_subset that selects items"
        )


def _clone_with_free_name(
    base_model: Any,
    dataset: Any,
    project: Any,
    name: str,
    configuration: dict[str, Any],
    subsets: ResolvedSubsets,
    tags: list[str],
    execution_id: str | None = None,
) -> tuple[Any, bool]:
    """Edge: clone under ``name`` or the first free ``name-N`` (one names query, then the clone).

    Returns ``(model, cloned)``: ``cloned`` is False when the model is this execution's own,
    made by an overlapping run (it holds one of the names, or took the name just before us).
    """
    import dtlpy as dl

    candidates = numbered_names(name)
    taken = _taken_names(project, candidates)
    ours = _ours(taken, execution_id)
    if ours is not None:
        logger.info("model %r (%s) of this execution already holds the name; using it", ours.name, ours.id)
        return ours, False
    for candidate in candidates:
        if candidate in taken:
            continue
        try:
            return _clone(base_model, dataset, project, candidate, configuration, subsets, tags), True
        except (dl.exceptions.BadRequest, dl.exceptions.Conflict) as error:
            # Our own clone may have gone through while its answer was lost (dtlpy then resends
            # and meets the name it just took), or an overlapping run of this execution took the
            # name first: either model carries this execution's tag.
            ours = _find_created_model(project, execution_id) if execution_id is not None else None
            if ours is not None:
                logger.info("model %r (%s) of this execution took the name first; using it", ours.name, ours.id)
                return ours, False
            # A model of that name may have appeared since the names query; anything else is fatal.
            if candidate not in _taken_names(project, [candidate]):
                raise RuntimeError(
                    f"cloning model {base_model.name!r} ({base_model.id}) as {candidate!r} was refused: "
                    f"{_error_text(error)}"
                ) from error
            logger.info("model name %r was taken meanwhile; trying the next one", candidate)
    raise ValueError(
        f"{NAME_TEMPLATE_FIELD}: the names {candidates[0]!r} to {candidates[-1]!r} are all taken in project "
        f"{project.name!r}; change the template (e.g. add {{now:%Y_%m_%d-T%H_%M_%S}}) or delete old versions"
    )


def _ours(taken: dict[str, Any], execution_id: str | None) -> Any:
    """The model among ``taken`` that carries this execution's tag, if any."""
    if execution_id is None:
        return None
    tag = execution_tag(execution_id)
    mine = [model for model in taken.values() if tag in (getattr(model, "tags", None) or [])]
    if not mine:
        return None
    kept = kept_model_id([(str(m.created_at), m.id) for m in mine])
    return next(m for m in mine if m.id == kept)


def _taken_names(project: Any, candidates: list[str]) -> dict[str, Any]:
    """Edge: the models holding any of ``candidates``, by name (one query)."""
    filters = _models_filter(project, "name", list(candidates), operator="in")
    try:
        return {model.name: model for model in _list_models(project, filters)}  # one page: at most MAX_NAME_TRIES
    except Exception as error:
        raise RuntimeError(
            f"looking up model names in project {project.name!r} failed: {_error_text(error)}"
        ) from error


def _keep_one_model(project: Any, execution_id: str | None, new_model: Any) -> Any:
    """Edge: after a clone, make sure this execution has exactly one model (one models query).

    Two overlapping runs of one execution can both clone when their names differ (no
    ``createdAt`` in the context and the clock ticked between them) or when the platform's name
    check is not atomic. Both list the execution's models after cloning and agree on the
    oldest (:func:`kept_model_id`); a run whose clone is not the oldest deletes it (a model it
    made seconds ago, never the base) and returns the oldest.
    """
    if execution_id is None:
        return new_model
    found = _models_of_execution(project, execution_id)
    if not any(model.id == new_model.id for model in found):
        found.append(new_model)  # a listing that does not show it yet
    kept = kept_model_id([(str(m.created_at), m.id) for m in found])
    if kept == new_model.id:
        return new_model
    other = next(m for m in found if m.id == kept)
    logger.info(
        "an overlapping run of execution %s created model %r (%s) first; deleting this run's clone %r (%s)",
        execution_id, other.name, other.id, new_model.name, new_model.id,
    )  # fmt: skip
    try:
        new_model.delete()
    except Exception as error:
        raise RuntimeError(
            f"execution {cut(execution_id, 100)} created two models, {other.name!r} ({other.id}) and "
            f"{new_model.name!r} ({new_model.id}); deleting the second failed: {_error_text(error)}; delete it by hand"
        ) from error
    return other


def _clone(
    base_model: Any,
    dataset: Any,
    project: Any,
    name: str,
    configuration: dict[str, Any],
    subsets: ResolvedSubsets,
    tags: list[str],
) -> Any:
    """Edge: one clone request. dtlpy edits the source entity's configuration in memory
    while cloning, so the request is made from a detached copy of the base model carrying
    the new configuration (the request then sends exactly ``configuration``)."""
    import dtlpy as dl

    source_json = copy.deepcopy(base_model.to_json())
    source_json["configuration"] = copy.deepcopy(configuration)
    # null reads as absent: dtlpy's clone reads metadata.system.annotationsSubsets with .get(key, {}),
    # which a stored null (not a missing key) breaks; the copy drops those nulls (the base is untouched)
    metadata = source_json.get("metadata")
    if isinstance(metadata, dict):
        if not isinstance(metadata.get("system"), dict):
            metadata["system"] = {}
        for key in ("subsets", "annotationsSubsets"):
            if metadata["system"].get(key, {}) is None:
                del metadata["system"][key]
    source = dl.Model.from_json(
        _json=source_json,
        client_api=base_model._client_api,
        project=base_model.project,
        package=base_model._package,
    )
    new_model = source.clone(
        model_name=name,
        project_id=project.id,
        dataset=dataset,
        configuration=copy.deepcopy(configuration),
        status="created",
        tags=list(tags),
        train_filter=dl.Filters(custom_filter=copy.deepcopy(subsets.train.query)),
        validation_filter=dl.Filters(custom_filter=copy.deepcopy(subsets.validation.query)),
    )
    if new_model is None:
        raise RuntimeError(f"cloning model {base_model.name!r} ({base_model.id}) as {name!r} returned nothing")
    return new_model


def _finish_new_model(new_model: Any, record: dict[str, Any], subsets: ResolvedSubsets) -> Any:
    """Edge: one update of the new model (ours to change), unless it is already finished.

    The platform's clone copies the base model's metadata, so the clone starts with the base's
    ``activeLearning`` records and decision tag; :func:`own_metadata` replaces them with this
    run's ``createdBy`` and sets the subsets exactly. A model whose ``createdBy`` is already
    this run's record (:func:`is_finished`) is left alone: later nodes may have written on it.
    """
    if is_finished(new_model.metadata, record):
        return new_model
    current = new_model.metadata if isinstance(new_model.metadata, dict) else {}
    queries = {name: getattr(subsets, name).query for name in ("train", "validation")}
    desired = own_metadata(current, record, queries)
    system_changed = desired.get("system") != current.get("system")
    logger.info(
        "giving model %r (%s) its own records; metadata changed: %s",
        new_model.name, new_model.id, ", ".join(changed_keys(current, desired)) or "none",
    )  # fmt: skip
    new_model.metadata = desired
    try:
        updated = new_model.update(system_metadata=system_changed)
    except Exception as error:
        raise RuntimeError(
            f"model {new_model.name!r} ({new_model.id}) was created but recording {CREATED_BY_FIELD} failed: "
            f"{_error_text(error)}; a retry of this execution finds the model by its execution tag and records it then"
        ) from error
    return updated if updated is not None else new_model
