"""Cron schedules, tick ids and the missed-tick policy, with no I/O (croniter does the calendar).

A *tick* is one scheduled run of one job. Its id is ``job:<name>:<scheduled time in UTC>``, a
pure function of the job and the schedule, so every replica, and a new leader after a failover,
names the same tick the same way and a tick fired twice is recognised as one.

Missed ticks (no leader at the scheduled time: all replicas down, a failover in progress, the
leader's event loop stalled) are *coalesced*: when a leader takes over, or wakes up late, it fires
the most recent scheduled time only, and only if it is no older than the job's ``misfire_grace``;
older ones are skipped and logged. Running a job once for several missed periods is what
periodic maintenance jobs want (a recompute "as of now" covers the periods it missed), and the
grace keeps a replica that starts hours later from running a job whose moment has passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .._envelope import format_time
from .._exceptions import ConfigurationError

try:
    from croniter import croniter  # type: ignore[import-untyped]  # (no stubs in the package)
except ImportError:  # pragma: no cover - exercised only without the extra
    croniter = None

__all__ = ["CronSchedule", "due_tick", "tick_id"]

_EPSILON = timedelta(microseconds=1)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            f"unknown time zone {name!r} (use an IANA name such as UTC or Europe/Berlin)"
        ) from None


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A cron expression read in a time zone.

    Five fields (minute hour day month weekday) as in crontab; a sixth field gives seconds
    (``* * * * * */5`` is every five seconds), which tests use. ``0 0 * * *`` in
    ``Europe/Berlin`` fires at local midnight, across daylight-saving changes.
    """

    expression: str
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if croniter is None:  # pragma: no cover
            raise ImportError("the scheduler needs croniter: pip install 'eventbus[scheduler]'")
        if not croniter.is_valid(self.expression):
            raise ConfigurationError(f"not a cron expression: {self.expression!r} (e.g. '0 */6 * * *')")
        _zone(self.timezone)

    def _local(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            raise ValueError("schedule times must be timezone-aware")
        return moment.astimezone(_zone(self.timezone))

    def next_after(self, moment: datetime) -> datetime:
        """The first scheduled time strictly after ``moment``, in UTC."""
        found = croniter(self.expression, self._local(moment)).get_next(datetime)
        return found.astimezone(UTC)

    def latest_at_or_before(self, moment: datetime) -> datetime:
        """The last scheduled time at or before ``moment``, in UTC."""
        found = croniter(self.expression, self._local(moment + _EPSILON)).get_prev(datetime)
        return found.astimezone(UTC)


def tick_id(job: str, scheduled_at: datetime) -> str:
    """``job:<name>:<scheduled time>``, the same on every replica for the same tick."""
    return f"job:{job}:{format_time(scheduled_at.astimezone(UTC))}"


def due_tick(
    schedule: CronSchedule,
    now: datetime,
    *,
    last_fired: datetime | None,
    misfire_grace: timedelta | None,
) -> datetime | None:
    """The tick to fire now under the coalescing policy, or None.

    That is the latest scheduled time at or before ``now`` if it is later than ``last_fired``
    and no older than ``misfire_grace`` (None: any age). Earlier missed ticks are coalesced
    into it.
    """
    latest = schedule.latest_at_or_before(now)
    if last_fired is not None and latest <= last_fired:
        return None
    if misfire_grace is not None and now - latest > misfire_grace:
        return None
    return latest
