"""``python -m build`` makes a wheel whose metadata, extras and entry points work with no source tree."""

from __future__ import annotations

import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from .conftest import Installed

pytestmark = pytest.mark.slow


def test_metadata_names_the_extras_and_the_entry_points(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = wheel.namelist()
        metadata = Parser().parsestr(wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode())
        entry_points = wheel.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert metadata["Name"] == "eventbus" and metadata["Requires-Python"] == ">=3.11"
    assert {"codegen", "sql", "postgres", "scheduler", "service"} <= set(metadata.get_all("Provides-Extra"))
    assert "eventbus = eventbus_cli.main:main" in entry_points
    for package in ("eventbus/", "eventbus_cli/", "eventbus_codegen/", "eventbus_governance/"):
        assert any(name.startswith(package) for name in names), package
    assert "eventbus_governance/catalog/templates/index.html.jinja2" in names  # data files travel too


def test_the_installed_commands_work_outside_the_source_tree(installed: Installed, tmp_path: Path) -> None:
    where = installed.run(str(installed.bin / "python"), "-c",
                          "import eventbus, eventbus_cli, eventbus_governance; print(eventbus.__file__)", cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    assert where.stdout.startswith(str(installed.venv)), where.stdout
    assert installed.run("eventbus", "--version", cwd=tmp_path).stdout.strip() == "eventbus, version 0.1.0"
    created = installed.run("eventbus", "init", "team", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    for args in (("contracts", "validate"), ("contracts", "lint"), ("codegen", "go", "--check"),
                 ("docs", "build", "--out", str(tmp_path / "site"))):
        result = installed.run("eventbus", *args, cwd=tmp_path / "team")
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    assert (tmp_path / "site" / "index.html").is_file()
