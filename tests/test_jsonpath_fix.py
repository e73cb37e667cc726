"""asl_fixes fix 4: definite JSONPaths select one value, as on AWS (moto wrapped `$[1].x`)."""

from __future__ import annotations

import json

from test_emulator_seams import _run_machine

from bisonflow.local.runtime import LocalRuntime
from bisonflow.local.seams import modules_holding
from bisonflow.local.sfn import asl_fixes


def _branch(result: dict) -> dict:
    return {"StartAt": "Give", "States": {"Give": {"Type": "Pass", "Result": result, "End": True}}}


def test_definite_paths_through_an_index_select_one_value(runtime: LocalRuntime) -> None:
    machine = {
        "StartAt": "Both",
        "States": {
            "Both": {
                "Type": "Parallel",
                "Branches": [_branch({"sql": {"batches": 5}}), _branch({"annotate": {"rows": 7}})],
                # The shape of the workflow's SubsetAndAnnotate ResultSelector.
                "ResultSelector": {
                    "batches.$": "$[0].sql.batches",
                    "annotate.$": "$[1].annotate",
                    "rows.$": "$[1].annotate.rows",
                    "second.$": "$[1]",
                },
                "End": True,
            }
        },
    }
    description = _run_machine(runtime, machine, {})
    assert description["status"] == "SUCCEEDED", description
    assert json.loads(description["output"]) == {
        "batches": 5,
        "annotate": {"rows": 7},
        "rows": 7,
        "second": {"annotate": {"rows": 7}},
    }


def test_filter_paths_still_select_lists() -> None:
    data = {"items": [{"name": "a", "value": 1}, {"name": "b", "value": 2}]}
    assert asl_fixes.extract_json("$.items[?(@.name == 'b')].value", data) == [2]
    assert asl_fixes.extract_json("$.items[0:1].name", data) == ["a"]
    assert asl_fixes.extract_json("$.items[1].value", data) == 2


def test_every_interpreter_module_uses_the_fix(runtime: LocalRuntime) -> None:
    # Nothing in the interpreter still calls moto's own extract_json after install().
    assert runtime.emulator is not None
    extract = next(p for p in asl_fixes.SEAM.patches if p.name == "extract_json")
    original = asl_fixes.SEAM.original(extract)
    assert modules_holding(asl_fixes.INTERPRETER, "extract_json", original) == []


def test_a_path_is_parsed_once_and_reads_the_same_every_time() -> None:
    """The parse is cached (speed only): the same path on other data reads that data."""
    path = "$.lock.reason"
    before = asl_fixes._parsed.cache_info().hits
    assert asl_fixes.extract_json(path, {"lock": {"reason": "first"}}) == "first"
    assert asl_fixes.extract_json(path, {"lock": {"reason": "second"}}) == "second"
    assert asl_fixes._parsed.cache_info().hits > before
