"""Which GBIF occurrence records belong in the BISON subset.

The Redshift subset SQL, the DuckDB stand-in for it and the sample-data generator (which must
know how many records the subset keeps) all read these values, so the rule is written once.
Values are GBIF's interpreted vocabularies, upper case, exactly as they appear in the
occurrence.parquet columns `countrycode`, `occurrencestatus`, `taxonrank` and `basisofrecord`.

A record is kept when all hold:
    countrycode = COUNTRY_CODE, decimallatitude and decimallongitude are not null,
    occurrencestatus = OCCURRENCE_STATUS, taxonrank IN ALLOWED_TAXON_RANKS,
    basisofrecord IN ALLOWED_BASIS_OF_RECORD.
"""

from __future__ import annotations

#: ISO 3166-1 alpha-2 code GBIF interprets for the United States.
COUNTRY_CODE = "US"

#: Absence records say a taxon was looked for and not found; they are no occurrence.
OCCURRENCE_STATUS = "PRESENT"

#: Species and below (https://gbif.github.io/gbif-api/apidocs/org/gbif/api/vocabulary/Rank.html):
#: a record identified only to genus or family cannot be checked against the species list.
ALLOWED_TAXON_RANKS: tuple[str, ...] = (
    "SPECIES",
    "SUBSPECIES",
    "VARIETY",
    "FORM",
    "INFRASPECIFIC_NAME",
)

#: Evidence of a living organism in the wild (BasisOfRecord vocabulary); fossils and living
#: specimens (zoos, botanic gardens) say nothing about where a taxon lives now.
ALLOWED_BASIS_OF_RECORD: tuple[str, ...] = (
    "HUMAN_OBSERVATION",
    "OBSERVATION",
    "OCCURRENCE",
    "PRESERVED_SPECIMEN",
    "MATERIAL_SAMPLE",
    "MACHINE_OBSERVATION",
    "MATERIAL_CITATION",
)


def sql_in_list(values: tuple[str, ...]) -> str:
    """`'A', 'B'` for an SQL IN (...) list; the values are fixed vocabulary, never user input."""
    for value in values:
        if not value.replace("_", "").isalnum():
            raise ValueError(f"not a vocabulary term: {value!r}")
    return ", ".join(f"'{value}'" for value in values)
