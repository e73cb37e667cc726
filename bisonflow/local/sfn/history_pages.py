"""Emulator seam: GetExecutionHistory answers in pages, as Step Functions does.

moto 5.2.5 returns an execution's whole history in one answer, whatever maxResults,
nextToken or reverseOrder ask, and never a nextToken. Step Functions pages it: "The default
is 100 and the maximum allowed page size is 1000. A value of 0 uses the default", events in
ascending order unless reverseOrder lists them "in descending order of their timeStamp", and a
nextToken while more remain (AWS Step Functions API Reference, GetExecutionHistory). Code
that read only the first page would pass here and lose events on AWS; with this seam it loses
them here too.

It is also what lets `bisonflow run` follow an execution cheaply: the newest events first, a
page at a time, instead of the whole history (a megabyte and 750 events by the demo's end,
0.57 s of the emulator's CPU to serialize each time, 13.6 s over one demo).

A maxResults outside 0-1000 is refused with ValidationException, as the API's constraint on the
member refuses it; moto took any number.

A token is the offset of the next page, bound to the execution and the order it was made for:
one used with another execution or order is refused with InvalidToken, as AWS refuses a token
that does not belong to the call.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from moto.core.responses import ActionResult
from moto.stepfunctions.exceptions import InvalidToken, ValidationException
from moto.stepfunctions.responses import StepFunctionResponse

from bisonflow.local.seams import Patch, Seam

DEFAULT_PAGE, LARGEST_PAGE = 100, 1000

_whole_history = StepFunctionResponse.get_execution_history


def _token(arn: str, reverse: bool, offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([arn, reverse, offset]).encode()).decode()


def _offset(token: str | None, arn: str, reverse: bool) -> int:
    if not token:
        return 0
    try:
        made_for_arn, made_for_reverse, offset = json.loads(base64.urlsafe_b64decode(token))
    except ValueError:
        raise InvalidToken(f"{token!r} is not a token this API returned") from None
    if (made_for_arn, made_for_reverse) != (arn, reverse) or not isinstance(offset, int):
        raise InvalidToken("the token was made for another execution or order")
    return offset


def page(
    events: list[Any], arn: str, max_results: int | None, reverse: bool, token: str | None
) -> dict[str, Any]:
    """One page of `events` (in ascending order) as GetExecutionHistory answers it."""
    if max_results is not None and not 0 <= max_results <= LARGEST_PAGE:
        raise ValidationException(
            f"1 validation error detected: Value '{max_results}' at 'maxResults' failed to "
            f"satisfy constraint: Member must have value less than or equal to {LARGEST_PAGE}"
            " and greater than or equal to 0"
        )
    size = max_results or DEFAULT_PAGE
    ordered = events[::-1] if reverse else events
    start = _offset(token, arn, reverse)
    answer: dict[str, Any] = {"events": ordered[start : start + size]}
    if start + size < len(ordered):
        answer["nextToken"] = _token(arn, reverse, start + size)
    return answer


def get_execution_history(self: StepFunctionResponse) -> ActionResult:
    history: dict[str, Any] = _whole_history(self).result
    answer = page(
        list(history.get("events") or []),
        self._get_param("executionArn"),
        self._get_param("maxResults"),
        bool(self._get_param("reverseOrder", False)),
        self._get_param("nextToken"),
    )
    return ActionResult(answer)


#: What this module replaces; the emulator installs it (bisonflow.local.seams).
SEAM = Seam(
    __name__,
    Patch(
        StepFunctionResponse.__module__,
        "StepFunctionResponse.get_execution_history",
        ("self",),
        replacement=get_execution_history,
    ),
)
