"""Where one month's inputs and outputs live: table names and S3 keys.

Every step derives names from the month through this one module, so a Lambda, a task and
the local runtime can never disagree about where a file is.

Each execution writes its whole output tree under a staging prefix of its own,
`summary/<YYYY_MM_DD>/runs/<execution name>/` and `annotated_riis/<YYYY_MM_DD>/runs/<execution
name>/` (`MonthLayout.for_run`), and the month is published by one write of its marker,
`summary/<YYYY_MM_DD>/_SUCCESS`, naming the run (bisonflow.steps.publish). S3 has no multi-object
rename ("There is no way to make atomic updates across keys"; S3 User Guide, "Amazon S3 data
consistency model"), so writing or copying files into one fixed folder can never switch a
month atomically for its readers; switching a single key can. A layout without a run names
the month itself: its tables, lock, marker and GBIF keys, and the files of a month published
in place before runs existed.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from dataclasses import dataclass
from functools import cache

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")

#: The US-RIIS master list as the user uploads it into the BISON bucket.
RIIS_INPUT_KEY = "input/riis/USRIISv2_MasterList.csv"
#: Census cartographic boundary layer of counties (with STUSPS and STATE_NAME), as a shapefile.
COUNTY_SHAPEFILE_KEY = "input/boundaries/cb_us_county.shp"
#: Census cartographic boundary layer of American Indian / Alaska Native / Native Hawaiian
#: areas (cb_YYYY_us_aiannh_500k: AIANNHCE, GEOID, NAME, NAMELSAD, ...), as a shapefile.
AIANNH_SHAPEFILE_KEY = "input/boundaries/cb_us_aiannh.shp"
#: The sidecar files Redshift's COPY ... FORMAT SHAPEFILE reads beside the .shp.
SHAPEFILE_SIDECARS = (".shx", ".dbf", ".prj")
#: GBIF name-match answers kept between months, keyed by (scientificName, authorship, kingdom),
#: so a month in which the list did not change costs almost no API calls.
NAME_CACHE_KEY = "cache/gbif_name_matches.json.gz"

#: Every month's outputs are under SUMMARY_ROOT<YYYY_MM_DD>/ (MonthLayout.summary_prefix).
SUMMARY_ROOT = "summary/"
#: The annotated US-RIIS list and its report are under ANNOTATED_ROOT<YYYY_MM_DD>/.
ANNOTATED_ROOT = "annotated_riis/"
#: Each execution's staging folder, inside the month's folders: <month folder>RUNS/<name>/.
RUNS = "runs/"
#: The file calc_stats writes last in its run's summary folder: its record of the month.
RECORD_NAME = "month_record.json"
#: The file in which GBIF says how to cite a snapshot; the month publishes a copy of it.
CITATION_NAME = "citation.txt"

#: What UNLOAD ... PARALLEL OFF EXTENSION 'csv' names the first (and, up to 6.2 GB, only)
#: file it writes after its TO prefix: a three-digit serial number, then the extension.
CSV_COPY_EXTENSION = "csv"
CSV_COPY_FIRST_FILE = f"000.{CSV_COPY_EXTENSION}"

#: The geographies BISON summarises by; each has its own count tables, PAM and statistics.
DIMENSIONS: tuple[str, ...] = ("county", "state", "aiannh")


# Step Functions' rule for execution names, one function for every place that checks one. A
# run's staging folders are named after its execution, so the rule is part of the layout.
# StartExecution's `name` (Step Functions API Reference, StartExecution, Request Parameters,
# "name"; Length Constraints: 1 to 80): it must not contain white space, brackets < > { } [ ],
# wildcard characters ? *, special characters " # % \ ^ | ~ ` $ & , ; : /, control characters
# (U+0000-001F, U+007F-009F, U+FFFE-FFFF), surrogates (U+D800-DFFF) or invalid characters
# (U+10FFFF). `bisonflow start --name` checks a name with it before starting anything
# (bisonflow.cli.checks), and the emulator refuses with it what moto would accept
# (bisonflow.local.sfn.names): one rule, so the two cannot drift apart.

EXECUTION_NAME_MAX = 80
_FORBIDDEN_CHARACTERS = frozenset('<>{}[]?*"#%\\^|~`$&,;:/')
_FORBIDDEN_RANGES = (
    (0x00, 0x1F),
    (0x7F, 0x9F),
    (0xD800, 0xDFFF),
    (0xFFFE, 0xFFFF),
    (0x10FFFF, 0x10FFFF),
)


#: The rule in words, for a person about to type a name (the console's name field).
EXECUTION_NAME_RULE = (
    f"1 to {EXECUTION_NAME_MAX} characters, with no white space, control characters or any of "
    + " ".join(sorted(_FORBIDDEN_CHARACTERS))
)


@cache
def execution_name_pattern() -> str:
    """execution_name_problem's rule as a regular expression a browser runs: an `<input
    pattern>` (which HTML anchors to the whole value and compiles with JavaScript's `v` flag)
    or `new RegExp("^(?:" + pattern + ")$", "u")`; both count code points, as len() does.

    Built from the constants above, and white space from str.isspace itself (JavaScript's
    `\\s` is another set: it has U+FEFF and lacks U+001C-001F and U+0085), so the browser's check
    cannot drift from the server's. Every character is written `\\u{...}`, which both flags
    read and no class syntax of `v` can misparse."""
    spans = sorted(
        [(ord(c), ord(c)) for c in _FORBIDDEN_CHARACTERS]
        + list(_FORBIDDEN_RANGES)
        + [(code, code) for code in range(sys.maxunicode + 1) if chr(code).isspace()]
    )
    merged: list[list[int]] = []
    for low, high in spans:
        if merged and low <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    excluded = "".join(
        f"\\u{{{low:X}}}" + (f"-\\u{{{high:X}}}" if high > low else "") for low, high in merged
    )
    return f"[^{excluded}]{{1,{EXECUTION_NAME_MAX}}}"


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


class MonthError(ValueError):
    """The workflow input named a month that is not a calendar month."""


def parse_month(value: str | None, today: dt.date | None = None) -> dt.date:
    """First day of the month `YYYY-MM`; the current month when value is None."""
    if value is None:
        today = today or dt.datetime.now(dt.UTC).date()
        return today.replace(day=1)
    if not isinstance(value, str):
        raise MonthError(f"month must be a string 'YYYY-MM', got {value!r}")
    m = _MONTH.match(value)
    if not m:
        raise MonthError(f"month must look like 'YYYY-MM', got {value!r}")
    year, month = int(m.group(1)), int(m.group(2))
    if not 1 <= month <= 12:
        raise MonthError(f"month {value!r} has month number {month}, which is not in 1..12")
    if year < 2000:
        raise MonthError(f"month {value!r} is before GBIF's open-data snapshots (year < 2000)")
    return dt.date(year, month, 1)


def month_of_timestamp(value: str) -> str:
    """`YYYY-MM` of an RFC 3339 time, in UTC, e.g. EventBridge Scheduler's scheduled time.

    A schedule can only hand the state machine its fire time as a whole string
    (`<aws.scheduler.scheduled-time>`), so the month a scheduled run processes is derived here:
    a run that fires late, or is retried on the 3rd, still processes the month it was for.
    """
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        raise MonthError(f"scheduled_time must be an RFC 3339 time, got {value!r}") from None
    if when.tzinfo is None:
        raise MonthError(f"scheduled_time {value!r} has no time zone offset")
    return when.astimezone(dt.UTC).strftime("%Y-%m")


@dataclass(frozen=True)
class MonthLayout:
    """Names for one month, all derived from the snapshot date (first of the month), and for
    one execution's run of it when `run` (the execution name) is set: the run's outputs are
    under its staging folders; tables, lock, marker and GBIF keys are the month's."""

    snapshot: dt.date
    run: str | None = None

    @classmethod
    def for_month(cls, month: str | None) -> MonthLayout:
        return cls(parse_month(month))

    @classmethod
    def for_run(cls, month: str | None, execution: str) -> MonthLayout:
        """The layout of execution `execution` (its name, `$$.Execution.Name`) of a month.
        Step Functions' name rule (execution_name_problem above) admits no `/` and no white
        space, so a name is always one safe S3 key segment."""
        problem = execution_name_problem(execution) if isinstance(execution, str) else "is not text"
        if problem:
            raise MonthError(f"execution {execution!r} is not an execution name: it {problem}")
        return cls(parse_month(month), execution)

    @classmethod
    def for_summary_prefix(cls, month: str, prefix: str) -> MonthLayout:
        """The layout of `month` whose summary_prefix is `prefix`: a run's staging folder, or
        the month's own folder (a month published in place, before runs). A task whose spec
        names its output folder derives every other key of that run from it, so its files
        cannot land beside another run's."""
        month_layout = cls.for_month(month)
        runs = f"{month_layout.summary_prefix}{RUNS}"
        if prefix == month_layout.summary_prefix:
            return month_layout
        name = prefix.removeprefix(runs).removesuffix("/")
        if not prefix.startswith(runs) or not prefix.endswith("/") or "/" in name:
            raise MonthError(
                f"{prefix!r} is neither {month_layout.summary_prefix} nor {runs}<run>/"
            )
        return cls.for_run(month, name)

    @classmethod
    def from_datestamp(cls, datestamp: str) -> MonthLayout:
        """The month of a `YYYY_MM_DD` folder name (the inverse of `datestamp`), e.g. to find
        the months already published under SUMMARY_ROOT."""
        try:
            day = dt.datetime.strptime(datestamp, "%Y_%m_%d").date()
        except ValueError:
            raise MonthError(f"{datestamp!r} is not a YYYY_MM_DD month folder") from None
        if day.day != 1:
            raise MonthError(f"{datestamp!r} is not the first of a month")
        return cls(day)

    @property
    def month(self) -> str:
        return self.snapshot.strftime("%Y-%m")

    @property
    def datestamp(self) -> str:
        """`YYYY_MM_DD`, as in the seed system's table and folder names."""
        return self.snapshot.strftime("%Y_%m_%d")

    @property
    def previous(self) -> MonthLayout:
        """The calendar month before (the month itself: no run)."""
        return MonthLayout((self.snapshot - dt.timedelta(days=1)).replace(day=1))

    @property
    def month_layout(self) -> MonthLayout:
        """This month without the run."""
        return MonthLayout(self.snapshot)

    @property
    def _run_folder(self) -> str:
        return f"{RUNS}{self.run}/" if self.run else ""

    # --- GBIF open data -------------------------------------------------------------
    # "the periodic occurrence snapshots are stored in `occurrence/YYYY-MM-DD`"; "Each snapshot
    # contains a `citation.txt` [...] and the data files themselves in Parquet format:
    # `occurrence.parquet/*`" (github gbif/occurrence, aws-public-data.md, "Data format").
    @property
    def gbif_snapshot_prefix(self) -> str:
        """Key prefix of the whole snapshot (data and citation) in the GBIF open-data bucket."""
        return f"occurrence/{self.snapshot.isoformat()}/"

    @property
    def gbif_prefix(self) -> str:
        """Key prefix of the snapshot's parquet files in the GBIF open-data bucket."""
        return f"{self.gbif_snapshot_prefix}occurrence.parquet/"

    @property
    def gbif_citation_key(self) -> str:
        """The snapshot's own citation.txt (how GBIF asks the snapshot to be cited)."""
        return f"{self.gbif_snapshot_prefix}{CITATION_NAME}"

    # --- Redshift -------------------------------------------------------------------
    @property
    def subset_table(self) -> str:
        return f"bison_{self.datestamp}"

    @property
    def riis_table(self) -> str:
        return f"riis_{self.datestamp}"

    @property
    def county_table(self) -> str:
        return f"county_{self.datestamp}"

    @property
    def aiannh_table(self) -> str:
        return f"aiannh_{self.datestamp}"

    @property
    def marks_table(self) -> str:
        """Per subset record: county, state, RIIS region and status, AIANNH area. Kept, like the
        subset, until next month's subset step drops both."""
        return f"{self.subset_table}_marks"

    # --- BISON bucket ---------------------------------------------------------------
    @property
    def annotated_prefix(self) -> str:
        """The folder of the run's (or the month's) annotated list and report."""
        return f"{ANNOTATED_ROOT}{self.datestamp}/{self._run_folder}"

    @property
    def riis_annotated_key(self) -> str:
        return f"{self.annotated_prefix}USRIISv2_MasterList_annotated.csv"

    @property
    def summary_prefix(self) -> str:
        """The folder of the run's (or the month's) summaries, statistics and figures."""
        return f"{SUMMARY_ROOT}{self.datestamp}/{self._run_folder}"

    @property
    def riis_report_key(self) -> str:
        """Names GBIF could not match, or matched doubtfully, for the RIIS curators (CSV)."""
        return f"{self.annotated_prefix}USRIISv2_unresolved.csv"

    def species_counts_prefix(self, dimension: str) -> str:
        """Species list per site of a dimension with occurrence counts (UNLOAD parquet parts)."""
        return f"{self.summary_prefix}{_dimension(dimension)}_species_counts/"

    def region_counts_prefix(self, dimension: str) -> str:
        """Occurrence and species counts per site of a dimension, overall and per RIIS
        assessment (UNLOAD parquet parts)."""
        return f"{self.summary_prefix}{_dimension(dimension)}_counts/"

    def table_csv_prefix(self, table_prefix: str) -> str:
        """Where the aggregate step UNLOADs the CSV copy of a table (the TO of its second
        UNLOAD, bisonflow.sql.workflow_sql): `<dim>_counts/` -> `<dim>_counts_`, so its file
        lands beside the parquet folder it copies and nothing else starts with it."""
        if not table_prefix.startswith(self.summary_prefix) or not table_prefix.endswith("/"):
            raise ValueError(f"{table_prefix!r} is not a table folder under {self.summary_prefix}")
        return table_prefix.removesuffix("/") + "_"

    def table_csv_key(self, table_prefix: str) -> str:
        """The CSV copy of a table for spreadsheets, `<dim>_counts_000.csv`: the name UNLOAD
        ... PARALLEL OFF EXTENSION 'csv' gives its first file after the TO prefix
        (`<name-prefix>000`, "the file extension to append to the names of the unloaded
        files": Redshift Database Developer Guide, UNLOAD, "PARALLEL" and "EXTENSION"; the
        guide's example passes 'txt.gz' without a dot but shows no resulting name, and
        `000.csv` is what users of EXTENSION 'csv' report). A copy over 6.2 GB, UNLOAD's
        largest file, continues in `_001.csv` and on; the national county list is 4.5 GB."""
        return f"{self.table_csv_prefix(table_prefix)}{CSV_COPY_FIRST_FILE}"

    @property
    def citation_copy_key(self) -> str:
        """The GBIF snapshot's citation.txt, copied beside the month's outputs."""
        return f"{self.summary_prefix}{CITATION_NAME}"

    @property
    def new_in_county_key(self) -> str:
        """Listed species recorded in a county where the previous published month had no
        record of them (CSV, one row per county and species)."""
        return f"{self.summary_prefix}new_this_month_county.csv"

    @property
    def county_changes_key(self) -> str:
        """Per county and RIIS tier: listed species gained and lost since the previous
        published month (CSV)."""
        return f"{self.summary_prefix}changes_county.csv"

    @property
    def new_this_month_figure_key(self) -> str:
        """The counties with the most listed species gained or lost, as a bar chart."""
        return f"{self.summary_prefix}figure_new_this_month_county.png"

    @property
    def done_marker_key(self) -> str:
        """The month's marker: its presence means the month is published, its content names
        the run that is (bisonflow.steps.publish). The same key for every run of the month."""
        return f"{SUMMARY_ROOT}{self.datestamp}/_SUCCESS"

    @property
    def record_key(self) -> str:
        """calc_stats's record of the run (counts, provenance, changes), written after every
        other file of the run: the publish step refuses a run without it."""
        if self.run is None:
            raise ValueError(f"{self.month} has no run: a record belongs to an execution's run")
        return f"{self.summary_prefix}{RECORD_NAME}"

    @property
    def task_prefix(self) -> str:
        """Task specs and logs for this month's EC2 tasks."""
        return f"tasks/{self.datestamp}/"


def _dimension(name: str) -> str:
    if name not in DIMENSIONS:
        raise ValueError(f"unknown dimension {name!r}; expected one of {DIMENSIONS}")
    return name
