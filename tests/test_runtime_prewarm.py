"""The local runtime starts the state machine's Lambda workers before the first execution
(lambda_worker.WorkerPool.prewarm, the stand-in for provisioned concurrency): speed only,
so the first invocation is served by the very worker it would otherwise have started."""

from __future__ import annotations

import io
import json
import zipfile

from moto.awslambda.models import lambda_backends

from bisonflow.deploy.packaging import MACHINE_FUNCTIONS
from bisonflow.local.runtime import LocalRuntime

HANDLER = "import os\ndef handler(event, context):\n    return {'pid': os.getpid()}\n"


def _worker_pids(runtime: LocalRuntime, arn: str) -> list[int]:
    """The live worker processes serving `arn` (as invoked: the alias's version)."""
    assert runtime.emulator and runtime.emulator.pool
    pool = runtime.emulator.pool
    account, region = arn.split(":")[4], arn.split(":")[3]
    key = pool._key(lambda_backends[account][region].get_function(arn))
    return [w.process.pid for w in pool._all if w.key == key and w.process.poll() is None]


def test_every_function_the_state_machine_invokes_was_prewarmed(runtime: LocalRuntime) -> None:
    """At the start, a worker for every function the deployed machine names, through the
    aliases it invokes (cleanup_task, which only a failed run calls, included). What the
    start's prewarm returned is compared, not the pool now: the session's runtime is shared,
    and other tests publish new versions behind the aliases, whose workers differ."""
    arns = runtime._state_machine_functions()
    assert {arn.split(":")[6] for arn in arns} == {f"bisonflow-{f}" for f in MACHINE_FUNCTIONS}
    assert all(arn.endswith(":live") for arn in arns)  # invoked through their aliases
    assert runtime.prewarmed == arns


def test_a_prewarmed_worker_serves_the_first_invocation(runtime: LocalRuntime) -> None:
    awslambda = runtime.clients["lambda"]
    role = awslambda.get_function_configuration(FunctionName="bisonflow-check_gbif")["Role"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as zf:
        zf.writestr("prewarmcheck.py", HANDLER)
    awslambda.create_function(
        FunctionName="prewarmcheck",
        Runtime="python3.12",
        Role=role,
        Handler="prewarmcheck.handler",
        Code={"ZipFile": code.getvalue()},
    )
    version = awslambda.publish_version(FunctionName="prewarmcheck")["Version"]
    alias = awslambda.create_alias(
        FunctionName="prewarmcheck", Name="live", FunctionVersion=version
    )["AliasArn"]
    assert not _worker_pids(runtime, alias)

    assert runtime.emulator and runtime.emulator.pool
    assert runtime.emulator.pool.prewarm([alias]) == [alias]
    assert runtime.emulator.pool.prewarm([alias]) == [alias]  # the idle one, not a second
    (pid,) = _worker_pids(runtime, alias)
    streams = runtime.clients["logs"].describe_log_streams(logGroupName="/aws/lambda/prewarmcheck")
    assert len(streams["logStreams"]) == 1  # its own stream, as each environment has

    answer = json.loads(awslambda.invoke(FunctionName=alias, Payload=b"{}")["Payload"].read())
    assert answer == {"pid": pid}
    assert _worker_pids(runtime, alias) == [pid]
