"""The console on the local runtime, as `bisonflow local up` serves it (and its tests start it).

It talks to the emulator as any AWS client would (bisonflow.console), with the emulator
operator's keys, and is handed the two things only a local runtime has: the runtime's log
files (CloudWatch Logs holds them on AWS) and a "fire now" that fires the stack's schedule as
EventBridge Scheduler would (bisonflow.local.scheduler; AWS has no such call).
"""

from __future__ import annotations

import datetime as dt

from bisonflow.console.app import console_server
from bisonflow.console.connection import connect
from bisonflow.console.server import ConsoleServer
from bisonflow.local.deploy import emulator_target
from bisonflow.local.runtime import LocalRuntime


def local_console(rt: LocalRuntime, port: int = 0) -> ConsoleServer:
    """The console for a started runtime's deployment, on 127.0.0.1:`port`, not yet started."""
    deployment = rt.deployment
    assert deployment is not None and rt.emulator is not None

    def fire_now() -> str:
        when = dt.datetime.now(dt.UTC).replace(microsecond=0)
        return rt.fire_schedule(when).run_arn(deployment.outputs["StateMachineAliasArn"])

    connection = connect(
        emulator_target(rt.emulator),
        deployment.stack_name,
        local_logs=rt.workdir / "logs",
        fire_now=fire_now,
    )
    return console_server(connection, port)
