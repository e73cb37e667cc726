"""The Redshift Data API stand-in: moto's redshift-data service running real SQL on DuckDB
(`service` says what it does and where it knowingly differs from Redshift).

One concern per module:

* `service` — install()/uninstall() of the handlers on moto, shutdown(); the deviations.
* `seam` — the moto attributes the stand-in patches or relies on, and their check.
* `api` — the HTTP API: moto's request handlers (submit, describe, result, cancel, list).
* `owner` — which IAM role may see a statement.
* `store` — per moto backend: the statements and one engine per database.
* `records` — the Data API's statement records and their JSON shapes; no engine in them.
* `encoding` — DuckDB values and types as the API's Fields and ColumnMetadata.
* `engine` — the worker thread of one database: statuses, batches as transactions, cancel.
* `database` — one DuckDB database: connection, scratch folder, external catalog.
* `commands` — one module per statement kind (plain SQL, external DDL, DROP TABLE, COPY,
  UNLOAD), reached through its DISPATCH table.
* `sql_parse` — one Redshift statement into a record of `parsed_sql`.
* `parsed_sql` — the records: one per statement kind.
* `sql_text` — statement splitting, `:name` parameters, names and literals.
* `sql_transpile` — Redshift SQL to DuckDB SQL with sqlglot, and the fixes it needs.
* `copy_unload_sql` — COPY's and UNLOAD's options read into their records.
* `rules` — spatial arguments Redshift refuses and DuckDB accepts, refused.
* `unload_rules` — UNLOAD option combinations Redshift refuses, refused.
* `unload_csv` — UNLOAD ... CSV text as Redshift writes it.
* `external_tables` — Spectrum's external tables, read in place.
* `spectrum_types` — declared column types a Parquet file does not hold, refused.
* `moto_s3` — moto's S3, read and written in-process.
* `cells_memo` — speed only: a boundary layer's grid cells computed once per process and
  served again for the same boundaries.
"""
