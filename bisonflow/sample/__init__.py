"""Deterministic sample inputs for one BISON month: GBIF snapshot, US-RIIS, counties, matches.

Generated at run time (never committed) so the local runtime and the tests exercise the
real file formats without AWS or GBIF. See `generate.py` for the layout under out_dir. The
snapshot is written in the schema GBIF published for the requested month (`schema.py`), and
`month_parts` rewrites it in another month's schema when it is published as that month.
"""

from bisonflow.sample.generate import (
    DEFAULT_RECORDS,
    DEFAULT_SEED,
    DEFAULT_SNAPSHOT,
    SampleManifest,
    generate_sample,
)
from bisonflow.sample.schema import PART_NAME_FORMAT, snapshot_schema
from bisonflow.sample.snapshot import month_parts, records_table

__all__ = [
    "DEFAULT_RECORDS",
    "DEFAULT_SEED",
    "DEFAULT_SNAPSHOT",
    "PART_NAME_FORMAT",
    "SampleManifest",
    "generate_sample",
    "month_parts",
    "records_table",
    "snapshot_schema",
]
