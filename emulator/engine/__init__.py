"""The runtime of the local platform: services run executions in worker processes, models run
their adapters, pipelines run cycles. ``store.engine`` is the :class:`Engine` of a store (made
with it; ``LocalPlatform`` starts and stops it). The API (``submit``, ``run_model_operation``,
``ensure_module_service``, ``wait_idle``...) is in :class:`Engine`'s docstring; the rules,
sources and assumptions in emulator/README.md, "Services, executions, models".
"""

import emulator.store  # noqa: F401 - first: the store's modules import engine helpers (no cycle)
from emulator.engine.services import Engine

__all__ = ["Engine"]
