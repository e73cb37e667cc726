"""Which GBIF occurrence records belong in the BISON subset.

The Redshift subset SQL, the DuckDB stand-in for it and the sample-data generator (which must
know how many records the subset keeps) all read these values, so the rule is written once.
Values are GBIF's interpreted vocabularies, upper case, exactly as they appear in the
occurrence.parquet columns `countrycode`, `occurrencestatus`, `taxonrank` and `basisofrecord`.

A record is kept when all hold (`SubsetRules.where_sql`):
    countrycode = COUNTRY_CODE, decimallatitude and decimallongitude are not null,
    occurrencestatus = OCCURRENCE_STATUS, taxonrank IN taxon_ranks,
    basisofrecord IN basis_of_record, specieskey is not null.

The last is this project's, not the seed's: the species lists, the RIIS marks and the PAM
identify a species by the record's `specieskey`, GBIF's key of the taxon "corresponding to
`species`" (gbif/occurrence `aws-public-data.md`, "Schema"), so a record GBIF could not place
in a species cannot be counted as one. A record GBIF interprets at species rank or below
carries one, so on real data it is a guard that drops next to nothing.

By default the two lists are BISON's own, as the seed system (github lifemapper/bison, commit
be5204f of 2025-05-05) writes them in the WHERE clause of its subset: `aws/lambda/
bison_s3_create_bison.py` lines 153-156 and `aws/redshift/subset_to_bison.sql` lines 118-122.
A deployment may choose others (SubsetRules.from_env: SUBSET_TAXON_RANKS and
SUBSET_BASIS_OF_RECORD, the template's SubsetTaxonRanks / SubsetBasisOfRecord); every value
is checked against GBIF's vocabulary before it is spliced into SQL.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from bisonflow.config import ConfigError
from bisonflow.sql.quoting import sql_literal

#: ISO 3166-1 alpha-2 code GBIF interprets for the United States.
COUNTRY_CODE = "US"

#: Absence records say a taxon was looked for and not found; they are no occurrence.
OCCURRENCE_STATUS = "PRESENT"

#: GBIF's BasisOfRecord vocabulary, all of it (gbif/gbif-api
#: src/main/java/org/gbif/api/vocabulary/BasisOfRecord.java, commit 06da136 of 2026-08-06;
#: published as https://gbif.github.io/gbif-api/apidocs/org/gbif/api/vocabulary/BasisOfRecord.html).
#: LITERATURE and UNKNOWN are deprecated there in favour of OCCURRENCE, but still values.
GBIF_BASIS_OF_RECORD: tuple[str, ...] = (
    "PRESERVED_SPECIMEN",
    "FOSSIL_SPECIMEN",
    "LIVING_SPECIMEN",
    "OBSERVATION",
    "HUMAN_OBSERVATION",
    "MACHINE_OBSERVATION",
    "MATERIAL_SAMPLE",
    "LITERATURE",
    "MATERIAL_CITATION",
    "OCCURRENCE",
    "UNKNOWN",
)

#: GBIF's Rank vocabulary from SPECIES down, in GBIF's order: the ranks for which GBIF's
#: `Rank.isSpeciesOrBelow()` is true (gbif/gbif-api src/main/java/org/gbif/api/vocabulary/
#: Rank.java, commit 06da136, lines 159-304; https://gbif.github.io/gbif-api/apidocs/org/gbif/
#: api/vocabulary/Rank.html). Ranks above species (GENUS, FAMILY, ...) are GBIF values too,
#: but refused here: a record named only to genus is no species for the list or the PAM.
GBIF_RANKS_SPECIES_AND_BELOW: tuple[str, ...] = (
    "SPECIES",
    "INFRASPECIFIC_NAME",
    "GREX",
    "SUBSPECIES",
    "CULTIVAR_GROUP",
    "CONVARIETY",
    "INFRASUBSPECIFIC_NAME",
    "PROLES",
    "RACE",
    "NATIO",
    "ABERRATION",
    "MORPH",
    "VARIETY",
    "SUBVARIETY",
    "FORM",
    "SUBFORM",
    "PATHOVAR",
    "BIOVAR",
    "CHEMOVAR",
    "MORPHOVAR",
    "PHAGOVAR",
    "SEROVAR",
    "CHEMOFORM",
    "FORMA_SPECIALIS",
    "CULTIVAR",
    "STRAIN",
)

#: BISON's ranks (seed: bison_s3_create_bison.py line 154, subset_to_bison.sql line 119):
#: species and the infraspecific ranks a US-RIIS listing or a GBIF record commonly carries.
SEED_TAXON_RANKS: tuple[str, ...] = (
    "SPECIES",
    "SUBSPECIES",
    "VARIETY",
    "FORM",
    "INFRASPECIFIC_NAME",
    "INFRASUBSPECIFIC_NAME",
)

#: BISON's kinds of evidence (seed: bison_s3_create_bison.py line 156, subset_to_bison.sql
#: line 122): observations and preserved specimens. Left out: fossils and living specimens
#: (zoos, gardens) say nothing about where a taxon lives wild now; material samples ("samples
#: taken from other specimens or the environment", GBIF's words), machine observations,
#: material citations (specimens cited in publications), LITERATURE and UNKNOWN are outside
#: what BISON counted.
SEED_BASIS_OF_RECORD: tuple[str, ...] = (
    "HUMAN_OBSERVATION",
    "OBSERVATION",
    "OCCURRENCE",
    "PRESERVED_SPECIMEN",
)


class SubsetRuleError(ValueError):
    """A subset list holds a value that is not in GBIF's vocabulary for it."""


def check_terms(values: tuple[str, ...], vocabulary: tuple[str, ...], what: str) -> None:
    """Refuse an empty list, a repeated value or one outside `vocabulary`, in one line.

    The values go into SQL text, so only exact vocabulary terms pass (no case folding: GBIF's
    columns hold the upper-case enumeration names, and a lower-case value would match nothing).
    """
    if not values:
        raise SubsetRuleError(f"the subset needs at least one {what}")
    for value in values:
        if value not in vocabulary:
            raise SubsetRuleError(
                f"{value!r} is not a {what} of GBIF's vocabulary (one of {', '.join(vocabulary)})"
            )
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise SubsetRuleError(f"{', '.join(map(repr, repeated))} given more than once")


def terms(text: str) -> tuple[str, ...]:
    """A comma-separated setting ("SPECIES, FORM") as its values; nothing is dropped, so an
    empty item is checked (and refused) like any other value."""
    return tuple(value.strip() for value in text.split(","))


def check_taxon_ranks(values: tuple[str, ...]) -> None:
    check_terms(values, GBIF_RANKS_SPECIES_AND_BELOW, "taxon rank at or below SPECIES")


def check_basis_of_record(values: tuple[str, ...]) -> None:
    check_terms(values, GBIF_BASIS_OF_RECORD, "basisOfRecord")


@dataclass(frozen=True)
class SubsetRules:
    """The two lists a deployment may choose; the seed's unless configured."""

    taxon_ranks: tuple[str, ...] = SEED_TAXON_RANKS
    basis_of_record: tuple[str, ...] = SEED_BASIS_OF_RECORD

    def __post_init__(self) -> None:
        check_taxon_ranks(self.taxon_ranks)
        check_basis_of_record(self.basis_of_record)

    @classmethod
    def from_env(cls) -> SubsetRules:
        """SUBSET_TAXON_RANKS and SUBSET_BASIS_OF_RECORD: the subset's lists, comma-separated
        GBIF enumeration names (e.g. "HUMAN_OBSERVATION,PRESERVED_SPECIMEN"); the seed's when
        unset. A value outside GBIF's vocabulary fails as a ConfigError naming the variable."""
        return cls(
            taxon_ranks=_env_terms("SUBSET_TAXON_RANKS", SEED_TAXON_RANKS, check_taxon_ranks),
            basis_of_record=_env_terms(
                "SUBSET_BASIS_OF_RECORD", SEED_BASIS_OF_RECORD, check_basis_of_record
            ),
        )

    def where_sql(self) -> str:
        """The subset's WHERE conditions (without WHERE), one per line, in Redshift SQL."""
        return (
            f"countrycode = {sql_literal(COUNTRY_CODE)}\n"
            "  AND decimallatitude IS NOT NULL\n"
            "  AND decimallongitude IS NOT NULL\n"
            f"  AND occurrencestatus = {sql_literal(OCCURRENCE_STATUS)}\n"
            f"  AND taxonrank IN ({sql_in_list(self.taxon_ranks)})\n"
            f"  AND basisofrecord IN ({sql_in_list(self.basis_of_record)})\n"
            "  AND specieskey IS NOT NULL"
        )


def _env_terms(
    name: str, default: tuple[str, ...], check: Callable[[tuple[str, ...]], None]
) -> tuple[str, ...]:
    """A comma-separated list of vocabulary terms; unset or empty gives `default`."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    values = terms(raw)
    try:
        check(values)
    except SubsetRuleError as exc:
        raise ConfigError(f"environment variable {name}: {exc}") from None
    return values


#: What the workflow keeps when nothing is configured: BISON's subset.
DEFAULT_SUBSET_RULES = SubsetRules()


def sql_in_list(values: tuple[str, ...]) -> str:
    """`'A', 'B'` for an SQL IN (...) list; the values are fixed vocabulary, never user input."""
    for value in values:
        if not value.replace("_", "").isalnum():
            raise ValueError(f"not a vocabulary term: {value!r}")
    return ", ".join(f"'{value}'" for value in values)
