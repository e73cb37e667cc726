"""bisonflow.local.sfn.validation: a definition that passed moto's validation is not parsed
again to validate it (speed only); a bad one is refused every time, as moto refuses it."""

from __future__ import annotations

import json
import uuid

import pytest
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

from bisonflow.local.sfn import validation as sfn_validation


def _parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The definitions moto's ASL parser is asked to parse from now on."""
    parsed: list[str] = []
    parse = AmazonStateLanguageParser.parse

    def counting(definition: str) -> object:
        parsed.append(definition)
        return parse(definition)

    monkeypatch.setattr(AmazonStateLanguageParser, "parse", staticmethod(counting))
    return parsed


def test_a_valid_definition_is_parsed_once_to_validate_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sfn_validation.SEAM.install()
    parsed = _parses(monkeypatch)
    definition = json.dumps(
        {"Comment": uuid.uuid4().hex, "StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
    )
    for _ in range(3):  # create, update, publish: validated each time
        StepFunctionsParserBackend._validate_definition(definition=definition)
    assert parsed == [definition]


def test_an_invalid_definition_is_refused_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    sfn_validation.SEAM.install()
    parsed = _parses(monkeypatch)
    definition = json.dumps({"Comment": uuid.uuid4().hex, "StartAt": "Nowhere", "States": {}})
    messages = []
    for _ in range(2):
        with pytest.raises(Exception, match="ASLParserException") as refused:
            StepFunctionsParserBackend._validate_definition(definition=definition)
        messages.append(str(refused.value))
    assert parsed == [definition, definition] and messages[0] == messages[1]
