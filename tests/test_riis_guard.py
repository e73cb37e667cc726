"""A damaged US-RIIS list fails annotate_riis unless forced (issue 11, "Validate before
publishing"): compared with the annotated list of the previous published month (the run its
marker names, bisonflow.steps.publish), and by its malformed rows."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from conftest import SCRATCH_BUCKET, wait_for_end
from test_riis import HEADER, _row

from bisonflow import PROJECT_ROOT
from bisonflow.config import ConfigError
from bisonflow.deploy import cfn_template
from bisonflow.history.executions import history
from bisonflow.layout import NAME_CACHE_KEY, RIIS_INPUT_KEY, MonthLayout
from bisonflow.local.gbif_standin import GbifStandin
from bisonflow.riis import guard as riis_guard
from bisonflow.riis.guard import ListLimits, ListSize, RiisListDamaged
from bisonflow.steps.ec2_tasks import task_spec
from bisonflow.steps.taskspec import AnnotateRiisSpec
from tasks import annotate_riis

#: Each month's run, as the workflow launches the task for an execution of it.
LAST_MONTH = MonthLayout.for_run("2025-03", "march-run")
THIS_MONTH = MonthLayout.for_run("2025-04", "april-run")
NAMES = 30
#: 60 valid rows, 30 distinct names (each name in two regions).
FULL_LIST = (
    "\n".join(
        [
            HEADER,
            *(
                _row(region, f"Testus nomen{i:02d}")
                for i in range(NAMES)
                for region in ("L48", "AK")
            ),
        ]
    )
    + "\n"
)


@pytest.fixture
def gbif(tmp_path, monkeypatch):
    """An empty table: every name is answered "no match", which is all the guard needs."""
    path = tmp_path / "gbif_table.json"
    path.write_text(json.dumps({}), "utf-8")
    with GbifStandin(path) as standin:
        monkeypatch.setenv("GBIF_API_URL", standin.base_url)
        monkeypatch.setenv("GBIF_API_CONCURRENCY", "4")
        yield standin


def test_this_month_follows_last_month():
    assert THIS_MONTH.previous == LAST_MONTH.month_layout


def _publish(s3, run: MonthLayout) -> None:
    """Publish `run` as PublishMonth's marker does: naming its execution (the guard reads
    nothing else of the marker)."""
    s3.put_object(
        Bucket=SCRATCH_BUCKET, Key=run.done_marker_key, Body=json.dumps({"execution": run.run})
    )


def _spec(layout: MonthLayout, **settings: object) -> AnnotateRiisSpec:
    """The spec launch_task writes for the month (the `s3` fixture sets BISON_BUCKET), with
    `settings` changed: a limit by its name, or any other setting."""
    spec = task_spec("annotate_riis", layout, "test-execution")
    assert isinstance(spec, AnnotateRiisSpec) and spec.bucket == SCRATCH_BUCKET
    names = {f.name for f in dataclasses.fields(ListLimits)}
    limits = {k: settings.pop(k) for k in list(settings) if k in names}
    changed = dataclasses.replace(
        spec.settings, limits=dataclasses.replace(spec.settings.limits, **limits), **settings
    )
    return dataclasses.replace(spec, settings=changed)


def _upload(s3, text: str | bytes) -> None:
    body = text.encode() if isinstance(text, str) else text
    s3.put_object(Bucket=SCRATCH_BUCKET, Key=RIIS_INPUT_KEY, Body=body)


def _exists(s3, key: str) -> bool:
    return s3.list_objects_v2(Bucket=SCRATCH_BUCKET, Prefix=key).get("KeyCount", 0) > 0


def _truncated(fraction: float) -> bytes:
    data = FULL_LIST.encode()
    return data[: int(len(data) * fraction)]


def test_a_list_truncated_to_a_tenth_is_refused_naming_both_counts_and_the_setting(s3, gbif):
    """The issue's case: the list cut to 10% of its bytes used to publish a wrong month."""
    _upload(s3, FULL_LIST)
    annotate_riis.run(_spec(LAST_MONTH))
    _publish(s3, LAST_MONTH)
    cache_before = s3.get_object(Bucket=SCRATCH_BUCKET, Key=NAME_CACHE_KEY)["Body"].read()
    calls_before = gbif.requests
    _upload(s3, _truncated(0.1))
    with pytest.raises(RiisListDamaged) as refused:
        annotate_riis.run(_spec(THIS_MONTH))
    message = str(refused.value)
    assert "1 valid rows against 60 in the previous month's annotated list: 59 lost (98%)" in (
        message
    )
    assert "more than RIIS_MAX_ROW_LOSS_PERCENT=10% allows" in message
    assert "1 valid names against 30" in message
    assert "RIIS_MAX_NAME_LOSS_PERCENT=10%" in message
    assert "start the month with force=true" in message
    # Refused before any GBIF call, and nothing of this month written; the cache untouched.
    assert gbif.requests == calls_before
    assert not _exists(s3, THIS_MONTH.riis_annotated_key)
    assert not _exists(s3, THIS_MONTH.riis_report_key)
    after = s3.get_object(Bucket=SCRATCH_BUCKET, Key=NAME_CACHE_KEY)["Body"].read()
    assert after == cache_before


def test_a_forced_run_accepts_the_short_list_and_says_why(s3, gbif, capsys):
    _upload(s3, FULL_LIST)
    annotate_riis.run(_spec(LAST_MONTH))
    _publish(s3, LAST_MONTH)
    _upload(s3, _truncated(0.1))
    result = annotate_riis.run(_spec(THIS_MONTH, force=True))
    assert (result["rows"], result["previous_rows"], result["previous_names"]) == (1, 60, 30)
    assert [p.split(":")[0] for p in result["forced_problems"]] == [
        "1 valid rows against 60 in the previous month's annotated list",
        "1 valid names against 30 in the previous month's annotated list",
    ]
    assert _exists(s3, THIS_MONTH.riis_annotated_key)
    assert "WARNING: forced run, publishing anyway: 1 valid rows against 60" in (
        capsys.readouterr().out
    )


def test_a_loss_within_the_limits_is_an_edition_not_damage(s3, gbif):
    """93% of the bytes: 55 of 60 rows (8% lost), 28 of 30 names (7%): under 10%, it passes,
    as real editions do (v1.0 to v2.0 lost 3.7% of the records)."""
    _upload(s3, FULL_LIST)
    annotate_riis.run(_spec(LAST_MONTH))
    _publish(s3, LAST_MONTH)
    _upload(s3, _truncated(0.93))
    result = annotate_riis.run(_spec(THIS_MONTH))
    assert (result["rows"], result["names"], result["forced_problems"]) == (55, 28, [])


def test_the_limits_are_settings(s3, gbif):
    _upload(s3, FULL_LIST)
    annotate_riis.run(_spec(LAST_MONTH))
    _publish(s3, LAST_MONTH)
    _upload(s3, _truncated(0.93))
    strict = {"max_row_loss_percent": 5}
    with pytest.raises(RiisListDamaged, match="RIIS_MAX_ROW_LOSS_PERCENT=5% allows") as refused:
        annotate_riis.run(_spec(THIS_MONTH, **strict))
    assert "names" not in str(refused.value)  # 7% of the names is under the names' 10%
    _upload(s3, _truncated(0.1))
    lenient = {"max_row_loss_percent": 100, "max_name_loss_percent": 100}
    assert annotate_riis.run(_spec(THIS_MONTH, **lenient))["rows"] == 1


def test_the_first_month_has_nothing_to_compare_with_and_passes(s3, gbif, capsys):
    _upload(s3, _truncated(0.1))
    result = annotate_riis.run(_spec(THIS_MONTH))
    assert (result["rows"], result["previous_rows"], result["forced_problems"]) == (1, None, [])
    assert "no month before 2025-04 was published" in capsys.readouterr().out


def test_last_months_list_counts_only_once_published_and_as_its_marker_names_it(s3, gbif):
    """A run of last month that never published (it failed after annotating) is no baseline:
    readers see the published month only. Once a marker names a run, that run's list is the
    one compared with, not another run's of the same month."""
    _upload(s3, FULL_LIST)
    annotate_riis.run(_spec(LAST_MONTH))  # written, never published
    _upload(s3, _truncated(0.1))
    assert annotate_riis.run(_spec(THIS_MONTH))["previous_rows"] is None
    short_run = MonthLayout.for_run(LAST_MONTH.month, "march-short")
    annotate_riis.run(_spec(short_run))  # another run of March, with the short list
    _publish(s3, short_run)
    assert annotate_riis.run(_spec(THIS_MONTH))["previous_rows"] == 1
    _publish(s3, LAST_MONTH)
    with pytest.raises(RiisListDamaged, match="1 valid rows against 60"):
        annotate_riis.run(_spec(THIS_MONTH))


def test_a_mostly_malformed_list_is_refused_even_in_the_first_month(s3, gbif):
    good = [_row("L48", f"Testus nomen{i:02d}") for i in range(4)]
    bad = [_row("XX", f"Testus nomen{i:02d}") for i in range(5)]  # not a RIIS region
    _upload(s3, "\n".join([HEADER, *good, *bad]) + "\n")
    with pytest.raises(RiisListDamaged, match=r"5 of 9 rows are malformed \(56%\)") as refused:
        annotate_riis.run(_spec(THIS_MONTH))
    assert "RIIS_MAX_MALFORMED_PERCENT=50%" in str(refused.value)
    assert annotate_riis.run(_spec(THIS_MONTH, max_malformed_percent=60))["rows"] == 4


def test_launch_task_writes_the_limits_from_its_environment(s3, monkeypatch):
    """The template's parameters reach the launch Lambda's environment; the spec carries them."""
    monkeypatch.setenv("RIIS_MAX_ROW_LOSS_PERCENT", "15")
    monkeypatch.delenv("RIIS_MAX_NAME_LOSS_PERCENT", raising=False)
    monkeypatch.setenv("NAME_CACHE_CHECKPOINT_SECONDS", "5")
    settings = _spec(THIS_MONTH).settings
    assert settings.limits == ListLimits(15, 10, 50)
    assert settings.name_cache_checkpoint_seconds == 5  # the task's own setting: spec too
    monkeypatch.setenv("RIIS_MAX_MALFORMED_PERCENT", "150")
    with pytest.raises(ConfigError, match="RIIS_MAX_MALFORMED_PERCENT is a percentage, got 150"):
        ListLimits.from_env()


def test_the_template_defaults_are_the_guards_and_reach_launch_task() -> None:
    template = cfn_template.template()
    variables = template["Resources"]["LaunchTaskFunction"]["Properties"]["Environment"][
        "Variables"
    ]
    for (_, variable), default in riis_guard.DEFAULT_PERCENTS.items():
        name = variables[variable]["Ref"]
        assert cfn_template.parameter_default(name) == str(default), name
        pattern = template["Parameters"][name]["AllowedPattern"]
        assert re.fullmatch(pattern, "0") and re.fullmatch(pattern, "100")
        assert not re.fullmatch(pattern, "101") and not re.fullmatch(pattern, "05")


def test_the_workflow_passes_its_force_input_to_the_annotate_task(s3) -> None:
    machine = json.loads((PROJECT_ROOT / "statemachines/bison_workflow.asl.json").read_text())
    (branch,) = [
        b
        for b in machine["States"]["SubsetAndAnnotate"]["Branches"]
        if "AnnotateRiis" in b["States"]
    ]
    payload = branch["States"]["AnnotateRiis"]["Parameters"]["Payload"]
    assert payload["force.$"] == "$.recheck.force"  # CheckGbif's output always has it
    forced = task_spec("annotate_riis", THIS_MONTH, "x", force=True)
    assert isinstance(forced, AnnotateRiisSpec) and forced.settings.force is True
    assert _spec(THIS_MONTH).settings.force is False


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"max_row_loss_percent": "10"}, r"limits\.max_row_loss_percent = \"10\" .* 'integer'"),
        ({"max_name_loss_percent": -1}, r"limits\.max_name_loss_percent = -1 .* percentage"),
        ({"force": "yes"}, r"settings\.force = \"yes\" .* 'boolean'"),
    ],
)
def test_a_bad_setting_in_the_spec_is_named(s3, gbif, params, message):
    _upload(s3, FULL_LIST)
    with pytest.raises(ValueError, match=message):
        annotate_riis.run(_spec(THIS_MONTH, **params))


def test_the_size_of_a_published_list_counts_rows_and_distinct_triples():
    text = "scientificName,scientificNameAuthorship,kingdom,gbif_res_taxonkey\n"
    text += "Aus bus,L.,Plantae,1\nAus bus,L.,Plantae,1\nAus bus,,Plantae,\nAus bus,L.,Animalia,2\n"
    assert ListSize.of_annotated(text) == ListSize(rows=4, names=3)
    with pytest.raises(ValueError, match="no column"):
        ListSize.of_annotated("locality,name\nL48,Aus bus\n")
    assert riis_guard.problems(ListSize(9, 9), 0, ListSize(10, 10), ListLimits(10, 10, 50)) == []


# --- through the workflow: the force input reaches the task ---------------------------------


def test_a_forced_start_publishes_a_truncated_list(runtime) -> None:
    """The issue's fault through the local runtime: the list cut to a tenth of its bytes fails
    the month (RiisListDamaged, before any GBIF call: the fault matrix's riis-list-truncated
    row, tests/test_fault_matrix.py); started with force=true, the workflow's force input
    reaches the task (AnnotateRiis passes $.recheck.force to launch_task, which writes it into
    the spec) and the month is published."""
    assert runtime.deployment and runtime.sample
    s3, bucket = runtime.clients["s3"], runtime.deployment.bucket
    month = MonthLayout.for_month("2027-02")
    listed = runtime.sample.riis_csv.read_bytes()
    # Last month as published: its run's list, the whole sample (the check reads only its
    # names' three columns), and an empty county species list (an UNLOAD manifest without
    # parts) for the forced run's "new this month" to compare with; its marker names the run.
    last = MonthLayout.for_run(month.previous.month, "riis-cut-last-month")
    previous = {
        last.riis_annotated_key: listed,
        f"{last.species_counts_prefix('county')}manifest": b'{"entries": []}',
        last.done_marker_key: json.dumps({"execution": last.run}).encode(),
    }
    for key, body in previous.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    s3.put_object(Bucket=bucket, Key=RIIS_INPUT_KEY, Body=listed[: len(listed) // 10])
    runtime.publish_snapshot(month.month)
    try:
        forced_arn = runtime.start_execution(month.month, name="riis-cut-forced", force=True)
        forced = wait_for_end(runtime, forced_arn, timeout=240)
    finally:
        s3.upload_file(str(runtime.sample.riis_csv), bucket, RIIS_INPUT_KEY)
        for key in previous:
            s3.delete_object(Bucket=bucket, Key=key)
    assert forced["status"] == "SUCCEEDED", forced.get("cause")
    annotate = next(
        json.loads(e["taskSucceededEventDetails"]["output"])
        for e in history(runtime.clients["stepfunctions"], forced_arn)
        if e["type"] == "TaskSucceeded"
        and e["taskSucceededEventDetails"]["resource"] == "invoke.waitForTaskToken"
    )
    assert annotate["forced_problems"] and annotate["previous_rows"] > annotate["rows"]
