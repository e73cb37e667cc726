"""bisonflow.local.sfn.versions: ListStateMachineVersions on the emulator, as Step Functions
answers it (moto 5.2.5 has no such action and answered 500)."""

from __future__ import annotations

import pytest

from bisonflow.local.runtime import LocalRuntime


def test_the_deployed_versions_are_listed_newest_first_in_pages(runtime: LocalRuntime) -> None:
    assert runtime.deployment
    sfn = runtime.clients["stepfunctions"]
    machine = runtime.deployment.state_machine_arn
    live = sfn.describe_state_machine_alias(
        stateMachineAliasArn=runtime.deployment.outputs["StateMachineAliasArn"]
    )
    routed = {r["stateMachineVersionArn"] for r in live["routingConfiguration"]}
    listed = sfn.list_state_machine_versions(stateMachineArn=machine)["stateMachineVersions"]
    arns = [v["stateMachineVersionArn"] for v in listed]
    assert routed <= set(arns) and all(a.startswith(machine + ":") for a in arns)
    dates = [v["creationDate"] for v in listed]
    assert dates == sorted(dates, reverse=True)

    paged, token = [], None
    while True:
        kwargs = {"nextToken": token} if token else {}
        answer = sfn.list_state_machine_versions(stateMachineArn=machine, maxResults=1, **kwargs)
        assert len(answer["stateMachineVersions"]) == 1
        paged += [v["stateMachineVersionArn"] for v in answer["stateMachineVersions"]]
        token = answer.get("nextToken")
        if not token:
            break
    assert paged == arns


def test_a_machine_the_account_lacks_is_refused(runtime: LocalRuntime) -> None:
    sfn = runtime.clients["stepfunctions"]
    missing = "arn:aws:states:us-east-1:123456789012:stateMachine:no-such-machine"
    with pytest.raises(sfn.exceptions.StateMachineDoesNotExist):
        sfn.list_state_machine_versions(stateMachineArn=missing)
