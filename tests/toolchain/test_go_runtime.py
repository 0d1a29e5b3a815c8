"""The Go runtime's own checks (``runtimes/go``): gofmt, go vet and ``go test``, offline.

``go test`` gets a private vhost for its broker test (``EVENTBUS_TEST_URL``); the runtime's
behaviour beside Python is proven in ``tests/conformance/test_runtime_go.py``.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from eventbus_codegen import generate_go, write_go
from tests.conftest import BROKER_URL

from .builds import GO_RUNTIME, go_env, go_workspace, have_go, run

pytestmark = pytest.mark.polyglot


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.mark.broker
def test_the_go_runtime_is_gofmt_clean_vets_and_passes_its_tests(tmp_path: Path) -> None:
    if not have_go():
        pytest.fail("Go and the Debian Go libraries are missing: .ci/run installs them")
    env = go_env(go_workspace(tmp_path, [GO_RUNTIME]))
    assert run([shutil.which("gofmt") or "gofmt", "-l", "."], GO_RUNTIME) == ""
    run(["go", "vet", "./..."], GO_RUNTIME, env=env)
    vhost = f"rt-go-{uuid.uuid4().hex[:10]}"
    parts = urlsplit(BROKER_URL)
    env["EVENTBUS_TEST_URL"] = urlunsplit((parts.scheme, parts.netloc, f"/{vhost}", "", ""))
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        output = run(["go", "test", "-count=1", "-v", "./..."], GO_RUNTIME, env=env)
    finally:
        _rabbitmqctl("delete_vhost", vhost)
    assert "--- PASS: TestHandlersSteerRetriesAndParkingOnABroker" in output and "--- SKIP" not in output, output


_TWO_MODULES = """package main

import (
	"context"

	eventbus "github.com/eventbus-dev/eventbus/runtimes/go"
	chat "example.com/chat/contracts"
	other "example.com/other/events"
)

// One bus for both generated modules: they share the runtime's types.
func main() {
	ctx := context.Background()
	bus, err := eventbus.Connect(ctx, eventbus.Options{Service: "two"})
	if err != nil {
		return
	}
	defer bus.Close()
	_, _ = chat.PublishConversationEndedV1(ctx, bus, chat.ConversationEndedV1{}, eventbus.PublishOptions{})
	_, _ = other.PublishConversationEndedV1(ctx, bus, other.ConversationEndedV1{}, eventbus.PublishOptions{})
	var contracts []eventbus.AnyContract
	for _, c := range chat.Contracts {
		contracts = append(contracts, c)
	}
	for _, c := range other.Contracts {
		contracts = append(contracts, c)
	}
	_ = contracts
}
"""


def test_two_generated_modules_in_one_binary_share_one_bus(tmp_path: Path) -> None:
    if not have_go():
        pytest.fail("Go and the Debian Go libraries are missing: .ci/run installs them")
    contracts = GO_RUNTIME.parents[1] / "contracts"
    modules = [tmp_path / "chat", tmp_path / "other"]
    write_go(generate_go(contracts, "example.com/chat/contracts"), modules[0])
    write_go(generate_go(contracts, "example.com/other/events"), modules[1])
    app = tmp_path / "app"
    app.mkdir()
    (app / "go.mod").write_text("module example.com/app\n\ngo 1.19\n", encoding="utf-8")
    (app / "main.go").write_text(_TWO_MODULES, encoding="utf-8")
    env = go_env(go_workspace(tmp_path, [*modules, app]))
    run(["go", "vet", "./..."], app, env=env)
    run(["go", "build", "-o", str(tmp_path / "two"), "."], app, env=env)
