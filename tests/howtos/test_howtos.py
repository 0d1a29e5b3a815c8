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


@pytest.mark.polyglot
def test_generate_and_use_the_typescript_and_go_packages_from_your_own_project(tmp_path: Path) -> None:
    import json

    from tests.toolchain.builds import ensure_node_modules, go_env, go_workspace, have_go, link_node_modules, run, tsc

    _ran(run_howto("howto-typescript-and-go.md", tmp_path, {}))
    vendored = json.loads((tmp_path / "node-ledger" / "vendor" / "billing-events" / "package.json").read_text())
    assert vendored["name"] == "@acme/billing-events"

    package = tmp_path / "acme-contracts" / "generated" / "typescript"
    link_node_modules(package)
    tsc(package)  # what 'npm run build' does in the package
    service = tmp_path / "node-ledger"
    modules = service / "node_modules"  # what 'npm install' makes: the dependencies and the package itself
    modules.mkdir()
    for entry in ensure_node_modules().iterdir():
        (modules / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    (modules / "acme-contracts").symlink_to(package, target_is_directory=True)
    tsc(service)
    assert (service / "dist" / "index.js").is_file()

    if not have_go():
        pytest.skip("Go and the Debian Go libraries are missing: scripts/prepare-tests installs them (as root)")
    ledger = tmp_path / "go-ledger"
    env = go_env(go_workspace(tmp_path, [ledger, tmp_path / "acme-contracts" / "generated" / "go"]))
    run(["go", "build", "-o", "go-ledger", "."], ledger, env=env)
    assert (ledger / "go-ledger").is_file()
