"""The console on the local runtime, as `bisonflow local up` serves it (and its tests start it).

It talks to the emulator as any AWS client would (bisonflow.console), as a session of the
stack's ConsoleUserRole, the role a console user assumes on AWS: the emulator's IAM
enforcement (bisonflow.local.iam) then evaluates the role's own policy on every call, so a
page that makes a call the role does not grant, or on another resource than the one granted,
fails here as it would against an account. It is handed the two things only a local runtime
has: the runtime's log files (CloudWatch Logs holds them on AWS) and a "fire now" that fires
the stack's schedule as EventBridge Scheduler would (bisonflow.local.scheduler; AWS has no such
call), which stays the runtime's own: it plays Scheduler, not the console's user.
"""

from __future__ import annotations

import datetime as dt

from bisonflow.console.app import console_server
from bisonflow.console.connection import Connection
from bisonflow.console.server import ConsoleServer
from bisonflow.deploy.target import Target
from bisonflow.local.credentials import role_credentials
from bisonflow.local.runtime import LocalRuntime

#: The stack output naming the role a console user assumes.
CONSOLE_ROLE_OUTPUT = "ConsoleUserRoleArn"
#: The role session's name, as the assumed-role ARN shows it.
CONSOLE_SESSION = "bisonflow-console"


def console_target(rt: LocalRuntime) -> Target:
    """The emulator, signed by a new session of the deployment's ConsoleUserRole."""
    deployment = rt.deployment
    assert deployment is not None and rt.emulator is not None
    return Target(
        region=rt.emulator.region,
        endpoint_url=rt.emulator.endpoint_url,
        credentials=role_credentials(deployment.outputs[CONSOLE_ROLE_OUTPUT], CONSOLE_SESSION),
    )


def local_console(rt: LocalRuntime, port: int = 0) -> ConsoleServer:
    """The console for a started runtime's deployment, on 127.0.0.1:`port`, not yet started.

    The stack's outputs are the ones the deploy read: the emulator's CloudFormation keeps none
    for a stack made through a change set, and evaluating them from the template
    (bisonflow.deploy.stack_outputs) takes calls that AWS's DescribeStacks, which the role
    grants, never needs."""
    deployment = rt.deployment
    assert deployment is not None

    def fire_now() -> str:
        when = dt.datetime.now(dt.UTC).replace(microsecond=0)
        return rt.fire_schedule(when).run_arn(deployment.outputs["StateMachineAliasArn"])

    target = console_target(rt)
    connection = Connection(
        target=target,
        stack_name=deployment.stack_name,
        outputs=dict(deployment.outputs),
        account=target.account_id,
        region=target.region_name,
        local_logs=rt.workdir / "logs",
        fire_now=fire_now,
    )
    return console_server(connection, port)
