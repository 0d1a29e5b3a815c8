"""The TypeScript target: an npm package with types, Ajv validators and typed amqplib publish/subscribe."""

from ._generate import check_typescript, generate_typescript, write_typescript

__all__ = ["check_typescript", "generate_typescript", "write_typescript"]
