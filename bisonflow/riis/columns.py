"""Columns of the US-RIIS v2 master list and of the annotated file the workflow writes.

The annotated CSV is loaded into Redshift by position, so its header order is fixed here and
nowhere else.
"""

from bisonflow.dimensions import LISTED_ASSESSMENTS

#: USRIISv2_MasterList.csv columns, in the list's order and spelled as USGS publishes them
#: (issue 10 quotes the v2 header; the seed system reads the list by its own header and names
#: the USGS key column "GBIF_taxonKey": lifemapper/bison `bison/provider/constants.py`
#: RIIS_DATA.GBIF_KEY, and creates its Redshift table with these 32 columns lower-cased, in this
#: order, `occurrenceremarks` before `occurrenceid`: `aws/redshift/load_annotated_riis.sql`).
#: ../shared/data/US-RIIS_DataDictionary_2021.csv describes the 2021 v1 list, whose names
#: differ ("GBIF taxonKey", "Introduced or Invasive"); degreeOfEstablishment carries v2's
#: tier of establishment (ASSESSMENT_OF_DEGREE below).
RIIS_COLUMNS: tuple[str, ...] = (
    "locality",
    "scientificName",
    "scientificNameAuthorship",
    "vernacularName",
    "taxonRank",
    "establishmentMeans",
    "degreeOfEstablishment",
    "isHybrid",
    "pathway",
    "habitat",
    "Biocontrol",
    "associatedTaxa",
    "eventRemarks",
    "IntroDateNumber",
    "taxonRemarks",
    "kingdom",
    "phylum",
    "class",
    "order",
    "family",
    "taxonomicStatus",
    "ITIS_TSN",
    "GBIF_taxonKey",
    "taxonID",
    "Authority",
    "WebLink",
    "associatedReferences",
    "eventDate",
    "modified",
    "Update_Remarks",
    "occurrenceRemarks",
    "occurrenceID",
)

#: Columns annotate_riis appends: the seed system's two (lifemapper/bison
#: `aws/redshift/load_annotated_riis.sql`), then three more of GBIF's /v1/species/match answer
#: (bisonflow.gbif.species_api.NameMatch), named in the seed's `gbif_res_` style after the match's
#: own fields lower-cased, as the snapshot names its columns (`specieskey`):
#:
#: * gbif_res_taxonkey: the accepted backbone key the name resolved to (a synonym followed
#:   to its acceptedUsageKey);
#: * gbif_res_scientificname: the accepted scientific name;
#: * gbif_res_rank: the backbone rank of the matched usage ("rank"), which decides how a
#:   listing meets its records: SPECIES through the records' `specieskey`, below species
#:   through their `taxonkey` (bisonflow.sql.workflow_sql `_mark_sql`);
#: * gbif_res_specieskey: the accepted species ("speciesKey");
#: * gbif_res_usagekey: the key of the name as the list writes it ("usageKey": a synonym's
#:   own key, which GBIF gives as `taxonkey` to records published under that name; equal to
#:   gbif_res_taxonkey for an accepted name).
#:
#: All five are empty for a name GBIF could not resolve. Redshift creates the annotated
#: table from ANNOTATED_COLUMNS by position, so this one constant drives file and table.
RESOLVED_COLUMNS: tuple[str, ...] = (
    "gbif_res_taxonkey",
    "gbif_res_scientificname",
    "gbif_res_rank",
    "gbif_res_specieskey",
    "gbif_res_usagekey",
)

ANNOTATED_COLUMNS: tuple[str, ...] = RIIS_COLUMNS + RESOLVED_COLUMNS

#: degreeOfEstablishment vocabulary of the v2 list (US-RIIS_DataDictionary_2021.csv), from
#: the least to the most severe tier of establishment.
DEGREES_OF_ESTABLISHMENT: tuple[str, ...] = (
    "established (category C3)",
    "invasive (category D2)",
    "widespread invasive (category E)",
)

#: RIIS region codes (the `locality` vocabulary).
RIIS_REGIONS: tuple[str, ...] = ("AK", "HI", "L48")

#: The states whose records take the L48 list: "L48: Conterminous 48 United States" (the
#: data dictionary's `locality` vocabulary, US-RIIS_DataDictionary_2021.csv), by USPS code,
#: and the District of Columbia, which lies within them. Territories (PR, VI, GU, AS, MP) are
#: assessed by none of the three lists, so their records get no RIIS region. The seed system
#: gives L48 to every state but AK and HI (lifemapper/bison `aws/lambda/bison_s5_assign_riis.py`,
#: update_l48_stmt), territories included.
CONTERMINOUS_STATES: tuple[str, ...] = (
    "AL", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "ID", "IL", "IN", "IA", "KS",
    "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM",
    "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA",
    "WA", "WV", "WI", "WY",
)  # fmt: skip
assert len(CONTERMINOUS_STATES) == 49 and "AK" not in CONTERMINOUS_STATES

#: degreeOfEstablishment -> assessment (the seed's RIIS_STATUS, bisonflow.dimensions says
#: where), least severe tier first.
ASSESSMENT_OF_DEGREE: dict[str, str] = dict(
    zip(DEGREES_OF_ESTABLISHMENT, LISTED_ASSESSMENTS, strict=True)
)
