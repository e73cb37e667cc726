"""Emulator seam: an execution's end reaches the EventBridge rules that match it, as on AWS.

Step Functions sends "Step Functions Execution Status Change" events to EventBridge's default
bus (source `aws.states`; detail: executionArn, stateMachineArn, name, status, startDate,
stopDate, input, output, error, cause: Step Functions developer guide, "Automating Step
Functions event delivery with EventBridge"); a rule whose pattern matches sends each target its
input, after the target's input transformer ("Amazon EventBridge input transformation": each
`<name>` of InputTemplate replaced by the value InputPathsMap's JSONPath selects), and invokes a
Lambda target asynchronously, which Lambda retries twice after a function error (Lambda
Developer Guide, "Asynchronous invocation"). EventBridge may invoke the function only if its
resource policy lets `events.amazonaws.com` do so from that rule (a `lambda:InvokeFunction`
permission whose SourceArn is the rule's ARN, "Using resource-based policies for Amazon
EventBridge").

moto 5.2.5's interpreter sends no such event and its EventBridge invokes no Lambda target, so
the stack's ExecutionEndedUncleanRule (the cleanup of a run that failed without its own
CleanupTasks, was stopped or timed out) never ran locally. Fix: when an execution ends, its
status change is matched against the default bus's enabled rules through the events API, and
each matching rule's Lambda targets are invoked with the transformed input, in a thread of
their own (asynchronously, after the status is visible, as on AWS), refused as EventBridge
would be if the function's policy does not allow that rule, and retried twice on an error.
Other target types (SNS, ...) are not delivered: nothing local reads them.
"""

from __future__ import annotations

import json
import os
import re
import threading
import uuid
from functools import cache
from typing import Any

import boto3
from moto.events.models import EventPattern
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

from bisonflow.local import EMULATOR_KEYS, EMULATOR_REGION
from bisonflow.local.seams import Patch, Seam

DETAIL_TYPE = "Step Functions Execution Status Change"
#: An asynchronous invocation is tried once and retried twice after a function error.
ASYNC_ATTEMPTS = 3
_LAMBDA_TARGET = re.compile(r"^arn:aws:lambda:[^:]+:\d{12}:function:")


class DeliveryRefused(PermissionError):
    """EventBridge may not invoke the target: its resource policy does not allow the rule."""


def status_change_event(execution: Any) -> dict[str, Any]:
    """The event Step Functions sends when `execution` (moto's) changes status."""
    arn: str = execution.exec_arn
    _, partition, _, region, account, _, machine, _ = arn.split(":", 7)
    detail: dict[str, Any] = {
        "executionArn": arn,
        "stateMachineArn": f"arn:{partition}:states:{region}:{account}:stateMachine:{machine}",
        "name": execution.name,
        "status": execution.exec_status.value,
        "startDate": int(execution.start_date.timestamp() * 1000),
        "stopDate": int(execution.stop_date.timestamp() * 1000) if execution.stop_date else None,
        "input": json.dumps(execution.input_data),
        "output": json.dumps(execution.output) if execution.output is not None else None,
        "error": execution.error,
        "cause": execution.cause,
    }
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": DETAIL_TYPE,
        "source": "aws.states",
        "account": account,
        "time": (execution.stop_date or execution.start_date).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [arn],
        "detail": detail,
    }


def _json_path(event: dict[str, Any], path: str) -> Any:
    value: Any = event
    for part in path.removeprefix("$.").split(".") if path != "$" else []:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def transformed(transformer: dict[str, Any], event: dict[str, Any]) -> str:
    """An input transformer's output: each <name> in InputTemplate replaced by its path's
    value (strings as they are, inside the template's own quotes; other values as JSON)."""
    values = {n: _json_path(event, p) for n, p in transformer.get("InputPathsMap", {}).items()}

    def value(match: re.Match[str]) -> str:
        found = values[match.group(1)]
        return found if isinstance(found, str) else json.dumps(found)

    return re.sub(r"<(\w+)>", value, transformer["InputTemplate"])


def target_input(target: dict[str, Any], event: dict[str, Any]) -> str:
    """What the target receives: Input, InputPath, InputTransformer or the whole event."""
    if "Input" in target:
        return str(target["Input"])
    if "InputPath" in target:
        return json.dumps(_json_path(event, target["InputPath"]))
    if "InputTransformer" in target:
        return transformed(target["InputTransformer"], event)
    return json.dumps(event)


def allows_rule(awslambda: Any, function: str, rule_arn: str) -> bool:
    """Whether `function`'s resource policy lets EventBridge invoke it from `rule_arn`."""
    try:
        policy = json.loads(awslambda.get_policy(FunctionName=function)["Policy"])
    except awslambda.exceptions.ResourceNotFoundException:
        return False
    for statement in policy.get("Statement", []):
        principal = statement.get("Principal", {})
        service = principal.get("Service") if isinstance(principal, dict) else principal
        source = statement.get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn")
        if (
            statement.get("Effect") == "Allow"
            and service == "events.amazonaws.com"
            and statement.get("Action") in ("lambda:InvokeFunction", ["lambda:InvokeFunction"])
            and source in (rule_arn, None)
        ):
            return True
    return False


def _clients() -> tuple[Any, Any]:
    return _clients_at(f"http://127.0.0.1:{os.environ['MOTO_PORT']}")


@cache
def _clients_at(endpoint: str) -> tuple[Any, Any]:
    """EventBridge's and Lambda's clients, made once per emulator: a new boto3 session loads
    the endpoint table and both service models again (about a second of CPU for every
    execution's end), and a client is safe to share between the delivering threads."""
    session = boto3.Session(
        region_name=EMULATOR_REGION,
        aws_access_key_id=EMULATOR_KEYS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=EMULATOR_KEYS["AWS_SECRET_ACCESS_KEY"],
    )
    return session.client("events", endpoint_url=endpoint), session.client(
        "lambda", endpoint_url=endpoint
    )


def deliver(event: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Invoke every Lambda target of the enabled default-bus rules matching `event`;
    (rule, target ARN, the function's last answer) for each delivery."""
    events, awslambda = _clients()
    delivered = []
    for page in events.get_paginator("list_rules").paginate(EventBusName="default"):
        for rule in page["Rules"]:
            if rule.get("State") != "ENABLED" or "EventPattern" not in rule:
                continue
            if not EventPattern.load(rule["EventPattern"]).matches_event(event):
                continue
            for target in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]:
                if not _LAMBDA_TARGET.match(target["Arn"]):
                    continue
                if not allows_rule(awslambda, target["Arn"], rule["Arn"]):
                    raise DeliveryRefused(
                        f"rule {rule['Name']} may not invoke {target['Arn']}: its resource "
                        "policy has no lambda:InvokeFunction for events.amazonaws.com from it"
                    )
                payload = target_input(target, event)
                for _ in range(ASYNC_ATTEMPTS):
                    answer = awslambda.invoke(FunctionName=target["Arn"], Payload=payload)
                    body = json.loads(answer["Payload"].read() or b"null")
                    if "FunctionError" not in answer:
                        break
                delivered.append((rule["Name"], target["Arn"], body))
    return delivered


#: The last deliveries, newest last, for tests and the local console (bounded).
DELIVERIES: list[tuple[str, list[tuple[str, str, dict[str, Any]]] | BaseException]] = []
_DELIVERIES_KEPT = 100

_moto_terminated = BaseExecutionWorkerCommunication.terminated


def terminated(self: BaseExecutionWorkerCommunication) -> None:
    """The execution's end as moto reflects it, then its status change delivered."""
    _moto_terminated(self)
    event = status_change_event(self.execution)

    def send() -> None:
        try:
            outcome: Any = deliver(event)
        except Exception as exc:  # noqa: BLE001 - kept for the record, as EventBridge's DLQ would
            outcome = exc
        DELIVERIES.append((event["detail"]["executionArn"], outcome))
        del DELIVERIES[:-_DELIVERIES_KEPT]

    threading.Thread(target=send, name="sfn-status-change", daemon=True).start()


#: (owner, attribute) this module replaces.


#: What this module replaces; the emulator installs it (bisonflow.local.seams).
SEAM = Seam(
    __name__,
    Patch(
        BaseExecutionWorkerCommunication.__module__,
        "BaseExecutionWorkerCommunication.terminated",
        ("self",),
        replacement=terminated,
    ),
)
