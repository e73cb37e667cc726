"""GBIF occurrence records, generated column by column with numpy and pyarrow.

A quarter of a million rows must take well under a few seconds, so nothing here loops over
records in Python: every column is drawn as an array, and strings come from small pools
through `take`. Each record is either valid for the BISON subset or fails exactly one subset
rule (the default rules, bisonflow.subset_rules.DEFAULT_SUBSET_RULES), so the number of kept
records, and each drop kind, is known.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bisonflow.riis_schema import ASSESSMENT_OF_DEGREE, ASSESSMENTS, PRESUMED_NATIVE, RIIS_REGIONS
from bisonflow.sample.geography import STATES, AiannhLayer, AiannhPool, Counties, regions_of_states
from bisonflow.sample.publishers import (
    DATASETS,
    GEO_ISSUES,
    LOCALITIES,
    OTHER_ISSUES,
    PEOPLE,
    UNCERTAINTY_METRES,
)
from bisonflow.sample.riis import DEGREES, RiisRow
from bisonflow.sample.schema import conform
from bisonflow.sample.taxa import FAMILIES, Backbone, Usage
from bisonflow.subset_rules import DEFAULT_SUBSET_RULES

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
#: Share of records whose taxon is on the RIIS list somewhere, and of those how many are
#: drawn from the taxa listed for the record's own region.
RIIS_SHARE = 0.2
_IN_REGION_SHARE = 0.7
#: Share of US records moved to a point inside an AIANNH area of their own state. Real
#: AIANNH areas cover a few percent of the lower 48 and much of Alaska; with the points that
#: fall into areas anyway this gives every sample state's areas records.
AIANNH_SHARE = 0.05
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
#: sample state, so a foreign point lies in no generated county.
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
    last_gbifid: int  # the next chunk's ids start after it


def _pool(values: Sequence[str | None]) -> pa.Array:
    return pa.array(list(values), pa.string())


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


class _TaxonArrays:
    """Per occurrence taxon (index into backbone.occurrence_taxa) the values records copy."""

    def __init__(self, backbone: Backbone) -> None:
        taxa: list[Usage] = backbone.occurrence_taxa
        self.n = len(taxa)
        self.key = np.array([t.key for t in taxa], dtype=np.int64)
        self.species_key = np.array([t.species_key for t in taxa], dtype=np.int64)
        self.genus_key = np.array([t.genus_key for t in taxa], dtype=np.int64)
        self.family_key = np.array(
            [backbone.higher_key("family", FAMILIES[t.family][4]) for t in taxa], dtype=np.int64
        )
        self.family = np.array([t.family for t in taxa], dtype=np.int64)
        self.has_synonym = np.array([bool(t.synonym_names) for t in taxa])
        self.rank = _pool([t.rank for t in taxa])
        self.genus = _pool([t.genus for t in taxa])
        self.species = _pool([t.species for t in taxa])
        self.infra = _pool([t.infraspecific_epithet for t in taxa])
        self.scientific = _pool([t.scientific_name for t in taxa])
        self.canonical = _pool([t.canonical for t in taxa])
        self.authorship = _pool([t.authorship or None for t in taxa])
        self.synonym = _pool([t.synonym_names[0] if t.synonym_names else None for t in taxa])
        self.genus_scientific = _pool(
            [f"{t.genus} {backbone.genus_authors[t.genus]}" for t in taxa]
        )
        self.kingdom = _pool([f[0] for f in FAMILIES])
        self.phylum = _pool([f[1] for f in FAMILIES])
        self.cls = _pool([f[2] for f in FAMILIES])
        self.order = _pool([f[3] for f in FAMILIES])
        self.family_name = _pool([f[4] for f in FAMILIES])


def generate_occurrences(
    rng: np.random.Generator,
    n: int,
    snapshot: dt.date,
    backbone: Backbone,
    counties: Counties,
    riis_rows: list[RiisRow],
    aiannh: AiannhLayer,
    pool: AiannhPool,
    first_gbifid: int = FIRST_GBIFID,
) -> Occurrences:
    """All records as one table in the snapshot month's schema, plus facts for `expected`."""
    tx = _TaxonArrays(backbone)
    # Zipf-like abundance in a random order: a few common taxa, a long tail of rare ones.
    abundance = np.empty(tx.n)
    abundance[rng.permutation(tx.n)] = 1.0 / (np.arange(tx.n) + 5.0) ** 0.9

    # --- what each record is --------------------------------------------------------------
    basis_idx = rng.choice(len(_BASIS), size=n, p=list(_BASIS_SHARE.values()))
    kind = rng.choice(len(_KIND_SHARE), size=n, p=_KIND_SHARE)
    kind[~_BASIS_KEPT[basis_idx]] = _EXCLUDED_BASIS_KIND
    us = kind != 1
    valid = kind == 0

    # --- where ------------------------------------------------------------------------------
    state_of = counties.state_index
    area = counties.aland.astype(np.float64) + counties.awater
    county_w = area * rng.lognormal(0.0, 0.5, size=len(counties))
    for s, state in enumerate(STATES):
        in_state = state_of == s
        county_w[in_state] *= state.weight / county_w[in_state].sum()
    county = rng.choice(len(counties), size=n, p=county_w / county_w.sum())
    lon, lat = counties.sample_points(rng, county)
    _move_into_aiannh_areas(rng, county, lon, lat, counties, pool, (kind != 1))
    abroad = rng.integers(0, len(_ABROAD), size=n)
    boxes = np.array([a[2] for a in _ABROAD])
    ab_lon = np.round(rng.uniform(boxes[abroad, 0], boxes[abroad, 2]), 5)
    ab_lat = np.round(rng.uniform(boxes[abroad, 1], boxes[abroad, 3]), 5)
    lon = np.where(us, lon, ab_lon)
    lat = np.where(us, lat, ab_lat)
    no_coords = kind == 2
    region = np.where(us, regions_of_states()[state_of[county]], -1)

    # --- which taxon ------------------------------------------------------------------------
    listed: dict[tuple[int, int], int] = {}  # (region index, accepted key) -> degree index
    for row in riis_rows:
        if row.taxon.key is not None:
            listed[(RIIS_REGIONS.index(row.locality), row.taxon.key)] = DEGREES.index(row.degree)
    listed_keys = {key for _, key in listed}
    riis_taxon = np.isin(tx.key, list(listed_keys)) | np.isin(tx.species_key, list(listed_keys))
    taxon = np.empty(n, dtype=np.int64)
    wants_riis = rng.random(n) < RIIS_SHARE
    in_region = wants_riis & us & (rng.random(n) < _IN_REGION_SHARE)
    for r in range(len(RIIS_REGIONS)):
        here_keys = [key for (reg, key) in listed if reg == r]
        candidates = np.flatnonzero(np.isin(tx.key, here_keys))
        pick = in_region & (region == r)
        taxon[pick] = _weighted(rng, candidates, abundance, int(pick.sum()))
    pick = wants_riis & ~in_region
    taxon[pick] = _weighted(rng, np.flatnonzero(riis_taxon), abundance, int(pick.sum()))
    pick = ~wants_riis
    taxon[pick] = _weighted(rng, np.flatnonzero(~riis_taxon), abundance, int(pick.sum()))

    higher = kind == 3
    to_family = higher & (rng.random(n) < 0.3)
    to_genus = higher & ~to_family
    fam = tx.family[taxon]

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
        pc.if_else(pa.array(to_genus), pa.scalar("GENUS"), _take(tx.rank, taxon)),
    )
    scientific = pc.if_else(
        pa.array(to_family),
        _take(tx.family_name, fam),
        pc.if_else(
            pa.array(to_genus), _take(tx.genus_scientific, taxon), _take(tx.scientific, taxon)
        ),
    )
    use_synonym = tx.has_synonym[taxon] & (rng.random(n) < 0.3) & ~higher
    verbatim = pc.if_else(
        pa.array(use_synonym), _take(tx.synonym, taxon), _take(tx.canonical, taxon)
    )
    verbatim = pc.if_else(pa.array(to_genus), _take(tx.genus, taxon), verbatim)
    verbatim = pc.if_else(pa.array(to_family), _take(tx.family_name, fam), verbatim)
    verbatim_author = _take(tx.authorship, taxon, higher | use_synonym | (rng.random(n) < 0.5))
    taxonkey = np.where(
        to_family, tx.family_key[fam], np.where(to_genus, tx.genus_key[taxon], tx.key[taxon])
    )
    listed_here = riis_taxon[taxon]
    means_idx = np.where(listed_here, 0, 1)
    no_means = rng.random(n) >= np.where(listed_here, 0.10, 0.03)

    state_names = _pool([s.name for s in STATES] + [a[1] for a in _ABROAD])
    state_idx = np.where(us, state_of[county], len(STATES) + abroad)
    country = _take(_pool(["US"] + [a[0] for a in _ABROAD]), np.where(us, 0, 1 + abroad))
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
        "infraspecificepithet": _take(tx.infra, taxon, higher),
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
        "specieskey": _num(tx.species_key[taxon], pa.int32(), higher),
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

    # --- what the workflow should find --------------------------------------------------------
    codes = region * 10**9 + taxonkey
    listed_codes = np.array(sorted(r * 10**9 + k for r, k in listed), dtype=np.int64)
    listed_degree = np.array([listed[(c // 10**9, c % 10**9)] for c in listed_codes])
    if listed_codes.size == 0:
        listed_codes, listed_degree = np.array([-1], dtype=np.int64), np.array([0])
    pos = np.clip(np.searchsorted(listed_codes, codes), 0, listed_codes.size - 1)
    hit = valid & (listed_codes[pos] == codes)
    assessment = {PRESUMED_NATIVE: int((valid & ~hit).sum())}
    for d, degree in enumerate(DEGREES):
        assessment[degree] = int((hit & (listed_degree[pos] == d)).sum())
    valid_state = state_of[county][valid]
    valid_region = region[valid]
    by_assessment = dict.fromkeys(ASSESSMENTS, 0)
    for degree, count in assessment.items():
        by_assessment[ASSESSMENT_OF_DEGREE.get(degree, degree)] += count  # as the SQL maps it
    area = aiannh.locate(lon[valid], lat[valid])
    geoids = np.array(counties.geoid)
    facts = {
        "us_valid_records": int(valid.sum()),
        "dropped": {DROP_KINDS[k]: int((kind == k).sum()) for k in range(1, len(DROP_KINDS))},
        "valid_by_state": {s.stusps: int((valid_state == i).sum()) for i, s in enumerate(STATES)},
        "valid_by_region": {r: int((valid_region == i).sum()) for i, r in enumerate(RIIS_REGIONS)},
        "valid_by_county": _tally(geoids[county[valid]]),
        "valid_riis_taxon_records": int((valid & listed_here).sum()),
        "assessment_counts": assessment,
        "valid_by_assessment": by_assessment,
        "valid_in_aiannh": int((area >= 0).sum()),
        "valid_by_aiannh": _tally(np.array(aiannh.geoid)[area[area >= 0]]),
    }
    return Occurrences(table, facts, np.unique(taxonkey[valid]), int(gbifid[-1]))


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


def _move_into_aiannh_areas(
    rng: np.random.Generator,
    county: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
    counties: Counties,
    pool: AiannhPool,
    eligible: np.ndarray,
) -> None:
    """Move AIANNH_SHARE of the eligible records to pool points of their own state (in place).

    The record keeps its state, so its RIIS region and taxon draw are unchanged; its county
    becomes the one holding the pool point.
    """
    state = counties.state_index[county]
    move = eligible & (rng.random(county.size) < AIANNH_SHARE)
    for s in range(len(STATES)):
        points = np.flatnonzero(pool.state == s)
        chosen = np.flatnonzero(move & (state == s))
        if points.size == 0 or chosen.size == 0:
            continue
        w = pool.weight[points]
        pick = rng.choice(points, size=chosen.size, p=w / w.sum())
        lon[chosen], lat[chosen], county[chosen] = pool.lon[pick], pool.lat[pick], pool.county[pick]
