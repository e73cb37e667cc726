"""The Redshift Data API on DuckDB: patches moto's redshift-data service to run real SQL.

moto 5.2.5's redshift-data backend accepts statements but runs nothing: it has no
BatchExecuteStatement, ignores WorkgroupName and answers GetStatementResult with a canned
table. `install()` (idempotent; call it in the process that runs the moto server, e.g. before
`ThreadedMotoServer.start()`) replaces its request handlers so that

* ExecuteStatement (WorkgroupName or ClusterIdentifier, plus Database) and
  BatchExecuteStatement (Sqls) return an Id at once and queue the SQL; one worker thread per
  (workgroup or cluster, database) runs its statements serially, in submission order, on that
  target's own in-memory DuckDB database. A batch is one transaction, as on Redshift.
* DescribeStatement walks SUBMITTED -> PICKED -> STARTED -> FINISHED, or FAILED with `Error`
  holding the SQL error and naming the failing statement (batches list SubStatements
  "<id>:<n>" with their own Status, Error and QueryString), or ABORTED after CancelStatement.
* GetStatementResult pages a SELECT's real rows (ColumnMetadata with Redshift type names,
  Records of longValue/doubleValue/stringValue/booleanValue/isNull), NextToken included.
* ListStatements lists what was submitted.

`shutdown()` stops the workers and forgets every statement and database (moto's backends
outlive a server in the same process); the handlers stay installed.
(`bisonflow.steps.statements.run_batches` runs a step's batches through any Data API client,
for tests and benchmarks.)

The SQL is Redshift's: `bisonflow.local.redshift.sql_parse` reads each statement into a
record (`parsed_sql`), translating plain SQL to DuckDB with sqlglot (`sql_transpile`) and
reading the statements that touch S3 (CREATE EXTERNAL SCHEMA/TABLE, COPY, UNLOAD), which
the stand-in then carries out. The package's `__init__` lists its modules, one concern each.

S3 is moto's own S3, reached in-process (`bisonflow.local.redshift.moto_s3` says why, not httpfs).
COPY's and ST_Read's objects are copied to temporary files that DuckDB reads; UNLOAD's output
is written to a temporary file and put back into the bucket. External tables are read in
place, as Spectrum reads them (`bisonflow.local.redshift.external_tables`): nothing is read
at CREATE EXTERNAL TABLE, and each statement scans the files the location holds when it runs.

Every moto attribute the stand-in replaces or relies on is declared in SEAM
(`bisonflow.local.redshift.seam`, with the one mechanism of `bisonflow.local.seams`), and
`install()` refuses to patch a moto whose seam has moved.

Where the emulator knowingly differs from Redshift:

* An external table is a view over `read_parquet` of the objects under LOCATION, listed
  before each statement and fetched once per ETag into a local cache (Spectrum reads S3
  itself); a location with no files is an empty table. Parquet columns are matched by name
  (case-insensitively), a column the files lack reads as NULL, and scalar types are CAST;
  a column declared with a type the files do not hold fails every query reading it with
  Spectrum's "incompatible Parquet schema" error (`bisonflow.local.redshift.spectrum_types`).
* GEOMETRY carries DuckDB's CRS instead of an SRID; ST_SetSRID(g, n) becomes
  ST_SetCRS(g, 'EPSG:n') and columns loaded from shapefiles drop the CRS, so SRID mismatches
  that Redshift reports as errors pass silently. SIMPLIFY is accepted and ignored.
* Spatial functions refuse what Redshift's refuse for the SQL this project emits (a geometry
  collection in ST_Covers, ST_Intersects, ...): `rules` lists what it checks.
* UNLOAD writes one part (one slice), and none for an empty parquet or JSON result, as
  Redshift does; a CSV UNLOAD always writes its file, the header alone for no rows (Redshift
  "might write empty Amazon S3 objects"). PARALLEL OFF never starts a second file at 6.2 GB.
  MANIFEST writes `<prefix>manifest` listing the parts ({"entries": [{"url", "meta":
  {"content_length", "record_count"}}]}); MANIFEST VERBOSE, MAXFILESIZE and PARTITION BY are
  not emulated. The option combinations Redshift refuses are refused
  (`unload_rules`), and so are FIXEDWIDTH, ADDQUOTES, ESCAPE and compression, which
  it does not write. CSV text follows Redshift's rules (`unload_csv`: quoting, NULL
  zero-length or NULL AS), for text and integer columns only. COPY honours CSV, plain text,
  PARQUET and SHAPEFILE and their common options only.
* Statements in a batch run in one DuckDB transaction; S3 writes of an UNLOAD are not undone
  by a later failure (nor are they on Redshift).
* Identifiers are folded to lower case, as Redshift does by default; DuckDB error texts are
  DuckDB's, prefixed "ERROR: ".
"""

from __future__ import annotations

from bisonflow.local.redshift.api import HANDLERS
from bisonflow.local.redshift.seam import data_api_seam
from bisonflow.local.redshift.store import forget_all

__all__ = ["SEAM", "install", "installed", "shutdown", "uninstall"]

#: The stand-in's seam into moto (bisonflow.local.seams): the handlers and what they rely on.
SEAM = data_api_seam(HANDLERS)


def installed() -> bool:
    """Whether moto's redshift-data handlers are the stand-in's now."""
    return SEAM.installed()


def install() -> None:
    """Patch moto's redshift-data handlers to run SQL on DuckDB (idempotent).

    Raises SeamMoved (a RuntimeError), naming what moved, if the installed moto no longer
    matches SEAM.
    """
    SEAM.install()


def uninstall() -> None:
    """Restore moto's own handlers (tests use it to leave moto as they found it)."""
    SEAM.uninstall()


def shutdown() -> None:
    """Stop every worker thread and close every DuckDB database; forget all statements.

    moto's backends live as long as the process, so without this a later server in the same
    process would find statements and databases of an earlier one. The handlers stay
    installed: the next statement starts afresh.
    """
    forget_all()
