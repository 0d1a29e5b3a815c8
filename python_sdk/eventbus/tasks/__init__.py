"""Tasks: typed functions as commands on the bus (``@bus.task``), and their contracts for export.

``EventBus.task`` (and ``SyncEventBus.task``) make the ``Task``; ``task_documents`` turns the
tasks of a bus into contract files (``eventbus contracts export``). See docs/workflows.md.
"""

from ._export import task_documents
from ._signature import TASKS_EXCHANGE, task_contract, task_type
from ._task import SyncTask, Task

__all__ = ["TASKS_EXCHANGE", "SyncTask", "Task", "task_contract", "task_documents", "task_type"]
