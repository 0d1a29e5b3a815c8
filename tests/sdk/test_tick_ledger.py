"""The tick ledger's claims (in memory, SQLite, PostgreSQL) and running a job by hand."""

from __future__ import annotations

from datetime import timedelta

import pytest

from eventbus import BusSettings, MemoryTickLedger, Scheduler, SqlTickLedger, Tick, TickLedger, create_sql_engine


def _sql_ledger(url: str) -> TickLedger:
    ledger = SqlTickLedger(create_sql_engine(url))
    ledger.create_schema(ledger.engine)
    return ledger


@pytest.mark.parametrize("kind", ["memory", "sql"])
def test_claims_done_busy_lapse_and_release(kind: str, database_url: str) -> None:
    ledger = MemoryTickLedger() if kind == "memory" else _sql_ledger(database_url)
    assert ledger.claim("job:x:t", "replica-1", timedelta(seconds=30)) == "claimed"
    assert ledger.claim("job:x:t", "replica-2", timedelta(seconds=30)) == "busy"
    # a claim that is not renewed lapses: replica-1 died, replica-2 takes over
    assert ledger.claim("job:x:t", "replica-2", timedelta(0)) == "claimed"
    ledger.complete("job:x:t", "replica-2")
    assert ledger.claim("job:x:t", "replica-3", timedelta(0)) == "done"
    # a failed job releases its claim so a re-fired copy may run
    assert ledger.claim("job:y:t", "replica-1", timedelta(seconds=30)) == "claimed"
    ledger.release("job:y:t", "replica-1")
    assert ledger.claim("job:y:t", "replica-2", timedelta(seconds=30)) == "claimed"


async def test_run_now_runs_a_job_here_and_unknown_jobs_are_errors(settings: BusSettings) -> None:
    scheduler = Scheduler(settings)
    ran: list[Tick] = []

    @scheduler.job("0 0 * * *")
    def decay_recompute(tick: Tick) -> None:
        ran.append(tick)

    tick = await scheduler.run_now("decay-recompute")
    assert ran == [tick] and tick.trigger == "manual" and tick.id.startswith("job:decay-recompute:manual:")
    with pytest.raises(Exception, match="no job named 'nope'"):
        await scheduler.run_now("nope")
