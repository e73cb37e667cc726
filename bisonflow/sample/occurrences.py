"""GBIF occurrence records, generated column by column with numpy and pyarrow.

A quarter of a million rows must take well under a few seconds, so nothing here loops over
records in Python: every column is drawn as an array (what each record is, stage by stage:
bisonflow.sample.occurrence_draws), and strings come from small pools through `take`. Each
record is either valid for the BISON subset or fails exactly one subset rule (the default
rules, bisonflow.sql.subset_rules.DEFAULT_SUBSET_RULES), so the number of kept records, and
each drop kind, is known.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bisonflow.dimensions import ASSESSMENTS, PRESUMED_NATIVE
from bisonflow.riis.columns import ASSESSMENT_OF_DEGREE, RIIS_REGIONS
from bisonflow.sample.counties import Counties
from bisonflow.sample.listings import Listings
from bisonflow.sample.occurrence_draws import (
    ABROAD,
    BASIS,
    DROP_KINDS,
    Counts,
    Dates,
    Kinds,
    MultiValued,
    Places,
    Sources,
    Taxa,
    Where,
    draw_abundance,
    draw_counts,
    draw_dates,
    draw_kinds,
    draw_multi_valued,
    draw_places,
    draw_sources,
    draw_taxa,
)
from bisonflow.sample.publishers import (
    DATASETS,
    GEO_ISSUES,
    LOCALITIES,
    OTHER_ISSUES,
    PEOPLE,
    UNCERTAINTY_METRES,
)
from bisonflow.sample.riis import DEGREES
from bisonflow.sample.schema import conform
from bisonflow.sample.taxon_arrays import TaxonArrays, string_pool

#: GBIF ids of the sample start above this (real ids are in the billions too).
FIRST_GBIFID = 4_000_000_000


@dataclass(frozen=True)
class Occurrences:
    table: pa.Table
    facts: dict[str, Any]  # counts that add up over chunks (see merge_facts)
    valid_taxonkeys: np.ndarray  # distinct taxon keys of the valid records
    valid_specieskeys: np.ndarray  # distinct accepted species keys of the valid records
    last_gbifid: int  # the next chunk's ids start after it


_pool = string_pool


def _take(pool: pa.Array, idx: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    """pool[idx] as an arrow array, null where `null` is True."""
    return pool.take(pa.array(idx, pa.int64(), mask=null))


def _num(values: np.ndarray, typ: pa.DataType, null: np.ndarray | None = None) -> pa.Array:
    return pa.array(values, typ, mask=null)


def _list(pool: pa.Array, counts: np.ndarray, idx: np.ndarray) -> pa.Array:
    """A list<string> column: record i holds counts[i] items, taken from pool by idx."""
    offsets = np.zeros(counts.size + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), pool.take(pa.array(idx, pa.int64())))


def _join(*parts: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def generate_occurrences(
    rng: np.random.Generator,
    n: int,
    snapshot: dt.date,
    tx: TaxonArrays,
    places: Places,
    listings: Listings,
    first_gbifid: int = FIRST_GBIFID,
) -> Occurrences:
    """All records as one table in the snapshot month's schema, plus facts for `expected`.

    The draws come from one stream in a fixed order (each step below draws its share before
    the next starts), so a sample is the same for the same seed byte for byte."""
    abundance = draw_abundance(rng, tx.n)
    kinds = draw_kinds(rng, n)
    taxa = draw_taxa(rng, n, tx, listings, kinds, abundance)
    where = draw_places(rng, n, places, kinds, tx.species_key[taxa.taxon])
    source = draw_sources(rng, n, kinds.basis_idx, first_gbifid)
    dates = draw_dates(rng, n, snapshot)
    multi = draw_multi_valued(rng, n, source.is_obs)
    names = _draw_names(rng, n, tx, taxa, listings)
    counts = draw_counts(rng, n, kinds, source.is_obs)
    columns = _taxon_columns(tx, taxa, names)
    columns |= _place_columns(rng, n, places.counties, kinds, where)
    columns |= _date_columns(dates)
    columns |= _record_columns(rng, n, kinds, source, multi, counts)
    table = conform(columns, snapshot)  # the types GBIF published for this month

    valid = kinds.kind == 0
    facts = _facts(
        places, listings, kinds.kind, valid, where.county, where.region, where.area,
        names.specieskey, names.taxonkey,
    )  # fmt: skip
    facts["non_us_by_country"] = _tally(
        np.array(places.counties.country + [a[0] for a in ABROAD])[where.state_idx[kinds.foreign]]
    )
    return Occurrences(
        table,
        facts,
        np.unique(names.taxonkey[valid]),
        np.unique(names.specieskey[valid]),
        int(source.gbifid[-1]),
    )


class _Names(NamedTuple):
    """The taxon-derived strings and keys as GBIF interprets a record's name."""

    rank: pa.Array
    scientific: pa.Array
    verbatim: pa.Array
    verbatim_author: pa.Array
    taxonkey: np.ndarray
    specieskey: np.ndarray
    means_idx: np.ndarray  # establishmentMeans: 0 introduced, 1 native
    no_means: np.ndarray


def _draw_names(
    rng: np.random.Generator, n: int, tx: TaxonArrays, taxa: Taxa, listings: Listings
) -> _Names:
    taxon, fam, higher = taxa.taxon, taxa.fam, taxa.higher
    synonym, to_genus, to_family = pa.array(taxa.use_synonym), taxa.to_genus, taxa.to_family
    rank = pc.if_else(
        pa.array(to_family),
        pa.scalar("FAMILY"),
        pc.if_else(
            pa.array(to_genus),
            pa.scalar("GENUS"),
            pc.if_else(synonym, _take(tx.synonym_rank, taxon), _take(tx.rank, taxon)),
        ),
    )
    # A synonym-named record: the synonym's key and name, the accepted species (GBIF).
    named = pc.if_else(synonym, _take(tx.synonym_scientific, taxon), _take(tx.scientific, taxon))
    scientific = pc.if_else(
        pa.array(to_family),
        _take(tx.family_name, fam),
        pc.if_else(pa.array(to_genus), _take(tx.genus_scientific, taxon), named),
    )
    verbatim = pc.if_else(synonym, _take(tx.synonym, taxon), _take(tx.canonical, taxon))
    verbatim = pc.if_else(pa.array(to_genus), _take(tx.genus, taxon), verbatim)
    verbatim = pc.if_else(pa.array(to_family), _take(tx.family_name, fam), verbatim)
    verbatim_author = pc.if_else(
        synonym, _take(tx.synonym_authorship, taxon), _take(tx.authorship, taxon)
    )
    verbatim_author = pc.if_else(
        pa.array(higher | (rng.random(n) < 0.5)), pa.scalar(None, pa.string()), verbatim_author
    )
    own_key = np.where(taxa.use_synonym, tx.synonym_key[taxon], tx.key[taxon])
    taxonkey = np.where(
        to_family, tx.family_key[fam], np.where(to_genus, tx.genus_key[taxon], own_key)
    )
    specieskey = tx.species_key[taxon]
    listed_here = listings.listed_anywhere(np.where(higher, -1, specieskey), taxonkey)
    means_idx = np.where(listed_here, 0, 1)
    no_means = rng.random(n) >= np.where(listed_here, 0.10, 0.03)
    return _Names(
        rank, scientific, verbatim, verbatim_author, taxonkey, specieskey, means_idx, no_means
    )


def _taxon_columns(tx: TaxonArrays, taxa: Taxa, names: _Names) -> dict[str, pa.Array]:
    taxon, fam, higher = taxa.taxon, taxa.fam, taxa.higher
    return {
        "kingdom": _take(tx.kingdom, fam),
        "phylum": _take(tx.phylum, fam),
        "class": _take(tx.cls, fam),
        "order": _take(tx.order, fam),
        "family": _take(tx.family_name, fam),
        "genus": _take(tx.genus, taxon, taxa.to_family),
        "species": _take(tx.species, taxon, higher),
        "infraspecificepithet": _take(tx.infra, taxon, higher | taxa.use_synonym),
        "taxonrank": names.rank,
        "scientificname": names.scientific,
        "verbatimscientificname": names.verbatim,
        "verbatimscientificnameauthorship": names.verbatim_author,
        "taxonkey": _num(names.taxonkey, pa.int32()),
        "specieskey": _num(names.specieskey, pa.int32(), higher),
        "establishmentmeans": _take(
            _pool(["introduced", "native"]), names.means_idx, names.no_means
        ),
    }


def _place_columns(
    rng: np.random.Generator, n: int, counties: Counties, kinds: Kinds, where: Where
) -> dict[str, pa.Array]:
    no_coords = kinds.kind == 2
    elevation = np.round(rng.uniform(0, 3000, size=n), 1)
    no_elev = rng.random(n) < 0.8
    state_names = _pool(counties.state_name + [a[1] for a in ABROAD])
    country = _take(_pool(counties.country + [a[0] for a in ABROAD]), where.state_idx)
    return {
        "countrycode": country,
        "locality": _take(
            _pool(LOCALITIES), rng.integers(0, len(LOCALITIES), size=n), rng.random(n) < 0.7
        ),
        "stateprovince": _take(state_names, where.state_idx),
        "decimallatitude": _num(where.lat, pa.float64(), no_coords),
        "decimallongitude": _num(where.lon, pa.float64(), no_coords),
        "coordinateuncertaintyinmeters": _num(
            UNCERTAINTY_METRES[rng.integers(0, UNCERTAINTY_METRES.size, size=n)],
            pa.float64(),
            no_coords | (rng.random(n) < 0.3),
        ),
        "coordinateprecision": _num(
            np.array([0.0001, 0.001, 0.01])[rng.integers(0, 3, size=n)],
            pa.float64(),
            rng.random(n) < 0.95,
        ),
        "elevation": _num(elevation, pa.float64(), no_elev),
        "elevationaccuracy": _num(
            np.array([0.0, 1.0, 5.0, 10.0])[rng.integers(0, 4, size=n)], pa.float64(), no_elev
        ),
        "depth": pa.nulls(n, pa.float64()),
        "depthaccuracy": pa.nulls(n, pa.float64()),
    }


def _date_columns(dates: Dates) -> dict[str, pa.Array]:
    no_date = dates.no_date
    return {
        "eventdate": _num(dates.event, pa.timestamp("us"), no_date),
        "day": _num(dates.days, pa.int32(), no_date),
        "month": _num(dates.months, pa.int32(), no_date),
        "year": _num(dates.years, pa.int32(), no_date),
        "dateidentified": _num(
            dates.identified.astype("datetime64[us]"), pa.timestamp("us"), dates.no_ident
        ),
        "lastinterpreted": _num(dates.interpreted, pa.timestamp("us")),
    }


def _record_columns(
    rng: np.random.Generator,
    n: int,
    kinds: Kinds,
    source: Sources,
    multi: MultiValued,
    counts: Counts,
) -> dict[str, pa.Array]:
    dataset, basis_idx = source.dataset, kinds.basis_idx
    people = _pool(PEOPLE)
    n_rec, n_ident, media_counts, type_counts = (
        multi.n_rec, multi.n_ident, multi.media_counts, multi.type_counts,
    )  # fmt: skip
    machine = BASIS.index("MACHINE_OBSERVATION")
    return {
        "gbifid": pa.array(source.gbifid).cast(pa.string()),
        "datasetkey": _take(_pool(source.dataset_keys), dataset),
        "occurrenceid": _join(
            _take(_pool([d.occurrence_prefix for d in DATASETS]), dataset), source.catalog_str
        ),
        "occurrencestatus": _take(_pool(["PRESENT", "ABSENT"]), counts.absent.astype(np.int64)),
        "individualcount": _num(counts.count_values, pa.int32(), counts.no_count),
        "publishingorgkey": _take(_pool(source.org_keys), dataset),
        "basisofrecord": _take(_pool(BASIS), basis_idx),
        "institutioncode": _take(_pool([d.institution for d in DATASETS]), dataset),
        "collectioncode": _take(_pool([d.collection for d in DATASETS]), dataset),
        "catalognumber": _join(
            _take(_pool([d.catalog_prefix for d in DATASETS]), dataset), source.catalog_str
        ),
        "recordnumber": _num(
            rng.integers(1, 20000, size=n), pa.int64(), ~counts.specimen_number
        ).cast(pa.string()),
        "identifiedby": _list(people, n_ident, rng.integers(0, len(PEOPLE), size=n_ident.sum())),
        "license": _take(_pool([d.license for d in DATASETS]), dataset),
        "rightsholder": _take(_pool([d.rightsholder for d in DATASETS]), dataset),
        "recordedby": _list(people, n_rec, rng.integers(0, len(PEOPLE), size=n_rec.sum())),
        "typestatus": _list(
            _pool(("HOLOTYPE", "PARATYPE")), type_counts, rng.integers(0, 2, type_counts.sum())
        ),
        "mediatype": _list(
            _pool(("StillImage", "Sound")),
            media_counts,
            (basis_idx[media_counts.astype(bool)] == machine).astype(np.int64),
        ),
        "issue": _list(_pool(GEO_ISSUES + OTHER_ISSUES), multi.n_issue, multi.issue_idx),
    }


def _facts(
    places: Places,
    listings: Listings,
    kind: np.ndarray,
    valid: np.ndarray,
    county: np.ndarray,
    region: np.ndarray,
    area: np.ndarray,
    specieskey: np.ndarray,
    taxonkey: np.ndarray,
) -> dict[str, Any]:
    """What the workflow should find in the kept records, by `listings`' rule."""
    counties = places.counties
    degree = listings.degree(region[valid], specieskey[valid], taxonkey[valid])
    assessment = {PRESUMED_NATIVE: int((degree < 0).sum())}
    for d, name in enumerate(DEGREES):
        assessment[name] = int((degree == d).sum())
    by_assessment = dict.fromkeys(ASSESSMENTS, 0)
    for name, count in assessment.items():
        by_assessment[ASSESSMENT_OF_DEGREE.get(name, name)] += count  # as the SQL maps it
    place = county[valid]
    in_area = area[valid]
    return {
        "us_valid_records": int(valid.sum()),
        "dropped": {DROP_KINDS[k]: int((kind == k).sum()) for k in range(1, len(DROP_KINDS))},
        "valid_by_state": _tally(np.array(counties.stusps)[place]),
        "valid_by_region": {r: int((region[valid] == i).sum()) for i, r in enumerate(RIIS_REGIONS)},
        "valid_by_county": _tally(np.array(counties.geoid)[place]),
        "valid_riis_taxon_records": int(
            listings.listed_anywhere(specieskey[valid], taxonkey[valid]).sum()
        ),
        "assessment_counts": assessment,
        "valid_by_assessment": by_assessment,
        "valid_in_aiannh": int((in_area >= 0).sum()),
        "valid_by_aiannh": _tally(np.array(places.aiannh_geoid)[in_area[in_area >= 0]]),
    }


def merge_facts(into: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    """Add the counts of `more` to `into` (nested dicts of integers), in place."""
    for key, value in more.items():
        if isinstance(value, dict):
            merge_facts(into.setdefault(key, {}), value)
        else:
            into[key] = into.get(key, 0) + value
    return into


def _tally(labels: np.ndarray) -> dict[str, int]:
    values, counts = np.unique(labels, return_counts=True)
    return {str(v): int(c) for v, c in zip(values, counts, strict=True)}
