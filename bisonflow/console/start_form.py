"""The console's start form, generated from the workflow's input schema
(definitions/check_gbif.input.schema.json), and the posted form read back into a workflow input:
no HTTP here, so the rules are tested without a server.

The form follows the schema: each property is a field with the schema's own pattern and
description (read through bisonflow.schemas, `$ref`s resolved), or is named in NOT_IN_FORM with
the reason. A property the schema gains that is neither makes form_fields raise, so the page
cannot silently omit it. The execution's name is not part of the input: its field carries
Step Functions' rule (bisonflow.layout), the one `bisonflow start --name` checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bisonflow.layout import EXECUTION_NAME_RULE, execution_name_pattern, execution_name_problem
from bisonflow.schemas import WORKFLOW_INPUT, SchemaViolation, properties, workflow_input

#: The input's properties a person does not set in the form.
NOT_IN_FORM: tuple[str, ...] = (
    "scheduled_time",  # the monthly schedule's fire time: set by EventBridge Scheduler only
    "Comment",  # ignored by the workflow; only the AWS console's default input carries it
)
#: The HTML control of each property the form has, and the JSON type it needs to be one.
_CONTROLS: dict[str, tuple[str, str]] = {
    "month": ("month", "string"),  # <input type="month">: the browser's month picker
    "force": ("checkbox", "boolean"),
}
#: The form's field for the execution's name (StartExecution's `name`, not the input).
NAME = "name"
#: What a person leaves empty gets: the workflow's default, or Step Functions' own name.
_WHEN_EMPTY = {
    "month": "empty: the month the execution starts in (UTC)",
    NAME: "optional: empty lets Step Functions name the execution",
}


class FormError(ValueError):
    """The schema has a property the form neither shows nor names in NOT_IN_FORM."""


@dataclass(frozen=True)
class Field:
    """One control of the form; `name` is its HTML id and name, and the input's property."""

    name: str
    control: str  # "month", "checkbox" or "text": the <input type>
    description: str  # the schema's own words (for the name: Step Functions' rule)
    pattern: str | None = None  # a JSON Schema pattern (ECMA-262, searched: anchor it)
    when_empty: str | None = None
    in_input: bool = True  # a property of the workflow input (not so: the execution's name)


def form_fields(schema_properties: Mapping[str, Mapping[str, Any]] | None = None) -> list[Field]:
    """The form's fields from the input schema's properties (default: the workflow's own),
    then the execution's name."""
    given = properties(WORKFLOW_INPUT) if schema_properties is None else schema_properties
    fields = []
    for key, prop in given.items():
        if key in NOT_IN_FORM:
            continue
        if key not in _CONTROLS:
            raise FormError(
                f"the workflow input has a property {key!r} the start form does not show: add "
                "a control for it (start_form._CONTROLS) or say in NOT_IN_FORM why not"
            )
        control, json_type = _CONTROLS[key]
        if prop.get("type") != json_type:
            raise FormError(
                f"property {key!r} is {prop.get('type')!r} in the schema; its {control} "
                f"control needs {json_type!r}"
            )
        fields.append(
            Field(
                key,
                control,
                str(prop.get("description", "")),
                prop.get("pattern"),
                _WHEN_EMPTY.get(key),
            )
        )
    fields.append(
        Field(
            NAME,
            "text",
            EXECUTION_NAME_RULE,
            f"^(?:{execution_name_pattern()})$",
            _WHEN_EMPTY[NAME],
            in_input=False,
        )
    )
    return fields


@dataclass(frozen=True)
class Submission:
    """What the posted form asked for, as typed (an empty field is None)."""

    month: str | None
    force: bool
    name: str | None

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> Submission:
        """A checkbox is posted only when ticked; the browser sends nothing for it else."""
        return cls(form.get("month") or None, "force" in form, form.get(NAME) or None)


class FormProblems(ValueError):
    """What is wrong with a submission, by field ("" for the form as a whole)."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(problems.values()))
        self.problems = problems


def start_request(submission: Submission) -> dict[str, Any]:
    """The workflow input to start, checked by the schema (bisonflow.schemas.workflow_input,
    as `bisonflow start` checks it) and the name by Step Functions' rule; FormProblems when
    either refuses, each message by its field."""
    problems: dict[str, str] = {}
    payload: dict[str, Any] = {}
    try:
        payload = workflow_input(submission.month, submission.force)
    except SchemaViolation as exc:
        field = exc.fields[0] if len(exc.fields) == 1 and exc.fields[0] in _CONTROLS else ""
        problems[field] = str(exc)
    if submission.name is not None:
        problem = execution_name_problem(submission.name)
        if problem:
            problems[NAME] = f"the name {problem} ({EXECUTION_NAME_RULE})"
    if problems:
        raise FormProblems(problems)
    return payload
