"""Deterministic sample inputs for one BISON month: GBIF snapshot, US-RIIS, counties, matches.

Generated at run time (never committed) so the local runtime and the tests exercise the
real file formats without AWS or GBIF. See `generate.py` for the layout under out_dir.
"""

from bisonflow.sample.generate import (
    DEFAULT_RECORDS,
    DEFAULT_SEED,
    DEFAULT_SNAPSHOT,
    SampleManifest,
    generate_sample,
)
from bisonflow.sample.schema import GBIF_OCCURRENCE_SCHEMA, PART_NAME_FORMAT

__all__ = [
    "DEFAULT_RECORDS",
    "DEFAULT_SEED",
    "DEFAULT_SNAPSHOT",
    "GBIF_OCCURRENCE_SCHEMA",
    "PART_NAME_FORMAT",
    "SampleManifest",
    "generate_sample",
]
