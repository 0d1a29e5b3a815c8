"""The ``context-handling`` console script as a user runs it: exit codes, one-line errors, the demo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from context_handling.cache import MemoryCandidateCache
from context_handling.processor import ConversationProcessor, Incoming
from context_handling.storage import Storage
from eventbus import create_sql_engine

from ._conversations import T0, conversation

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, timeout: float = 90, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "context_handling", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env},
    )


def test_help_lists_the_commands() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("run", "demo", "job"):
        assert f"  {command} " in result.stdout


@pytest.mark.parametrize("command", [("demo",), ("run",), ("job", "fallback")])
def test_no_broker_is_one_line_with_the_fix_and_exit_3(command: tuple[str, ...], tmp_path: Path) -> None:
    result = run(
        *command,
        EVENTBUS_URL="amqp://guest:s3cret@127.0.0.1:1/%2F",
        DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}",
        CONTEXT_HTTP="off",
    )
    assert result.returncode == 3, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: no RabbitMQ broker answered")
    assert "rabbitmq-server -detached" in result.stderr
    assert "s3cret" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("env", "code", "text"),
    [
        ({"CONTEXT_DECAY_CRON": "every midnight"}, 1, "not a cron expression"),
        ({"DATABASE_URL": "mysql://root@localhost/x"}, 1, "not supported"),
        ({"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/test"}, 4, "database unavailable"),
    ],
)
def test_bad_configuration_is_one_line(env: dict[str, str], code: int, text: str) -> None:
    result = run("job", "decay-recompute", **env)
    assert result.returncode == code, result.stderr
    assert result.stderr.count("\n") == 1 and text in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.broker
def test_decay_job_runs_on_demand_and_publishes_its_changes(tmp_path: Path, service: str) -> None:
    url = f"sqlite:///{tmp_path / 'context.db'}"
    engine = create_sql_engine(url)
    storage = Storage(engine, service=service)
    storage.migrate()
    ConversationProcessor(storage, MemoryCandidateCache(60)).process(
        [Incoming("e1", conversation(1, ["u_a", "u_b"], T0, minutes=60, messages={"u_a": 20, "u_b": 20}))]
    )
    result = run("job", "decay-recompute", "--at", "2026-12-01", DATABASE_URL=url, CONTEXT_SERVICE=service)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "decay-recompute: as of 2026-12-01T00:00:00+00:00: 1 pairs examined, 1 to stranger"
    )
    with engine.connect() as connection:
        assert storage.outbox.pending_count(connection) == 0  # published (or recorded as unroutable)
    engine.dispose()


@pytest.mark.broker
def test_the_demo_runs_and_summarises() -> None:
    result = run("demo", "--users", "60", "--conversations", "400", timeout=120, COLUMNS="160")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "friendship status of the pairs that talked" in out
    assert "top candidates of the best-connected users" in out
    assert "events/s" in out and "p99" in out
    assert "404 events" in out  # 400 conversations and 4 sent twice
    assert "400 conversations applied, 4 re-sent copies recognised by event id" in out
    assert "0 re-published copies dropped" in out or "re-published copies dropped by id" in out
