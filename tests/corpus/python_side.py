"""The Python side of the corpus: our generator's model modules, and datamodel-code-generator alone.

Modules are generated in two processes and kept in a cache folder reused across runs (``--no-cache``
measures the real time), keyed by everything that decides the output: the contract, the documents
it reaches, the generator's version and our generator's modules.

The baseline is what a user without this project would do: datamodel-code-generator with its
defaults (pydantic v2 models) on the same self-contained schema of what the contract reaches, then
``model_validate`` and ``model_dump(mode="json", by_alias=True, exclude_unset=True)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import types
import warnings
from concurrent.futures import ProcessPoolExecutor
from importlib.metadata import version
from pathlib import Path
from typing import Any

from datamodel_code_generator import DataModelType, InputFileType, PythonVersion, generate

import eventbus_codegen
from eventbus import EventContract
from eventbus_codegen import CodegenError, ContractDocument, ContractSet, load_contracts
from eventbus_codegen._bundle import bundle_contract
from eventbus_codegen._typemodel import contract_type_name
from eventbus_codegen.python import _models

CACHE = Path(os.environ.get("EVENTBUS_TEST_CACHE", Path.home() / ".cache" / "eventbus-tests")) / "corpus-python"
Result = dict[str, Any]


def _key(kind: str, contracts: ContractSet, document: ContractDocument) -> str:
    digest = hashlib.sha256(kind.encode())
    digest.update(version("datamodel-code-generator").encode())
    for module in sorted(Path(eventbus_codegen.__file__).parent.rglob("*.py")):
        digest.update(module.read_bytes())
    for schema_id in (document.schema_id, *document.reaches):
        digest.update(json.dumps(contracts.by_id(schema_id).schema, sort_keys=True).encode())
    return digest.hexdigest()[:32]


def _generate(contracts_root: Path, relative: str, kind: str, use_cache: bool) -> tuple[str, str | None, str | None]:
    """(relative path, module source, error): run in a worker process."""
    contracts = load_contracts(contracts_root)
    document = next(doc for doc in contracts.events if doc.relative_path.as_posix() == relative)
    cached = CACHE / f"{_key(kind, contracts, document)}.json"
    if use_cache and cached.is_file():
        entry = json.loads(cached.read_text(encoding="utf-8"))
        return relative, entry["source"], entry["error"]
    source: str | None = None
    error: str | None = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if kind == "eventbus":
                source = _models.generate_model_module(contracts, document, contract_type_name(document), "# corpus")
            else:
                source = _baseline(contracts, document)
        except CodegenError as exc:
            error = exc.message
        except Exception as exc:  # the baseline may fail any way; so may we, and the table says so
            error = f"{type(exc).__name__}: {str(exc)[:300]}"
    CACHE.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps({"source": source, "error": error}), encoding="utf-8")
    return relative, source, error


def _baseline(contracts: ContractSet, document: ContractDocument) -> str:
    with tempfile.TemporaryDirectory(prefix="corpus-dmcg-") as tmp:
        entry = Path(tmp) / "schema.json"
        entry.write_text(json.dumps(bundle_contract(contracts, document)), encoding="utf-8")
        source = generate(entry, input_file_type=InputFileType.JsonSchema,
                          output_model_type=DataModelType.PydanticV2BaseModel,
                          target_python_version=PythonVersion.PY_311, class_name=contract_type_name(document))
    if not isinstance(source, str):
        raise RuntimeError("datamodel-code-generator returned no single module")
    return source


def generate_all(contracts_root: Path, relatives: list[str], kind: str = "eventbus",
                 use_cache: bool = True) -> dict[str, tuple[str | None, str | None]]:
    with ProcessPoolExecutor(max_workers=2) as pool:
        count = len(relatives)
        results = pool.map(_generate, [contracts_root] * count, relatives, [kind] * count, [use_cache] * count,
                           chunksize=4)
        return {relative: (source, error) for relative, source, error in results}


def _import(document: ContractDocument, source: str, prefix: str) -> types.ModuleType:
    module = types.ModuleType(f"{prefix}_{contract_type_name(document)}")
    sys.modules[module.__name__] = module  # pydantic resolves postponed annotations through sys.modules
    exec(compile(source, str(document.relative_path), "exec"), module.__dict__)
    return module


def round_trip(contracts: ContractSet, document: ContractDocument, source: str,
               payloads: list[Any], rejects: list[Any]) -> tuple[list[Result], list[bool] | None]:
    """Each valid payload validated and dumped as a Python service would re-send it; each must-reject checked."""
    try:
        module = _import(document, source, "corpus")
        model = getattr(module, contract_type_name(document))
        contract: EventContract[Any] = EventContract(type=document.event_metadata.type, exchange="corpus", model=model,
                                 schema=document.schema, resources=contracts.resources_for(document))
    except Exception as exc:  # the module does not import: every payload fails the same way
        failed = {"ok": False, "error": f"import: {type(exc).__name__}: {str(exc)[:200]}"}
        return [failed] * len(payloads), None
    results: list[Result] = []
    for payload in payloads:
        try:
            event = contract.validate_python(payload)
            results.append({"ok": True, "data": json.loads(contract.encode(event))})
        except Exception as exc:
            results.append({"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
    rejected = []
    for payload in rejects:
        try:
            contract.validate_python(payload)
            rejected.append(False)
        except Exception:
            rejected.append(True)
    return results, rejected


def baseline_round_trip(document: ContractDocument, source: str, payloads: list[Any]) -> list[Result] | None:
    """datamodel-code-generator's models alone: validate, dump; ``None`` when the module does not import."""
    try:
        module = _import(document, source, "baseline")
        model = getattr(module, contract_type_name(document))
    except Exception:
        return None
    results: list[Result] = []
    for payload in payloads:
        try:
            value = model.model_validate(payload)
            results.append({"ok": True, "data": value.model_dump(mode="json", by_alias=True, exclude_unset=True)})
        except Exception as exc:
            results.append({"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
    return results
