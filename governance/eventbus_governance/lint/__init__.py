"""``eventbus contracts lint``: style and hygiene rules for the contracts tree, each with a stable id."""

from ._rules import LINT_RULES, LintRule, lint_contracts

__all__ = ["LINT_RULES", "LintRule", "lint_contracts"]
