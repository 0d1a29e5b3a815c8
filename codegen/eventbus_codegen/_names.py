"""Identifiers made from schema names: the same word splitting for every language.

``check_run$completed``, ``kebab-case``, ``@type`` and ``2fa`` all have to become identifiers;
doing it in one place keeps ``UserId`` the same type name in TypeScript and Go.
"""

from __future__ import annotations

import re

__all__ = ["pascal_case", "screaming_snake_case", "words"]

_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z]|[0-9]|\b|_|$)|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def words(text: str) -> list[str]:
    """``"checkRun$completed-2fa"`` → ``["check", "Run", "completed", "2", "fa"]``: split at case and symbols."""
    return _WORD.findall(text)


def pascal_case(text: str, *, fallback: str = "Value") -> str:
    """``conversation.ended`` → ``ConversationEnded``; a leading digit gets an ``X`` so it stays an identifier."""
    parts = words(text)
    name = "".join(part[:1].upper() + part[1:] for part in parts) or fallback
    return f"X{name}" if name[0].isdigit() else name


def screaming_snake_case(text: str) -> str:
    """``ConversationEndedV1`` → ``CONVERSATION_ENDED_V1``."""
    parts = words(text)
    name = "_".join(part.upper() for part in parts) or "VALUE"
    return f"X_{name}" if name[0].isdigit() else name
