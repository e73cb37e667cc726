"""Tests: run a deployed function's `live` alias with changed environment variables.

The state machine invokes each Lambda's `live` alias, a published version whose configuration
is frozen (Lambda API reference, PublishVersion), so changing $LATEST's environment changes
nothing the workflow sees. This does what a release does: update $LATEST, publish a version,
move `live` to it; and afterwards releases the original environment the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from bisonflow.local.runtime import LocalRuntime

ALIAS = "live"


@contextmanager
def live_environment(rt: LocalRuntime, function: str, changes: dict[str, str]) -> Iterator[str]:
    """`function` (e.g. "check_gbif") runs with `changes` in its environment while inside;
    yields the version `live` points at meanwhile."""
    assert rt.deployment
    awslambda = rt.clients["lambda"]
    name = f"{rt.deployment.stack_name}-{function}"
    original = awslambda.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    awslambda.update_function_configuration(
        FunctionName=name, Environment={"Variables": {**original, **changes}}
    )
    version = awslambda.publish_version(FunctionName=name)["Version"]
    awslambda.update_alias(FunctionName=name, Name=ALIAS, FunctionVersion=version)
    try:
        yield version
    finally:
        # Released again rather than `live` moved back: $LATEST would then differ from the
        # last published version, so the next deploy of an unchanged tree would publish one
        # (PublishVersion compares with the last version), which test_deploy asserts it does
        # not.
        awslambda.update_function_configuration(
            FunctionName=name, Environment={"Variables": original}
        )
        restored = awslambda.publish_version(FunctionName=name)["Version"]
        awslambda.update_alias(FunctionName=name, Name=ALIAS, FunctionVersion=restored)
