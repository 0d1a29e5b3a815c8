"""The Python side of the corpus: one model module per contract, generated in parallel and cached.

datamodel-code-generator takes seconds for a contract that reaches a large document (every
GitHub webhook reaches the whole Octokit schema), so modules are generated in two processes and
kept in a cache folder reused across runs, keyed by everything that decides the output: the
contract, the documents it reaches, the generator's version and our generator module.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import types
from concurrent.futures import ProcessPoolExecutor
from importlib.metadata import version
from pathlib import Path
from typing import Any

from eventbus import EventContract
from eventbus_codegen import CodegenError, ContractDocument, ContractSet, load_contracts
from eventbus_codegen._typemodel import contract_type_name
from eventbus_codegen.python import _models

CACHE = Path(os.environ.get("EVENTBUS_TEST_CACHE", Path.home() / ".cache" / "eventbus-tests")) / "corpus-python"


def _key(contracts_root: Path, relative: str) -> str:
    contracts = load_contracts(contracts_root)
    document = next(doc for doc in contracts.events if doc.relative_path.as_posix() == relative)
    digest = hashlib.sha256()
    digest.update(version("datamodel-code-generator").encode())
    digest.update(Path(_models.__file__).read_bytes())
    for schema_id in (document.schema_id, *document.reaches):
        digest.update(json.dumps(contracts.by_id(schema_id).schema, sort_keys=True).encode())
    return digest.hexdigest()[:32]


def _generate(contracts_root: Path, relative: str) -> tuple[str, str | None, str | None]:
    """(relative path, module source, error): run in a worker process."""
    key = _key(contracts_root, relative)
    cached = CACHE / f"{key}.json"
    if cached.is_file():
        entry = json.loads(cached.read_text(encoding="utf-8"))
        return relative, entry["source"], entry["error"]
    contracts = load_contracts(contracts_root)
    document = next(doc for doc in contracts.events if doc.relative_path.as_posix() == relative)
    source: str | None = None
    error: str | None = None
    try:
        source = _models.generate_model_module(contracts, document, contract_type_name(document), "# corpus")
    except CodegenError as exc:
        error = exc.message
    CACHE.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps({"source": source, "error": error}), encoding="utf-8")
    return relative, source, error


def generate_all(contracts_root: Path, relatives: list[str]) -> dict[str, tuple[str | None, str | None]]:
    with ProcessPoolExecutor(max_workers=2) as pool:
        results = pool.map(_generate, [contracts_root] * len(relatives), relatives)
        return {relative: (source, error) for relative, source, error in results}


def round_trip(contracts: ContractSet, document: ContractDocument, source: str) -> list[dict[str, Any]]:
    """Import the module, then validate and dump each example as a Python service would re-send it."""
    examples = list(document.schema["examples"])
    name = contract_type_name(document)
    module = types.ModuleType(f"corpus_{name}")
    sys.modules[module.__name__] = module  # pydantic resolves postponed annotations through sys.modules
    try:
        exec(compile(source, str(document.relative_path), "exec"), module.__dict__)
    except Exception as exc:  # the module itself does not import: every example fails the same way
        return [{"ok": False, "error": f"import: {type(exc).__name__}: {exc}"} for _ in examples]
    model = getattr(module, name)
    contract = EventContract(type=document.event_metadata.type, exchange="corpus", model=model,
                             schema=document.schema, resources=contracts.resources_for(document))
    results = []
    for example in examples:
        try:
            event = contract.validate_python(example)
            results.append({"ok": True, "data": json.loads(contract.encode(event))})
        except Exception as exc:
            results.append({"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
    return results
