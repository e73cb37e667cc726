"""A US-RIIS v2 master list drawn from the sample backbone, with every naming quirk of the real one.

The annotation step must cope with what curators actually write: names GBIF treats as synonyms
("Rana catesbeiana"), misspellings GBIF only fuzzy-matches, hybrids written with a capital X,
"ssp." and "var." names, names GBIF cannot place at all, and one taxon listed in several
regions with different designations. Each quirk is present here, and each listed name comes
with the /species/match answer GBIF would give, so the expected annotation is known.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bisonflow.gbif.species_api import NO_MATCH
from bisonflow.riis.columns import DEGREES_OF_ESTABLISHMENT, RIIS_COLUMNS, RIIS_REGIONS
from bisonflow.sample.taxa import (
    FAMILIES,
    REAL_SPECIES,
    REAL_SYNONYMS,
    RIIS_MARKER,
    RIIS_RANK,
    Backbone,
    Usage,
    match_body,
    resolved_key,
)

#: degreeOfEstablishment values of the v2 master list, with the share of rows given each.
DEGREES: tuple[str, ...] = DEGREES_OF_ESTABLISHMENT
_DEGREE_SHARE = (0.55, 0.33, 0.12)
#: Chance that a listed taxon is listed in each region.
_REGION_CHANCE = {"AK": 0.2, "HI": 0.4, "L48": 0.75}

_VERNACULAR = {
    "Lythrum salicaria": "purple loosestrife",
    "Alliaria petiolata": "garlic mustard",
    "Pueraria montana": "kudzu",
    "Tamarix ramosissima": "saltcedar",
    "Bromus tectorum": "cheatgrass",
    "Festuca rubra": "red fescue",
    "Aira caryophyllea": "silver hairgrass",
    "Miconia calvescens": "miconia",
    "Psidium cattleyanum": "strawberry guava",
    "Mentha × piperita": "peppermint",
    "Reynoutria × bohemica": "Bohemian knotweed",
    "Sus scrofa": "wild boar",
    "Felis catus": "domestic cat",
    "Sturnus vulgaris": "European starling",
    "Passer domesticus": "house sparrow",
    "Rattus rattus": "black rat",
    "Rattus norvegicus": "Norway rat",
    "Urva auropunctata": "small Indian mongoose",
    "Lithobates catesbeianus": "American bullfrog",
    "Cyprinus carpio": "common carp",
    "Dreissena polymorpha": "zebra mussel",
    "Lissachatina fulica": "giant African land snail",
    "Linepithema humile": "Argentine ant",
    "Apis mellifera": "western honey bee",
    "Anoplophora glabripennis": "Asian longhorned beetle",
    "Agrilus planipennis": "emerald ash borer",
    "Lymantria dispar": "spongy moth",
    "Aedes albopictus": "Asian tiger mosquito",
    "Lumbricus terrestris": "common earthworm",
    "Cygnus olor": "mute swan",
    "Cryphonectria parasitica": "chestnut blight",
    "Phytophthora ramorum": "sudden oak death",
    "Sargassum muticum": "wireweed",
}
_FAMILY_NOUN = {
    "Lamiaceae": "mint", "Poaceae": "grass", "Asteraceae": "aster", "Fabaceae": "pea",
    "Rosaceae": "rose", "Myrtaceae": "myrtle", "Lythraceae": "loosestrife",
    "Melastomataceae": "melastome", "Brassicaceae": "mustard", "Tamaricaceae": "tamarisk",
    "Polygonaceae": "knotweed", "Salicaceae": "willow", "Pinaceae": "pine",
    "Dryopteridaceae": "wood fern", "Sturnidae": "starling", "Passeridae": "sparrow",
    "Anatidae": "duck", "Muridae": "rat", "Felidae": "cat", "Herpestidae": "mongoose",
    "Suidae": "pig", "Cyprinidae": "carp", "Ranidae": "frog", "Formicidae": "ant",
    "Apidae": "bee", "Cerambycidae": "longhorn beetle", "Buprestidae": "jewel beetle",
    "Curculionidae": "weevil", "Erebidae": "moth", "Aphididae": "aphid",
    "Culicidae": "mosquito", "Theridiidae": "cobweb spider", "Achatinidae": "land snail",
    "Helicidae": "snail", "Dreissenidae": "mussel", "Lumbricidae": "earthworm",
    "Cryphonectriaceae": "canker fungus", "Amanitaceae": "amanita",
    "Peronosporaceae": "water mold", "Sargassaceae": "seaweed", "Physaraceae": "slime mold",
    "Erwiniaceae": "bacterium",
}  # fmt: skip
_ADJECTIVES = (
    "European", "Asian", "common", "giant", "lesser", "spotted", "brown", "golden", "red",
    "Japanese", "Chinese", "Brazilian", "African", "tropical", "Mediterranean", "Eurasian",
)  # fmt: skip
_PATHWAYS = (
    "escape from confinement: horticulture",
    "escape from confinement: pet",
    "contaminant: seed contaminant",
    "release in nature: biological control",
    "release in nature: hunting",
    "stowaway: ship/boat ballast water",
    "transport of habitat material",
    "unknown",
)
_AUTHORITIES = {
    "AK": ("Alaska Natural Heritage Program", "https://accs.uaa.alaska.edu/invasive-species/"),
    "HI": ("Bishop Museum", "http://hbs.bishopmuseum.org/"),
    "L48": ("USDA NRCS PLANTS", "https://plants.usda.gov/"),
}
_OTHER_AUTHORITIES = (
    ("Kraus", "https://doi.org/10.1007/978-1-4020-8946-6"),
    ("Fuller et al.", "https://nas.er.usgs.gov/"),
    ("Abbate et al.", "https://zookeys.pensoft.net/articles.php?id=3634"),
    ("Imada", "Not available online"),
)
#: occurrenceRemarks ("comments about the taxon, or information extracted from the text of the
#: Authority", US-RIIS_DataDictionary_2021.csv) follow from the pathway already drawn, so the
#: column costs no draw and the sample's random stream, hence its facts, stay as they were.
_OCCURRENCE_REMARKS = {
    "release in nature: biological control": "Purposely introduced as a biological control agent",
    "release in nature: hunting": "Purposely introduced for hunting",
    "stowaway: ship/boat ballast water": "Unintentionally introduced in ballast water",
}
_ITIS_URL = "https://www.itis.gov/servlet/SingleRpt/SingleRpt?search_topic=TSN&search_value="


@dataclass(frozen=True)
class RiisTaxon:
    """A name on the list with the match GBIF gives it."""

    name: str  # scientificName exactly as the list writes it (the match query)
    authorship: str
    rank: str  # RIIS taxonRank label
    is_hybrid: bool
    classification: tuple[str, str, str, str, str]  # kingdom, phylum, class, order, family
    canonical: str  # backbone canonical name of the matched usage ("" if none)
    match: dict[str, Any]
    kind: str  # accepted, synonym, fuzzy, doubtful, infraspecific, hybrid, unmatched

    @property
    def key(self) -> int | None:
        """Accepted backbone key the workflow should resolve this name to."""
        return resolved_key(self.match)


@dataclass(frozen=True)
class RiisRow:
    locality: str
    taxon: RiisTaxon
    degree: str


def _riis_name(usage: Usage) -> str:
    """How the list writes a backbone usage: "ssp."/"var." markers, hybrids with " X "."""
    if usage.infraspecific_epithet is not None:
        marker = RIIS_MARKER.get(usage.rank, "") if usage.kingdom != "Animalia" else ""
        return " ".join(p for p in (usage.species, marker, usage.infraspecific_epithet) if p)
    return usage.canonical.replace(" × ", " X ")


def _taxon(backbone: Backbone, usage: Usage, kind: str, match_type: str, conf: int) -> RiisTaxon:
    return RiisTaxon(
        name=_riis_name(usage),
        authorship=usage.authorship,
        rank=RIIS_RANK.get(usage.rank, "Species"),
        is_hybrid=usage.hybrid or (usage.accepted is not None and usage.accepted.hybrid),
        classification=FAMILIES[usage.family],
        canonical=usage.canonical,
        match=match_body(backbone, usage, match_type, conf),
        kind=kind,
    )


def _typo(name: str) -> str:
    """Drop the epithet's second-to-last letter: "salicaria" -> "salicara"."""
    genus, epithet = name.split(" ", 1)
    return f"{genus} {epithet[:-2]}{epithet[-1]}"


def list_taxa(backbone: Backbone, rng: np.random.Generator) -> list[RiisTaxon]:
    """Choose the listed names: real invasives, generated ones, and every kind of quirk."""
    by_name = backbone.by_canonical()
    out: list[RiisTaxon] = []
    used: set[int] = set()  # backbone keys already listed under some name

    def take(usage: Usage, kind: str, match_type: str = "EXACT", conf: int = 98) -> None:
        out.append(_taxon(backbone, usage, kind, match_type, conf))
        used.add((usage.accepted or usage).key)

    real_synonyms = backbone.synonyms[: len(REAL_SYNONYMS)]
    synonym_of = {s.accepted.canonical for s in real_synonyms if s.accepted is not None}
    for _family, genus, epithet, _author in REAL_SPECIES:
        usage = by_name[f"{genus} {epithet}"]
        if usage.canonical in synonym_of:
            continue  # listed under its older name below
        if usage.canonical == "Lythrum salicaria":
            fuzzy = _taxon(backbone, usage, "fuzzy", "FUZZY", 92)
            out.append(_with_name(fuzzy, _typo(usage.canonical)))
            used.add(usage.key)
            continue
        take(usage, "hybrid" if usage.hybrid else "accepted", conf=97 if usage.hybrid else 98)
    for synonym in backbone.synonyms[: len(REAL_SYNONYMS)]:
        take(synonym, "synonym")
    for usage in backbone.occurrence_taxa:
        if usage.species in ("Festuca rubra", "Aira caryophyllea") and usage.rank != "SPECIES":
            take(usage, "infraspecific")

    pool = [u for u in backbone.occurrence_taxa if u.key not in used]
    species = [u for u in pool if u.rank == "SPECIES" and u.status == "ACCEPTED" and not u.hybrid]
    order = rng.permutation(len(species))
    for i in order[:200]:
        take(species[int(i)], "accepted", conf=int(rng.integers(97, 100)))
    for i in order[200:206]:
        usage = species[int(i)]
        fuzzy = _taxon(backbone, usage, "fuzzy", "FUZZY", int(rng.integers(85, 94)))
        out.append(_with_name(fuzzy, _typo(usage.canonical)))
        used.add(usage.key)
    for synonym in backbone.synonyms[len(REAL_SYNONYMS) : len(REAL_SYNONYMS) + 15]:
        take(synonym, "synonym")
    for usage in [u for u in pool if u.status == "DOUBTFUL"][:5]:
        take(usage, "doubtful", conf=96)
    infra = [u for u in pool if u.rank in ("SUBSPECIES", "VARIETY", "FORM")]
    infra = [u for u in infra if u.kingdom == "Plantae"]
    for i in rng.permutation(len(infra))[:10]:
        take(infra[int(i)], "infraspecific")
    for usage in [u for u in pool if u.hybrid][:5]:
        take(usage, "hybrid", conf=95)
    out.extend(_unmatched(rng, {t.name for t in out} | set(by_name)))
    return out


def _with_name(taxon: RiisTaxon, name: str) -> RiisTaxon:
    return RiisTaxon(
        name=name,
        authorship=taxon.authorship,
        rank=taxon.rank,
        is_hybrid=taxon.is_hybrid,
        classification=taxon.classification,
        canonical=taxon.canonical,
        match=taxon.match,
        kind=taxon.kind,
    )


def _unmatched(rng: np.random.Generator, taken: set[str]) -> list[RiisTaxon]:
    """Names GBIF cannot place: a virus, invented genera, unplaced hybrids."""
    virus = RiisTaxon(
        name="Banana bunchy top virus",
        authorship="",
        rank="Species",
        is_hybrid=False,
        classification=("Virus", "", "", "", ""),
        canonical="",
        match=dict(NO_MATCH),
        kind="unmatched",
    )
    out = [virus]
    plants = [f for f in FAMILIES if f[0] == "Plantae"]
    animals = [f for f in FAMILIES if f[0] == "Animalia"]
    invented = ("Quaxylon", "Vorridens", "Skelmia", "Trondelia", "Wexanthus", "Brimoda")
    epithets = ("ignota", "dubia", "incerta", "nova", "obscurior", "perplexa")
    for i, (genus, epithet) in enumerate(zip(invented, epithets, strict=True)):
        hybrid = i >= 4
        name = f"{genus} X {epithet}" if hybrid else f"{genus} {epithet}"
        if name in taken:
            continue
        families = plants if hybrid or i % 2 == 0 else animals
        out.append(
            RiisTaxon(
                name=name,
                authorship="" if hybrid else f"Auct. {int(rng.integers(1850, 1990))}",
                rank="Species",
                is_hybrid=hybrid,
                classification=families[int(rng.integers(len(families)))],
                canonical="",
                match=dict(NO_MATCH),
                kind="unmatched",
            )
        )
    return out


def list_rows(taxa: list[RiisTaxon], rng: np.random.Generator) -> list[RiisRow]:
    """Regions and designations per listed name; (region, accepted key) never repeats.

    A repeated pair would make the seed system's `UPDATE ... FROM riis` pick an arbitrary
    row, so the list avoids it and the expected annotation of each record stays well-defined.
    """
    rows: list[RiisRow] = []
    seen: set[tuple[str, int]] = set()
    multi_region_degrees_differ = False
    for taxon in taxa:
        regions = [r for r in RIIS_REGIONS if rng.random() < _REGION_CHANCE[r]] or ["L48"]
        degrees = rng.choice(len(DEGREES), size=len(regions), p=_DEGREE_SHARE)
        if len(regions) > 1 and not multi_region_degrees_differ:
            degrees = np.array([1] + [0] * (len(regions) - 1))  # invasive in one, not others
            multi_region_degrees_differ = True
        for region, degree in zip(regions, degrees, strict=True):
            key = taxon.key
            if key is not None:
                if (region, key) in seen:
                    continue
                seen.add((region, key))
            rows.append(RiisRow(region, taxon, DEGREES[int(degree)]))
    return rows


def _date(rng: np.random.Generator, start: dt.date, end: dt.date) -> dt.date:
    return start + dt.timedelta(days=int(rng.integers(0, (end - start).days + 1)))


def write_riis_csv(path: Path, rows: list[RiisRow], rng: np.random.Generator) -> int:
    """Write the master list (header RIIS_COLUMNS: the 32 columns as USGS spells them, UTF-8,
    `\\n` line ends); returns row count.

    occurrenceID ordinals follow the data dictionary's rule: sort by acquisition date, then
    scientificName, then locality, and number from 1.
    """
    records: list[dict[str, str]] = []
    for row in rows:
        records.append(_record(row, rng))
    records.sort(key=lambda r: (r["eventDate"], r["scientificName"], r["locality"]))
    for ordinal, record in enumerate(records, start=1):
        record["occurrenceID"] = f"USRIIS-{record['locality']}{record['kingdom']}{ordinal}"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=RIIS_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
    return len(records)


def _record(row: RiisRow, rng: np.random.Generator) -> dict[str, str]:
    taxon = row.taxon
    kingdom, phylum, cls, order, family = taxon.classification
    canonical = taxon.canonical or taxon.name
    species_name = str(taxon.match.get("species") or canonical)
    vernacular = _VERNACULAR.get(species_name) or (
        f"{_ADJECTIVES[int(rng.integers(len(_ADJECTIVES)))]} {_FAMILY_NOUN.get(family, 'virus')}"
    )
    tsn = ""
    if kingdom in ("Plantae", "Animalia") and rng.random() < 0.7:
        tsn = str(int(rng.integers(20_000, 1_200_000)))
    usage_key = taxon.match.get("usageKey")
    gbif_key = "" if usage_key is None or rng.random() < 0.1 else str(usage_key)
    if gbif_key and rng.random() < 0.05:
        gbif_key = str(int(rng.integers(2_000_000, 9_000_000)))  # stale key from an old backbone
    if tsn:
        status, taxon_id = "Accepted ITIS", _ITIS_URL + tsn
    elif usage_key is not None:
        status, taxon_id = "Accepted GBIF", f"https://www.gbif.org/species/{usage_key}"
    elif taxon.is_hybrid:
        status, taxon_id = "n/a", ""
    else:
        status, taxon_id = ("Accepted ICTV" if kingdom == "Virus" else "Accepted CoL"), ""
    if rng.random() < 0.6:
        authority, url = _AUTHORITIES[row.locality]
    else:
        authority, url = _OTHER_AUTHORITIES[int(rng.integers(len(_OTHER_AUTHORITIES)))]
    year = int(rng.integers(1995, 2021))
    intro = str(int(rng.integers(1750, 2016))) if rng.random() < 0.4 else ""
    acquired = _date(rng, dt.date(2004, 1, 1), dt.date(2021, 6, 30))
    modified = _date(rng, acquired, dt.date(2022, 8, 31))
    biocontrol = kingdom == "Animalia" and rng.random() < 0.04
    habitat = {"Chromista": "marine", "Virus": "terrestrial"}.get(kingdom, "terrestrial")
    if family in ("Cyprinidae", "Dreissenidae", "Ranidae", "Culicidae"):
        habitat = "freshwater" if family != "Ranidae" else "terrestrial; freshwater"
    pathway = _PATHWAYS[int(rng.integers(len(_PATHWAYS)))]  # drawn where it always was
    return {
        "locality": row.locality,
        "scientificName": taxon.name,
        "scientificNameAuthorship": taxon.authorship,
        "vernacularName": vernacular,
        "taxonRank": taxon.rank,
        "establishmentMeans": "introduced",
        "degreeOfEstablishment": row.degree,
        "isHybrid": "TRUE" if taxon.is_hybrid else "FALSE",
        "pathway": pathway,
        "habitat": habitat,
        "Biocontrol": "Yes" if biocontrol else "",
        "associatedTaxa": "Aphididae" if biocontrol else "",
        "eventRemarks": f"Approximate introduction date: {intro}" if intro else "",
        "IntroDateNumber": intro,
        "taxonRemarks": "Listed under a name GBIF treats as a synonym"
        if taxon.kind == "synonym"
        else "",
        "kingdom": kingdom,
        "phylum": phylum,
        "class": cls,
        "order": order,
        "family": family,
        "taxonomicStatus": status,
        "ITIS_TSN": tsn,
        "GBIF_taxonKey": gbif_key,
        "taxonID": taxon_id,
        "Authority": f"{authority} ({year})",
        "WebLink": url,
        "associatedReferences": url,
        "eventDate": acquired.isoformat(),
        "modified": modified.isoformat(),
        "Update_Remarks": "Changed reference" if rng.random() < 0.1 else "",
        "occurrenceRemarks": _OCCURRENCE_REMARKS.get(pathway, ""),
        "occurrenceID": "",
    }
