"""report.html without a browser: the graph of the ASL, the page's text, its assets and the
month's figures (the page in headless Chromium: test_report_browser.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bisonflow.history.execution_view import build_view
from bisonflow.history.report import render_report, write_report
from bisonflow.history.report.assets import ReportAssetMissing
from bisonflow.history.report.gallery import summary_prefix
from bisonflow.history.report.graph import (
    BRANCH,
    CATCH,
    CHOICE,
    DEFAULT,
    END,
    END_OF_BRANCH,
    LABEL_CHARS,
    LABEL_LINES,
    NEXT,
    START,
    asl_graph,
    rule_label,
    short_rule,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "executions"
#: The workflow's definition as a recorded execution ran it: fixed, so these counts do not
#: move while the ASL changes (test_report_browser.py also draws the ASL of this tree).
ASL = json.loads((DATA / "succeeded" / "definition.json").read_text())
#: Where the recorded succeeded execution wrote its month (tests/record_executions.py).
RUN_PREFIX = "summary/2026_08_01/runs/recorded-succeeded/"


def load_view(kind: str):
    folder = DATA / kind
    return build_view(
        json.loads((folder / "execution.json").read_text()),
        (folder / "definition.json").read_text(),
        json.loads((folder / "history.json").read_text())["events"],
    )


# -- graph.py --------------------------------------------------------------------------------


def edges_of(graph, kind):
    return {(e.source, e.target): e.label for e in graph.edges if e.kind == kind}


def test_every_state_is_a_node_with_its_branch():
    graph = asl_graph(ASL)
    states = [n for n in graph.nodes.values() if n.is_state]
    assert len(states) == 32
    assert START in graph.nodes
    branches = {key: sorted(n.name for n in nodes) for key, nodes in graph.branches().items()}
    assert branches == {
        ("SubsetAndAnnotate", 0): sorted(
            [
                "StartSubset",
                "SubmitSubset",
                "WaitForSubset",
                "PollSubset",
                "SubsetBatchDone?",
                "SubsetDone",
            ]
        ),
        ("SubsetAndAnnotate", 1): ["AnnotateRiis"],
    }


def test_edges_of_the_workflow_have_kinds_and_labels():
    graph = asl_graph(ASL)
    choice = edges_of(graph, CHOICE)
    assert choice[("SnapshotReady?", "NoSnapshotYet")] == "$.snapshot_exists == false"
    assert choice[("SnapshotReady?", "AlreadyProcessed")] == "$.already_processed == true"
    assert choice[("SubsetBatchDone?", "SubmitSubset")] == (
        '$.sql.status == "FINISHED" && $.sql.more_batches == true'
    )
    assert choice[("MonthLocked?", "SubsetAndAnnotate")] == "$.lock.acquired == true"
    assert ("SnapshotReady?", "LockMonth") in edges_of(graph, DEFAULT)
    assert ("SubsetBatchDone?", "WaitForSubset") in edges_of(graph, DEFAULT)
    catch = edges_of(graph, CATCH)
    # CalcStats fails uncaught (a redrive resumes it); a failed ReleaseMonthLock still ends in
    # Published (the lock expires); CheckGbif's error goes through CheckGbifFailed
    assert set(catch) == {
        (s, "CleanupTasks")
        for s in [
            "RecheckSnapshot",
            "LockMonth",
            "SubsetAndAnnotate",
            "SubmitAssignAndAggregate",
            "PollAssignAndAggregate",
            "PublishMonth",
        ]
    } | {
        ("CheckGbif", "CheckGbifFailed"),
        ("ReleaseMonthLock", "Published"),
        ("CleanupTasks", "CleanupFailed"),
    }
    assert set(catch.values()) == {"States.ALL"}
    assert set(edges_of(graph, BRANCH)) == {
        ("SubsetAndAnnotate", "StartSubset"),
        ("SubsetAndAnnotate", "AnnotateRiis"),
    }
    assert set(edges_of(graph, END_OF_BRANCH)) == {
        ("SubsetDone", "StartAssignAndAggregate"),
        ("AnnotateRiis", "StartAssignAndAggregate"),
    }
    nexts = edges_of(graph, NEXT)
    assert ("CleanupTasks", "WorkflowFailed") in nexts
    assert (START, "CheckGbif") in nexts and not any(target == END for _, target in nexts)


def test_choice_rules_are_short_on_the_edge_and_whole_in_its_title():
    graph = asl_graph(ASL)
    short = {(e.source, e.target): e.short for e in graph.edges}
    assert short[("SubsetBatchDone?", "SubmitSubset")] == (
        'status == "FINISHED"',
        "and more_batches",
    )
    assert short[("SnapshotReady?", "NoSnapshotYet")] == ("not snapshot_exists",)
    assert short[("SnapshotReady?", "AlreadyProcessed")] == ("already_processed",)
    assert short[("SnapshotReady?", "SnapshotNotPublished")] == (
        "not snapshot_exists",
        "and scheduled",
    )
    assert short[("SnapshotReady?", "LockMonth")] == ("default",)
    # the catch-all goes unlabelled; its errors stay the edge's full label
    assert short[("LockMonth", "CleanupTasks")] == ()
    assert all(len(line) <= LABEL_CHARS for lines in short.values() for line in lines)


def test_a_long_rule_is_cut_to_its_lines_and_characters():
    rule = {
        "Or": [
            {"Variable": f"$.deep.path.variable_number_{i}", "StringEquals": "x" * 40}
            for i in range(5)
        ],
        "Next": "X",
    }
    lines = short_rule(rule)
    assert len(lines) == LABEL_LINES and lines[-1] == "… 3 more"
    assert all(len(line) <= LABEL_CHARS and line.endswith("…") for line in lines[:-1])
    assert lines[1].startswith("or variable_number_1")
    assert rule_label(rule).count("$.deep.path.variable_number_") == 5  # the full rule


def test_succeed_and_fail_states_end_without_an_end_marker():
    graph = asl_graph(ASL)
    assert END not in graph.nodes  # every top-level end here is a Succeed or a Fail state
    ends = {"End": True}
    minimal = {"StartAt": "A", "States": {"A": {"Type": "Pass", **ends}}}
    assert (("A", END) in edges_of(asl_graph(minimal), NEXT)) and END in asl_graph(minimal).nodes


# -- the page without a browser --------------------------------------------------------------


@pytest.mark.parametrize("kind", ["succeeded", "failed", "running"])
def test_report_loads_nothing_from_the_network(kind):
    link = ("CloudWatch", "https://console.aws.amazon.com/cloudwatch/home#logsV2:x")
    figure = ("map_richness_county.png", "outputs/summary/2026_09_01/map_richness_county.png")
    html = render_report(load_view(kind), {"CalcStats": [link]}, [figure])
    lowered = html.lower()
    for needle in ("<script src", "<link", "@import", "url(http", "<iframe"):
        assert needle not in lowered, needle
    remote = re.findall(r"""(?:src|href)\s*=\s*["']?\s*((?:https?:)?//[^"'\s>]*)""", html, re.I)
    assert remote == [link[1]]  # only the log link the caller gave
    assert re.findall(r'<img src="([^"]*)"', html) == [figure[1]]  # beside the page
    assert "dagre" in html  # the layout library is inlined, not fetched


def test_the_layout_library_missing_is_one_line_naming_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("BISONFLOW_REPORT_JS", str(tmp_path / "nowhere"))
    with pytest.raises(ReportAssetMissing) as missing:
        render_report(load_view("succeeded"))
    message = str(missing.value)
    assert "\n" not in message and "scripts/install-report-js" in message
    assert str(tmp_path / "nowhere") in message


def record_with_outputs(tmp_path, view):
    """A run record as `bisonflow run` leaves it: outputs/ holds the month's summary prefix."""
    prefix = summary_prefix(view)
    folder = tmp_path / "run" / "outputs" / prefix
    folder.mkdir(parents=True)
    for name in ("map_richness_county.png", "figure_richness_state.png", "summary.csv"):
        (folder / name).write_bytes(b"\x89PNG\r\n\x1a\n" if name.endswith(".png") else b"a,b")
    return tmp_path / "run"


def test_the_report_shows_the_months_figures_and_maps_from_the_run_record(tmp_path):
    view = load_view("succeeded")
    assert summary_prefix(view) == RUN_PREFIX
    run = record_with_outputs(tmp_path, view)
    html = write_report(view, run / "report.html", outputs=run / "outputs").read_text()
    # written into a run record (execution.json beside outputs/), the record's outputs/ is found
    (run / "execution.json").write_text("{}")
    assert write_report(view, run / "report.html").read_text() == html
    sources = re.findall(r'<img src="([^"]*)"', html)
    assert sources == [
        f"outputs/{RUN_PREFIX}figure_richness_state.png",
        f"outputs/{RUN_PREFIX}map_richness_county.png",
    ]  # figures, then maps; the CSV is not an image
    assert all((run / src).is_file() for src in sources)
    assert "Map: richness county" in html


def test_a_run_that_published_nothing_says_so_instead_of_figures(tmp_path):
    for kind in ("failed", "running"):
        view = load_view(kind)
        assert summary_prefix(view) is None
        html = write_report(view, tmp_path / kind / "report.html", outputs=tmp_path).read_text()
        assert "<img" not in html and "did not reach CalcStats" in html
    view = load_view("succeeded")  # published, but the record has no copy
    html = write_report(view, tmp_path / "bare" / "report.html").read_text()
    assert "<img" not in html and f"holds no copy of {RUN_PREFIX}" in html


def test_report_escapes_causes():
    view = load_view("failed")
    view.states["AnnotateRiis"].cause = "<script>alert(1)</script> & </pre>"
    html = render_report(view)
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;/pre&gt;" in html


def test_an_error_reads_as_one_line_first_with_the_whole_cause_folded_after_it():
    html = render_report(load_view("failed"))
    message = (
        "FileNotFoundError: input s3://bisonflow-local/input/riis/USRIISv2_MasterList.csv "
        "does not exist (NoSuchKey)"
    )
    header = html[html.index("<header>") : html.index("</header>")]
    assert f'<th>Error</th><td><span class="error">{message}</span>' in header
    assert header.index(message) < header.index("<details><summary>the whole cause (")
    assert "Traceback (innermost last):" in header  # the task runner's tail, folded
    panel = html[html.index('data-detail="AnnotateRiis"') :]
    assert panel.index(message) < panel.index("Traceback (innermost last):")


def test_the_task_tokens_in_the_history_are_not_on_the_page():
    """The callback states' TaskScheduled parameters carry $$.Task.Token (docs/aws.md,
    "Where the task token appears"); report.html and the console's pages show that a token
    was passed, not the token, which would let a reader of the page end the state."""
    view = load_view("succeeded")
    tokens = [
        json.loads(event["taskScheduledEventDetails"]["parameters"])["Payload"]["task_token"]
        for event in view.events
        if event["type"] == "TaskScheduled"
        and "task_token" in event["taskScheduledEventDetails"]["parameters"]
    ]
    assert len(tokens) == 2 and all(len(token) > 20 for token in tokens)
    html = render_report(view)
    assert not [token for token in tokens if token in html]
    assert html.count("&lt;redacted&gt;") >= 2
