"""Done when: a brand-new team's contracts repository, from nothing to a removed topology, with the installed wheel.

In a temporary folder outside this repository: ``eventbus init`` and ``eventbus new event`` make the
repository; the three generators write its bindings under its own names; its Python package is
pip-installed next to the wheel; a service publishes and consumes its events with the SDK; and
``eventbus topology delete`` removes the service's queues (private vhost).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import Installed

pytestmark = [pytest.mark.slow, pytest.mark.broker]

SERVICE = '''
import asyncio, json, sys
from datetime import UTC, datetime

from eventbus import EventBus, EventContext
from ledger_contracts import InvoicePaidV1, InvoiceRefundedV1

bus = EventBus.from_env(service="billing-ledger")
seen = []
done = asyncio.Event()


@bus.subscribe(InvoicePaidV1)
async def on_paid(event: InvoicePaidV1, ctx: EventContext) -> None:
    seen.append([ctx.type, event.invoice_id])
    done.set() if len(seen) == 2 else None


@bus.subscribe(InvoiceRefundedV1)
async def on_refunded(event: InvoiceRefundedV1, ctx: EventContext) -> None:
    seen.append([ctx.type, event.invoice_id])
    done.set() if len(seen) == 2 else None


async def main() -> None:
    await bus.start()
    now = datetime.now(UTC)
    await bus.publish(InvoicePaidV1(invoice_id="inv_1", occurred_at=now))
    await bus.publish(InvoiceRefundedV1(invoice_id="inv_1", occurred_at=now))
    await asyncio.wait_for(done.wait(), 30)
    await bus.close()
    print(json.dumps(sorted(seen)))


asyncio.run(main())
'''


def test_a_new_team_goes_from_nothing_to_a_removed_topology(installed: Installed, tmp_path: Path,
                                                           vhost_url: str) -> None:
    def eventbus(*args: str, cwd: Path) -> str:
        result = installed.run("eventbus", *args, cwd=cwd, env={"EVENTBUS_URL": vhost_url})
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result.stdout

    eventbus("init", "ledger", "--event", "billing.invoice.paid.v1", "--base-id", "https://ledger.test/contracts/",
             "--go-module", "example.com/ledger/contracts", cwd=tmp_path)
    repo = tmp_path / "ledger"
    schema = (repo / "contracts" / "billing" / "invoice.paid.v1.schema.json").read_text()
    assert '"$id": "https://ledger.test/contracts/billing/invoice.paid.v1.schema.json"' in schema
    eventbus("new", "event", "billing.invoice.refunded.v1", cwd=repo)
    consumers = {"version": 1, "consumers": [{"service": "billing-ledger", "language": "python",
                                              "reads": ["billing.invoice.paid.v1", "billing.invoice.refunded.v1"]}]}
    (repo / "contracts" / "consumers.json").write_text(json.dumps(consumers, indent=2) + "\n")
    eventbus("contracts", "lint", cwd=repo)
    for language in ("python", "typescript", "go"):
        eventbus("codegen", language, cwd=repo)
        assert "is up to date" in eventbus("codegen", language, "--check", cwd=repo)
    assert (repo / "generated" / "python" / "ledger_contracts" / "billing" / "invoice_refunded_v1.py").is_file()
    assert json.loads((repo / "generated" / "typescript" / "package.json").read_text())["name"] == "ledger-contracts"
    assert "InvoiceRefundedV1" in (repo / "generated" / "typescript" / "src" / "types.ts").read_text()
    assert (repo / "generated" / "go" / "go.mod").read_text().startswith("module example.com/ledger/contracts\n")
    assert "type InvoiceRefundedV1 struct" in (repo / "generated" / "go" / "types.go").read_text()

    installed.run(str(installed.bin / "pip"), "install", "-q", str(repo / "generated" / "python"), cwd=tmp_path,
                  timeout=300).check_returncode()
    service = tmp_path / "billing-ledger"
    service.mkdir()
    (service / "service.py").write_text(SERVICE)
    ran = installed.run(str(installed.bin / "python"), "service.py", cwd=service, env={"EVENTBUS_URL": vhost_url})
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert json.loads(ran.stdout) == [["billing.invoice.paid.v1", "inv_1"], ["billing.invoice.refunded.v1", "inv_1"]]

    plan = eventbus("topology", "plan", "--service", "billing-ledger", cwd=repo)
    assert "= queue    billing-ledger.billing.invoice.paid.v1 (quorum)" in plan
    deleted = eventbus("topology", "delete", "--service", "billing-ledger", cwd=repo)
    assert sorted(line.split()[2] for line in deleted.splitlines()) == [
        "billing-ledger.billing.invoice.paid.v1", "billing-ledger.billing.invoice.paid.v1.dlq",
        "billing-ledger.billing.invoice.refunded.v1", "billing-ledger.billing.invoice.refunded.v1.dlq",
    ]
    after = eventbus("topology", "plan", "--service", "billing-ledger", cwd=repo)
    assert "+ queue    billing-ledger.billing.invoice.paid.v1 (quorum)" in after
