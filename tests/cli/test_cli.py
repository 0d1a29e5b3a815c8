"""The ``eventbus`` command, run as a user runs it: a subprocess, real broker, exit codes and output."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VALID = {
    "conversation_id": "conv_cli_1", "participants": ["u_1", "u_2"], "started_at": "2026-11-25T17:00:00Z",
    "ended_at": "2026-11-25T17:10:00Z", "message_count": 3, "messages_by_participant": {"u_1": 1, "u_2": 2},
}


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventbus_cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        env=env,
    )


def _env(**extra: str) -> dict[str, str]:
    import os

    return {**os.environ, **extra}


def test_codegen_python_check_finds_the_committed_output_up_to_date() -> None:
    result = run("codegen", "python", "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is up to date" in result.stdout


def test_contracts_validate_passes_on_the_repository() -> None:
    result = run("contracts", "validate")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 contracts and their 6 examples are valid" in result.stdout


def test_codegen_check_fails_with_a_diff_when_the_output_is_stale(tmp_path: Path) -> None:
    out = tmp_path / "eventbus_contracts"
    assert run("codegen", "python", "--out", str(out)).returncode == 0
    target = out / "chat" / "conversation_ended_v1.py"
    target.write_text(target.read_text().replace("class ConversationEndedV1", "class Tampered"))
    result = run("codegen", "python", "--check", "--out", str(out))
    assert result.returncode == 1
    assert "-class Tampered" in result.stdout and "+class ConversationEndedV1" in result.stdout
    assert "is stale" in result.stderr


def test_invalid_data_is_one_line_and_exit_1() -> None:
    result = run("publish", "chat.conversation.ended.v1", "--data", json.dumps({**VALID, "participants": ["u_1"]}))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: invalid chat.conversation.ended.v1")
    assert "Traceback" not in result.stderr


def test_unknown_type_is_one_line_and_exit_1() -> None:
    result = run("publish", "chat.nothing.v1", "--data", "{}")
    assert result.returncode == 1
    assert result.stderr.startswith("error: unknown event type 'chat.nothing.v1'")


def test_broker_down_is_one_line_with_the_fix_and_no_password() -> None:
    env = _env(EVENTBUS_URL="amqp://guest:s3cret@127.0.0.1:1/%2F")
    for args in (("publish", "chat.conversation.ended.v1", "--data", json.dumps(VALID)), ("demo",), ("tail",)):
        result = run(*args, env=env)
        assert result.returncode == 3, (args, result.stderr)
        assert "rabbitmq-server -detached" in result.stderr
        assert "s3cret" not in result.stderr + result.stdout
        assert "Traceback" not in result.stderr


@pytest.mark.broker
def test_publish_reaches_tail_as_json(tmp_path: Path) -> None:
    tail = subprocess.Popen(
        [sys.executable, "-m", "eventbus_cli", "tail", "chat.#", "--json", "--timeout", "8"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        time.sleep(2.0)  # let tail bind its queue before we publish
        data_file = tmp_path / "event.json"
        data_file.write_text(json.dumps({**VALID, "conversation_id": "conv_cli_tail"}))
        published = run(
            "publish", "chat.conversation.ended.v1", "--data", f"@{data_file}", "--subject", "conv_cli_tail"
        )
        assert published.returncode == 0, published.stderr
        event_id = published.stdout.strip()
        out, err = tail.communicate(timeout=40)
    finally:
        tail.kill()
    records = [json.loads(line) for line in out.splitlines() if line.strip()]
    ours = [r for r in records if r.get("id") == event_id]  # other publishers may share the broker
    assert len(ours) == 1, (out, err)
    record = ours[0]
    assert record["id"] == event_id
    assert record["type"] == "chat.conversation.ended.v1"
    assert record["subject"] == "conv_cli_tail"
    assert record["valid"] is True
    assert record["data"]["conversation_id"] == "conv_cli_tail"


@pytest.mark.broker
def test_topology_apply_is_idempotent() -> None:
    for _ in range(2):
        result = run("topology", "apply")
        assert result.returncode == 0, result.stderr
        assert "exchange chat (topic, durable): chat.conversation.ended.v1" in result.stdout
        assert "exchange context (topic, durable)" in result.stdout


@pytest.mark.broker
def test_demo_publishes_the_contracts_examples_and_a_subscriber_gets_each() -> None:
    result = run("demo")
    assert result.returncode == 0, result.stderr
    assert "published 6 events, all confirmed by the broker" in result.stdout
    assert result.stdout.count("chat.conversation.ended.v1 ") == 2  # the table: one row per example
    assert result.stdout.count("context.candidates.updated.v1 ") == 2


GO_MODULE = "eventbus.example/contracts"


def test_codegen_typescript_and_go_check_find_the_committed_output_up_to_date() -> None:
    for args in (("typescript",), ("go",), ("go", "--module", GO_MODULE)):  # the module comes from the config
        result = run("codegen", *args, "--check")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "is up to date" in result.stdout


@pytest.mark.parametrize(
    ("args", "edited", "old", "new"),
    [
        (("typescript",), "src/types.ts", "export interface ConversationEndedV1 {", "export interface Tampered {"),
        (("go", "--module", GO_MODULE), "types.go", "type ConversationEndedV1 struct", "type Tampered struct"),
    ],
)
def test_codegen_check_shows_typescript_and_go_drift(
    tmp_path: Path, args: tuple[str, ...], edited: str, old: str, new: str
) -> None:
    out = tmp_path / "out"
    assert run("codegen", *args, "--out", str(out)).returncode == 0
    target = out / edited
    target.write_text(target.read_text().replace(old, new))
    result = run("codegen", *args, "--check", "--out", str(out))
    assert result.returncode == 1
    assert f"-{new}" in result.stdout and f"+{old}" in result.stdout
    assert "is stale" in result.stderr


def test_codegen_go_never_deletes_hand_written_code(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.go").write_text("package contracts\n")
    result = run("codegen", "go", "--module", GO_MODULE, "--out", str(out))
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "not generated code" in result.stderr
    assert (out / "mine.go").exists()


def test_codegen_schema_without_a_static_type_warns_naming_the_schema_path(tmp_path: Path) -> None:
    import shutil

    contracts = tmp_path / "contracts"
    shutil.copytree(ROOT / "contracts", contracts)
    path = contracts / "chat" / "conversation.ended.v1.schema.json"
    schema = json.loads(path.read_text())
    schema["properties"]["ended_reason"] = {"type": "array", "prefixItems": [{"type": "string"}]}
    path.write_text(json.dumps(schema))
    for args in (("typescript",), ("go", "--module", GO_MODULE)):
        result = run("codegen", *args, "--contracts", str(contracts), "--out", str(tmp_path / args[0]))
        assert result.returncode == 0, result.stderr
        assert f"CodegenWarning: {path.as_posix()}#/properties/ended_reason: a tuple" in result.stderr
