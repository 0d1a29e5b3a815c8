"""The Python target: pydantic models and run-time contracts in the ``eventbus_contracts`` package."""

from ._generate import PythonContract, check_python, generate_python, write_python

__all__ = ["PythonContract", "check_python", "generate_python", "write_python"]
