"""What BISON summarises by: the geographies, the RIIS assessments, and the columns of
their count tables.

The aggregate SQL writes these tables (Redshift UNLOAD, parquet) and calc_stats reads them,
so their names and columns are written once, here. The assessments are BISON's own
vocabulary, the categories every count is split by; the US-RIIS list's degreeOfEstablishment
maps onto them in bisonflow.riis.columns (ASSESSMENT_OF_DEGREE).

Per dimension two tables are published under summary/<YYYY_MM_DD>/:

* `<dim>_species_counts/`: the species list of every site with occurrence counts, one row
  per (site, species, assessment): label_columns + SPECIES_COUNT_COLUMNS.
* `<dim>_counts/`: one row per site: label_columns + REGION_COUNT_COLUMNS, i.e. occurrences
  and distinct species overall and per RIIS assessment (`assessment_column`, e.g.
  `widespread_invasive_occ_count`).
"""

from __future__ import annotations

from dataclasses import dataclass

from bisonflow.layout import DIMENSIONS

# --- BISON's RIIS assessments -----------------------------------------------------------------
# The seed system (github lifemapper/bison) names the three tiers in bison/provider/constants.py
# (RIIS_DATA.RIIS_STATUS: "established (category C3)" -> "established", "invasive (category
# D2)" -> "invasive", "widespread invasive (category E)" -> "widespread invasive") and gives
# "presumed_native" to a located record that matches no entry (aws/lambda/bison_s5_assign_riis.py,
# update_presumed_stmt; aws/redshift/intersect_append.sql). Its SQL copies the raw degree into
# riis_assessment; the values here are RIIS_STATUS's, spelled exactly as the seed spells them,
# space and underscore alike, so a curator's filter written for the seed's vocabulary finds them.

ESTABLISHED = "established"
INVASIVE = "invasive"
WIDESPREAD_INVASIVE = "widespread invasive"
#: Assessment given to a record whose (region, accepted taxon key) is not on the list.
PRESUMED_NATIVE = "presumed_native"

#: The listed tiers, least severe first: when a (region, accepted key) has entries of several
#: tiers (a name and its synonym, a species and its subspecies), the last one here wins.
LISTED_ASSESSMENTS: tuple[str, ...] = (ESTABLISHED, INVASIVE, WIDESPREAD_INVASIVE)

#: Every RIIS assessment a record can get, in report order: the tiers, then presumed native.
ASSESSMENTS: tuple[str, ...] = (*LISTED_ASSESSMENTS, PRESUMED_NATIVE)


def assessment_identifier(assessment: str) -> str:
    """The assessment as part of a column name ("widespread invasive" -> "widespread_invasive"):
    a SQL identifier cannot hold a space without quotes, and a quoted one is easy to mistype."""
    if assessment not in ASSESSMENTS:
        raise ValueError(f"unknown RIIS assessment {assessment!r}; expected one of {ASSESSMENTS}")
    return assessment.replace(" ", "_")


# --- The geographies ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Dimension:
    name: str  # "county", "state", "aiannh": file names and layout prefixes
    label_columns: tuple[str, ...]  # the site's identifying column first, then descriptive ones

    @property
    def site_column(self) -> str:
        """The column that identifies a site (PAM rows are labelled by it)."""
        return self.label_columns[0]


#: county: GEOID (state + county FIPS), state STUSPS, county NAMELSAD, RIIS region.
COUNTY = Dimension("county", ("geoid", "state", "county", "riis_region"))
#: state: STUSPS and its RIIS region.
STATE = Dimension("state", ("state", "riis_region"))
#: AIANNH area: census GEOID (AIANNHCE) and NAMELSAD, e.g. "Pine Ridge Reservation".
AIANNH = Dimension("aiannh", ("aiannh_geoid", "aiannh_name"))

BY_NAME: dict[str, Dimension] = {d.name: d for d in (COUNTY, STATE, AIANNH)}
assert tuple(BY_NAME) == DIMENSIONS

#: The column that identifies a species in the species lists, the PAM and the statistics:
#: the record's `specieskey`, GBIF's key of the taxon "corresponding to `species`", the
#: accepted species (gbif/occurrence `aws-public-data.md`, "Schema"). A record's own
#: `taxonkey` is the taxon "corresponding to `scientificname`": a synonym's or a subspecies'
#: key, which would count one species several times. Text whatever GBIF's type for the
#: month (bisonflow.gbif.schema: strings from the 2025-08-01 snapshot on). Months published
#: before this change named the column `taxonkey` and held record keys (bisonflow.stats.changes).
SPECIES_KEY = "specieskey"

#: After the site columns of `<dim>_species_counts`: one row per site, species and
#: assessment (a species whose subspecies is listed apart can have two assessments in a
#: site); `species` is the record's accepted species name.
SPECIES_COUNT_COLUMNS: tuple[str, ...] = (SPECIES_KEY, "species", "riis_assessment", "occ_count")

#: What `<dim>_counts` measures per site: occurrences and distinct species.
MEASURES: tuple[str, ...] = ("occ_count", "species_count")


def assessment_column(assessment: str, measure: str) -> str:
    """The `<dim>_counts` column of one measure for one RIIS assessment, e.g.
    ("widespread invasive", "occ_count") -> "widespread_invasive_occ_count"."""
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; expected one of {MEASURES}")
    return f"{assessment_identifier(assessment)}_{measure}"


#: After the site columns of `<dim>_counts`: the measures overall, then per assessment.
REGION_COUNT_COLUMNS: tuple[str, ...] = MEASURES + tuple(
    assessment_column(assessment, measure) for assessment in ASSESSMENTS for measure in MEASURES
)


def dimension(name: str) -> Dimension:
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown dimension {name!r}; expected one of {DIMENSIONS}") from None
