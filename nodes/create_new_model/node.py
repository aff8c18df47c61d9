"""The platform edge of Create New Model: :func:`run_node` and the dtlpy calls it makes.

``run_node`` validates every input (:mod:`nodes.create_new_model.config`), returns the model a
previous run of the same execution created, checks that the train subset selects items,
picks a free name (:mod:`nodes.create_new_model.naming`) and clones with the configuration
and tags of :mod:`nodes.create_new_model.plan`. The base model and the pipeline variables
are never modified.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from nodes.create_new_model.config import (
    CreateModelConfig,
    ResolvedSubsets,
    check_base_model_status,
    parse_model_configuration,
    resolve_subsets,
)
from nodes.create_new_model.naming import NAME_TEMPLATE_FIELD, NameValues, numbered_names
from nodes.create_new_model.plan import (
    CREATED_BY_FIELD,
    build_clone_configuration,
    changed_keys,
    clone_tags,
    created_by,
    execution_tag,
)

logger = logging.getLogger(__name__)


def node_config_from_context(context: Any) -> Any:
    """The node's ``customNodeConfig`` (edge: reads ``context.node``), ``None`` outside a pipeline.

    Examples
    --------
    >>> node_config_from_context(None) is None
    True
    """
    node = getattr(context, "node", None) if context is not None else None
    metadata = getattr(node, "metadata", None)
    return metadata.get("customNodeConfig") if isinstance(metadata, Mapping) else None


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

    Order: validate every input (template, base status, subsets, configuration); return the
    model a previous run of the same execution created, if any (one models query); check
    that the train subset selects items (one count query); pick a free name (one models
    query); clone (status ``created``, the dataset's project, merged configuration, the
    resolved subsets); record ``metadata.user.activeLearning.createdBy`` (one update, which
    also restores the exact subsets if the platform merged them with the base model's).

    Parameters
    ----------
    base_model : dl.Model
        A trained, deployed or pre-trained model; never modified.
    dataset : dl.Dataset
        The dataset the new model trains on.
    train_subset, validation_subset : dict, optional
        DQL of the subsets; see :func:`resolve_subsets` for the fallbacks.
    model_configuration : dict, optional
        Keys deep-merged over the base configuration.
    progress : dl.Progress, optional
        Unused; the node has a single output.
    context : dl.Context, optional
        Gives the node config ``modelName`` and the execution id.
    now : datetime, optional
        The time the name template shows (default: the local time now).

    Returns
    -------
    tuple
        ``(new_model, base_model)``.

    Examples
    --------
    >>> new_model, base = run_node(base_model=model, dataset=dataset,
    ...                            context=context)  # doctest: +SKIP
    """
    if base_model is None:
        raise ValueError("base_model: None is not a model; connect the model to clone to the node's base_model input")
    if dataset is None:
        raise ValueError("dataset: None is not a dataset; connect the dataset to train on to the node's dataset input")
    config = CreateModelConfig.from_json(node_config_from_context(context))
    check_base_model_status(base_model.status)
    base_system = (base_model.metadata or {}).get("system") or {}
    subsets = resolve_subsets(train_subset, validation_subset, base_system.get("subsets"))
    override = parse_model_configuration(model_configuration)
    base_configuration = copy.deepcopy(base_model.configuration or {})
    configuration = build_clone_configuration(base_configuration, override)
    execution_id = getattr(context, "execution_id", None) if context is not None else None
    project = dataset.project

    existing = _find_created_model(project, execution_id)
    if existing is not None:
        record = ((existing.metadata or {}).get("user") or {}).get("activeLearning", {}).get("createdBy")
        if record is None:  # the clone went through but its createdBy update did not: finish it now
            existing = _finish_new_model(existing, created_by(execution_id, base_model.id), subsets)
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
    name = config.render(values, now if now is not None else datetime.now().astimezone())
    tags = clone_tags(getattr(base_model, "tags", None), execution_id)
    new_model = _clone_with_free_name(base_model, dataset, project, name, configuration, subsets, tags, execution_id)
    new_model = _finish_new_model(new_model, created_by(execution_id, base_model.id), subsets)
    logger.info(
        "created model %r (%s) from %r (%s); subsets: %s; configuration keys changed: %s",
        new_model.name, new_model.id, base_model.name, base_model.id, subsets.sources(),
        ", ".join(changed_keys(base_configuration, configuration)) or "none",
    )  # fmt: skip
    return new_model, base_model


def _models_filter(project: Any, field: str, values: Any, operator: Any = None) -> Any:
    import dtlpy as dl

    filters = dl.Filters(resource=dl.FiltersResource.MODEL)
    filters.add(field="projectId", values=project.id)
    filters.add(field=field, values=values, operator=operator)
    return filters


def _find_created_model(project: Any, execution_id: str | None) -> Any:
    """Edge: the model this execution already created (one models query), or ``None``."""
    if execution_id is None:
        logger.info("no execution id in the context; a retried run cannot be recognized and will clone again")
        return None
    filters = _models_filter(project, "tags", execution_tag(execution_id))
    try:
        found = list(project.models.list(filters=filters).items)
    except Exception as error:
        raise RuntimeError(f"looking up the model created by execution {execution_id} failed: {error}") from error
    if len(found) > 1:
        logger.warning(
            "execution %s created %d models (%s); returning the oldest",
            execution_id, len(found), ", ".join(m.id for m in found),
        )  # fmt: skip
    return min(found, key=lambda m: (str(m.created_at), m.id)) if found else None


def _check_train_subset_has_items(dataset: Any, query: dict[str, Any]) -> None:
    """Edge: one count query; a train subset without items would train on nothing."""
    import dtlpy as dl

    count_query = copy.deepcopy(query)
    count_query["page"] = 0
    count_query["pageSize"] = 1
    try:
        count = dataset.items.list(filters=dl.Filters(custom_filter=count_query)).items_count
    except Exception as error:
        raise RuntimeError(f"counting the train subset items of dataset {dataset.name!r} failed: {error}") from error
    if not count:
        raise ValueError(
            f"train_subset: {json.dumps(query['filter'])} matches no items in dataset {dataset.name!r} "
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
) -> Any:
    """Edge: clone under ``name`` or the first free ``name-N`` (one names query, then the clone)."""
    import dtlpy as dl

    candidates = numbered_names(name)
    taken = _taken_names(project, candidates)
    for candidate in candidates:
        if candidate in taken:
            continue
        try:
            return _clone(base_model, dataset, project, candidate, configuration, subsets, tags)
        except (dl.exceptions.BadRequest, dl.exceptions.Conflict) as error:
            # Our own clone may have gone through while its answer was lost (dtlpy then resends
            # and meets the name it just took): that model carries this execution's tag.
            ours = _find_created_model(project, execution_id) if execution_id is not None else None
            if ours is not None:
                logger.info("the clone %r (%s) went through before the error; using it", ours.name, ours.id)
                return ours
            # A model of that name may have appeared since the names query; anything else is fatal.
            if candidate not in _taken_names(project, [candidate]):
                raise RuntimeError(
                    f"cloning model {base_model.name!r} ({base_model.id}) as {candidate!r} was refused: {error}"
                ) from error
            logger.info("model name %r was taken meanwhile; trying the next one", candidate)
    raise ValueError(
        f"{NAME_TEMPLATE_FIELD}: the names {candidates[0]!r} to {candidates[-1]!r} are all taken in project "
        f"{project.name!r}; change the template (e.g. add {{now:%Y_%m_%d-T%H_%M_%S}}) or delete old versions"
    )


def _taken_names(project: Any, candidates: list[str]) -> set[str]:
    filters = _models_filter(project, "name", list(candidates), operator="in")
    try:
        page = project.models.list(filters=filters)  # at most MAX_NAME_TRIES models: one page
        return {model.name for model in page.items}
    except Exception as error:
        raise RuntimeError(f"looking up model names in project {project.name!r} failed: {error}") from error


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
    while cloning, so the request is made from a detached copy of the base model."""
    import dtlpy as dl

    source = dl.Model.from_json(
        _json=copy.deepcopy(base_model.to_json()),
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
    """Edge: one update of the new model (ours to change): record its creator and make sure
    its subsets are exactly the resolved queries (a clone may merge them with the source's)."""
    metadata = new_model.metadata if isinstance(new_model.metadata, dict) else {}
    metadata.setdefault("user", {}).setdefault("activeLearning", {})["createdBy"] = record
    stored = metadata.setdefault("system", {}).setdefault("subsets", {})
    fix_subsets = any(stored.get(name) != getattr(subsets, name).query for name in ("train", "validation"))
    if fix_subsets:
        logger.info("the clone of %r did not keep the subsets as sent; setting them exactly", new_model.name)
        for name in ("train", "validation"):
            stored[name] = copy.deepcopy(getattr(subsets, name).query)
    new_model.metadata = metadata
    try:
        updated = new_model.update(system_metadata=fix_subsets)
    except Exception as error:
        raise RuntimeError(
            f"model {new_model.name!r} ({new_model.id}) was created but recording {CREATED_BY_FIELD} failed: {error}; "
            "a retry of this execution finds the model by its execution tag and records it then"
        ) from error
    return updated if updated is not None else new_model
