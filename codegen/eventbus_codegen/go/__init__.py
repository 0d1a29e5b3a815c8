"""The Go target: a module with structs, gojsonschema validation and typed amqp091-go publish/subscribe."""

from ._generate import check_go, generate_go, write_go

__all__ = ["check_go", "generate_go", "write_go"]
