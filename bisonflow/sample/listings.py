"""Which sample records the US-RIIS list marks, by the workflow's record-side rule.

The oracle for the expected facts, written from the rule rather than from the SQL
(bisonflow.sql.assessment), so the two can disagree and a test sees it:

- a listing whose name matched a usage of rank SPECIES whose accepted taxon is that species
  (the match's `rank` and `speciesKey`, the annotated list's gbif_res_rank and
  gbif_res_specieskey) marks every record whose
  `specieskey` is the listing's accepted key: the species itself, its subspecies, varieties
  and forms, and records published under a synonym (GBIF's `specieskey` is the accepted
  species of the record's name);
- a listing below species (a subspecies, variety, ...) marks records whose `taxonkey` is the
  listing's accepted key, or the usage key of the name as the list writes it (when the list
  writes a synonym of the subspecies, records published under that synonym carry it);
- only listings of the record's own region count (riis_region: AK, HI, or L48 for the other
  48 states and DC; records in Puerto Rico and the island territories have none), and where
  several match, the most severe tier wins: widespread invasive, then invasive, then
  established (DEGREES_OF_ESTABLISHMENT order); no match is presumed native.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bisonflow.riis.columns import RIIS_REGIONS
from bisonflow.sample.riis import DEGREES, RiisRow
from bisonflow.sample.taxa import Backbone

#: A (region, key) pair as one integer: region * _SCALE + key (keys are below 10^9).
_SCALE = 10**9


@dataclass(frozen=True)
class _Table:
    """Sorted (region, key) codes and the most severe degree index listed for each."""

    codes: np.ndarray
    degree: np.ndarray

    @classmethod
    def of(cls, entries: dict[int, int]) -> _Table:
        codes = np.array(sorted(entries), dtype=np.int64)
        return cls(codes, np.array([entries[c] for c in codes.tolist()], dtype=np.int64))

    def lookup(self, region: np.ndarray, key: np.ndarray) -> np.ndarray:
        """Degree index per (region, key), -1 where nothing is listed."""
        if self.codes.size == 0:
            return np.full(key.size, -1, dtype=np.int64)
        code = region * _SCALE + key
        at = np.clip(np.searchsorted(self.codes, code), 0, self.codes.size - 1)
        hit = (self.codes[at] == code) & (region >= 0)
        return np.where(hit, self.degree[at], -1)


class Listings:
    """The sample list's rows, split by the rank their names resolve to."""

    def __init__(self, backbone: Backbone, rows: list[RiisRow]) -> None:
        species_of = {u.key: u.species_key for u in backbone.occurrence_taxa}
        by_species: dict[int, int] = {}
        by_taxon: dict[int, int] = {}
        #: species key -> regions where it, or a taxon below it, is listed
        self.species_regions: dict[int, set[int]] = {}
        for row in rows:
            key = row.taxon.key
            if key is None:
                continue
            region = RIIS_REGIONS.index(row.locality)
            degree = DEGREES.index(row.degree)
            match = row.taxon.match
            if match.get("rank") == "SPECIES" and match.get("speciesKey") == key:
                keys, table = {key}, by_species
            else:
                keys, table = {key, int(row.taxon.match["usageKey"])}, by_taxon
            for k in keys:
                code = region * _SCALE + k
                table[code] = max(table.get(code, -1), degree)
            self.species_regions.setdefault(species_of[key], set()).add(region)
        #: usage keys of the listed names that are synonyms (what records published under
        #: them carry as taxonkey)
        self.synonym_usage_keys = np.array(
            sorted({int(r.taxon.match["usageKey"]) for r in rows if r.taxon.match.get("synonym")}),
            dtype=np.int64,
        )
        self._species = _Table.of(by_species)
        self._taxon = _Table.of(by_taxon)
        self._any_species = np.unique(self._species.codes % _SCALE)
        self._any_taxon = np.unique(self._taxon.codes % _SCALE)

    def degree(
        self, region: np.ndarray, species_key: np.ndarray, taxon_key: np.ndarray
    ) -> np.ndarray:
        """The degree index (into DEGREES) marking each record, -1 for presumed native."""
        return np.maximum(
            self._species.lookup(region, species_key), self._taxon.lookup(region, taxon_key)
        )

    def listed_anywhere(self, species_key: np.ndarray, taxon_key: np.ndarray) -> np.ndarray:
        """Whether some listing, in any region, would mark a record of these keys."""
        return np.isin(species_key, self._any_species) | np.isin(taxon_key, self._any_taxon)
