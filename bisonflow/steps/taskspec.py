"""The task contract: what each EC2 task reads, writes and is told, typed and schema-checked.

launch_task writes a task's spec to S3 beside the month's outputs (bisonflow.steps.ec2_tasks);
the task's runner reads it back (tasks.runner). Both sides hold the same dataclasses: per task,
its inputs (the S3 keys it reads), its outputs (the keys it writes) and its settings, each
built from the run's MonthLayout (`for_layout`) or the launch Lambda's environment
(`from_env`), so a key or a setting is named once, here, and no task re-reads string keys.
A spec is checked against its task's JSON Schema (definitions/<task>.spec.schema.json, through
bisonflow.schemas as the Lambdas' events are) whenever one is made: when launch_task builds
it, when the runner reads it back, and when a test or bench builds one by hand. A spec that
exists is valid, so a task never checks a setting itself (the checks used to disagree: one
task took "3" for 3, the other refused "30").

One route for task settings: the spec. Every setting a task uses (the presence threshold,
the list's loss limits, the name cache's age and checkpoint interval, how hard the GBIF API
is asked, `force`) is read from the launch Lambda's environment, which the stack sets from
its parameters, and written into the spec; a task reads no setting from its container's
environment. Why the spec and not the container: (1) the spec is stored under the month's
task folder, so the settings a month was computed with stay on record beside its outputs;
(2) it is per run: `force` exists only per execution, and a setting changed on the launch
Lambda reaches the next run without a new image, launch template or compose file (the
container's environment is fixed by those); (3) one schema checks every setting before an
instance is launched, where a bad value costs nothing. The container's environment keeps
only what describes the machine, alike for every task and month: which task and spec
(TASK_APP, TASK_SPEC_URI), the instance (INSTANCE_ID, TOKEN_VERSION, AWS_REGION), where
services are (AWS_ENDPOINT_URL, GBIF_API_URL) and the runner's own pace, which is the
runner's and not a task's (TASK_HEARTBEAT_INTERVAL, TASK_SPOT_CHECK_SECONDS).

The Step Functions task token is NOT in the spec (nor in userdata, tags or logs): it is
stored as an SSM SecureString and the spec names only the parameter.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, ClassVar, Self, get_type_hints

from bisonflow import config
from bisonflow.config import DEFAULT_MIN_PRESENCE_COUNT, env_int
from bisonflow.gbif.concurrency_limit import LimitSettings
from bisonflow.gbif.retry_budget import retry_budget_from_env
from bisonflow.layout import DIMENSIONS, NAME_CACHE_KEY, RIIS_INPUT_KEY, MonthLayout
from bisonflow.riis.guard import ListLimits
from bisonflow.schemas import SchemaViolation, validate
from bisonflow.stats.provenance import citation_uri

#: The schema every spec matches whatever its task (definitions/task_spec.schema.json): read
#: first, so a spec for no known task is refused naming `$.task`.
ENVELOPE_SCHEMA = "task_spec"
#: Where launch_task stores each task's token: <root>/<execution>/<task>, a SecureString.
TOKEN_PARAMETER_ROOT = "/bisonflow/task-tokens"
#: NAME_CACHE_CHECKPOINT_SECONDS' default: the most GBIF answers a lost annotate_riis task
#: costs its rerun is a minute's (issue 11: "loses at most a minute of calls").
DEFAULT_CHECKPOINT_SECONDS = 60


def spec_schema(task: str) -> str:
    """The name of a task's schema in definitions/ (bisonflow.schemas)."""
    return f"{task}.spec"


# --- annotate_riis -----------------------------------------------------------------------


@dataclass(frozen=True)
class AnnotateRiisInputs:
    riis: str  # the US-RIIS master list as the user uploaded it
    name_cache: str  # GBIF answers kept between months

    @classmethod
    def for_layout(cls, layout: MonthLayout) -> Self:
        """The same for every run: the list is the user's upload, the cache the bucket's."""
        return cls(riis=RIIS_INPUT_KEY, name_cache=NAME_CACHE_KEY)


@dataclass(frozen=True)
class AnnotateRiisOutputs:
    annotated: str  # the annotated list Redshift loads
    report: str  # unresolved and doubtful names, for the curators
    name_cache: str  # the cache written back

    @classmethod
    def for_layout(cls, layout: MonthLayout) -> Self:
        return cls(
            annotated=layout.riis_annotated_key,
            report=layout.riis_report_key,
            name_cache=NAME_CACHE_KEY,
        )


@dataclass(frozen=True)
class AnnotateRiisSettings:
    name_cache_max_age_days: int  # cached answers older than this are asked again
    name_cache_checkpoint_seconds: int  # the cache is saved at most this often while resolving
    limits: ListLimits  # how much the list may lose against last month's (riis.guard)
    force: bool  # the workflow's: publish a list the guard finds damaged
    gbif_limit: LimitSettings  # GBIF requests in flight: ceiling, start, adaptive or fixed
    gbif_retry_budget_seconds: int  # how long one GBIF request may keep retrying

    @classmethod
    def from_env(cls, force: bool) -> Self:
        return cls(
            gbif_limit=LimitSettings.from_env(),
            gbif_retry_budget_seconds=retry_budget_from_env(),
            name_cache_max_age_days=config.name_cache_max_age_days(),
            name_cache_checkpoint_seconds=env_int(
                "NAME_CACHE_CHECKPOINT_SECONDS", DEFAULT_CHECKPOINT_SECONDS
            ),
            limits=ListLimits.from_env(),
            force=force,
        )


# --- calc_stats --------------------------------------------------------------------------


@dataclass(frozen=True)
class CalcStatsInputs:
    """The month's UNLOADed tables (each the folder of its parquet parts and manifest) and the
    GBIF snapshot's citation. Only what the task reads: every dimension's species lists, the
    state and county counts (the figures and maps); `aiannh_counts` was read only for its CSV
    copy, which the aggregate step UNLOADs itself (bisonflow.sql.workflow_sql)."""

    species_counts: dict[str, str]  # dimension -> prefix of `<dim>_species_counts`
    state_counts: str
    county_counts: str
    gbif_citation: str  # s3:// URI of the snapshot's citation.txt, in GBIF's bucket

    @classmethod
    def for_layout(cls, layout: MonthLayout, gbif_bucket: str) -> Self:
        return cls(
            species_counts={dim: layout.species_counts_prefix(dim) for dim in DIMENSIONS},
            state_counts=layout.region_counts_prefix("state"),
            county_counts=layout.region_counts_prefix("county"),
            gbif_citation=citation_uri(gbif_bucket, layout),
        )


@dataclass(frozen=True)
class CalcStatsOutputs:
    summary: str  # the run's folder: every file the task writes is under it
    record: str  # the run's month record, written last (never the month's marker)

    @classmethod
    def for_layout(cls, layout: MonthLayout) -> Self:
        return cls(summary=layout.summary_prefix, record=layout.record_key)


@dataclass(frozen=True)
class CalcStatsSettings:
    #: Occurrences of a species at a site for it to count as present (BISON's 3 by default).
    min_presence_count: int = DEFAULT_MIN_PRESENCE_COUNT

    @classmethod
    def from_env(cls) -> Self:
        return cls(min_presence_count=config.min_presence_count())


# --- the spec ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskSpec:
    """What every task's spec holds besides its inputs, outputs and settings."""

    task: ClassVar[str]  # module name under tasks/, e.g. "annotate_riis"
    step: ClassVar[str]  # the state that launches it (statemachines/bison_workflow.asl.json)
    month: str  # "YYYY-MM"
    bucket: str  # the BISON bucket: every input and output key is in it
    execution: str  # Step Functions execution name (also tagged on the instance)
    token_parameter: str  # SSM parameter holding the task token

    def __post_init__(self) -> None:
        validate(self.to_dict(), spec_schema(self.task))

    @classmethod
    def _envelope(cls, layout: MonthLayout, execution: str) -> dict[str, str]:
        """The fields every spec of a run has: the month, the bucket, where the token is."""
        return {
            "month": layout.month,
            "bucket": config.bison_bucket(),
            "execution": execution,
            "token_parameter": f"{TOKEN_PARAMETER_ROOT}/{execution}/{cls.task}",
        }

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, **dataclasses.asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @staticmethod
    def from_json(text: str | bytes) -> AnyTaskSpec:
        """A spec read back from S3, as its task's class; SchemaViolation names what is wrong."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise SchemaViolation(f"{ENVELOPE_SCHEMA}: not JSON: {exc}") from None
        validate(data, ENVELOPE_SCHEMA)
        validate(data, spec_schema(data["task"]))
        spec_class = SPEC_CLASSES[data.pop("task")]
        return _build(spec_class, data)


@dataclass(frozen=True)
class AnnotateRiisSpec(TaskSpec):
    task: ClassVar[str] = "annotate_riis"
    step: ClassVar[str] = "AnnotateRiis"
    inputs: AnnotateRiisInputs
    outputs: AnnotateRiisOutputs
    settings: AnnotateRiisSettings

    @classmethod
    def for_run(cls, layout: MonthLayout, execution: str, force: bool = False) -> Self:
        """The spec launch_task writes; `force` is the workflow's: the task then publishes a
        list its guard finds damaged."""
        return cls(
            **cls._envelope(layout, execution),
            inputs=AnnotateRiisInputs.for_layout(layout),
            outputs=AnnotateRiisOutputs.for_layout(layout),
            settings=AnnotateRiisSettings.from_env(force),
        )


@dataclass(frozen=True)
class CalcStatsSpec(TaskSpec):
    task: ClassVar[str] = "calc_stats"
    step: ClassVar[str] = "CalcStats"
    inputs: CalcStatsInputs
    outputs: CalcStatsOutputs
    settings: CalcStatsSettings

    @classmethod
    def for_run(cls, layout: MonthLayout, execution: str, force: bool = False) -> Self:
        """The spec launch_task writes: the run's tables in, the run's folder out. `force`
        concerns only the RIIS list, which this task does not read."""
        return cls(
            **cls._envelope(layout, execution),
            inputs=CalcStatsInputs.for_layout(layout, config.gbif_bucket()),
            outputs=CalcStatsOutputs.for_layout(layout),
            settings=CalcStatsSettings.from_env(),
        )


AnyTaskSpec = AnnotateRiisSpec | CalcStatsSpec
#: Every task by name: the one list of what launch_task can start and the runner can run.
SPEC_CLASSES: dict[str, type[AnyTaskSpec]] = {
    AnnotateRiisSpec.task: AnnotateRiisSpec,
    CalcStatsSpec.task: CalcStatsSpec,
}


def _build(cls: Any, data: dict[str, Any]) -> Any:
    """A dataclass (and the dataclasses in its fields) from its dict form, already checked
    against the schema; a field the dict lacks keeps its default."""
    hints = get_type_hints(cls)
    values = {}
    for spec_field in dataclasses.fields(cls):
        if spec_field.name not in data:
            continue
        value, hint = data[spec_field.name], hints[spec_field.name]
        values[spec_field.name] = _build(hint, value) if dataclasses.is_dataclass(hint) else value
    return cls(**values)
