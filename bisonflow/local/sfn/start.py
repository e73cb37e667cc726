"""Emulator seam: StartExecution as Step Functions runs it, where three differences meet at
the one method of moto 5.2.5's interpreter backend that starts an execution
(`StepFunctionsParserBackend.start_execution`), composed here in one replacement (one seam per
attribute: bisonflow.local.seams), in this order:

1. A name AWS refuses is refused with AWS's error (bisonflow.local.sfn.names).
2. An alias or version ARN starts the version it routes to (bisonflow.local.sfn.aliases).
3. StartExecution without a name: AWS names the execution with a UUID; moto's interpreter
   backend names it "None", so `$$.Execution.Name` is null and every execution without a
   name shares one ARN. Fix: give it a UUID, as AWS does.
"""

from __future__ import annotations

import uuid
from typing import Any

from moto.stepfunctions.parser.models import StepFunctionsParserBackend

from bisonflow.local.seams import Patch, Seam
from bisonflow.local.sfn.aliases import unqualified
from bisonflow.local.sfn.names import refuse_invalid_name

_moto_start_execution = StepFunctionsParserBackend.start_execution


def start_execution(
    self: StepFunctionsParserBackend, state_machine_arn: str, name: str | None = None, *args: Any
) -> Any:
    """StartExecution: the name checked, a qualified ARN resolved, a missing name a UUID."""
    if name is not None:
        refuse_invalid_name(name)
    arn = unqualified(self, state_machine_arn)
    return _moto_start_execution(self, arn, name or str(uuid.uuid4()), *args)


#: What this module replaces; the emulator installs it (bisonflow.local.seams).
SEAM = Seam(
    __name__,
    Patch(
        StepFunctionsParserBackend.__module__,
        "StepFunctionsParserBackend.start_execution",
        ("self", "state_machine_arn", "name", "execution_input"),
        replacement=start_execution,
    ),
)
