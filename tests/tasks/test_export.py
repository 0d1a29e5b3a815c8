"""``eventbus contracts export``: the tasks' schemas land in the contracts folder lint-clean, the
runtime validates with the same document, and ``--check`` catches drift between code and files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from eventbus import BusSettings, EventBus, EventValidationError

from ..cli._run import eventbus

ROOT = Path(__file__).resolve().parents[2]

APP = '''
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from eventbus import BusSettings, EventBus

bus = EventBus(BusSettings(service="billing-svc"))


class Line(BaseModel):
    """One line of an invoice."""

    sku: str = Field(description="Stock keeping unit.")
    cents: int = Field(ge=0, description="Price in cents.")


@bus.task
async def charge(invoice_id: str, cents: int, due_at: datetime, lines: list[Line],
                 mode: Literal["card", "sepa"] = "card", note: str | None = None) -> None:
    """Charge one invoice.

    Args:
        invoice_id: The invoice to charge.
        cents: How much, in cents.
    """


@bus.task(name="refund_all", version=2, examples=[{"customer_id": "c_1"}])
def refund(customer_id: str) -> None:
    """Refund every open invoice of a customer."""
'''


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "contracts", tmp_path / "contracts")
    (tmp_path / "eventbus.toml").write_text('version = 1\nbase_id = "https://eventbus.example/contracts/"\n')
    (tmp_path / "billing_app.py").write_text(APP)
    return tmp_path


def test_export_writes_lint_clean_contracts_and_check_catches_drift(repo: Path) -> None:
    written = eventbus("contracts", "export", "billing_app:bus", cwd=repo)
    assert written.returncode == 0, written.stderr
    charge = repo / "contracts" / "tasks" / "billing_svc.charge.v1.schema.json"
    refund = repo / "contracts" / "tasks" / "billing_svc.refund_all.v2.schema.json"
    document = json.loads(charge.read_text())
    assert document["$id"] == "https://eventbus.example/contracts/tasks/billing_svc.charge.v1.schema.json"
    assert document["x-eventbus"] == {"type": "tasks.billing_svc.charge.v1", "exchange": "tasks",
                                      "routing_key": "tasks.billing_svc.charge.v1", "owner": "billing-svc",
                                      "compatibility": "BACKWARD"}
    assert document["required"] == ["invoice_id", "cents", "due_at", "lines"]
    assert document["properties"]["invoice_id"]["description"] == "The invoice to charge."
    assert json.loads(refund.read_text())["examples"] == [{"customer_id": "c_1"}]

    lint = eventbus("contracts", "lint", cwd=repo)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert eventbus("contracts", "validate", cwd=repo).returncode == 0
    assert eventbus("contracts", "export", "billing_app:bus", "--check", cwd=repo).returncode == 0

    # The code changes (a new required parameter) and the contract was not exported again: drift.
    app = repo / "billing_app.py"
    app.write_text(app.read_text().replace("def refund(customer_id: str)", "def refund(customer_id: str, why: str)"))
    drift = eventbus("contracts", "export", "billing_app:bus", "--check", cwd=repo)
    assert drift.returncode == 1
    assert '+    "why"' in drift.stdout and "billing_svc.refund_all.v2.schema.json" in drift.stdout
    assert "out of date" in drift.stderr
    assert json.loads(refund.read_text())["required"] == ["customer_id"]  # --check writes nothing

    # A task gone from the code leaves a stale file: drift too.
    app.write_text(app.read_text().split("@bus.task(name=")[0])
    stale = eventbus("contracts", "export", "billing_app:bus", "--check", cwd=repo)
    assert stale.returncode == 1 and "+++ /dev/null" in stale.stdout


def test_a_bus_without_tasks_has_nothing_to_export(repo: Path) -> None:
    (repo / "empty_app.py").write_text(
        "from eventbus import BusSettings, EventBus\nbus = EventBus(BusSettings(service='x'))\n")
    result = eventbus("contracts", "export", "empty_app:bus", cwd=repo)
    assert result.returncode == 1 and "has no tasks" in result.stderr


def test_the_runtime_checks_a_call_against_the_same_schema() -> None:
    bus = EventBus(BusSettings(service="shop"))

    @bus.task
    def ship(order_id: str, count: int = 1) -> None: ...

    assert ship.contract.schema["additionalProperties"] is False
    assert ship.message("o_1").model_dump(exclude_unset=True) == {"order_id": "o_1"}
    assert ship.contract.encode(ship.message("o_1", count=2)) == b'{"order_id":"o_1","count":2}'
    with pytest.raises(EventValidationError):
        ship.message(order_id=["not", "a", "string"])
