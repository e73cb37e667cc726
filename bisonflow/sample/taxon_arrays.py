"""Per occurrence taxon, the values a GBIF record of it copies, as arrays and string pools.

A record names its taxon as GBIF publishes it: `taxonkey` and `scientificname` are the
usage of the name the record was published under ("corresponding to scientificName", GBIF's
occurrence download terms), `species` / `specieskey` the accepted species. So a record of
an accepted species published under a synonym carries the synonym's key and name, and the
accepted species' name and key; a subspecies record carries the subspecies' key, its rank,
and its species' name and key.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from bisonflow.sample.taxa import FAMILIES, Backbone, Usage


def string_pool(values: Sequence[str | None]) -> pa.Array:
    return pa.array(list(values), pa.string())


class TaxonArrays:
    """Index = position in backbone.occurrence_taxa."""

    def __init__(self, backbone: Backbone) -> None:
        taxa: list[Usage] = backbone.occurrence_taxa
        synonym_of: dict[int, Usage] = {}
        for usage in backbone.synonyms:  # the first synonym of each accepted taxon
            assert usage.accepted is not None
            synonym_of.setdefault(usage.accepted.key, usage)
        synonyms = [synonym_of.get(t.key) for t in taxa]
        self.n = len(taxa)
        self.key = np.array([t.key for t in taxa], dtype=np.int64)
        self.species_key = np.array([t.species_key for t in taxa], dtype=np.int64)
        self.genus_key = np.array([t.genus_key for t in taxa], dtype=np.int64)
        self.family_key = np.array(
            [backbone.higher_key("family", FAMILIES[t.family][4]) for t in taxa], dtype=np.int64
        )
        self.family = np.array([t.family for t in taxa], dtype=np.int64)
        self.has_synonym = np.array([s is not None for s in synonyms])
        self.synonym_key = np.array([s.key if s else -1 for s in synonyms], dtype=np.int64)
        self.rank = string_pool([t.rank for t in taxa])
        self.genus = string_pool([t.genus for t in taxa])
        self.species = string_pool([t.species for t in taxa])
        self.infra = string_pool([t.infraspecific_epithet for t in taxa])
        self.scientific = string_pool([t.scientific_name for t in taxa])
        self.canonical = string_pool([t.canonical for t in taxa])
        self.authorship = string_pool([t.authorship or None for t in taxa])
        self.synonym = string_pool([s.canonical if s else None for s in synonyms])
        self.synonym_rank = string_pool([s.rank if s else None for s in synonyms])
        self.synonym_scientific = string_pool([s.scientific_name if s else None for s in synonyms])
        self.synonym_authorship = string_pool(
            [s.authorship or None if s else None for s in synonyms]
        )
        self.genus_scientific = string_pool(
            [f"{t.genus} {backbone.genus_authors[t.genus]}" for t in taxa]
        )
        self.kingdom = string_pool([f[0] for f in FAMILIES])
        self.phylum = string_pool([f[1] for f in FAMILIES])
        self.cls = string_pool([f[2] for f in FAMILIES])
        self.order = string_pool([f[3] for f in FAMILIES])
        self.family_name = string_pool([f[4] for f in FAMILIES])
