"""GBIF occurrence records, generated column by column with numpy and pyarrow.

A quarter of a million rows must take well under a few seconds, so nothing here loops over
records in Python: every column is drawn as an array, and strings come from small pools
through `take`. Each record is either valid for the BISON subset or fails exactly one subset
rule (the default rules, bisonflow.sql.subset_rules.DEFAULT_SUBSET_RULES), so the number of kept
records, and each drop kind, is known.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bisonflow.dimensions import ASSESSMENTS, PRESUMED_NATIVE
from bisonflow.riis.columns import ASSESSMENT_OF_DEGREE, RIIS_REGIONS
from bisonflow.sample.counties import Counties
from bisonflow.sample.geography import PointPool
from bisonflow.sample.listings import Listings
from bisonflow.sample.publishers import (
    DATASETS,
    GEO_ISSUES,
    LOCALITIES,
    OTHER_ISSUES,
    PEOPLE,
    UNCERTAINTY_METRES,
)
from bisonflow.sample.ranges import Ranges
from bisonflow.sample.riis import DEGREES
from bisonflow.sample.schema import conform
from bisonflow.sample.taxon_arrays import TaxonArrays, string_pool
from bisonflow.sql.subset_rules import DEFAULT_SUBSET_RULES

#: Why a record is not in the BISON subset; 0 means it is kept. A record whose basisOfRecord
#: the subset leaves out is "excluded_basis_of_record" (so _BASIS_SHARE sets that share); the
#: others draw one kind with _KIND_SHARE.
DROP_KINDS: tuple[str, ...] = (
    "kept",
    "non_us_country",
    "null_coordinates",
    "higher_rank",
    "absent",
    "excluded_basis_of_record",
)
_KIND_SHARE = (0.925, 0.02, 0.02, 0.02, 0.015)
_EXCLUDED_BASIS_KIND = DROP_KINDS.index("excluded_basis_of_record")
#: Share of records of a taxon some US-RIIS listing marks (in some region: where, is its
#: range's business, `ranges`).
RIIS_SHARE = 0.2
#: Share of the records in a county that holds AIANNH areas moved to a point inside one of
#: them. Real AIANNH areas cover a few percent of the lower 48 and much of Alaska; with the
#: county pool points that fall into areas anyway, about 8% of records are in one.
AIANNH_SHARE = 0.12
#: Share of records published under a synonym, of taxa that have one.
SYNONYM_SHARE = 0.3
#: Share of records published under a name the US-RIIS lists as a synonym: by abundance
#: alone a small sample may have none, and every way of matching should have records.
LISTED_SYNONYM_SHARE = 0.003
#: Of the records outside the US, the share in Puerto Rico and the island territories
#: (GBIF's countrycode PR, VI, GU, AS, MP), the rest in Canada and Mexico.
TERRITORY_SHARE = 0.5
#: GBIF ids of the sample start above this (real ids are in the billions too).
FIRST_GBIFID = 4_000_000_000

#: Share of each GBIF basisOfRecord among the sample's records (made up, observations first
#: as in GBIF's US data). Whether a value is kept is the subset's rule, never this table's:
#: with BISON's rules MATERIAL_SAMPLE, MACHINE_OBSERVATION, MATERIAL_CITATION, fossils and
#: living specimens are generated and dropped.
_BASIS_SHARE = {
    "HUMAN_OBSERVATION": 0.69,
    "OBSERVATION": 0.03,
    "OCCURRENCE": 0.05,
    "PRESERVED_SPECIMEN": 0.145,
    "MATERIAL_SAMPLE": 0.03,
    "MACHINE_OBSERVATION": 0.03,
    "MATERIAL_CITATION": 0.01,
    "FOSSIL_SPECIMEN": 0.0075,
    "LIVING_SPECIMEN": 0.0075,
}
_BASIS = tuple(_BASIS_SHARE)
_BASIS_KEPT = np.array([b in DEFAULT_SUBSET_RULES.basis_of_record for b in _BASIS])
_OBSERVATION_BASIS = frozenset(
    {"HUMAN_OBSERVATION", "OBSERVATION", "OCCURRENCE", "MACHINE_OBSERVATION"}
)

#: Outside the US: (countrycode, stateprovince, (west, south, east, north)); no box touches a
#: US county (the border is at 49 N in the west, 31.3 N and beyond in the south-west).
_ABROAD = (
    ("CA", "British Columbia", (-123.5, 50.0, -116.0, 54.0)),
    ("CA", "Alberta", (-116.0, 50.0, -110.0, 55.0)),
    ("MX", "Sonora", (-112.0, 27.0, -109.5, 31.0)),
    ("MX", "Chihuahua", (-108.5, 26.0, -106.8, 30.0)),
)


@dataclass(frozen=True)
class Occurrences:
    table: pa.Table
    facts: dict[str, Any]  # counts that add up over chunks (see merge_facts)
    valid_taxonkeys: np.ndarray  # distinct taxon keys of the valid records
    valid_specieskeys: np.ndarray  # distinct accepted species keys of the valid records
    last_gbifid: int  # the next chunk's ids start after it


@dataclass(frozen=True)
class Places:
    """Everything a chunk needs to place records, computed once per sample."""

    counties: Counties
    points: PointPool  # per county
    aiannh_points: PointPool  # inside AIANNH areas, per county
    aiannh_geoid: list[str]
    ranges: Ranges
    territory_weight: np.ndarray  # per county: > 0 for Puerto Rico and the island territories


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


def _uuid(rng: np.random.Generator) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def _weighted(
    rng: np.random.Generator, candidates: np.ndarray, w: np.ndarray, size: int
) -> np.ndarray:
    """`size` draws from `candidates`, each with probability proportional to w[candidate]."""
    p = w[candidates]
    return rng.choice(candidates, size=size, p=p / p.sum())


def generate_occurrences(
    rng: np.random.Generator,
    n: int,
    snapshot: dt.date,
    tx: TaxonArrays,
    places: Places,
    listings: Listings,
    first_gbifid: int = FIRST_GBIFID,
) -> Occurrences:
    """All records as one table in the snapshot month's schema, plus facts for `expected`."""
    counties = places.counties
    # Zipf-like abundance in a random order: a few common taxa, a long tail of rare ones.
    abundance = np.empty(tx.n)
    abundance[rng.permutation(tx.n)] = 1.0 / (np.arange(tx.n) + 5.0) ** 0.9

    # --- what each record is --------------------------------------------------------------
    basis_idx = rng.choice(len(_BASIS), size=n, p=list(_BASIS_SHARE.values()))
    kind = rng.choice(len(_KIND_SHARE), size=n, p=_KIND_SHARE)
    kind[~_BASIS_KEPT[basis_idx]] = _EXCLUDED_BASIS_KIND
    foreign = kind == 1
    territory = foreign & (rng.random(n) < TERRITORY_SHARE)
    abroad = foreign & ~territory
    valid = kind == 0

    # --- which taxon ------------------------------------------------------------------------
    marked = listings.listed_anywhere(tx.species_key, tx.key)
    wants_riis = rng.random(n) < RIIS_SHARE
    taxon = np.empty(n, dtype=np.int64)
    taxon[wants_riis] = _weighted(rng, np.flatnonzero(marked), abundance, int(wants_riis.sum()))
    others = ~wants_riis
    taxon[others] = _weighted(rng, np.flatnonzero(~marked), abundance, int(others.sum()))
    named_as_listed = rng.random(n) < LISTED_SYNONYM_SHARE
    listed_synonym = np.flatnonzero(np.isin(tx.synonym_key, listings.synonym_usage_keys))
    taxon[named_as_listed] = rng.choice(listed_synonym, size=int(named_as_listed.sum()))
    higher = kind == 3
    to_family = higher & (rng.random(n) < 0.3)
    to_genus = higher & ~to_family
    fam = tx.family[taxon]
    use_synonym = tx.has_synonym[taxon] & (rng.random(n) < SYNONYM_SHARE)
    use_synonym = (use_synonym | named_as_listed) & ~higher

    # --- where ------------------------------------------------------------------------------
    species = np.searchsorted(places.ranges.species_keys, tx.species_key[taxon])
    county = places.ranges.draw(rng, species)
    w = places.territory_weight
    county[territory] = rng.choice(w.size, size=int(territory.sum()), p=w / w.sum())
    lon, lat, area = _pick(rng, places.points, county)
    move = ~foreign & (rng.random(n) < AIANNH_SHARE) & (places.aiannh_points.counts()[county] > 0)
    lon[move], lat[move], area[move] = _pick(rng, places.aiannh_points, county[move])
    which = rng.integers(0, len(_ABROAD), size=n)
    boxes = np.array([a[2] for a in _ABROAD])
    lon = np.where(abroad, np.round(rng.uniform(boxes[which, 0], boxes[which, 2]), 5), lon)
    lat = np.where(abroad, np.round(rng.uniform(boxes[which, 1], boxes[which, 3]), 5), lat)
    area[abroad] = -1
    no_coords = kind == 2
    region = np.where(abroad, -1, counties.region[county])

    # --- identifiers and provenance -------------------------------------------------------
    gbifid = first_gbifid + np.cumsum(rng.integers(1, 4000, size=n))
    basis_pool = _pool(_BASIS)
    observation_basis = np.array([b in _OBSERVATION_BASIS for b in _BASIS])
    is_obs = observation_basis[basis_idx]
    ds_w = np.array([d.weight for d in DATASETS])
    obs_ds = np.flatnonzero([d.observation for d in DATASETS])
    spec_ds = np.flatnonzero([not d.observation for d in DATASETS])
    dataset = np.where(is_obs, _weighted(rng, obs_ds, ds_w, n), _weighted(rng, spec_ds, ds_w, n))
    dataset_keys = [_uuid(rng) for _ in DATASETS]
    org_keys = [_uuid(rng) for _ in DATASETS]
    catalog = (10_000_000 + np.arange(n, dtype=np.int64) * 3 + rng.integers(0, 3, size=n)).astype(
        np.int64
    )
    catalog_str = pa.array(catalog).cast(pa.string())
    occ_prefix = _take(_pool([d.occurrence_prefix for d in DATASETS]), dataset)
    cat_prefix = _take(_pool([d.catalog_prefix for d in DATASETS]), dataset)

    # --- when -------------------------------------------------------------------------------
    snap = np.datetime64(snapshot.isoformat(), "D")
    max_days = (snapshot - dt.date(1900, 1, 1)).days
    recent = rng.random(n) < 0.85
    back = np.where(recent, rng.exponential(1800.0, size=n), rng.uniform(0, max_days, size=n))
    back = np.clip(back.astype(np.int64), 1, max_days)
    day_date = snap - back.astype("timedelta64[D]")
    has_time = rng.random(n) < 0.5
    seconds = np.where(has_time, rng.integers(6 * 3600, 20 * 3600, size=n), 0)
    event = day_date.astype("datetime64[us]") + (seconds * 1_000_000).astype("timedelta64[us]")
    no_date = rng.random(n) < 0.01
    years = day_date.astype("datetime64[Y]").astype(np.int64) + 1970
    months = day_date.astype("datetime64[M]").astype(np.int64) % 12 + 1
    days = (day_date - day_date.astype("datetime64[M]")).astype(np.int64) + 1
    ident_lag = rng.integers(0, 400, size=n).astype("timedelta64[D]")
    identified = np.minimum(day_date + ident_lag, snap - np.timedelta64(1, "D"))
    no_ident = no_date | (rng.random(n) < 0.45)
    interpreted = snap.astype("datetime64[us]") - (
        rng.integers(3600, 40 * 86400, size=n) * 1_000_000
    ).astype("timedelta64[us]")

    # --- multi-valued fields ----------------------------------------------------------------
    people = _pool(PEOPLE)
    n_rec = (rng.random(n) < 0.9).astype(np.int32)
    n_ident = (rng.random(n) < 0.6).astype(np.int32)
    media_counts = (is_obs & (rng.random(n) < 0.4)).astype(np.int32)
    type_counts = (~is_obs & (rng.random(n) < 0.005)).astype(np.int32)
    n_issue = rng.choice(3, size=n, p=[0.35, 0.45, 0.2]).astype(np.int32)
    issue_pool = _pool(GEO_ISSUES + OTHER_ISSUES)
    first_issue = rng.integers(0, len(GEO_ISSUES), size=n)
    second_issue = len(GEO_ISSUES) + rng.integers(0, len(OTHER_ISSUES), size=n)
    issue_idx = np.stack([first_issue, second_issue], axis=1)
    issue_idx = issue_idx[np.arange(2)[None, :] < n_issue[:, None]]

    # --- taxon-derived strings --------------------------------------------------------------
    rank = pc.if_else(
        pa.array(to_family),
        pa.scalar("FAMILY"),
        pc.if_else(
            pa.array(to_genus),
            pa.scalar("GENUS"),
            pc.if_else(pa.array(use_synonym), _take(tx.synonym_rank, taxon), _take(tx.rank, taxon)),
        ),
    )
    # A synonym-named record: the synonym's key and name, the accepted species (GBIF).
    named = pc.if_else(
        pa.array(use_synonym), _take(tx.synonym_scientific, taxon), _take(tx.scientific, taxon)
    )
    scientific = pc.if_else(
        pa.array(to_family),
        _take(tx.family_name, fam),
        pc.if_else(pa.array(to_genus), _take(tx.genus_scientific, taxon), named),
    )
    verbatim = pc.if_else(
        pa.array(use_synonym), _take(tx.synonym, taxon), _take(tx.canonical, taxon)
    )
    verbatim = pc.if_else(pa.array(to_genus), _take(tx.genus, taxon), verbatim)
    verbatim = pc.if_else(pa.array(to_family), _take(tx.family_name, fam), verbatim)
    verbatim_author = pc.if_else(
        pa.array(use_synonym), _take(tx.synonym_authorship, taxon), _take(tx.authorship, taxon)
    )
    verbatim_author = pc.if_else(
        pa.array(higher | (rng.random(n) < 0.5)), pa.scalar(None, pa.string()), verbatim_author
    )
    own_key = np.where(use_synonym, tx.synonym_key[taxon], tx.key[taxon])
    taxonkey = np.where(
        to_family, tx.family_key[fam], np.where(to_genus, tx.genus_key[taxon], own_key)
    )
    specieskey = tx.species_key[taxon]
    listed_here = listings.listed_anywhere(np.where(higher, -1, specieskey), taxonkey)
    means_idx = np.where(listed_here, 0, 1)
    no_means = rng.random(n) >= np.where(listed_here, 0.10, 0.03)

    abroad_at = len(counties) + which
    state_names = _pool(counties.state_name + [a[1] for a in _ABROAD])
    state_idx = np.where(abroad, abroad_at, county)
    country = _take(_pool(counties.country + [a[0] for a in _ABROAD]), state_idx)
    absent = kind == 4
    specimen_number = ~is_obs & (rng.random(n) < 0.5)
    count_values = np.where(absent, 0, rng.geometric(0.45, size=n))
    no_count = ~absent & (rng.random(n) < 0.4)
    elevation = np.round(rng.uniform(0, 3000, size=n), 1)
    no_elev = rng.random(n) < 0.8

    columns: dict[str, pa.Array] = {
        "gbifid": pa.array(gbifid).cast(pa.string()),
        "datasetkey": _take(_pool(dataset_keys), dataset),
        "occurrenceid": _join(occ_prefix, catalog_str),
        "kingdom": _take(tx.kingdom, fam),
        "phylum": _take(tx.phylum, fam),
        "class": _take(tx.cls, fam),
        "order": _take(tx.order, fam),
        "family": _take(tx.family_name, fam),
        "genus": _take(tx.genus, taxon, to_family),
        "species": _take(tx.species, taxon, higher),
        "infraspecificepithet": _take(tx.infra, taxon, higher | use_synonym),
        "taxonrank": rank,
        "scientificname": scientific,
        "verbatimscientificname": verbatim,
        "verbatimscientificnameauthorship": verbatim_author,
        "countrycode": country,
        "locality": _take(
            _pool(LOCALITIES), rng.integers(0, len(LOCALITIES), size=n), rng.random(n) < 0.7
        ),
        "stateprovince": _take(state_names, state_idx),
        "occurrencestatus": _take(_pool(["PRESENT", "ABSENT"]), absent.astype(np.int64)),
        "individualcount": _num(count_values, pa.int32(), no_count),
        "publishingorgkey": _take(_pool(org_keys), dataset),
        "decimallatitude": _num(lat, pa.float64(), no_coords),
        "decimallongitude": _num(lon, pa.float64(), no_coords),
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
        "eventdate": _num(event, pa.timestamp("us"), no_date),
        "day": _num(days, pa.int32(), no_date),
        "month": _num(months, pa.int32(), no_date),
        "year": _num(years, pa.int32(), no_date),
        "taxonkey": _num(taxonkey, pa.int32()),
        "specieskey": _num(specieskey, pa.int32(), higher),
        "basisofrecord": _take(basis_pool, basis_idx),
        "institutioncode": _take(_pool([d.institution for d in DATASETS]), dataset),
        "collectioncode": _take(_pool([d.collection for d in DATASETS]), dataset),
        "catalognumber": _join(cat_prefix, catalog_str),
        "recordnumber": _num(rng.integers(1, 20000, size=n), pa.int64(), ~specimen_number).cast(
            pa.string()
        ),
        "identifiedby": _list(people, n_ident, rng.integers(0, len(PEOPLE), size=n_ident.sum())),
        "dateidentified": _num(identified.astype("datetime64[us]"), pa.timestamp("us"), no_ident),
        "license": _take(_pool([d.license for d in DATASETS]), dataset),
        "rightsholder": _take(_pool([d.rightsholder for d in DATASETS]), dataset),
        "recordedby": _list(people, n_rec, rng.integers(0, len(PEOPLE), size=n_rec.sum())),
        "typestatus": _list(
            _pool(("HOLOTYPE", "PARATYPE")), type_counts, rng.integers(0, 2, type_counts.sum())
        ),
        "establishmentmeans": _take(_pool(["introduced", "native"]), means_idx, no_means),
        "lastinterpreted": _num(interpreted, pa.timestamp("us")),
        "mediatype": _list(
            _pool(("StillImage", "Sound")),
            media_counts,
            (basis_idx[media_counts.astype(bool)] == _BASIS.index("MACHINE_OBSERVATION")).astype(
                np.int64
            ),
        ),
        "issue": _list(issue_pool, n_issue, issue_idx),
    }
    table = conform(columns, snapshot)  # the types GBIF published for this month

    facts = _facts(places, listings, kind, valid, county, region, area, specieskey, taxonkey)
    facts["non_us_by_country"] = _tally(
        np.array(counties.country + [a[0] for a in _ABROAD])[state_idx[foreign]]
    )
    return Occurrences(
        table,
        facts,
        np.unique(taxonkey[valid]),
        np.unique(specieskey[valid]),
        int(gbifid[-1]),
    )


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


def _pick(
    rng: np.random.Generator, pool: PointPool, county: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lon, lat, AIANNH area) of a point of each county's pool, uniformly."""
    at = pool.offsets[county] + (rng.random(county.size) * pool.counts()[county]).astype(np.int64)
    return pool.lon[at], pool.lat[at], pool.area[at].copy()
