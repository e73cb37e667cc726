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


class SchemaViolation(ValueError):
    """A step's input or output does not match its JSON Schema."""


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
    raise SchemaViolation("; ".join(lines))


def _describe(error: jsonschema.ValidationError) -> str:
    where = error.json_path
    if error.validator == "required":
        return f"{where} is missing required field {error.message.split(' ')[0]}"
    if error.validator == "additionalProperties":
        return f"{where}: {error.message}"
    description = error.schema.get("description") if isinstance(error.schema, dict) else None
    hint = f" ({description})" if description else ""
    return f"field {where} = {json.dumps(error.instance)} is invalid: {error.message}{hint}"
