"""The parquet schema of GBIF's monthly occurrence snapshot on AWS open data.

Source: GBIF's own description of the snapshots, `aws-public-data.md` in the gbif/occurrence
repository ("GBIF Public Datasets on Amazon Web Services"), which lists the 50 lower-case
"simple" columns with their types and gives the Athena DDL for
`s3://gbif-open-data-<region>/occurrence/YYYY-MM-DD/occurrence.parquet/`. Its change history
says that from the 2022-05-01 snapshot `eventdate`, `dateidentified` and `lastinterpreted` are
timestamps and `identifiedby`, `recordedby` and `typestatus` are string arrays (`mediatype`
and `issue` always were). The current version of that page gives `gbifid` as a String (older
versions: BigInt), and the BISON seed system mounts it in Redshift Spectrum as VARCHAR, so it
is a string here. Integers are 32-bit (Athena `int`), reals 64-bit (`double`).

Not stated by GBIF, so chosen: timestamps are written as microsecond timestamps without time
zone (DuckDB and Redshift read them as TIMESTAMP), and every column is nullable, as Hive
writes parquet. The column order is the Athena DDL's.
"""

from __future__ import annotations

import pyarrow as pa

_STR = pa.string()
_INT = pa.int32()
_DBL = pa.float64()
_TS = pa.timestamp("us")
_STR_LIST = pa.list_(pa.string())

#: The GBIF AWS open-data occurrence.parquet schema (see module docstring for the source).
GBIF_OCCURRENCE_SCHEMA: pa.Schema = pa.schema(
    [
        ("gbifid", _STR),
        ("datasetkey", _STR),
        ("occurrenceid", _STR),
        ("kingdom", _STR),
        ("phylum", _STR),
        ("class", _STR),
        ("order", _STR),
        ("family", _STR),
        ("genus", _STR),
        ("species", _STR),
        ("infraspecificepithet", _STR),
        ("taxonrank", _STR),
        ("scientificname", _STR),
        ("verbatimscientificname", _STR),
        ("verbatimscientificnameauthorship", _STR),
        ("countrycode", _STR),
        ("locality", _STR),
        ("stateprovince", _STR),
        ("occurrencestatus", _STR),
        ("individualcount", _INT),
        ("publishingorgkey", _STR),
        ("decimallatitude", _DBL),
        ("decimallongitude", _DBL),
        ("coordinateuncertaintyinmeters", _DBL),
        ("coordinateprecision", _DBL),
        ("elevation", _DBL),
        ("elevationaccuracy", _DBL),
        ("depth", _DBL),
        ("depthaccuracy", _DBL),
        ("eventdate", _TS),
        ("day", _INT),
        ("month", _INT),
        ("year", _INT),
        ("taxonkey", _INT),
        ("specieskey", _INT),
        ("basisofrecord", _STR),
        ("institutioncode", _STR),
        ("collectioncode", _STR),
        ("catalognumber", _STR),
        ("recordnumber", _STR),
        ("identifiedby", _STR_LIST),
        ("dateidentified", _TS),
        ("license", _STR),
        ("rightsholder", _STR),
        ("recordedby", _STR_LIST),
        ("typestatus", _STR_LIST),
        ("establishmentmeans", _STR),
        ("lastinterpreted", _TS),
        ("mediatype", _STR_LIST),
        ("issue", _STR_LIST),
    ]
)

#: Part files in a snapshot's occurrence.parquet/ folder are named 000000, 000001, ...
#: (no extension), as in GBIF's example `occurrence/2021-04-13/occurrence.parquet/000000`.
PART_NAME_FORMAT = "{:06d}"
