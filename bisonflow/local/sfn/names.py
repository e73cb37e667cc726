"""StartExecution refuses the execution names AWS refuses (used by the StartExecution seam,
bisonflow.local.sfn.start).

AWS answers a name outside the API's length constraint (1 to 80 characters) with
ValidationException, "1 validation error detected: Value '…' at 'name' failed to satisfy
constraint: Member must have length less than or equal to 80", and a name with a character
the API forbids (white space, brackets, wildcards, special characters, control characters,
surrogates; bisonflow.layout cites the list) with InvalidName, "The provided name is
not valid" (Step Functions API Reference, StartExecution, Request Parameters "name" and
Errors "InvalidName"). moto 5.2.5's interpreter backend (StepFunctionsParserBackend, which the
emulator runs so that executions really execute) starts an execution under any name: its
base backend's character check (`_validate_name`) is not called there ("TODO: validate name
format"), and the length is checked nowhere. A name with `/` even makes an execution ARN with
an extra path segment, which DescribeExecution then cannot parse.

Fix: before moto (and before the seam's UUID for a missing name) the name is checked with
bisonflow.layout.execution_name_problem, the rule `bisonflow start --name` uses, and refused
with AWS's error code and the message format moto's own check and length exception use. A
request without a name still gets a UUID (bisonflow.local.sfn.start); botocore already refuses
an empty name client-side (the service model's min length 1), and the seam refuses it from
other clients.
"""

from __future__ import annotations

from moto.stepfunctions.exceptions import InvalidName, ValidationException

from bisonflow.layout import (
    EXECUTION_NAME_MAX,
    execution_name_problem,
    execution_name_too_long,
)


def refuse_invalid_name(name: str) -> None:
    """Raise the error StartExecution answers for `name`, if it answers one."""
    if execution_name_too_long(name) or not name:
        bound = (
            f"less than or equal to {EXECUTION_NAME_MAX}" if name else "greater than or equal to 1"
        )
        raise ValidationException(
            f"1 validation error detected: Value '{name}' at 'name' failed to satisfy "
            f"constraint: Member must have length {bound}"
        )
    if execution_name_problem(name):
        raise InvalidName(f"Invalid Name: '{name}'")
