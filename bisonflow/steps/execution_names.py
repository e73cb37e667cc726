"""Step Functions' rule for execution names, one function for every place that checks one.

StartExecution's `name` (Step Functions API Reference, StartExecution, Request Parameters,
"name"; Length Constraints: 1 to 80): it must not contain white space, brackets < > { } [ ],
wildcard characters ? *, special characters " # % \\ ^ | ~ ` $ & , ; : /, control characters
(U+0000-001F, U+007F-009F, U+FFFE-FFFF), surrogates (U+D800-DFFF) or invalid characters
(U+10FFFF). `bisonflow start --name` checks a name with it before starting anything
(bisonflow.cli.checks), and the emulator refuses with it what moto would accept
(bisonflow.local.sfn.names): one rule, so the two cannot drift apart.
"""

from __future__ import annotations

EXECUTION_NAME_MAX = 80
_FORBIDDEN_CHARACTERS = frozenset('<>{}[]?*"#%\\^|~`$&,;:/')
_FORBIDDEN_RANGES = (
    (0x00, 0x1F),
    (0x7F, 0x9F),
    (0xD800, 0xDFFF),
    (0xFFFE, 0xFFFF),
    (0x10FFFF, 0x10FFFF),
)


def execution_name_too_long(name: str) -> bool:
    """Over the API's length constraint: AWS answers ValidationException, not InvalidName."""
    return len(name) > EXECUTION_NAME_MAX


def execution_name_problem(name: str) -> str | None:
    """What makes `name` an execution name StartExecution refuses; None when it is valid."""
    if not 1 <= len(name) <= EXECUTION_NAME_MAX:
        return f"is {len(name)} characters long; it must have 1 to {EXECUTION_NAME_MAX}"
    for character in name:
        code = ord(character)
        if character.isspace():
            return "contains white space"
        if character in _FORBIDDEN_CHARACTERS:
            return f"contains {character!r}"
        if any(low <= code <= high for low, high in _FORBIDDEN_RANGES):
            kind = "control character" if code <= 0x9F else "character"
            return f"contains the {kind} U+{code:04X}"
    return None
