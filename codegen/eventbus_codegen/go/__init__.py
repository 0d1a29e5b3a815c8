"""The Go target: a module with structs, embedded schemas and typed wrappers over the Go runtime (runtimes/go)."""

from ._generate import RUNTIME_MODULE, RUNTIME_VERSION, check_go, generate_go, write_go

__all__ = ["RUNTIME_MODULE", "RUNTIME_VERSION", "check_go", "generate_go", "write_go"]
