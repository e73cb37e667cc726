"""BISON's RIIS assessments as Redshift SQL: which RIIS entry applies to a record, the tier
of an entry, the pick among several, and the per-assessment measures of `<dim>_counts`.

A module of its own so the assessment vocabulary (bisonflow.dimensions) and the matching
rule reach the SQL in one place, generated from the same constants the figures, the sample
and the tests use. bisonflow.sql.workflow_sql `_mark_sql` puts the pieces into the marks query.

Which entries apply to a record is decided on the record's side, with GBIF's two keys.
`taxonkey` is the taxon "corresponding to `scientificname`" and `specieskey` the one
"corresponding to `species`" (gbif/occurrence `aws-public-data.md`, "Schema"): GBIF gives a
record published under a synonym the synonym's own key as taxonkey and the accepted taxon's
classification (species, specieskey), and a subspecies record its subspecies key and its
species' key. An entry of the annotated list carries the accepted key its name resolved to
(gbif_res_taxonkey), the matched usage's rank (gbif_res_rank), the accepted species' key
(gbif_res_specieskey) and the listed name's own key (gbif_res_usagekey: a synonym's key),
all from GBIF's /v1/species/match (bisonflow.gbif.species_api.NameMatch). So:

* an entry of a species (rank SPECIES, and its accepted taxon is that species:
  gbif_res_specieskey = gbif_res_taxonkey) applies to records whose `specieskey` is the
  accepted key: the species, every record published under a synonym of it, and every
  infraspecific record, under any name;
* an entry below species (SUBSPECIES, VARIETY, FORM, ...), or one whose rank or species key
  is missing (a species-rank synonym of a subspecies, a list annotated before ranks were
  kept), applies to records whose `taxonkey` is the accepted key or the listed name's own
  key. A synonym of an infraspecific taxon other than the one the list writes cannot be
  matched: the snapshot has no acceptedtaxonkey column (bisonflow.gbif.schema), so nothing
  on such a record leads from its key to the accepted subspecies. A known limit (docs/science.md).

Each side is one lookup joined by equality on (region, key), so Redshift runs two hash
joins (an OR in one join condition would be a nested loop). Within a lookup, several entries
for one (region, key) (a name and its synonyms) collapse to one, so no join multiplies
records; within each and between the two the most severe tier wins (widespread invasive,
then invasive, then established), then the lowest occurrenceID: a record of a subspecies
listed invasive whose species is listed established is invasive. The seed's UPDATE ... FROM
leaves that choice to Redshift, which takes one of the matches without an order (Database
Developer Guide, "error_on_nondeterministic_update": off by default); the most severe tier is
the one a curator must not miss.

An entry's keys are text as the records' are (the subset casts a month's integer keys to
text; bisonflow.gbif.schema), and may be written "123.0" by a float-typed writer, so each is
normalised (`listed_key`): blanks trimmed, digits with a fraction of zeros only ("123.0",
"123.") become the digits ("123"). Anything else not all digits ("", "12.5", "1e3", "nan")
matches nothing: a malformed key never fails the load and never matches a wrong taxon.
"""

from __future__ import annotations

from bisonflow.dimensions import (
    ASSESSMENTS,
    LISTED_ASSESSMENTS,
    MEASURES,
    PRESUMED_NATIVE,
    SPECIES_KEY,
    assessment_column,
)
from bisonflow.riis.columns import ASSESSMENT_OF_DEGREE
from bisonflow.sql.quoting import sql_literal

#: The two lookups: (CTE name, side), the side naming the record column a listing meets.
_LOOKUPS: tuple[tuple[str, str], ...] = (("species_lookup", "species"), ("taxon_lookup", "taxon"))


def listed_key(column: str) -> str:
    """A taxon key of the annotated list as the records' text: trimmed, "123.0" as "123",
    NULL unless all digits (see the module docstring)."""
    return (
        f"CASE WHEN TRIM({column}) ~ '^[0-9]+([.]0*)?$' THEN SPLIT_PART(TRIM({column}), '.', 1) END"
    )


def listing_lookups(riis_table: str) -> str:
    """CTEs `species_lookup` and `taxon_lookup` (locality, listed_key, assessment,
    occurrenceid), one row per (locality, key): the entry a record of that key gets there.

    `riis_entries` normalises each entry and puts it on its side; `riis_keys` gives every
    key the entry marks records by (a taxon-side entry: its accepted key and, when it
    differs, its own usage key)."""
    by_species = (
        f"UPPER(TRIM(gbif_res_rank)) = 'SPECIES' "
        f"AND {listed_key('gbif_res_specieskey')} = {listed_key('gbif_res_taxonkey')}"
    )
    lookups = ",\n".join(
        f"""{name} AS (
    SELECT locality, listed_key, assessment, occurrenceid
    FROM (
        SELECT locality, listed_key, assessment, occurrenceid,
               ROW_NUMBER() OVER (
                   PARTITION BY locality, listed_key
                   ORDER BY {severity_rank("assessment")}, occurrenceid
               ) AS pick
        FROM riis_keys
        WHERE side = {sql_literal(side)}
    ) AS ranked
    WHERE pick = 1
)"""
        for name, side in _LOOKUPS
    )
    return f"""riis_entries AS (
    SELECT TRIM(locality) AS locality,
           {listed_key("gbif_res_taxonkey")} AS accepted_key,
           {listed_key("gbif_res_usagekey")} AS usage_key,
           CASE WHEN {by_species} THEN 'species' ELSE 'taxon' END AS side,
           {assessment_of_degree("degreeofestablishment")} AS assessment,
           occurrenceid
    FROM {riis_table}
),
riis_keys AS (
    SELECT locality, side, accepted_key AS listed_key, assessment, occurrenceid
    FROM riis_entries
    WHERE accepted_key IS NOT NULL AND assessment IS NOT NULL
    UNION ALL
    SELECT locality, side, usage_key, assessment, occurrenceid
    FROM riis_entries
    WHERE side = 'taxon' AND usage_key <> accepted_key AND assessment IS NOT NULL
),
{lookups}"""


def matched_listing(records: str, name: str) -> str:
    """CTE `name`: every row of `records` (with riis_region, specieskey and taxonkey) and the
    entry of each lookup that applies to it, plus `species_wins` (1 when the species-side
    entry is the one that counts: the more severe tier, then the lower occurrenceID)."""
    sp_rank, tx_rank = severity_rank("sp.assessment"), severity_rank("tx.assessment")
    return f"""{name} AS (
    SELECT g.*, sp.assessment AS species_assessment, sp.occurrenceid AS species_entry,
           tx.assessment AS taxon_assessment, tx.occurrenceid AS taxon_entry,
           CASE WHEN tx.assessment IS NULL THEN 1
                WHEN sp.assessment IS NULL THEN 0
                WHEN {sp_rank} < {tx_rank} THEN 1
                WHEN {sp_rank} > {tx_rank} THEN 0
                WHEN sp.occurrenceid <= tx.occurrenceid THEN 1
                ELSE 0 END AS species_wins
    FROM {records} AS g
    LEFT JOIN species_lookup AS sp
      ON sp.locality = g.riis_region AND sp.listed_key = g.{SPECIES_KEY}
    LEFT JOIN taxon_lookup AS tx
      ON tx.locality = g.riis_region AND tx.listed_key = g.taxonkey
)"""


def assessment_of_match() -> str:
    """A matched row's assessment: the winning entry's tier, presumed native when none
    applies, NULL without a region (territories, records in no county)."""
    native = sql_literal(PRESUMED_NATIVE)
    return (
        "CASE WHEN riis_region IS NULL THEN NULL "
        f"WHEN species_wins = 1 THEN COALESCE(species_assessment, {native}) "
        f"ELSE COALESCE(taxon_assessment, {native}) END"
    )


def entry_of_match() -> str:
    """A matched row's RIIS occurrenceID: the winning entry's, NULL when none applies."""
    return "CASE WHEN species_wins = 1 THEN species_entry ELSE taxon_entry END"


def assessment_of_degree(column: str) -> str:
    """The assessment of a degreeOfEstablishment as the seed maps it (riis_schema), case and
    surrounding blanks ignored; NULL for a degree outside the vocabulary, so an entry that
    somehow has one matches nothing instead of getting a guessed tier."""
    cases = " ".join(
        f"WHEN {sql_literal(degree.lower())} THEN {sql_literal(assessment)}"
        for degree, assessment in ASSESSMENT_OF_DEGREE.items()
    )
    return f"CASE LOWER(TRIM({column})) {cases} END"


def severity_rank(column: str) -> str:
    """0 for the most severe listed tier (widespread invasive), counting up to the least
    severe (established): the ORDER BY that picks one entry per (region, accepted key)."""
    most_severe_first = reversed(LISTED_ASSESSMENTS)
    cases = " ".join(f"WHEN {sql_literal(a)} THEN {n}" for n, a in enumerate(most_severe_first))
    return f"CASE {column} {cases} END"


def assessment_measures(assessment_col: str = "riis_assessment") -> list[str]:
    """Per assessment, its occurrences and distinct species over a species table (one row per
    site, species and assessment, with occ_count), named by dimensions.assessment_column. A
    species with two assessments in a site (a subspecies listed apart) counts in each."""
    measures = []
    for assessment in ASSESSMENTS:
        when = f"{assessment_col} = {sql_literal(assessment)}"
        occ_count, species_count = (assessment_column(assessment, m) for m in MEASURES)
        measures.append(
            f"CAST(SUM(CASE WHEN {when} THEN occ_count ELSE 0 END) AS BIGINT) AS {occ_count}"
        )
        measures.append(
            f"COUNT(DISTINCT CASE WHEN {when} THEN {SPECIES_KEY} END) AS {species_count}"
        )
    return measures
