"""Periodic jobs (extra ``scheduler`` for the cron calendar): cron schedules, the leader lock, the
tick ledger and the scheduler that fires each tick once across replicas.

A room of its own because it is optional and has its own moving parts (an exclusive-queue lock, a
ticks queue); the bus core never imports it (``tests/test_architecture.py``). Importing it needs
no croniter until a schedule is parsed.
"""

from ._cron import CronSchedule, tick_id
from ._leader import LeaderLock
from ._scheduler import ScheduledJob, Scheduler, SchedulerStats, Tick
from ._tick_ledger import ClaimResult, MemoryTickLedger, SqlTickLedger, TickLedger

__all__ = [
    "ClaimResult",
    "CronSchedule",
    "LeaderLock",
    "MemoryTickLedger",
    "ScheduledJob",
    "Scheduler",
    "SchedulerStats",
    "SqlTickLedger",
    "Tick",
    "TickLedger",
    "tick_id",
]
