"""``eventbus docs build``: the HTML catalog in headless Chromium, and the AsyncAPI document against the spec.

Both outside pieces are real and installed, never copied in: the official AsyncAPI 3.0 JSON
Schema comes from npm (``@asyncapi/specs``) into a cache folder the first time, and Chromium is
Debian's package (``scripts/prepare-tests``, run by README's test command, installs it). When
Chromium cannot be had (no root to install it) the browser tests skip and say how to get it.

The screenshot of the index lands in ``build/catalog/index.png`` at the repository root
(override with EVENTBUS_CATALOG_SCREENSHOT).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import jsonschema
import pytest
import yaml

from eventbus_governance.catalog import build_docs, render_docs

from .conftest import REPO_ROOT

SPECS_DIR = Path(os.environ.get("EVENTBUS_ASYNCAPI_SPECS_DIR", Path.home() / ".cache/eventbus-tests/asyncapi-specs"))
SPECS_PACKAGE = "@asyncapi/specs@6"
SCREENSHOT = Path(os.environ.get("EVENTBUS_CATALOG_SCREENSHOT", REPO_ROOT / "build" / "catalog" / "index.png"))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("catalog") / "site"
    build_docs(REPO_ROOT / "contracts", out)
    return out


@pytest.fixture(scope="module")
def asyncapi_validator() -> jsonschema.Draft7Validator:
    """The official AsyncAPI 3.0.0 JSON Schema (draft-07, all definitions bundled), from npm."""
    schema_file = SPECS_DIR / "node_modules" / "@asyncapi" / "specs" / "schemas" / "3.0.0.json"
    if not schema_file.is_file():
        if shutil.which("npm") is None:
            pytest.fail("npm is needed to install the AsyncAPI JSON Schema (@asyncapi/specs): install Node.js")
        SPECS_DIR.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            ["npm", "install", "--prefix", str(SPECS_DIR), "--no-audit", "--no-fund", "--silent", SPECS_PACKAGE],
            capture_output=True, text=True, timeout=300,
        )
        if result.returncode != 0 or not schema_file.is_file():
            pytest.fail(f"npm install {SPECS_PACKAGE} failed: {result.stderr.strip()[-500:]}")
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema"
    return jsonschema.Draft7Validator(schema)


@pytest.fixture(scope="module")
def asyncapi(site: Path) -> dict:
    return yaml.safe_load((site / "asyncapi.yaml").read_text(encoding="utf-8"))


# -- AsyncAPI -------------------------------------------------------------------------------------------


def test_asyncapi_document_is_valid_against_the_official_schema(asyncapi: dict, asyncapi_validator) -> None:
    errors = [f"{error.json_path}: {error.message[:200]}" for error in asyncapi_validator.iter_errors(asyncapi)]
    assert errors == []


def test_the_validator_does_reject_a_broken_document(asyncapi: dict, asyncapi_validator) -> None:
    broken = json.loads(json.dumps(asyncapi))
    broken["operations"]["send.chat.conversation.ended.v1"]["action"] = "publish"  # AsyncAPI 2 wording
    del broken["channels"]["context.candidates.updated.v1"]["bindings"]["amqp"]["exchange"]

    assert len(list(asyncapi_validator.iter_errors(broken))) >= 2


def test_channels_operations_and_messages_describe_the_bus(asyncapi: dict) -> None:
    channel = asyncapi["channels"]["chat.conversation.ended.v1"]
    assert channel["address"] == "chat.conversation.ended.v1"
    assert channel["bindings"]["amqp"]["exchange"] == {
        "name": "chat", "type": "topic", "durable": True, "autoDelete": False, "vhost": "/"}
    operations = asyncapi["operations"]
    assert {name: op["action"] for name, op in operations.items()} == {
        "send.chat.conversation.ended.v1": "send",
        "receive.context-handling.chat.conversation.ended.v1": "receive",
        "send.context.candidates.updated.v1": "send",
        "send.context.friendship.status_changed.v1": "send",
    }
    assert operations["send.chat.conversation.ended.v1"]["x-eventbus-service"] == "chat-backend"
    receive = operations["receive.context-handling.chat.conversation.ended.v1"]
    assert receive["x-eventbus-queue"] == "context-handling.chat.conversation.ended.v1"
    message = asyncapi["components"]["messages"]["ConversationEndedV1"]
    headers = asyncapi["components"]["schemas"]["CloudEventsHeaders"]
    assert headers["required"] == [
        "cloudEvents_specversion", "cloudEvents_id", "cloudEvents_source", "cloudEvents_type", "cloudEvents_time"]
    assert message["headers"]["allOf"][1]["properties"]["cloudEvents_type"] == {"const": "chat.conversation.ended.v1"}


def test_every_internal_reference_resolves(asyncapi: dict) -> None:
    refs = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(asyncapi)
    assert refs and all(ref.startswith("#/") for ref in refs)
    for ref in refs:
        node = asyncapi
        for token in ref[2:].split("/"):
            node = node[token.replace("~1", "/").replace("~0", "~")]


def test_bundled_payloads_still_accept_every_example_and_reject_bad_data(asyncapi: dict) -> None:
    components = asyncapi["components"]
    for name, message in components["messages"].items():
        schema = {"$ref": message["payload"]["$ref"], "components": components}
        validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
        assert message["examples"], name
        for example in message["examples"]:
            assert list(validator.iter_errors(example["payload"])) == [], name
        assert list(validator.iter_errors({"unexpected": True})), name


def test_output_is_deterministic() -> None:
    assert render_docs(REPO_ROOT / "contracts") == render_docs(REPO_ROOT / "contracts")


# -- HTML in Chromium -------------------------------------------------------------------------------------


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(values["id"] or "")
        for attribute in ("href", "src"):
            if values.get(attribute):
                self.links.append(values[attribute] or "")


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("headless Chromium is needed: apt-get update && apt-get install -y chromium "
                    "(scripts/prepare-tests does this as root)")
    return found


def chromium_run(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=90)


def test_every_page_loads_in_chromium_and_every_link_resolves(site: Path, tmp_path: Path) -> None:
    pending, seen, dom_ids = [site / "index.html"], set(), {}
    links: list[tuple[Path, str]] = []
    while pending:
        page = pending.pop()
        if page in seen:
            continue
        seen.add(page)
        result = chromium_run(tmp_path / "profile", "--dump-dom", page.as_uri())
        assert result.returncode == 0, result.stderr[-500:]
        assert "Generated by" in result.stdout and "<h1>" in result.stdout, f"{page} did not render"
        parser = _Links()
        parser.feed(result.stdout)
        dom_ids[page] = parser.ids
        for link in parser.links:
            parts = urlsplit(link)
            assert not parts.scheme and not parts.netloc, f"{page.name} links off-site: {link}"
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            assert target.is_file(), f"{page.relative_to(site)}: broken link {link}"
            links.append((target, parts.fragment))
            if target.suffix == ".html":
                pending.append(target)
    assert {page.relative_to(site).as_posix() for page in seen} == {
        "index.html",
        "events/chat.conversation.ended.v1.html",
        "events/context.candidates.updated.v1.html",
        "events/context.friendship.status_changed.v1.html",
    }
    for target, fragment in links:
        if fragment:
            assert fragment in dom_ids[target], f"no #{fragment} in {target.name}"


def test_a_screenshot_of_the_index_is_produced(site: Path, tmp_path: Path) -> None:
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)

    result = chromium_run(tmp_path / "profile", "--hide-scrollbars", "--window-size=1280,900",
                          f"--screenshot={SCREENSHOT}", (site / "index.html").as_uri())

    assert result.returncode == 0, result.stderr[-500:]
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert SCREENSHOT.stat().st_size > 10_000  # a blank page compresses to far less


def test_event_page_shows_fields_services_and_versions(site: Path) -> None:
    html = (site / "events" / "chat.conversation.ended.v1.html").read_text(encoding="utf-8")

    for expected in ("<code>participants</code>", "array of string (UserId)", "string (Timestamp)",
                     "<code>messages_by_participant.*</code>", "map UserId → integer", "context-handling",
                     "publishes (owner)", "chat-backend", "<strong>v1</strong>", "conv_8f14e45f",
                     'href="../schemas/chat/conversation.ended.v1.schema.json"'):
        assert expected in html, expected
    candidates = (site / "events" / "context.candidates.updated.v1.html").read_text(encoding="utf-8")
    assert "<code>candidates[].rank_score</code>" in candidates


def test_versions_of_one_event_link_to_each_other(tmp_path: Path) -> None:
    tree = Path(__file__).parent / "breaking" / "MAJOR_VERSION_RETIRED" / "v1_retired_after_v2" / "before"
    build_docs(tree, tmp_path)

    v1 = (tmp_path / "events" / "shop.order.placed.v1.html").read_text(encoding="utf-8")
    v2 = (tmp_path / "events" / "shop.order.placed.v2.html").read_text(encoding="utf-8")
    assert '<a href="../events/shop.order.placed.v2.html">v2</a>' in v1 and "<strong>v1</strong>" in v1
    assert '<a href="../events/shop.order.placed.v1.html">v1</a>' in v2 and "<strong>v2</strong>" in v2
    assert "<code>payment</code></td><td>oneOf of 2" in v1
