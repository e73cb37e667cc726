"""What one execution cost on AWS: an ESTIMATE from its history events and logs.

Nobody on the team has an AWS bill to read, and a month's run touches four priced services,
so `estimate()` works the cost out from what the execution itself records, one line per
priced quantity, each with its unit, its unit price and where that price comes from. It is an
estimate, labelled so wherever it is shown: it leaves out S3 requests and storage, CloudWatch
Logs, EBS volumes, data transfer, the Glue Data Catalog and every free tier (a month's free
tier is shared with whatever else the account runs), and it times Lambda functions, instances
and SQL from the history where better figures are not given.

How each quantity is found, and the price that applies (US East (N. Virginia); prices as
published on PRICES_AS_OF; a price no page we could read states is a parameter without a
default, and its line shows the quantity with "no price"):

* **State transitions** (Step Functions Standard): "Step Functions counts a state transition
  each time a step of your workflow is executed ... including retries" (AWS Step Functions
  pricing, https://aws.amazon.com/step-functions/pricing/): every `*StateEntered` event, plus
  each retry of a Task (a TaskScheduled beyond the first in one visit of the state).
  $0.025 per 1,000 state transitions (same page, "State transitions pricing table").
* **Lambda** requests and GB-seconds: from the functions' REPORT log lines when given
  (`Billed Duration`, else `Duration` rounded up to 1 ms, as Lambda bills, times `Memory
  Size`), else from the history (TaskScheduled to the end of the invocation: an upper bound,
  it includes the invoke's own latency) times the memory the template configures. Prices:
  $0.20 per 1M requests; duration $0.0000166667 per GB-second (x86) and $0.0000133334 (Arm),
  first tier. The official page (https://aws.amazon.com/lambda/pricing/) fills its figures
  in by script, so the stored copy we could read shows none: these are as quoted for US East
  by cloudchipr.com/blog/aws-lambda-pricing (2024) and by other secondary pages.
* **EC2** instance-hours by instance type, for each callback task (annotate_riis,
  calc_stats): from the launch Lambda's TaskSubmitted (the instance exists) to the task's
  callback, at least 60 s: "EC2 usage is billed in one-second increments, with a minimum of
  60 seconds" (AWS's per-second billing announcement of 2017 for Linux, as quoted by
  secondary pages; the EC2 User Guide itself was not among the sources we could read). The
  instance type is the template's default unless given. The Spot price changes with
  Availability Zone and time (https://aws.amazon.com/ec2/spot/pricing/), so it is a
  parameter per instance type.
* **Redshift Serverless** RPU-hours: "When queries run, you're billed according to the
  capacity used in a given duration, in RPU hours on a per-second basis" (Amazon Redshift
  Management Guide, "Billing for Amazon Redshift Serverless"), with a 60-second minimum.
  The seconds are the Data API's `Duration` of each statement when given
  (DescribeStatement), else from the history (submit to the poll that saw it finish: an upper
  bound), treated as one busy period at the workgroup's base capacity (a parameter; 128 RPU
  is the console's default). The price per RPU-hour is not stated on any page we could read
  (aws.amazon.com/redshift/pricing/ fills it in by script; third parties quote $0.36 to $0.50
  by Region), so it is a parameter.
"""

from __future__ import annotations

import json
import math
import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bisonflow.history.execution_view import details_of

__all__ = [
    "PRICES_AS_OF",
    "CostEstimate",
    "CostLine",
    "Prices",
    "estimate",
    "format_estimate",
    "lambda_function_names",
    "state_transitions",
    "statement_ids",
]

#: When the published prices below were read.
PRICES_AS_OF = "2026-12-07"
_SFN_SOURCE = "AWS Step Functions pricing, aws.amazon.com/step-functions/pricing (US East)"
_LAMBDA_SOURCE = (
    "AWS Lambda pricing, aws.amazon.com/lambda/pricing (US East, first tier; figures as "
    "quoted by cloudchipr.com/blog/aws-lambda-pricing)"
)
_SPOT_SOURCE = (
    "a parameter: the Spot price varies by zone and time (aws.amazon.com/ec2/spot/pricing)"
)
_RPU_SOURCE = (
    "a parameter: no page we could read states it (aws.amazon.com/redshift/pricing fills "
    "prices in by script)"
)
#: Minimum billed seconds: each new EC2 instance; a Redshift Serverless busy period.
MINIMUM_SECONDS = 60.0


@dataclass(frozen=True)
class Prices:
    """Unit prices in USD. None: no published price found; give one to price the line."""

    per_1000_state_transitions: float = 0.025
    lambda_per_million_requests: float = 0.20
    lambda_gb_second: Mapping[str, float] = field(
        default_factory=lambda: {"arm64": 0.0000133334, "x86_64": 0.0000166667}
    )
    #: Spot price per instance-hour, by instance type.
    spot_hourly: Mapping[str, float] = field(default_factory=dict)
    rpu_hour: float | None = None
    #: The workgroup's base capacity, in RPUs.
    base_rpu: int = 128


@dataclass(frozen=True)
class CostLine:
    """One priced quantity: `quantity` `unit`s at `unit_price` USD per `price_per` units."""

    service: str
    item: str
    quantity: float
    unit: str
    unit_price: float | None
    price_per: float
    source: str
    basis: str  # where the quantity came from

    @property
    def cost(self) -> float | None:
        if self.unit_price is None:
            return None
        return self.quantity / self.price_per * self.unit_price

    @property
    def price_text(self) -> str:
        if self.unit_price is None:
            return "no price"
        per = self.unit if self.price_per == 1 else f"{self.price_per:,.0f} {self.unit}"
        return f"${self.unit_price:.10f}".rstrip("0").rstrip(".") + f" per {per}"


@dataclass(frozen=True)
class CostEstimate:
    """The lines of one execution's estimate."""

    lines: tuple[CostLine, ...]

    @property
    def total(self) -> float:
        """Sum of the priced lines (lines without a price are left out, and said so)."""
        return sum(line.cost or 0.0 for line in self.lines)

    @property
    def unpriced(self) -> tuple[CostLine, ...]:
        return tuple(line for line in self.lines if line.unit_price is None)


# --- reading the history --------------------------------------------------------------------


def _when(event: Mapping[str, Any]) -> float:
    stamp = event["timestamp"]
    if isinstance(stamp, datetime):
        return stamp.timestamp()
    return datetime.fromisoformat(str(stamp)).timestamp()


def _json(text: Any) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None


@dataclass(frozen=True)
class _Invocation:
    """One Task state's call of a Lambda function (and its callback, if it waits for one)."""

    function: str  # the function's name without the stack prefix, e.g. "poll_statement"
    payload: dict[str, Any]
    scheduled: float
    returned: float | None  # the Lambda invocation ended (TaskSubmitted or the task's end)
    finished: float | None  # the task ended (the callback, for .waitForTaskToken)
    output: Any


_ENDS = ("TaskSucceeded", "TaskFailed", "TaskTimedOut")


def _invocations(events: Sequence[Mapping[str, Any]]) -> list[_Invocation]:
    """Each Lambda TaskScheduled, with the events that end it (found along previousEventId)."""
    by_id = {event["id"]: event for event in events}
    origin: dict[int, int] = {}  # event id -> the TaskScheduled it follows from
    ends: dict[int, dict[str, Mapping[str, Any]]] = {}
    for event in events:
        kind, previous = event["type"], event.get("previousEventId")
        if kind == "TaskScheduled":
            origin[event["id"]] = event["id"]
        elif previous in origin and kind in ("TaskStarted", "TaskSubmitted", *_ENDS):
            origin[event["id"]] = origin[previous]
            ends.setdefault(origin[previous], {})[kind] = event
    found = []
    for scheduled_id, start in ((i, by_id[i]) for i in sorted(set(origin.values()))):
        details = details_of(start)
        if details.get("resourceType") != "lambda":
            continue
        parameters = _json(details.get("parameters")) or {}
        name = str(parameters.get("FunctionName", "")).split(":function:")[-1].split(":")[0]
        end = ends.get(scheduled_id, {})
        final = next((end[k] for k in _ENDS if k in end), None)
        submitted = end.get("TaskSubmitted")
        returned = submitted or final
        output = _json(details_of(returned).get("output")) if returned else None
        found.append(
            _Invocation(
                function=name.rsplit("-", 1)[-1],
                payload=parameters.get("Payload") or {},
                scheduled=_when(start),
                returned=_when(returned) if returned else None,
                finished=_when(final) if final else None,
                output=(output or {}).get("Payload", output) if isinstance(output, dict) else None,
            )
        )
    return found


def state_transitions(events: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    """(states entered, Task retries): each is a billed state transition."""
    entered = sum(1 for e in events if e["type"].endswith("StateEntered"))
    task_entries = sum(1 for e in events if e["type"] == "TaskStateEntered")
    scheduled = sum(1 for e in events if e["type"] == "TaskScheduled")
    return entered, max(0, scheduled - task_entries)


def statement_ids(events: Sequence[Mapping[str, Any]]) -> list[str]:
    """Data API statement ids the execution submitted, in order (for DescribeStatement)."""
    ids: list[str] = []
    for call in _invocations(events):
        output = call.output if isinstance(call.output, dict) else {}
        if call.function == "submit_statements" and output.get("statement_id") not in (None, *ids):
            ids.append(str(output["statement_id"]))
    return ids


def lambda_function_names(events: Sequence[Mapping[str, Any]]) -> list[str]:
    """Full names of the functions the execution invoked (their log groups hold REPORT)."""
    names: list[str] = []
    for event in events:
        details = details_of(event)
        if event["type"] == "TaskScheduled" and details.get("resourceType") == "lambda":
            arn = str((_json(details.get("parameters")) or {}).get("FunctionName", ""))
            name = arn.split(":function:")[-1].split(":")[0]
            if name and name not in names:
                names.append(name)
    return names


# --- the lines ------------------------------------------------------------------------------

_REPORT = re.compile(
    r"REPORT RequestId:.*?\tDuration: (?P<duration>[\d.]+) ms"
    r"(?:\tBilled Duration: (?P<billed>\d+) ms)?.*?\tMemory Size: (?P<memory>\d+) MB"
)


def _report_gb_seconds(lines: Iterable[str]) -> tuple[int, float]:
    """(invocations, GB-seconds) of a function's REPORT lines."""
    count, gb_seconds = 0, 0.0
    for line in lines:
        match = _REPORT.search(line)
        if not match:
            continue
        billed_ms = int(match["billed"]) if match["billed"] else math.ceil(float(match["duration"]))
        count += 1
        gb_seconds += int(match["memory"]) / 1024 * billed_ms / 1000
    return count, gb_seconds


def _lambda_lines(
    calls: list[_Invocation],
    functions: Mapping[str, tuple[int, str]],
    reports: Mapping[str, Sequence[str]] | None,
    prices: Prices,
) -> list[CostLine]:
    requests = 0
    gb_seconds: dict[str, float] = {}
    bases: list[str] = []
    for name in sorted({c.function for c in calls}):
        memory, architecture = functions.get(name, (128, "x86_64"))
        given = reports or {}
        full = [k for k in given if k.rsplit("-", 1)[-1] == name]
        if full:
            count, seconds = _report_gb_seconds(x for k in full for x in given[k])
            bases.append(f"{name}: {count} REPORT lines")
        else:
            mine = [c for c in calls if c.function == name]
            count = len(mine)
            span = sum((c.returned or c.scheduled) - c.scheduled for c in mine)
            seconds = memory / 1024 * span
            bases.append(f"{name}: {count} calls timed in history, {memory} MB")
        requests += count
        gb_seconds[architecture] = gb_seconds.get(architecture, 0.0) + seconds
    if not calls:
        return []
    lines = [
        CostLine(
            "Lambda",
            "requests",
            requests,
            "requests",
            prices.lambda_per_million_requests,
            1_000_000,
            _LAMBDA_SOURCE,
            "; ".join(bases),
        )
    ]
    for architecture, seconds in sorted(gb_seconds.items()):
        lines.append(
            CostLine(
                "Lambda",
                f"duration ({architecture})",
                seconds,
                "GB-seconds",
                prices.lambda_gb_second.get(architecture),
                1,
                _LAMBDA_SOURCE,
                "REPORT lines where given, else history (an upper bound)",
            )
        )
    return lines


def _ec2_lines(
    calls: list[_Invocation], instance_types: Mapping[str, str], prices: Prices
) -> list[CostLine]:
    hours: dict[str, float] = {}
    tasks: dict[str, list[str]] = {}
    for call in calls:
        task = str(call.payload.get("task", ""))
        if call.function != "launch_task" or call.returned is None or not task:
            continue
        end = call.finished if call.finished is not None else call.returned
        kind = instance_types.get(task, "unknown")
        hours[kind] = hours.get(kind, 0.0) + max(MINIMUM_SECONDS, end - call.returned) / 3600
        tasks.setdefault(kind, []).append(task)
    return [
        CostLine(
            "EC2",
            f"Spot {kind} ({', '.join(tasks[kind])})",
            hours[kind],
            "instance-hours",
            prices.spot_hourly.get(kind),
            1,
            _SPOT_SOURCE,
            "launch to callback in history, at least 60 s each",
        )
        for kind in sorted(hours)
    ]


def _redshift_lines(
    calls: list[_Invocation], statement_seconds: Mapping[str, float] | None, prices: Prices
) -> list[CostLine]:
    submitted = {
        str(c.output["statement_id"]): c
        for c in calls
        if c.function == "submit_statements"
        and isinstance(c.output, dict)
        and "statement_id" in c.output
    }
    if not submitted:
        return []
    if statement_seconds:
        seconds = sum(statement_seconds.get(i, 0.0) for i in submitted)
        basis = f"Data API Duration of {len(submitted)} statements"
    else:
        seconds = 0.0
        for statement_id, submit in submitted.items():
            polls = [
                c.scheduled
                for c in calls
                if c.function == "poll_statement"
                and isinstance(c.output, dict)
                and c.output.get("statement_id") == statement_id
                and c.output.get("status") in ("FINISHED", "FAILED", "ABORTED")
            ]
            if polls and submit.returned is not None:
                seconds += max(0.0, min(polls) - submit.returned)
        basis = f"{len(submitted)} statements, submit to finished poll in history (upper bound)"
    billed = max(MINIMUM_SECONDS, seconds)
    return [
        CostLine(
            "Redshift Serverless",
            f"compute at {prices.base_rpu} RPU base capacity ({seconds:.1f} s of SQL)",
            prices.base_rpu * billed / 3600,
            "RPU-hours",
            prices.rpu_hour,
            1,
            _RPU_SOURCE,
            basis + ", one busy period, at least 60 s",
        )
    ]


def estimate(
    events: Sequence[Mapping[str, Any]],
    *,
    functions: Mapping[str, tuple[int, str]],
    instance_types: Mapping[str, str],
    prices: Prices | None = None,
    reports: Mapping[str, Sequence[str]] | None = None,
    statement_seconds: Mapping[str, float] | None = None,
) -> CostEstimate:
    """The execution's estimated cost.

    `functions`: function short name ("poll_statement") -> (memory MB, architecture), as the
    template configures them; `instance_types`: task -> instance type; `reports`: full
    function name -> its log lines in the execution's time (REPORT lines are picked out);
    `statement_seconds`: statement id -> the Data API's Duration, in seconds.
    """
    prices = prices or Prices()
    calls = _invocations(events)
    entered, retries = state_transitions(events)
    lines = [
        CostLine(
            "Step Functions",
            "state transitions (Standard)",
            entered + retries,
            "state transitions",
            prices.per_1000_state_transitions,
            1000,
            _SFN_SOURCE,
            f"history: {entered} states entered + {retries} retries",
        ),
        *_lambda_lines(calls, functions, reports, prices),
        *_ec2_lines(calls, instance_types, prices),
        *_redshift_lines(calls, statement_seconds, prices),
    ]
    return CostEstimate(tuple(lines))


def _money(value: float | None) -> str:
    return "no price" if value is None else f"${value:.6f}"


def format_estimate(result: CostEstimate, width: int = 100) -> list[str]:
    """The estimate as plain text lines of at most `width` characters (for `bisonflow
    history`, whose tables fit 100 columns): each cost line is its name, then its quantity,
    unit price and cost on an indented line, so no column grows with the longest name."""
    out = [f"Estimated AWS cost (an ESTIMATE; prices as published on {PRICES_AS_OF}):"]
    for line in result.lines:
        out.append(f"  {line.service}: {line.item}")
        amount = f"      {line.quantity:,.4f} {line.unit}"
        if line.cost is None:
            out.append(f"{amount}: no price")
        else:
            out.append(f"{amount} at {line.price_text}: {_money(line.cost)}")
    missing = ", ".join(dict.fromkeys(f"{x.service} {x.unit}" for x in result.unpriced))
    total = f"  total of priced lines: {_money(result.total)}"
    out.append(total + (f" (not priced: {missing}; give the price)" if missing else ""))
    out.append("  not included: S3, CloudWatch Logs, EBS, data transfer, Glue, free tiers.")
    out.append("  sources:")
    for source in dict.fromkeys(line.source for line in result.lines):
        out.append(f"    {source}")
    wrapped: list[str] = []
    for text in out:
        indent = " " * (len(text) - len(text.lstrip()) + 2)
        wrapped += textwrap.wrap(text, width, subsequent_indent=indent, break_on_hyphens=False)
    return wrapped
