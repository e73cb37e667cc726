"""What the console talks to: one account and region (AWS, or an endpoint such as the local
emulator), the workflow's stack there, and what a local runtime adds.

The boto3 session is made here, in the console's process, from the user's own credentials
(--profile, else boto3's chain), and signs every call server-side: the browser sees pages and
JSON, never a key. The console can therefore do no more than those credentials allow; AWS's
refusal of a call is shown on the page as AWS words it (bisonflow.console.server).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bisonflow.deploy import stack_outputs
from bisonflow.deploy.target import Target


@dataclass
class Connection:
    """The console's one target.

    outputs: the stack's outputs (StateMachineArn, StateMachineAliasArn, BucketName,
    ScheduleName, ...), read once at start, as the CLI reads them;
    local_logs: the local runtime's log folder (<workdir>/logs), served by the console, as
    CloudWatch Logs holds them on AWS; None against an account;
    fire_now: fires the stack's schedule now as EventBridge Scheduler would and returns what
    it started (an execution ARN); only a local runtime can, so None against an account.
    """

    target: Target
    stack_name: str
    outputs: dict[str, str]
    account: str
    region: str
    local_logs: Path | None = None
    fire_now: Callable[[], str] | None = None

    def client(self, service: str) -> Any:
        return self.target.client(service)

    @property
    def endpoint_url(self) -> str | None:
        return self.target.endpoint_url

    @property
    def state_machine_arn(self) -> str:
        return self.outputs["StateMachineArn"]

    @property
    def bucket(self) -> str:
        return self.outputs["BucketName"]

    @property
    def where(self) -> str:
        """The account, region and endpoint, as every page says them."""
        at = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"account {self.account} · {self.region}{at} · stack {self.stack_name}"


def connect(
    target: Target,
    stack_name: str,
    *,
    local_logs: Path | None = None,
    fire_now: Callable[[], str] | None = None,
) -> Connection:
    """Read the stack's outputs and who the credentials are (STS GetCallerIdentity, which
    needs no permission) before serving: a wrong profile, region or stack ends the command
    in one line, not in the first page."""
    outputs = stack_outputs(target, stack_name)
    return Connection(
        target=target,
        stack_name=stack_name,
        outputs=outputs,
        account=target.account_id,
        region=target.region_name,
        local_logs=local_logs,
        fire_now=fire_now,
    )
