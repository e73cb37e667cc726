"""The pieces the sample's made-up names are built from: genus syllables, epithets, authors.

Only the sample's generated taxa use them (bisonflow.sample.taxa); the real species, their
families and their synonyms are written out in taxa.py with their sources.
"""

from __future__ import annotations

import numpy as np

GENUS_PREFIX = (
    "Acro", "Brachy", "Calli", "Dasy", "Eri", "Glypto", "Helio", "Lepto", "Macro", "Mega",
    "Micro", "Neo", "Oxy", "Pachy", "Phyllo", "Platy", "Pseudo", "Rhodo", "Sclero", "Steno",
    "Tricho", "Xantho", "Zygo", "Chloro", "Cyano", "Melano", "Ortho", "Poly", "Ptero", "Schizo",
    "Hydro", "Litho", "Andro", "Hemi", "Meso", "Peri", "Tetra", "Amphi", "Chryso", "Dendro",
)  # fmt: skip
GENUS_MIDDLE = ("", "cera", "lo", "ne", "ri", "sta", "the", "mo")
GENUS_SUFFIX = {
    "Plantae": ("anthus", "carpus", "phyllum", "ia", "dendron", "ella", "opsis", "aria", "ago"),
    "Animalia": ("ops", "odes", "ura", "myia", "ornis", "odon", "ius", "oides", "ocera", "ates"),
    "Fungi": ("myces", "ospora", "ella", "otrichum"),
    "Chromista": ("phthora", "ococcus", "onema"),
    "Protozoa": ("amoeba", "omonas"),
    "Bacteria": ("bacter", "ovibrio"),
}
EPITHETS = (
    "alba", "americana", "angustifolia", "arvensis", "australis", "borealis", "californica",
    "canadensis", "chinensis", "communis", "crispa", "europaea", "elegans", "fragilis", "glabra",
    "gracilis", "grandis", "hirsuta", "indica", "japonica", "lanceolata", "latifolia",
    "longifolia", "lutea", "major", "maritima", "minor", "montana", "nigra", "occidentalis",
    "officinalis", "orientalis", "palustris", "parviflora", "pratensis", "pubescens", "pusilla",
    "repens", "rigida", "rubra", "sativa", "sinensis", "speciosa", "sylvestris", "tenuis",
    "tomentosa", "vulgaris", "virginiana", "viridis", "floridana", "texana", "hawaiiensis",
    "alaskana", "rosea", "aurea", "ferox", "agilis", "velox", "maculata", "punctata",
    "striata", "fasciata", "cinerea", "fusca", "rufa", "minima", "maxima", "robusta", "obscura",
    "simplex", "variabilis", "multiflora", "serrata", "spinosa", "undulata", "cornuta", "pilosa",
    "ovata", "acuta", "reticulata",
)  # fmt: skip
BOTANISTS = (
    "L.", "Michx.", "Nutt.", "Torr. & A.Gray", "A.Gray", "Willd.", "Lam.", "DC.", "Benth.",
    "Hook.", "Pursh", "Raf.", "Sw.", "Thunb.", "Blume", "Kunth", "Greene", "Engelm.",
    "Siebold & Zucc.", "Mill.", "Desf.", "Poir.", "Sm.", "Wall.",
)  # fmt: skip
ZOOLOGISTS = (
    "Linnaeus", "Say", "Fabricius", "LeConte", "Walker", "Wagler", "Baird", "Cope", "Gray",
    "Lesson", "Pallas", "Motschulsky", "Mayr", "Latreille", "Gmelin", "Cuvier", "Rafinesque",
    "Agassiz", "Horn", "Casey", "Bates", "Linsley", "Osten Sacken", "Dana",
)  # fmt: skip
MYCOLOGISTS = ("Fr.", "(Pers.) Fr.", "Berk. & M.A.Curtis", "Peck", "(Schwein.) Fr.", "Sacc.")


def author(rng: np.random.Generator, kingdom: str) -> str:
    """A made-up author of a name in `kingdom`, in its code's style: a botanist's
    abbreviation, or a zoologist's name and year (in parentheses when the species has
    moved genus since)."""
    if kingdom == "Plantae":
        return str(rng.choice(BOTANISTS))
    if kingdom in ("Fungi", "Chromista", "Protozoa", "Bacteria"):
        return str(rng.choice(MYCOLOGISTS))
    name = f"{rng.choice(ZOOLOGISTS)}, {int(rng.integers(1758, 1990))}"
    return f"({name})" if rng.random() < 0.35 else name
