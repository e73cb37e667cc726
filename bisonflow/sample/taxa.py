"""A small synthetic stand-in for the GBIF backbone taxonomy, and what GBIF's name matcher says.

The workflow meets taxonomy in three places that must agree: occurrence records carry backbone
keys (taxonkey, specieskey), the US-RIIS list carries names as curators wrote them, and
GBIF's /v1/species/match turns those names into backbone keys. One `Backbone` built here
feeds all three, so a RIIS synonym really resolves to the species key that occurrences use,
and the expected annotation of every record can be computed.

Higher taxa (kingdom to family) and about thirty well-known invasive species are real names;
everything else (genera, epithets, authors, keys other than kingdom keys) is generated.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bisonflow.sample.name_parts import EPITHETS, GENUS_MIDDLE, GENUS_PREFIX, GENUS_SUFFIX, author

#: GBIF backbone kingdom keys (real).
KINGDOM_KEYS: dict[str, int] = {
    "Animalia": 1,
    "Archaea": 2,
    "Bacteria": 3,
    "Chromista": 4,
    "Fungi": 5,
    "Plantae": 6,
    "Protozoa": 7,
    "Viruses": 8,
}

#: (kingdom, phylum, class, order, family), real backbone names.
FAMILIES: tuple[tuple[str, str, str, str, str], ...] = (
    ("Plantae", "Tracheophyta", "Magnoliopsida", "Lamiales", "Lamiaceae"),
    ("Plantae", "Tracheophyta", "Liliopsida", "Poales", "Poaceae"),
    ("Plantae", "Tracheophyta", "Magnoliopsida", "Asterales", "Asteraceae"),
    ("Plantae", "Tracheophyta", "Magnoliopsida", "Fabales", "Fabaceae"),
    ("Plantae", "Tracheophyta", "Magnoliopsida", "Rosales", "Rosaceae"),
    ("Plantae", "Tracheophyta", "Magnoliopsida", "Myrtales", "Myrtaceae"),
    ("Plantae", "Tracheophyta", "Magnoliopsida", "Myrtales", "Lythraceae"),
    ("Plantae", "Tracheophyta", "Magnoliopsida", "Myrtales", "Melastomataceae"),
    ("Plantae", "Tracheophyta", "Magnoliopsida", "Brassicales", "Brassicaceae"),
    ("Plantae", "Tracheophyta", "Magnoliopsida", "Caryophyllales", "Tamaricaceae"),
    ("Plantae", "Tracheophyta", "Magnoliopsida", "Caryophyllales", "Polygonaceae"),
    ("Plantae", "Tracheophyta", "Magnoliopsida", "Malpighiales", "Salicaceae"),
    ("Plantae", "Tracheophyta", "Pinopsida", "Pinales", "Pinaceae"),
    ("Plantae", "Tracheophyta", "Polypodiopsida", "Polypodiales", "Dryopteridaceae"),
    ("Animalia", "Chordata", "Aves", "Passeriformes", "Sturnidae"),
    ("Animalia", "Chordata", "Aves", "Passeriformes", "Passeridae"),
    ("Animalia", "Chordata", "Aves", "Anseriformes", "Anatidae"),
    ("Animalia", "Chordata", "Mammalia", "Rodentia", "Muridae"),
    ("Animalia", "Chordata", "Mammalia", "Carnivora", "Felidae"),
    ("Animalia", "Chordata", "Mammalia", "Carnivora", "Herpestidae"),
    ("Animalia", "Chordata", "Mammalia", "Artiodactyla", "Suidae"),
    ("Animalia", "Chordata", "Actinopterygii", "Cypriniformes", "Cyprinidae"),
    ("Animalia", "Chordata", "Amphibia", "Anura", "Ranidae"),
    ("Animalia", "Arthropoda", "Insecta", "Hymenoptera", "Formicidae"),
    ("Animalia", "Arthropoda", "Insecta", "Hymenoptera", "Apidae"),
    ("Animalia", "Arthropoda", "Insecta", "Coleoptera", "Cerambycidae"),
    ("Animalia", "Arthropoda", "Insecta", "Coleoptera", "Buprestidae"),
    ("Animalia", "Arthropoda", "Insecta", "Coleoptera", "Curculionidae"),
    ("Animalia", "Arthropoda", "Insecta", "Lepidoptera", "Erebidae"),
    ("Animalia", "Arthropoda", "Insecta", "Hemiptera", "Aphididae"),
    ("Animalia", "Arthropoda", "Insecta", "Diptera", "Culicidae"),
    ("Animalia", "Arthropoda", "Arachnida", "Araneae", "Theridiidae"),
    ("Animalia", "Mollusca", "Gastropoda", "Stylommatophora", "Achatinidae"),
    ("Animalia", "Mollusca", "Gastropoda", "Stylommatophora", "Helicidae"),
    ("Animalia", "Mollusca", "Bivalvia", "Myida", "Dreissenidae"),
    ("Animalia", "Annelida", "Clitellata", "Crassiclitellata", "Lumbricidae"),
    ("Fungi", "Ascomycota", "Sordariomycetes", "Diaporthales", "Cryphonectriaceae"),
    ("Fungi", "Basidiomycota", "Agaricomycetes", "Agaricales", "Amanitaceae"),
    ("Chromista", "Oomycota", "Peronosporea", "Peronosporales", "Peronosporaceae"),
    ("Chromista", "Ochrophyta", "Phaeophyceae", "Fucales", "Sargassaceae"),
    ("Protozoa", "Amoebozoa", "Myxomycetes", "Physarales", "Physaraceae"),
    ("Bacteria", "Proteobacteria", "Gammaproteobacteria", "Enterobacterales", "Erwiniaceae"),
)
_FAMILY_INDEX = {f[4]: i for i, f in enumerate(FAMILIES)}

#: Share of generated species per kingdom (roughly what US occurrence data looks like).
_KINGDOM_SHARE = {
    "Plantae": 0.48,
    "Animalia": 0.42,
    "Fungi": 0.05,
    "Chromista": 0.03,
    "Protozoa": 0.01,
    "Bacteria": 0.01,
}

#: Real species on the real US-RIIS list: (family, genus, epithet, authorship).
#: An epithet starting with "× " is a nothospecies (hybrid).
REAL_SPECIES: tuple[tuple[str, str, str, str], ...] = (
    ("Lythraceae", "Lythrum", "salicaria", "L."),
    ("Brassicaceae", "Alliaria", "petiolata", "(M.Bieb.) Cavara & Grande"),
    ("Fabaceae", "Pueraria", "montana", "(Lour.) Merr."),
    ("Tamaricaceae", "Tamarix", "ramosissima", "Ledeb."),
    ("Poaceae", "Bromus", "tectorum", "L."),
    ("Poaceae", "Festuca", "rubra", "L."),
    ("Poaceae", "Aira", "caryophyllea", "L."),
    ("Melastomataceae", "Miconia", "calvescens", "DC."),
    ("Myrtaceae", "Psidium", "cattleyanum", "Sabine"),
    ("Lamiaceae", "Mentha", "× piperita", "L."),
    ("Polygonaceae", "Reynoutria", "× bohemica", "Chrtek & Chrtková"),
    ("Suidae", "Sus", "scrofa", "Linnaeus, 1758"),
    ("Felidae", "Felis", "catus", "Linnaeus, 1758"),
    ("Sturnidae", "Sturnus", "vulgaris", "Linnaeus, 1758"),
    ("Passeridae", "Passer", "domesticus", "(Linnaeus, 1758)"),
    ("Muridae", "Rattus", "rattus", "(Linnaeus, 1758)"),
    ("Muridae", "Rattus", "norvegicus", "(Berkenhout, 1769)"),
    ("Herpestidae", "Urva", "auropunctata", "(Hodgson, 1836)"),
    ("Ranidae", "Lithobates", "catesbeianus", "(Shaw, 1802)"),
    ("Cyprinidae", "Cyprinus", "carpio", "Linnaeus, 1758"),
    ("Dreissenidae", "Dreissena", "polymorpha", "(Pallas, 1771)"),
    ("Achatinidae", "Lissachatina", "fulica", "(Bowdich, 1822)"),
    ("Formicidae", "Linepithema", "humile", "(Mayr, 1868)"),
    ("Apidae", "Apis", "mellifera", "Linnaeus, 1758"),
    ("Cerambycidae", "Anoplophora", "glabripennis", "(Motschulsky, 1853)"),
    ("Buprestidae", "Agrilus", "planipennis", "Fairmaire, 1888"),
    ("Erebidae", "Lymantria", "dispar", "(Linnaeus, 1758)"),
    ("Culicidae", "Aedes", "albopictus", "(Skuse, 1894)"),
    ("Lumbricidae", "Lumbricus", "terrestris", "Linnaeus, 1758"),
    ("Anatidae", "Cygnus", "olor", "(Gmelin, 1789)"),
    ("Cryphonectriaceae", "Cryphonectria", "parasitica", "(Murrill) M.E.Barr"),
    ("Peronosporaceae", "Phytophthora", "ramorum", "Werres, De Cock & Man in 't Veld"),
    ("Sargassaceae", "Sargassum", "muticum", "(Yendo) Fensholt"),
)

#: Real infraspecific taxa: (species canonical name, rank, epithet, authorship).
REAL_INFRASPECIFIC: tuple[tuple[str, str, str, str], ...] = (
    ("Festuca rubra", "SUBSPECIES", "fallax", "(Thuill.) Nyman"),
    ("Aira caryophyllea", "VARIETY", "caryophyllea", ""),
    ("Sus scrofa", "SUBSPECIES", "scrofa", "Linnaeus, 1758"),
    ("Apis mellifera", "SUBSPECIES", "ligustica", "Spinola, 1806"),
)

#: Real names the RIIS uses that the backbone treats as synonyms:
#: (RIIS name, synonym's backbone scientificName, accepted canonical name).
REAL_SYNONYMS: tuple[tuple[str, str, str], ...] = (
    ("Rana catesbeiana", "Rana catesbeiana Shaw, 1802", "Lithobates catesbeianus"),
    ("Achatina fulica", "Achatina fulica Bowdich, 1822", "Lissachatina fulica"),
    ("Herpestes auropunctatus", "Herpestes auropunctatus (Hodgson, 1836)", "Urva auropunctata"),
    (
        "Fallopia X bohemica",
        "Fallopia × bohemica (Chrtek & Chrtková) J.P.Bailey",
        "Reynoutria × bohemica",
    ),
    # A species-rank name for a subspecies (Thuillier's species, now Festuca rubra subsp.
    # fallax): its listing is below species, and records published under it carry its own
    # key, which only the listed name's usageKey leads to.
    ("Festuca fallax", "Festuca fallax Thuill.", "Festuca rubra fallax"),
)

#: Infraspecific rank markers in backbone scientific names (zoological names have none).
_MARKER = {
    "SUBSPECIES": "subsp.",
    "VARIETY": "var.",
    "FORM": "f.",
    "INFRASPECIFIC_NAME": "",
    "INFRASUBSPECIFIC_NAME": "",
}
#: How the RIIS writes ranks and markers (ssp., not subsp.).
RIIS_RANK = {"SPECIES": "Species", "SUBSPECIES": "Subspecies", "VARIETY": "Variety", "FORM": "Form"}
RIIS_MARKER = {"SUBSPECIES": "ssp.", "VARIETY": "var.", "FORM": "f."}


@dataclass
class Usage:
    """One backbone name usage (accepted, doubtful or synonym)."""

    key: int
    rank: str
    canonical: str
    scientific_name: str
    authorship: str
    status: str  # ACCEPTED, DOUBTFUL or SYNONYM
    family: int  # index into FAMILIES
    genus: str
    genus_key: int
    species: str  # canonical name of the (accepted) species
    species_key: int
    infraspecific_epithet: str | None = None
    accepted: Usage | None = None
    hybrid: bool = False
    #: canonical names of synonyms, used now and then as a record's verbatim name
    synonym_names: list[str] = field(default_factory=list)

    @property
    def kingdom(self) -> str:
        return FAMILIES[self.family][0]


@dataclass
class Backbone:
    """Keys of higher taxa and all usages; `occurrence_taxa` are what records can carry."""

    higher_keys: dict[tuple[str, str], int]  # (rank, name) -> key
    occurrence_taxa: list[Usage]
    synonyms: list[Usage]
    genus_keys: dict[str, int]
    genus_authors: dict[str, str]

    def higher_key(self, rank: str, name: str) -> int:
        return self.higher_keys[(rank, name)]

    def by_canonical(self) -> dict[str, Usage]:
        return {u.canonical: u for u in self.occurrence_taxa}


class _Keys:
    """Backbone-like usage keys: unique 7-digit numbers in a random order."""

    def __init__(self, rng: np.random.Generator, n: int) -> None:
        gaps = rng.integers(1, 3000, size=n)
        self._keys = (2_000_000 + np.cumsum(gaps)).tolist()
        rng.shuffle(self._keys)
        self._next = 0

    def take(self) -> int:
        key = self._keys[self._next]
        self._next += 1
        return int(key)


def _higher_keys() -> dict[tuple[str, str], int]:
    """Kingdom keys are GBIF's; lower ranks get stable made-up keys in first-seen order."""
    keys: dict[tuple[str, str], int] = {("kingdom", k): v for k, v in KINGDOM_KEYS.items()}
    start = {"phylum": 10, "class": 100, "order": 400, "family": 2000}
    for _kingdom, phylum, cls, order, family in FAMILIES:
        for rank, name in (("phylum", phylum), ("class", cls), ("order", order)):
            if (rank, name) not in keys:
                keys[(rank, name)] = start[rank]
                start[rank] += 1
        keys[("family", family)] = start["family"]
        start["family"] += 7
    return keys


def _species_name(genus: str, epithet: str, authorship: str) -> tuple[str, str]:
    canonical = f"{genus} {epithet}"
    return canonical, f"{canonical} {authorship}".strip()


class _BackboneBuilder:
    """The usages of a backbone being drawn, and the keys they take, in drawing order."""

    def __init__(self, rng: np.random.Generator, n_species: int) -> None:
        self.rng = rng
        self.keys = _Keys(rng, n_species * 2 + 500)
        self.genus_keys: dict[str, int] = {}
        self.genus_author: dict[str, str] = {}
        self.taxa: list[Usage] = []
        self.synonyms: list[Usage] = []

    def genus_key(self, genus: str, kingdom: str) -> int:
        if genus not in self.genus_keys:
            self.genus_keys[genus] = (
                1_000_000 + len(self.genus_keys) * 37 + int(self.rng.integers(0, 30))
            )
            self.genus_author[genus] = author(self.rng, kingdom)
        return self.genus_keys[genus]

    def add_species(
        self, family: int, genus: str, epithet: str, authorship: str, status: str
    ) -> Usage:
        canonical, sci = _species_name(genus, epithet, authorship)
        key = self.keys.take()
        usage = Usage(
            key=key,
            rank="SPECIES",
            canonical=canonical,
            scientific_name=sci,
            authorship=authorship,
            status=status,
            family=family,
            genus=genus,
            genus_key=self.genus_key(genus, FAMILIES[family][0]),
            species=canonical,
            species_key=key,
            hybrid=epithet.startswith("× "),
        )
        self.taxa.append(usage)
        return usage

    def add_infraspecific(self, species: Usage, rank: str, epithet: str, authorship: str) -> Usage:
        marker = "" if species.kingdom == "Animalia" else _MARKER[rank]
        canonical = f"{species.canonical} {epithet}"
        sci = " ".join(p for p in (species.canonical, marker, epithet, authorship) if p)
        usage = Usage(
            key=self.keys.take(),
            rank=rank,
            canonical=canonical,
            scientific_name=sci,
            authorship=authorship,
            status="ACCEPTED",
            family=species.family,
            genus=species.genus,
            genus_key=species.genus_key,
            species=species.canonical,
            species_key=species.species_key,
            infraspecific_epithet=epithet,
        )
        self.taxa.append(usage)
        return usage

    def add_synonym(self, accepted: Usage, canonical: str, sci: str, authorship: str) -> Usage:
        usage = Usage(
            key=self.keys.take(),
            # A binomial is a species-rank name whatever it is a synonym of.
            rank="SPECIES" if len(canonical.split(" ")) == 2 else accepted.rank,
            canonical=canonical,
            scientific_name=sci,
            authorship=authorship,
            status="SYNONYM",
            family=accepted.family,
            genus=accepted.genus,
            genus_key=accepted.genus_key,
            species=accepted.species,
            species_key=accepted.species_key,
            accepted=accepted,
        )
        accepted.synonym_names.append(canonical)
        self.synonyms.append(usage)
        return usage

    def backbone(self) -> Backbone:
        return Backbone(
            _higher_keys(), self.taxa, self.synonyms, self.genus_keys, self.genus_author
        )


def build_backbone(rng: np.random.Generator, n_species: int = 1400) -> Backbone:
    """Real species plus `n_species` generated ones, some with subspecies/varieties/forms.

    Each step draws from `rng` in turn, so the same seed gives the same backbone."""
    builder = _BackboneBuilder(rng, n_species)
    _add_real_taxa(builder)
    _add_generated_species(builder, n_species)
    _add_synonyms(builder)
    return builder.backbone()


def _add_real_taxa(builder: _BackboneBuilder) -> None:
    for family, genus, epithet, authorship in REAL_SPECIES:
        builder.add_species(_FAMILY_INDEX[family], genus, epithet, authorship, "ACCEPTED")
    by_name = {u.canonical: u for u in builder.taxa}
    for species, rank, epithet, authorship in REAL_INFRASPECIFIC:
        builder.add_infraspecific(by_name[species], rank, epithet, authorship)


def _add_generated_species(builder: _BackboneBuilder, n_species: int) -> None:
    """Unique genus names per kingdom, several species per genus."""
    rng = builder.rng
    kingdoms = list(_KINGDOM_SHARE)
    counts = rng.multinomial(n_species, [_KINGDOM_SHARE[k] for k in kingdoms])
    taken = {u.genus for u in builder.taxa}
    for kingdom, count in zip(kingdoms, counts, strict=True):
        families = [i for i, f in enumerate(FAMILIES) if f[0] == kingdom]
        combos = list(itertools.product(GENUS_PREFIX, GENUS_MIDDLE, GENUS_SUFFIX[kingdom]))
        order = rng.permutation(len(combos))
        made = 0
        for c in order:
            if made >= count:
                break
            genus = "".join(combos[c])
            if genus in taken:
                continue
            taken.add(genus)
            family = int(rng.choice(families))
            n_here = min(int(rng.integers(1, 6)), count - made)
            for epithet in rng.choice(EPITHETS, size=n_here, replace=False):
                _add_generated(builder, kingdom, family, genus, str(epithet))
                made += 1


def _add_generated(
    builder: _BackboneBuilder, kingdom: str, family: int, genus: str, epithet: str
) -> None:
    """One generated species (now and then doubtful or a hybrid), sometimes with
    subspecies, varieties or forms."""
    rng = builder.rng
    status = "DOUBTFUL" if rng.random() < 0.01 else "ACCEPTED"
    hybrid = kingdom == "Plantae" and rng.random() < 0.01
    ep = f"× {epithet}" if hybrid else epithet
    species = builder.add_species(family, genus, ep, author(rng, kingdom), status)
    if kingdom in ("Plantae", "Animalia") and not hybrid and rng.random() < 0.07:
        _add_generated_infraspecific(builder, species, kingdom)


def _add_generated_infraspecific(builder: _BackboneBuilder, species: Usage, kingdom: str) -> None:
    # One uniform draw per rank whatever the weights: INFRASUBSPECIFIC_NAME
    # took half of INFRASPECIFIC_NAME's share and every other draw stayed.
    rng = builder.rng
    ranks = tuple(_MARKER)
    weights = (0.4, 0.4, 0.1, 0.05, 0.05) if kingdom == "Plantae" else (1, 0, 0, 0, 0)
    for _ in range(int(rng.integers(1, 3))):
        rank = str(rng.choice(ranks, p=np.array(weights) / sum(weights)))
        infra = str(rng.choice(EPITHETS))
        if f"{species.canonical} {infra}" in {t.canonical for t in builder.taxa[-3:]}:
            continue  # the same epithet drawn twice for this species
        builder.add_infraspecific(species, rank, infra, author(rng, kingdom))


def _add_synonyms(builder: _BackboneBuilder) -> None:
    """The real synonyms, then generated ones: an older genus name for the same epithet."""
    rng = builder.rng
    by_name = {u.canonical: u for u in builder.taxa}
    for riis_name, sci, accepted_name in REAL_SYNONYMS:
        canonical = riis_name.replace(" X ", " × ")
        builder.add_synonym(by_name[accepted_name], canonical, sci, sci[len(canonical) :].strip())
    candidates = [u for u in builder.taxa if u.rank == "SPECIES" and u.status == "ACCEPTED"]
    candidates = [u for u in candidates if not u.hybrid and u.genus not in _REAL_GENERA]
    for i in rng.choice(len(candidates), size=40, replace=False):
        accepted = candidates[int(i)]
        old_genus = f"{rng.choice(GENUS_PREFIX)}{rng.choice(('thera', 'ma', 'lus', 'nia'))}"
        epithet = accepted.canonical.split(" ", 1)[1]
        authorship = author(rng, accepted.kingdom)
        canonical, sci = _species_name(old_genus, epithet, authorship)
        if canonical in by_name or any(s.canonical == canonical for s in builder.synonyms):
            continue
        builder.add_synonym(accepted, canonical, sci, authorship)


_REAL_GENERA = frozenset(s[1] for s in REAL_SPECIES)


def match_body(
    backbone: Backbone, usage: Usage, match_type: str = "EXACT", confidence: int = 98
) -> dict[str, Any]:
    """The JSON body GBIF's /v1/species/match returns for a name that matched `usage`.

    Field names and order follow real v1 responses. For a synonym the classification (genus
    to kingdom, speciesKey) is the accepted taxon's, as GBIF returns it; `accepted` (the
    accepted scientificName) is added for convenience and is not always present in v1.
    """
    target = usage.accepted or usage
    kingdom, phylum, cls, order, family = FAMILIES[target.family]
    body: dict[str, Any] = {"usageKey": usage.key}
    if usage.accepted is not None:
        body["acceptedUsageKey"] = usage.accepted.key
    body.update(
        {
            "scientificName": usage.scientific_name,
            "canonicalName": usage.canonical,
            "rank": usage.rank,
            "status": usage.status,
            "confidence": confidence,
            "matchType": match_type,
            "kingdom": kingdom,
            "phylum": phylum,
            "order": order,
            "family": family,
            "genus": target.genus,
            "species": target.species,
            "kingdomKey": backbone.higher_key("kingdom", kingdom),
            "phylumKey": backbone.higher_key("phylum", phylum),
            "classKey": backbone.higher_key("class", cls),
            "orderKey": backbone.higher_key("order", order),
            "familyKey": backbone.higher_key("family", family),
            "genusKey": target.genus_key,
            "speciesKey": target.species_key,
            "synonym": usage.accepted is not None,
            "class": cls,
        }
    )
    if usage.accepted is not None:
        body["accepted"] = usage.accepted.scientific_name
    return body


def resolved_key(body: dict[str, Any]) -> int | None:
    """The accepted backbone key a match body stands for (None when GBIF found nothing).

    Written out here rather than taken from bisonflow.gbif.species_api: the sample's expected
    annotation is the oracle the client's interpretation is tested against.
    """
    if body.get("matchType", "NONE") in ("NONE", "HIGHERRANK"):
        return None
    return int(body["acceptedUsageKey"] if body.get("synonym") else body["usageKey"])
