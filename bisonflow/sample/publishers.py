"""Who publishes the sample's records: datasets, collectors, localities and issue flags.

The vocabulary of the generated GBIF records (bisonflow.sample.occurrences), kept apart from
the generator so each file stays readable. Institutions and URN prefixes are modelled on
real US publishers; nothing here is real data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Dataset:
    """A dataset records are drawn from, with its share of the records."""

    institution: str
    collection: str
    occurrence_prefix: str
    catalog_prefix: str
    observation: bool  # holds observations (else specimens)
    weight: float
    license: str
    rightsholder: str | None


DATASETS = (
    Dataset(
        "iNaturalist",
        "Observations",
        "https://www.inaturalist.org/observations/",
        "",
        True,
        0.50,
        "CC_BY_NC_4_0",
        None,
    ),
    Dataset("NEON", "OBS", "urn:catalog:NEON:OBS:", "NEON-", True, 0.25, "CC0_1_0", None),
    Dataset(
        "EDDMapS",
        "EDDMapS",
        "https://www.eddmaps.org/distribution/point.cfm?id=",
        "",
        True,
        0.12,
        "CC0_1_0",
        "University of Georgia",
    ),
    Dataset("NPS", "NPSpecies", "urn:catalog:NPS:NPSpecies:", "", True, 0.08, "CC0_1_0", None),
    Dataset("USGS", "BISON", "urn:catalog:USGS:BISON:", "", True, 0.05, "CC0_1_0", "USGS"),
    Dataset("MO", "MO", "urn:catalog:MO:MO:", "MO-", False, 0.3, "CC_BY_4_0", "Missouri Bot."),
    Dataset("NY", "NY", "urn:catalog:NY:NY:", "", False, 0.2, "CC0_1_0", None),
    Dataset("UC", "UC", "urn:catalog:UC:UC:", "UC", False, 0.2, "CC_BY_4_0", None),
    Dataset("USNM", "Mammals", "urn:catalog:USNM:Mammals:", "", False, 0.1, "CC0_1_0", None),
    Dataset("UF", "Herp", "urn:catalog:UF:Herp:", "", False, 0.1, "CC_BY_NC_4_0", None),
    Dataset("MCZ", "ENT", "urn:catalog:MCZ:ENT:", "MCZ:Ent:", False, 0.1, "CC_BY_4_0", None),
)

_SURNAMES = (
    "Smith", "Johnson", "Garcia", "Nguyen", "Kealoha", "Begay", "Olson", "Martinez", "Kim",
    "Brown", "Davis", "Lopez", "Wilson", "Anderson", "Thomas", "Moore", "Clark", "Lewis",
    "Young", "Walker", "Hall", "Allen", "King", "Wright", "Scott", "Green", "Baker", "Adams",
)  # fmt: skip
PEOPLE = tuple(f"{initial}. {surname}" for surname in _SURNAMES for initial in "AJMR")
GEO_ISSUES = (
    "COORDINATE_ROUNDED",
    "GEODETIC_DATUM_ASSUMED_WGS84",
    "CONTINENT_DERIVED_FROM_COORDINATES",
)
OTHER_ISSUES = (
    "INSTITUTION_MATCH_NONE",
    "COLLECTION_MATCH_NONE",
    "TAXON_MATCH_FUZZY",
    "MULTIMEDIA_URI_INVALID",
)
LOCALITIES = (
    "roadside", "trailhead", "lake shore", "city park", "river bank", "pasture edge",
    "forest clearing", "backyard", "wetland margin", "coastal dune", "canyon floor", "orchard",
)  # fmt: skip
UNCERTAINTY_METRES = np.array([1, 4, 5, 10, 16, 20, 30, 50, 100, 250, 1000, 5000], dtype=np.float64)
