"""The local runtime's command-line switches: IAM enforcement's opt-out warns, and
`bisonflow local fire-schedule` fires the deployed schedule on a running emulator."""

from __future__ import annotations

import json
import socket

import pytest
from conftest import wait_for_end

from bisonflow.cli.commands.local import IAM_OFF_WARNING, settings
from bisonflow.cli.main import main
from bisonflow.cli.parser import build_parser
from bisonflow.local.runtime import LocalRuntime, shortest_poll_seconds


def _up_on_a_taken_port(capsys: pytest.CaptureFixture, *flags: str) -> str:
    """`local up` with `flags` on a port in use: it stops before starting anything; stderr."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(SystemExit):
            main(["local", "up", "--port", str(taken.getsockname()[1]), *flags])
    return capsys.readouterr().err


def test_no_iam_enforcement_warns(capsys: pytest.CaptureFixture) -> None:
    err = _up_on_a_taken_port(capsys, "--no-iam-enforcement")
    assert err.splitlines()[0] == IAM_OFF_WARNING
    assert "IAM enforcement is off" in IAM_OFF_WARNING
    assert "WARNING" not in _up_on_a_taken_port(capsys)


def test_run_takes_the_switch_too() -> None:
    assert build_parser().parse_args(["run"]).iam_enforcement is True
    assert build_parser().parse_args(["run", "--no-iam-enforcement"]).iam_enforcement is False


def test_fire_schedule_starts_the_scheduled_month(
    runtime: LocalRuntime, capsys: pytest.CaptureFixture
) -> None:
    assert runtime.deployment
    code = main(
        [
            "local",
            "fire-schedule",
            "--endpoint-url",
            runtime.endpoint_url,
            "--scheduled-time",
            "2026-02-02T01:00:00-05:00",  # 06:00 UTC
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert 'input:  {"scheduled_time": "2026-02-02T06:00:00Z"}' in out
    started = next(line for line in out.splitlines() if line.startswith("started "))
    arn = started.removeprefix("started ")
    # No snapshot is published for 2026-02: the run finds none and ends.
    description = wait_for_end(runtime, arn)
    assert json.loads(description["input"]) == {"scheduled_time": "2026-02-02T06:00:00Z"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scheduled-time", "2026-02-02T06:00:00"], "needs a time zone"),
        (["--scheduled-time", "next tuesday"], "not an RFC 3339 time"),
    ],
)
def test_fire_schedule_refuses_a_bad_time(
    args: list[str], message: str, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["local", "fire-schedule", *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_fire_schedule_without_an_emulator_is_one_line(capsys: pytest.CaptureFixture) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(SystemExit) as exit_info:
        main(["local", "fire-schedule", "--endpoint-url", f"http://127.0.0.1:{port}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("bisonflow: ") and len(err.strip().splitlines()) == 1


def test_run_deploys_the_templates_science_defaults_unless_told() -> None:
    """Left out, the science settings are not passed, so the stack's defaults (BISON's
    subset, threshold 3) apply; given, they become the deployed stack's parameters."""
    plain = settings(build_parser().parse_args(["run"]))
    assert plain.stack_parameters == {}
    parameters = LocalRuntime(plain)._stack_parameters()
    assert not {"PamMinPresenceCount", "SubsetTaxonRanks", "SubsetBasisOfRecord"} & set(parameters)
    told = settings(
        build_parser().parse_args(
            [
                "run",
                "--pam-min-presence-count",
                "1",
                "--subset-basis-of-record",
                "HUMAN_OBSERVATION, MATERIAL_SAMPLE",
            ]
        )
    )
    assert told.stack_parameters == {
        "PamMinPresenceCount": "1",
        "SubsetBasisOfRecord": "HUMAN_OBSERVATION,MATERIAL_SAMPLE",
    }
    deployed = LocalRuntime(told)._stack_parameters()
    assert deployed["PamMinPresenceCount"] == "1"
    assert deployed["PollSeconds"] == str(shortest_poll_seconds())


def test_the_local_deploy_polls_sql_with_the_shortest_wait_the_template_accepts() -> None:
    """ASL allows a Wait of 0 seconds; the local deploy passes 0 once the template's
    PollSeconds admits it, 1 while it does not, and never touches the real default (30 s)."""
    import re

    from bisonflow.deploy import cfn_template

    assert shortest_poll_seconds("^[1-9][0-9]*$") == 1
    assert shortest_poll_seconds("^(0|[1-9][0-9]*)$") == 0
    parameter = cfn_template.template()["Parameters"]["PollSeconds"]
    local = LocalRuntime()._stack_parameters()["PollSeconds"]
    assert re.fullmatch(parameter["AllowedPattern"], local)  # the stack accepts it
    assert int(local) <= 1 and parameter["Default"] == "30"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--subset-taxon-ranks", "SPECIES,GENUS"],
            "argument --subset-taxon-ranks: 'GENUS' is not a taxon rank at or below SPECIES",
        ),
        (["--pam-min-presence-count", "0"], "must be a positive integer, got 0"),
    ],
)
def test_a_bad_science_setting_is_refused_before_anything_starts(
    capsys: pytest.CaptureFixture, flags: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", *flags])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err.splitlines()[-1]
