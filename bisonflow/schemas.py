"""JSON Schemas of every step's input and output (definitions/), checked at the edge.

A violation names the offending field, so a bad workflow input is rejected with a message the
user can act on, before any work starts.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import jsonschema
from referencing import Registry, Resource

from bisonflow import PROJECT_ROOT

DEFINITIONS = PROJECT_ROOT / "definitions"
#: The workflow's input: what StartExecution, the console's form and the schedule pass.
WORKFLOW_INPUT = "check_gbif.input"


class SchemaViolation(ValueError):
    """A step's input or output does not match its JSON Schema.

    fields: the top-level properties the violations are in, so a form can show each message
    by its field (empty when a violation is about the whole instance)."""

    def __init__(self, message: str, fields: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.fields = fields


@cache
def _registry() -> Registry:
    """Every schema in definitions/ by its $id, so schemas can share definitions by $ref."""
    resources = []
    for path in sorted(DEFINITIONS.glob("*.schema.json")):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


@cache
def _validator(name: str) -> jsonschema.protocols.Validator:
    schema = _registry().contents(f"urn:bisonflow:{name}")
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, registry=_registry())


def validate(instance: Any, name: str) -> None:
    """Raise SchemaViolation naming the field (as a JSONPath) and what was wrong with it."""
    errors = sorted(_validator(name).iter_errors(instance), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    lines = [f"{name}: {_describe(e)}" for e in errors[:5]]
    fields = tuple(dict.fromkeys(str(e.absolute_path[0]) for e in errors if e.absolute_path))
    raise SchemaViolation("; ".join(lines), fields)


def properties(name: str) -> dict[str, dict[str, Any]]:
    """Each top-level property's schema, a `$ref` resolved through the registry (the
    property's own keywords win): what a form generated from the schema reads."""
    schema = _registry().contents(f"urn:bisonflow:{name}")
    resolver = _registry().resolver(base_uri=f"urn:bisonflow:{name}")
    resolved: dict[str, dict[str, Any]] = {}
    for key, prop in schema.get("properties", {}).items():
        target = resolver.lookup(prop["$ref"]).contents if "$ref" in prop else {}
        resolved[key] = {**target, **{k: v for k, v in prop.items() if k != "$ref"}}
    return resolved


def workflow_input(month: str | None, force: bool) -> dict[str, Any]:
    """The workflow's input from what a person sets (`bisonflow start --month/--force`, the
    console's form): only what was set, so an unset month is the workflow's own default, and
    checked against the schema before any call (SchemaViolation)."""
    payload: dict[str, Any] = {}
    if month is not None:
        payload["month"] = month
    if force:
        payload["force"] = True
    validate(payload, WORKFLOW_INPUT)
    return payload


def _describe(error: jsonschema.ValidationError) -> str:
    where = error.json_path
    if error.validator == "required":
        return f"{where} is missing required field {error.message.split(' ')[0]}"
    if error.validator == "additionalProperties":
        return f"{where}: {error.message}"
    description = error.schema.get("description") if isinstance(error.schema, dict) else None
    hint = f" ({description})" if description else ""
    return f"field {where} = {json.dumps(error.instance)} is invalid: {error.message}{hint}"
