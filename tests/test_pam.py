"""PAM statistics against a 4 sites x 5 species matrix worked out by hand.

After the threshold (min_count=2) the PAM is

            t1  t2  t3  t4  t5    alpha  phi
    01001    1   1   0   0   0      2     6
    01003    1   1   1   0   0      3     8
    02010    0   1   0   1   0      2     5
    15001    1   0   1   1   1      4     8
    omega    3   3   2   2   1   (sum 11)
    psi      9   7   7   6   4

with N = 4, S = 5, sum(omega / N) = 11/4 = 2.75, sum(omega^2) = 9+9+4+4+1 = 27, so
whittaker = 5 / 2.75, lande = 5 - 2.75 = 2.25, legendre = 11 - 27/4 = 4.25.

Proportions are compared with `==`: numpy divides the same two integers the formula does, so
the double is the correctly rounded value of the exact fraction written here.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from bisonflow.stats.pam import (
    DIVERSITY_COLUMNS,
    SITE_STATS_COLUMNS,
    SPECIES_STATS_COLUMNS,
    build_heatmap,
    build_matrices,
    diversity_stats,
    presence_absence,
    site_stats,
    species_stats,
)

# Taxon keys are text (GBIF's type from 2025-08); T4 is shorter than the others, so key
# order (shortest first) puts it first where code-point order would put it last.
T1, T2, T3, T4, T5, T_RARE = "3001", "2002", "5003", "904", "4005", "9999"

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
TAXA = [T4, T2, T1, T5, T3]  # taxon keys in key order: 904, 2002, 3001, 4005, 5003


@pytest.fixture(scope="module")
def matrices():
    sites, taxa, counts = zip(*ROWS, strict=True)
    return build_matrices(sites, taxa, counts, min_count=2)


def cells(matrix, value_column: str | None = None) -> dict:
    table = matrix.to_table(value_column)
    if value_column is None:
        return {(r["site"], r["specieskey"]): 1 for r in table.to_pylist()}
    return {(r["site"], r["specieskey"]): r[value_column] for r in table.to_pylist()}


def test_pam_labels_drop_empty_sites_and_species(matrices):
    assert matrices.pam.sites.to_pylist() == SITES
    assert matrices.pam.taxa.to_pylist() == TAXA
    assert matrices.pam.matrix.shape == (4, 5)
    assert matrices.pam.nnz == 11


def test_pam_is_binary_and_matches_hand_matrix(matrices):
    expected = {
        "01001": {T1, T2},
        "01003": {T1, T2, T3},
        "02010": {T2, T4},
        "15001": {T1, T3, T4, T5},
    }
    assert set(matrices.pam.matrix.data.tolist()) == {1}
    got: dict[str, set[str]] = {}
    for site, taxon in cells(matrices.pam):
        got.setdefault(site, set()).add(taxon)
    assert got == expected


def test_pam_table_is_ordered_by_site_then_taxon(matrices):
    table = matrices.pam.to_table()
    assert table.schema == pa.schema([("site", pa.string()), ("specieskey", pa.string())])
    pairs = list(zip(table["site"].to_pylist(), table["specieskey"].to_pylist(), strict=True))
    assert pairs == sorted(pairs, key=lambda p: (p[0], len(p[1]), p[1]))
    assert pairs[:3] == [("01001", T2), ("01001", T1), ("01003", T2)]


@pytest.mark.parametrize("min_count", [1, 2])
def test_pam_rows_from_tables_are_the_pam_cells(min_count):
    sites, taxa, counts = zip(*ROWS, strict=True)
    both = build_matrices(sites, taxa, counts, min_count=min_count)
    heatmap, pam = both.tables()
    assert heatmap.equals(both.heatmap.to_table("occ_count"))
    assert pam.equals(both.pam.to_table())
    assert pam.num_rows == {1: 15, 2: 11}[min_count]


@pytest.mark.parametrize("min_count", [1, 2])
def test_encoded_tables_hold_the_same_rows_without_gathering_labels(min_count):
    sites, taxa, counts = zip(*ROWS, strict=True)
    both = build_matrices(sites, taxa, counts, min_count=min_count)
    for plain, encoded in zip(both.tables(), both.tables(encoded=True), strict=True):
        for name in ("site", "specieskey"):
            assert pa.types.is_dictionary(encoded[name].type)
            assert encoded[name].chunk(0).dictionary.to_pylist() in (
                both.heatmap.sites.to_pylist(),
                both.heatmap.taxa.to_pylist(),
                both.pam.sites.to_pylist(),
                both.pam.taxa.to_pylist(),
            )
        decoded = encoded.cast(plain.schema)
        assert decoded.equals(plain)


def test_heatmap_sums_duplicates_and_keeps_counts_below_threshold(matrices):
    heatmap = matrices.heatmap
    assert heatmap.sites.to_pylist() == [*SITES, "99999"]
    assert heatmap.taxa.to_pylist() == [*TAXA, T_RARE]
    got = cells(heatmap, "occ_count")
    assert got[("02010", T4)] == 2
    assert got[("01001", T3)] == 1
    assert ("01001", T4) not in got  # zero count is no cell at all
    assert sum(got.values()) == 5 + 2 + 1 + 10 + 3 + 2 + 7 + 2 + 1 + 2 + 4 + 9 + 3 + 1 + 1
    assert len(got) == 15
    assert heatmap.to_table("occ_count").schema.field("occ_count").type == pa.int64()


def test_site_stats(matrices):
    stats = site_stats(matrices.pam)
    assert tuple(stats.column_names) == SITE_STATS_COLUMNS
    assert stats["site"].to_pylist() == SITES
    assert stats["alpha"].to_pylist() == [2, 3, 2, 4]
    assert stats["alpha_proportional"].to_pylist() == [2 / 5, 3 / 5, 2 / 5, 4 / 5]
    assert stats["phi"].to_pylist() == [6, 8, 5, 8]
    # phi / (N * alpha) = 6/8, 8/12, 5/8, 8/16
    assert stats["phi_average_proportional"].to_pylist() == [0.75, 2 / 3, 0.625, 0.5]


def test_species_stats(matrices):
    stats = species_stats(matrices.pam)
    assert tuple(stats.column_names) == SPECIES_STATS_COLUMNS
    # columns in taxon-key order: T4, T2, T1, T5, T3
    assert stats["specieskey"].to_pylist() == TAXA
    assert stats["omega"].to_pylist() == [2, 3, 3, 1, 2]
    assert stats["omega_proportional"].to_pylist() == [0.5, 0.75, 0.75, 0.25, 0.5]
    assert stats["psi"].to_pylist() == [6, 7, 9, 4, 7]
    # psi / (S * omega) = 6/10, 7/15, 9/15, 4/5, 7/10
    assert stats["psi_average_proportional"].to_pylist() == [0.6, 7 / 15, 0.6, 0.8, 0.7]


def test_diversity_stats(matrices):
    (stats,) = diversity_stats(matrices.pam).to_pylist()
    assert tuple(stats) == DIVERSITY_COLUMNS
    assert stats["num_sites"] == 4
    assert stats["num_species"] == 5
    assert stats["whittaker"] == 5 / 2.75  # 1.8181...
    assert stats["lande"] == 2.25  # 5 - 2.75
    assert stats["legendre"] == 4.25  # 11 - 27/4


def test_min_count_one_keeps_every_nonzero_cell(matrices):
    pam = presence_absence(matrices.heatmap, 1)
    assert pam.matrix.shape == (5, 6)
    assert pam.nnz == 15
    assert site_stats(pam)["alpha"].to_pylist() == [3, 3, 3, 4, 2]


def test_threshold_above_every_count_gives_empty_pam_and_header_only_stats(matrices):
    pam = presence_absence(matrices.heatmap, 100)
    assert pam.matrix.shape == (0, 0)
    assert pam.to_table().num_rows == 0
    for stats, columns in (
        (site_stats(pam), SITE_STATS_COLUMNS),
        (species_stats(pam), SPECIES_STATS_COLUMNS),
        (diversity_stats(pam), DIVERSITY_COLUMNS),
    ):
        assert stats.num_rows == 0
        assert tuple(stats.column_names) == columns


def test_no_rows_at_all_gives_an_empty_matrix():
    matrices = build_matrices(pa.array([], pa.string()), [], [])
    assert matrices.heatmap.matrix.shape == (0, 0)
    assert diversity_stats(matrices.pam).num_rows == 0


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_min_count_must_be_a_positive_integer(matrices, bad):
    with pytest.raises(ValueError, match="min_count"):
        presence_absence(matrices.heatmap, bad)


def test_inputs_are_validated():
    with pytest.raises(ValueError, match="differ in length"):
        build_heatmap(["a"], [1, 2], [1])
    with pytest.raises(ValueError, match="negative"):
        build_heatmap(["a"], [1], [-3])
    with pytest.raises(ValueError, match="taxon keys must be strings"):
        build_heatmap(["a"], [1.5], [1])
    with pytest.raises(ValueError, match="taxon keys must be strings, got double"):
        build_heatmap(["a"], pa.array([1.5]), [1])
    with pytest.raises(ValueError, match="1 taxon keys are null"):
        build_heatmap(["a", "b"], pa.array(["1", None]), [1, 1])
    with pytest.raises(ValueError, match="1 site labels are null"):
        build_heatmap(pa.array(["a", None]), [1, 2], [1, 1])
    with pytest.raises(ValueError, match="site labels must be strings"):
        build_heatmap(pa.array([1001]), [1], [1])


def test_arrow_inputs_in_chunks_give_the_same_matrices(matrices):
    sites, taxa, counts = zip(*ROWS, strict=True)
    half = len(ROWS) // 2
    chunked = build_matrices(
        pa.chunked_array([pa.array(sites[:half]), pa.array(sites[half:])]),
        pa.chunked_array([pa.array(taxa[:half]), pa.array(taxa[half:])]).dictionary_encode(),
        pa.array(counts, pa.int16()),
        min_count=2,
    )
    assert chunked.pam.sites.to_pylist() == SITES
    assert (chunked.pam.matrix != matrices.pam.matrix).nnz == 0
    assert cells(chunked.heatmap, "occ_count") == cells(matrices.heatmap, "occ_count")


def dictionary_encoded(values: list[str]) -> pa.DictionaryArray:
    """As a parquet reader may hand them over: the dictionary has an unused entry and a
    duplicate of its first value, which the rows of that value point at."""
    distinct = sorted(set(values))
    dictionary = [*distinct, "never-used", distinct[0]]
    indices = [len(dictionary) - 1 if v == distinct[0] else distinct.index(v) for v in values]
    return pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32()), pa.array(dictionary))


def test_dictionary_encoded_sites_in_chunks_give_the_same_matrices(matrices):
    sites, taxa, counts = zip(*ROWS, strict=True)
    half = len(ROWS) // 2
    chunks = pa.chunked_array(
        [dictionary_encoded(list(sites[:half])), dictionary_encoded(list(sites[half:]))]
    )
    encoded = build_matrices(chunks, taxa, counts, min_count=2)
    assert encoded.pam.sites.to_pylist() == SITES
    assert encoded.pam.sites.type == pa.string()
    assert (encoded.pam.matrix != matrices.pam.matrix).nnz == 0
    assert cells(encoded.heatmap, "occ_count") == cells(matrices.heatmap, "occ_count")
    with pytest.raises(ValueError, match="1 site labels are null"):
        build_heatmap(pa.array(["a", None]).dictionary_encode(), [1, 2], [1, 1])


def test_matrices_stay_sparse_and_canonical(matrices):
    for matrix in (matrices.pam.matrix, matrices.heatmap.matrix):
        assert matrix.format == "csr"
        assert matrix.has_canonical_format
    assert np.diff(matrices.pam.matrix.indptr).min() > 0  # no empty site
    assert np.bincount(matrices.pam.matrix.indices).min() > 0  # no empty species


def test_counts_beyond_32_bits_are_summed_exactly():
    heatmap = build_heatmap(["b", "a", "a"], ["7", "1", "1"], [5, 2**40, 3])
    assert cells(heatmap, "occ_count") == {("a", "1"): 2**40 + 3, ("b", "7"): 5}


@pytest.mark.parametrize(
    "integer_keys",
    [
        pytest.param(lambda keys: [int(k) for k in keys], id="python ints"),
        pytest.param(lambda keys: pa.array([int(k) for k in keys], pa.int32()), id="int32"),
    ],
)
def test_integer_taxon_keys_become_their_text_in_numeric_order(matrices, integer_keys):
    """Keys as GBIF published them before 2025-08 give the matrices of their text."""
    sites, taxa, counts = zip(*ROWS, strict=True)
    from_integers = build_matrices(sites, integer_keys(taxa), counts, min_count=2)
    assert from_integers.pam.taxa.to_pylist() == TAXA
    assert from_integers.pam.taxa.type == pa.string()
    assert (from_integers.pam.matrix != matrices.pam.matrix).nnz == 0
    assert species_stats(from_integers.pam).equals(species_stats(matrices.pam))
