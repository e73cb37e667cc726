"""The aggregate step's UNLOAD statements: each count table as parquet parts, then again as
one CSV file for curators. `bisonflow.sql.workflow_sql` puts them in the step's batches."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bisonflow.layout import CSV_COPY_EXTENSION
from bisonflow.sql.quoting import sql_literal

if TYPE_CHECKING:
    from bisonflow.sql.workflow_sql import SqlTarget

#: The object UNLOAD ... MANIFEST writes beside the parts it lists: "the manifest file is
#: written to the same Amazon S3 path prefix as the unload files in the format
#: `<object_path_prefix>manifest`" (Redshift Database Developer Guide, UNLOAD, MANIFEST).
#: One name for the writer (the stand-in, `bisonflow.local.redshift`) and the reader
#: (tasks/calc_stats.py), so the two cannot drift apart.
MANIFEST_NAME = "manifest"


def unload_csv(query: str, uri: str, target: SqlTarget) -> str:
    """UNLOAD the same query a second time as one CSV file with a header, for curators who
    work in spreadsheets, as BISON's aggregate step does ("CSV exports for delivery":
    `UNLOAD ... CSV DELIMITER AS ',' HEADER PARALLEL OFF`, lifemapper/bison at be5204f,
    `aws/lambda/bison_s6_aggregate_region.py`). Redshift Database Developer Guide, UNLOAD:

    * PARALLEL OFF writes the rows "serially, sorted absolutely according to the ORDER BY
      clause", to `<name-prefix>000` and, past the 6.2 GB a file may hold, `001`, ...;
      EXTENSION 'csv' appends the extension, so the file is `<dim>_counts_000.csv`
      (`MonthLayout.table_csv_key`), beside the parquet folder.
    * FORMAT AS CSV quotes a field only if it holds the delimiter, a double quotation mark,
      a newline or a carriage return, doubling the quotation marks inside; without NULL AS
      a NULL is a zero-length field. HEADER adds the column names as the first line (the
      CSV rules apply to it too). CSV refuses FIXEDWIDTH and ADDQUOTES; PARQUET would refuse
      HEADER, DELIMITER and NULL AS (the stand-in refuses them as well:
      bisonflow.local.redshift.unload_rules).
    * ALLOWOVERWRITE, not CLEANPATH: the TO is a name prefix inside the run's summary
      folder, not a folder of its own, and the guide defines CLEANPATH's reach only as
      "the Amazon S3 path specified in the TO clause"; a re-run of the step writes the same
      rows to the same names, which ALLOWOVERWRITE lets it replace (without it "UNLOAD
      fails if it finds files that it would possibly overwrite"). The two cannot be given
      together.
    * No MANIFEST: the file's name is known, and a manifest would be written beside the
      copy as `<dim>_counts_manifest`, one more file in the month's folder for curators.
    """
    return (
        f"UNLOAD ({sql_literal(query)})\nTO {sql_literal(uri)}\n{target.iam_role_clause}\n"
        f"FORMAT AS CSV DELIMITER AS ',' HEADER PARALLEL OFF "
        f"EXTENSION {sql_literal(CSV_COPY_EXTENSION)} ALLOWOVERWRITE\n"
        f"REGION {sql_literal(target.region)}"
    )


def unload_parquet(query: str, uri: str, target: SqlTarget) -> str:
    """UNLOAD as parquet. CLEANPATH removes the parts of an earlier run first, so a re-run
    never leaves stale parts beside new ones; MANIFEST lists the parts written, so an empty
    result (Redshift writes no part for it) is told apart from a missing table."""
    return (
        f"UNLOAD ({sql_literal(query)})\nTO {sql_literal(uri)}\n{target.iam_role_clause}\n"
        f"FORMAT AS PARQUET CLEANPATH MANIFEST\nREGION {sql_literal(target.region)}"
    )
