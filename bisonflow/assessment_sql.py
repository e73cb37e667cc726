"""BISON's RIIS assessments as Redshift SQL: the tier of a RIIS entry, the pick among several
entries, and the per-assessment measures of the `<dim>_counts` tables.

A module of its own so the assessment vocabulary (bisonflow.riis_schema) reaches the SQL in
one place, generated from the same constants the figures, the sample and the tests use.
"""

from __future__ import annotations

from bisonflow.dimensions import MEASURES, assessment_column
from bisonflow.riis_schema import ASSESSMENT_OF_DEGREE, ASSESSMENTS, LISTED_ASSESSMENTS
from bisonflow.sql_text import sql_literal


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
    site, taxon and assessment, with occ_count), named by dimensions.assessment_column."""
    measures = []
    for assessment in ASSESSMENTS:
        when = f"{assessment_col} = {sql_literal(assessment)}"
        occ_count, species_count = (assessment_column(assessment, m) for m in MEASURES)
        measures.append(
            f"CAST(SUM(CASE WHEN {when} THEN occ_count ELSE 0 END) AS BIGINT) AS {occ_count}"
        )
        measures.append(f"COUNT(DISTINCT CASE WHEN {when} THEN taxonkey END) AS {species_count}")
    return measures
