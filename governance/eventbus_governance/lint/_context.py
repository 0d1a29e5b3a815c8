"""What every lint rule looks at: the whole contracts tree, read once, faults and all.

Lint must say something useful about a broken tree, so it does not stop at the loader's first
fault: every ``*.schema.json`` file is read as raw JSON (a file that is not JSON is one finding),
and the loader's tolerant pass (``collect_contracts``) supplies the ``$id`` index that ``$ref``
resolution and example validation need. Rules see every file, because some checks are about the
tree (unique ``$id``, consumers of existing types), and the runner keeps the findings in the
files the user asked about.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any

from eventbus_codegen._contracts import (
    SCHEMA_SUFFIX,
    SHARED_FOLDER,
    ContractDocument,
    ContractSet,
    _check_location,
    _read_json_object,
    collect_contracts,
)
from eventbus_codegen._errors import ContractLoadError

from .._consumers import ConsumerRegistry, load_consumers
from .._errors import ConsumersError
from .._schema_index import SchemaIndex, SchemaNode, schema_children

__all__ = ["Issue", "LintContext", "LintFile"]

# (file, JSON pointer, message): what a check yields; the runner adds the rule id and the position.
Issue = tuple[Path, str, str]


@dataclass(frozen=True, slots=True)
class LintFile:
    """One schema file; ``schema`` is ``None`` when it is not a JSON object (``error`` says why)."""

    path: Path
    relative: PurePosixPath
    schema: dict[str, Any] | None
    error: str | None = None

    @property
    def is_shared(self) -> bool:
        return self.relative.parts[0] == SHARED_FOLDER or len(self.relative.parts) == 1

    @property
    def schema_id(self) -> str | None:
        value = self.schema.get("$id") if self.schema is not None else None
        return value if isinstance(value, str) and value else None

    @property
    def base_uri(self) -> str | None:
        """``$id`` without the file's own path: the URI of the tree root, as this file sees it."""
        schema_id = self.schema_id
        suffix = f"/{self.relative}"
        return schema_id[: -len(suffix) + 1] if schema_id and schema_id.endswith(suffix) else None


class LintContext:
    """The tree at ``root``: its files, its ``$id`` index, its consumers file."""

    def __init__(self, root: Path, base_id: str | None = None) -> None:
        self.root = root
        self.base_id = base_id
        self.files = [_read(path, root) for path in sorted(root.rglob(f"*{SCHEMA_SUFFIX}"))]
        contracts, _ = collect_contracts(root)
        self.contracts: ContractSet = contracts
        self.index = SchemaIndex(contracts)
        try:
            self.consumers: ConsumerRegistry | None = load_consumers(root)
            self.consumers_error: ConsumersError | None = None
        except ConsumersError as exc:
            self.consumers, self.consumers_error = None, exc

    @property
    def schema_files(self) -> list[LintFile]:
        return [file for file in self.files if file.schema is not None]

    @property
    def event_files(self) -> list[LintFile]:
        return [file for file in self.schema_files if not file.is_shared]

    @cached_property
    def tree_base_uri(self) -> str | None:
        """The configured base ``$id``, else the one most files agree on; a ``$ref`` must stay under it."""
        if self.base_id:
            return self.base_id
        bases = Counter(file.base_uri for file in self.schema_files if file.base_uri)
        return min(bases, key=lambda base: (-bases[base], base)) if bases else None

    def document(self, file: LintFile) -> ContractDocument | None:
        """The loaded document of ``file`` (``None`` when the loader could not take it)."""
        for doc in self.contracts.documents:
            if doc.path == file.path:
                return doc
        return None

    def root_node(self, file: LintFile) -> SchemaNode:
        doc = self.document(file) or ContractDocument(file.path, file.relative, file.schema or {}, None)
        return SchemaNode(doc, "", file.schema)

    def subschemas(self, file: LintFile) -> Iterator[SchemaNode]:
        """Every subschema of ``file``, the root included (not for shared files: theirs is a container)."""
        root = self.root_node(file)
        pending = [root] if not file.is_shared else list(schema_children(root))
        while pending:
            node = pending.pop(0)
            yield node
            pending.extend(schema_children(node))

    def event_types(self) -> set[str]:
        """The types the event files' paths spell (faulty metadata is another rule's business)."""
        types = set()
        for file in self.event_files:
            name, _ = _check_location(file.path, file.relative)
            if name is not None:
                types.add(name.type)
        return types


def _read(path: Path, root: Path) -> LintFile:
    relative = PurePosixPath(path.relative_to(root).as_posix())
    try:
        # The loader's own reader: the same JSON (duplicate keys rejected) that code generation sees.
        return LintFile(path, relative, _read_json_object(path))
    except ContractLoadError as exc:
        return LintFile(path, relative, None, exc.message)
