"""Every how-to in docs/ runs as written, in an empty folder outside this repository."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .._vhosts import amqp_url, private_vhost
from ._runner import run_howto


@pytest.fixture
def url() -> Iterator[str]:
    with private_vhost("howto") as vhost:
        yield amqp_url(vhost)


def _ran(result: object) -> str:
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"  # type: ignore[attr-defined]
    return str(result.stdout)  # type: ignore[attr-defined]


def test_add_an_event_and_evolve_it_to_v2(tmp_path: Path) -> None:
    out = _ran(run_howto("howto-add-an-event.md", tmp_path, {}))
    repo = tmp_path / "acme-contracts"
    assert "invoice_paid_v1.py" in out and "invoice_paid_v2.py" in out
    assert out.count("no breaking changes against HEAD") == 2
    types = (repo / "generated" / "go" / "types.go").read_text()
    assert "type InvoicePaidV1 struct" in types and "type InvoicePaidV2 struct" in types
    assert "Note *string" in types.split("type InvoicePaidV1 struct")[1].split("}")[0].replace("\t", " ")


@pytest.mark.broker
def test_use_the_sdk_in_your_own_service_with_your_own_contracts(tmp_path: Path, url: str) -> None:
    out = _ran(run_howto("howto-your-own-service.md", tmp_path, {"EVENTBUS_URL": url}))
    assert "booked inv_1 (event " in out and "attempt 1)" in out
    assert "= queue    ledger.billing.invoice.paid.v1 (quorum)" in out
    assert "deleted queue ledger.billing.invoice.paid.v1 (0 message(s)) and its bindings" in out
    assert "deleted queue ledger.billing.invoice.paid.v1.dlq (0 message(s)) and its bindings" in out


@pytest.mark.broker
def test_run_the_scheduler_inside_eventbus_worker(tmp_path: Path, url: str) -> None:
    out = _ran(run_howto("howto-scheduler-in-a-worker.md", tmp_path, {"EVENTBUS_URL": url}))
    reports = [line for line in out.splitlines() if line.startswith("report for ")]
    assert len(reports) >= 2 and all("(job:heartbeat-report:" in line for line in reports)
    assert len(set(reports)) == len(reports)  # each tick once
    assert "worker stopped cleanly" in out
