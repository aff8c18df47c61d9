"""Create New Model node: clone a trained base model into a new version ready to fine-tune.

The modules follow the data: ``config`` validates the node config and the inputs (subsets,
``model_configuration``, base model status), ``naming`` renders the ``modelName`` template
and finds a free name, ``plan`` decides the configuration, tags and creator record of the
clone, and ``node`` holds :func:`run_node`, the only part that talks to dtlpy.
"""

from nodes.create_new_model.config import (
    CLONEABLE_STATUSES,
    QUERY_KEYS,
    SUBSET_SOURCES,
    CreateModelConfig,
    ResolvedSubset,
    ResolvedSubsets,
    check_base_model_status,
    is_empty_subset,
    normalize_subset_query,
    parse_model_configuration,
    resolve_subsets,
)
from nodes.create_new_model.naming import (
    ALLOWED_PLACEHOLDERS,
    DEFAULT_NAME_TEMPLATE,
    MAX_NAME_LENGTH,
    MAX_NAME_TRIES,
    NAME_TEMPLATE_FIELD,
    NameValues,
    check_model_name,
    numbered_names,
    parse_name_template,
    render_model_name,
)
from nodes.create_new_model.node import node_config_from_context, run_node
from nodes.create_new_model.plan import (
    CREATED_BY_FIELD,
    EXECUTION_TAG_PREFIX,
    LABEL_MAP_KEYS,
    build_clone_configuration,
    changed_keys,
    clone_tags,
    created_by,
    deep_merge,
    execution_tag,
)

__all__ = [
    "ALLOWED_PLACEHOLDERS",
    "CLONEABLE_STATUSES",
    "CREATED_BY_FIELD",
    "DEFAULT_NAME_TEMPLATE",
    "EXECUTION_TAG_PREFIX",
    "LABEL_MAP_KEYS",
    "MAX_NAME_LENGTH",
    "MAX_NAME_TRIES",
    "NAME_TEMPLATE_FIELD",
    "QUERY_KEYS",
    "SUBSET_SOURCES",
    "CreateModelConfig",
    "NameValues",
    "ResolvedSubset",
    "ResolvedSubsets",
    "build_clone_configuration",
    "changed_keys",
    "check_base_model_status",
    "check_model_name",
    "clone_tags",
    "created_by",
    "deep_merge",
    "execution_tag",
    "is_empty_subset",
    "node_config_from_context",
    "normalize_subset_query",
    "numbered_names",
    "parse_model_configuration",
    "parse_name_template",
    "render_model_name",
    "resolve_subsets",
    "run_node",
]
