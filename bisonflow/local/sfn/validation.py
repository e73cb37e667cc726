"""Emulator seam (speed only): a state machine definition moto has validated is not parsed
again to validate it.

moto 5.2.5 validates a definition by parsing it with its ASL parser (ANTLR, pure Python:
`StepFunctionsParserBackend._validate_definition`) at CreateStateMachine and at every
UpdateStateMachine, including the one that publishes a version with the same definition.
The workflow's definition took 0.3-0.6 s per parse, twice per deploy (and per test runtime).
Validation is a pure function of the definition's text, so a text that passed once passes
again; one that failed is parsed (and refused) again every time, with moto's own message.
Executions still parse their definition as moto does: only validation is remembered.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.stepfunctions.parser.models import StepFunctionsParserBackend

from bisonflow.local.seams import Patch, Seam

_validate = StepFunctionsParserBackend.__dict__["_validate_definition"].__func__
_valid: set[str] = set()
_lock = threading.Lock()


def validate_definition(definition: str) -> Any:
    """moto's validation, once per distinct definition text that passes it."""
    with _lock:
        if definition in _valid:
            return None
    result = _validate(definition=definition)  # raises InvalidDefinition for a bad one
    with _lock:
        _valid.add(definition)
    return result


#: What this module replaces; the emulator installs it (bisonflow.local.seams).
SEAM = Seam(
    __name__,
    Patch(
        StepFunctionsParserBackend.__module__,
        "StepFunctionsParserBackend._validate_definition",
        ("definition",),
        replacement=staticmethod(validate_definition),
    ),
)
