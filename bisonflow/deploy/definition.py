"""The state machine definition and its `${Name}` placeholders.

The ASL's placeholders use CloudFormation's DefinitionSubstitutions syntax, so on AWS the
stack substitutes them. Where a target's CloudFormation cannot
(bisonflow.deploy.emulated.resources), the same substitution happens here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from bisonflow import PROJECT_ROOT

ASL_PATH = PROJECT_ROOT / "statemachines" / "bison_workflow.asl.json"
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def placeholder(function: str) -> str:
    """The ASL placeholder of a function: check_gbif -> CheckGbifFunctionArn."""
    return "".join(part.title() for part in function.split("_")) + "FunctionArn"


def substitute(text: str, values: Mapping[str, str], source: str = ASL_PATH.name) -> str:
    """`${Name}` replaced from `values`; an unknown name is an error naming it.

    Only `${Name}` is touched: JSONPath's `$` and the context object's `$$` stay as written.
    """

    def replace(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise KeyError(f"{source}: no value for placeholder ${{{match.group(1)}}}")
        return values[match.group(1)]

    return PLACEHOLDER.sub(replace, text)


def render_definition(function_arns: Mapping[str, str]) -> str:
    """The ASL with each function's placeholder replaced by its ARN (or alias ARN)."""
    return substitute(ASL_PATH.read_text(), {placeholder(f): a for f, a in function_arns.items()})
