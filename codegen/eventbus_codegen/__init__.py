"""Code generation from the event contracts in ``contracts/``.

Stages: load and check the contracts tree (``load_contracts``, ``validate_contracts``), then
generate one target language from it (``generate_python``; ``generate_typescript`` and
``generate_go`` through the language-neutral type model of ``_typemodel``), then write it or check
the committed copy for drift (``write_*``, ``check_*``). Every error names ``file#/json/pointer``.
"""

from ._contracts import ContractDocument, ContractSet, EventMetadata, load_contracts
from ._errors import CodegenError, CodegenWarning, ContractLoadError, GenerationError
from ._validate import Problem, validate_contracts
from .go import check_go, generate_go, write_go
from .python import check_python, generate_python, write_python
from .typescript import check_typescript, generate_typescript, write_typescript

__all__ = [
    "CodegenError",
    "CodegenWarning",
    "ContractDocument",
    "ContractLoadError",
    "ContractSet",
    "EventMetadata",
    "GenerationError",
    "Problem",
    "check_go",
    "check_python",
    "check_typescript",
    "generate_go",
    "generate_python",
    "generate_typescript",
    "load_contracts",
    "validate_contracts",
    "write_go",
    "write_python",
    "write_typescript",
]
