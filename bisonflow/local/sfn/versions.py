"""Emulator seam: ListStateMachineVersions, which moto 5.2.5 lacks.

moto keeps a state machine's published versions (PublishStateMachineVersion, and a
CloudFormation AWS::StepFunctions::StateMachineVersion) but has no ListStateMachineVersions:
its server answers the call with an HTTP 500, which boto3 retries before failing, so the
console's Workflow page would wait seconds and then show no versions, where AWS lists them.

Step Functions answers "the versions for the specified state machine ARN ... sorted in
descending order of the version creation time", each as its stateMachineVersionArn and
creationDate, with a nextToken while more remain; maxResults 0-1000, 0 meaning the default
(AWS Step Functions API Reference, ListStateMachineVersions). The pages come from the same
offset tokens as the history's (bisonflow.local.sfn.history_pages).
"""

from __future__ import annotations

from moto.core.responses import ActionResult
from moto.stepfunctions.exceptions import StateMachineDoesNotExist
from moto.stepfunctions.responses import StepFunctionResponse

from bisonflow.local.seams import Patch, Seam, Target
from bisonflow.local.sfn.history_pages import page


def list_state_machine_versions(self: StepFunctionResponse) -> ActionResult:
    arn = self._get_param("stateMachineArn")
    machine = next((m for m in self.stepfunction_backend.state_machines if m.arn == arn), None)
    if machine is None:
        raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{arn}'")
    newest_first = sorted(machine.versions.values(), key=lambda v: v.creation_date, reverse=True)
    versions = [
        {"stateMachineVersionArn": v.arn, "creationDate": v.creation_date} for v in newest_first
    ]
    answer = page(versions, arn, self._get_param("maxResults"), False, self._get_param("nextToken"))
    return ActionResult(
        {"stateMachineVersions": answer["events"]}
        | ({"nextToken": answer["nextToken"]} if "nextToken" in answer else {})
    )


#: What this module adds, and the record of a version it lists (moto's StateMachine.publish
#: stores one per version in the machine's `versions`); the emulator installs it.
SEAM = Seam(
    __name__,
    Patch(
        StepFunctionResponse.__module__,
        "StepFunctionResponse.list_state_machine_versions",
        replacement=list_state_machine_versions,
        added=True,
    ),
    uses=(
        Target(
            "moto.stepfunctions.models",
            "StateMachineVersion.__init__",
            ("self", "source", "version", "description"),
        ),
    ),
)
