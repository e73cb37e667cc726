"""The template is parsed by libyaml where PyYAML has it (bisonflow.deploy.cfn_template): the same
structure as PyYAML's pure-Python SafeLoader gives, short-form intrinsics included."""

from __future__ import annotations

import json

import yaml

from bisonflow.deploy import cfn_template


class _PurePythonLoader(yaml.SafeLoader):
    """The loader the template was parsed with before: pure Python, the same tags."""


_PurePythonLoader.yaml_constructors = dict(cfn_template._Loader.yaml_constructors)


def test_libyaml_parses_the_template_as_pure_python_does() -> None:
    text = cfn_template.template_text()
    parsed = cfn_template.parse(text)
    assert parsed == yaml.load(text, Loader=_PurePythonLoader)  # noqa: S506 - SafeLoader
    # The short forms became CloudFormation's long ones (!Sub, !GetAtt a.b, !Ref ...).
    flat = json.dumps(parsed)
    assert '"Fn::Sub"' in flat and '"Fn::GetAtt": [' in flat and "!Sub" not in flat
    assert issubclass(cfn_template._Loader, getattr(yaml, "CSafeLoader", yaml.SafeLoader))
