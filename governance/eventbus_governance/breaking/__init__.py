"""``eventbus contracts breaking``: what changed since a git ref, and whom it breaks."""

from ._check import breaks_under, check_breaking, compare_trees
from ._rules import BREAKING_RULES, BreakingRule

__all__ = ["BREAKING_RULES", "BreakingRule", "breaks_under", "check_breaking", "compare_trees"]
