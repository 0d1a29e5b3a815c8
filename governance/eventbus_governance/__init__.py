"""Contract governance: lint, breaking-change detection against a git ref, and the event catalog.

Built on the loader (``load_contracts``) like the generators. Findings are data (``Finding``) and
printing is separate (``render_findings``: text, json, github), as in buf.
"""

from ._config import CONFIG_FILE, GovernanceConfig, load_config
from ._consumers import CONSUMERS_FILE, Consumer, ConsumerRegistry, load_consumers
from ._errors import ConfigError, ConsumersError, GitRefError, GovernanceError
from ._findings import FORMATS, Finding, render_findings
from .breaking import BREAKING_RULES, BreakingRule, breaks_under, check_breaking, compare_trees
from .lint import LINT_RULES, LintRule, lint_contracts

__all__ = [
    "BREAKING_RULES",
    "BreakingRule",
    "CONFIG_FILE",
    "CONSUMERS_FILE",
    "ConfigError",
    "Consumer",
    "ConsumerRegistry",
    "ConsumersError",
    "FORMATS",
    "Finding",
    "GitRefError",
    "GovernanceConfig",
    "GovernanceError",
    "LINT_RULES",
    "LintRule",
    "breaks_under",
    "check_breaking",
    "compare_trees",
    "lint_contracts",
    "load_config",
    "load_consumers",
    "render_findings",
]
