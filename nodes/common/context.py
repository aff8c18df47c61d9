"""What a node reads from its execution's context: its config and the execution id.

The platform stores a custom node's config under ``customNodeConfig`` of the node's metadata;
``dl.Context.node`` resolves the pipeline (``GET /pipelines/{id}``) on first access. Outside a
pipeline there is no config and each node falls back to its defaults.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

#: Where the platform keeps a custom pipeline node's config, in the node's metadata.
CONFIG_FIELD = "customNodeConfig"

__all__ = ["CONFIG_FIELD", "execution_id_of", "node_config_from_context"]


def node_config_from_context(
    context: Any, log: logging.Logger | None = None, defaults: str = "the default node config"
) -> Any:
    """EDGE. The running node's raw ``customNodeConfig``, or ``None`` outside a pipeline.

    Parameters
    ----------
    context : dl.Context or None
        The execution's context; ``context.node`` is the pipeline node (``None`` outside a
        pipeline).
    log : logging.Logger, optional
        The node's logger; when given, running outside a pipeline is logged there (INFO), naming
        ``defaults``. Without it nothing is logged.
    defaults : str
        What the node uses instead, for that log line (e.g. ``"the panel defaults"``).

    Returns
    -------
    object or None
        ``context.node.metadata["customNodeConfig"]`` as stored (not validated, not copied), or
        ``None`` when there is no context, no node, no metadata object or no config.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> node_config_from_context(None) is None
    True
    >>> node_config_from_context(SimpleNamespace(node=None)) is None
    True
    >>> node_config_from_context(SimpleNamespace(node=SimpleNamespace(metadata={"customNodeConfig": {"seed": 3}})))
    {'seed': 3}
    """
    if context is None:
        if log is not None:
            log.info("no context (running outside a pipeline): using %s", defaults)
        return None
    node = getattr(context, "node", None)
    if node is None:
        if log is not None:
            log.info("context has no pipeline node (running outside a pipeline): using %s", defaults)
        return None
    metadata = getattr(node, "metadata", None)
    return metadata.get(CONFIG_FIELD) if isinstance(metadata, Mapping) else None


def execution_id_of(context: Any) -> str | None:
    """The execution id of ``context`` as a string, or ``None`` (no context, or none set).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> execution_id_of(SimpleNamespace(execution_id="65f0")), execution_id_of(None)
    ('65f0', None)
    """
    value = getattr(context, "execution_id", None) if context is not None else None
    return str(value) if value else None
