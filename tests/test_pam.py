"""PAM statistics against a 4 sites x 5 species matrix worked out by hand.

After the threshold (min_count=2) the PAM is

            t1  t2  t3  t4  t5    alpha  phi
    01001    1   1   0   0   0      2     6
    01003    1   1   1   0   0      3     8
    02010    0   1   0   1   0      2     5
    15001    1   0   1   1   1      4     8
    omega    3   3   2   2   1   (sum 11)
    psi      9   7   7   6   4

with N = 4, S = 5, sum(omega / N) = 2.75, sum(omega^2) = 27.
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import SCRATCH_BUCKET

from bisonflow.pam import (
    build_heatmap,
    build_matrices,
    diversity_stats,
    presence_absence,
    site_stats,
    species_stats,
)
from bisonflow.taskspec import TaskSpec
from tasks import calc_stats

T1, T2, T3, T4, T5, T_RARE = 3001, 2002, 5003, 1004, 4005, 9999

# (site, taxon, count): presences have count >= 2; count-1 cells fall below the threshold.
# Site 99999 and taxon T_RARE only ever have count 1, so the PAM must drop them.
# (02010, T4) arrives in two rows (1 + 1) that must be summed into a presence.
ROWS = [
    ("01001", T1, 5),
    ("01001", T2, 2),
    ("01001", T3, 1),
    ("01003", T1, 10),
    ("01003", T2, 3),
    ("01003", T3, 2),
    ("02010", T2, 7),
    ("02010", T4, 1),
    ("02010", T4, 1),
    ("02010", T5, 1),
    ("15001", T1, 2),
    ("15001", T3, 4),
    ("15001", T4, 9),
    ("15001", T5, 3),
    ("99999", T_RARE, 1),
    ("99999", T1, 1),
    ("01001", T4, 0),
]
SITES = ["01001", "01003", "02010", "15001"]
TAXA = [T4, T2, T1, T5, T3]  # sorted taxon keys: 1004, 2002, 3001, 4005, 5003


@pytest.fixture(scope="module")
def matrices():
    sites, taxa, counts = zip(*ROWS, strict=True)
    return build_matrices(sites, taxa, counts, min_count=2)


def test_pam_labels_drop_empty_sites_and_species(matrices):
    assert list(matrices.pam.sites) == SITES
    assert list(matrices.pam.taxa) == TAXA
    assert matrices.pam.matrix.shape == (4, 5)
    assert matrices.pam.matrix.nnz == 11


def test_pam_is_binary_and_matches_hand_matrix(matrices):
    expected = {
        "01001": {T1, T2},
        "01003": {T1, T2, T3},
        "02010": {T2, T4},
        "15001": {T1, T3, T4, T5},
    }
    sites, taxa, values = matrices.pam.triples()
    assert set(values.tolist()) == {1}
    got: dict[str, set[int]] = {}
    for site, taxon in zip(sites, taxa, strict=True):
        got.setdefault(site, set()).add(int(taxon))
    assert got == expected


def test_heatmap_sums_duplicates_and_keeps_counts_below_threshold(matrices):
    heatmap = matrices.heatmap
    assert list(heatmap.sites) == [*SITES, "99999"]
    assert list(heatmap.taxa) == [*TAXA, T_RARE]
    cells = {(s, int(t)): int(c) for s, t, c in zip(*heatmap.triples(), strict=True)}
    assert cells[("02010", T4)] == 2
    assert cells[("01001", T3)] == 1
    assert ("01001", T4) not in cells  # zero count is no cell at all
    assert sum(cells.values()) == 5 + 2 + 1 + 10 + 3 + 2 + 7 + 2 + 1 + 2 + 4 + 9 + 3 + 1 + 1
    assert len(cells) == 15


def test_site_stats(matrices):
    stats = site_stats(matrices.pam)
    assert list(stats["site"]) == SITES
    assert stats["alpha"].tolist() == [2, 3, 2, 4]
    np.testing.assert_allclose(stats["alpha_proportional"], [0.4, 0.6, 0.4, 0.8])
    assert stats["phi"].tolist() == [6, 8, 5, 8]
    # phi / (N * alpha) = 6/8, 8/12, 5/8, 8/16
    np.testing.assert_allclose(stats["phi_average_proportional"], [0.75, 2 / 3, 0.625, 0.5])


def test_species_stats(matrices):
    stats = species_stats(matrices.pam)
    # columns in taxon-key order: T4, T2, T1, T5, T3
    assert stats["taxonkey"].tolist() == TAXA
    assert stats["omega"].tolist() == [2, 3, 3, 1, 2]
    np.testing.assert_allclose(stats["omega_proportional"], [0.5, 0.75, 0.75, 0.25, 0.5])
    assert stats["psi"].tolist() == [6, 7, 9, 4, 7]
    # psi / (S * omega) = 6/10, 7/15, 9/15, 4/5, 7/10
    np.testing.assert_allclose(stats["psi_average_proportional"], [0.6, 7 / 15, 0.6, 0.8, 0.7])


def test_diversity_stats(matrices):
    stats = diversity_stats(matrices.pam)
    assert stats["num_sites"] == 4
    assert stats["num_species"] == 5
    assert stats["whittaker"] == pytest.approx(5 / 2.75)  # 1.8181...
    assert stats["lande"] == pytest.approx(2.25)  # 5 - 2.75
    assert stats["legendre"] == pytest.approx(4.25)  # 11 - 27/4


def test_min_count_one_keeps_every_nonzero_cell(matrices):
    pam = presence_absence(matrices.heatmap, 1)
    assert pam.matrix.shape == (5, 6)
    assert pam.matrix.nnz == 15


def test_threshold_above_every_count_gives_empty_pam(matrices):
    pam = presence_absence(matrices.heatmap, 100)
    assert pam.matrix.shape == (0, 0)
    with pytest.raises(ValueError, match="no presences"):
        diversity_stats(pam)


@pytest.mark.parametrize("bad", [0, -1])
def test_min_count_must_be_positive(matrices, bad):
    with pytest.raises(ValueError, match="min_count"):
        presence_absence(matrices.heatmap, bad)


def test_inputs_are_validated():
    with pytest.raises(ValueError, match="differ in length"):
        build_heatmap(["a"], [1, 2], [1])
    with pytest.raises(ValueError, match="negative"):
        build_heatmap(["a"], [1], [-3])


def test_matrices_stay_sparse(matrices):
    assert matrices.pam.matrix.format == "csr"
    assert matrices.heatmap.matrix.format == "csr"


# --- the calc_stats task against moto ------------------------------------------------------

BUCKET = SCRATCH_BUCKET
SUMMARY = "summary/2024_02_01/"
COUNTY_PREFIX = f"{SUMMARY}county_species_counts/"
STATE_PREFIX = f"{SUMMARY}state_species_counts/"
DONE_KEY = f"{SUMMARY}_SUCCESS"
STATE_ROWS = [("AL", T1, 3), ("AL", T2, 1), ("HI", T1, 2), ("HI", T3, 5), ("AK", T2, 1)]


def _parquet(columns: dict, taxon_type: pa.DataType | None = None) -> bytes:
    types = {"taxonkey": taxon_type or pa.int64(), "occ_count": pa.int64()}
    table = pa.table({k: pa.array(v, type=types.get(k, pa.string())) for k, v in columns.items()})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _county_part(rows) -> dict:
    sites, taxa, counts = zip(*rows, strict=True)
    return {
        "geoid": list(sites),
        "state": ["XX"] * len(rows),
        "county": ["Somewhere"] * len(rows),
        "riis_region": ["L48"] * len(rows),
        "taxonkey": list(taxa),
        "species": [f"Species {t}" for t in taxa],
        "riis_assessment": ["introduced"] * len(rows),
        "occ_count": list(counts),
    }


def _state_part(rows) -> dict:
    part = _county_part(rows)
    part["state"] = part.pop("geoid")
    del part["county"]
    return part


def _upload_counts(s3) -> None:
    """County counts in two parts (one with int32 taxon keys) plus files UNLOAD leaves around."""
    half = len(ROWS) // 2
    puts = {
        f"{COUNTY_PREFIX}0000_part_00.parquet": _parquet(_county_part(ROWS[:half])),
        f"{COUNTY_PREFIX}0001_part_00.parquet": _parquet(
            _county_part(ROWS[half:]), taxon_type=pa.int32()
        ),
        f"{COUNTY_PREFIX}_SUCCESS": b"",
        f"{COUNTY_PREFIX}manifest": b'{"entries": []}',
        f"{STATE_PREFIX}0000_part_00.parquet": _parquet(_state_part(STATE_ROWS)),
    }
    for key, body in puts.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)


def _spec(**params) -> TaskSpec:
    return TaskSpec(
        task="calc_stats",
        month="2024-02",
        bucket=BUCKET,
        execution="test-execution",
        token_parameter="/bison/test/token",
        inputs={"county_counts": COUNTY_PREFIX, "state_counts": STATE_PREFIX},
        outputs={"summary": SUMMARY, "done": DONE_KEY},
        params=params,
    )


def _read_csv(s3, key: str) -> list[dict[str, str]]:
    text = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def _read_parquet(s3, key: str) -> pa.Table:
    return pq.read_table(io.BytesIO(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()))


def test_calc_stats_task_writes_every_file_and_the_marker(s3):
    _upload_counts(s3)
    result = calc_stats.run(_spec(min_presence_count=2))
    assert result == {
        "summary_prefix": SUMMARY,
        "files": 10,
        "sites": {"county": 4, "state": 2},
        "species": {"county": 5, "state": 2},
    }
    marker = json.loads(s3.get_object(Bucket=BUCKET, Key=DONE_KEY)["Body"].read())
    assert len(marker["files"]) == 10
    for key in marker["files"]:
        s3.head_object(Bucket=BUCKET, Key=key)

    sites = _read_csv(s3, f"{SUMMARY}stats_sites_county.csv")
    assert list(sites[0]) == [
        "site",
        "alpha",
        "alpha_proportional",
        "phi",
        "phi_average_proportional",
    ]
    assert [(r["site"], r["alpha"], r["phi"]) for r in sites] == [
        ("01001", "2", "6"),
        ("01003", "3", "8"),
        ("02010", "2", "5"),
        ("15001", "4", "8"),
    ]
    species = _read_csv(s3, f"{SUMMARY}stats_species_county.csv")
    assert list(species[0]) == [
        "taxonkey",
        "omega",
        "omega_proportional",
        "psi",
        "psi_average_proportional",
    ]
    assert [(int(r["taxonkey"]), int(r["psi"])) for r in species] == list(
        zip(TAXA, [6, 7, 9, 4, 7], strict=True)
    )
    (diversity,) = _read_csv(s3, f"{SUMMARY}stats_diversity_county.csv")
    assert (diversity["num_sites"], diversity["num_species"]) == ("4", "5")
    assert float(diversity["lande"]) == pytest.approx(2.25)
    assert float(diversity["legendre"]) == pytest.approx(4.25)
    assert float(diversity["whittaker"]) == pytest.approx(5 / 2.75)

    pam = _read_parquet(s3, f"{SUMMARY}pam_county.parquet")
    assert pam.schema.names == ["site", "taxonkey"]
    assert pam.schema.field("taxonkey").type == pa.int64()
    assert pam.num_rows == 11
    heatmap = _read_parquet(s3, f"{SUMMARY}heatmap_county.parquet")
    assert heatmap.schema.names == ["site", "taxonkey", "occ_count"]
    assert heatmap.num_rows == 15
    assert set(_read_parquet(s3, f"{SUMMARY}pam_state.parquet").column("site").to_pylist()) == {
        "AL",
        "HI",
    }


def test_calc_stats_missing_input_prefix_names_it_and_writes_nothing(s3):
    with pytest.raises(FileNotFoundError, match=f"s3://{BUCKET}/{COUNTY_PREFIX}"):
        calc_stats.run(_spec())
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=SUMMARY)


def test_calc_stats_rejects_integer_geoids_and_bad_params(s3):
    _upload_counts(s3)
    with pytest.raises(ValueError, match="min_presence_count"):
        calc_stats.run(_spec(min_presence_count=0))
    part = _county_part(ROWS)
    part["geoid"] = [int(g) for g in part["geoid"]]
    bad = pa.table(part)
    sink = io.BytesIO()
    pq.write_table(bad, sink)
    s3.put_object(Bucket=BUCKET, Key=f"{COUNTY_PREFIX}0002_part_00.parquet", Body=sink.getvalue())
    with pytest.raises(ValueError, match="0002_part_00.parquet.*geoid must be a string"):
        calc_stats.run(_spec())
    s3.delete_object(Bucket=BUCKET, Key=f"{COUNTY_PREFIX}0002_part_00.parquet")
    with pytest.raises(ValueError, match="no county has a species"):
        calc_stats.run(_spec(min_presence_count=1000))
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{SUMMARY}stats")
