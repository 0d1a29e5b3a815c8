"""Errors a person can act on: a refused login names the user and vhost; tables stay whole in a pipe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ._run import eventbus

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.broker
def test_a_wrong_password_says_check_the_password_not_is_it_running() -> None:
    result = eventbus("tail", "--timeout", "1", cwd=ROOT, env={"EVENTBUS_URL": "amqp://guest:wrong@127.0.0.1:5672/%2F"})
    assert result.returncode == 3
    assert "refused user 'guest' (vhost '/'): check the password" in result.stderr
    assert "is RabbitMQ running" not in result.stderr and "wrong" not in result.stderr


@pytest.mark.broker
def test_a_vhost_the_user_may_not_use_is_named() -> None:
    url = "amqp://guest:guest@127.0.0.1:5672/no-such-vhost-here"
    result = eventbus("tail", "--timeout", "1", cwd=ROOT, env={"EVENTBUS_URL": url})
    assert result.returncode == 3
    assert "user 'guest' may not use vhost 'no-such-vhost-here'" in result.stderr


def test_tables_are_laid_out_whole_when_piped() -> None:
    long_id = "evt-" + "x" * 150
    script = (
        "from rich.table import Table\n"
        "from eventbus_cli._tables import console\n"
        "table = Table('#', 'event id', 'error')\n"
        f"table.add_row('0', {long_id!r}, 'ValueError: ' + 'y' * 200)\n"
        "console().print(table)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert long_id in result.stdout and "ValueError: " + "y" * 200 in result.stdout
    assert "…" not in result.stdout and "\x1b[" not in result.stdout
