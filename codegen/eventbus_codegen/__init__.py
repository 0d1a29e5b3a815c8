"""Code generation from the event contracts in ``contracts/``.

Stages: load and check the contracts tree (``load_contracts``, ``validate_contracts``), then
generate one target language from it (``generate_python``), then write it or check the committed
copy for drift (``write_python``, ``check_python``). Every error names ``file#/json/pointer``.
"""

from ._contracts import ContractDocument, ContractSet, EventMetadata, load_contracts
from ._errors import CodegenError, ContractLoadError, GenerationError
from ._validate import Problem, validate_contracts
from .python import check_python, generate_python, write_python

__all__ = [
    "CodegenError",
    "ContractDocument",
    "ContractLoadError",
    "ContractSet",
    "EventMetadata",
    "GenerationError",
    "Problem",
    "check_python",
    "generate_python",
    "load_contracts",
    "validate_contracts",
    "write_python",
]
