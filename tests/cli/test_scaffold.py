"""``eventbus init`` makes a contracts repository that passes its own gate; ``new event`` adds contracts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from ._run import eventbus


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=ci@example.test", "-c", "user.name=ci", *args], cwd=repo, check=True,
                   capture_output=True)


def _gate(repo: Path) -> None:
    """What the generated CI workflow runs, step by step."""
    workflow = yaml.safe_load((repo / ".github" / "workflows" / "contracts.yml").read_text())
    commands = [step["run"] for step in workflow["jobs"]["gate"]["steps"] if str(step.get("run", "")).startswith(
        "eventbus ")]
    assert len(commands) == 6
    for command in commands:
        args = command.split()[1:]
        if args[:2] == ["contracts", "breaking"]:
            args = ["contracts", "breaking", "--against", "HEAD"]  # the workflow's base branch, here
        result = eventbus(*args, cwd=repo)
        assert result.returncode == 0, (command, result.stdout, result.stderr)


def test_init_makes_a_repository_that_passes_its_own_gate(tmp_path: Path) -> None:
    result = eventbus("init", "shop", "--event", "orders.order.placed.v1", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    repo = tmp_path / "shop"
    hooks = yaml.safe_load((repo / ".pre-commit-config.yaml").read_text())["repos"][0]["hooks"]
    assert [hook["entry"] for hook in hooks] == [
        "eventbus contracts lint", "eventbus codegen python --check", "eventbus codegen typescript --check",
        "eventbus codegen go --check",
    ]
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "init")
    _gate(repo)
    again = eventbus("init", "shop", cwd=tmp_path)
    assert again.returncode == 1 and "nothing was overwritten" in again.stderr


def test_new_event_skeleton_passes_lint_and_from_writes_the_next_major(tmp_path: Path) -> None:
    assert eventbus("init", "shop", "--event", "orders.order.placed.v1", cwd=tmp_path).returncode == 0
    repo = tmp_path / "shop"
    created = eventbus("new", "event", "orders.order.cancelled.v1", cwd=repo / "contracts")
    assert created.returncode == 0, created.stderr
    assert eventbus("contracts", "lint", cwd=repo).returncode == 0

    v2 = eventbus("new", "event", "orders.order.placed.v2", "--from", "orders.order.placed.v1", cwd=repo)
    assert v2.returncode == 0, v2.stderr
    schema = json.loads((repo / "contracts" / "orders" / "order.placed.v2.schema.json").read_text())
    assert schema["$id"] == "https://shop.example/contracts/orders/order.placed.v2.schema.json"
    assert schema["x-eventbus"]["type"] == schema["x-eventbus"]["routing_key"] == "orders.order.placed.v2"
    assert eventbus("contracts", "lint", cwd=repo).returncode == 0

    for args, message in [
        (("orders.order.placed.v2",), "exists already"),
        (("orders.order.placed.v1", "--from", "orders.order.placed.v2"), "is not a later major than"),
        (("Orders.Placed",), "is not DOMAIN.ENTITY.ACTION.vN"),
        (("orders.order.shipped.v2", "--from", "orders.order.shipped.v1"), "no contract orders.order.shipped.v1"),
    ]:
        result = eventbus("new", "event", *args, cwd=repo)
        assert result.returncode != 0 and message in result.stderr, (args, result.stderr)
