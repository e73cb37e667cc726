"""Columns of the US-RIIS v2 master list and of the annotated file the workflow writes.

The annotated CSV is loaded into Redshift by position, so its header order is fixed here and
nowhere else.
"""

#: USRIISv2_MasterList.csv columns, in the list's order and spelled as USGS publishes them
#: (issue 10 quotes the v2 header; the seed system reads the list by its own header and names
#: the USGS key column "GBIF_taxonKey": lifemapper/bison `bison/provider/constants.py`
#: RIIS_DATA.GBIF_KEY, and creates its Redshift table with these 32 columns lower-cased, in this
#: order, `occurrenceremarks` before `occurrenceid`: `aws/redshift/load_annotated_riis.sql`).
#: ../shared/data/US-RIIS_DataDictionary_2021.csv describes the 2021 v1 list, whose names
#: differ ("GBIF taxonKey", "Introduced or Invasive"); degreeOfEstablishment carries v2's
#: introduced / invasive designation.
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

#: Columns annotate_riis appends (the seed system's names).
RESOLVED_COLUMNS: tuple[str, ...] = ("gbif_res_taxonkey", "gbif_res_scientificname")

ANNOTATED_COLUMNS: tuple[str, ...] = RIIS_COLUMNS + RESOLVED_COLUMNS

#: degreeOfEstablishment vocabulary of the v2 list (US-RIIS_DataDictionary_2021.csv); the
#: aggregation calls an entry invasive when its degree mentions "invasive".
DEGREES_OF_ESTABLISHMENT: tuple[str, ...] = (
    "established (category C3)",
    "invasive (category D2)",
    "widespread invasive (category E)",
)

#: RIIS region codes (the `locality` vocabulary).
RIIS_REGIONS: tuple[str, ...] = ("AK", "HI", "L48")

#: Assessment given to a record whose (region, accepted taxon key) is not on the list.
PRESUMED_NATIVE = "presumed_native"

#: Every RIIS assessment a record can get, in report order.
INTRODUCED = "introduced"
INVASIVE = "invasive"
ASSESSMENTS: tuple[str, ...] = (INTRODUCED, INVASIVE, PRESUMED_NATIVE)
