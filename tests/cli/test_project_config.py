"""The project config: found from the working directory, overridden by flags, strict about its keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ._run import eventbus

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A contracts repository of a team that is not this one: its names, its base $id."""
    result = eventbus("init", "acme", "--event", "billing.invoice.paid.v1", "--base-id",
                      "https://contracts.acme.test/schemas/", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    return tmp_path / "acme"


def test_commands_find_the_config_from_a_subfolder_and_check_without_flags(repo: Path) -> None:
    nested = repo / "contracts" / "billing"
    for language in ("python", "typescript", "go"):
        result = eventbus("codegen", language, "--check", cwd=nested)
        assert result.returncode == 0, result.stdout + result.stderr
    assert (repo / "generated" / "python" / "acme_contracts" / "billing" / "invoice_paid_v1.py").is_file()
    assert json.loads((repo / "generated" / "typescript" / "package.json").read_text())["name"] == "acme-contracts"
    assert (repo / "generated" / "go" / "go.mod").read_text().startswith("module example.com/acme/contracts\n")


def test_flags_override_the_config(repo: Path, tmp_path: Path) -> None:
    result = eventbus("codegen", "python", "--package-name", "billing_events", "--out", str(tmp_path / "pkgs"),
                      cwd=repo)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "pkgs" / "billing_events" / "_registry.py").is_file()
    result = eventbus("codegen", "go", "--check", "--module", "example.com/other", cwd=repo)
    assert result.returncode == 1 and "-module example.com/acme/contracts" in result.stdout


def test_config_points_elsewhere(repo: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = eventbus("--config", str(repo / "eventbus.toml"), "contracts", "validate", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert "1 contracts and their 1 examples are valid" in result.stdout
    result = eventbus("contracts", "validate", cwd=elsewhere, env={"EVENTBUS_CONFIG": str(repo / "eventbus.toml")})
    assert result.returncode == 0, result.stderr
    assert eventbus("contracts", "validate", cwd=elsewhere).returncode == 1  # no config, no contracts/ here


@pytest.mark.parametrize(("text", "fragment"), [
    ('version = 1\ncontract = "contracts"\n', "eventbus.toml#/contract: Extra inputs are not permitted"),
    ('version = 1\n[python]\npackage = "not-an-identifier"\n', "eventbus.toml#/python/package"),
    ('version = 1\n[go]\nmodul = "x"\n', "eventbus.toml#/go/modul"),
    ('version = 1\nbase_id = "contracts"\n', "eventbus.toml#/base_id"),
    ("contracts = 'x'\n", "eventbus.toml#/version: missing version"),
])
def test_unknown_or_bad_keys_are_one_line_errors(tmp_path: Path, text: str, fragment: str) -> None:
    (tmp_path / "eventbus.toml").write_text(text)
    result = eventbus("codegen", "go", "--check", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and fragment in result.stderr, result.stderr


def test_lint_holds_ids_to_the_configured_base(repo: Path) -> None:
    path = repo / "contracts" / "billing" / "invoice.paid.v1.schema.json"
    schema = json.loads(path.read_text())
    schema["$id"] = "https://eventbus.example/contracts/billing/invoice.paid.v1.schema.json"
    path.write_text(json.dumps(schema, indent=2))
    result = eventbus("contracts", "lint", cwd=repo)
    assert result.returncode == 1
    assert "ID_MATCHES_PATH" in result.stdout and "is not under 'https://contracts.acme.test/schemas/'" in result.stdout


def test_an_unknown_type_lists_the_configured_contracts(repo: Path) -> None:
    result = eventbus("publish", "chat.conversation.ended.v1", "--data", "{}", cwd=repo)
    assert result.returncode == 1
    assert "unknown event type 'chat.conversation.ended.v1' (known: billing.invoice.paid.v1)" in result.stderr
    assert str(repo / "contracts") in result.stderr


def test_publish_validates_against_the_configured_contracts(repo: Path) -> None:
    result = eventbus("publish", "billing.invoice.paid.v1", "--data", '{"invoice_id": ""}', cwd=repo)
    assert result.returncode == 1
    assert result.stderr.startswith("error: invalid billing.invoice.paid.v1 data")


def test_the_cli_starts_with_another_package_named_eventbus_contracts_first_on_the_path(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow" / "eventbus_contracts"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("BILLING = 1\n")  # a team's own package of that name
    result = eventbus("--help", cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "shadow")})
    assert result.returncode == 0, result.stderr
    assert "demo" in result.stdout and "topology" in result.stdout


def test_no_contracts_folder_says_how_to_get_one(tmp_path: Path) -> None:
    result = eventbus("publish", "billing.invoice.paid.v1", "--data", "{}", cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert f"no contracts folder {tmp_path.resolve() / 'contracts'}" in result.stderr
    assert "'eventbus init' makes one" in result.stderr
