"""Cron schedules, tick ids and the coalescing missed-tick policy, without a broker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from eventbus import ConfigurationError, CronSchedule, tick_id
from eventbus.scheduler._cron import due_tick

T = datetime(2026, 11, 25, 13, 30, tzinfo=UTC)


def test_every_six_hours_and_daily_midnight_in_utc() -> None:
    six = CronSchedule("0 */6 * * *")
    assert six.next_after(T) == datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
    assert six.latest_at_or_before(T) == datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    midnight = CronSchedule("0 0 * * *")
    assert midnight.next_after(T) == datetime(2026, 11, 26, tzinfo=UTC)
    exact = datetime(2026, 11, 26, tzinfo=UTC)
    assert midnight.latest_at_or_before(exact) == exact  # "at or before" includes the moment itself
    assert midnight.next_after(exact) == datetime(2026, 11, 27, tzinfo=UTC)


def test_time_zones_follow_local_midnight_across_dst() -> None:
    berlin = CronSchedule("0 0 * * *", "Europe/Berlin")
    # 2026-03-29: Berlin moves from UTC+1 to UTC+2
    assert berlin.next_after(datetime(2026, 3, 28, 12, tzinfo=UTC)) == datetime(2026, 3, 28, 23, tzinfo=UTC)
    assert berlin.next_after(datetime(2026, 3, 29, 12, tzinfo=UTC)) == datetime(2026, 3, 29, 22, tzinfo=UTC)


def test_seconds_field_for_fast_schedules() -> None:
    every_two = CronSchedule("* * * * * */2")
    assert every_two.next_after(T) == T + timedelta(seconds=2)


def test_tick_ids_name_the_job_and_the_scheduled_time_in_utc() -> None:
    assert tick_id("decay-recompute", datetime(2026, 11, 26, tzinfo=UTC)) == "job:decay-recompute:2026-11-26T00:00:00Z"
    berlin_midnight = datetime(2026, 11, 26, tzinfo=ZoneInfo("Europe/Berlin"))
    assert tick_id("x", berlin_midnight) == "job:x:2026-11-25T23:00:00Z"


def test_missed_ticks_coalesce_into_the_latest_within_the_grace() -> None:
    hourly = CronSchedule("0 * * * *")
    now = datetime(2026, 11, 25, 15, 20, tzinfo=UTC)
    last = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # 13:00, 14:00 and 15:00 were missed
    assert due_tick(hourly, now, last_fired=last, misfire_grace=timedelta(hours=1)) == datetime(
        2026, 11, 25, 15, 0, tzinfo=UTC
    )
    # already fired: nothing to do until 16:00
    assert due_tick(hourly, now, last_fired=now.replace(minute=0), misfire_grace=None) is None
    # too late for the grace: skipped, however long ago the last run was
    assert due_tick(hourly, now, last_fired=last, misfire_grace=timedelta(minutes=10)) is None
    # no grace limit: always the latest
    assert due_tick(hourly, now, last_fired=None, misfire_grace=None) == datetime(2026, 11, 25, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cron", "zone", "message"), [("61 * * * *", "UTC", "not a cron"), ("0 0 * * *", "Mars/Base", "time zone")]
)
def test_bad_schedules_are_configuration_errors(cron: str, zone: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        CronSchedule(cron, zone)
